#include "core/query_machine.h"

#include "core/error.h"
#include "core/text_util.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <utility>

namespace sfb {

namespace {

constexpr std::array<std::string_view, 9> kJobStepNames = {
    "pending", "creating", "polling", "listing", "downloading", "loading", "done", "failed", "aborted",
};

constexpr std::array<std::string_view, 4> kPageStepNames = {"pending", "downloading", "downloaded", "failed"};

template <typename Step, std::size_t N>
std::optional<Step> parse_step(const std::array<std::string_view, N> &names, std::string_view name) {
    for (std::size_t i = 0; i < names.size(); ++i) {
        if (names[i] == name) {
            return static_cast<Step>(i);
        }
    }
    return std::nullopt;
}

// Whether `url` is the resource `base` itself, optionally with a query string. Result URLs and resultPages
// continuations must name this job's resources (the job id and version are in `base`); anything else is
// refused rather than fetched with the org's token.
bool is_resource(std::string_view url, const std::string &base) {
    if (url.size() < base.size() || url.compare(0, base.size(), base) != 0) {
        return false;
    }
    return url.size() == base.size() || url[base.size()] == '?';
}

bool is_result_url_of(std::string_view url, const ApiVersion &v, const std::string &job_id) {
    return is_resource(url, query_results_path(v, job_id));
}

bool is_result_pages_url_of(std::string_view url, const ApiVersion &v, const std::string &job_id) {
    return is_resource(url, query_result_pages_path(v, job_id));
}

// Sforce-NumberOfRecords: a plain non-negative decimal; -1 when absent or unreadable (the count is only
// progress information, the rows are in the file either way).
std::int64_t records_header(const std::optional<std::string> &value) {
    if (!value) {
        return -1;
    }
    const std::string_view v = trim_ascii_space(*value);
    if (v.empty() || v.size() > 18) {
        return -1;
    }
    std::int64_t n = 0;
    for (char c : v) {
        if (c < '0' || c > '9') {
            return -1;
        }
        n = n * 10 + (c - '0');
    }
    return n;
}

// A page row holds a resultUrl (resultPages, 58.0+) or a locator (chain paging); URLs are absolute paths.
bool page_is_result_url(const QueryPageRecord &r) {
    return !r.path_or_locator.empty() && r.path_or_locator.front() == '/';
}

void check_progress(const PagesProgress &p) {
    if (p.known < 0 || p.downloaded < 0 || p.downloaded > p.known ||
        (p.chain_open && p.next_locator.empty())) {
        throw Error(ErrorKind::Internal, "query job machine: inconsistent page progress (known " +
                                             std::to_string(p.known) + ", downloaded " +
                                             std::to_string(p.downloaded) + ")");
    }
}

}  // namespace

// ---- names ------------------------------------------------------------------------------------------------

std::string_view to_string(QueryRequestKind k) {
    switch (k) {
        case QueryRequestKind::CreateJob:
            return "CreateJob";
        case QueryRequestKind::GetJob:
            return "GetJob";
        case QueryRequestKind::ListPages:
            return "ListPages";
        case QueryRequestKind::Abort:
            return "Abort";
        case QueryRequestKind::FetchPage:
            return "FetchPage";
    }
    return "unknown";
}

std::string_view to_string(QueryActionKind k) {
    switch (k) {
        case QueryActionKind::Persist:
            return "Persist";
        case QueryActionKind::Http:
            return "Http";
        case QueryActionKind::Load:
            return "Load";
        case QueryActionKind::WaitUntil:
            return "WaitUntil";
        case QueryActionKind::AwaitPages:
            return "AwaitPages";
        case QueryActionKind::Finished:
            return "Finished";
    }
    return "unknown";
}

std::string_view to_string(QueryJobStep s) {
    return kJobStepNames[static_cast<std::size_t>(s)];
}

std::optional<QueryJobStep> parse_query_job_step(std::string_view name) {
    return parse_step<QueryJobStep>(kJobStepNames, name);
}

bool is_final(QueryJobStep s) {
    return s == QueryJobStep::Done || s == QueryJobStep::Failed || s == QueryJobStep::Aborted;
}

std::string_view to_string(QueryPageStep s) {
    return kPageStepNames[static_cast<std::size_t>(s)];
}

std::optional<QueryPageStep> parse_query_page_step(std::string_view name) {
    return parse_step<QueryPageStep>(kPageStepNames, name);
}

bool is_final(QueryPageStep s) {
    return s == QueryPageStep::Downloaded || s == QueryPageStep::Failed;
}

std::string_view to_string(QueryJobMachine::State s) {
    switch (s) {
        case QueryJobMachine::State::FollowStep:
            return "follow-step";
        case QueryJobMachine::State::Aborting:
            return "aborting";
        case QueryJobMachine::State::Finished:
            return "finished";
    }
    return "unknown";
}

bool QueryJobRecord::operator==(const QueryJobRecord &o) const {
    return step == o.step && sf_job_id == o.sf_job_id && sf_state == o.sf_state &&
           records_processed == o.records_processed && attempts == o.attempts &&
           not_before_ms == o.not_before_ms && error == o.error && page_list_url == o.page_list_url &&
           page_list_done == o.page_list_done;
}

bool QueryPageRecord::operator==(const QueryPageRecord &o) const {
    return page_no == o.page_no && path_or_locator == o.path_or_locator && step == o.step &&
           records == o.records && bytes == o.bytes && next_locator == o.next_locator &&
           attempts == o.attempts && not_before_ms == o.not_before_ms && error == o.error;
}

// ---- QueryJobMachine --------------------------------------------------------------------------------------

QueryJobMachine::QueryJobMachine(QueryJobRecord record, QueryJobSpec spec, QueryMachineConfig config,
                                 RandomSource random, WallClock clock, bool resumed)
    : rec_(std::move(record)),
      spec_(std::move(spec)),
      config_(config),
      policy_(config.retry, std::move(random), std::move(clock)) {
    const PollConfig &p = config_.poll;
    if (p.first_ms <= 0 || p.max_ms < p.first_ms || !(p.growth >= 1.0)) {
        throw Error(ErrorKind::InvalidParameter,
                    "invalid query machine configuration: need 0 < poll first <= max, growth >= 1");
    }
    if (spec_.api_version.major < kMinQueryApiVersion) {
        throw Error(ErrorKind::InvalidParameter, "Bulk API 2.0 query jobs need API version " +
                                                     std::to_string(kMinQueryApiVersion) +
                                                     ".0 or later, not " + spec_.api_version.str());
    }
    if (!resumed && rec_.step != QueryJobStep::Pending) {
        throw Error(ErrorKind::InvalidParameter, "a new query job must start in step pending, not " +
                                                     std::string(to_string(rec_.step)) +
                                                     "; pass resumed=true for a loaded record");
    }
    poll_interval_ms_ = p.first_ms;
    // The retry budget of the step in progress survives restarts, so a crash loop cannot retry forever.
    retry_.attempts = std::max(0, rec_.attempts);
    retry_.backoff_retries = retry_.attempts;
}

QueryJobAction QueryJobMachine::commit(Commit c) {
    QueryJobAction a;
    a.kind = c.load ? QueryActionKind::Load : QueryActionKind::Persist;
    a.record = c.record;
    a.new_pages = c.pages;
    staged_ = std::move(c);
    pending_ = Pending::Commit;
    return a;
}

QueryJobAction QueryJobMachine::persist(QueryJobRecord r, std::optional<State> then,
                                        std::vector<QueryPageSpec> pages) {
    return commit(Commit{std::move(r), std::move(pages), false, then});
}

QueryJobAction QueryJobMachine::http(Call call, QueryRequest req) {
    // A new kind of call is a new logical request with a fresh budget, except the first call after
    // construction, which continues the persisted one.
    if (call != last_call_ && last_call_ != Call::None) {
        retry_ = RetryState{};
    }
    last_call_ = call;
    inflight_ = call;
    pending_ = Pending::Http;
    last_request_ = req;
    QueryJobAction a;
    a.kind = QueryActionKind::Http;
    a.request = std::move(req);
    return a;
}

QueryJobAction QueryJobMachine::finish_now(QueryJobStep step, std::string error) {
    QueryJobRecord r = rec_;
    r.step = step;
    r.attempts = 0;
    r.not_before_ms.reset();
    r.error = std::move(error);
    return persist(std::move(r), State::Finished);
}

QueryJobAction QueryJobMachine::next(std::int64_t now_ms, bool abort_requested, const PagesProgress &pages) {
    if (pending_ != Pending::None) {
        throw Error(ErrorKind::Internal, "query job machine: next() called while an action is outstanding");
    }
    check_progress(pages);
    if (state_ == State::Finished) {
        QueryJobAction a;
        a.kind = QueryActionKind::Finished;
        a.record = rec_;
        return a;
    }
    if (resend_) {
        // The 401 resend completes the call whose answer has not been accepted yet: before anything else.
        QueryRequest q = std::move(*resend_);
        resend_.reset();
        return http(last_call_, std::move(q));
    }
    if (outbox_) {
        Commit c = std::move(*outbox_);
        outbox_.reset();
        return commit(std::move(c));
    }
    if (is_final(rec_.step)) {
        state_ = State::Finished;
        return next(now_ms, abort_requested, pages);
    }

    if (abort_requested && state_ != State::Aborting) {
        switch (rec_.step) {
            case QueryJobStep::Polling:
                // The job may be running and producing results nobody will read: abort it. The durable
                // abort request is the intent; a restart sends the PATCH again, which is harmless.
                state_ = State::Aborting;
                rec_.not_before_ms.reset();  // a poll wait must not delay the abort
                retry_ = RetryState{};
                last_call_ = Call::Abort;
                break;
            case QueryJobStep::Pending:
            case QueryJobStep::Creating:
                // Creating: a job the interrupted POST may have made is unknown to us; it holds no data of
                // ours and ends by itself.
                return finish_now(QueryJobStep::Aborted,
                                  "aborted by request before a Salesforce query job was known");
            default:
                // Listing, Downloading, Loading: the Salesforce job is complete already; nothing to abort
                // there, and nothing is loaded into the table.
                return finish_now(QueryJobStep::Aborted, "aborted by request after Salesforce query job " +
                                                             rec_.sf_job_id +
                                                             " completed; no rows were loaded");
        }
    }

    if (rec_.not_before_ms && *rec_.not_before_ms > now_ms) {
        QueryJobAction a;
        a.kind = QueryActionKind::WaitUntil;
        a.wait_until_ms = *rec_.not_before_ms;
        return a;
    }

    if (state_ == State::Aborting) {
        QueryRequest q;
        q.kind = QueryRequestKind::Abort;
        q.method = HttpMethod::Patch;
        q.path = query_job_path(spec_.api_version, rec_.sf_job_id);
        q.json_body = state_change_body(JobState::Aborted);
        q.idempotent = true;  // in effect: a second abort is refused as "already terminal", see on_abort
        return http(Call::Abort, std::move(q));
    }
    return next_for_step(pages);
}

QueryJobAction QueryJobMachine::next_for_step(const PagesProgress &pages) {
    if ((rec_.step == QueryJobStep::Listing || rec_.step == QueryJobStep::Downloading) &&
        pages.page_failure) {
        return finish_now(QueryJobStep::Failed, "result " + *pages.page_failure);
    }
    switch (rec_.step) {
        case QueryJobStep::Pending: {
            QueryJobRecord r = rec_;
            r.step = QueryJobStep::Creating;
            r.attempts = 0;
            r.error.clear();
            return persist(std::move(r));
        }
        case QueryJobStep::Creating: {
            QueryRequest q;
            q.kind = QueryRequestKind::CreateJob;
            q.method = HttpMethod::Post;
            q.path = query_jobs_path(spec_.api_version);
            try {
                q.json_body = to_json(spec_.job);
            } catch (const Error &e) {
                return finish_now(QueryJobStep::Failed,
                                  std::string("invalid query job definition: ") + e.what());
            }
            // See the header: a duplicate query job has no data side effect, so a lost answer is retried.
            q.idempotent = true;
            return http(Call::Create, std::move(q));
        }
        case QueryJobStep::Polling: {
            QueryRequest q;
            q.kind = QueryRequestKind::GetJob;
            q.method = HttpMethod::Get;
            q.path = query_job_path(spec_.api_version, rec_.sf_job_id);
            return http(Call::Poll, std::move(q));
        }
        case QueryJobStep::Listing: {
            QueryRequest q;
            q.kind = QueryRequestKind::ListPages;
            q.method = HttpMethod::Get;
            q.path = rec_.page_list_url.value_or(query_result_pages_path(spec_.api_version, rec_.sf_job_id));
            known_at_list_ = pages.known;
            return http(Call::List, std::move(q));
        }
        case QueryJobStep::Downloading: {
            if (pages.chain_open) {
                // Locator paging: the last downloaded page names the next one. Inserting it is idempotent
                // across a crash (the progress shows the chain open again until the row is committed).
                QueryJobRecord r = rec_;
                r.error.clear();
                return persist(std::move(r), std::nullopt,
                               {QueryPageSpec{pages.known + 1, pages.next_locator}});
            }
            if (pages.downloaded == pages.known) {
                QueryJobRecord r = rec_;
                r.step = QueryJobStep::Loading;
                r.attempts = 0;
                r.error.clear();
                return persist(std::move(r));
            }
            QueryJobAction a;
            a.kind = QueryActionKind::AwaitPages;
            a.record = rec_;
            return a;
        }
        case QueryJobStep::Loading: {
            if (pages.downloaded != pages.known || pages.chain_open || pages.page_failure) {
                throw Error(ErrorKind::Internal,
                            "query job machine: step loading with pages not all downloaded");
            }
            QueryJobRecord r = rec_;
            r.step = QueryJobStep::Done;
            r.attempts = 0;
            r.not_before_ms.reset();
            r.error.clear();
            return commit(Commit{std::move(r), {}, true, State::Finished});
        }
        case QueryJobStep::Done:
        case QueryJobStep::Failed:
        case QueryJobStep::Aborted:
            break;
    }
    throw Error(ErrorKind::Internal, "query job machine: unreachable step");
}

void QueryJobMachine::persisted() {
    if (pending_ != Pending::Commit) {
        throw Error(ErrorKind::Internal, "query job machine: persisted() without a pending Persist/Load");
    }
    pending_ = Pending::None;
    rec_ = std::move(staged_.record);
    if (staged_.then) {
        state_ = *staged_.then;
    }
    staged_ = Commit{};
}

void QueryJobMachine::http_done(const QueryResponse &response, std::int64_t now_ms) {
    if (pending_ != Pending::Http) {
        throw Error(ErrorKind::Internal, "query job machine: http_done() without a pending Http action");
    }
    pending_ = Pending::None;
    const Call call = inflight_;
    inflight_ = Call::None;
    // Every call of the job machine may be sent twice with the same effect (see the header for the create).
    const CallOutcome o = evaluate_call(response, true, policy_, retry_);
    if (o.decision.action == RetryAction::RefreshTokenThenRetryOnce) {
        resend_ = last_request_;
        resend_->needs_fresh_token = true;
        return;
    }
    dispatch(call, o, now_ms);
}

void QueryJobMachine::http_withheld() {
    if (pending_ != Pending::Http || inflight_ != Call::Create) {
        throw Error(ErrorKind::Internal, "query job machine: http_withheld() without a pending create");
    }
    // Nothing was sent: nothing learnt, no budget spent (a withheld 401 resend goes again as a plain create,
    // with the newer token the refusal already asked for).
    pending_ = Pending::None;
    inflight_ = Call::None;
}

void QueryJobMachine::credentials_failed(std::string code, std::string message, std::int64_t now_ms) {
    if (pending_ != Pending::Http) {
        throw Error(ErrorKind::Internal,
                    "query job machine: credentials_failed() without a pending Http action");
    }
    pending_ = Pending::None;
    const Call call = inflight_;
    inflight_ = Call::None;
    dispatch(call, credentials_outcome(std::move(code), std::move(message)), now_ms);
}

void QueryJobMachine::dispatch(Call call, const CallOutcome &o, std::int64_t now_ms) {
    switch (call) {
        case Call::Create:
            return on_create(o, now_ms);
        case Call::Poll:
            return on_poll(o, now_ms);
        case Call::List:
            return on_list(o, now_ms);
        case Call::Abort:
            return on_abort(o, now_ms);
        case Call::None:
            break;
    }
    throw Error(ErrorKind::Internal, "query job machine: outcome for no call");
}

void QueryJobMachine::queue(QueryJobRecord r, std::optional<State> then, std::vector<QueryPageSpec> pages) {
    outbox_ = Commit{std::move(r), std::move(pages), false, then};
}

void QueryJobMachine::queue_final(QueryJobStep step, std::string error) {
    QueryJobRecord r = rec_;
    r.step = step;
    r.attempts = 0;
    r.not_before_ms.reset();
    r.error = std::move(error);
    queue(std::move(r), State::Finished);
}

void QueryJobMachine::retry_later(const RetryDecision &d, std::int64_t now_ms) {
    QueryJobRecord r = rec_;
    r.attempts = retry_.backoff_retries;  // the budget used (limit-window waits do not count)
    r.not_before_ms = now_ms + d.delay.count();
    r.error = d.reason + (d.action == RetryAction::WaitForLimitWindow
                              ? "; the org's daily API request limit is used up, waiting"
                              : "; retrying");
    queue(std::move(r));
}

void QueryJobMachine::grow_poll_interval() {
    const double grown = std::ceil(static_cast<double>(poll_interval_ms_) * config_.poll.growth);
    poll_interval_ms_ = grown >= static_cast<double>(config_.poll.max_ms) ? config_.poll.max_ms
                                                                          : static_cast<std::int64_t>(grown);
}

void QueryJobMachine::on_create(const CallOutcome &o, std::int64_t now_ms) {
    if (o.decision.action == RetryAction::Success) {
        JobInfo info;
        try {
            info = parse_job_info(o.body);
            (void)query_job_path(spec_.api_version, info.id);  // validates the id shape
        } catch (const Error &e) {
            // A job may exist but cannot be named; retrying would only make more of them.
            queue_final(
                QueryJobStep::Failed,
                std::string("Salesforce's answer to the query job creation is unusable: ") + e.what());
            return;
        }
        QueryJobRecord r = rec_;
        r.step = QueryJobStep::Polling;
        r.sf_job_id = info.id;
        r.sf_state = info.state_text;
        r.attempts = 0;
        r.error.clear();
        poll_interval_ms_ = config_.poll.first_ms;
        r.not_before_ms = now_ms + poll_interval_ms_;
        grow_poll_interval();
        retry_ = RetryState{};
        queue(std::move(r));
        return;
    }
    if (o.transient) {
        retry_later(o.decision, now_ms);
        return;
    }
    // MALFORMED_QUERY, INVALID_FIELD, INVALIDENTITY, API_ERROR, the daily result volume...: verbatim.
    queue_final(QueryJobStep::Failed, o.fail_text);
}

void QueryJobMachine::on_poll(const CallOutcome &o, std::int64_t now_ms) {
    if (o.decision.action == RetryAction::Success) {
        JobInfo info;
        try {
            info = parse_job_info(o.body);
        } catch (const Error &e) {
            queue_final(QueryJobStep::Failed, std::string("unreadable query job information: ") + e.what());
            return;
        }
        track_job(info, now_ms);
        return;
    }
    if (o.transient) {
        retry_later(o.decision, now_ms);
        return;
    }
    queue_final(QueryJobStep::Failed, o.fail_text);
}

void QueryJobMachine::track_job(const JobInfo &info, std::int64_t now_ms) {
    QueryJobRecord r = rec_;
    r.sf_state = info.state_text;
    if (info.number_records_processed) {
        r.records_processed = *info.number_records_processed;
    }
    r.attempts = 0;
    r.error.clear();
    retry_ = RetryState{};
    if (info.state == JobState::JobComplete) {
        r.not_before_ms.reset();
        if (spec_.api_version.major >= kMinResultPagesApiVersion) {
            r.step = QueryJobStep::Listing;
            r.page_list_url.reset();
            r.page_list_done = false;
            queue(std::move(r));
        } else {
            // No listing below 58.0: the first page (no locator) is the only page known; each downloaded
            // page reveals the next one.
            r.step = QueryJobStep::Downloading;
            r.page_list_url.reset();
            r.page_list_done = true;
            queue(std::move(r), std::nullopt, {QueryPageSpec{1, ""}});
        }
        return;
    }
    if (info.state == JobState::Failed) {
        queue_final(QueryJobStep::Failed, info.error_message && !info.error_message->empty()
                                              ? *info.error_message
                                              : "Salesforce reported the query job Failed without a message");
        outbox_->record.sf_state = r.sf_state;
        outbox_->record.records_processed = r.records_processed;
        return;
    }
    if (info.state == JobState::Aborted) {
        queue_final(QueryJobStep::Aborted, "the Salesforce query job was aborted outside sf_bulk");
        outbox_->record.sf_state = r.sf_state;
        outbox_->record.records_processed = r.records_processed;
        return;
    }
    // Still queued or running (or a state this client does not know): poll again later. Commit only when
    // something users can see changed; the next poll time alone stays in memory.
    r.not_before_ms = now_ms + poll_interval_ms_;
    grow_poll_interval();
    QueryJobRecord cmp = r;
    cmp.not_before_ms = rec_.not_before_ms;
    if (cmp == rec_) {
        rec_.not_before_ms = r.not_before_ms;
        return;
    }
    queue(std::move(r));
}

void QueryJobMachine::on_list(const CallOutcome &o, std::int64_t now_ms) {
    if (o.decision.action == RetryAction::Success) {
        ResultPages set;
        try {
            set = parse_result_pages(o.body);
        } catch (const Error &e) {
            queue_final(QueryJobStep::Failed, e.what());
            return;
        }
        for (const std::string &url : set.result_urls) {
            if (!is_result_url_of(url, spec_.api_version, rec_.sf_job_id)) {
                queue_final(QueryJobStep::Failed, "resultPages listed a result URL outside query job " +
                                                      rec_.sf_job_id + ": " + url);
                return;
            }
        }
        if (!set.done) {
            if (!set.next_records_url ||
                !is_result_pages_url_of(*set.next_records_url, spec_.api_version, rec_.sf_job_id)) {
                queue_final(QueryJobStep::Failed,
                            "resultPages answer is not done but names no usable "
                            "nextRecordsUrl for query job " +
                                rec_.sf_job_id);
                return;
            }
            if (set.next_records_url == rec_.page_list_url) {
                queue_final(QueryJobStep::Failed,
                            "resultPages answer points back at itself: " + *set.next_records_url);
                return;
            }
        }
        std::vector<QueryPageSpec> pages;
        int page_no = known_at_list_;
        for (std::string &url : set.result_urls) {
            pages.push_back(QueryPageSpec{++page_no, std::move(url)});
        }
        QueryJobRecord r = rec_;
        r.step = set.done ? QueryJobStep::Downloading : QueryJobStep::Listing;
        r.page_list_url = set.done ? std::nullopt : set.next_records_url;
        r.page_list_done = set.done;
        r.attempts = 0;
        r.not_before_ms.reset();
        r.error.clear();
        retry_ = RetryState{};
        last_call_ = Call::None;  // each set is its own logical request
        queue(std::move(r), std::nullopt, std::move(pages));
        return;
    }
    if (o.transient) {
        retry_later(o.decision, now_ms);
        return;
    }
    queue_final(QueryJobStep::Failed, o.fail_text);
}

void QueryJobMachine::on_abort(const CallOutcome &o, std::int64_t now_ms) {
    if (o.decision.action == RetryAction::Success) {
        queue_final(QueryJobStep::Aborted, "aborted by request");
        outbox_->record.sf_state = std::string(to_string(JobState::Aborted));
        return;
    }
    if (o.transient) {
        retry_later(o.decision, now_ms);
        return;
    }
    if (o.status == 400 || o.status == 404) {
        // Already terminal (it completed or failed in the meantime) or gone: nothing left to stop.
        queue_final(QueryJobStep::Aborted, "aborted by request; Salesforce query job " + rec_.sf_job_id +
                                               " had already ended (" + o.fail_text + ")");
        return;
    }
    queue_final(QueryJobStep::Aborted, "aborted by request, but aborting Salesforce query job " +
                                           rec_.sf_job_id + " failed: " + o.fail_text);
}

// ---- QueryPageMachine -------------------------------------------------------------------------------------

QueryPageMachine::QueryPageMachine(QueryPageRecord record, QueryPageMachineSpec spec, RetryConfig retry,
                                   RandomSource random, WallClock clock, bool resumed)
    : rec_(std::move(record)), spec_(std::move(spec)), policy_(retry, std::move(random), std::move(clock)) {
    (void)query_job_path(spec_.api_version, spec_.sf_job_id);  // throws InvalidParameter on a bad id
    if (spec_.page_size && *spec_.page_size <= 0) {
        throw Error(ErrorKind::InvalidParameter, "query page size (maxRecords) must be positive");
    }
    if (!resumed && rec_.step != QueryPageStep::Pending) {
        throw Error(ErrorKind::InvalidParameter, "a new query page must start in step pending, not " +
                                                     std::string(to_string(rec_.step)) +
                                                     "; pass resumed=true for a loaded record");
    }
    retry_.attempts = std::max(0, rec_.attempts);
    retry_.backoff_retries = retry_.attempts;
}

QueryRequest QueryPageMachine::page_request() const {
    QueryRequest q;
    q.kind = QueryRequestKind::FetchPage;
    q.method = HttpMethod::Get;
    q.download_file = spec_.download_file;
    if (page_is_result_url(rec_)) {
        if (!is_result_url_of(rec_.path_or_locator, spec_.api_version, spec_.sf_job_id)) {
            throw Error(ErrorKind::InvalidParameter,
                        "result URL outside query job " + spec_.sf_job_id + ": " + rec_.path_or_locator);
        }
        q.path = rec_.path_or_locator;
    } else {
        std::optional<std::string_view> locator;
        if (!rec_.path_or_locator.empty()) {
            locator = rec_.path_or_locator;
        }
        q.path = query_results_path(spec_.api_version, spec_.sf_job_id, locator, spec_.page_size);
    }
    return q;
}

QueryPageAction QueryPageMachine::persist(QueryPageRecord r) {
    QueryPageAction a;
    a.kind = QueryActionKind::Persist;
    a.record = r;
    staged_ = std::move(r);
    pending_ = Pending::Commit;
    return a;
}

QueryPageAction QueryPageMachine::next(std::int64_t now_ms) {
    if (pending_ != Pending::None) {
        throw Error(ErrorKind::Internal, "query page machine: next() called while an action is outstanding");
    }
    QueryPageAction a;
    if (finished_) {
        a.kind = QueryActionKind::Finished;
        a.record = rec_;
        return a;
    }
    if (resend_) {
        a.kind = QueryActionKind::Http;
        a.request = std::move(*resend_);
        resend_.reset();
        last_request_ = a.request;
        pending_ = Pending::Http;
        return a;
    }
    if (outbox_) {
        QueryPageRecord r = std::move(*outbox_);
        outbox_.reset();
        return persist(std::move(r));
    }
    if (is_final(rec_.step)) {
        finished_ = true;
        return next(now_ms);
    }
    if (rec_.not_before_ms && *rec_.not_before_ms > now_ms) {
        a.kind = QueryActionKind::WaitUntil;
        a.wait_until_ms = *rec_.not_before_ms;
        return a;
    }
    if (rec_.step == QueryPageStep::Pending) {
        QueryPageRecord r = rec_;
        r.step = QueryPageStep::Downloading;
        r.attempts = 0;
        r.error.clear();
        return persist(std::move(r));
    }
    // Downloading: whether persisted by this instance or found after a restart (the earlier GET's outcome
    // is unknown), GET the page: the same locator gives the same bytes.
    try {
        a.request = page_request();
    } catch (const Error &e) {
        fail(e.what());
        return next(now_ms);
    }
    a.kind = QueryActionKind::Http;
    last_request_ = a.request;
    pending_ = Pending::Http;
    return a;
}

void QueryPageMachine::persisted() {
    if (pending_ != Pending::Commit) {
        throw Error(ErrorKind::Internal, "query page machine: persisted() without a pending Persist");
    }
    pending_ = Pending::None;
    rec_ = std::move(staged_);
    staged_ = QueryPageRecord{};
}

void QueryPageMachine::fail(std::string error) {
    QueryPageRecord r = rec_;
    r.step = QueryPageStep::Failed;
    r.attempts = 0;
    r.not_before_ms.reset();
    r.error = std::move(error);
    outbox_ = std::move(r);
}

void QueryPageMachine::http_done(const QueryResponse &response, std::int64_t now_ms) {
    if (pending_ != Pending::Http) {
        throw Error(ErrorKind::Internal, "query page machine: http_done() without a pending Http action");
    }
    pending_ = Pending::None;
    const CallOutcome o = evaluate_call(response, true, policy_, retry_);
    if (o.decision.action == RetryAction::RefreshTokenThenRetryOnce) {
        resend_ = last_request_;
        resend_->needs_fresh_token = true;
        return;
    }
    on_answer(o, &response, now_ms);
}

void QueryPageMachine::credentials_failed(std::string code, std::string message, std::int64_t now_ms) {
    if (pending_ != Pending::Http) {
        throw Error(ErrorKind::Internal,
                    "query page machine: credentials_failed() without a pending Http action");
    }
    pending_ = Pending::None;
    on_answer(credentials_outcome(std::move(code), std::move(message)), nullptr, now_ms);
}

void QueryPageMachine::on_answer(const CallOutcome &o, const QueryResponse *response, std::int64_t now_ms) {
    if (o.decision.action == RetryAction::Success && response != nullptr) {
        QueryPageRecord r = rec_;
        r.step = QueryPageStep::Downloaded;
        r.records = records_header(response->sforce_number_of_records);
        r.bytes = static_cast<std::int64_t>(
            std::min<std::uint64_t>(response->body_bytes, std::numeric_limits<std::int64_t>::max()));
        // With resultPages every page is listed already; the locator of such a page is not followed.
        r.next_locator = page_is_result_url(rec_) ? std::nullopt : next_locator(response->sforce_locator);
        if (r.next_locator && *r.next_locator == rec_.path_or_locator) {
            // Following it would fetch this page forever.
            fail("Salesforce answered page " + std::to_string(rec_.page_no) + " with its own locator (" +
                 *r.next_locator + ") as the next one");
            return;
        }
        r.attempts = 0;
        r.not_before_ms.reset();
        r.error.clear();
        outbox_ = std::move(r);
        return;
    }
    if (o.transient) {
        QueryPageRecord r = rec_;
        r.attempts = retry_.backoff_retries;
        r.not_before_ms = now_ms + o.decision.delay.count();
        r.error = o.decision.reason + (o.decision.action == RetryAction::WaitForLimitWindow
                                           ? "; the org's daily API request limit is used up, waiting"
                                           : "; retrying");
        outbox_ = std::move(r);
        return;
    }
    // 409 (another API version), 404 (job gone), 400, a second 401, an exhausted budget: verbatim.
    fail(o.fail_text);
}

}  // namespace sfb
