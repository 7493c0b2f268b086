#include "fdw_fetch.h"

#include "core/bulk_api.h"
#include "core/csv.h"
#include "core/error.h"
#include "core/retry.h"

#include "pg_headers.h"

extern "C" {
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/wait_event.h"
}

#include "guard.h"
#include "settings.h"

#include <algorithm>
#include <chrono>
#include <string>
#include <utility>

namespace sfb::pg {

namespace {

constexpr const char *kWhat = "salesforce foreign table";

// Waits `ms` milliseconds; a cancel request or termination raises PostgreSQL's error.
void interruptible_sleep(long ms) {
    pg_call([ms] {
        (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, ms, PG_WAIT_EXTENSION);
        ResetLatch(MyLatch);
        CHECK_FOR_INTERRUPTS();
    });
}

[[noreturn]] void refused(const std::string &doing, const HttpResponse &response, const std::string &soql) {
    ApiError e = parse_api_error(response.status, response.body);
    raise_error(ERRCODE_FDW_ERROR, std::string(kWhat) + ": Salesforce refused " + doing + ": " + e.summary(),
                "SOQL: " + soql);
}

}  // namespace

SalesforceFetch::SalesforceFetch(OrgCall org, std::string soql, std::vector<SoqlPath> paths, bool bulk)
    : org_(std::move(org)), soql_(std::move(soql)), paths_(std::move(paths)), bulk_(bulk) {}

SalesforceFetch::~SalesforceFetch() {
    abort_bulk_job();
}

void SalesforceFetch::abort_bulk_job() noexcept {
    if (job_id_.empty() || job_complete_)
        return;
    try {
        HttpRequest request;
        request.method = HttpMethod::Patch;
        request.url = query_job_path(org_.api_version, job_id_);
        request.headers.emplace_back("Content-Type", "application/json; charset=UTF-8");
        request.headers.emplace_back("Accept", "application/json");
        request.body = state_change_body(JobState::Aborted);
        call_org_quietly(org_, std::move(request), 3000);
    } catch (...) {
    }
    job_id_.clear();
}

// One request through call_org, resent after a transient failure (the core retry policy: 5xx, 429, limits
// on concurrent requests) when it is idempotent. Other answers are returned for the caller to judge.
HttpResponse SalesforceFetch::send(HttpRequest request, const char *what) {
    RetryConfig config;
    config.base = std::chrono::milliseconds(200);
    config.cap = std::chrono::milliseconds(5000);
    config.max_attempts = settings.max_retries;
    RetryPolicy policy(config, default_random_source(), system_wall_clock());
    RetryState state;
    bool idempotent = bulk_method_is_idempotent(request.method);
    for (;;) {
        HttpResponse response = call_org(org_, request, what);
        ++stats_.api_calls;
        AttemptOutcome outcome;
        outcome.status = response.status;
        // Only a refusal has an error body: a page's JSON is not parsed a second time (half a REST scan's
        // time, the bench found).
        if (response.status >= 300) {
            ApiError e = parse_api_error(response.status, response.body);
            if (!e.items.empty()) {
                outcome.error_code = e.items.front().error_code;
                outcome.error_message = e.items.front().message;
            }
        }
        outcome.retry_after = response.header("Retry-After");
        RetryDecision decision = policy.decide(outcome, idempotent, state);
        if (decision.action != RetryAction::RetryAfterBackoff)
            return response;
        interruptible_sleep(static_cast<long>(decision.delay.count()));
    }
}

void SalesforceFetch::restart(std::string soql, bool bulk) {
    abort_bulk_job();
    soql_ = std::move(soql);
    bulk_ = bulk;
    rows_.clear();
    next_row_ = 0;
    started_ = false;
    last_page_ = false;
    next_url_.clear();
    job_complete_ = false;
    locator_.reset();
}

const SalesforceFetch::Row *SalesforceFetch::next() {
    while (next_row_ >= rows_.size()) {
        if (started_ && last_page_)
            return nullptr;
        rows_.clear();
        next_row_ = 0;
        if (!bulk_) {
            rest_page();
        } else {
            if (!started_) {
                bulk_create();
                bulk_wait();
            }
            bulk_page();
        }
        started_ = true;
    }
    ++stats_.rows;
    return &rows_[next_row_++];
}

void SalesforceFetch::rest_page() {
    HttpRequest request;
    request.url = started_ ? next_url_ : rest_query_path(org_.api_version, soql_, false);
    request.headers.emplace_back("Accept", "application/json");
    HttpResponse response = send(std::move(request), kWhat);
    if (response.status != 200)
        refused("the query", response, soql_);
    RestQueryPage page;
    try {
        page = parse_rest_query_page(response.body, paths_);
    } catch (const Error &e) {
        raise_error(ERRCODE_FDW_ERROR, std::string(kWhat) + ": " + e.what(), "SOQL: " + soql_);
    }
    ++stats_.pages;
    rows_ = std::move(page.rows);
    last_page_ = page.done;
    next_url_ = page.next_records_url;
}

void SalesforceFetch::bulk_create() {
    QueryJobRequest job;
    job.operation = Operation::Query;
    job.query = soql_;
    HttpRequest request;
    request.method = HttpMethod::Post;
    request.url = query_jobs_path(org_.api_version);
    request.headers.emplace_back("Content-Type", "application/json; charset=UTF-8");
    request.headers.emplace_back("Accept", "application/json");
    request.body = to_json(job);
    HttpResponse response = send(std::move(request), kWhat);
    if (response.status != 200 && response.status != 201)
        refused("the query job", response, soql_);
    try {
        job_id_ = parse_job_info(response.body).id;
    } catch (const Error &e) {
        raise_error(ERRCODE_FDW_ERROR, std::string(kWhat) + ": " + e.what(), "SOQL: " + soql_);
    }
}

void SalesforceFetch::bulk_wait() {
    long wait_ms = std::max(settings.poll_first_interval_ms, 10);
    for (;;) {
        HttpRequest request;
        request.url = query_job_path(org_.api_version, job_id_);
        request.headers.emplace_back("Accept", "application/json");
        HttpResponse response = send(std::move(request), kWhat);
        if (response.status != 200)
            refused("a poll of query job " + job_id_, response, soql_);
        JobInfo info;
        try {
            info = parse_job_info(response.body);
        } catch (const Error &e) {
            raise_error(ERRCODE_FDW_ERROR, std::string(kWhat) + ": " + e.what(), "SOQL: " + soql_);
        }
        if (info.state == JobState::JobComplete) {
            job_complete_ = true;
            return;
        }
        if (info.state == JobState::Failed || info.state == JobState::Aborted) {
            job_complete_ = true;
            raise_error(ERRCODE_FDW_ERROR,
                        std::string(kWhat) + ": query job " + job_id_ + " " +
                            std::string(to_string(info.state)) +
                            (info.error_message ? ": " + *info.error_message : std::string()),
                        "SOQL: " + soql_);
        }
        interruptible_sleep(wait_ms);
        wait_ms = std::min<long>(wait_ms * 2, std::max(settings.poll_max_interval_ms, 10));
    }
}

void SalesforceFetch::bulk_page() {
    // Pages of about 2 million values: a wide object's rows come in smaller pages, so memory stays flat.
    std::int64_t page_rows = std::clamp<std::int64_t>(
        2000000 / static_cast<std::int64_t>(std::max<std::size_t>(paths_.size(), 1)), 2000, kBulkPageRows);
    HttpRequest request;
    request.url =
        query_results_path(org_.api_version, job_id_,
                           locator_ ? std::optional<std::string_view>(*locator_) : std::nullopt, page_rows);
    request.headers.emplace_back("Accept", "text/csv");
    request.max_response_bytes = 1024u * 1024 * 1024;
    HttpResponse response = send(std::move(request), kWhat);
    if (response.status != 200)
        refused("the results of query job " + job_id_, response, soql_);
    ++stats_.pages;
    bool header = true;
    std::size_t width = paths_.size();
    csv::Reader reader(csv::ReaderOptions{}, [&](const std::vector<std::string_view> &fields) {
        if (header) {
            header = false;
            if (fields.size() != width)
                throw Error(ErrorKind::ExternalService, "a result page has " + std::to_string(fields.size()) +
                                                            " columns, the query selects " +
                                                            std::to_string(width));
            return;
        }
        if (fields.size() != width)
            throw Error(ErrorKind::ExternalService, "a result row has " + std::to_string(fields.size()) +
                                                        " values, the query selects " +
                                                        std::to_string(width));
        Row row;
        row.reserve(width);
        for (std::string_view f : fields)
            row.push_back(f.empty() ? std::nullopt : std::optional<std::string>(std::string(f)));
        rows_.push_back(std::move(row));
    });
    try {
        reader.feed(response.body);
        reader.finish();
    } catch (const Error &e) {
        raise_error(ERRCODE_FDW_ERROR, std::string(kWhat) + ": query job " + job_id_ + ": " + e.what(),
                    "SOQL: " + soql_);
    }
    locator_ = next_locator(response.header("Sforce-Locator"));
    last_page_ = !locator_.has_value();
}

}  // namespace sfb::pg
