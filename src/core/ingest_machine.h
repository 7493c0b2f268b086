#include "core/core_only.h"
#pragma once

// The state machine that drives ONE ingest chunk (one spool file = one Salesforce ingest job) through Bulk
// API 2.0: create -> PUT -> UploadComplete -> poll -> download the three result files -> store
// (design.md §2, bulk-api-2.md §4-§6, engineering.md §(b) "Crash and restart semantics").
//
// Pure: no I/O, no clock reads (time comes in as an argument), no threads. The worker performs what the
// machine asks for and reports back. A worker loop for one chunk:
//
//   IngestChunkMachine m(record_from_db, spec, config, random, wall_clock, /*resumed=*/true);
//   for (;;) {
//       ChunkAction a = m.next(now_ms(), abort_requested_for(job));
//       switch (a.kind) {
//           case ChunkActionKind::Persist:  // UPDATE sf_bulk.chunks, COMMIT
//               commit(a.record);
//               m.persisted();
//               break;
//           case ChunkActionKind::Http:  // add host + auth, send (never blocking the latch loop)
//               m.http_done(send(a.request), now_ms());
//               break;
//           case ChunkActionKind::StoreResults:  // result rows + a.record in ONE transaction
//               store(a.result_files, a.record);
//               m.persisted();
//               break;
//           case ChunkActionKind::WaitUntil:  // serve other chunks; come back at a.wait_until_ms
//               park_until(a.wait_until_ms);
//               break;
//           case ChunkActionKind::Finished:  // a.record is final and committed
//               delete_spool_file();
//               return;
//       }
//   }
//
// Contract with the worker:
//  - Exactly one outstanding action at a time: after Persist/StoreResults call persisted(), after Http
//    call http_done() or credentials_failed(); next() in between (or a misplaced callback) throws
//    sfb::Error(Internal).
//  - If anything goes wrong on the worker's side (a commit fails, the process dies, a transfer is
//    cancelled at shutdown), it drops the machine and builds a new one from the last COMMITTED record with
//    resumed=true. Never report a transfer cancelled by our own shutdown through http_done(): the policy
//    would fail the chunk; dropping the machine makes the persisted step resume instead.
//  - Tokens: the worker adds a token to every Http request and reports every answer, 401s included. The
//    machine owns the 401 rule (retry.h's RefreshTokenThenRetryOnce): after a 401 INVALID_SESSION_ID the
//    next next() returns the same request again with `needs_fresh_token` set, and the worker must send it
//    only with a token newer than the one that was refused (drop a cached token, fetch a new one). A second
//    401 on the same logical request fails it.
//  - When the worker cannot obtain a token at all for the pending Http action (login refused, credentials or
//    server unusable), it calls credentials_failed() instead of http_done(); the chunk then fails as after
//    a definite refusal of that call, with "<code>: <message>" as the reason.
//  - abort_requested must be durable (it comes from the job row), so an abort survives restarts; the
//    machine persists its own intent on top of that.

#include "core/bulk_api.h"
#include "core/retry.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sfb {

// Steps of sf_bulk.chunks.step. "-ing" steps are persisted intents recorded BEFORE a remote side effect whose
// outcome is then recorded in the following step.
enum class ChunkStep {
    Spooled,     // spool file ready, nothing sent
    Creating,    // intent: POST create (no job id yet)
    Created,     // job exists (sf_job_id), nothing uploaded
    Uploading,   // intent: PUT the spool file; outcome unknown until Uploaded
    Uploaded,    // PUT answered 201
    Closing,     // intent: PATCH UploadComplete
    Processing,  // closed; polling
    Fetching,    // Salesforce job terminal; downloading the three result files
    Done,        // final: JobComplete, results stored
    Failed,      // final: Salesforce job Failed, or sf_bulk gave up; `error` says why
    Aborted,     // final: aborted (by request or in Salesforce)
};
std::string_view to_string(ChunkStep s);  // "spooled", "creating", ... "aborted"
std::optional<ChunkStep> parse_chunk_step(std::string_view name);
bool is_final(ChunkStep s);  // Done, Failed, Aborted

// One row of sf_bulk.chunks: the machine's whole durable state.
struct ChunkRecord {
    ChunkStep step = ChunkStep::Spooled;
    std::string sf_job_id;  // "" until known
    std::string sf_state;   // last Salesforce state seen, verbatim ("" until known)
    std::int64_t records_processed = 0;
    std::int64_t records_failed = 0;
    // Backoff retries used by the current remote step (its retry budget, kept across restarts so a crash loop
    // cannot retry forever); 0 after the step succeeds. Daily-limit waits do not count.
    int attempts = 0;
    std::optional<std::int64_t> not_before_ms;  // don't act before (backoff, limit window, poll interval)
    std::string error;  // final error (Failed/Aborted), a transient problem being retried, or result notes
    std::vector<std::string>
        replaced_sf_job_ids;  // jobs aborted and replaced after an unknown upload outcome

