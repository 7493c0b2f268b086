// Unit tests for the org's allowance (the worker's API reserve): parsing Sforce-Limit-Info and /limits, the
// hold rule at its boundaries, when /limits is read, and failing open.
#include "core/org_allowance.h"

#include <gtest/gtest.h>

#include <string>

namespace sfb {
namespace {

constexpr std::int64_t kT0 = 1'795'910'400'000;
constexpr std::int64_t kMinute = 60'000;
using Verdict = AllowanceAnswer::Verdict;

AllowancePolicy policy(int percent = 5, std::int64_t refresh_ms = 5 * kMinute) {
    AllowancePolicy p;
    p.api_reserve_percent = percent;
    p.refresh_ms = refresh_ms;
    return p;
}

std::string limits_json(std::int64_t api_remaining, std::int64_t jobs_remaining = 10000,
                        std::int64_t storage_remaining = 976562) {
    return "{\"ConcurrentAsyncGetReportInstances\":{\"Max\":200,\"Remaining\":200},"
           "\"DailyApiRequests\":{\"Max\":15000,\"Remaining\":" +
           std::to_string(api_remaining) +
           ",\"sf_bulk Emulator\":{\"Max\":0,\"Remaining\":0}},"
           "\"DailyBulkV2QueryFileStorageMB\":{\"Max\":976562,\"Remaining\":" +
           std::to_string(storage_remaining) +
           "},"
           "\"DailyBulkV2QueryJobs\":{\"Max\":10000,\"Remaining\":" +
           std::to_string(jobs_remaining) + "}}";
}

// An allowance that has read /limits once (so that nothing is unknown).
OrgAllowance read_once(const std::string &body, std::int64_t now = kT0) {
    OrgAllowance a;
    a.limits_started(now);
    EXPECT_TRUE(a.on_limits(body, now));
    return a;
}

TEST(OrgAllowanceText, Thousands) {
    EXPECT_EQ(with_thousands(0), "0");
    EXPECT_EQ(with_thousands(999), "999");
    EXPECT_EQ(with_thousands(1000), "1,000");
    EXPECT_EQ(with_thousands(15000), "15,000");
    EXPECT_EQ(with_thousands(976562), "976,562");
    EXPECT_EQ(with_thousands(1234567890), "1,234,567,890");
    EXPECT_EQ(with_thousands(-1500), "-1,500");
}

TEST(OrgAllowanceParse, LimitsBodyWithNestedAppEntriesAndUnknownKeys) {
    std::optional<OrgLimits> l = parse_org_limits(limits_json(14980, 9000, 500), kT0);
    ASSERT_TRUE(l);
    ASSERT_TRUE(l->api_requests);
    EXPECT_EQ(l->api_requests->max, 15000);
    EXPECT_EQ(l->api_requests->remaining, 14980);
    EXPECT_EQ(l->api_requests->read_at_ms, kT0);
    ASSERT_TRUE(l->query_jobs);
    EXPECT_EQ(l->query_jobs->remaining, 9000);
    ASSERT_TRUE(l->query_storage_mb);
    EXPECT_EQ(l->query_storage_mb->remaining, 500);
}

TEST(OrgAllowanceParse, MissingOrMalformedKeysAreAbsent) {
    // API 46.0 and below have no Bulk 2.0 query keys.
    std::optional<OrgLimits> l =
        parse_org_limits("{\"DailyApiRequests\":{\"Max\":15000,\"Remaining\":3}}", kT0);
    ASSERT_TRUE(l);
    EXPECT_TRUE(l->api_requests);
    EXPECT_FALSE(l->query_jobs);
    EXPECT_FALSE(l->query_storage_mb);
    // Max 0, negative, strings, floats, a missing member, not an object: absent, never a guess.
    l = parse_org_limits(
        "{\"DailyApiRequests\":{\"Max\":0,\"Remaining\":0},"
        "\"DailyBulkV2QueryJobs\":{\"Max\":\"10000\",\"Remaining\":5},"
        "\"DailyBulkV2QueryFileStorageMB\":{\"Max\":10.5,\"Remaining\":1}}",
        kT0);
    ASSERT_TRUE(l);
    EXPECT_FALSE(l->api_requests);
    EXPECT_FALSE(l->query_jobs);
    EXPECT_FALSE(l->query_storage_mb);
    l = parse_org_limits(
        "{\"DailyApiRequests\":{\"Max\":15000},\"DailyBulkV2QueryJobs\":[1,2],"
        "\"DailyBulkV2QueryFileStorageMB\":{\"Max\":100,\"Remaining\":-1}}",
        kT0);
    ASSERT_TRUE(l);
    EXPECT_FALSE(l->api_requests);
    EXPECT_FALSE(l->query_jobs);
    EXPECT_FALSE(l->query_storage_mb);
    // Remaining above Max is cut to Max.
    l = parse_org_limits("{\"DailyApiRequests\":{\"Max\":100,\"Remaining\":250}}", kT0);
    ASSERT_TRUE(l && l->api_requests);
    EXPECT_EQ(l->api_requests->remaining, 100);
    EXPECT_FALSE(parse_org_limits("", kT0));
    EXPECT_FALSE(parse_org_limits("[]", kT0));
    EXPECT_FALSE(parse_org_limits("{\"DailyApiRequests\":", kT0));
    EXPECT_FALSE(parse_org_limits("<html>maintenance</html>", kT0));
}

TEST(OrgAllowanceParse, HeaderReadingsMalformedAndMaxZeroIgnored) {
    OrgAllowance a;
    a.on_limit_info("api-usage=27/15000", kT0);
    ASSERT_TRUE(a.api_requests());
    EXPECT_EQ(a.api_requests()->remaining, 14973);
    EXPECT_EQ(a.api_requests()->max, 15000);
    // Ignored: the reading stays.
    for (const char *bad : {"api-usage=27", "", "garbage", "api-usage=5/0", "per-app-api-usage=1/250"})
        a.on_limit_info(bad, kT0 + 1);
    EXPECT_EQ(a.api_requests()->remaining, 14973);
    EXPECT_EQ(a.api_requests()->read_at_ms, kT0);
    // With other comma-separated parts.
    a.on_limit_info("per-app-api-usage=17/250(appName=sample), api-usage=14990/15000", kT0 + 2);
    EXPECT_EQ(a.api_requests()->remaining, 10);
    // Used beyond max (the over-limit answers): nothing left, never negative.
    a.on_limit_info("api-usage=15003/15000", kT0 + 3);
    EXPECT_EQ(a.api_requests()->remaining, 0);
}

TEST(OrgAllowanceHold, ApiReserveBoundary) {
    // 5 % of 15,000 = 750. The create spends one: 751 left is allowed (750 remain), 750 is held.
    OrgAllowance a;
    a.on_limit_info("api-usage=14249/15000", kT0);  // 751 left
    EXPECT_EQ(a.ask(SalesforceJobKind::Ingest, kT0, policy()).verdict, Verdict::Go);
    a.on_limit_info("api-usage=14250/15000", kT0);  // 750 left
    AllowanceAnswer held = a.ask(SalesforceJobKind::Ingest, kT0, policy());
    EXPECT_EQ(held.verdict, Verdict::Hold);
    EXPECT_EQ(held.reason,
              "waiting: the org has 750 of 15,000 daily API requests left, and sf_bulk.api_reserve keeps 5% "
              "(750) for other uses; new Salesforce jobs start when more are free");
    EXPECT_EQ(held.ask_again_at_ms, kT0 + 1000);
    // The reserve is rounded up: 5 % of 15,001 is 750.05, so 751 are kept.
    a.on_limit_info("api-usage=14250/15001", kT0);  // 751 left
    EXPECT_EQ(a.ask(SalesforceJobKind::Ingest, kT0, policy()).verdict, Verdict::Hold);
    a.on_limit_info("api-usage=14249/15001", kT0);  // 752 left
    EXPECT_EQ(a.ask(SalesforceJobKind::Ingest, kT0, policy()).verdict, Verdict::Go);
}

TEST(OrgAllowanceHold, ReserveZeroTurnsTheApiReserveOffAndHundredHoldsEverything) {
    OrgAllowance a;
    a.on_limit_info("api-usage=15000/15000", kT0);
    EXPECT_EQ(a.ask(SalesforceJobKind::Ingest, kT0, policy(0)).verdict, Verdict::Go);
    OrgAllowance b;
    b.on_limit_info("api-usage=0/15000", kT0);
    EXPECT_EQ(b.ask(SalesforceJobKind::Ingest, kT0, policy(100)).verdict, Verdict::Hold);
    EXPECT_EQ(b.ask(SalesforceJobKind::Ingest, kT0, policy(1)).verdict, Verdict::Go);
    // An allocation too large to multiply naively.
    OrgAllowance c;
    c.on_limit_info("api-usage=0/999999999999999999", kT0);
    EXPECT_EQ(c.ask(SalesforceJobKind::Ingest, kT0, policy(100)).verdict, Verdict::Hold);
    EXPECT_EQ(c.ask(SalesforceJobKind::Ingest, kT0, policy(99)).verdict, Verdict::Go);
}

TEST(OrgAllowanceHold, QueryQuotasHoldQueryJobsOnlyAndStayWithReserveZero) {
    OrgAllowance a = read_once(limits_json(14000, 0));
    AllowanceAnswer q = a.ask(SalesforceJobKind::Query, kT0, policy());
    EXPECT_EQ(q.verdict, Verdict::Hold);
    EXPECT_EQ(
        q.reason,
        "waiting: the org has 0 of 10,000 daily Bulk API 2.0 query jobs left (DailyBulkV2QueryJobs); the "
        "query job starts when one is free");
    EXPECT_EQ(a.ask(SalesforceJobKind::Query, kT0, policy(0)).verdict, Verdict::Hold);
    EXPECT_EQ(a.ask(SalesforceJobKind::Ingest, kT0, policy()).verdict, Verdict::Go);

    OrgAllowance s = read_once(limits_json(14000, 10000, 0));
    q = s.ask(SalesforceJobKind::Query, kT0, policy());
    EXPECT_EQ(q.verdict, Verdict::Hold);
    EXPECT_EQ(q.reason,
              "waiting: the org has 0 of 976,562 MB of daily Bulk API 2.0 query results left "
              "(DailyBulkV2QueryFileStorageMB); the query job starts when more is free");
    EXPECT_EQ(s.ask(SalesforceJobKind::Ingest, kT0, policy()).verdict, Verdict::Go);

    // The API reserve holds query jobs too, and is named first.
    OrgAllowance both = read_once(limits_json(10, 0));
    q = both.ask(SalesforceJobKind::Query, kT0, policy());
    EXPECT_EQ(q.verdict, Verdict::Hold);
    EXPECT_NE(q.reason.find("daily API requests"), std::string::npos);
    // One query job left is enough for one.
    OrgAllowance one = read_once(limits_json(14000, 1));
    EXPECT_EQ(one.ask(SalesforceJobKind::Query, kT0, policy()).verdict, Verdict::Go);
}

TEST(OrgAllowanceHold, StartsCountUntilTheNextReading) {
    OrgAllowance a = read_once(limits_json(753, 2));
    // 753 left, 750 kept: each start counts one request (and one query job) before any header says so.
    EXPECT_EQ(a.ask(SalesforceJobKind::Query, kT0, policy()).verdict, Verdict::Go);
    a.job_started(SalesforceJobKind::Query);
    EXPECT_EQ(a.ask(SalesforceJobKind::Query, kT0, policy()).verdict, Verdict::Go);
    a.job_started(SalesforceJobKind::Query);
    EXPECT_EQ(a.query_jobs()->remaining, 0);
    EXPECT_EQ(a.api_requests()->remaining, 751);
    EXPECT_EQ(a.ask(SalesforceJobKind::Query, kT0, policy()).verdict, Verdict::Hold);  // no query job left
    EXPECT_EQ(a.ask(SalesforceJobKind::Ingest, kT0, policy()).verdict, Verdict::Go);
    a.job_started(SalesforceJobKind::Ingest);
    EXPECT_EQ(a.ask(SalesforceJobKind::Ingest, kT0, policy()).verdict, Verdict::Hold);
    // The next header is the truth again.
    a.on_limit_info("api-usage=100/15000", kT0 + 1);
    EXPECT_EQ(a.ask(SalesforceJobKind::Ingest, kT0 + 1, policy()).verdict, Verdict::Go);
}

TEST(OrgAllowanceRefresh, NothingKnownReadsLimitsFirstOnce) {
    OrgAllowance a;
    EXPECT_FALSE(a.limits_due(kT0, policy()));  // nobody asked
    AllowanceAnswer u = a.ask(SalesforceJobKind::Ingest, kT0, policy());
    EXPECT_EQ(u.verdict, Verdict::Unknown);
    EXPECT_TRUE(u.reason.empty());
    EXPECT_EQ(u.ask_again_at_ms, kT0 + 250);
    EXPECT_TRUE(a.limits_due(kT0, policy()));
    a.limits_started(kT0);
    EXPECT_TRUE(a.limits_in_flight());
    EXPECT_FALSE(a.limits_due(kT0, policy()));
    EXPECT_EQ(a.ask(SalesforceJobKind::Ingest, kT0 + 10, policy()).verdict, Verdict::Unknown);
    EXPECT_FALSE(a.limits_due(kT0 + 10, policy()));  // one read at a time
    EXPECT_TRUE(a.on_limits(limits_json(14000), kT0 + 20));
    EXPECT_EQ(a.ask(SalesforceJobKind::Ingest, kT0 + 20, policy()).verdict, Verdict::Go);
    EXPECT_EQ(a.ask(SalesforceJobKind::Query, kT0 + 20, policy()).verdict, Verdict::Go);
    EXPECT_FALSE(a.limits_due(kT0 + 20, policy()));
}

TEST(OrgAllowanceRefresh, AHeaderIsEnoughForIngestButQueryJobsNeedLimits) {
    OrgAllowance a;
    a.on_limit_info("api-usage=10/15000", kT0);
    EXPECT_EQ(a.ask(SalesforceJobKind::Ingest, kT0, policy()).verdict, Verdict::Go);
    EXPECT_FALSE(a.limits_due(kT0, policy()));
    EXPECT_EQ(a.ask(SalesforceJobKind::Query, kT0, policy()).verdict, Verdict::Unknown);
    EXPECT_TRUE(a.limits_due(kT0, policy()));
    // With the reserve off, an ingest job needs no figure at all.
    OrgAllowance b;
    EXPECT_EQ(b.ask(SalesforceJobKind::Ingest, kT0, policy(0)).verdict, Verdict::Go);
    EXPECT_FALSE(b.limits_due(kT0, policy(0)));
}

TEST(OrgAllowanceRefresh, AHeldOrgIsReadAgainOncePerInterval) {
    OrgAllowance a = read_once(limits_json(100));
    const AllowancePolicy p = policy(5, 5 * kMinute);
    EXPECT_EQ(a.ask(SalesforceJobKind::Ingest, kT0 + kMinute, p).verdict, Verdict::Hold);
    EXPECT_FALSE(a.limits_due(kT0 + kMinute, p));  // the figure is a minute old
    EXPECT_EQ(a.ask(SalesforceJobKind::Ingest, kT0 + 5 * kMinute, p).verdict, Verdict::Hold);
    EXPECT_TRUE(a.limits_due(kT0 + 5 * kMinute, p));
    a.limits_started(kT0 + 5 * kMinute);
    // Usage fell by itself (the rolling window): released.
    EXPECT_TRUE(a.on_limits(limits_json(2000), kT0 + 5 * kMinute + 100));
    EXPECT_EQ(a.ask(SalesforceJobKind::Ingest, kT0 + 5 * kMinute + 100, p).verdict, Verdict::Go);
}

TEST(OrgAllowanceRefresh, FreshHeadersOfRunningJobsSpareTheLimitsCall) {
    OrgAllowance a;
    a.on_limit_info("api-usage=14900/15000", kT0);
    const AllowancePolicy p = policy();
    for (std::int64_t t = kT0; t < kT0 + 20 * kMinute; t += kMinute) {
        a.on_limit_info("api-usage=14900/15000", t);  // a running job's polls
        EXPECT_EQ(a.ask(SalesforceJobKind::Ingest, t, p).verdict, Verdict::Hold);
        EXPECT_FALSE(a.limits_due(t, p));
    }
    // A poll that shows usage fell releases at once, without /limits.
    a.on_limit_info("api-usage=1000/15000", kT0 + 20 * kMinute);
    EXPECT_EQ(a.ask(SalesforceJobKind::Ingest, kT0 + 20 * kMinute, p).verdict, Verdict::Go);
}

TEST(OrgAllowanceRefresh, QueryFiguresOlderThanTheIntervalAreReadAgainWithoutWaiting) {
    OrgAllowance a = read_once(limits_json(14000, 50));
    const AllowancePolicy p = policy();
    EXPECT_EQ(a.ask(SalesforceJobKind::Query, kT0 + kMinute, p).verdict, Verdict::Go);
    EXPECT_FALSE(a.limits_due(kT0 + kMinute, p));
    // Stale: the job still goes on the old figures (they count every start), and a read is due.
    EXPECT_EQ(a.ask(SalesforceJobKind::Query, kT0 + 6 * kMinute, p).verdict, Verdict::Go);
    EXPECT_TRUE(a.limits_due(kT0 + 6 * kMinute, p));
    // A query job exhausted by other clients shows at the next read.
    a.limits_started(kT0 + 6 * kMinute);
    EXPECT_TRUE(a.on_limits(limits_json(14000, 0), kT0 + 6 * kMinute));
    EXPECT_EQ(a.ask(SalesforceJobKind::Query, kT0 + 6 * kMinute, p).verdict, Verdict::Hold);
}

TEST(OrgAllowanceRefresh, AFailedReadFailsOpenUntilTheNextAttempt) {
    OrgAllowance a;
    const AllowancePolicy p = policy();
    EXPECT_EQ(a.ask(SalesforceJobKind::Query, kT0, p).verdict, Verdict::Unknown);
    a.limits_started(kT0);
    a.limits_failed(kT0 + 10);  // e.g. 403 without "View Setup and Configuration"
    EXPECT_FALSE(a.limits_in_flight());
    EXPECT_EQ(a.ask(SalesforceJobKind::Query, kT0 + 10, p).verdict, Verdict::Go);
    EXPECT_EQ(a.ask(SalesforceJobKind::Ingest, kT0 + 10, p).verdict, Verdict::Go);
    EXPECT_FALSE(a.limits_due(kT0 + kMinute, p));
    // After the interval it tries again, and the jobs wait for that one read.
    EXPECT_EQ(a.ask(SalesforceJobKind::Query, kT0 + 10 + 5 * kMinute, p).verdict, Verdict::Unknown);
    EXPECT_TRUE(a.limits_due(kT0 + 10 + 5 * kMinute, p));
    // An unreadable 200 counts as failed.
    a.limits_started(kT0 + 10 + 5 * kMinute);
    EXPECT_FALSE(a.on_limits("<html/>", kT0 + 11 + 5 * kMinute));
    EXPECT_FALSE(a.limits_in_flight());
    EXPECT_EQ(a.ask(SalesforceJobKind::Query, kT0 + 11 + 5 * kMinute, p).verdict, Verdict::Go);
}

TEST(OrgAllowanceRefresh, AHoldOnOldFiguresIsNotKeptWhileLimitsCannotBeRead) {
    // Held on a read showing no query jobs and the API inside the reserve; then every /limits read fails.
    OrgAllowance a = read_once(limits_json(100, 0));
    const AllowancePolicy p = policy(5, 5 * kMinute);
    EXPECT_EQ(a.ask(SalesforceJobKind::Query, kT0 + kMinute, p).verdict, Verdict::Hold);
    EXPECT_EQ(a.ask(SalesforceJobKind::Ingest, kT0 + kMinute, p).verdict, Verdict::Hold);
    a.limits_started(kT0 + 5 * kMinute);
    a.limits_failed(kT0 + 5 * kMinute + 10);
    // The figures are older than the interval and nothing can renew them: the jobs go (failing open).
    EXPECT_EQ(a.ask(SalesforceJobKind::Query, kT0 + 5 * kMinute + 10, p).verdict, Verdict::Go);
    EXPECT_EQ(a.ask(SalesforceJobKind::Ingest, kT0 + 5 * kMinute + 10, p).verdict, Verdict::Go);
    // A fresh header of a running job holds again, and so does the next successful read.
    a.on_limit_info("api-usage=14950/15000", kT0 + 6 * kMinute);
    EXPECT_EQ(a.ask(SalesforceJobKind::Ingest, kT0 + 6 * kMinute, p).verdict, Verdict::Hold);
    a.limits_started(kT0 + 11 * kMinute);
    EXPECT_TRUE(a.on_limits(limits_json(14000, 0), kT0 + 11 * kMinute));
    EXPECT_EQ(a.ask(SalesforceJobKind::Query, kT0 + 11 * kMinute, p).verdict, Verdict::Hold);
}

TEST(OrgAllowanceRefresh, LimitsWithoutQueryKeysMeanNoQueryQuota) {
    OrgAllowance a = read_once("{\"DailyApiRequests\":{\"Max\":15000,\"Remaining\":14000}}");
    EXPECT_EQ(a.ask(SalesforceJobKind::Query, kT0, policy()).verdict, Verdict::Go);
    EXPECT_FALSE(a.query_jobs());
}

}  // namespace
}  // namespace sfb
