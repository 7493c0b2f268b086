#include "core/core_only.h"
#pragma once

// The state machines that drive ONE Bulk API 2.0 query job (docs/bulk-api-2.md §9): QueryJobMachine creates
// the job, polls it, lists its result pages and finally has the pages loaded; QueryPageMachine downloads one
// result page to a file. One job machine per sf_bulk query job, one page machine per result page, so the
// worker can download several pages of a job in parallel, each as its own task.
//
// Pure, like IngestChunkMachine (ingest_machine.h): no I/O, no clock reads, no threads; one outstanding
// action at a time; the retry policy is retry.h's, the 401 rule is RefreshTokenThenRetryOnce with
// `needs_fresh_token`, and a machine built from the last COMMITTED record with resumed=true does the right
// thing at every step. The worker loop for the job:
//
//   QueryJobMachine m(job_record_from_db, spec, config, random, wall_clock, /*resumed=*/true);
//   for (;;) {
//       QueryJobAction a = m.next(now_ms(), abort_requested_for(job), page_progress_from_db(job));
//       switch (a.kind) {
//           case QueryActionKind::Persist:     // UPDATE the job row, INSERT a.new_pages; ONE commit
//               commit(a.record, a.new_pages);
//               m.persisted();
//               break;
//           case QueryActionKind::Http:        // add host + auth, send (never blocking the latch loop)
//               m.http_done(send(a.request), now_ms());   // or m.credentials_failed(...)
//               break;
//           case QueryActionKind::Load:        // COPY every page file into the table AND commit a.record
//               load_pages_and_commit(a.record);         // (step Done) in ONE transaction
//               m.persisted();
//               break;
//           case QueryActionKind::WaitUntil:   // serve other work; come back at a.wait_until_ms
//               park_until(a.wait_until_ms);
//               break;
//           case QueryActionKind::AwaitPages:  // come back when a page task of this job changed step
//               park_until_page_progress();
//               break;
//           case QueryActionKind::Finished:    // a.record is final and committed
//               remove_page_files(); return;
//       }
//   }
//
// and for each page row that is not Downloaded/Failed, as its own task:
//
//   QueryPageMachine p(page_record_from_db, page_spec, config.retry, random, wall_clock, /*resumed=*/true);
//   for (;;) {
//       QueryPageAction a = p.next(now_ms());
//       Persist -> UPDATE the page row, commit, p.persisted();  Http -> p.http_done(send(a.request), now);
//       WaitUntil -> park;  Finished -> tell the job task (its next() reads the new progress); return;
//   }
//
// Contract with the worker (besides the ingest machine's, which applies unchanged):
//  - PagesProgress is read from the committed page rows of the job: `known` = rows, `downloaded` = rows in
//    step Downloaded, `chain_open`/`next_locator` = locator paging only: the highest-numbered page is
//    Downloaded and has a next_locator, and no page follows it yet; `page_failure` = the first Failed page's
//    "page N: <error>".
//  - A page whose Salesforce answer is in doubt (step Downloading after a restart) is simply fetched again:
//    pages are repeatable (§9.3). The worker truncates the download file before each GET.
//  - When the job reaches a final step, the worker stops the job's page tasks (dropping them, as at a
//    shutdown) and removes the page files; the page machines know nothing about aborts.
//  - abort_requested must be durable (the job row): it is the persisted intent of the abort PATCH, so
//    an abort survives a restart without a step of its own.
//
// Crash points (a restart resumes from the last committed record):
//   Pending      nothing sent                                   -> persist Creating
//   Creating     POST create may or may not have made a job     -> POST again (see below)
//   Polling      job id known                                   -> GET the job (first poll at once)
//   Listing      JobComplete, API >= 58; page_list_url says which resultPages set comes next (nullopt: the
//                first); the pages of every earlier set were inserted with the record that advanced it
//                                                               -> GET that set again
//   Downloading  every page is known (or, API < 58, the chain is followed as pages reveal locators)
//                                                               -> wait for the page tasks
//   Loading      every page downloaded; load not committed      -> Load again (it is one transaction with
//                                                                  the step Done, so nothing was loaded)
//   Done / Failed / Aborted: final.
// Page: Pending -> Downloading (intent) -> GET -> Downloaded | Failed; Downloading on resume: GET again.
//
// Decisions where the protocol leaves a choice:
//  - Creating with no id after a restart: POST create again and abandon the job the first POST may have made.
//    A query job has no data side effect; the duplicate costs one of the 10,000 daily query jobs and some
//    result storage, and it cannot be told apart from the user's other jobs in the job list (same SOQL may be
//    running twice on purpose). For the same reason the create POST is judged as idempotent by the policy: a
//    lost answer (timeout, 500) is retried with the ordinary backoff budget instead of being reconciled.
//  - The Salesforce job is not DELETEd after Done/Failed/Aborted: Salesforce removes terminal jobs after
//    7 days anyway, a DELETE is one more API call against the daily allocation and one more step whose
//    failure cannot change the outcome, and a kept job can still be inspected by an admin (the ingest machine
//    does not delete its jobs either).
//  - resultPages (API >= 58) defines every page; the Sforce-Locator of such a page is ignored (it points at a
//    page the listing already has). Result URLs outside this job's results resource are refused (the job
//    fails), so a hostile or broken answer cannot point a GET elsewhere. maxRecords applies to locator paging
//    only (it is documented for /results, not for resultUrl links).
//  - Abort: PATCH Aborted only while Polling (the only step with a job that may still run); a 400/404 answer
//    means it ended meanwhile, and sf_bulk stops all the same. After JobComplete nothing remote is left to
//    stop, so the job ends Aborted at once with nothing loaded.
//  - A Failed page fails the job ("result page N: ..."): a result with a hole in it is not loaded.
//  - An unreadable 200 (create, job info, resultPages) fails the job instead of being retried: Salesforce
//    answers these in JSON, and a proxy page in their place is not something a retry budget fixes.
//  - AwaitPages (not WaitUntil) while pages download: there is no time to wait for, only page progress.

