#include "core/core_only.h"
#pragma once

// The state machine that drives ONE ingest chunk (one spool file = one Salesforce ingest job) through Bulk
// API 2.0: create -> PUT -> UploadComplete -> poll -> download the three result files -> store
// (docs/architecture.md §2-§3, docs/bulk-api-2.md §5-§7).
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
// (docs/bulk-api-2.md §2.2) and sends it.
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

// What one answer (or the failure to obtain a token for it) means to the machine that made the call, once
// the one retry policy has judged it. Shared by the ingest and query machines so that both word failures
// alike ("CODE: message" verbatim, "gave up after ...", the endpoint of a transport failure).
struct CallOutcome {
    RetryDecision decision;  // the policy's; Fail when no token could be obtained
    bool transient = false;  // RetryAfterBackoff or WaitForLimitWindow
    std::string fail_text;   // the reason users see when this answer ends the call
    std::string retry_text;  // the reason of an unknown or transient outcome
    int status = 0;          // HTTP status of a complete response; 0 otherwise
    std::string error_code;  // Salesforce's first errorCode of a non-2xx body
    std::string body;        // the 2xx body of a JSON call
};
// Runs `policy.decide` once for this attempt (so `state` counts it) and words the result.
CallOutcome evaluate_call(const ChunkResponse &response, bool idempotent, const RetryPolicy &policy,
                          RetryState &state);
