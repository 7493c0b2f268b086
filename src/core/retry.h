// The HTTP retry policy (docs/bulk-api-2.md §3.6, §4.4).
//
// Pure and deterministic: the transport reports what happened to one attempt as an `AttemptOutcome`; the
// policy answers what to do next and after how long. Randomness and wall-clock time are injected so tests
// (and replays of a worker log) give the same answers. The policy performs no I/O and never sleeps: the
// worker schedules the next attempt on its own latch-driven loop.
#pragma once
#include "core/core_only.h"

#include "core/http_types.h"

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace sfb {

// What one attempt produced. Fill `status` only when `transport == None`.
struct AttemptOutcome {
    TransportError transport = TransportError::None;
    // For transport errors: true when any byte of the request may have reached the server (connection was
    // established and sending began). The transport must err on the side of true. Decides retry vs reconcile
    // for non-idempotent requests.
    bool request_sent = false;
    int status = 0;
    std::string error_code;     // first Salesforce `errorCode` of the body, if any (see bulk_api.h)
    std::string error_message;  // its `message`
    std::optional<std::string> retry_after;  // raw Retry-After header value, if present
};

enum class RetryAction {
    Success,                    // 2xx: use the response
    RetryAfterBackoff,          // send the same request again after `delay`
    RefreshTokenThenRetryOnce,  // obtain a new access token, then resend once (delay is zero)
    WaitForLimitWindow,  // the org's rolling 24 h API allocation is spent: park *all* calls to this org
    Reconcile,           // outcome unknown for a non-idempotent request: look the effect up, don't resend
    Fail,                // give up; `reason` says why (Salesforce's code and message verbatim)
};
std::string_view to_string(RetryAction a);

// Whether a request may be sent twice with the same effect. Decided per request by the caller; the default
// for Bulk API 2.0 calls by method (http_types.h's HttpMethod) is `bulk_method_is_idempotent`.
// GET and DELETE: yes (a repeated DELETE answers 404, which reconciliation treats as done).
// POST (create job): no — a lost response followed by a resend can create a duplicate job (§3).
// PUT (upload data): no, although HTTP calls PUT idempotent — Bulk API 2.0 accepts exactly one upload per job
//   and a second one fails the job (§5.2).
// PATCH (state change): no — resending UploadComplete to a job that already left Open answers 400, which
// would
//   be misreported as a failure; reconcile with a GET instead.
// The OAuth token POST is idempotent in effect (each call just mints a token): callers pass true for it.
bool bulk_method_is_idempotent(HttpMethod m);

// Pure classification of one outcome, ignoring budgets and delays:
//   2xx                                       -> Success
//   401 INVALID_SESSION_ID                    -> RefreshTokenThenRetryOnce, except a message saying the
//   session
//                                                "is not valid for use with the REST API" (scope/token type)
//                                                -> Fail
//   403 REQUEST_LIMIT_EXCEEDED                -> RetryAfterBackoff when the message is about concurrent
//   requests,
//                                                otherwise WaitForLimitWindow (TotalRequests / daily
//                                                allocation)
//   406, 420, 429, 500, 502, 503, 504         -> RetryAfterBackoff (504 is not in §3 but is the gateway twin
//   of
//                                                502 that proxies produce)
//   other statuses                            -> Fail
//   ResolveFailed, ConnectFailed              -> RetryAfterBackoff (nothing reached the server)
//   Timeout, ConnectionDropped                -> RetryAfterBackoff
//   TlsError, Cancelled, Other                -> Fail
// Non-idempotent requests: when the server may have acted but we did not see its answer — a Timeout or
// ConnectionDropped with `request_sent`, or a 500/502/504 (an upstream may have committed before failing) —
// the answer is Reconcile instead of RetryAfterBackoff. 406/420/429/503 and the concurrency limit are
// rejections before processing and stay retryable.
RetryAction classify(const AttemptOutcome &outcome, bool idempotent);

// An HTTP-date (RFC 9110 §5.6.7: IMF-fixdate, obsolete RFC 850 and asctime forms) as seconds since the epoch;
// nullopt when unparseable. Also what a Date header says of the server's clock.
std::optional<std::int64_t> parse_http_date(std::string_view value);

// Retry-After (RFC 9110 §10.2.3): delta-seconds or an HTTP-date (IMF-fixdate, obsolete RFC 850 and asctime
// forms). Returns the wait relative to `now` (zero for a date in the past), or nullopt when unparseable.
std::optional<std::chrono::seconds> parse_retry_after(std::string_view value,
                                                      std::chrono::system_clock::time_point now);

struct RetryConfig {
    // Full-jitter exponential backoff: retry n (1-based) waits uniform[0, min(cap, base * 2^(n-1))], then at
    // least `min_delay`.
    std::chrono::milliseconds base{1000};
    std::chrono::milliseconds cap{60000};
    std::chrono::milliseconds min_delay{100};
    // Attempts allowed for transient failures, including the first: after max_attempts - 1 backoff retries
    // the next RetryAfterBackoff becomes Fail.
    int max_attempts = 6;
    // Upper bound applied to a server's Retry-After (a proxy saying "come back tomorrow" must not park a job
    // for a day; we simply try again and count the attempt).
    std::chrono::milliseconds max_retry_after{300000};
    // How long to park an org whose daily API allocation is spent before probing again. The allocation is a
    // rolling 24 h window, so capacity returns gradually; 15 minutes costs at most ~100 probe calls a day.
    std::chrono::milliseconds limit_window_wait{15 * 60 * 1000};
};

// Per logical request (one create, one upload, one poll...): what has happened so far.
struct RetryState {
    int attempts = 0;  // attempts made, including the one being decided on
    // RetryAfterBackoff decisions so far: the budget and the backoff exponent. Token refreshes and
    // limit-window waits do not use it up.
    int backoff_retries = 0;
    bool token_refreshed = false;  // the one refresh-and-retry has been used
    std::string last_reason;       // reason of the previous non-success decision, for the final message
};

struct RetryDecision {
    RetryAction action = RetryAction::Fail;
    std::chrono::milliseconds delay{
        0};              // wait before the next attempt (RetryAfterBackoff, WaitForLimitWindow)
    std::string reason;  // human-readable; HTTP status, Salesforce code and message, no secrets
};

// Uniform random number in [0, 1). Injected so backoff is deterministic under test.
using RandomSource = std::function<double()>;
// Wall clock, only needed for Retry-After given as an HTTP-date.
using WallClock = std::function<std::chrono::system_clock::time_point()>;

// A RandomSource backed by a std::mt19937_64 seeded from std::random_device (owned by the returned function,
// not a static object).
RandomSource default_random_source();
WallClock system_wall_clock();

// Full-jitter delay for retry number `retry` (1 = first retry), exposed so the job poller can reuse it with
// its own base/cap (e.g. 1 s .. 30 s, §5.4).
std::chrono::milliseconds full_jitter_backoff(std::chrono::milliseconds base, std::chrono::milliseconds cap,
                                              int retry, double uniform01);

class RetryPolicy {
  public:
    RetryPolicy(RetryConfig config, RandomSource random, WallClock clock);

    // Decide after an attempt. Increments `state.attempts` and records refresh use, so call exactly once per
    // attempt with the state that belongs to this logical request.
    RetryDecision decide(const AttemptOutcome &outcome, bool idempotent, RetryState &state) const;

    const RetryConfig &config() const { return config_; }
    // New settings (a reload): decisions from now on use them; a retry state keeps the attempts it counted.
    void set_config(const RetryConfig &config);

  private:
    RetryConfig config_;
    RandomSource random_;
    WallClock clock_;
};

}  // namespace sfb
