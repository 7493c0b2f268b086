// The query job kind: one task per query job ("query <job>", a QueryJobMachine: create, poll, list the
// result pages, load them) and one task per result page still to download ("page <job>/<n>", a
// QueryPageMachine), so that the loop downloads a job's pages in parallel, up to sf_bulk.max_parallel_jobs
// transfers, next to everything else it runs. The machines decide everything; this file executes their
// actions: records through the query store, calls through the loop, tokens from the broker.
//
// The job task and its page tasks meet only through the database (the page rows are the progress, read by
// the job task) and through a board shared by the tasks of this worker: which jobs' pages changed since the
// job task last read them (so that it does not read them every round), and which jobs have ended (so that
// their page tasks stop: a job that failed or was aborted leaves nothing to download).
#include "core/error.h"
#include "core/query_machine.h"
#include "query_store.h"
#include "settings.h"
#include "spool.h"
#include "worker_task.h"

#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>

namespace sfb::pg {

namespace {

std::string job_task_key(std::int64_t job_id) {
    return "query " + std::to_string(job_id);
}

std::string page_task_key(std::int64_t job_id, int page_no) {
    return "page " + std::to_string(job_id) + "/" + std::to_string(page_no);
}

struct QueryBoard {
    std::map<std::int64_t, std::uint64_t> page_changes;  // job -> a counter bumped by its page tasks
    std::set<std::int64_t> ended;                        // jobs whose final step is committed

    std::uint64_t changes(std::int64_t job_id) const {
        auto found = page_changes.find(job_id);
        return found == page_changes.end() ? 0 : found->second;
    }
};

RetryConfig retry_config() {
    RetryConfig retry;
    retry.max_attempts = settings.max_retries;
    return retry;
}

// What the job and page tasks share: the call in flight, a call parked for a token, the 401 rule's token
// bookkeeping, the calls and API usage not yet recorded.
class QueryCallTask : public WorkerTask {
  public:
    QueryCallTask(std::string key, std::int64_t job_id, int page_no, OrgKey org,
                  std::shared_ptr<QueryBoard> board)
        : key_(std::move(key)), part_{job_id, page_no}, org_(std::move(org)), board_(std::move(board)) {}

    const std::string &key() const override { return key_; }
    std::int64_t job_id() const override { return part_.job_id; }
    const OrgKey &org() const override { return org_; }
    bool waits_for_token() const override { return parked_.has_value(); }
    TransferId transfer() const override { return transfer_; }

    std::optional<std::int64_t> wake_at_ms() const override {
        if (transfer_ != 0 || parked_ || finished())
            return std::nullopt;
        return wake_at_ms_;
    }

    void on_response(TaskContext &context, HttpResponse &response) override {
        transfer_ = 0;
        if (auto usage = response.header(kHeaderSforceLimitInfo))
            org_api_usage_ = *usage;
        QueryResponse outcome;
        outcome.transport = to_transport_error(response.error);
        outcome.request_sent = response.request_started;
        outcome.status = response.status;
        outcome.body = std::move(response.body);
        outcome.retry_after = response.header(kHeaderRetryAfter);
        outcome.sforce_locator = response.header(kHeaderSforceLocator);
        outcome.sforce_number_of_records = response.header(kHeaderSforceNumberOfRecords);
        outcome.body_bytes = response.body_bytes;
        if (!response.ok())
            outcome.body = response.error_message;  // endpoint + cause, no credentials
        http_done(outcome, context.now_ms());
    }

    void note_waiting(const std::string &note) override {
        try {
            query_store::note_waiting(part_, note);
        } catch (const std::exception &) {
            // Only the explanation is lost (the store logged the error); the wait itself goes on.
        }
    }

  protected:
    virtual void http_done(const QueryResponse &response, std::int64_t now_ms) = 0;
    virtual void credentials_failed(std::string code, std::string message, std::int64_t now_ms) = 0;

    // Right before the parked call goes out with a ready token: false keeps it back (the task has taken
    // it from parked_ and set its wake time).
    virtual bool may_send(TaskContext &, const QueryRequest &) { return true; }