// The outcome of a call that could not be sent because no access token could be obtained: a definite
// failure with "<code>: <message>" (or just the message when `code` is empty).
CallOutcome credentials_outcome(std::string code, std::string message);

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
    // What the machine does next, on top of the durable step (record().step). In memory only: every instance
    // starts in FollowStep, so an intent that an earlier instance persisted is
    // never trusted after a restart. Independent of it: which callback the worker owes (one outstanding
    // action), an outcome waiting to be committed by the next next(), and the one resend after a 401.
    enum class State {
        // next() acts on the step alone: Spooled, Created, Uploaded -> persist the next intent (Creating,
        // Uploading, Closing); Creating -> POST create; Uploading -> abort that job and replace it (the
        // outcome
        // of its PUT is unknown); Closing -> GET the job (did the PATCH land?); Processing -> poll;
        // Fetching -> the next result download, then StoreResults.
        FollowStep,
        // Step Uploading, committed by THIS instance for this job id, PUT not sent yet: the one PUT is next.
        MayPut,
        // Step Closing, and the job is known to be Open (or our PATCH was refused before processing, e.g.
        // 503):
        // PATCH UploadComplete is next, at most max_attempts rounds.
        MayClose,
        // The user asked to abort and a Salesforce job exists: PATCH Aborted is next, then the results.
        AbortingByRequest,
        // That PATCH was refused (400/404): GET the job, which probably ended already.
        CheckingAbort,
        // sf_bulk gives up on an existing job: best-effort PATCH Aborted, then StoreResults with the final
        // Failed record (the reason kept since the decision) and no files.
        Failing,
        // The final record is committed: next() answers Finished.
        Finished,
    };

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
    // Instead of http_done(): the worker kept the pending create back (the org's API reserve,
    // org_allowance.h) and sent nothing. The machine forgets the call; the next next() decides again from
    // the same step — an abort ends the chunk without a Salesforce job, otherwise the create comes again.
    // Only a create can be withheld (every other call belongs to a job that exists and goes on); anything
    // else throws sfb::Error(Internal).
    void http_withheld();

    // The last committed record (plus, while polling without changes, an in-memory not_before).
    const ChunkRecord &record() const { return rec_; }
    bool finished() const { return state_ == State::Finished; }
    State state() const { return state_; }

  private:
    // The calls the machine makes; each answer goes to its own handler (on_create ... on_fetch).
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
    // The callback the worker owes for the last action.
    enum class Pending { None, Commit, Http };

    // A record to commit: Persist, or StoreResults (final record plus result rows in one transaction).
    struct Commit {
        ChunkRecord record;
        std::optional<State> then;           // the state to enter once it is committed; nullopt: unchanged
        bool with_results = false;           // StoreResults rather than Persist
        std::vector<ChunkResultFile> files;  // StoreResults: the downloaded files
    };

    // What one answer (or the failure to obtain a token for it) means to the handler of the pending call.
    using Outcome = CallOutcome;

    ChunkAction commit(Commit c);
    ChunkAction persist(ChunkRecord r, std::optional<State> then = std::nullopt);
    ChunkAction http(Call call, ChunkRequest req);
    ChunkAction store_results();
    ChunkAction next_for_step();
    ChunkRequest abort_request() const;
    ChunkRequest get_job_request() const;
    const std::string &result_path(IngestResult kind) const;

    Outcome evaluate(const ChunkResponse &response, Call call);
    void dispatch(Call call, const Outcome &o, std::int64_t now_ms);
    void on_create(const Outcome &o, std::int64_t now_ms);
    void on_upload(const Outcome &o, std::int64_t now_ms);
    void on_close(const Outcome &o, std::int64_t now_ms);
    void on_close_check(const Outcome &o, std::int64_t now_ms);
    void on_poll(const Outcome &o, std::int64_t now_ms);
    void on_abort_replace(const Outcome &o, std::int64_t now_ms);
    void on_abort_user(const Outcome &o, std::int64_t now_ms);
    void on_abort_check(const Outcome &o, std::int64_t now_ms);
    void on_abort_failing(const Outcome &o, std::int64_t now_ms);
    void on_fetch(const Outcome &o, std::int64_t now_ms);

    void queue(ChunkRecord r, std::optional<State> then = std::nullopt);
    void queue_final_without_results(ChunkStep step, std::string error);
    void retry_later(const RetryDecision &d, std::int64_t now_ms);
    bool retry_unknown(const std::string &reason, std::int64_t now_ms);
    void start_failing(std::string reason);
    bool read_job(const Outcome &o, std::int64_t now_ms, JobInfo &info);
    void enter_fetching(const JobInfo *info, std::string error);
    void enter_processing(const JobInfo &info, std::int64_t now_ms);
    void finish_replacement(std::int64_t now_ms);
    void apply_counters(ChunkRecord &r, const JobInfo &info) const;
    void track_job(const JobInfo &info, std::int64_t now_ms);
    void grow_poll_interval();

    ChunkRecord rec_;
    ChunkSpec spec_;
    IngestMachineConfig config_;
    RandomSource random_;
    RetryPolicy policy_;

    State state_ = State::FollowStep;
    Pending pending_ = Pending::None;
    Commit staged_;                       // handed out, awaiting persisted()
    std::optional<Commit> outbox_;        // an outcome recorded by http_done, committed by the next next()
    Call inflight_ = Call::None;          // the call of the pending Http action
    std::optional<ChunkRequest> resend_;  // after a 401: that request again, with needs_fresh_token

    // The retry budget of the current logical request, and which call and request it belongs to.
    RetryState retry_;
    Call last_call_ = Call::None;  // None: no call yet, so retry_ continues the persisted budget
    ChunkRequest last_request_;

    // Data of some states and steps.
    int close_rounds_ = 0;        // UploadComplete PATCHes sent (MayClose)
    int abort_rounds_ = 0;        // abort PATCHes answered "still running" (CheckingAbort)
    std::string fail_reason_;     // Failing: the final error
    std::string replace_reason_;  // Uploading: why the job is replaced
    std::optional<std::int64_t> replace_not_before_;  // Uploading: when the new job may be created
    std::int64_t poll_interval_ms_ = 0;
    std::size_t fetch_index_ = 0;  // Fetching: the next of the three result files
    std::vector<ChunkResultFile> fetched_;
    std::string fetch_notes_;
};

std::string_view to_string(IngestChunkMachine::State s);  // "follow-step", "may-put", ... "finished"

}  // namespace sfb
