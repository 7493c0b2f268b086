// Unit tests for the query job and query page state machines: scripted Salesforce answers for API 62
// (resultPages) and 57 (locator chain), every resume point, the 401 rule, retries, aborts and protocol
// misuse.
#include "core/query_machine.h"

#include "core/error.h"
#include "core/sf_names.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace sfb {
namespace {

using std::chrono::milliseconds;

constexpr std::int64_t kT0 = 1'795'910'400'000;  // 2026-11-29T00:00:00Z in ms

std::string job_id(int n) {
    std::string id15 = "750Hs00000Zq";
    id15 += std::to_string(100 + n % 900);
    return id15 + record_id_suffix(id15);
}

const std::string kJob = job_id(7);

std::string job_json(const std::string &state, std::optional<std::int64_t> processed = {},
                     const std::string &error_message = "") {
    std::string s = "{\"id\":\"" + kJob + "\",\"operation\":\"query\",\"object\":\"Contact\",\"state\":\"" +
                    state + "\",\"concurrencyMode\":\"Parallel\",\"contentType\":\"CSV\",\"apiVersion\":62.0";
    if (processed) {
        s += ",\"numberRecordsProcessed\":" + std::to_string(*processed);
    }
    if (!error_message.empty()) {
        s += ",\"errorMessage\":\"" + error_message + "\"";
    }
    return s + "}";
}

QueryResponse ok(int status, std::string body = "") {
    QueryResponse r;
    r.status = status;
    r.request_sent = true;
    r.body = std::move(body);
    return r;
}

QueryResponse err(int status, const std::string &code = "", const std::string &message = "") {
    return ok(status,
              code.empty() ? "" : "[{\"errorCode\":\"" + code + "\",\"message\":\"" + message + "\"}]");
}

QueryResponse transport(TransportError e, bool sent) {
    QueryResponse r;
    r.transport = e;
    r.request_sent = sent;
    return r;
}

QueryResponse page_ok(std::optional<std::string> locator, std::optional<std::string> records,
                      std::uint64_t bytes = 100) {
    QueryResponse r = ok(200);
    r.sforce_locator = std::move(locator);
    r.sforce_number_of_records = std::move(records);
    r.body_bytes = bytes;
    return r;
}

std::string results_path(int v, const std::string &query_string = "") {
    return "/services/data/v" + std::to_string(v) + ".0/jobs/query/" + kJob + "/results" + query_string;
}

std::string pages_path(int v, const std::string &query_string = "") {
    return "/services/data/v" + std::to_string(v) + ".0/jobs/query/" + kJob + "/resultPages" + query_string;
}

std::string result_pages_json(const std::vector<std::string> &urls, std::optional<std::string> next) {
    std::string s = "{\"resultPages\":[";
    for (std::size_t i = 0; i < urls.size(); ++i) {
        s += (i ? "," : "") + std::string("{\"resultUrl\":\"") + urls[i] + "\"}";
    }
    s += "]";
    if (next) {
        s += ",\"nextRecordsUrl\":\"" + *next + "\",\"done\":false}";
    } else {
        s += ",\"done\":true}";
    }
    return s;
}

QueryMachineConfig test_config() {
    QueryMachineConfig c;
    c.retry.base = milliseconds(1000);
    c.retry.cap = milliseconds(60000);
    c.retry.min_delay = milliseconds(100);
    c.retry.max_attempts = 6;
    c.retry.max_retry_after = milliseconds(300000);
    c.retry.limit_window_wait = milliseconds(15 * 60 * 1000);
    c.poll.first_ms = 1000;
    c.poll.max_ms = 5000;
    c.poll.growth = 2.0;
    return c;
}

QueryJobSpec job_spec(int version) {
    QueryJobSpec s;
    s.api_version = ApiVersion{version};
    s.job.operation = Operation::Query;
    s.job.query = "SELECT Id, Name FROM Contact";
    return s;
}

RandomSource fixed_random() {
    return []() { return 0.5; };
}

WallClock fixed_clock() {
    return []() { return std::chrono::system_clock::time_point(milliseconds(kT0)); };
}

std::unique_ptr<QueryJobMachine> make_job(QueryJobRecord rec, bool resumed, int version = 62,
                                          QueryMachineConfig cfg = test_config()) {
    return std::make_unique<QueryJobMachine>(std::move(rec), job_spec(version), cfg, fixed_random(),
                                             fixed_clock(), resumed);
}

QueryJobRecord job_at(QueryJobStep step, const std::string &id = kJob, const std::string &sf_state = "") {
    QueryJobRecord r;
    r.step = step;
    r.sf_job_id = id;
    r.sf_state = sf_state;
    return r;
}

QueryPageMachineSpec page_spec(int version, std::optional<std::int64_t> page_size = std::nullopt) {
    QueryPageMachineSpec s;
    s.api_version = ApiVersion{version};
    s.sf_job_id = kJob;
    s.page_size = page_size;
    s.download_file = "/spool/9/page-0001.csv";
    return s;
}

QueryPageRecord page_at(int page_no, std::string path_or_locator,
                        QueryPageStep step = QueryPageStep::Pending) {
    QueryPageRecord r;
    r.page_no = page_no;
    r.path_or_locator = std::move(path_or_locator);
    r.step = step;
    return r;
}

std::unique_ptr<QueryPageMachine> make_page(QueryPageRecord rec, bool resumed, int version = 62,
                                            std::optional<std::int64_t> page_size = std::nullopt) {
    return std::make_unique<QueryPageMachine>(std::move(rec), page_spec(version, page_size),
                                              test_config().retry, fixed_random(), fixed_clock(), resumed);
}

PagesProgress progress(int known, int downloaded) {
    PagesProgress p;
    p.known = known;
    p.downloaded = downloaded;
    return p;
}

const PagesProgress kNoPages{};

// ---- small drivers ---------------------------------------------------------------------------------------

QueryJobAction expect_persist(QueryJobMachine &m, QueryJobStep step, const PagesProgress &p = kNoPages,
                              std::int64_t now = kT0, bool abort = false) {
    const QueryJobAction a = m.next(now, abort, p);
    EXPECT_EQ(to_string(a.kind), "Persist");
    EXPECT_EQ(to_string(a.record.step), to_string(step));
    m.persisted();
    return a;
}

QueryRequest expect_http(QueryJobMachine &m, QueryRequestKind kind, const PagesProgress &p = kNoPages,
                         std::int64_t now = kT0, bool abort = false) {
    const QueryJobAction a = m.next(now, abort, p);
    EXPECT_EQ(to_string(a.kind), "Http");
    EXPECT_EQ(to_string(a.request.kind), to_string(kind));
    return a.request;
}

void expect_finished(QueryJobMachine &m, QueryJobStep step, const PagesProgress &p = kNoPages) {
    const QueryJobAction a = m.next(kT0, false, p);
    EXPECT_EQ(to_string(a.kind), "Finished");
    EXPECT_EQ(to_string(a.record.step), to_string(step));
    EXPECT_TRUE(m.finished());
}

// The final record committed by a call that ended the job.
QueryJobRecord expect_final(QueryJobMachine &m, QueryJobStep step, const PagesProgress &p = kNoPages) {
    const QueryJobRecord r = expect_persist(m, step, p).record;
    expect_finished(m, step, p);
    return r;
}

void expect_load_and_finish(QueryJobMachine &m, const PagesProgress &p) {
    const QueryJobAction a = m.next(kT0, false, p);
    EXPECT_EQ(to_string(a.kind), "Load");
    EXPECT_EQ(to_string(a.record.step), "done");
    EXPECT_TRUE(a.new_pages.empty());
    m.persisted();
    expect_finished(m, QueryJobStep::Done, p);
}

// Create and reach Polling; returns the time of the first poll.
std::int64_t create_job(QueryJobMachine &m) {
    expect_persist(m, QueryJobStep::Creating);
    expect_http(m, QueryRequestKind::CreateJob);
    m.http_done(ok(200, job_json("UploadComplete")), kT0);
    expect_persist(m, QueryJobStep::Polling);
    return kT0 + 1000;
}

// From Creating persisted: the create answered, Polling recorded.
void create_job_after_persist(QueryJobMachine &m) {
    expect_http(m, QueryRequestKind::CreateJob);
    m.http_done(ok(200, job_json("UploadComplete")), kT0);
    expect_persist(m, QueryJobStep::Polling);
}

QueryPageRecord expect_page_persist(QueryPageMachine &m, QueryPageStep step, std::int64_t now = kT0) {
    const QueryPageAction a = m.next(now);
    EXPECT_EQ(to_string(a.kind), "Persist");
    EXPECT_EQ(to_string(a.record.step), to_string(step));
    m.persisted();
    return a.record;
}

QueryRequest expect_page_http(QueryPageMachine &m, std::int64_t now = kT0) {
    const QueryPageAction a = m.next(now);
    EXPECT_EQ(to_string(a.kind), "Http");
    EXPECT_EQ(to_string(a.request.kind), "FetchPage");
    return a.request;
}

// Runs a page from Pending to a final step with one answer; returns the final record.
QueryPageRecord download(QueryPageRecord rec, int version, const QueryResponse &answer) {
    auto m = make_page(std::move(rec), false, version);
    expect_page_persist(*m, QueryPageStep::Downloading);
    (void)expect_page_http(*m);
    m->http_done(answer, kT0);
    const QueryPageRecord r = m->next(kT0).record;
    m->persisted();
    EXPECT_EQ(to_string(m->next(kT0).kind), "Finished");
    return r;
}

// ---- basics ----------------------------------------------------------------------------------------------

TEST(QueryMachineSteps, NamesRoundTrip) {
    for (int i = 0; i <= static_cast<int>(QueryJobStep::Aborted); ++i) {
        const auto s = static_cast<QueryJobStep>(i);
        ASSERT_TRUE(parse_query_job_step(to_string(s)).has_value()) << to_string(s);
        EXPECT_EQ(*parse_query_job_step(to_string(s)), s);
    }
    for (int i = 0; i <= static_cast<int>(QueryPageStep::Failed); ++i) {
        const auto s = static_cast<QueryPageStep>(i);
        ASSERT_TRUE(parse_query_page_step(to_string(s)).has_value()) << to_string(s);
        EXPECT_EQ(*parse_query_page_step(to_string(s)), s);
    }
    EXPECT_EQ(to_string(QueryJobStep::Listing), "listing");
    EXPECT_FALSE(parse_query_job_step("Listing").has_value());
    EXPECT_TRUE(is_final(QueryJobStep::Aborted));
    EXPECT_FALSE(is_final(QueryJobStep::Loading));
    EXPECT_TRUE(is_final(QueryPageStep::Downloaded));
    EXPECT_FALSE(is_final(QueryPageStep::Downloading));
}

TEST(QueryMachineProtocol, JobMisuseThrowsInternal) {
    EXPECT_THROW(make_job(job_at(QueryJobStep::Polling), /*resumed=*/false), Error);
    auto m = make_job(QueryJobRecord{}, false);
    auto expect_internal = [](auto &&f) {
        try {
            f();
            ADD_FAILURE() << "no exception";
        } catch (const Error &e) {
            EXPECT_EQ(e.kind(), ErrorKind::Internal) << e.what();
        }
    };
    expect_internal([&] { m->persisted(); });
    expect_internal([&] { m->http_done(ok(200), kT0); });
    expect_internal([&] { m->credentials_failed("x", "y", kT0); });
    (void)m->next(kT0, false, kNoPages);  // Persist Creating outstanding
    expect_internal([&] { m->next(kT0, false, kNoPages); });
    expect_internal([&] { m->http_done(ok(200), kT0); });
    m->persisted();
    (void)m->next(kT0, false, kNoPages);  // Http outstanding
    expect_internal([&] { m->persisted(); });
    expect_internal([&] { m->next(kT0, false, kNoPages); });
    m->http_done(ok(200, job_json("UploadComplete")), kT0);
    // Progress that cannot come from page rows.
    expect_internal([&] { m->next(kT0, false, progress(1, 2)); });
    PagesProgress open_without_locator = progress(1, 1);
    open_without_locator.chain_open = true;
    expect_internal([&] { m->next(kT0, false, open_without_locator); });
    // Loading with pages still missing is a worker bug.
    auto l = make_job(job_at(QueryJobStep::Loading), true);
    expect_internal([&] { l->next(kT0, false, progress(3, 2)); });
}

TEST(QueryMachineProtocol, PageMisuseThrowsInternal) {
    EXPECT_THROW(make_page(page_at(1, "", QueryPageStep::Downloading), /*resumed=*/false), Error);
    auto m = make_page(page_at(1, ""), false, 57);
    EXPECT_THROW(m->persisted(), Error);
    EXPECT_THROW(m->http_done(ok(200), kT0), Error);
    (void)m->next(kT0);
    EXPECT_THROW(m->next(kT0), Error);
    EXPECT_THROW(m->http_done(ok(200), kT0), Error);
    m->persisted();
    (void)m->next(kT0);
    EXPECT_THROW(m->persisted(), Error);
    EXPECT_THROW(m->next(kT0), Error);
    try {
        m->next(kT0);
    } catch (const Error &e) {
        EXPECT_EQ(e.kind(), ErrorKind::Internal);
    }
}

TEST(QueryMachineProtocol, InvalidConfigurationRejected) {
    QueryMachineConfig c = test_config();
    c.poll.growth = 0.5;
    EXPECT_THROW(make_job(QueryJobRecord{}, false, 62, c), Error);
    EXPECT_THROW(make_job(QueryJobRecord{}, false, 46), Error);
    EXPECT_NO_THROW(make_job(QueryJobRecord{}, false, 47));
    EXPECT_THROW(make_page(page_at(1, ""), false, 62, 0), Error);
    QueryPageMachineSpec bad = page_spec(62);
    bad.sf_job_id = "750/../x";
    EXPECT_THROW(
        QueryPageMachine(page_at(1, ""), bad, test_config().retry, fixed_random(), fixed_clock(), false),
        Error);
}

// ---- happy paths -----------------------------------------------------------------------------------------

// The worker keeps the create back while the org's allowance holds (org_allowance.h).
TEST(QueryJobWithheld, CreateComesAgainThenAbortEndsWithoutSalesforceJob) {
    auto m = make_job(QueryJobRecord{}, false, 62);
    expect_persist(*m, QueryJobStep::Creating);
    for (int i = 0; i < 10; ++i) {
        expect_http(*m, QueryRequestKind::CreateJob);
        m->http_withheld();
    }
    EXPECT_EQ(m->record().attempts, 0);
    const QueryJobRecord r = expect_persist(*m, QueryJobStep::Aborted, kNoPages, kT0, true).record;
    EXPECT_EQ(r.error, "aborted by request before a Salesforce query job was known");
    EXPECT_TRUE(r.sf_job_id.empty());
    expect_finished(*m, QueryJobStep::Aborted);
}

TEST(QueryJobWithheld, CreateAfterTheHoldProceedsAndOnlyTheCreateCanBeWithheld) {
    auto m = make_job(QueryJobRecord{}, false, 62);
    EXPECT_THROW(m->http_withheld(), Error);
    expect_persist(*m, QueryJobStep::Creating);
    expect_http(*m, QueryRequestKind::CreateJob);
    m->http_withheld();
    create_job_after_persist(*m);
    expect_http(*m, QueryRequestKind::GetJob, kNoPages, kT0 + 1000);
    EXPECT_THROW(m->http_withheld(), Error);
}

TEST(QueryJobHappyPath, Api62ResultPagesInSeveralSets) {
    const QueryJobSpec spec = job_spec(62);
    auto m = make_job(QueryJobRecord{}, false, 62);

    QueryJobAction a = expect_persist(*m, QueryJobStep::Creating);
    EXPECT_TRUE(a.new_pages.empty());
    QueryRequest q = expect_http(*m, QueryRequestKind::CreateJob);
    EXPECT_EQ(q.method, HttpMethod::Post);
    EXPECT_EQ(q.path, "/services/data/v62.0/jobs/query");
    EXPECT_EQ(q.json_body, to_json(spec.job));
    EXPECT_FALSE(q.needs_fresh_token);
    m->http_done(ok(200, job_json("UploadComplete")), kT0);
    QueryJobRecord r = expect_persist(*m, QueryJobStep::Polling).record;
    EXPECT_EQ(r.sf_job_id, kJob);
    EXPECT_EQ(r.sf_state, "UploadComplete");
    ASSERT_TRUE(r.not_before_ms.has_value());
    EXPECT_EQ(*r.not_before_ms, kT0 + 1000);

    a = m->next(kT0, false, kNoPages);
    EXPECT_EQ(a.kind, QueryActionKind::WaitUntil);
    EXPECT_EQ(a.wait_until_ms, kT0 + 1000);

    std::int64_t t = kT0 + 1000;
    q = expect_http(*m, QueryRequestKind::GetJob, kNoPages, t);
    EXPECT_EQ(q.method, HttpMethod::Get);
    EXPECT_EQ(q.path, "/services/data/v62.0/jobs/query/" + kJob);
    m->http_done(ok(200, job_json("InProgress", 0)), t);
    r = expect_persist(*m, QueryJobStep::Polling, kNoPages, t).record;
    EXPECT_EQ(r.sf_state, "InProgress");
    EXPECT_EQ(*r.not_before_ms, t + 2000);

    // The same state again: no commit, just the next poll later (interval capped at 5 s).
    t += 2000;
    expect_http(*m, QueryRequestKind::GetJob, kNoPages, t);
    m->http_done(ok(200, job_json("InProgress", 0)), t);
    a = m->next(t, false, kNoPages);
    EXPECT_EQ(a.kind, QueryActionKind::WaitUntil);
    EXPECT_EQ(a.wait_until_ms, t + 4000);

    t += 4000;
    expect_http(*m, QueryRequestKind::GetJob, kNoPages, t);
    m->http_done(ok(200, job_json("JobComplete", 5)), t);
    a = expect_persist(*m, QueryJobStep::Listing, kNoPages, t);
    EXPECT_EQ(a.record.records_processed, 5);
    EXPECT_EQ(a.record.sf_state, "JobComplete");
    EXPECT_FALSE(a.record.page_list_url.has_value());
    EXPECT_FALSE(a.record.page_list_done);
    EXPECT_FALSE(a.record.not_before_ms.has_value());
    EXPECT_TRUE(a.new_pages.empty());

    q = expect_http(*m, QueryRequestKind::ListPages, kNoPages, t);
    EXPECT_EQ(q.method, HttpMethod::Get);
    EXPECT_EQ(q.path, pages_path(62));
    m->http_done(
        ok(200, result_pages_json({results_path(62, "?locator=QUJD"), results_path(62, "?locator=REVG")},
                                  pages_path(62, "?locator=R0hJ"))),
        t);
    a = expect_persist(*m, QueryJobStep::Listing, kNoPages, t);
    ASSERT_EQ(a.new_pages.size(), 2u);
    EXPECT_EQ(a.new_pages[0], (QueryPageSpec{1, results_path(62, "?locator=QUJD")}));
    EXPECT_EQ(a.new_pages[1], (QueryPageSpec{2, results_path(62, "?locator=REVG")}));
    EXPECT_EQ(a.record.page_list_url, pages_path(62, "?locator=R0hJ"));
    EXPECT_FALSE(a.record.page_list_done);

    // Pages download meanwhile; the listing goes on.
    q = expect_http(*m, QueryRequestKind::ListPages, progress(2, 1), t);
    EXPECT_EQ(q.path, pages_path(62, "?locator=R0hJ"));
    m->http_done(ok(200, result_pages_json({results_path(62, "?locator=SktM")}, std::nullopt)), t);
    a = expect_persist(*m, QueryJobStep::Downloading, progress(2, 1), t);
    ASSERT_EQ(a.new_pages.size(), 1u);
    EXPECT_EQ(a.new_pages[0], (QueryPageSpec{3, results_path(62, "?locator=SktM")}));
    EXPECT_TRUE(a.record.page_list_done);
    EXPECT_FALSE(a.record.page_list_url.has_value());

    a = m->next(t, false, progress(3, 2));
    EXPECT_EQ(to_string(a.kind), "AwaitPages");
    expect_persist(*m, QueryJobStep::Loading, progress(3, 3), t);
    expect_load_and_finish(*m, progress(3, 3));
}

TEST(QueryPageHappyPath, ResultUrlPageIsFetchedAsListedAndItsLocatorIgnored) {
    auto m = make_page(page_at(2, results_path(62, "?locator=REVG")), false, 62, 1000);
    expect_page_persist(*m, QueryPageStep::Downloading);
    const QueryRequest q = expect_page_http(*m);
    EXPECT_EQ(q.method, HttpMethod::Get);
    EXPECT_EQ(q.path, results_path(62, "?locator=REVG"));  // no maxRecords added to a listed link
    EXPECT_EQ(q.download_file, "/spool/9/page-0001.csv");
    m->http_done(page_ok("SktM", "2500", 123456), kT0);
    const QueryPageRecord r = expect_page_persist(*m, QueryPageStep::Downloaded);
    EXPECT_EQ(r.records, 2500);
    EXPECT_EQ(r.bytes, 123456);
    EXPECT_FALSE(r.next_locator.has_value());
    EXPECT_EQ(r.attempts, 0);
    EXPECT_EQ(to_string(m->next(kT0).kind), "Finished");
    EXPECT_TRUE(m->finished());
}

TEST(QueryPageHappyPath, LocatorPagesCarryMaxRecordsAndRevealTheNextLocator) {
    auto m = make_page(page_at(1, ""), false, 57, 2);
    expect_page_persist(*m, QueryPageStep::Downloading);
    EXPECT_EQ(expect_page_http(*m).path, results_path(57, "?maxRecords=2"));
    m->http_done(page_ok("Mg", "2"), kT0);
    QueryPageRecord r = expect_page_persist(*m, QueryPageStep::Downloaded);
    EXPECT_EQ(r.next_locator, std::optional<std::string>("Mg"));

    auto n = make_page(page_at(2, "Mg"), false, 57, 2);
    expect_page_persist(*n, QueryPageStep::Downloading);
    EXPECT_EQ(expect_page_http(*n).path, results_path(57, "?locator=Mg&maxRecords=2"));

    EXPECT_FALSE(download(page_at(2, "Mg"), 57, page_ok("null", "1")).next_locator.has_value());
    EXPECT_FALSE(download(page_at(2, "Mg"), 57, page_ok(std::nullopt, "1")).next_locator.has_value());
    // A missing or unreadable count is "unknown", not a failure: the rows are in the file.
    EXPECT_EQ(download(page_at(2, "Mg"), 57, page_ok("null", std::nullopt)).records, -1);
    EXPECT_EQ(download(page_at(2, "Mg"), 57, page_ok("null", "12x")).records, -1);
    EXPECT_EQ(download(page_at(2, "Mg"), 57, page_ok("null", " 7 ")).records, 7);
}

// A tiny worker: page rows in memory, each run by its own page machine, the job told the progress.
struct FakePages {
    std::vector<QueryPageRecord> rows;

