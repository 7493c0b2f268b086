// The ingest job kind: one task per upload (one spool file = one Salesforce ingest job), driving a core
// IngestChunkMachine. The machine decides everything; this file executes its actions: records through the
// job store, calls through the loop, tokens from the broker.
#include "core/error.h"
#include "core/ingest_machine.h"
#include "core/spool_names.h"
#include "job_store.h"
#include "settings.h"
#include "spool.h"
#include "worker_task.h"

#include <unistd.h>

#include <chrono>
#include <map>
#include <set>
#include <string>
#include <utility>

namespace sfb::pg {

namespace {

std::string upload_task_key(std::int64_t job_id, int chunk_no) {
    return "upload " + std::to_string(job_id) + "/" + std::to_string(chunk_no);
}

class IngestUpload final : public WorkerTask {
  public:
    IngestUpload(const UploadRow &row, bool resumed);

    const std::string &key() const override { return key_; }
    std::int64_t job_id() const override { return upload_.job_id; }
    const OrgKey &org() const override { return org_; }
    void advance(TaskContext &context, bool abort_requested) override;
    void on_response(TaskContext &context, HttpResponse &response) override;
    std::optional<std::int64_t> wake_at_ms() const override;
    bool waits_for_token() const override { return parked_.has_value(); }
    TransferId transfer() const override { return transfer_; }
    bool finished() const override { return machine_->finished(); }
    void finish(TaskContext &context) override;
    void set_aside(const std::string &failure, bool give_up) override;
    void note_waiting(const std::string &note) override;

  private:
    void send(TaskContext &context, const ChunkRequest &request);
    bool may_create(TaskContext &context);
    void record(const ChunkRecord &record);

