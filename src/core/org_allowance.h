#include "core/core_only.h"
#pragma once

// What the worker knows of one org's daily allocations, and whether it may start a new Salesforce job
// (issue 13: the API reserve). Pure: no I/O, no clock reads; the loop feeds it every response's
// Sforce-Limit-Info, the GET /limits answers it asks for itself, and asks it before a task sends a request
// that creates a Salesforce job.
//
// The rule. A new job is held while
//  - the daily API requests left, minus the one the create itself spends, would be below
//    sf_bulk.api_reserve percent of the allocation (ingest and query jobs; 0 % turns this off), or
//  - (query jobs) no Bulk API 2.0 query job (DailyBulkV2QueryJobs) or no MB of query result storage
//    (DailyBulkV2QueryFileStorageMB) is left: Salesforce would refuse the create anyway. These holds stay
//    with a reserve of 0 %: they only keep back what Salesforce would refuse.
// Only creation is held. Calls for jobs that exist go on: stopping them would waste what they spent.
//
// Where the figures come from. Sforce-Limit-Info (`api-usage=USED/MAX`) comes with every answer, so API usage
// is as fresh as the org's last call; the query quotas only come from /limits. The worker asks /limits
//  - when it knows nothing yet of a figure a job needs (the first job of an org after the worker started:
//    one call, so that a worker starting on an org already near its reserve does not start a burst of jobs),
//  - while a hold is in force and its figure is older than `refresh_ms`: the daily allocation is a rolling
//    24 h window, so usage falls by itself, and with nothing running no header would ever say so,
//  - before a query job when the last /limits answer is older than `refresh_ms` (other clients of the org
//    start query jobs too).
// At most once per `refresh_ms` (default 5 minutes). That bounds what watching costs: an org held all day
// with nothing running spends 288 calls (about 2 % of a 15,000 allocation, less than half the default
// reserve), and a hold lifts at most `refresh_ms` after the allocation allows. Between answers every start
// counts against the figures (one API request; one query job), so parallel starts cannot overshoot.
//
// Failing open. A /limits call that fails (a transport error, a 403 without "View Setup and Configuration",
// an unreadable body) does not keep jobs back: what is missing counts as unlimited until the next attempt.
// The reserve is a courtesy to the org's other users; Salesforce's own REQUEST_LIMIT_EXCEEDED, which the
// retry policy already waits out, stays the backstop.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sfb {

enum class SalesforceJobKind { Ingest, Query };

struct AllowancePolicy {
    int api_reserve_percent = 5;       // 0..100; 0: no API reserve
    std::int64_t refresh_ms = 300000;  // /limits at most this often (> 0)
};

// One figure of /limits, or API usage from the header (remaining = MAX - USED).
struct AllowanceFigure {
    std::int64_t max = 0;
    std::int64_t remaining = 0;
    std::int64_t read_at_ms = 0;
};

// The /limits figures the reserve uses; a key that is absent or not {"Max": n, "Remaining": n} is nullopt.
struct OrgLimits {
    std::optional<AllowanceFigure> api_requests;      // DailyApiRequests
    std::optional<AllowanceFigure> query_jobs;        // DailyBulkV2QueryJobs (API 47.0+)
    std::optional<AllowanceFigure> query_storage_mb;  // DailyBulkV2QueryFileStorageMB (API 47.0+)
};
// Parses a /limits body (docs/soql-and-rest.md §5.2): unknown keys and nested per-app entries are ignored,
// Max <= 0 or negative values make a figure absent. nullopt when the body is not a JSON object.
std::optional<OrgLimits> parse_org_limits(std::string_view body, std::int64_t read_at_ms);

struct AllowanceAnswer {
    enum class Verdict {
        Go,       // send the create now
        Hold,     // keep it back: `reason` says why (shown to users)
        Unknown,  // a figure it needs is being read (/limits): ask again shortly, nothing to show
    };
    Verdict verdict = Verdict::Go;
    std::string reason;
    std::int64_t ask_again_at_ms = 0;  // Hold, Unknown
};

class OrgAllowance {
  public:
    // Sforce-Limit-Info of any answer of this org; malformed values and MAX 0 are ignored.
    void on_limit_info(std::string_view header_value, std::int64_t now_ms);
    // The body of a 200 GET /limits; false when unreadable (then recorded as a failed read).
    bool on_limits(std::string_view body, std::int64_t now_ms);
    // The GET /limits started at limits_started() failed.
    void limits_failed(std::int64_t now_ms);

    // May a job of `kind` be created now? Notes whether a /limits read is wanted (see limits_due).
    AllowanceAnswer ask(SalesforceJobKind kind, std::int64_t now_ms, const AllowancePolicy &policy);
    // The create of a job of `kind` is being sent (after Go): it spends one API request, and a query job.
    void job_started(SalesforceJobKind kind);

    // Should the loop GET /limits now? Only after an ask wanted fresher figures, one read at a time, at most
    // once per refresh_ms (the first read at once).
    bool limits_due(std::int64_t now_ms, const AllowancePolicy &policy) const;
    void limits_started(std::int64_t now_ms);
    bool limits_in_flight() const { return in_flight_; }

    const std::optional<AllowanceFigure> &api_requests() const { return api_; }
    const std::optional<AllowanceFigure> &query_jobs() const { return query_jobs_; }
    const std::optional<AllowanceFigure> &query_storage_mb() const { return storage_mb_; }

  private:
    // A /limits read ended (either way) less than refresh_ms ago.
    bool read_recently(std::int64_t now_ms, const AllowancePolicy &policy) const;

    std::optional<AllowanceFigure> api_;  // the newest of header and /limits
    std::optional<AllowanceFigure> query_jobs_;
    std::optional<AllowanceFigure> storage_mb_;
    std::optional<std::int64_t> limits_read_at_ms_;     // the last /limits answer that could be read
    std::optional<std::int64_t> limits_attempt_at_ms_;  // the last /limits read started
    std::optional<std::int64_t> limits_ended_at_ms_;    // the last /limits read ended (read or failed)
    bool last_read_failed_ = false;                     // the last /limits read ended without figures
    bool in_flight_ = false;
    bool wanted_ = false;
};

// "15,000": the figures in the reasons users read.
std::string with_thousands(std::int64_t n);

}  // namespace sfb