#include "core/bulk_api.h"
#include "core/ingest_machine.h"  // PollConfig, ChunkResponse, CallOutcome (shared with the ingest machine)
#include "core/retry.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sfb {

// ---- shared by both machines ------------------------------------------------------------------------------

enum class QueryRequestKind { CreateJob, GetJob, ListPages, Abort, FetchPage };
std::string_view to_string(QueryRequestKind k);

// One HTTP call for the worker to make; it adds instance_url, Authorization, Content-Type/Accept (§1).
struct QueryRequest {
    QueryRequestKind kind = QueryRequestKind::GetJob;
    HttpMethod method = HttpMethod::Get;
    std::string path;           // absolute path below instance_url
    std::string json_body;      // CreateJob, Abort; "" otherwise
    std::string download_file;  // FetchPage: write a 2xx body here (truncate first); never into memory
    bool idempotent = true;     // informational: the machine already decides retries itself
    // As ChunkRequest::needs_fresh_token: the one resend after 401 INVALID_SESSION_ID.
    bool needs_fresh_token = false;
};

// What happened to one QueryRequest: ChunkResponse (the same mapping from http.h's HttpResponse) plus the
// result-page headers and size.
struct QueryResponse : ChunkResponse {
    std::optional<std::string> sforce_locator;            // raw Sforce-Locator header
    std::optional<std::string> sforce_number_of_records;  // raw Sforce-NumberOfRecords header
    std::uint64_t body_bytes = 0;                         // HttpResponse::body_bytes (FetchPage)
};

enum class QueryActionKind { Persist, Http, Load, WaitUntil, AwaitPages, Finished };
std::string_view to_string(QueryActionKind k);

// ---- the job ----------------------------------------------------------------------------------------------

enum class QueryJobStep {
    Pending,      // nothing sent
    Creating,     // intent: POST create (no job id yet)
    Polling,      // job exists (sf_job_id); GET until terminal
    Listing,      // JobComplete, API >= 58: GET resultPages sets until done
    Downloading,  // pages known (or being revealed by the locator chain); page tasks download them
    Loading,      // intent: load all pages into the table, in one transaction with the step Done
    Done,         // final: rows loaded
    Failed,       // final: `error` says why
    Aborted,      // final: aborted by request or in Salesforce
};
std::string_view to_string(QueryJobStep s);  // "pending", "creating", ... "aborted"
std::optional<QueryJobStep> parse_query_job_step(std::string_view name);
bool is_final(QueryJobStep s);  // Done, Failed, Aborted