    UploadKey upload_;
    std::string key_;
    OrgKey org_;
    std::string spool_file_;
    csv::Delimiter delimiter_;
    ApiVersion api_version_;
    std::unique_ptr<IngestChunkMachine> machine_;
    std::optional<ChunkRequest> parked_;  // waits for a token
    TransferId transfer_ = 0;
    std::string sent_with_token_;  // the token of the call in flight (secret: compared, never shown)
    std::int64_t wake_at_ms_ = 0;
    int api_calls_ = 0;          // not yet added to sf_bulk.jobs.api_calls
    std::string org_api_usage_;  // the last Sforce-Limit-Info seen, e.g. "api-usage=27/15000"
    std::string shown_hold_;     // the hold reason last noted, so that an unchanged one is not written again
};

IngestUpload::IngestUpload(const UploadRow &row, bool resumed)
    : upload_{row.job_id, row.chunk_no},
      key_(upload_task_key(row.job_id, row.chunk_no)),
      org_(row.org),
      spool_file_(row.spool_file),
      delimiter_(row.job.column_delimiter) {
    ChunkSpec spec;
    spec.api_version = parse_api_version(row.server.api_version, ApiKind::Ingest);
    api_version_ = spec.api_version;
    spec.job = row.job;
    spec.spool_path = row.spool_file;
    spec.successful_results_path = result_file_name(row.spool_file, IngestResult::Successful);
    spec.failed_results_path = result_file_name(row.spool_file, IngestResult::Failed);
    spec.unprocessed_results_path = result_file_name(row.spool_file, IngestResult::Unprocessed);

    IngestMachineConfig config;
    config.retry.max_attempts = settings.max_retries;
    config.poll.first_ms = settings.poll_first_interval_ms;
    config.poll.max_ms = settings.poll_max_interval_ms;
    machine_ = std::make_unique<IngestChunkMachine>(row.record, spec, config, default_random_source(),
                                                    system_wall_clock(), resumed);
}

std::optional<std::int64_t> IngestUpload::wake_at_ms() const {
    if (transfer_ != 0 || parked_ || machine_->finished())
        return std::nullopt;
    return wake_at_ms_;
}

void IngestUpload::advance(TaskContext &context, bool abort_requested) {
    // Bounded: a machine that keeps asking for local steps yields after a few so others get their turn.
    for (int step = 0; step < 16; ++step) {
        if (transfer_ != 0 || machine_->finished())
            return;
        if (parked_) {
            TokenBroker &tokens = context.tokens();
            switch (tokens.state(org_)) {
                case TokenState::Ready: {
                    if (parked_->kind == ChunkRequestKind::CreateJob && !may_create(context))
                        return;
                    ChunkRequest request = std::move(*parked_);
                    parked_.reset();
                    send(context, request);
                    return;
                }
                case TokenState::Failed:
                    parked_.reset();
                    machine_->credentials_failed(tokens.failure(org_).code, tokens.failure(org_).message,
                                                 context.now_ms());
                    continue;
                case TokenState::Missing:
                case TokenState::Fetching:
                    context.need_token(org_);
                    return;
            }
        }
        std::int64_t now = context.now_ms();
        // An abort cuts through any wait (poll interval, backoff, the daily-limit window): the machine
        // decides what it means at this step.
        if (wake_at_ms_ > now && !abort_requested)
            return;
        ChunkAction action = machine_->next(now, abort_requested);
        switch (action.kind) {
            case ChunkActionKind::Persist:
                record(action.record);
                machine_->persisted();
                test_pause_point(std::string(to_string(action.record.step)).c_str(), upload_.job_id,
                                 upload_.chunk_no);
                break;
            case ChunkActionKind::StoreResults:
                job_store::store_results(StepRecord{upload_, action.record, api_calls_, org_api_usage_},
                                         action.result_files, delimiter_);
                api_calls_ = 0;
                machine_->persisted();
                test_pause_point("stored", upload_.job_id, upload_.chunk_no);
                for (const ChunkResultFile &file : action.result_files)
                    unlink(file.path.c_str());
                break;
            case ChunkActionKind::Http:
                // A resend after 401 goes out only with a newer token than the refused one.
                if (action.request.needs_fresh_token)
                    context.tokens().token_refused(org_, sent_with_token_);
                parked_ = std::move(action.request);
                break;
            case ChunkActionKind::WaitUntil:
                wake_at_ms_ = action.wait_until_ms;
                return;
            case ChunkActionKind::Finished:
                return;
        }
    }
}

// A new Salesforce job waits while the org's allowance is short (org_allowance.h). The machine takes the
// create back, so that an abort in the meantime is still its decision (no Salesforce job, nothing to
// abort there); the reason stays in the chunk's error until its next step is recorded.
bool IngestUpload::may_create(TaskContext &context) {
    AllowanceAnswer answer = context.may_start_job(org_, SalesforceJobKind::Ingest, api_version_);
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

void IngestUpload::record(const ChunkRecord &record) {
    job_store::record_step(StepRecord{upload_, record, api_calls_, org_api_usage_});
    api_calls_ = 0;
}

void IngestUpload::send(TaskContext &context, const ChunkRequest &request) {
    TokenBroker &tokens = context.tokens();
    HttpRequest http;
    http.method = request.method;
    http.url = tokens.instance_url(org_) + request.path;
    sent_with_token_ = tokens.access_token(org_);
    http.headers.emplace_back("Authorization", "Bearer " + sent_with_token_);
    http.secrets = tokens.secrets(org_);
    http.idempotent = request.idempotent;
    if (request.kind == ChunkRequestKind::Upload) {
        http.body_file = request.upload_file;
        http.headers.emplace_back("Content-Type", "text/csv");
        http.headers.emplace_back("Accept", "application/json");
        http.timeouts = HttpTimeouts::bulk_transfer();
    } else if (request.kind == ChunkRequestKind::FetchResult) {
        http.response_file = request.download_file;
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

void IngestUpload::on_response(TaskContext &context, HttpResponse &response) {
    transfer_ = 0;
    if (auto usage = response.header(kHeaderSforceLimitInfo))
        org_api_usage_ = *usage;
    ChunkResponse outcome;
    outcome.transport = to_transport_error(response.error);
    outcome.request_sent = response.request_started;
    outcome.status = response.status;
    outcome.body = std::move(response.body);
    outcome.retry_after = response.header(kHeaderRetryAfter);
    if (!response.ok()) {
        // The transport's message (endpoint + cause, no credentials) is what users should see.
        outcome.body = response.error_message;
    }
    machine_->http_done(outcome, context.now_ms());
}

void IngestUpload::finish(TaskContext &context) {
    // An upload that ended without any result from Salesforce — before a Salesforce job existed (aborted,
    // refused credentials), with every upload attempt refused, or with a job Salesforce no longer knows —
    // has rows whose fate is unknown: they are the job's unprocessed rows, stored from the spool file itself,
    // so that every row sent is accounted for.
    if (machine_->record().step != ChunkStep::Done)
        job_store::store_unsent_rows(upload_, spool_file_, delimiter_);
    unlink(spool_file_.c_str());
    context.job_may_have_ended(upload_.job_id);
}

void IngestUpload::set_aside(const std::string &failure, bool give_up) {
    if (give_up)
        job_store::fail_upload(upload_, failure);
}

void IngestUpload::note_waiting(const std::string &note) {
    try {
        job_store::note_waiting({upload_}, note);
    } catch (const std::exception &) {
        // Only the explanation is lost (the store logged the error); the wait itself goes on.
    }
}

class IngestSource final : public TaskSource {
  public:
    std::vector<std::unique_ptr<WorkerTask>> load(TaskContext &context, const std::set<std::string> &running,
                                                  int limit) override;
};

std::vector<std::unique_ptr<WorkerTask>> IngestSource::load(TaskContext &context,
                                                            const std::set<std::string> &running, int limit) {
    std::vector<std::unique_ptr<WorkerTask>> tasks;
    if (limit <= 0)
        return tasks;
    // The running ones are read too (they come first in the order), so ask for that many more.
    for (const UploadRow &row : job_store::unfinished_uploads(limit + static_cast<int>(running.size()))) {
        if (static_cast<int>(tasks.size()) >= limit)
            break;
        if (running.count(upload_task_key(row.job_id, row.chunk_no)))
            continue;
        if (!row.unreadable.empty()) {
            job_store::fail_upload(UploadKey{row.job_id, row.chunk_no}, row.unreadable);
            context.job_may_have_ended(row.job_id);
            continue;
        }
        context.job_seen(row.job_id, row.org);
        if (!row.server_problem.empty())
            context.tokens().fail(row.org, "SERVER_CONFIGURATION", row.server_problem);
        bool resumed = row.record.step != ChunkStep::Spooled;
        tasks.push_back(std::make_unique<IngestUpload>(row, resumed));
        if (!resumed)
            test_pause_point("spooled", row.job_id, row.chunk_no);
    }
    return tasks;
}

}  // namespace

std::unique_ptr<TaskSource> make_ingest_source() {
    return std::make_unique<IngestSource>();
}

}  // namespace sfb::pg