    enum class Parked { None, Sent, Waiting, Failed, Withheld };
    // A call parked for a token: sent when the org's token is ready (a create only when the org's allowance
    // lets it), failed (credentials_failed) when the broker gave up on it, else the loop is asked for one.
    Parked send_parked(TaskContext &context) {
        if (!parked_)
            return Parked::None;
        TokenBroker &tokens = context.tokens();
        switch (tokens.state(org_)) {
            case TokenState::Ready: {
                if (!may_send(context, *parked_))
                    return Parked::Withheld;
                QueryRequest request = std::move(*parked_);
                parked_.reset();
                send(context, request);
                return Parked::Sent;
            }
            case TokenState::Failed:
                parked_.reset();
                credentials_failed(tokens.failure(org_).code, tokens.failure(org_).message, context.now_ms());
                return Parked::Failed;
            case TokenState::Missing:
            case TokenState::Fetching:
                break;
        }
        context.need_token(org_);
        return Parked::Waiting;
    }

    void park(TaskContext &context, QueryRequest request) {
        // A resend after 401 goes out only with a newer token than the refused one.
        if (request.needs_fresh_token)
            context.tokens().token_refused(org_, sent_with_token_);
        parked_ = std::move(request);
    }

    // The calls made since the last record go with the next one.
    QueryStepRecord step_record() const { return QueryStepRecord{part_.job_id, api_calls_, org_api_usage_}; }
    void recorded() { api_calls_ = 0; }

    std::string key_;
    QueryPart part_;
    OrgKey org_;
    std::shared_ptr<QueryBoard> board_;
    std::optional<QueryRequest> parked_;
    TransferId transfer_ = 0;
    std::int64_t wake_at_ms_ = 0;

  private:
    void send(TaskContext &context, const QueryRequest &request) {
        TokenBroker &tokens = context.tokens();
        HttpRequest http;
        http.method = request.method;
        http.url = tokens.instance_url(org_) + request.path;
        sent_with_token_ = tokens.access_token(org_);
        http.headers.emplace_back("Authorization", "Bearer " + sent_with_token_);
        http.secrets = tokens.secrets(org_);
        http.idempotent = request.idempotent;
        if (request.kind == QueryRequestKind::FetchPage) {
            http.response_file = request.download_file;  // truncated by the client before writing
            http.headers.emplace_back("Accept", "text/csv");
            http.timeouts = HttpTimeouts::bulk_transfer();
        } else {
            if (!request.json_body.empty()) {
                http.body = request.json_body;
                http.headers.emplace_back("Content-Type", "application/json");
            }
            http.headers.emplace_back("Accept", "application/json");
            http.timeouts.total = std::chrono::milliseconds(settings.request_timeout_ms);
        }
        transfer_ = context.send(std::move(http));
        api_calls_++;
    }

    std::string sent_with_token_;  // the token of the call in flight (secret: compared, never shown)
    int api_calls_ = 0;
    std::string org_api_usage_;  // the last Sforce-Limit-Info seen
};

// ---- the job

class QueryJobTask final : public QueryCallTask {
  public:
    QueryJobTask(const QueryJobRow &row, bool resumed, std::shared_ptr<QueryBoard> board)
        : QueryCallTask(job_task_key(row.job_id), row.job_id, 0, row.org, std::move(board)) {
        QueryMachineConfig config;
        config.retry = retry_config();
        config.poll.first_ms = settings.poll_first_interval_ms;
        config.poll.max_ms = settings.poll_max_interval_ms;
        api_version_ = row.spec.api_version;
        machine_ = std::make_unique<QueryJobMachine>(row.record, row.spec, config, default_random_source(),
                                                     system_wall_clock(), resumed);
    }

    void advance(TaskContext &context, bool abort_requested) override;
    bool finished() const override { return ended_ || machine_->finished(); }
    bool idle() const override { return awaiting_ && transfer_ == 0 && !parked_; }

    std::optional<std::int64_t> wake_at_ms() const override {
        if (awaiting_)  // nothing to wait for but the pages: act as soon as one changed
            return board_->changes(part_.job_id) != awaited_changes_ ? std::optional<std::int64_t>(0)
                                                                     : std::nullopt;
        return QueryCallTask::wake_at_ms();
    }

