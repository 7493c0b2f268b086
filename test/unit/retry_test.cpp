#include "core/retry.h"

#include "core/error.h"

#include <gtest/gtest.h>

#include <vector>

namespace sfb {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::system_clock;

// 2026-11-29T00:00:00Z
const system_clock::time_point kNow = system_clock::time_point(seconds(1795910400));

AttemptOutcome http(int status, std::string code = "", std::string message = "") {
    AttemptOutcome o;
    o.status = status;
    o.error_code = std::move(code);
    o.error_message = std::move(message);
    return o;
}

AttemptOutcome transport(TransportError e, bool sent) {
    AttemptOutcome o;
    o.transport = e;
    o.request_sent = sent;
    return o;
}

RetryPolicy policy_with(double random_value, RetryConfig cfg = {}) {
    return RetryPolicy(
        cfg, [random_value]() { return random_value; }, []() { return kNow; });
}

TEST(RetryClassify, Success) {
    EXPECT_EQ(classify(http(200), true), RetryAction::Success);
    EXPECT_EQ(classify(http(201), false), RetryAction::Success);
    EXPECT_EQ(classify(http(204), true), RetryAction::Success);
}

TEST(RetryClassify, RetryableStatusesFromSection3) {
    for (int s : {406, 420, 429, 500, 502, 503, 504}) {
        EXPECT_EQ(classify(http(s), true), RetryAction::RetryAfterBackoff) << s;
    }
}

TEST(RetryClassify, NonRetryableStatuses) {
    for (int s : {400, 404, 405, 409, 412, 415, 301, 100, 501}) {
        EXPECT_EQ(classify(http(s, "INVALIDJOB", "x"), true), RetryAction::Fail) << s;
    }
    EXPECT_EQ(classify(http(403, "INSUFFICIENT_ACCESS", "no"), true), RetryAction::Fail);
}

TEST(RetryClassify, SessionExpiryRefreshesOnce) {
    EXPECT_EQ(classify(http(401, "INVALID_SESSION_ID", "Session expired or invalid"), false),
              RetryAction::RefreshTokenThenRetryOnce);
    EXPECT_EQ(classify(http(401, "INVALID_SESSION_ID", "This session is not valid for use with the REST API"),
                       true),
              RetryAction::Fail);
    EXPECT_EQ(classify(http(401, "INVALID_AUTH_HEADER", "INVALID_HEADER_TYPE"), true), RetryAction::Fail);
    EXPECT_EQ(classify(http(401), true), RetryAction::Fail);
}

TEST(RetryClassify, RequestLimitDailyVersusConcurrent) {
    EXPECT_EQ(classify(http(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."), true),
              RetryAction::WaitForLimitWindow);
    EXPECT_EQ(classify(http(403, "REQUEST_LIMIT_EXCEEDED",
                            "ConcurrentRequests (Concurrent API Requests) Limit exceeded."),
                       false),
              RetryAction::RetryAfterBackoff);
}

TEST(RetryClassify, TransportErrors) {
    EXPECT_EQ(classify(transport(TransportError::ConnectFailed, false), false),
              RetryAction::RetryAfterBackoff);
    EXPECT_EQ(classify(transport(TransportError::ResolveFailed, false), false),
              RetryAction::RetryAfterBackoff);
    EXPECT_EQ(classify(transport(TransportError::Timeout, true), true), RetryAction::RetryAfterBackoff);
    EXPECT_EQ(classify(transport(TransportError::ConnectionDropped, true), true),
              RetryAction::RetryAfterBackoff);
    EXPECT_EQ(classify(transport(TransportError::TlsError, false), true), RetryAction::Fail);
    EXPECT_EQ(classify(transport(TransportError::Cancelled, true), true), RetryAction::Fail);
    EXPECT_EQ(classify(transport(TransportError::Other, true), true), RetryAction::Fail);
}

TEST(RetryClassify, NonIdempotentUnknownOutcomeReconciles) {
    EXPECT_EQ(classify(transport(TransportError::Timeout, true), false), RetryAction::Reconcile);
    EXPECT_EQ(classify(transport(TransportError::ConnectionDropped, true), false), RetryAction::Reconcile);
    // Nothing was sent: safe to send again.
    EXPECT_EQ(classify(transport(TransportError::Timeout, false), false), RetryAction::RetryAfterBackoff);
    EXPECT_EQ(classify(http(500), false), RetryAction::Reconcile);
    EXPECT_EQ(classify(http(502), false), RetryAction::Reconcile);
    EXPECT_EQ(classify(http(504), false), RetryAction::Reconcile);
    // Rejections before processing stay retryable.
    for (int s : {406, 420, 429, 503}) {
        EXPECT_EQ(classify(http(s), false), RetryAction::RetryAfterBackoff) << s;
    }
}

TEST(RetryIdempotency, ByMethod) {
    EXPECT_TRUE(bulk_method_is_idempotent(HttpMethod::Get));
    EXPECT_TRUE(bulk_method_is_idempotent(HttpMethod::Delete));
    EXPECT_FALSE(bulk_method_is_idempotent(HttpMethod::Post));
    EXPECT_FALSE(bulk_method_is_idempotent(HttpMethod::Put));
    EXPECT_FALSE(bulk_method_is_idempotent(HttpMethod::Patch));
}

TEST(RetryAfter, DeltaSeconds) {
    EXPECT_EQ(parse_retry_after("120", kNow), seconds(120));
    EXPECT_EQ(parse_retry_after("  7 ", kNow), seconds(7));
    EXPECT_EQ(parse_retry_after("0", kNow), seconds(0));
    EXPECT_FALSE(parse_retry_after("", kNow));
    EXPECT_FALSE(parse_retry_after("-5", kNow));
    EXPECT_FALSE(parse_retry_after("1.5", kNow));
    EXPECT_FALSE(parse_retry_after("soon", kNow));
    // Absurd values saturate instead of overflowing.
    EXPECT_GT(parse_retry_after("99999999999999999999999999", kNow).value(), seconds(86400));
}

TEST(RetryAfter, HttpDates) {
    EXPECT_EQ(parse_retry_after("Sun, 29 Nov 2026 00:00:30 GMT", kNow), seconds(30));
    EXPECT_EQ(parse_retry_after("Sunday, 29-Nov-26 00:01:00 GMT", kNow), seconds(60));
    EXPECT_EQ(parse_retry_after("Sun Nov 29 00:00:05 2026", kNow), seconds(5));
    EXPECT_EQ(parse_retry_after("Sun Nov  1 00:00:05 2026", kNow), seconds(0));  // past -> now
    EXPECT_EQ(parse_retry_after("Sat, 28 Nov 2026 23:00:00 GMT", kNow), seconds(0));
    EXPECT_FALSE(parse_retry_after("Sun, 29 Foo 2026 00:00:30 GMT", kNow));
    EXPECT_FALSE(parse_retry_after("Sun, 29 Nov 2026 25:00:30 GMT", kNow));
    EXPECT_FALSE(parse_retry_after("Sun, 29 Nov 2026 00:00:30 PST", kNow));
}

TEST(RetryBackoff, FullJitterBounds) {
    const milliseconds base(1000), cap(60000);
    EXPECT_EQ(full_jitter_backoff(base, cap, 1, 0.0), milliseconds(0));
    EXPECT_EQ(full_jitter_backoff(base, cap, 1, 0.5), milliseconds(500));
    EXPECT_EQ(full_jitter_backoff(base, cap, 3, 0.5), milliseconds(2000));
    EXPECT_EQ(full_jitter_backoff(base, cap, 3, 0.999999), milliseconds(3999));
    EXPECT_EQ(full_jitter_backoff(base, cap, 10, 0.5), milliseconds(30000));    // capped at 60 s
    EXPECT_EQ(full_jitter_backoff(base, cap, 1000, 0.5), milliseconds(30000));  // no overflow
    EXPECT_LT(full_jitter_backoff(base, cap, 10, 1.0), cap);                    // bad source clamped
    EXPECT_EQ(full_jitter_backoff(base, cap, 2, -3.0), milliseconds(0));
}

TEST(RetryPolicy, BackoffSequenceIsDeterministicWithInjectedRandom) {
    const RetryPolicy p = policy_with(0.5);
    RetryState st;
    std::vector<milliseconds> delays;
    for (int i = 0; i < 5; ++i) {
        const RetryDecision d = p.decide(http(503), true, st);
        ASSERT_EQ(d.action, RetryAction::RetryAfterBackoff) << i;
        delays.push_back(d.delay);
    }
    EXPECT_EQ(delays, (std::vector<milliseconds>{milliseconds(500), milliseconds(1000), milliseconds(2000),
                                                 milliseconds(4000), milliseconds(8000)}));
    const RetryDecision last = p.decide(http(503), true, st);
    EXPECT_EQ(last.action, RetryAction::Fail);
    EXPECT_EQ(st.attempts, 6);
    EXPECT_NE(last.reason.find("gave up after 6 attempts"), std::string::npos) << last.reason;
    EXPECT_NE(last.reason.find("HTTP 503"), std::string::npos) << last.reason;
}

TEST(RetryPolicy, MinDelayFloor) {
    const RetryPolicy p = policy_with(0.0);
    RetryState st;
    EXPECT_EQ(p.decide(http(500), true, st).delay, milliseconds(100));
}

TEST(RetryPolicy, HonoursRetryAfterCapped) {
    const RetryPolicy p = policy_with(0.5);
    RetryState st;
    AttemptOutcome o = http(429);
    o.retry_after = "7";
    EXPECT_EQ(p.decide(o, true, st).delay, milliseconds(7000));
    o.retry_after = "Sun, 29 Nov 2026 00:00:42 GMT";
    EXPECT_EQ(p.decide(o, true, st).delay, milliseconds(42000));
    o.retry_after = "86400";
    EXPECT_EQ(p.decide(o, true, st).delay, milliseconds(300000));
    o.retry_after = "garbage";  // unparseable -> our own backoff (attempt 4, 0.5 * 8 s)
    EXPECT_EQ(p.decide(o, true, st).delay, milliseconds(4000));
}

TEST(RetryPolicy, RefreshTokenOnlyOnce) {
    const RetryPolicy p = policy_with(0.5);
    RetryState st;
    const AttemptOutcome expired = http(401, "INVALID_SESSION_ID", "Session expired or invalid");
    const RetryDecision first = p.decide(expired, false, st);
    EXPECT_EQ(first.action, RetryAction::RefreshTokenThenRetryOnce);
    EXPECT_EQ(first.delay, milliseconds(0));
    EXPECT_TRUE(st.token_refreshed);
    const RetryDecision second = p.decide(expired, false, st);
    EXPECT_EQ(second.action, RetryAction::Fail);
    EXPECT_NE(second.reason.find("INVALID_SESSION_ID"), std::string::npos);
}

TEST(RetryPolicy, RefreshAndLimitWaitsDoNotUseTheBackoffBudget) {
    RetryConfig cfg;
    cfg.max_attempts = 2;
    const RetryPolicy p = policy_with(0.5, cfg);
    RetryState st;
    EXPECT_EQ(p.decide(http(401, "INVALID_SESSION_ID", "Session expired or invalid"), true, st).action,
              RetryAction::RefreshTokenThenRetryOnce);
    EXPECT_EQ(p.decide(http(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."), true, st).action,
              RetryAction::WaitForLimitWindow);
    const RetryDecision first = p.decide(http(503), true, st);
    EXPECT_EQ(first.action, RetryAction::RetryAfterBackoff);
    EXPECT_EQ(first.delay, milliseconds(500));  // exponent counts backoff retries only
    const RetryDecision second = p.decide(http(503), true, st);
    EXPECT_EQ(second.action, RetryAction::Fail);
    EXPECT_EQ(st.attempts, 4);
    EXPECT_EQ(st.backoff_retries, 1);
    EXPECT_EQ(second.reason, "gave up after 4 attempts; last: HTTP 503");
}

TEST(RetryPolicy, DailyLimitParksForWindow) {
    RetryConfig cfg;
    cfg.limit_window_wait = milliseconds(900000);
    const RetryPolicy p = policy_with(0.5, cfg);
    RetryState st;
    const RetryDecision d =
        p.decide(http(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."), true, st);
    EXPECT_EQ(d.action, RetryAction::WaitForLimitWindow);
    EXPECT_EQ(d.delay, milliseconds(900000));
    EXPECT_EQ(d.reason, "HTTP 403 REQUEST_LIMIT_EXCEEDED: TotalRequests Limit exceeded.");
}

TEST(RetryPolicy, ReconcileAndFailCarryReason) {
    const RetryPolicy p = policy_with(0.5);
    RetryState st;
    const RetryDecision r = p.decide(transport(TransportError::Timeout, true), false, st);
    EXPECT_EQ(r.action, RetryAction::Reconcile);
    EXPECT_EQ(r.reason, "transport error: timed out");
    const RetryDecision f =
        p.decide(http(404, "NOT_FOUND", "The requested resource does not exist"), true, st);
    EXPECT_EQ(f.action, RetryAction::Fail);
    EXPECT_EQ(f.reason, "HTTP 404 NOT_FOUND: The requested resource does not exist");
    const RetryDecision s = p.decide(http(200), true, st);
    EXPECT_EQ(s.action, RetryAction::Success);
    EXPECT_TRUE(s.reason.empty());
}

TEST(RetryPolicy, RejectsBadConfig) {
    RetryConfig cfg;
    cfg.max_attempts = 0;
    EXPECT_THROW(policy_with(0.5, cfg), Error);
    cfg = RetryConfig{};
    cfg.cap = milliseconds(10);
    EXPECT_THROW(policy_with(0.5, cfg), Error);
    EXPECT_THROW(RetryPolicy(RetryConfig{}, nullptr, system_wall_clock()), Error);
}

TEST(RetryPolicy, DefaultRandomSourceInRange) {
    const RandomSource r = default_random_source();
    for (int i = 0; i < 1000; ++i) {
        const double v = r();
        ASSERT_GE(v, 0.0);
        ASSERT_LT(v, 1.0);
    }
}

TEST(RetryNames, ToString) {
    EXPECT_EQ(to_string(RetryAction::Reconcile), "Reconcile");
    EXPECT_EQ(to_string(TransportError::TlsError), "TLS error");
}

}  // namespace
}  // namespace sfb

namespace sfb {
namespace {

TEST(HttpDate, DateHeaderAsEpochSeconds) {
    EXPECT_EQ(parse_http_date("Fri, 04 Dec 2026 01:38:15 GMT"), std::optional<std::int64_t>(1796348295));
    // RFC 850's two-digit year is read in this century (the only one a Retry-After or Date header names).
    EXPECT_EQ(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), std::optional<std::int64_t>(3939871777));
    EXPECT_EQ(parse_http_date("Sun Nov  6 08:49:37 1994"), std::optional<std::int64_t>(784111777));
    EXPECT_EQ(parse_http_date("yesterday"), std::nullopt);
}

}  // namespace
}  // namespace sfb
