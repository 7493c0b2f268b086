#include "core/org_allowance.h"

#include "core/bulk_api.h"

#include <nlohmann/json.hpp>

#include <algorithm>

namespace sfb {

namespace {

using json = nlohmann::json;

// How soon a held or waiting task asks again. Asking is in memory; a shorter wait only costs CPU.
constexpr std::int64_t kAskAgainHeldMs = 1000;
constexpr std::int64_t kAskAgainUnknownMs = 250;

std::optional<AllowanceFigure> figure(const json &limits, const char *key, std::int64_t read_at_ms) {
    auto it = limits.find(key);
    if (it == limits.end() || !it->is_object()) {
        return std::nullopt;
    }
    auto max = it->find("Max");
    auto remaining = it->find("Remaining");
    if (max == it->end() || remaining == it->end() || !max->is_number_integer() ||
        !remaining->is_number_integer()) {
        return std::nullopt;
    }
    const std::int64_t m = max->get<std::int64_t>();
    const std::int64_t r = remaining->get<std::int64_t>();
    if (m <= 0 || r < 0) {
        return std::nullopt;  // no allocation to take a share of, or nonsense
    }
    return AllowanceFigure{m, std::min(r, m), read_at_ms};
}

// ceil(max * percent / 100) without overflowing for any 18-digit max.
std::int64_t reserve_of(std::int64_t max, int percent) {
    return (max / 100) * percent + ((max % 100) * percent + 99) / 100;
}

}  // namespace

std::string with_thousands(std::int64_t n) {
    std::string digits = std::to_string(n < 0 ? -n : n);
    std::string out;
    for (std::size_t i = 0; i < digits.size(); ++i) {
        if (i > 0 && (digits.size() - i) % 3 == 0) {
            out += ',';
        }
        out += digits[i];
    }
    return n < 0 ? "-" + out : out;
}

std::optional<OrgLimits> parse_org_limits(std::string_view body, std::int64_t read_at_ms) {
    const json limits = json::parse(body.begin(), body.end(), nullptr, false);
    if (limits.is_discarded() || !limits.is_object()) {
        return std::nullopt;
    }
    OrgLimits out;
    out.api_requests = figure(limits, "DailyApiRequests", read_at_ms);
    out.query_jobs = figure(limits, "DailyBulkV2QueryJobs", read_at_ms);
    out.query_storage_mb = figure(limits, "DailyBulkV2QueryFileStorageMB", read_at_ms);
    return out;
}

void OrgAllowance::on_limit_info(std::string_view header_value, std::int64_t now_ms) {
    std::optional<ApiUsage> usage = parse_limit_info(header_value);
    if (!usage || usage->max <= 0) {
        return;
    }
    api_ = AllowanceFigure{usage->max, std::max<std::int64_t>(0, usage->max - usage->used), now_ms};
}

bool OrgAllowance::on_limits(std::string_view body, std::int64_t now_ms) {
    std::optional<OrgLimits> limits = parse_org_limits(body, now_ms);
    if (!limits) {
        limits_failed(now_ms);
        return false;
    }
    in_flight_ = false;
    last_read_failed_ = false;
    limits_read_at_ms_ = now_ms;
    limits_ended_at_ms_ = now_ms;
    if (limits->api_requests) {
        api_ = limits->api_requests;  // the newest reading, like a header's
    }
    // Absent query keys (an API version below 47.0) mean no such limit is known: nothing to hold on.
    query_jobs_ = limits->query_jobs;
    storage_mb_ = limits->query_storage_mb;
    return true;
}

void OrgAllowance::limits_failed(std::int64_t now_ms) {
    in_flight_ = false;
    last_read_failed_ = true;
    limits_ended_at_ms_ = now_ms;
}

bool OrgAllowance::read_recently(std::int64_t now_ms, const AllowancePolicy &policy) const {
    return limits_ended_at_ms_ && now_ms - *limits_ended_at_ms_ < policy.refresh_ms;
}

AllowanceAnswer OrgAllowance::ask(SalesforceJobKind kind, std::int64_t now_ms,
                                  const AllowancePolicy &policy) {
    const bool query = kind == SalesforceJobKind::Query;
    const bool api_reserve = policy.api_reserve_percent > 0;
    AllowanceAnswer answer;

    // Nothing known of a figure this job needs: read /limits first, unless a read just ended without it
    // (failing open, see the header).
    const bool missing = (api_reserve && !api_) || (query && !limits_read_at_ms_);
    if (missing && !read_recently(now_ms, policy)) {
        if (!in_flight_) {
            wanted_ = true;
        }
        answer.verdict = AllowanceAnswer::Verdict::Unknown;
        answer.ask_again_at_ms = now_ms + kAskAgainUnknownMs;
        return answer;
    }

    // Failing open here too: while /limits cannot be read, a figure older than refresh_ms does not hold a
    // job. Nothing else could ever lift such a hold (with every job held, no answer brings a newer header),
    // and Salesforce's own REQUEST_LIMIT_EXCEEDED remains the backstop.
    const auto usable = [&](const AllowanceFigure &f) {
        return !last_read_failed_ || now_ms - f.read_at_ms < policy.refresh_ms;
    };
    std::optional<std::int64_t> held_on;  // when the figure of the hold was read
    if (api_reserve && api_ && usable(*api_)) {
        const std::int64_t reserve = reserve_of(api_->max, policy.api_reserve_percent);
        // The create itself spends one request.
        if (api_->remaining - 1 < reserve) {
            answer.reason = "waiting: the org has " + with_thousands(api_->remaining) + " of " +
                            with_thousands(api_->max) +
                            " daily API requests left, and sf_bulk.api_reserve keeps " +
                            std::to_string(policy.api_reserve_percent) + "% (" + with_thousands(reserve) +
                            ") for other uses; new Salesforce jobs start when more are free";
            held_on = api_->read_at_ms;
        }
    }
    if (!held_on && query && query_jobs_ && usable(*query_jobs_) && query_jobs_->remaining <= 0) {
        answer.reason = "waiting: the org has " + with_thousands(query_jobs_->remaining) + " of " +
                        with_thousands(query_jobs_->max) +
                        " daily Bulk API 2.0 query jobs left (DailyBulkV2QueryJobs); the query job starts "
                        "when one is free";
        held_on = query_jobs_->read_at_ms;
    }
    if (!held_on && query && storage_mb_ && usable(*storage_mb_) && storage_mb_->remaining <= 0) {
        answer.reason = "waiting: the org has " + with_thousands(storage_mb_->remaining) + " of " +
                        with_thousands(storage_mb_->max) +
                        " MB of daily Bulk API 2.0 query results left (DailyBulkV2QueryFileStorageMB); the "
                        "query job starts when more is free";
        held_on = storage_mb_->read_at_ms;
    }

    // The query quotas only come from /limits, and other clients of the org spend them too.
    const bool query_figures_stale =
        query && (!limits_read_at_ms_ || now_ms - *limits_read_at_ms_ >= policy.refresh_ms);
    if ((held_on && now_ms - *held_on >= policy.refresh_ms) || query_figures_stale) {
        if (!in_flight_) {
            wanted_ = true;
        }
    }
    if (held_on) {
        answer.verdict = AllowanceAnswer::Verdict::Hold;
        answer.ask_again_at_ms = now_ms + kAskAgainHeldMs;
    }
    return answer;
}

void OrgAllowance::job_started(SalesforceJobKind kind) {
    if (api_) {
        api_->remaining = std::max<std::int64_t>(0, api_->remaining - 1);
    }
    if (kind == SalesforceJobKind::Query && query_jobs_) {
        query_jobs_->remaining = std::max<std::int64_t>(0, query_jobs_->remaining - 1);
    }
}

bool OrgAllowance::limits_due(std::int64_t now_ms, const AllowancePolicy &policy) const {
    return wanted_ && !in_flight_ &&
           (!limits_attempt_at_ms_ || now_ms - *limits_attempt_at_ms_ >= policy.refresh_ms);
}

void OrgAllowance::limits_started(std::int64_t now_ms) {
    in_flight_ = true;
    wanted_ = false;
    limits_attempt_at_ms_ = now_ms;
}

}  // namespace sfb