    void finish(TaskContext &context) override {
        // The page files (downloaded or not) of a job that ended are never needed again.
        remove_job_files(part_.job_id);
        context.job_may_have_ended(part_.job_id);
    }

    void set_aside(const std::string &failure, bool give_up) override {
        if (give_up)
            end_failed(failure);
    }

  protected:
    void http_done(const QueryResponse &response, std::int64_t now_ms) override {
        machine_->http_done(response, now_ms);
    }
    void credentials_failed(std::string code, std::string message, std::int64_t now_ms) override {
        machine_->credentials_failed(std::move(code), std::move(message), now_ms);
    }
    bool may_send(TaskContext &context, const QueryRequest &request) override;

  private:
    const PagesProgress &progress();
    void record(const QueryJobAction &action, TaskContext &context);
    void end_failed(const std::string &error);

    std::unique_ptr<QueryJobMachine> machine_;
    ApiVersion api_version_;
    std::string shown_hold_;  // the hold reason last noted, so that an unchanged one is not written again
    PagesProgress progress_;
    bool progress_stale_ = true;
    std::uint64_t progress_changes_ = 0;  // the board's counter when progress_ was read
    bool awaiting_ = false;               // AwaitPages: idle until a page changed
    std::uint64_t awaited_changes_ = 0;
    bool ended_ = false;             // ended outside the machine (a failed load, given up on)
    bool loading_recorded_ = false;  // this task recorded the step Loading (and paused there under test)
};

// The page rows are read only where the machine looks at them, and again only after something changed.
const PagesProgress &QueryJobTask::progress() {
    QueryJobStep step = machine_->record().step;
    if (step != QueryJobStep::Listing && step != QueryJobStep::Downloading && step != QueryJobStep::Loading) {
        progress_ = PagesProgress{};
        return progress_;
    }
    std::uint64_t changes = board_->changes(part_.job_id);
    if (progress_stale_ || changes != progress_changes_) {
        progress_ =
            query_store::pages_progress(part_.job_id);  // after noting the counter: no change is missed
        progress_changes_ = changes;
        progress_stale_ = false;
    }
    return progress_;
}

void QueryJobTask::advance(TaskContext &context, bool abort_requested) {
    for (int step = 0; step < 16; ++step) {
        if (transfer_ != 0 || finished())
            return;
        Parked parked = send_parked(context);
        if (parked == Parked::Sent || parked == Parked::Waiting || parked == Parked::Withheld)
            return;
        if (parked == Parked::Failed)
            continue;
        std::int64_t now = context.now_ms();
        // An abort cuts through any wait: the machine decides what it means at this step.
        if (wake_at_ms_ > now && !abort_requested)
            return;
        if (awaiting_ && board_->changes(part_.job_id) == awaited_changes_ && !abort_requested)
            return;
        awaiting_ = false;
        const PagesProgress &pages = progress();
        QueryJobAction action = machine_->next(now, abort_requested, pages);
        switch (action.kind) {
            case QueryActionKind::Persist:
                record(action, context);
                break;
            case QueryActionKind::Load: {
                // A job that came in at Loading (a restart, or a small mirror run its call downloaded)
                // reaches the load without recording that step here: the crash tests' boundary is this.
                if (!loading_recorded_)
                    test_pause_point("query:loading", part_.job_id, 0);
                std::optional<LoadFailure> failure = query_store::load_pages(step_record(), action.record);
                if (failure) {
                    // A value that does not convert, a table gone, a privilege missing: loading again would
                    // fail the same way, so the job fails now with the reason.
                    end_failed(failure->message);
                    return;
                }
                recorded();
                machine_->persisted();
                board_->ended.insert(part_.job_id);
                test_pause_point("query:done", part_.job_id, 0);
                break;
            }
            case QueryActionKind::Http:
                park(context, std::move(action.request));
                break;
            case QueryActionKind::WaitUntil:
                wake_at_ms_ = action.wait_until_ms;
                return;
            case QueryActionKind::AwaitPages:
                awaiting_ = true;
                awaited_changes_ = progress_changes_;
                return;
            case QueryActionKind::Finished:
                return;
        }
    }
}

// A new query job waits while the org's allowance is short (org_allowance.h): the API reserve, no query job
// or no result storage left today. The machine takes the create back, so that an abort in the meantime is
// still its decision; the reason stays in the job's error until its next step is recorded.
bool QueryJobTask::may_send(TaskContext &context, const QueryRequest &request) {
    if (request.kind != QueryRequestKind::CreateJob)
        return true;
    AllowanceAnswer answer = context.may_start_job(org_, SalesforceJobKind::Query, api_version_);
    if (answer.verdict == AllowanceAnswer::Verdict::Go)
        return true;
    parked_.reset();
    machine_->http_withheld();
    wake_at_ms_ = answer.ask_again_at_ms;
    if (answer.verdict == AllowanceAnswer::Verdict::Hold && answer.reason != shown_hold_) {
        note_waiting(answer.reason);
        shown_hold_ = answer.reason;
    }
    return false;
}

void QueryJobTask::record(const QueryJobAction &action, TaskContext &context) {
    query_store::record_job_step(step_record(), action.record, action.new_pages);
    recorded();
    machine_->persisted();
    progress_stale_ = true;  // a new step or new pages: the machine must see them
    if (!action.new_pages.empty())
        context.new_tasks_ready();  // their downloads can start now
    if (is_final(action.record.step))
        board_->ended.insert(part_.job_id);
    loading_recorded_ = action.record.step == QueryJobStep::Loading;
    test_pause_point(("query:" + std::string(to_string(action.record.step))).c_str(), part_.job_id, 0);
}

void QueryJobTask::end_failed(const std::string &error) {
    QueryJobRecord failed = machine_->record();  // the last committed record
    failed.step = QueryJobStep::Failed;
    failed.attempts = 0;
    failed.not_before_ms.reset();
    failed.error = error;
    query_store::record_job_step(step_record(), failed, {});
    recorded();
    ended_ = true;
    board_->ended.insert(part_.job_id);
}

// ---- one result page

class QueryPageTask final : public QueryCallTask {
  public:
    QueryPageTask(const QueryPageRow &row, std::shared_ptr<QueryBoard> board)
        : QueryCallTask(page_task_key(row.job_id, row.record.page_no), row.job_id, row.record.page_no,
                        row.org, std::move(board)) {
        machine_ =
            std::make_unique<QueryPageMachine>(row.record, row.spec, retry_config(), default_random_source(),
                                               system_wall_clock(), /*resumed=*/true);
    }

