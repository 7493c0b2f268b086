// Every SQL statement the database worker runs: claiming jobs, loading unfinished uploads as typed rows,
// recording steps, storing results, ending jobs, housekeeping. Each method is one short transaction of its
// own (none is open while the worker waits on the network) and throws a C++ exception when it fails, after
// the transaction was rolled back and the error logged.
//
// Values read back are parsed strictly: a state this version cannot read is an error that names it, never a
// default (a default would send an upload again, or drop one).
#pragma once

#include "core/csv.h"
#include "core/fdw_options.h"
#include "core/ingest_machine.h"
#include "core/token_broker.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace sfb::pg {

struct RunningJob {
    std::int64_t id = 0;
    bool abort_requested = false;
};

// One unfinished upload of a running ingest job: its row of sf_bulk.chunks with what it needs of its job.
struct UploadRow {
    std::int64_t job_id = 0;
    int chunk_no = 0;
    std::string spool_file;
    ChunkRecord record;     // the machine's durable state
    IngestJobRequest job;   // object, operation, external id, delimiter, line ending, assignment rule
    OrgKey org;             // the job's server and owner
    ServerSettings server;  // read in the same transaction
    // Set when the row cannot be run as it is: a stored value this version does not know, a server that is
    // gone or whose options no longer parse. The upload fails (or its login does) with this text.
    std::string unreadable;      // the row itself: the upload fails at once
    std::string server_problem;  // the server: the upload fails as a refused login would
};

// Identifies one upload.
struct UploadKey {
    std::int64_t job_id = 0;
    int chunk_no = 0;
};

// A step to record: the upload's record, and what the job row shows of it.
struct StepRecord {
    UploadKey upload;
    ChunkRecord record;
    int api_calls = 0;          // calls since the last record, added to sf_bulk.jobs.api_calls
    std::string org_api_usage;  // the last Sforce-Limit-Info seen, "" if none
};

namespace job_store {

// Whether the installed SQL has query jobs (1.3 and later): until ALTER EXTENSION UPDATE, a database keeps
// the tables of its version and the worker must not read the query ones. PostgreSQL calls only; inside a
// transaction with an SPI connection.
bool sql_has_query_jobs();

// Whether a job of this database is queued or running (false where the extension is not installed).
bool has_unfinished_work();

// Starts the queued jobs whose turn has come and returns every running job. nullopt: the extension is not
// installed (any more) or is being created.
std::optional<std::vector<RunningJob>> claim_jobs();

// Unfinished uploads of running jobs, in job and upload order, at most `limit`.
std::vector<UploadRow> unfinished_uploads(int limit);

// The org's options read now (credentials: secret). Throws, with a message that names no secret, when the
// server or the user mapping is gone.
OrgCredentials read_credentials(const OrgKey &org);

// Records a step (sf_bulk.chunks) and the job's phase, calls and API usage.
void record_step(const StepRecord &step);

// In one transaction: the result rows of every file, the keys paired, and the final record. The counts of
// `step.record` become the rows stored when all three kinds were downloaded.
void store_results(const StepRecord &step, const std::vector<ChunkResultFile> &files,
                   csv::Delimiter delimiter);

// An upload that ended without any result from Salesforce: its rows are stored as unprocessed, from the
// spool file itself (once: a second call after a crash finds them there).
void store_unsent_rows(const UploadKey &upload, const std::string &spool_file, csv::Delimiter delimiter);

// Marks an upload failed with `message` (the worker gave up on it locally).
void fail_upload(const UploadKey &upload, const std::string &message);

// Why these uploads wait (sf_bulk_jobs shows it while the job runs); their next step replaces it.
void note_waiting(const std::vector<UploadKey> &uploads, const std::string &note);

// Ends each job whose uploads have all ended (completed, failed or aborted). Returns the ended ones.
std::vector<std::int64_t> finish_jobs(const std::vector<std::int64_t> &job_ids);

// Purges ended jobs older than `retention_s` through sf_bulk.delete_jobs.
void purge_old_jobs(int retention_s);

// Which of these jobs have ended.
std::vector<std::int64_t> ended_jobs(const std::vector<std::int64_t> &job_ids);

}  // namespace job_store

}  // namespace sfb::pg