    void insert(const std::vector<QueryPageSpec> &specs) {
        for (const QueryPageSpec &s : specs) {
            EXPECT_EQ(s.page_no, static_cast<int>(rows.size()) + 1);
            rows.push_back(page_at(s.page_no, s.path_or_locator));
        }
    }
    PagesProgress progress() const {
        PagesProgress p;
        p.known = static_cast<int>(rows.size());
        for (const QueryPageRecord &r : rows) {
            if (r.step == QueryPageStep::Downloaded) {
                ++p.downloaded;
            }
            if (r.step == QueryPageStep::Failed && !p.page_failure) {
                p.page_failure = "page " + std::to_string(r.page_no) + ": " + r.error;
            }
        }
        if (!rows.empty() && rows.back().step == QueryPageStep::Downloaded && rows.back().next_locator) {
            p.chain_open = true;
            p.next_locator = *rows.back().next_locator;
        }
        return p;
    }
    void run(std::size_t i, int version, const QueryResponse &answer) {
        auto m = make_page(rows[i], false, version);
        for (;;) {
            const QueryPageAction a = m->next(kT0);
            if (a.kind == QueryActionKind::Persist) {
                rows[i] = a.record;
                m->persisted();
            } else if (a.kind == QueryActionKind::Http) {
                m->http_done(answer, kT0);
            } else {
                ASSERT_EQ(a.kind, QueryActionKind::Finished);
                return;
            }
        }
    }
};

TEST(QueryJobHappyPath, Api57FollowsTheLocatorChain) {
    auto m = make_job(QueryJobRecord{}, false, 57);
    FakePages pages;
    create_job(*m);
    const std::int64_t t = kT0 + 1000;
    QueryRequest q = expect_http(*m, QueryRequestKind::GetJob, pages.progress(), t);
    EXPECT_EQ(q.path, "/services/data/v57.0/jobs/query/" + kJob);
    m->http_done(ok(200, job_json("JobComplete", 3)), t);
    // No resultPages below 58: straight to Downloading with the first page.
    QueryJobAction a = expect_persist(*m, QueryJobStep::Downloading, pages.progress(), t);
    EXPECT_TRUE(a.record.page_list_done);
    ASSERT_EQ(a.new_pages.size(), 1u);
    EXPECT_EQ(a.new_pages[0], (QueryPageSpec{1, ""}));
    pages.insert(a.new_pages);

    EXPECT_EQ(to_string(m->next(t, false, pages.progress()).kind), "AwaitPages");
    pages.run(0, 57, page_ok("Mg", "2"));
    a = expect_persist(*m, QueryJobStep::Downloading, pages.progress(), t);
    ASSERT_EQ(a.new_pages.size(), 1u);
    EXPECT_EQ(a.new_pages[0], (QueryPageSpec{2, "Mg"}));
    pages.insert(a.new_pages);

    EXPECT_EQ(to_string(m->next(t, false, pages.progress()).kind), "AwaitPages");
    pages.run(1, 57, page_ok("null", "1"));
    expect_persist(*m, QueryJobStep::Loading, pages.progress(), t);
    expect_load_and_finish(*m, pages.progress());
    EXPECT_EQ(pages.rows[0].records + pages.rows[1].records, 3);
}

TEST(QueryJobHappyPath, EmptyResultWithNoPagesStillLoads) {
    auto m = make_job(job_at(QueryJobStep::Listing, kJob, "JobComplete"), true, 62);
    expect_http(*m, QueryRequestKind::ListPages);
    m->http_done(ok(200, result_pages_json({}, std::nullopt)), kT0);
    expect_persist(*m, QueryJobStep::Downloading);
    expect_persist(*m, QueryJobStep::Loading);
    expect_load_and_finish(*m, kNoPages);
}

// ---- resume ----------------------------------------------------------------------------------------------

TEST(QueryJobResume, FromEveryStep) {
    {
        auto m = make_job(job_at(QueryJobStep::Pending, ""), true);
        expect_persist(*m, QueryJobStep::Creating);
    }
    {
        // Creating with no id: the first POST's job is abandoned and a new one is created.
        auto m = make_job(job_at(QueryJobStep::Creating, ""), true);
        const QueryRequest q = expect_http(*m, QueryRequestKind::CreateJob);
        EXPECT_EQ(q.path, "/services/data/v62.0/jobs/query");
        m->http_done(ok(200, job_json("UploadComplete")), kT0);
        EXPECT_EQ(expect_persist(*m, QueryJobStep::Polling).record.sf_job_id, kJob);
    }
    {
        // Polling: the first poll happens at once, even if the stored poll time lies ahead.
        QueryJobRecord rec = job_at(QueryJobStep::Polling, kJob, "InProgress");
        auto m = make_job(rec, true);
        expect_http(*m, QueryRequestKind::GetJob);
    }
    {
        // Listing in the middle: the stored continuation, page numbers after the committed ones.
        QueryJobRecord rec = job_at(QueryJobStep::Listing, kJob, "JobComplete");
        rec.page_list_url = pages_path(62, "?locator=R0hJ");
        auto m = make_job(rec, true);
        const QueryRequest q = expect_http(*m, QueryRequestKind::ListPages, progress(5, 5));
        EXPECT_EQ(q.path, pages_path(62, "?locator=R0hJ"));
        m->http_done(ok(200, result_pages_json({results_path(62, "?locator=Ng")}, std::nullopt)), kT0);
        const QueryJobAction a = expect_persist(*m, QueryJobStep::Downloading, progress(5, 5));
        ASSERT_EQ(a.new_pages.size(), 1u);
        EXPECT_EQ(a.new_pages[0].page_no, 6);
    }
    {
        QueryJobRecord rec = job_at(QueryJobStep::Listing, kJob, "JobComplete");
        auto m = make_job(rec, true);
        EXPECT_EQ(expect_http(*m, QueryRequestKind::ListPages).path, pages_path(62));
    }
    {
        auto m = make_job(job_at(QueryJobStep::Downloading, kJob, "JobComplete"), true);
        EXPECT_EQ(to_string(m->next(kT0, false, progress(4, 1)).kind), "AwaitPages");
        expect_persist(*m, QueryJobStep::Loading, progress(4, 4));
    }
    {
        // Locator chain interrupted between a downloaded page and the insert of the next one.
        auto m = make_job(job_at(QueryJobStep::Downloading, kJob, "JobComplete"), true, 57);
        PagesProgress p = progress(2, 2);
        p.chain_open = true;
        p.next_locator = "NA";
        const QueryJobAction a = expect_persist(*m, QueryJobStep::Downloading, p);
        ASSERT_EQ(a.new_pages.size(), 1u);
        EXPECT_EQ(a.new_pages[0], (QueryPageSpec{3, "NA"}));
    }
    {
        // Loading: the load is one transaction with Done, so a record still in Loading loaded nothing.
        auto m = make_job(job_at(QueryJobStep::Loading, kJob, "JobComplete"), true);
        expect_load_and_finish(*m, progress(2, 2));
    }
    for (QueryJobStep s : {QueryJobStep::Done, QueryJobStep::Failed, QueryJobStep::Aborted}) {
        auto m = make_job(job_at(s), true);
        expect_finished(*m, s);
        expect_finished(*m, s);  // stays finished, even when an abort arrives late
        EXPECT_EQ(to_string(m->next(kT0, true, kNoPages).kind), "Finished");
    }
}

TEST(QueryJobResume, PersistedAttemptsContinueTheRetryBudget) {
    QueryJobRecord rec = job_at(QueryJobStep::Polling, kJob, "InProgress");
    rec.attempts = 4;
    auto m = make_job(rec, true);
    expect_http(*m, QueryRequestKind::GetJob);
    m->http_done(err(503), kT0);
    const QueryJobRecord r = expect_persist(*m, QueryJobStep::Polling).record;
    EXPECT_EQ(r.attempts, 5);
    expect_http(*m, QueryRequestKind::GetJob, kNoPages, *r.not_before_ms);
    m->http_done(err(503), *r.not_before_ms);
    const QueryJobRecord f = expect_final(*m, QueryJobStep::Failed);
    EXPECT_NE(f.error.find("gave up after"), std::string::npos) << f.error;
}

TEST(QueryPageResume, PageInDoubtIsFetchedAgain) {
    QueryPageRecord rec = page_at(3, "TWc", QueryPageStep::Downloading);
    auto m = make_page(rec, true, 57);
    // No new intent: the persisted one stands; the same GET again.
    EXPECT_EQ(expect_page_http(*m).path, results_path(57, "?locator=TWc"));
    m->http_done(page_ok("null", "10"), kT0);
    EXPECT_EQ(expect_page_persist(*m, QueryPageStep::Downloaded).records, 10);

    auto p = make_page(page_at(1, ""), true, 57);
    expect_page_persist(*p, QueryPageStep::Downloading);
    for (QueryPageStep s : {QueryPageStep::Downloaded, QueryPageStep::Failed}) {
        auto f = make_page(page_at(1, "", s), true, 57);
        EXPECT_EQ(to_string(f->next(kT0).kind), "Finished");
    }
}

TEST(QueryPageResume, InterruptedTransferIsRetriedWithBackoffThenSucceeds) {
    auto m = make_page(page_at(1, ""), false, 62);
    expect_page_persist(*m, QueryPageStep::Downloading);
    (void)expect_page_http(*m);
    m->http_done(transport(TransportError::ConnectionDropped, true), kT0);
    const QueryPageRecord r = expect_page_persist(*m, QueryPageStep::Downloading);
    EXPECT_EQ(r.attempts, 1);
    ASSERT_TRUE(r.not_before_ms.has_value());
    EXPECT_GT(*r.not_before_ms, kT0);
    EXPECT_NE(r.error.find("retrying"), std::string::npos) << r.error;
    const QueryPageAction w = m->next(kT0);
    EXPECT_EQ(w.kind, QueryActionKind::WaitUntil);
    (void)expect_page_http(*m, *r.not_before_ms);
    m->http_done(page_ok("null", "4"), *r.not_before_ms);
    const QueryPageRecord d = expect_page_persist(*m, QueryPageStep::Downloaded, *r.not_before_ms);
    EXPECT_EQ(d.attempts, 0);
    EXPECT_TRUE(d.error.empty());
}

// ---- tokens ----------------------------------------------------------------------------------------------

TEST(QueryJobTokens, One401ThenTheSameRequestWithAFreshToken) {
    auto m = make_job(QueryJobRecord{}, false);
    expect_persist(*m, QueryJobStep::Creating);
    const QueryRequest first = expect_http(*m, QueryRequestKind::CreateJob);
    m->http_done(err(401, "INVALID_SESSION_ID", "Session expired or invalid"), kT0);
    // Even an abort request waits for the resend: it completes the call in flight.
    const QueryRequest again = expect_http(*m, QueryRequestKind::CreateJob, kNoPages, kT0, true);
    EXPECT_TRUE(again.needs_fresh_token);
    EXPECT_EQ(again.path, first.path);
    EXPECT_EQ(again.json_body, first.json_body);
    m->http_done(ok(200, job_json("UploadComplete")), kT0);
    expect_persist(*m, QueryJobStep::Polling);
}

TEST(QueryJobTokens, Second401FailsTheJob) {
    auto m = make_job(job_at(QueryJobStep::Polling, kJob, "InProgress"), true);
    expect_http(*m, QueryRequestKind::GetJob);
    m->http_done(err(401, "INVALID_SESSION_ID", "Session expired or invalid"), kT0);
    EXPECT_TRUE(expect_http(*m, QueryRequestKind::GetJob).needs_fresh_token);
    m->http_done(err(401, "INVALID_SESSION_ID", "Session expired or invalid"), kT0);
    const QueryJobRecord r = expect_final(*m, QueryJobStep::Failed);
    EXPECT_NE(r.error.find("again after refreshing the access token"), std::string::npos) << r.error;
}

TEST(QueryJobTokens, CredentialsFailureFailsWithCodeAndMessage) {
    auto m = make_job(job_at(QueryJobStep::Polling, kJob, "InProgress"), true);
    expect_http(*m, QueryRequestKind::GetJob);
    m->credentials_failed("invalid_grant", "authentication failure", kT0);
    EXPECT_EQ(expect_final(*m, QueryJobStep::Failed).error, "invalid_grant: authentication failure");
}

TEST(QueryPageTokens, One401ThenSuccessAndTwiceFails) {
    auto m = make_page(page_at(1, ""), false, 57);
    expect_page_persist(*m, QueryPageStep::Downloading);
    (void)expect_page_http(*m);
    m->http_done(err(401, "INVALID_SESSION_ID", "Session expired or invalid"), kT0);
    QueryRequest q = expect_page_http(*m);
    EXPECT_TRUE(q.needs_fresh_token);
    EXPECT_EQ(q.path, results_path(57));
    m->http_done(page_ok("null", "1"), kT0);
    expect_page_persist(*m, QueryPageStep::Downloaded);

    auto n = make_page(page_at(1, ""), false, 57);
    expect_page_persist(*n, QueryPageStep::Downloading);
    (void)expect_page_http(*n);
    n->http_done(err(401, "INVALID_SESSION_ID", "Session expired or invalid"), kT0);
    (void)expect_page_http(*n);
    n->http_done(err(401, "INVALID_SESSION_ID", "Session expired or invalid"), kT0);
    EXPECT_NE(expect_page_persist(*n, QueryPageStep::Failed).error.find("again after refreshing"),
              std::string::npos);

    auto c = make_page(page_at(1, ""), false, 57);
    expect_page_persist(*c, QueryPageStep::Downloading);
    (void)expect_page_http(*c);
    c->credentials_failed("", "no user mapping", kT0);
    EXPECT_EQ(expect_page_persist(*c, QueryPageStep::Failed).error, "no user mapping");
}

// ---- retries ---------------------------------------------------------------------------------------------

TEST(QueryJobRetry, ServerErrorsRetriedUntilTheBudgetIsSpent) {
    auto m = make_job(job_at(QueryJobStep::Polling, kJob, "InProgress"), true);
    std::int64_t t = kT0;
    for (int i = 1; i <= 5; ++i) {
        expect_http(*m, QueryRequestKind::GetJob, kNoPages, t);
        m->http_done(err(i % 2 ? 503 : 500), t);
        const QueryJobRecord r = expect_persist(*m, QueryJobStep::Polling, kNoPages, t).record;
        EXPECT_EQ(r.attempts, i);
        ASSERT_TRUE(r.not_before_ms.has_value());
        EXPECT_GE(*r.not_before_ms, t + 100);
        EXPECT_NE(r.error.find("retrying"), std::string::npos);
        EXPECT_EQ(to_string(m->next(t, false, kNoPages).kind), "WaitUntil");
        t = *r.not_before_ms;
    }
    expect_http(*m, QueryRequestKind::GetJob, kNoPages, t);
    m->http_done(err(503), t);
    const QueryJobRecord f = expect_final(*m, QueryJobStep::Failed);
    EXPECT_EQ(f.error.rfind("gave up after 6 attempts", 0), 0u) << f.error;
    EXPECT_EQ(f.attempts, 0);
}

TEST(QueryJobRetry, LostCreateAnswerIsRetriedNotReconciled) {
    auto m = make_job(QueryJobRecord{}, false);
    expect_persist(*m, QueryJobStep::Creating);
    expect_http(*m, QueryRequestKind::CreateJob);
    m->http_done(transport(TransportError::Timeout, true), kT0);
    const QueryJobRecord r = expect_persist(*m, QueryJobStep::Creating).record;
    EXPECT_EQ(r.attempts, 1);
    expect_http(*m, QueryRequestKind::CreateJob, kNoPages, *r.not_before_ms);
    m->http_done(ok(200, job_json("UploadComplete")), *r.not_before_ms);
    EXPECT_EQ(expect_persist(*m, QueryJobStep::Polling).record.attempts, 0);
}

TEST(QueryJobRetry, DailyLimitWaitsForTheWindowWithoutUsingTheBudget) {
    auto m = make_job(job_at(QueryJobStep::Listing, kJob, "JobComplete"), true);
    expect_http(*m, QueryRequestKind::ListPages);
    m->http_done(err(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."), kT0);
    const QueryJobRecord r = expect_persist(*m, QueryJobStep::Listing).record;
    EXPECT_EQ(r.attempts, 0);
    EXPECT_EQ(*r.not_before_ms, kT0 + 15 * 60 * 1000);
    EXPECT_NE(r.error.find("daily API request limit"), std::string::npos) << r.error;
}

TEST(QueryPageRetry, BudgetExhaustedFailsThePage) {
    auto m = make_page(page_at(1, ""), false, 57);
    expect_page_persist(*m, QueryPageStep::Downloading);
    std::int64_t t = kT0;
    for (int i = 1; i <= 5; ++i) {
        (void)expect_page_http(*m, t);
        m->http_done(err(502), t);
        const QueryPageRecord r = expect_page_persist(*m, QueryPageStep::Downloading, t);
        EXPECT_EQ(r.attempts, i);
        t = *r.not_before_ms;
    }
    (void)expect_page_http(*m, t);
    m->http_done(err(502), t);
    EXPECT_EQ(expect_page_persist(*m, QueryPageStep::Failed, t).error.rfind("gave up after 6 attempts", 0),
              0u);
}

// ---- Salesforce outcomes ---------------------------------------------------------------------------------

TEST(QueryJobOutcome, FailedJobWithAndWithoutErrorMessage) {
    {
        auto m = make_job(job_at(QueryJobStep::Polling, kJob, "InProgress"), true);
        expect_http(*m, QueryRequestKind::GetJob);
        m->http_done(ok(200, job_json("Failed", 12, "InvalidBatch : Field name not found : Foo__c")), kT0);
        const QueryJobRecord r = expect_final(*m, QueryJobStep::Failed);
        EXPECT_EQ(r.error, "InvalidBatch : Field name not found : Foo__c");
        EXPECT_EQ(r.sf_state, "Failed");
        EXPECT_EQ(r.records_processed, 12);
    }
    {
        auto m = make_job(job_at(QueryJobStep::Polling, kJob, "InProgress"), true);
        expect_http(*m, QueryRequestKind::GetJob);
        m->http_done(ok(200, job_json("Failed")), kT0);
        EXPECT_EQ(expect_final(*m, QueryJobStep::Failed).error,
                  "Salesforce reported the query job Failed without a message");
    }
    {
        auto m = make_job(job_at(QueryJobStep::Polling, kJob, "InProgress"), true);
        expect_http(*m, QueryRequestKind::GetJob);
        m->http_done(ok(200, job_json("Aborted")), kT0);
        EXPECT_EQ(expect_final(*m, QueryJobStep::Aborted).error,
                  "the Salesforce query job was aborted outside sf_bulk");
    }
}

TEST(QueryJobOutcome, CreationErrorsVerbatim) {
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"MALFORMED_QUERY", "unexpected token: GROUP"},
        {"INVALID_FIELD", "No such column 'Foo__c' on entity 'Contact'"},
        {"INVALIDENTITY", "Entity 'Foo' is not supported by the Bulk API"},
        {"API_ERROR", "Foo does not support query"},
        {"LIMIT_EXCEEDED",
         "Max bulk v2 query result size stored (1000000000) kb per 24 hrs has been exceeded"},
    };
    for (const auto &[code, message] : cases) {
        auto m = make_job(QueryJobRecord{}, false);
        expect_persist(*m, QueryJobStep::Creating);
        expect_http(*m, QueryRequestKind::CreateJob);
        m->http_done(err(400, code, message), kT0);
        const QueryJobRecord r = expect_final(*m, QueryJobStep::Failed);
        EXPECT_EQ(r.error, code + ": " + message);
        EXPECT_TRUE(r.sf_job_id.empty());
    }
}

TEST(QueryJobOutcome, UnusableResultPagesFailTheJob) {
    {
        auto m = make_job(job_at(QueryJobStep::Listing, kJob, "JobComplete"), true);
        expect_http(*m, QueryRequestKind::ListPages);
        m->http_done(ok(200, result_pages_json({"/services/data/v62.0/jobs/query/" + job_id(8) + "/results"},
                                               std::nullopt)),
                     kT0);
        EXPECT_NE(expect_final(*m, QueryJobStep::Failed).error.find("outside query job"), std::string::npos);
    }
    {
        auto m = make_job(job_at(QueryJobStep::Listing, kJob, "JobComplete"), true);
        expect_http(*m, QueryRequestKind::ListPages);
        m->http_done(ok(200, "{\"resultPages\":[],\"done\":false}"), kT0);
        EXPECT_NE(expect_final(*m, QueryJobStep::Failed).error.find("nextRecordsUrl"), std::string::npos);
    }
    {
        auto m = make_job(job_at(QueryJobStep::Listing, kJob, "JobComplete"), true);
        expect_http(*m, QueryRequestKind::ListPages);
        m->http_done(err(409, "INVALIDJOB", "Wrong API version"), kT0);
        EXPECT_EQ(expect_final(*m, QueryJobStep::Failed).error, "INVALIDJOB: Wrong API version");
    }
}

TEST(QueryPageOutcome, DefiniteErrorsFailThePageVerbatim) {
    const std::vector<std::tuple<int, std::string, std::string>> cases = {
        {409, "INVALIDJOBSTATE", "Job was created with API version 62.0"},
        {404, "NOT_FOUND", "The requested resource does not exist"},
        {400, "JOB_NOT_COMPLETE", "The job is not complete"},
    };
    for (const auto &[status, code, message] : cases) {
        const QueryPageRecord r = download(page_at(2, "Mg"), 57, err(status, code, message));
        EXPECT_EQ(to_string(r.step), "failed");
        EXPECT_EQ(r.error, code + ": " + message);
    }
    // A stored result URL that is not this job's results resource (or not of the job's version) is never
    // fetched.
    for (const std::string &url :
         {std::string("/services/data/v62.0/limits"), results_path(62, "/../../limits"),
          results_path(62, "Evil"), results_path(61, "?locator=QQ")}) {
        auto m = make_page(page_at(1, url), false, 62);
        expect_page_persist(*m, QueryPageStep::Downloading);
        EXPECT_NE(expect_page_persist(*m, QueryPageStep::Failed).error.find("outside query job"),
                  std::string::npos)
            << url;
    }
}

TEST(QueryJobOutcome, AFailedPageFailsTheJob) {
    FakePages pages;
    pages.insert({QueryPageSpec{1, results_path(62, "?locator=QUJD")},
                  QueryPageSpec{2, results_path(62, "?locator=REVG")}});
    pages.run(0, 62, page_ok("REVG", "5"));
    pages.run(1, 62, err(404, "NOT_FOUND", "The requested resource does not exist"));
    auto m = make_job(job_at(QueryJobStep::Downloading, kJob, "JobComplete"), true);
    const QueryJobRecord r = expect_final(*m, QueryJobStep::Failed, pages.progress());
    EXPECT_EQ(r.error, "result page 2: NOT_FOUND: The requested resource does not exist");
    // Also while the listing still runs.
    auto l = make_job(job_at(QueryJobStep::Listing, kJob, "JobComplete"), true);
    expect_final(*l, QueryJobStep::Failed, pages.progress());
}

TEST(QueryPageOutcome, ALocatorPointingAtItselfFailsThePage) {
    const QueryPageRecord r = download(page_at(2, "Mg"), 57, page_ok("Mg", "2"));
    EXPECT_EQ(to_string(r.step), "failed");
    EXPECT_NE(r.error.find("its own locator"), std::string::npos) << r.error;
}

TEST(QueryPageRetry, RetryAfterOf429IsHonoured) {
    auto m = make_page(page_at(1, ""), false, 57);
    expect_page_persist(*m, QueryPageStep::Downloading);
    (void)expect_page_http(*m);
    QueryResponse r = err(429);
    r.retry_after = "7";
    m->http_done(r, kT0);
    EXPECT_EQ(*expect_page_persist(*m, QueryPageStep::Downloading).not_before_ms, kT0 + 7000);
}

TEST(QueryJobRetry, ListingRetryKeepsTheContinuationAndThePageNumbers) {
    QueryJobRecord rec = job_at(QueryJobStep::Listing, kJob, "JobComplete");
    rec.page_list_url = pages_path(62, "?locator=R0hJ");
    auto m = make_job(rec, true);
    expect_http(*m, QueryRequestKind::ListPages, progress(5, 0));
    m->http_done(transport(TransportError::ConnectFailed, false), kT0);
    const QueryJobRecord r = expect_persist(*m, QueryJobStep::Listing, progress(5, 0)).record;
    EXPECT_EQ(r.page_list_url, pages_path(62, "?locator=R0hJ"));
    EXPECT_EQ(r.attempts, 1);
    const std::int64_t t = *r.not_before_ms;
    EXPECT_EQ(expect_http(*m, QueryRequestKind::ListPages, progress(5, 2), t).path,
              pages_path(62, "?locator=R0hJ"));
    m->http_done(ok(200, result_pages_json({results_path(62, "?locator=Ng"), results_path(62, "?locator=Nw")},
                                           pages_path(62, "?locator=OA"))),
                 t);
    const QueryJobAction a = expect_persist(*m, QueryJobStep::Listing, progress(5, 2), t);
    ASSERT_EQ(a.new_pages.size(), 2u);
    EXPECT_EQ(a.new_pages[0].page_no, 6);
    EXPECT_EQ(a.new_pages[1].page_no, 7);
    EXPECT_EQ(a.record.attempts, 0);
    EXPECT_TRUE(a.record.error.empty());
    // A continuation that points back at the set just read would loop.
    expect_http(*m, QueryRequestKind::ListPages, progress(7, 2), t);
    m->http_done(ok(200, result_pages_json({}, pages_path(62, "?locator=OA"))), t);
    EXPECT_NE(expect_final(*m, QueryJobStep::Failed, progress(7, 2)).error.find("points back at itself"),
              std::string::npos);
}

TEST(QueryJobOutcome, UnreadableAnswersFailClearly) {
    {
        auto m = make_job(QueryJobRecord{}, false);
        expect_persist(*m, QueryJobStep::Creating);
        expect_http(*m, QueryRequestKind::CreateJob);
        m->http_done(ok(200, "<html>proxy</html>"), kT0);
        EXPECT_NE(expect_final(*m, QueryJobStep::Failed).error.find("unusable"), std::string::npos);
    }
    {
        auto m = make_job(job_at(QueryJobStep::Polling, kJob, "InProgress"), true);
        expect_http(*m, QueryRequestKind::GetJob);
        m->http_done(ok(200, "not json"), kT0);
        EXPECT_NE(expect_final(*m, QueryJobStep::Failed).error.find("unreadable"), std::string::npos);
    }
    {
        QueryJobSpec spec = job_spec(62);
        spec.job.operation = Operation::Insert;  // not a query operation
        QueryJobMachine m(QueryJobRecord{}, spec, test_config(), fixed_random(), fixed_clock(), false);
        expect_persist(m, QueryJobStep::Creating);
        const QueryJobRecord r = expect_final(m, QueryJobStep::Failed);
        EXPECT_EQ(r.error.rfind("invalid query job definition", 0), 0u) << r.error;
    }
}

TEST(QueryJobHappyPath, QueryAllAndTheLoadRecordKeepsTheCounts) {
    QueryJobSpec spec = job_spec(58);
    spec.job.operation = Operation::QueryAll;
    QueryJobMachine m(QueryJobRecord{}, spec, test_config(), fixed_random(), fixed_clock(), false);
    expect_persist(m, QueryJobStep::Creating);
    const QueryRequest q = expect_http(m, QueryRequestKind::CreateJob);
    EXPECT_NE(q.json_body.find("\"queryAll\""), std::string::npos) << q.json_body;
    m.http_done(ok(200, job_json("UploadComplete")), kT0);
    expect_persist(m, QueryJobStep::Polling);
    expect_http(m, QueryRequestKind::GetJob, kNoPages, kT0 + 1000);
    m.http_done(ok(200, job_json("JobComplete", 42)), kT0 + 1000);
    expect_persist(m, QueryJobStep::Listing);  // 58.0 is the first version with resultPages
    EXPECT_EQ(expect_http(m, QueryRequestKind::ListPages).path, pages_path(58));
    m.http_done(ok(200, result_pages_json({results_path(58, "?locator=QQ")}, std::nullopt)), kT0);
    expect_persist(m, QueryJobStep::Downloading, kNoPages);
    expect_persist(m, QueryJobStep::Loading, progress(1, 1));
    const QueryJobAction a = m.next(kT0, false, progress(1, 1));
    EXPECT_EQ(to_string(a.kind), "Load");
    EXPECT_EQ(a.record.records_processed, 42);
    EXPECT_EQ(a.record.sf_job_id, kJob);
}

// ---- aborts ----------------------------------------------------------------------------------------------

TEST(QueryJobAbort, BeforeAJobIsKnownEndsLocally) {
    for (QueryJobStep s : {QueryJobStep::Pending, QueryJobStep::Creating}) {
        auto m = make_job(job_at(s, ""), true);
        const QueryJobAction a = m->next(kT0, true, kNoPages);
        EXPECT_EQ(to_string(a.kind), "Persist");
        EXPECT_EQ(to_string(a.record.step), "aborted");
        EXPECT_EQ(a.record.error, "aborted by request before a Salesforce query job was known");
        m->persisted();
        expect_finished(*m, QueryJobStep::Aborted);
    }
}

TEST(QueryJobAbort, WhilePollingPatchesAbortedAtOnce) {
    auto m = make_job(QueryJobRecord{}, false);
    create_job(*m);  // the next poll is 1 s away; the abort does not wait for it
    const QueryRequest q = expect_http(*m, QueryRequestKind::Abort, kNoPages, kT0, true);
    EXPECT_EQ(q.method, HttpMethod::Patch);
    EXPECT_EQ(q.path, "/services/data/v62.0/jobs/query/" + kJob);
    EXPECT_EQ(q.json_body, "{\"state\":\"Aborted\"}");
    EXPECT_EQ(to_string(m->state()), "aborting");
    m->http_done(ok(200, job_json("Aborted")), kT0);
    const QueryJobAction a = m->next(kT0, true, kNoPages);
    EXPECT_EQ(to_string(a.record.step), "aborted");
    EXPECT_EQ(a.record.error, "aborted by request");
    EXPECT_EQ(a.record.sf_state, "Aborted");
    m->persisted();
    expect_finished(*m, QueryJobStep::Aborted);
}

TEST(QueryJobAbort, RefusedBecauseAlreadyTerminalJustStops) {
    auto m = make_job(job_at(QueryJobStep::Polling, kJob, "InProgress"), true);
    expect_http(*m, QueryRequestKind::Abort, kNoPages, kT0, true);
    m->http_done(err(400, "INVALIDJOBSTATE", "Job is already complete"), kT0);
    const QueryJobAction a = m->next(kT0, true, kNoPages);
    EXPECT_EQ(to_string(a.record.step), "aborted");
    EXPECT_NE(a.record.error.find("had already ended"), std::string::npos) << a.record.error;
    EXPECT_NE(a.record.error.find("INVALIDJOBSTATE: Job is already complete"), std::string::npos);
    m->persisted();
    expect_finished(*m, QueryJobStep::Aborted);
}

TEST(QueryJobAbort, TransientAbortFailureIsRetried) {
    auto m = make_job(job_at(QueryJobStep::Polling, kJob, "InProgress"), true);
    expect_http(*m, QueryRequestKind::Abort, kNoPages, kT0, true);
    m->http_done(err(503), kT0);
    const QueryJobRecord r = expect_persist(*m, QueryJobStep::Polling, kNoPages, kT0, true).record;
    EXPECT_EQ(r.attempts, 1);
    EXPECT_EQ(to_string(m->next(kT0, true, kNoPages).kind), "WaitUntil");
    expect_http(*m, QueryRequestKind::Abort, kNoPages, *r.not_before_ms, true);
    m->http_done(ok(200, job_json("Aborted")), *r.not_before_ms);
    expect_persist(*m, QueryJobStep::Aborted, kNoPages, *r.not_before_ms, true);
}

TEST(QueryJobAbort, AfterCompletionNoRemoteCall) {
    for (QueryJobStep s : {QueryJobStep::Listing, QueryJobStep::Downloading, QueryJobStep::Loading}) {
        auto m = make_job(job_at(s, kJob, "JobComplete"), true);
        const QueryJobAction a = m->next(kT0, true, progress(2, 1));
        EXPECT_EQ(to_string(a.kind), "Persist") << to_string(s);
        EXPECT_EQ(to_string(a.record.step), "aborted");
        EXPECT_NE(a.record.error.find("no rows were loaded"), std::string::npos);
        m->persisted();
        expect_finished(*m, QueryJobStep::Aborted);
    }
}

TEST(QueryJobAbort, AbortArrivingDuringARetryWaitIsNotDelayed) {
    auto m = make_job(job_at(QueryJobStep::Polling, kJob, "InProgress"), true);
    expect_http(*m, QueryRequestKind::GetJob);
    m->http_done(err(503), kT0);
    expect_persist(*m, QueryJobStep::Polling);
    expect_http(*m, QueryRequestKind::Abort, kNoPages, kT0, true);
}

// ---- randomized crashes ----------------------------------------------------------------------------------

// A whole query against a scripted Salesforce with random 503s and random worker crashes (every machine
// dropped, rebuilt from the committed rows). Whatever the interleaving: the job ends Done, the load is
// committed once with every page downloaded, page numbers are dense and each page is listed once.
struct CrashWorld {
    int version;
    std::mt19937 rng;
    std::int64_t t = kT0;
    QueryJobRecord job;
    std::vector<QueryPageRecord> rows;
    std::unique_ptr<QueryJobMachine> jm;
    std::vector<std::unique_ptr<QueryPageMachine>> pms;
    int polls = 0;
    int loads = 0;
    int creates = 0;