    void advance(TaskContext &context, bool abort_requested) override;
    bool finished() const override { return stopped_ || machine_->finished(); }
    void finish(TaskContext &) override { changed(); }
    void set_aside(const std::string &failure, bool give_up) override {
        if (give_up) {
            query_store::fail_page(part_.job_id, part_.page_no, failure);
            changed();
        }
    }

  protected:
    void http_done(const QueryResponse &response, std::int64_t now_ms) override {
        machine_->http_done(response, now_ms);
    }
    void credentials_failed(std::string code, std::string message, std::int64_t now_ms) override {
        machine_->credentials_failed(std::move(code), std::move(message), now_ms);
    }

  private:
    void changed() { board_->page_changes[part_.job_id]++; }

    std::unique_ptr<QueryPageMachine> machine_;
    bool stopped_ = false;
};

// Aborts are the job task's (the page machine knows none): a page only stops when its job has ended.
void QueryPageTask::advance(TaskContext &context, bool) {
    if (board_->ended.count(part_.job_id)) {
        if (transfer_ != 0)
            context.cancel(transfer_);
        transfer_ = 0;
        parked_.reset();
        stopped_ = true;
        return;
    }
    for (int step = 0; step < 16; ++step) {
        if (transfer_ != 0 || finished())
            return;
        Parked parked = send_parked(context);
        if (parked == Parked::Sent || parked == Parked::Waiting)
            return;
        if (parked == Parked::Failed)
            continue;
        std::int64_t now = context.now_ms();
        if (wake_at_ms_ > now)
            return;
        QueryPageAction action = machine_->next(now);
        switch (action.kind) {
            case QueryActionKind::Persist:
                query_store::record_page_step(step_record(), action.record);
                recorded();
                machine_->persisted();
                changed();
                test_pause_point(("page:" + std::string(to_string(action.record.step))).c_str(), part_.job_id,
                                 part_.page_no);
                break;
            case QueryActionKind::Http:
                park(context, std::move(action.request));
                break;
            case QueryActionKind::WaitUntil:
                wake_at_ms_ = action.wait_until_ms;
                return;
            case QueryActionKind::Finished:
            case QueryActionKind::Load:
            case QueryActionKind::AwaitPages:
                return;
        }
    }
}

// ---- the source

class QuerySource final : public TaskSource {
  public:
    std::vector<std::unique_ptr<WorkerTask>> load(TaskContext &context, const std::set<std::string> &running,
                                                  int limit) override;

