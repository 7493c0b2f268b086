#include "core/ingest_machine.h"

#include "core/error.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <utility>

namespace sfb {

namespace {

constexpr std::array<std::string_view, 11> kStepNames = {
    "spooled",    "creating", "created", "uploading", "uploaded", "closing",
    "processing", "fetching", "done",    "failed",    "aborted",
};

constexpr std::array<IngestResult, 3> kResultOrder = {IngestResult::Successful, IngestResult::Failed,
                                                      IngestResult::Unprocessed};

std::string_view result_name(IngestResult k) {
    switch (k) {
        case IngestResult::Successful:
            return "successfulResults";
        case IngestResult::Failed:
            return "failedResults";
        case IngestResult::Unprocessed:
            return "unprocessedrecords";
    }
    return "results";
}

ChunkStep final_step_for(const std::string &sf_state) {
    // Fetching is only entered with a terminal Salesforce state, except on abort paths where the job could
    // not be read back; those end as Aborted.
    const JobState s = parse_job_state(sf_state);
    if (s == JobState::JobComplete) {
        return ChunkStep::Done;
    }
    if (s == JobState::Failed) {
        return ChunkStep::Failed;
    }
    return ChunkStep::Aborted;
}

// The text users see for a failed call: Salesforce's own "CODE: message" when the body had one (the form
// users can search for), otherwise what the policy said (transport error, status, "gave up after ...").
// A transport failure's reason names only its kind ("could not connect"); the HTTP layer's message says
// which endpoint and why (it never holds credentials). Users need both to fix a wrong URL or a firewall.
std::string with_transport_detail(std::string reason, const ChunkResponse &r) {
    if (r.transport != TransportError::None && !r.body.empty()) {
        reason += " (" + r.body + ")";
    }
    return reason;
}

std::string failure_text(const ChunkResponse &r, const ApiError &err, const RetryDecision &d) {
    if (d.reason.rfind("gave up", 0) == 0) {
        return with_transport_detail(d.reason, r);
    }
    if (r.transport == TransportError::None && !err.items.empty()) {
        std::string s;
        for (const auto &it : err.items) {
            if (!s.empty()) {
                s += "; ";
            }
            s += it.error_code.empty() ? it.message : it.error_code + ": " + it.message;
        }
        return s;
    }
    if (r.transport == TransportError::None) {
        return err.summary();
    }
    return with_transport_detail(d.reason, r);
}

std::string transient_text(const ChunkResponse &r, const ApiError &err, const RetryDecision &d) {
    if (r.transport == TransportError::None) {
        return err.summary();
    }
    return d.reason;  // the caller has added the transport detail to it already
}

}  // namespace

CallOutcome evaluate_call(const ChunkResponse &response, bool idempotent, const RetryPolicy &policy,
                          RetryState &state) {
    AttemptOutcome ao;
    ao.transport = response.transport;
    ao.request_sent = response.request_sent;
    ao.retry_after = response.retry_after;
    ApiError err;
    if (response.transport == TransportError::None) {
        ao.status = response.status;
        if (response.status < 200 || response.status >= 300) {
            err = parse_api_error(response.status, response.body);
            ao.error_code = err.first_code();
            ao.error_message = err.first_message();
        }
    }
    CallOutcome o;
    o.decision = policy.decide(ao, idempotent, state);
    RetryDecision &d = o.decision;
    o.transient = d.action == RetryAction::RetryAfterBackoff || d.action == RetryAction::WaitForLimitWindow;
    o.fail_text = failure_text(response, err, d);
    if (d.action == RetryAction::Fail && classify(ao, idempotent) == RetryAction::RefreshTokenThenRetryOnce) {
        // The policy refused a second refresh for this request: its reason says so ("again after refreshing
        // the access token"), which Salesforce's text alone would hide.
        o.fail_text = d.reason;
    }
    // What a retry records as the live reason names the endpoint too (failure_text has it already).
    d.reason = with_transport_detail(d.reason, response);
    o.retry_text = transient_text(response, err, d);
    if (response.transport == TransportError::None) {
        o.status = response.status;
    }
    o.error_code = err.first_code();
    o.body = response.body;
    return o;
}

CallOutcome credentials_outcome(std::string code, std::string message) {
    // The text has the form of a Salesforce error item ("<code>: <message>", see failure_text), which users
    // and tests rely on.
    CallOutcome o;
    o.decision.action = RetryAction::Fail;
    o.fail_text = code.empty() ? std::move(message) : std::move(code) + ": " + message;
    if (o.fail_text.empty()) {
        o.fail_text = "no access token could be obtained";
    }
    o.decision.reason = o.fail_text;
    return o;
}

std::string_view to_string(ChunkStep s) {
    return kStepNames[static_cast<std::size_t>(s)];
}

std::optional<ChunkStep> parse_chunk_step(std::string_view name) {
    for (std::size_t i = 0; i < kStepNames.size(); ++i) {
        if (kStepNames[i] == name) {
            return static_cast<ChunkStep>(i);
        }
    }
    return std::nullopt;
}

bool is_final(ChunkStep s) {
    return s == ChunkStep::Done || s == ChunkStep::Failed || s == ChunkStep::Aborted;
}

bool ChunkRecord::operator==(const ChunkRecord &o) const {
    return step == o.step && sf_job_id == o.sf_job_id && sf_state == o.sf_state &&
           records_processed == o.records_processed && records_failed == o.records_failed &&
           attempts == o.attempts && not_before_ms == o.not_before_ms && error == o.error &&
           replaced_sf_job_ids == o.replaced_sf_job_ids;
}

std::string_view to_string(ChunkRequestKind k) {
    switch (k) {
        case ChunkRequestKind::CreateJob:
            return "CreateJob";
        case ChunkRequestKind::Upload:
            return "Upload";
        case ChunkRequestKind::Close:
            return "Close";
        case ChunkRequestKind::Abort:
            return "Abort";
        case ChunkRequestKind::GetJob:
            return "GetJob";
        case ChunkRequestKind::FetchResult:
            return "FetchResult";
    }
    return "unknown";
}

std::string_view to_string(IngestChunkMachine::State s) {
    using State = IngestChunkMachine::State;
    switch (s) {
        case State::FollowStep:
            return "follow-step";
        case State::MayPut:
            return "may-put";
        case State::MayClose:
            return "may-close";
        case State::AbortingByRequest:
            return "aborting-by-request";
        case State::CheckingAbort:
            return "checking-abort";
        case State::Failing:
            return "failing";
        case State::Finished:
            return "finished";
    }
    return "unknown";
}

std::string_view to_string(ChunkActionKind k) {
    switch (k) {
        case ChunkActionKind::Persist:
            return "Persist";
        case ChunkActionKind::Http:
            return "Http";
        case ChunkActionKind::StoreResults:
            return "StoreResults";
        case ChunkActionKind::WaitUntil:
            return "WaitUntil";
        case ChunkActionKind::Finished:
            return "Finished";
    }
    return "unknown";
}

IngestChunkMachine::IngestChunkMachine(ChunkRecord record, ChunkSpec spec, IngestMachineConfig config,
                                       RandomSource random, WallClock clock, bool resumed)
    : rec_(std::move(record)),
      spec_(std::move(spec)),
      config_(config),
      random_(random),
      policy_(config.retry, std::move(random), std::move(clock)) {
    const PollConfig &p = config_.poll;
    if (p.first_ms <= 0 || p.max_ms < p.first_ms || !(p.growth >= 1.0) || config_.max_replacements < 0) {
        throw Error(ErrorKind::InvalidParameter,
                    "invalid ingest machine configuration: need 0 < poll first <= max, growth >= 1, "
                    "max_replacements >= 0");
    }
    if (!resumed && rec_.step != ChunkStep::Spooled) {
        throw Error(ErrorKind::InvalidParameter, "a new chunk must start in step spooled, not " +
                                                     std::string(to_string(rec_.step)) +
                                                     "; pass resumed=true for a loaded record");
    }
    poll_interval_ms_ = p.first_ms;
    // The retry budget of the step in progress survives restarts, so a crash loop cannot retry forever.
    retry_.attempts = std::max(0, rec_.attempts);
    retry_.backoff_retries = retry_.attempts;
}

// ---- action builders --------------------------------------------------------------------------------------

ChunkAction IngestChunkMachine::commit(Commit c) {
    ChunkAction a;
    a.kind = c.with_results ? ChunkActionKind::StoreResults : ChunkActionKind::Persist;
    a.record = c.record;
    a.result_files = c.files;
    staged_ = std::move(c);
    pending_ = Pending::Commit;
    return a;
}

ChunkAction IngestChunkMachine::persist(ChunkRecord r, std::optional<State> then) {
    return commit(Commit{std::move(r), then, false, {}});
}

ChunkAction IngestChunkMachine::http(Call call, ChunkRequest req) {
    // A new kind of call starts a new logical request: fresh retry budget (except the first call after
    // construction, which continues the persisted one).
    if (call != last_call_ && last_call_ != Call::None) {
        retry_ = RetryState{};
    }
    last_call_ = call;
    inflight_ = call;
    pending_ = Pending::Http;
    last_request_ = req;
    ChunkAction a;
    a.kind = ChunkActionKind::Http;
    a.request = std::move(req);
    return a;
}

ChunkAction IngestChunkMachine::store_results() {
    ChunkRecord r = rec_;
    r.step = final_step_for(rec_.sf_state);
    r.attempts = 0;
    r.not_before_ms.reset();
    if (!fetch_notes_.empty()) {
        r.error += (r.error.empty() ? "" : "; ") + fetch_notes_;
    }
    return commit(Commit{std::move(r), State::Finished, true, fetched_});
}

ChunkRequest IngestChunkMachine::abort_request() const {
    ChunkRequest q;
    q.kind = ChunkRequestKind::Abort;
    q.method = HttpMethod::Patch;
    q.path = ingest_job_path(spec_.api_version, rec_.sf_job_id);
    q.json_body = state_change_body(JobState::Aborted);
    q.idempotent = bulk_method_is_idempotent(HttpMethod::Patch);
    return q;
}

ChunkRequest IngestChunkMachine::get_job_request() const {
    ChunkRequest q;
    q.kind = ChunkRequestKind::GetJob;
    q.method = HttpMethod::Get;
    q.path = ingest_job_path(spec_.api_version, rec_.sf_job_id);
    q.idempotent = true;
    return q;
}

const std::string &IngestChunkMachine::result_path(IngestResult kind) const {
    return kind == IngestResult::Successful ? spec_.successful_results_path
           : kind == IngestResult::Failed   ? spec_.failed_results_path
                                            : spec_.unprocessed_results_path;
}

// ---- next() -----------------------------------------------------------------------------------------------

ChunkAction IngestChunkMachine::next(std::int64_t now_ms, bool abort_requested) {
    if (pending_ != Pending::None) {
        throw Error(ErrorKind::Internal, "ingest machine: next() called while an action is outstanding");
    }
    if (state_ == State::Finished) {
        ChunkAction a;
        a.kind = ChunkActionKind::Finished;
        a.record = rec_;
        return a;
    }
    if (resend_) {
        // The 401 resend comes before anything else (an abort, a wait): it completes the call whose answer
        // the machine has not accepted yet.
        ChunkRequest q = std::move(*resend_);
        resend_.reset();
        return http(last_call_, std::move(q));
    }
    // Outcomes first: what a remote call did must be durable before anything else happens (also an abort).
    if (outbox_) {
        Commit c = std::move(*outbox_);
        outbox_.reset();
        return commit(std::move(c));
    }
    if (is_final(rec_.step)) {
        state_ = State::Finished;
        return next(now_ms, abort_requested);
    }

    const bool aborting = state_ == State::AbortingByRequest || state_ == State::CheckingAbort;
    if (abort_requested && !aborting && state_ != State::Failing && rec_.step != ChunkStep::Fetching) {
        ChunkRecord r = rec_;
        r.attempts = 0;
        r.not_before_ms.reset();
        if (rec_.sf_job_id.empty()) {
            // Spooled, or Creating whose POST may have created an Open job we never learnt about: such a job
            // holds no data and is never uploaded to, so there is nothing to abort remotely.
            r.step = ChunkStep::Aborted;
            r.error = "aborted by request before a Salesforce job was created";
            return persist(std::move(r), State::Finished);
        }
        // Also ends MayPut and MayClose: an aborted job is neither uploaded to nor closed.
        state_ = State::AbortingByRequest;
        r.error = "abort requested; aborting Salesforce job " + rec_.sf_job_id;
        return persist(std::move(r));
    }

    if (rec_.not_before_ms && *rec_.not_before_ms > now_ms) {
        ChunkAction a;
        a.kind = ChunkActionKind::WaitUntil;
        a.wait_until_ms = *rec_.not_before_ms;
        return a;
    }

    switch (state_) {
        case State::Failing:
            return http(Call::AbortFailing, abort_request());
        case State::AbortingByRequest:
            return http(Call::AbortUser, abort_request());
        case State::CheckingAbort:
            return http(Call::AbortCheck, get_job_request());
        case State::MayPut: {
            // The only place a PUT is ever built, and only right after THIS instance committed the
            // Uploading intent for this job id: at most one PUT per Salesforce job (§5.2).
            state_ = State::FollowStep;
            ChunkRequest q;
            q.kind = ChunkRequestKind::Upload;
            q.method = HttpMethod::Put;
            q.path = ingest_batches_path(spec_.api_version, rec_.sf_job_id);
            q.upload_file = spec_.spool_path;
            q.idempotent = bulk_method_is_idempotent(HttpMethod::Put);
            return http(Call::Upload, std::move(q));
        }
        case State::MayClose: {
            state_ = State::FollowStep;
            // A job that keeps answering "Open" after our PATCHes would otherwise loop forever (each round
            // starts a fresh retry budget).
            if (++close_rounds_ > config_.retry.max_attempts) {
                start_failing("the Salesforce job " + rec_.sf_job_id + " is still Open after " +
                              std::to_string(close_rounds_ - 1) + " UploadComplete requests");
                return http(Call::AbortFailing, abort_request());
            }
            ChunkRequest q;
            q.kind = ChunkRequestKind::Close;
            q.method = HttpMethod::Patch;
            q.path = ingest_job_path(spec_.api_version, rec_.sf_job_id);
            q.json_body = state_change_body(JobState::UploadComplete);
            q.idempotent = bulk_method_is_idempotent(HttpMethod::Patch);
            return http(Call::Close, std::move(q));
        }
        case State::FollowStep:
            return next_for_step();
        case State::Finished:
            break;
    }
    throw Error(ErrorKind::Internal, "ingest machine: unreachable state");
}

// FollowStep: the durable step alone says what comes next.
ChunkAction IngestChunkMachine::next_for_step() {
    switch (rec_.step) {
        case ChunkStep::Spooled: {
            ChunkRecord r = rec_;
            r.step = ChunkStep::Creating;
            r.attempts = 0;
            return persist(std::move(r));
        }
        case ChunkStep::Creating: {
            ChunkRequest q;
            q.kind = ChunkRequestKind::CreateJob;
            q.method = HttpMethod::Post;
            q.path = ingest_jobs_path(spec_.api_version);
            try {
                q.json_body = to_json(spec_.job);
            } catch (const Error &e) {
                // Validated at enqueue time already; if it still fails, nothing was sent and nothing will be.
                ChunkRecord r = rec_;
                r.step = ChunkStep::Failed;
                r.error = std::string("invalid job definition: ") + e.what();
                r.not_before_ms.reset();
                return persist(std::move(r), State::Finished);
            }
            q.idempotent = bulk_method_is_idempotent(HttpMethod::Post);
            return http(Call::Create, std::move(q));
        }
        case ChunkStep::Created: {
            ChunkRecord r = rec_;
            r.step = ChunkStep::Uploading;
            r.attempts = 0;
            return persist(std::move(r), State::MayPut);
        }
        case ChunkStep::Uploading:
            // Uploading persisted by an earlier instance, or a PUT whose outcome we do not know: the data may
            // be in that job. Never PUT again there and never close it; abort it and start over.
            if (replace_reason_.empty()) {
                replace_reason_ = "the upload was interrupted by a restart";
            }
            return http(Call::AbortReplace, abort_request());
        case ChunkStep::Uploaded: {
            ChunkRecord r = rec_;
            r.step = ChunkStep::Closing;
            r.attempts = 0;
            return persist(std::move(r), State::MayClose);
        }
        case ChunkStep::Closing:
            // The PATCH may or may not have landed: look before closing again.
            return http(Call::CloseCheck, get_job_request());
        case ChunkStep::Processing:
            return http(Call::Poll, get_job_request());
        case ChunkStep::Fetching: {
            if (fetch_index_ >= kResultOrder.size()) {
                return store_results();
            }
            const IngestResult kind = kResultOrder[fetch_index_];
            ChunkRequest q;
            q.kind = ChunkRequestKind::FetchResult;
            q.method = HttpMethod::Get;
            q.path = ingest_results_path(spec_.api_version, rec_.sf_job_id, kind);
            q.result = kind;
            q.download_file = result_path(kind);
            q.idempotent = true;
            return http(Call::Fetch, std::move(q));
        }
        case ChunkStep::Done:
        case ChunkStep::Failed:
        case ChunkStep::Aborted:
            break;
    }
    throw Error(ErrorKind::Internal, "ingest machine: unreachable step");
}

void IngestChunkMachine::persisted() {
    if (pending_ != Pending::Commit) {
        throw Error(ErrorKind::Internal,
                    "ingest machine: persisted() without a pending Persist/StoreResults");
    }
    pending_ = Pending::None;
    rec_ = std::move(staged_.record);
    if (staged_.then) {
        state_ = *staged_.then;
    }
    staged_ = Commit{};
}

// ---- outcome helpers --------------------------------------------------------------------------------------

void IngestChunkMachine::queue(ChunkRecord r, std::optional<State> then) {
    outbox_ = Commit{std::move(r), then, false, {}};
}

// The final record after a call that ended the chunk, with no result files (whatever the job did is unknown
// or irrelevant), committed as StoreResults so the worker stores the spool file's rows as unprocessed.
void IngestChunkMachine::queue_final_without_results(ChunkStep step, std::string error) {
    ChunkRecord r = rec_;
    r.step = step;
    r.attempts = 0;
    r.not_before_ms.reset();
    r.error = std::move(error);
    outbox_ = Commit{std::move(r), State::Finished, true, {}};
}

// Same step again after the policy's delay. The reason is shown to users, except while Fetching, where
// `error` already holds the final outcome text (Salesforce's errorMessage) that must survive a restart.
void IngestChunkMachine::retry_later(const RetryDecision &d, std::int64_t now_ms) {
    ChunkRecord r = rec_;
    r.attempts = retry_.backoff_retries;  // the budget used (limit-window waits do not count)
    r.not_before_ms = now_ms + d.delay.count();
    if (rec_.step != ChunkStep::Fetching && state_ != State::Failing) {
        r.error = d.reason + (d.action == RetryAction::WaitForLimitWindow
                                  ? "; the org's daily API request limit is used up, waiting"
                                  : "; retrying");
    }
    queue(std::move(r));
}

// Resend after an unknown outcome (the policy's Reconcile). The policy does not budget these, so the machine
// does: after max_attempts it gives up and returns false.
bool IngestChunkMachine::retry_unknown(const std::string &reason, std::int64_t now_ms) {
    if (retry_.backoff_retries + 1 >= config_.retry.max_attempts) {
        return false;
    }
    ++retry_.backoff_retries;
    RetryDecision d;
    d.action = RetryAction::RetryAfterBackoff;
    d.delay = std::max(config_.retry.min_delay, full_jitter_backoff(config_.retry.base, config_.retry.cap,
                                                                    retry_.backoff_retries, random_()));
    d.reason = reason + " (outcome unknown)";
    retry_later(d, now_ms);
    return true;
}

void IngestChunkMachine::start_failing(std::string reason) {
    // A job exists and sf_bulk gives up on it: abort it (best effort) so it neither processes rows nobody
    // tracks nor lingers Open, then store the final record with no result files.
    state_ = State::Failing;
    fail_reason_ = std::move(reason);
    retry_ = RetryState{};
}

void IngestChunkMachine::apply_counters(ChunkRecord &r, const JobInfo &info) const {
    if (info.number_records_processed) {
        r.records_processed = *info.number_records_processed;
    }
    if (info.number_records_failed) {
        r.records_failed = *info.number_records_failed;
    }
}

void IngestChunkMachine::enter_fetching(const JobInfo *info, std::string error) {
    ChunkRecord r = rec_;
    r.step = ChunkStep::Fetching;
    if (info != nullptr) {
        r.sf_state = info->state_text;
        apply_counters(r, *info);
    }
    r.attempts = 0;
    r.not_before_ms.reset();
    r.error = std::move(error);
    fetch_index_ = 0;
    fetched_.clear();
    fetch_notes_.clear();
    state_ = State::FollowStep;  // also ends an abort by request: what is left is fetching
    retry_ = RetryState{};
    queue(std::move(r));
}

void IngestChunkMachine::enter_processing(const JobInfo &info, std::int64_t now_ms) {
    ChunkRecord r = rec_;
    r.step = ChunkStep::Processing;
    r.sf_state = info.state_text.empty() ? std::string(to_string(JobState::UploadComplete)) : info.state_text;
    apply_counters(r, info);
    r.attempts = 0;
    r.error.clear();
    poll_interval_ms_ = config_.poll.first_ms;
    r.not_before_ms = now_ms + poll_interval_ms_;
    grow_poll_interval();
    retry_ = RetryState{};
    queue(std::move(r));
}

void IngestChunkMachine::finish_replacement(std::int64_t now_ms) {
    ChunkRecord r = rec_;
    const std::string old = rec_.sf_job_id;
    r.replaced_sf_job_ids.push_back(old);
    r.sf_job_id.clear();
    r.sf_state.clear();
    r.records_processed = 0;
    r.records_failed = 0;
    r.attempts = 0;
    retry_ = RetryState{};
    const std::string why =
        "upload to Salesforce job " + old + " has an unknown outcome (" + replace_reason_ + ")";
    replace_reason_.clear();
    if (static_cast<int>(r.replaced_sf_job_ids.size()) > config_.max_replacements) {
        r.step = ChunkStep::Failed;
        r.not_before_ms.reset();
        r.error = "gave up after " + std::to_string(r.replaced_sf_job_ids.size()) +
                  " Salesforce jobs; last: " + why + "; the job was aborted";
        replace_not_before_.reset();
        queue(std::move(r), State::Finished);
        return;
    }
    // Straight to Creating (the intent of the next step) instead of Spooled: saves a commit, and a restart
    // in Creating re-creates, which is exactly what we want.
    r.step = ChunkStep::Creating;
    r.not_before_ms = std::max(now_ms, replace_not_before_.value_or(now_ms));
    if (*r.not_before_ms <= now_ms) {
        r.not_before_ms.reset();
    }
    replace_not_before_.reset();
    r.error = why + "; it was aborted and the chunk goes to a new job";
    queue(std::move(r));
}

// Gaps between polls: first, first*growth, first*growth^2, ... capped at max.
void IngestChunkMachine::grow_poll_interval() {
    const double grown = std::ceil(static_cast<double>(poll_interval_ms_) * config_.poll.growth);
    poll_interval_ms_ = grown >= static_cast<double>(config_.poll.max_ms) ? config_.poll.max_ms
                                                                          : static_cast<std::int64_t>(grown);
}

// A job seen by a poll (or by the look after a close): fetch when terminal, close again when Open, otherwise
// record progress and poll again later.
void IngestChunkMachine::track_job(const JobInfo &info, std::int64_t now_ms) {
    if (is_terminal(info.state)) {
        std::string error;
        if (info.state == JobState::Failed) {
            error = info.error_message.value_or("the Salesforce job failed without an error message");
        } else if (info.state == JobState::Aborted) {
            error = "the Salesforce job was aborted outside sf_bulk";
        }
        enter_fetching(&info, std::move(error));
        return;
    }
    if (info.state == JobState::Open) {
        // Our UploadComplete did not stick (or we were told so too early): close again. Safe: the data is in
        // this job exactly once; only the state change is repeated.
        ChunkRecord r = rec_;
        r.step = ChunkStep::Closing;
        r.sf_state = info.state_text;
        r.attempts = 0;
        r.not_before_ms.reset();
        queue(std::move(r), State::MayClose);
        return;
    }
    ChunkRecord r = rec_;
    r.sf_state = info.state_text;
    apply_counters(r, info);
    r.attempts = 0;
    r.error.clear();
    r.not_before_ms = now_ms + poll_interval_ms_;
    grow_poll_interval();
    retry_ = RetryState{};
    // Persist only when something users can see changed (state, counters, a cleared retry note): a job that
    // sits queued for an hour would otherwise cost a commit per poll. The next poll time stays in memory;
    // after a restart the first poll just happens at once.
    ChunkRecord cmp = r;
    cmp.not_before_ms = rec_.not_before_ms;
    if (cmp == rec_) {
        rec_.not_before_ms = r.not_before_ms;
        return;
    }
    queue(std::move(r));
}

// A 200 job description, or false after scheduling a retry (an unreadable 200, e.g. a proxy page, is as
// transient as a 503) or starting to fail when those retries are used up.
bool IngestChunkMachine::read_job(const Outcome &o, std::int64_t now_ms, JobInfo &info) {
    try {
        info = parse_job_info(o.body);
        return true;
    } catch (const Error &e) {
        if (!retry_unknown(e.what(), now_ms)) {
            start_failing("gave up after " + std::to_string(retry_.attempts) +
                          " attempts; last: " + e.what());
        }
        return false;
    }
}

// ---- answers ----------------------------------------------------------------------------------------------

IngestChunkMachine::Outcome IngestChunkMachine::evaluate(const ChunkResponse &response, Call call) {
    const bool idempotent =
        call == Call::Poll || call == Call::CloseCheck || call == Call::AbortCheck || call == Call::Fetch;
    return evaluate_call(response, idempotent, policy_, retry_);
}

void IngestChunkMachine::http_done(const ChunkResponse &response, std::int64_t now_ms) {
    if (pending_ != Pending::Http) {
        throw Error(ErrorKind::Internal, "ingest machine: http_done() without a pending Http action");
    }
    pending_ = Pending::None;
    const Call call = inflight_;
    inflight_ = Call::None;
    Outcome o = evaluate(response, call);
    if (o.decision.action == RetryAction::RefreshTokenThenRetryOnce) {
        // A 401 INVALID_SESSION_ID is answered before Salesforce looks at the request: send the very same
        // request once more, with a newer token (the policy allows this once per logical request).
        resend_ = last_request_;
        resend_->needs_fresh_token = true;
        return;
    }
    dispatch(call, o, now_ms);
}

void IngestChunkMachine::credentials_failed(std::string code, std::string message, std::int64_t now_ms) {
    if (pending_ != Pending::Http) {
        throw Error(ErrorKind::Internal,
                    "ingest machine: credentials_failed() without a pending Http action");
    }
    pending_ = Pending::None;
    const Call call = inflight_;
    inflight_ = Call::None;
    // Definite, like a refused call: nothing was sent, and resending cannot help until the credentials
    // change (a changed user mapping restarts the job's uploads anyway).
    const Outcome o = credentials_outcome(std::move(code), std::move(message));
    dispatch(call, o, now_ms);
}

void IngestChunkMachine::http_withheld() {
    if (pending_ != Pending::Http || inflight_ != Call::Create) {
        throw Error(ErrorKind::Internal, "ingest machine: http_withheld() without a pending create");
    }
    // Nothing was sent, so nothing is learnt and no budget is spent. A withheld 401 resend is not kept
    // either: the refused token is dropped already, and the create that comes again goes with a newer one.
    pending_ = Pending::None;
    inflight_ = Call::None;
}

void IngestChunkMachine::dispatch(Call call, const Outcome &o, std::int64_t now_ms) {
    switch (call) {
        case Call::Create:
            return on_create(o, now_ms);
        case Call::Upload:
            return on_upload(o, now_ms);
        case Call::Close:
            return on_close(o, now_ms);
        case Call::CloseCheck:
            return on_close_check(o, now_ms);
        case Call::Poll:
            return on_poll(o, now_ms);
        case Call::AbortReplace:
            return on_abort_replace(o, now_ms);
        case Call::AbortUser:
            return on_abort_user(o, now_ms);
        case Call::AbortCheck:
            return on_abort_check(o, now_ms);
        case Call::AbortFailing:
            return on_abort_failing(o, now_ms);
        case Call::Fetch:
            return on_fetch(o, now_ms);
        case Call::None:
            break;
    }
    throw Error(ErrorKind::Internal, "ingest machine: outcome for no call");
}

void IngestChunkMachine::on_create(const Outcome &o, std::int64_t now_ms) {
    RetryAction action = o.decision.action;
    std::string fail_text = o.fail_text;
    if (action == RetryAction::Success) {
        try {
            JobInfo info = parse_job_info(o.body);
            (void)ingest_job_path(spec_.api_version, info.id);  // validates the id shape
            ChunkRecord r = rec_;
            r.step = ChunkStep::Created;
            r.sf_job_id = info.id;
            r.sf_state = info.state_text;
            r.attempts = 0;
            r.not_before_ms.reset();
            r.error.clear();
            retry_ = RetryState{};
            queue(std::move(r));
            return;
        } catch (const Error &e) {
            // A job may exist but we cannot name it: same as a lost response.
            action = RetryAction::Reconcile;
            fail_text = e.what();
        }
    }
    if (o.transient) {
        retry_later(o.decision, now_ms);
        return;
    }
    // The job may have been created. Create again: an orphan Open job holds no data, is never uploaded to or
    // closed, and Salesforce never processes it (listing jobs cannot tell ours apart).
    if (action == RetryAction::Reconcile && retry_unknown(fail_text, now_ms)) {
        return;
    }
    ChunkRecord r = rec_;
    r.step = ChunkStep::Failed;
    r.attempts = 0;
    r.not_before_ms.reset();
    r.error = action == RetryAction::Reconcile
                  ? "gave up after " + std::to_string(retry_.attempts) + " attempts; last: " + fail_text
                  : fail_text;
    queue(std::move(r), State::Finished);
}

void IngestChunkMachine::on_upload(const Outcome &o, std::int64_t now_ms) {
    const RetryDecision &d = o.decision;
    if (d.action == RetryAction::Success) {
        ChunkRecord r = rec_;
        r.step = ChunkStep::Uploaded;
        r.attempts = 0;
        r.not_before_ms.reset();
        r.error.clear();
        retry_ = RetryState{};
        queue(std::move(r));
        return;
    }
    if (d.action == RetryAction::Fail) {
        // A definite HTTP rejection of the upload (size, content, job not Open, a second 401...) would repeat
        // on a new job with the same file, and TLS/other transport failures are not retried by policy: fail.
        // Abort this job first, whatever landed in it.
        start_failing(o.fail_text);
        return;
    }
    // 503/429/limit/timeouts/drops/500: the data may or may not be in the job, and a second PUT to it is
    // forbidden either way. Abort and replace (FollowStep in Uploading); wait the policy's delay before
    // creating the new job.
    replace_reason_ = o.retry_text;
    std::chrono::milliseconds delay = d.delay;
    if (d.action == RetryAction::Reconcile) {
        delay =
            std::max(config_.retry.min_delay,
                     full_jitter_backoff(config_.retry.base, config_.retry.cap,
                                         static_cast<int>(rec_.replaced_sf_job_ids.size()) + 1, random_()));
    }
    replace_not_before_ = now_ms + delay.count();
}

void IngestChunkMachine::on_abort_replace(const Outcome &o, std::int64_t now_ms) {
    if (o.transient) {
        retry_later(o.decision, now_ms);
        return;
    }
    if (o.decision.action == RetryAction::Reconcile && retry_unknown(o.fail_text, now_ms)) {
        return;
    }
    // Success, 400 INVALIDJOBSTATE (already terminal), 404 (gone) or anything else: the old job is never
    // closed by us, so Salesforce never processes its data. Aborting is hygiene, not safety.
    finish_replacement(now_ms);
}

void IngestChunkMachine::on_close(const Outcome &o, std::int64_t now_ms) {
    const RetryAction action = o.decision.action;
    if (action == RetryAction::Success) {
        JobInfo info;
        try {
            info = parse_job_info(o.body);
        } catch (const Error &) {
            info.state = JobState::UploadComplete;  // 200 means accepted; the body is informational
            info.state_text = "UploadComplete";
        }
        enter_processing(info, now_ms);
        return;
    }
    if (o.transient) {
        // 429/503/limit are refusals before processing (retry.h): sending the PATCH again is safe.
        state_ = State::MayClose;
        retry_later(o.decision, now_ms);
        return;
    }
    if (action == RetryAction::Reconcile || (o.status == 400 && o.error_code == "INVALIDJOBSTATE")) {
        // Unknown outcome, or "not Open" (an earlier PATCH landed): look at the job (FollowStep in Closing).
        return;
    }
    start_failing(o.fail_text);
}

void IngestChunkMachine::on_close_check(const Outcome &o, std::int64_t now_ms) {
    if (o.decision.action == RetryAction::Success) {
        JobInfo info;
        if (!read_job(o, now_ms, info)) {
            return;
        }
        if (info.state == JobState::Open) {
            state_ = State::MayClose;  // the PATCH did not land; the Closing intent is already durable
            retry_ = RetryState{};
            return;
        }
        if (!is_terminal(info.state)) {
            enter_processing(info, now_ms);
            return;
        }
        track_job(info, now_ms);
        return;
    }
    if (o.transient) {
        retry_later(o.decision, now_ms);
        return;
    }
    start_failing(o.fail_text);
}

void IngestChunkMachine::on_poll(const Outcome &o, std::int64_t now_ms) {
    if (o.decision.action == RetryAction::Success) {
        JobInfo info;
        if (read_job(o, now_ms, info)) {
            track_job(info, now_ms);
        }
        return;
    }
    if (o.transient) {
        retry_later(o.decision, now_ms);
        return;
    }
    start_failing(o.fail_text);
}

void IngestChunkMachine::on_abort_user(const Outcome &o, std::int64_t now_ms) {
    const RetryAction action = o.decision.action;
    if (action == RetryAction::Success) {
        JobInfo info;
        try {
            info = parse_job_info(o.body);
        } catch (const Error &) {
            info.state = JobState::Aborted;
        }
        if (!is_terminal(info.state)) {
            info.state = JobState::Aborted;
        }
        info.state_text = std::string(to_string(info.state));
        enter_fetching(&info, "aborted by request");
        return;
    }
    if (o.transient) {
        retry_later(o.decision, now_ms);
        return;
    }
    if (action == RetryAction::Reconcile) {
        if (retry_unknown(o.fail_text, now_ms)) {  // aborting twice is harmless
            return;
        }
    } else if (o.status == 400 || o.status == 404) {
        state_ = State::CheckingAbort;  // refused: probably terminal already; look
        return;
    }
    queue_final_without_results(ChunkStep::Aborted, "abort requested, but aborting Salesforce job " +
                                                        rec_.sf_job_id + " failed: " + o.fail_text);
}

void IngestChunkMachine::on_abort_check(const Outcome &o, std::int64_t now_ms) {
    if (o.decision.action == RetryAction::Success) {
        JobInfo info;
        bool parsed = true;
        try {
            info = parse_job_info(o.body);
        } catch (const Error &) {
            parsed = false;
        }
        if (parsed && is_terminal(info.state)) {
            std::string error = info.state == JobState::Failed
                                    ? info.error_message.value_or("the Salesforce job failed")
                                : info.state == JobState::Aborted ? "aborted by request"
                                                                  : "";
            enter_fetching(&info, std::move(error));
            return;
        }
        if (parsed && ++abort_rounds_ < config_.retry.max_attempts) {
            state_ = State::AbortingByRequest;  // still running: abort again
            return;
        }
    } else if (o.transient) {
        retry_later(o.decision, now_ms);
        return;
    }
    // 404 (job gone), unreadable, or still not terminal after several aborts: store what we have.
    enter_fetching(nullptr, "aborted by request");
}

void IngestChunkMachine::on_abort_failing(const Outcome &o, std::int64_t now_ms) {
    if (o.transient) {
        retry_later(o.decision, now_ms);
        return;
    }
    // Whatever the abort's answer, the chunk fails for the reason it started failing for.
    state_ = State::FollowStep;
    queue_final_without_results(ChunkStep::Failed, fail_reason_);
}

void IngestChunkMachine::on_fetch(const Outcome &o, std::int64_t now_ms) {
    const IngestResult kind = kResultOrder[fetch_index_];
    if (o.decision.action == RetryAction::Success) {
        fetched_.push_back(ChunkResultFile{kind, result_path(kind)});
        ++fetch_index_;
        retry_ = RetryState{};
        return;
    }
    if (o.transient) {
        retry_later(o.decision, now_ms);
        return;
    }
    // 404: the job never had data of this kind or Salesforce already deleted it (7-day retention) — retrying
    // cannot bring it back, and failing would throw away the other files and the counts. Other definite
    // errors and an exhausted budget: store what we have and say what is missing.
    fetch_notes_ +=
        (fetch_notes_.empty() ? "" : "; ") + std::string(result_name(kind)) + " not stored: " + o.fail_text;
    ++fetch_index_;
    retry_ = RetryState{};
}

}  // namespace sfb