    bool operator==(const ChunkRecord &o) const;
    bool operator!=(const ChunkRecord &o) const { return !(*this == o); }
};

// Everything about the chunk that does not change while it runs.
struct ChunkSpec {
    ApiVersion api_version;  // the job's version, used for every call (§11)
    IngestJobRequest job;    // object, operation, external id, delimiter, line ending, assignment rule
    std::string spool_path;  // the CSV to upload (header included, <= 100 MB)
    // Where the worker writes the 2xx bodies of the three result downloads (truncating any earlier content).
    std::string successful_results_path;
    std::string failed_results_path;
    std::string unprocessed_results_path;
};

// Job polling (§5.4: start at 1-2 s, grow to <= 30 s). Not jittered: each job is polled on its own schedule
// already, and a steady cadence makes progress updates predictable.
struct PollConfig {
    std::int64_t first_ms = 2000;
    std::int64_t max_ms = 30000;
    double growth = 1.5;  // >= 1
};

struct IngestMachineConfig {
    RetryConfig retry;
    PollConfig poll;
    // How many Salesforce jobs may be aborted and replaced after uploads with an unknown outcome before the
    // chunk fails (a flaky link must not create jobs forever).
    int max_replacements = 3;
};

enum class ChunkRequestKind { CreateJob, Upload, Close, Abort, GetJob, FetchResult };
std::string_view to_string(ChunkRequestKind k);

// One HTTP call for the worker to make. The worker adds instance_url, Authorization, Content-Type/Accept
// (bulk-api-2.md §1) and sends it.
struct ChunkRequest {
    ChunkRequestKind kind = ChunkRequestKind::GetJob;
    HttpMethod method = HttpMethod::Get;
    std::string path;         // absolute path below instance_url, from bulk_api.h path builders
    std::string json_body;    // CreateJob, Close, Abort: the JSON body; "" otherwise
    std::string upload_file;  // Upload: stream the body from this file (text/csv)
    IngestResult result = IngestResult::Successful;  // FetchResult: which file
    std::string download_file;  // FetchResult: write a 2xx body here (truncate first); never into memory
    bool idempotent = true;     // informational: the machine already decides retries itself
    // Send only with an access token newer than the one a 401 just refused for this very request (the
    // resend after 401 INVALID_SESSION_ID). Nothing else differs from the refused request: Salesforce did
    // not process it, so resending is right even for a non-idempotent call.
    bool needs_fresh_token = false;
};

// What happened to one ChunkRequest (maps 1:1 from http.h's HttpResponse).
struct ChunkResponse {
    TransportError transport = TransportError::None;
    bool request_sent = false;  // some byte may have reached the server (err towards true)
    int status = 0;             // when transport == None
    // JSON calls: the body. Downloads: "" on 2xx (it went to download_file); any non-2xx: the (bounded) error
    // body, which the machine parses for Salesforce's errorCode/message.
    std::string body;
    std::optional<std::string> retry_after;  // raw Retry-After header
};

enum class ChunkActionKind { Persist, Http, StoreResults, WaitUntil, Finished };
std::string_view to_string(ChunkActionKind k);

struct ChunkResultFile {
    IngestResult kind;
    std::string path;
};

struct ChunkAction {
    ChunkActionKind kind = ChunkActionKind::Finished;
    // Persist: commit this record durably. StoreResults: the final record (record.step is Done, Failed or
    // Aborted) to commit in the same transaction as the result rows. Finished: the final record.
    ChunkRecord record;
    ChunkRequest request;  // Http
    // StoreResults: the files that were downloaded (2xx) in this run, complete. A kind that is absent has no
    // rows to store (404: never had data / already deleted; see `record.error` for notes). Ignore any other
    // file that may exist on disk.
    std::vector<ChunkResultFile> result_files;
    std::int64_t wait_until_ms = 0;  // WaitUntil
};

class IngestChunkMachine {
  public:
    // `resumed`: the record was loaded after a restart (any step) rather than freshly made (step Spooled; a
    // fresh machine with another step is a worker bug and throws sfb::Error(InvalidParameter)). Either way
    // the machine never trusts an intent step persisted by an earlier instance: Creating, Uploading and
    // Closing are resolved as "outcome unknown". `random` and `clock` feed the RetryPolicy (jitter,
    // Retry-After dates). Throws sfb::Error(InvalidParameter) for an invalid configuration.
    IngestChunkMachine(ChunkRecord record, ChunkSpec spec, IngestMachineConfig config, RandomSource random,
                       WallClock clock, bool resumed);

