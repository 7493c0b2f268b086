// Every SQL statement of the query job kind (query_task.cpp): loading running query jobs and their result
// pages as typed rows, the pages' progress, recording steps, and the load of the pages into the target
// table. Like job_store.h: each method is one short transaction of its own and throws a C++ exception when
// it fails, after the transaction was rolled back and the error logged; stored values are parsed strictly.
#pragma once

#include "core/query_machine.h"
#include "core/token_broker.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace sfb::pg {

// A running query job whose step is not final: its sf_bulk.queries row with what it needs of its job.
struct QueryJobRow {
    std::int64_t job_id = 0;
    OrgKey org;
    QueryJobRecord record;
    QueryJobSpec spec;
    // As UploadRow: the row cannot run as it is (the job fails with this text), or its server is unusable
    // (its calls fail as after a refused login).
    std::string unreadable;
    std::string server_problem;
};

// A result page that is not downloaded yet, of a query job that is listing or downloading its pages.
struct QueryPageRow {
    std::int64_t job_id = 0;
    OrgKey org;
    QueryPageRecord record;
    QueryPageMachineSpec spec;  // download_file = the page's spool file
    std::string unreadable;
    std::string server_problem;
};

// What the worker can start now, in the order it should (see unfinished_query_work).
struct QueryWork {
    std::vector<QueryJobRow> jobs;
    std::vector<QueryPageRow> pages;
};

// Identifies a query job's call for note_waiting: page_no 0 is the job itself.
struct QueryPart {
    std::int64_t job_id = 0;
    int page_no = 0;
};

// A step to record and what the job row shows of it (as StepRecord for uploads).
struct QueryStepRecord {
    std::int64_t job_id = 0;
    int api_calls = 0;          // calls since the last record, added to sf_bulk.jobs.api_calls
    std::string org_api_usage;  // the last Sforce-Limit-Info seen, "" if none
};

// How a load ended when it did not commit.
struct LoadFailure {
    // A failure that would repeat (a value that does not convert, a missing or changed table, a privilege):
    // the job fails with `message` at once. Otherwise (a deadlock, a serialization failure, a lock timeout,
    // no disk space) the load is tried again later.
    bool deterministic = false;
    std::string message;
};

namespace query_store {

// Running query jobs whose step is not final, and the pages still to download of jobs that list or download
// them; at most `limit` of each. Pages come round-robin over the jobs (every job's first page, then every
// job's second, ...), so that one big job's pages do not hold back the pages of all jobs behind it.
QueryWork unfinished_query_work(int limit);

// The job's page progress from the committed page rows (the machine's contract in query_machine.h).
PagesProgress pages_progress(std::int64_t job_id);

// Records the job's step, inserts `new_pages` (their spool files named after the job's prefix) and updates
// the job row (phase, calls, API usage); a final step ends the job (state, error, finished_at) in the same
// transaction.
void record_job_step(const QueryStepRecord &step, const QueryJobRecord &record,
                     const std::vector<QueryPageSpec> &new_pages);

// Records a page's step and the job's calls and API usage.
void record_page_step(const QueryStepRecord &step, const QueryPageRecord &record);

// Loads every page of the job into its target table and, in the same transaction, records `done` (step
// Done), the rows loaded and the job completed. Returns nullopt when that committed; a LoadFailure when it
// did not and will not by trying again (deterministic), else throws (the load is retried later).
std::optional<LoadFailure> load_pages(const QueryStepRecord &step, const QueryJobRecord &done);

// Marks a page failed with `message` (the worker gave up on it locally).
void fail_page(std::int64_t job_id, int page_no, const std::string &message);

// Why a call of the job waits (a token backoff); the next recorded step replaces it.
void note_waiting(const QueryPart &part, const std::string &note);

}  // namespace query_store

}  // namespace sfb::pg