struct QueryJobRecord {
    QueryJobStep step = QueryJobStep::Pending;
    std::string sf_job_id;  // "" until known
    std::string sf_state;   // last Salesforce state seen, verbatim
    std::int64_t records_processed = 0;
    int attempts = 0;  // backoff retries used by the current remote step (kept across restarts)
    std::optional<std::int64_t> not_before_ms;
    std::string error;  // final error, or the transient problem being retried
    // Listing: the resultPages set to GET next (a nextRecordsUrl); nullopt = the first set.
    std::optional<std::string> page_list_url;
    // The resultPages listing has ended (always true below 58.0, which has no listing: there the locator
    // chain reveals one page after the other while Downloading).
    bool page_list_done = false;

    bool operator==(const QueryJobRecord &o) const;
    bool operator!=(const QueryJobRecord &o) const { return !(*this == o); }
};

// A page row to insert, in the same transaction as the record that comes with it.
struct QueryPageSpec {
    int page_no = 0;              // 1-based, dense
    std::string path_or_locator;  // a resultUrl (starts with '/'), or a locator ("" = the first page)

    bool operator==(const QueryPageSpec &o) const {
        return page_no == o.page_no && path_or_locator == o.path_or_locator;
    }
};

struct QueryJobSpec {
    ApiVersion api_version;  // the job's version, used for every call (§11)
    QueryJobRequest job;
};

struct QueryMachineConfig {
    RetryConfig retry;
    PollConfig poll;
};

// What the worker knows about the job's pages (from the committed page rows; see the contract above).
struct PagesProgress {
    int known = 0;
    int downloaded = 0;
    bool chain_open = false;
    std::string next_locator;                 // when chain_open: that page's next_locator
    std::optional<std::string> page_failure;  // "page N: <error>" of a Failed page
};

struct QueryJobAction {
    QueryActionKind kind = QueryActionKind::Finished;
    // Persist: commit this record (and insert new_pages) durably. Load: the record after the load (step
    // Done), committed with the loaded rows. Finished: the final record.
    QueryJobRecord record;
    std::vector<QueryPageSpec> new_pages;  // Persist
    QueryRequest request;                  // Http
    std::int64_t wait_until_ms = 0;        // WaitUntil
};

class QueryJobMachine {
  public:
    // In memory only; every instance starts in FollowStep, so an intent persisted earlier is never trusted.
    enum class State {
        FollowStep,  // next() acts on the durable step alone
        Aborting,    // abort requested and a job that may be running exists: PATCH Aborted is next
        Finished,    // the final record is committed: next() answers Finished
    };

    // `resumed`: the record was loaded after a restart (any step) rather than freshly made (step Pending; a
    // fresh machine with another step throws sfb::Error(InvalidParameter)). Throws InvalidParameter for an
    // invalid configuration or an API version below 47.
    QueryJobMachine(QueryJobRecord record, QueryJobSpec spec, QueryMachineConfig config, RandomSource random,
                    WallClock clock, bool resumed);

    // Throws sfb::Error(Internal) while an action is outstanding or for inconsistent progress, and
    // sfb::Error(InvalidParameter) when the record is corrupt (an invalid stored job id).
    QueryJobAction next(std::int64_t now_ms, bool abort_requested, const PagesProgress &pages);
    void persisted();  // the last Persist/Load is committed
    void http_done(const QueryResponse &response, std::int64_t now_ms);
    void credentials_failed(std::string code, std::string message, std::int64_t now_ms);
    // Instead of http_done(): the worker kept the pending create back (the org's allowance,
    // org_allowance.h) and sent nothing; the next next() decides again (an abort, or the create again).
    // Only the create can be withheld; anything else throws sfb::Error(Internal).
    void http_withheld();

    const QueryJobRecord &record() const { return rec_; }
    bool finished() const { return state_ == State::Finished; }
    State state() const { return state_; }

  private:
    enum class Call { None, Create, Poll, List, Abort };
    enum class Pending { None, Commit, Http };
    struct Commit {
        QueryJobRecord record;
        std::vector<QueryPageSpec> pages;
        bool load = false;
        std::optional<State> then;
    };