    // The next thing to do. `abort_requested`: the user asked to abort this job (sf_bulk_abort). May throw
    // sfb::Error if the record is corrupt (an invalid stored job id) or on protocol misuse.
    ChunkAction next(std::int64_t now_ms, bool abort_requested);
    // The last Persist/StoreResults record is committed.
    void persisted();
    // The outcome of the last Http action; `now_ms` is when it completed.
    void http_done(const ChunkResponse &response, std::int64_t now_ms);
    // Instead of http_done(): the worker could not obtain an access token for the pending Http action, so
    // the request was never sent. `code` and `message` say why (an OAuth error such as "invalid_grant", or
    // the worker's own code); they must hold no secret. The call fails definitively: the chunk ends as
    // after a refusal of that call, with "<code>: <message>" (or just the message when `code` is empty).
    void credentials_failed(std::string code, std::string message, std::int64_t now_ms);

    // The last committed record (plus, while polling without changes, an in-memory not_before).
    const ChunkRecord &record() const { return rec_; }
    bool finished() const { return finished_; }

  private:
    enum class Call {
        None,
        Create,
        Upload,
        Close,
        CloseCheck,    // GET after a close with unknown outcome
        Poll,          // GET while Processing
        AbortReplace,  // PATCH Aborted on a job whose upload outcome is unknown, before replacing it
        AbortUser,     // PATCH Aborted because the user asked
        AbortCheck,    // GET after the user abort was refused (job already terminal?)
        AbortFailing,  // best-effort PATCH Aborted before failing the chunk
        Fetch,
    };
    enum class AfterAck { None, AllowPut, AllowClose, Finish };
    enum class Pending { None, Persist, Http, Store };

    // What one answer (or the failure to obtain a token for it) means to the handler of the pending call.
    struct Outcome {
        RetryDecision decision;  // the policy's; Fail when no token could be obtained
        bool transient = false;  // RetryAfterBackoff or WaitForLimitWindow
        std::string fail_text;   // the reason users see when this answer ends the call
        std::string retry_text;  // the reason of an unknown or transient outcome (replacement note)
        int status = 0;          // HTTP status of a complete response; 0 otherwise
        std::string error_code;  // Salesforce's first errorCode of a non-2xx body
        std::string body;        // the 2xx body of a JSON call
    };
    Outcome evaluate(const ChunkResponse &response, Call call);
    void apply(Call call, const Outcome &outcome, std::int64_t now_ms);

    ChunkAction persist(ChunkRecord r, AfterAck after);
    ChunkAction http(Call call, ChunkRequest req);
    ChunkAction store_results();
    ChunkRequest abort_request() const;
    ChunkRequest get_job_request() const;

    void queue(ChunkRecord r, AfterAck after);
    void retry_later(const RetryDecision &d, std::int64_t now_ms);
    void retry_unknown(const std::string &reason, std::int64_t now_ms, bool &gave_up);
    void start_failing(std::string reason);
    void enter_fetching(const JobInfo *info, std::string error);
    void enter_processing(const JobInfo &info, std::int64_t now_ms);
    void finish_replacement(std::int64_t now_ms);
    void apply_counters(ChunkRecord &r, const JobInfo &info) const;
    void on_poll(const JobInfo &info, std::int64_t now_ms);
    void grow_poll_interval();

    ChunkRecord rec_;
    ChunkSpec spec_;
    IngestMachineConfig config_;
    RandomSource random_;
    RetryPolicy policy_;

    Pending pending_ = Pending::None;
    ChunkRecord staged_;
    AfterAck staged_after_ = AfterAck::None;
    std::optional<ChunkRecord> queued_;  // an outcome recorded by http_done, persisted by the next next()
    AfterAck queued_after_ = AfterAck::None;
    bool store_queued_ = false;  // StoreResults with no files (failure after a job existed)
    ChunkRecord store_record_;

    Call inflight_ = Call::None;
    Call last_call_ = Call::None;
    RetryState retry_;
    bool first_call_ = true;
    ChunkRequest last_request_;           // the request of the last Http action, for a resend
    std::optional<ChunkRequest> resend_;  // after a 401: that request again, with needs_fresh_token

    bool put_allowed_ = false;    // Uploading persisted by THIS instance and no PUT sent yet
    bool close_allowed_ = false;  // Closing persisted by THIS instance (or GET saw Open) and no PATCH pending
    bool user_abort_ = false;
    bool abort_check_ = false;
    int abort_rounds_ = 0;
    int close_rounds_ = 0;
    bool failing_ = false;
    std::string fail_reason_;
    std::string replace_reason_;
    std::optional<std::int64_t> replace_not_before_;
    std::int64_t poll_interval_ms_ = 0;
    std::size_t fetch_index_ = 0;
    std::vector<ChunkResultFile> fetched_;
    std::string fetch_notes_;
    bool finished_ = false;
};

}  // namespace sfb