  private:
    void forget_ended(const std::set<std::string> &running);

    std::shared_ptr<QueryBoard> board_ = std::make_shared<QueryBoard>();
};

// A job's entries stay on the board while a task of it may still read them.
void QuerySource::forget_ended(const std::set<std::string> &running) {
    for (auto it = board_->ended.begin(); it != board_->ended.end();) {
        std::string page_prefix = "page " + std::to_string(*it) + "/";
        auto next = running.lower_bound(page_prefix);
        bool pages_running = next != running.end() && next->compare(0, page_prefix.size(), page_prefix) == 0;
        if (pages_running || running.count(job_task_key(*it))) {
            ++it;
            continue;
        }
        board_->page_changes.erase(*it);
        it = board_->ended.erase(it);
    }
}

std::vector<std::unique_ptr<WorkerTask>> QuerySource::load(TaskContext &context,
                                                           const std::set<std::string> &running, int limit) {
    std::vector<std::unique_ptr<WorkerTask>> tasks;
    forget_ended(running);
    if (limit <= 0)
        return tasks;
    // The running ones are read too, so ask for that many more. Jobs first: a job task is what lists the
    // pages and, once they download, it waits without holding a slot (idle()).
    QueryWork work = query_store::unfinished_query_work(limit + static_cast<int>(running.size()));
    for (const QueryJobRow &row : work.jobs) {
        if (static_cast<int>(tasks.size()) >= limit)
            break;
        if (running.count(job_task_key(row.job_id)))
            continue;
        if (!row.unreadable.empty()) {
            QueryJobRecord failed = row.record;
            failed.step = QueryJobStep::Failed;
            failed.error = row.unreadable;
            query_store::record_job_step(QueryStepRecord{row.job_id, 0, ""}, failed, {});
            context.job_may_have_ended(row.job_id);
            continue;
        }
        context.job_seen(row.job_id, row.org);
        if (!row.server_problem.empty())
            context.tokens().fail(row.org, "SERVER_CONFIGURATION", row.server_problem);
        bool resumed = row.record.step != QueryJobStep::Pending;
        board_->ended.erase(row.job_id);
        tasks.push_back(std::make_unique<QueryJobTask>(row, resumed, board_));
    }
    for (const QueryPageRow &row : work.pages) {
        if (static_cast<int>(tasks.size()) >= limit)
            break;
        if (running.count(page_task_key(row.job_id, row.record.page_no)) || board_->ended.count(row.job_id))
            continue;
        if (!row.unreadable.empty()) {
            query_store::fail_page(row.job_id, row.record.page_no, row.unreadable);
            board_->page_changes[row.job_id]++;
            continue;
        }
        context.job_seen(row.job_id, row.org);
        if (!row.server_problem.empty())
            context.tokens().fail(row.org, "SERVER_CONFIGURATION", row.server_problem);
        tasks.push_back(std::make_unique<QueryPageTask>(row, board_));
    }
    return tasks;
}

}  // namespace

std::unique_ptr<TaskSource> make_query_source() {
    return std::make_unique<QuerySource>();
}

}  // namespace sfb::pg