    QueryJobAction commit(Commit c);
    QueryJobAction persist(QueryJobRecord r, std::optional<State> then = std::nullopt,
                           std::vector<QueryPageSpec> pages = {});
    QueryJobAction http(Call call, QueryRequest req);
    QueryJobAction next_for_step(const PagesProgress &pages);
    QueryJobAction finish_now(QueryJobStep step, std::string error);
    void dispatch(Call call, const CallOutcome &o, std::int64_t now_ms);
    void on_create(const CallOutcome &o, std::int64_t now_ms);
    void on_poll(const CallOutcome &o, std::int64_t now_ms);
    void on_list(const CallOutcome &o, std::int64_t now_ms);
    void on_abort(const CallOutcome &o, std::int64_t now_ms);
    void track_job(const JobInfo &info, std::int64_t now_ms);
    void queue(QueryJobRecord r, std::optional<State> then = std::nullopt,
               std::vector<QueryPageSpec> pages = {});
    void queue_final(QueryJobStep step, std::string error);
    void retry_later(const RetryDecision &d, std::int64_t now_ms);
    void grow_poll_interval();

    QueryJobRecord rec_;
    QueryJobSpec spec_;
    QueryMachineConfig config_;
    RetryPolicy policy_;

    State state_ = State::FollowStep;
    Pending pending_ = Pending::None;
    Commit staged_;
    std::optional<Commit> outbox_;
    Call inflight_ = Call::None;
    std::optional<QueryRequest> resend_;
    RetryState retry_;
    Call last_call_ = Call::None;
    QueryRequest last_request_;
    std::int64_t poll_interval_ms_ = 0;
    int known_at_list_ = 0;  // Listing: pages known when the pending resultPages GET was issued
};

std::string_view to_string(QueryJobMachine::State s);

// ---- one result page --------------------------------------------------------------------------------------

enum class QueryPageStep {
    Pending,      // nothing sent
    Downloading,  // intent: GET the page; a restart GETs it again (pages are repeatable)
    Downloaded,   // final: the file holds the page
    Failed,       // final: `error` says why
};
std::string_view to_string(QueryPageStep s);  // "pending", "downloading", "downloaded", "failed"
std::optional<QueryPageStep> parse_query_page_step(std::string_view name);
bool is_final(QueryPageStep s);

struct QueryPageRecord {
    int page_no = 0;
    std::string path_or_locator;  // as QueryPageSpec
    QueryPageStep step = QueryPageStep::Pending;
    std::int64_t records = 0;  // Sforce-NumberOfRecords; -1 when the answer had no readable count
    std::int64_t bytes = 0;    // body bytes written to the download file
    // Locator paging only: the Sforce-Locator of this page; nullopt = last page ("null" or absent).
    std::optional<std::string> next_locator;
    int attempts = 0;
    std::optional<std::int64_t> not_before_ms;
    std::string error;

    bool operator==(const QueryPageRecord &o) const;
    bool operator!=(const QueryPageRecord &o) const { return !(*this == o); }
};

struct QueryPageMachineSpec {
    ApiVersion api_version;  // the job's version (a different one answers 409)
    std::string sf_job_id;
    std::optional<std::int64_t> page_size;  // maxRecords (locator paging only); positive when set
    std::string download_file;
};

struct QueryPageAction {
    QueryActionKind kind = QueryActionKind::Finished;  // Persist, Http, WaitUntil or Finished
    QueryPageRecord record;                            // Persist; Finished: the final record
    QueryRequest request;                              // Http
    std::int64_t wait_until_ms = 0;                    // WaitUntil
};

class QueryPageMachine {
  public:
    // `resumed` as for QueryJobMachine (a fresh page must be Pending). Throws InvalidParameter for an invalid
    // spec (job id, page size) or retry configuration.
    QueryPageMachine(QueryPageRecord record, QueryPageMachineSpec spec, RetryConfig retry,
                     RandomSource random, WallClock clock, bool resumed);

    QueryPageAction next(std::int64_t now_ms);
    void persisted();
    void http_done(const QueryResponse &response, std::int64_t now_ms);
    void credentials_failed(std::string code, std::string message, std::int64_t now_ms);

    const QueryPageRecord &record() const { return rec_; }
    bool finished() const { return finished_; }

  private:
    enum class Pending { None, Commit, Http };

    QueryPageAction persist(QueryPageRecord r);
    QueryRequest page_request() const;
    void on_answer(const CallOutcome &o, const QueryResponse *response, std::int64_t now_ms);
    void fail(std::string error);

    QueryPageRecord rec_;
    QueryPageMachineSpec spec_;
    RetryPolicy policy_;
    Pending pending_ = Pending::None;
    QueryPageRecord staged_;
    std::optional<QueryPageRecord> outbox_;
    std::optional<QueryRequest> resend_;
    RetryState retry_;
    QueryRequest last_request_;
    bool finished_ = false;
};

}  // namespace sfb