    CrashWorld(int v, unsigned seed) : version(v), rng(seed) {}

    bool chance(double p) { return std::uniform_real_distribution<double>(0, 1)(rng) < p; }

    QueryResponse answer(const QueryRequest &q) {
        if (chance(0.1)) {
            return err(503);
        }
        switch (q.kind) {
            case QueryRequestKind::CreateJob:
                ++creates;
                return ok(200, job_json("UploadComplete"));
            case QueryRequestKind::GetJob:
                ++polls;
                return ok(200, polls < 3 ? job_json("InProgress") : job_json("JobComplete", 7));
            case QueryRequestKind::ListPages:
                if (q.path == pages_path(version)) {
                    return ok(200, result_pages_json({results_path(version, "?locator=QQ"),
                                                      results_path(version, "?locator=Qg")},
                                                     pages_path(version, "?locator=Qw")));
                }
                EXPECT_EQ(q.path, pages_path(version, "?locator=Qw"));
                return ok(200, result_pages_json({results_path(version, "?locator=RA")}, std::nullopt));
            case QueryRequestKind::FetchPage: {
                // Locator chain: "" -> MQ -> Mg -> null, 3 + 2 + 2 rows; listed pages: 3, 2, 2 rows.
                const std::string p = q.path;
                if (p == results_path(version) || p == results_path(version, "?locator=QQ")) {
                    return page_ok("MQ", "3");
                }
                if (p == results_path(version, "?locator=MQ") || p == results_path(version, "?locator=Qg")) {
                    return page_ok("Mg", "2");
                }
                return page_ok("null", "2");
            }
            case QueryRequestKind::Abort:
                break;
        }
        ADD_FAILURE() << "unexpected request " << q.path;
        return err(400, "X", "unexpected");
    }

    PagesProgress progress() const {
        FakePages f;
        f.rows = rows;
        return f.progress();
    }

    void crash() {
        jm.reset();
        pms.clear();
    }

    // One action of page i; false when it has finished.
    bool step_page(std::size_t i) {
        if (pms.size() <= i) {
            pms.resize(i + 1);
        }
        if (!pms[i]) {
            pms[i] = std::make_unique<QueryPageMachine>(rows[i], page_spec(version), test_config().retry,
                                                        fixed_random(), fixed_clock(), true);
        }
        const QueryPageAction a = pms[i]->next(t);
        switch (a.kind) {
            case QueryActionKind::Persist:
                rows[i] = a.record;
                if (!chance(0.05)) {
                    pms[i]->persisted();
                } else {
                    crash();  // committed, but the worker died before telling the machine
                }
                return true;
            case QueryActionKind::Http:
                if (chance(0.05)) {
                    crash();  // the transfer dies with the worker
                    return true;
                }
                pms[i]->http_done(answer(a.request), t);
                return true;
            case QueryActionKind::WaitUntil:
                t = std::max(t, a.wait_until_ms);
                return true;
            default:
                return false;
        }
    }

    void run() {
        for (int round = 0; round < 5000; ++round) {
            if (!jm) {
                jm = std::make_unique<QueryJobMachine>(job, job_spec(version), test_config(), fixed_random(),
                                                       fixed_clock(), /*resumed=*/true);
            }
            const QueryJobAction a = jm->next(t, false, progress());
            switch (a.kind) {
                case QueryActionKind::Persist:
                    job = a.record;
                    for (const QueryPageSpec &ps : a.new_pages) {
                        ASSERT_EQ(ps.page_no, static_cast<int>(rows.size()) + 1);
                        rows.push_back(page_at(ps.page_no, ps.path_or_locator));
                    }
                    if (chance(0.05)) {
                        crash();
                    } else {
                        jm->persisted();
                    }
                    break;
                case QueryActionKind::Http:
                    if (chance(0.05)) {
                        crash();
                    } else {
                        jm->http_done(answer(a.request), t);
                    }
                    break;
                case QueryActionKind::Load:
                    for (const QueryPageRecord &r : rows) {
                        ASSERT_EQ(to_string(r.step), "downloaded");
                    }
                    ++loads;
                    job = a.record;
                    if (chance(0.05)) {
                        crash();
                    } else {
                        jm->persisted();
                    }
                    break;
                case QueryActionKind::WaitUntil:
                    t = std::max(t, a.wait_until_ms);
                    break;
                case QueryActionKind::AwaitPages: {
                    bool any = false;
                    for (std::size_t i = 0; i < rows.size() && jm; ++i) {
                        if (!is_final(rows[i].step)) {
                            any = step_page(i) || any;
                        }
                    }
                    if (!any && jm) {
                        ADD_FAILURE() << "job awaits pages but no page can move";
                        return;
                    }
                    break;
                }
                case QueryActionKind::Finished:
                    return;
            }
        }
        ADD_FAILURE() << "did not finish";
    }
};

TEST(QueryMachineProperty, RandomCrashesAndErrorsStillLoadEveryPageOnce) {
    for (int version : {57, 62}) {
        for (unsigned seed = 1; seed <= 150; ++seed) {
            CrashWorld w(version, seed);
            w.run();
            ASSERT_EQ(to_string(w.job.step), "done")
                << "v" << version << " seed " << seed << ": " << w.job.error;
            EXPECT_EQ(w.loads, 1) << "seed " << seed;
            EXPECT_EQ(w.job.sf_job_id, kJob);
            EXPECT_EQ(w.job.records_processed, 7);
            ASSERT_EQ(w.rows.size(), 3u) << "v" << version << " seed " << seed;
            std::int64_t records = 0;
            for (const QueryPageRecord &r : w.rows) {
                records += r.records;
            }
            EXPECT_EQ(records, 7) << "seed " << seed;
            if (version >= 58) {
                EXPECT_EQ(w.rows[2].path_or_locator, results_path(version, "?locator=RA"));
            } else {
                EXPECT_EQ(w.rows[1].path_or_locator, "MQ");
                EXPECT_EQ(w.rows[2].path_or_locator, "Mg");
                EXPECT_FALSE(w.rows[2].next_locator.has_value());
            }
        }
    }
}

}  // namespace
}  // namespace sfb
