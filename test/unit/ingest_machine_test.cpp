// Unit tests for the ingest chunk state machine: scripted Salesforce answers, every resume point, retries,
// aborts, and a randomized property test with crashes at arbitrary points.
#include "core/ingest_machine.h"

#include "core/error.h"
#include "core/sf_names.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace sfb {
namespace {

using std::chrono::milliseconds;

constexpr std::int64_t kT0 = 1'795'910'400'000;  // 2026-11-29T00:00:00Z in ms

std::string job_id(int n) {
    std::string id15 = "750Hs00000Zq";
    const std::string digits = std::to_string(100 + n % 900);
    id15 += digits;
    return id15 + record_id_suffix(id15);
}

const std::string kJobA = job_id(1);
const std::string kJobB = job_id(2);
const std::string kJobC = job_id(3);

std::string job_json(const std::string &id, const std::string &state,
                     std::optional<std::int64_t> processed = {}, std::optional<std::int64_t> failed = {},
                     const std::string &error_message = "") {
    std::string s = "{\"id\":\"" + id + "\",\"operation\":\"upsert\",\"object\":\"Contact\",\"state\":\"" +
                    state + "\",\"concurrencyMode\":\"Parallel\",\"contentType\":\"CSV\",\"apiVersion\":62.0";
    if (processed) {
        s += ",\"numberRecordsProcessed\":" + std::to_string(*processed);
    }
    if (failed) {
        s += ",\"numberRecordsFailed\":" + std::to_string(*failed);
    }
    if (!error_message.empty()) {
        s += ",\"errorMessage\":\"" + error_message + "\"";
    }
    return s + "}";
}

std::string sf_error(const std::string &code, const std::string &message) {
    return "[{\"errorCode\":\"" + code + "\",\"message\":\"" + message + "\"}]";
}

ChunkResponse ok(int status, std::string body = "") {
    ChunkResponse r;
    r.status = status;
    r.request_sent = true;
    r.body = std::move(body);
    return r;
}

ChunkResponse err(int status, const std::string &code = "", const std::string &message = "") {
    return ok(status, code.empty() ? "" : sf_error(code, message));
}

ChunkResponse transport(TransportError e, bool sent) {
    ChunkResponse r;
    r.transport = e;
    r.request_sent = sent;
    return r;
}

ChunkSpec test_spec() {
    ChunkSpec s;
    s.api_version = ApiVersion{62};
    s.job.object = "Contact";
    s.job.operation = Operation::Upsert;
    s.job.external_id_field_name = "Legacy_Key__c";
    s.spool_path = "/spool/42/chunk-0001.csv";
    s.successful_results_path = "/spool/42/chunk-0001.ok.csv";
    s.failed_results_path = "/spool/42/chunk-0001.failed.csv";
    s.unprocessed_results_path = "/spool/42/chunk-0001.unprocessed.csv";
    return s;
}

IngestMachineConfig test_config() {
    IngestMachineConfig c;
    c.retry.base = milliseconds(1000);
    c.retry.cap = milliseconds(60000);
    c.retry.min_delay = milliseconds(100);
    c.retry.max_attempts = 6;
    c.retry.max_retry_after = milliseconds(300000);
    c.retry.limit_window_wait = milliseconds(15 * 60 * 1000);
    c.poll.first_ms = 1000;
    c.poll.max_ms = 5000;
    c.poll.growth = 2.0;
    c.max_replacements = 3;
    return c;
}

std::unique_ptr<IngestChunkMachine> make(ChunkRecord rec, bool resumed, double random_value = 0.999,
                                         IngestMachineConfig cfg = test_config()) {
    return std::make_unique<IngestChunkMachine>(
        std::move(rec), test_spec(), cfg, [random_value]() { return random_value; },
        []() { return std::chrono::system_clock::time_point(milliseconds(kT0)); }, resumed);
}

ChunkRecord at(ChunkStep step, const std::string &id = "", const std::string &sf_state = "") {
    ChunkRecord r;
    r.step = step;
    r.sf_job_id = id;
    r.sf_state = sf_state;
    return r;
}

// ---- small drivers ---------------------------------------------------------------------------------------

ChunkRecord expect_persist(IngestChunkMachine &m, ChunkStep step, std::int64_t now = kT0,
                           bool abort = false) {
    const ChunkAction a = m.next(now, abort);
    EXPECT_EQ(to_string(a.kind), "Persist");
    EXPECT_EQ(to_string(a.record.step), to_string(step));
    m.persisted();
    return a.record;
}

ChunkRequest expect_http(IngestChunkMachine &m, ChunkRequestKind kind, std::int64_t now = kT0,
                         bool abort = false) {
    const ChunkAction a = m.next(now, abort);
    EXPECT_EQ(to_string(a.kind), "Http");
    EXPECT_EQ(to_string(a.request.kind), to_string(kind));
    return a.request;
}

ChunkAction expect_store(IngestChunkMachine &m, ChunkStep final_step, std::int64_t now = kT0) {
    const ChunkAction a = m.next(now, false);
    EXPECT_EQ(to_string(a.kind), "StoreResults");
    EXPECT_EQ(to_string(a.record.step), to_string(final_step));
    m.persisted();
    return a;
}

void expect_finished(IngestChunkMachine &m, std::int64_t now = kT0) {
    EXPECT_EQ(to_string(m.next(now, false).kind), "Finished");
    EXPECT_TRUE(m.finished());
}

// Fetch the three result files successfully, then expect StoreResults with all three.
ChunkAction fetch_all_and_store(IngestChunkMachine &m, ChunkStep final_step, std::int64_t now = kT0) {
    const ChunkSpec spec = test_spec();
    const IngestResult kinds[] = {IngestResult::Successful, IngestResult::Failed, IngestResult::Unprocessed};
    for (IngestResult k : kinds) {
        const ChunkRequest q = expect_http(m, ChunkRequestKind::FetchResult, now);
        EXPECT_EQ(q.path, ingest_results_path(spec.api_version, m.record().sf_job_id, k));
        EXPECT_EQ(q.method, HttpMethod::Get);
        EXPECT_TRUE(q.result == k);
        m.http_done(ok(200), now);
    }
    const ChunkAction s = expect_store(m, final_step, now);
    EXPECT_EQ(s.result_files.size(), 3u);
    return s;
}

// ---- basics ----------------------------------------------------------------------------------------------

TEST(IngestMachineSteps, NamesRoundTrip) {
    const ChunkStep all[] = {ChunkStep::Spooled,    ChunkStep::Creating, ChunkStep::Created,
                             ChunkStep::Uploading,  ChunkStep::Uploaded, ChunkStep::Closing,
                             ChunkStep::Processing, ChunkStep::Fetching, ChunkStep::Done,
                             ChunkStep::Failed,     ChunkStep::Aborted};
    for (ChunkStep s : all) {
        ASSERT_TRUE(parse_chunk_step(to_string(s)).has_value()) << to_string(s);
        EXPECT_EQ(*parse_chunk_step(to_string(s)), s);
    }
    EXPECT_EQ(to_string(ChunkStep::Uploading), "uploading");
    EXPECT_FALSE(parse_chunk_step("Uploading").has_value());
    EXPECT_TRUE(is_final(ChunkStep::Done));
    EXPECT_TRUE(is_final(ChunkStep::Aborted));
    EXPECT_FALSE(is_final(ChunkStep::Fetching));
}

TEST(IngestMachineProtocol, MisuseThrowsAndFreshMachineMustStartSpooled) {
    EXPECT_THROW(make(at(ChunkStep::Processing, kJobA), /*resumed=*/false), Error);
    auto m = make(at(ChunkStep::Spooled), false);
    EXPECT_THROW(m->persisted(), Error);
    EXPECT_THROW(m->http_done(ok(200), kT0), Error);
    (void)m->next(kT0, false);  // Persist Creating outstanding
    EXPECT_THROW(m->next(kT0, false), Error);
    EXPECT_THROW(m->http_done(ok(200), kT0), Error);
    m->persisted();
    (void)m->next(kT0, false);  // Http outstanding
    EXPECT_THROW(m->persisted(), Error);
    EXPECT_THROW(m->next(kT0, false), Error);
}

TEST(IngestMachineProtocol, InvalidConfigurationRejected) {
    IngestMachineConfig c = test_config();
    c.poll.growth = 0.5;
    EXPECT_THROW(make(at(ChunkStep::Spooled), false, 0.5, c), Error);
    c = test_config();
    c.poll.max_ms = 10;
    EXPECT_THROW(make(at(ChunkStep::Spooled), false, 0.5, c), Error);
}

// ---- happy path ------------------------------------------------------------------------------------------

TEST(IngestMachineHappyPath, ExactSequenceOfActionsAndPersistedSteps) {
    const ChunkSpec spec = test_spec();
    auto m = make(at(ChunkStep::Spooled), false);
    std::int64_t t = kT0;

    expect_persist(*m, ChunkStep::Creating, t);
    ChunkRequest q = expect_http(*m, ChunkRequestKind::CreateJob, t);
    EXPECT_EQ(q.method, HttpMethod::Post);
    EXPECT_EQ(q.path, "/services/data/v62.0/jobs/ingest");
    EXPECT_EQ(q.json_body, to_json(spec.job));
    EXPECT_FALSE(q.idempotent);
    m->http_done(ok(200, job_json(kJobA, "Open")), t);

    ChunkRecord r = expect_persist(*m, ChunkStep::Created, t);
    EXPECT_EQ(r.sf_job_id, kJobA);
    EXPECT_EQ(r.sf_state, "Open");

    expect_persist(*m, ChunkStep::Uploading, t);
    q = expect_http(*m, ChunkRequestKind::Upload, t);
    EXPECT_EQ(q.method, HttpMethod::Put);
    EXPECT_EQ(q.path, "/services/data/v62.0/jobs/ingest/" + kJobA + "/batches");
    EXPECT_EQ(q.upload_file, spec.spool_path);
    m->http_done(ok(201), t);
    expect_persist(*m, ChunkStep::Uploaded, t);

    expect_persist(*m, ChunkStep::Closing, t);
    q = expect_http(*m, ChunkRequestKind::Close, t);
    EXPECT_EQ(q.method, HttpMethod::Patch);
    EXPECT_EQ(q.path, "/services/data/v62.0/jobs/ingest/" + kJobA);
    EXPECT_EQ(q.json_body, "{\"state\":\"UploadComplete\"}");
    m->http_done(ok(200, job_json(kJobA, "UploadComplete")), t);
    r = expect_persist(*m, ChunkStep::Processing, t);
    EXPECT_EQ(r.sf_state, "UploadComplete");
    ASSERT_TRUE(r.not_before_ms.has_value());
    EXPECT_EQ(*r.not_before_ms, t + 1000);

    ChunkAction w = m->next(t, false);
    EXPECT_EQ(w.kind, ChunkActionKind::WaitUntil);
    EXPECT_EQ(w.wait_until_ms, t + 1000);

    t += 1000;
    q = expect_http(*m, ChunkRequestKind::GetJob, t);
    EXPECT_EQ(q.path, "/services/data/v62.0/jobs/ingest/" + kJobA);
    m->http_done(ok(200, job_json(kJobA, "InProgress", 0, 0)), t);
    r = expect_persist(*m, ChunkStep::Processing, t);
    EXPECT_EQ(r.sf_state, "InProgress");

    t += 2000;
    expect_http(*m, ChunkRequestKind::GetJob, t);
    m->http_done(ok(200, job_json(kJobA, "JobComplete", 2, 1)), t);
    r = expect_persist(*m, ChunkStep::Fetching, t);
    EXPECT_EQ(r.records_processed, 2);
    EXPECT_EQ(r.records_failed, 1);
    EXPECT_EQ(r.error, "");

    const ChunkAction s = fetch_all_and_store(*m, ChunkStep::Done, t);
    EXPECT_EQ(s.result_files[0].path, spec.successful_results_path);
    EXPECT_EQ(s.result_files[1].path, spec.failed_results_path);
    EXPECT_EQ(s.result_files[2].path, spec.unprocessed_results_path);
    EXPECT_EQ(s.record.sf_job_id, kJobA);
    EXPECT_EQ(s.record.records_processed, 2);
    EXPECT_TRUE(s.record.replaced_sf_job_ids.empty());
    expect_finished(*m, t);
    EXPECT_EQ(m->record().step, ChunkStep::Done);
}

// ---- resume points ---------------------------------------------------------------------------------------

TEST(IngestMachineResume, FromSpooledStartsNormally) {
    auto m = make(at(ChunkStep::Spooled), true);
    expect_persist(*m, ChunkStep::Creating);
    expect_http(*m, ChunkRequestKind::CreateJob);
}

TEST(IngestMachineResume, FromCreatingCreatesAgain) {
    auto m = make(at(ChunkStep::Creating), true);
    expect_http(*m, ChunkRequestKind::CreateJob);
    m->http_done(ok(200, job_json(kJobB, "Open")), kT0);
    EXPECT_EQ(expect_persist(*m, ChunkStep::Created).sf_job_id, kJobB);
}

// The worker keeps a create back while the org's API reserve holds (org_allowance.h): nothing was sent,
// the create comes again, and an abort in between ends the chunk without a Salesforce job.
TEST(IngestMachineWithheld, CreateComesAgainAndSpendsNoBudget) {
    auto m = make(at(ChunkStep::Spooled), false);
    expect_persist(*m, ChunkStep::Creating);
    for (int i = 0; i < 10; ++i) {  // more than max_attempts: a hold is not a retry
        expect_http(*m, ChunkRequestKind::CreateJob);
        m->http_withheld();
    }
    EXPECT_EQ(m->record().attempts, 0);
    expect_http(*m, ChunkRequestKind::CreateJob);
    m->http_done(ok(200, job_json(kJobA, "Open")), kT0);
    EXPECT_EQ(expect_persist(*m, ChunkStep::Created).sf_job_id, kJobA);
}

TEST(IngestMachineWithheld, AbortWhileHeldEndsWithoutSalesforceJob) {
    auto m = make(at(ChunkStep::Spooled), false);
    expect_persist(*m, ChunkStep::Creating);
    expect_http(*m, ChunkRequestKind::CreateJob);
    m->http_withheld();
    const ChunkRecord r = expect_persist(*m, ChunkStep::Aborted, kT0, true);
    EXPECT_EQ(r.error, "aborted by request before a Salesforce job was created");
    expect_finished(*m);
}

TEST(IngestMachineWithheld, OnlyACreateCanBeWithheld) {
    auto m = make(at(ChunkStep::Processing, kJobA, "UploadComplete"), true);
    EXPECT_THROW(m->http_withheld(), Error);  // nothing pending
    expect_http(*m, ChunkRequestKind::GetJob);
    EXPECT_THROW(m->http_withheld(), Error);  // a poll of a job that exists
    m->http_done(ok(200, job_json(kJobA, "InProgress")), kT0);
}

TEST(IngestMachineWithheld, WithheldResendAfter401ComesBackAsAPlainCreate) {
    auto m = make(at(ChunkStep::Creating), true);
    expect_http(*m, ChunkRequestKind::CreateJob);
    m->http_done(err(401, "INVALID_SESSION_ID", "Session expired or invalid"), kT0);
    EXPECT_TRUE(expect_http(*m, ChunkRequestKind::CreateJob).needs_fresh_token);
    m->http_withheld();
    // The abort is not stuck behind the resend.
    expect_persist(*m, ChunkStep::Aborted, kT0, true);
}

TEST(IngestMachineResume, FromCreatedUploadsToThatJob) {
    auto m = make(at(ChunkStep::Created, kJobA, "Open"), true);
    expect_persist(*m, ChunkStep::Uploading);
    const ChunkRequest q = expect_http(*m, ChunkRequestKind::Upload);
    EXPECT_EQ(q.path, ingest_batches_path(ApiVersion{62}, kJobA));
}

// Drives a resumed-from-Uploading machine to completion and returns every request it made.
std::vector<ChunkRequest> resume_from_uploading(ChunkResponse abort_answer, ChunkRecord *final_record) {
    std::vector<ChunkRequest> log;
    auto m = make(at(ChunkStep::Uploading, kJobA, "Open"), true);
    ChunkRequest q = expect_http(*m, ChunkRequestKind::Abort);
    log.push_back(q);
    EXPECT_EQ(q.path, ingest_job_path(ApiVersion{62}, kJobA));
    EXPECT_EQ(q.json_body, "{\"state\":\"Aborted\"}");
    m->http_done(abort_answer, kT0);
    ChunkRecord r = expect_persist(*m, ChunkStep::Creating);
    EXPECT_EQ(r.sf_job_id, "");
    EXPECT_EQ(r.replaced_sf_job_ids, std::vector<std::string>{kJobA});
    EXPECT_NE(r.error.find(kJobA), std::string::npos);
    log.push_back(expect_http(*m, ChunkRequestKind::CreateJob));
    m->http_done(ok(200, job_json(kJobB, "Open")), kT0);
    expect_persist(*m, ChunkStep::Created);
    expect_persist(*m, ChunkStep::Uploading);
    log.push_back(expect_http(*m, ChunkRequestKind::Upload));
    m->http_done(ok(201), kT0);
    expect_persist(*m, ChunkStep::Uploaded);
    expect_persist(*m, ChunkStep::Closing);
    log.push_back(expect_http(*m, ChunkRequestKind::Close));
    m->http_done(ok(200, job_json(kJobB, "UploadComplete")), kT0);
    expect_persist(*m, ChunkStep::Processing);
    log.push_back(expect_http(*m, ChunkRequestKind::GetJob, kT0 + 1000));
    m->http_done(ok(200, job_json(kJobB, "JobComplete", 5, 0)), kT0 + 1000);
    expect_persist(*m, ChunkStep::Fetching, kT0 + 1000);
    const ChunkAction s = fetch_all_and_store(*m, ChunkStep::Done, kT0 + 1000);
    *final_record = s.record;
    expect_finished(*m, kT0 + 1000);
    return log;
}

TEST(IngestMachineResume, FromUploadingAbortsOldJobNeverPutsToItAndReplaces) {
    ChunkRecord fin;
    const auto log = resume_from_uploading(ok(200, job_json(kJobA, "Aborted")), &fin);
    int puts_to_a = 0, puts_to_b = 0;
    for (const auto &q : log) {
        if (q.kind == ChunkRequestKind::Upload) {
            puts_to_a += q.path == ingest_batches_path(ApiVersion{62}, kJobA);
            puts_to_b += q.path == ingest_batches_path(ApiVersion{62}, kJobB);
        }
        if (q.kind == ChunkRequestKind::Close) {
            EXPECT_EQ(q.path, ingest_job_path(ApiVersion{62}, kJobB));  // the old job is never closed
        }
    }
    EXPECT_EQ(puts_to_a, 0);
    EXPECT_EQ(puts_to_b, 1);
    EXPECT_EQ(fin.sf_job_id, kJobB);
    EXPECT_EQ(fin.replaced_sf_job_ids, std::vector<std::string>{kJobA});
}

TEST(IngestMachineResume, FromUploadingAbortRefusedOrGoneIsFine) {
    ChunkRecord fin;
    resume_from_uploading(err(400, "INVALIDJOBSTATE", "Job is already terminal"), &fin);
    EXPECT_EQ(fin.replaced_sf_job_ids, std::vector<std::string>{kJobA});
    resume_from_uploading(err(404, "NOT_FOUND", "The requested resource does not exist"), &fin);
    EXPECT_EQ(fin.replaced_sf_job_ids, std::vector<std::string>{kJobA});
}

TEST(IngestMachineResume, FromUploadedCloses) {
    auto m = make(at(ChunkStep::Uploaded, kJobA, "Open"), true);
    expect_persist(*m, ChunkStep::Closing);
    const ChunkRequest q = expect_http(*m, ChunkRequestKind::Close);
    EXPECT_EQ(q.json_body, "{\"state\":\"UploadComplete\"}");
}

TEST(IngestMachineResume, FromClosingLooksFirstThenClosesIfStillOpen) {
    auto m = make(at(ChunkStep::Closing, kJobA, "Open"), true);
    expect_http(*m, ChunkRequestKind::GetJob);
    m->http_done(ok(200, job_json(kJobA, "Open")), kT0);
    // The Closing intent is durable already: PATCH at once, no extra commit.
    expect_http(*m, ChunkRequestKind::Close);
    m->http_done(ok(200, job_json(kJobA, "UploadComplete")), kT0);
    expect_persist(*m, ChunkStep::Processing);
}

TEST(IngestMachineResume, FromClosingAlreadyClosedGoesToProcessingWithoutPatch) {
    for (const char *state : {"UploadComplete", "InProgress"}) {
        auto m = make(at(ChunkStep::Closing, kJobA, "Open"), true);
        expect_http(*m, ChunkRequestKind::GetJob);
        m->http_done(ok(200, job_json(kJobA, state, 10, 0)), kT0);
        const ChunkRecord r = expect_persist(*m, ChunkStep::Processing);
        EXPECT_EQ(r.sf_state, state);
        expect_http(*m, ChunkRequestKind::GetJob, kT0 + 1000);
    }
}

TEST(IngestMachineResume, FromClosingAlreadyTerminalFetches) {
    auto m = make(at(ChunkStep::Closing, kJobA, "Open"), true);
    expect_http(*m, ChunkRequestKind::GetJob);
    m->http_done(ok(200, job_json(kJobA, "JobComplete", 3, 0)), kT0);
    EXPECT_EQ(expect_persist(*m, ChunkStep::Fetching).sf_state, "JobComplete");
    fetch_all_and_store(*m, ChunkStep::Done);
}

TEST(IngestMachineResume, FromProcessingPollsAtOnce) {
    ChunkRecord rec = at(ChunkStep::Processing, kJobA, "InProgress");
    rec.not_before_ms = kT0 - 5000;  // stale next-poll time from before the restart
    auto m = make(rec, true);
    expect_http(*m, ChunkRequestKind::GetJob);
}

TEST(IngestMachineResume, FromFetchingDownloadsAllThreeAgainAndStores) {
    ChunkRecord rec = at(ChunkStep::Fetching, kJobA, "Failed");
    rec.error = "InvalidBatch : Field name not found : Rating__cc";
    auto m = make(rec, true);
    const ChunkAction s = fetch_all_and_store(*m, ChunkStep::Failed);
    EXPECT_EQ(s.record.error, "InvalidBatch : Field name not found : Rating__cc");
    expect_finished(*m);
}

TEST(IngestMachineResume, FromFinalStepsFinishesWithoutAnyCall) {
    for (ChunkStep s : {ChunkStep::Done, ChunkStep::Failed, ChunkStep::Aborted}) {
        auto m = make(at(s, kJobA, "JobComplete"), true);
        const ChunkAction a = m->next(kT0, true);
        EXPECT_EQ(a.kind, ChunkActionKind::Finished);
        EXPECT_EQ(a.record.step, s);
    }
}

// ---- retries ---------------------------------------------------------------------------------------------

TEST(IngestMachineRetry, ServiceUnavailableBurstBacksOffGrowingBoundedThenSucceeds) {
    auto m = make(at(ChunkStep::Spooled), false, /*random=*/0.999);
    expect_persist(*m, ChunkStep::Creating);
    std::int64_t t = kT0;
    std::int64_t last_delay = 0;
    for (int i = 1; i <= 4; ++i) {
        expect_http(*m, ChunkRequestKind::CreateJob, t);
        m->http_done(err(503), t);
        const ChunkRecord r = expect_persist(*m, ChunkStep::Creating, t);
        EXPECT_EQ(r.attempts, i);
        EXPECT_NE(r.error.find("503"), std::string::npos) << r.error;
        EXPECT_NE(r.error.find("retrying"), std::string::npos) << r.error;
        ASSERT_TRUE(r.not_before_ms.has_value());
        const std::int64_t delay = *r.not_before_ms - t;
        EXPECT_GT(delay, last_delay);
        EXPECT_LE(delay, 60000);
        last_delay = delay;
        const ChunkAction w = m->next(t + delay - 1, false);
        EXPECT_EQ(w.kind, ChunkActionKind::WaitUntil);
        t += delay;
    }
    expect_http(*m, ChunkRequestKind::CreateJob, t);
    m->http_done(ok(200, job_json(kJobA, "Open")), t);
    const ChunkRecord r = expect_persist(*m, ChunkStep::Created, t);
    EXPECT_EQ(r.attempts, 0);
    EXPECT_EQ(r.error, "");
    EXPECT_FALSE(r.not_before_ms.has_value());
}

TEST(IngestMachineRetry, TooManyRetriesFailsWithTheLastReason) {
    auto m = make(at(ChunkStep::Creating), true);
    std::int64_t t = kT0;
    for (int i = 1; i < 6; ++i) {
        expect_http(*m, ChunkRequestKind::CreateJob, t);
        m->http_done(err(503), t);
        t = *expect_persist(*m, ChunkStep::Creating, t).not_before_ms;
    }
    expect_http(*m, ChunkRequestKind::CreateJob, t);
    m->http_done(err(503), t);
    const ChunkRecord r = expect_persist(*m, ChunkStep::Failed, t);
    EXPECT_NE(r.error.find("gave up after 6 attempts"), std::string::npos) << r.error;
    expect_finished(*m, t);
}

TEST(IngestMachineRetry, AttemptsSurviveRestart) {
    ChunkRecord rec = at(ChunkStep::Creating);
    rec.attempts = 5;
    auto m = make(rec, true);
    expect_http(*m, ChunkRequestKind::CreateJob);
    m->http_done(err(503), kT0);
    expect_persist(*m, ChunkStep::Failed);  // 6th attempt: budget spent across the restart
}

TEST(IngestMachineRetry, TooManyRequestsHonoursRetryAfterAndAttemptsResetAfterSuccess) {
    auto m = make(at(ChunkStep::Processing, kJobA, "InProgress"), true, 0.0);
    std::int64_t t = kT0;
    expect_http(*m, ChunkRequestKind::GetJob, t);
    ChunkResponse r429 = err(429);
    r429.retry_after = "7";
    m->http_done(r429, t);
    ChunkRecord r = expect_persist(*m, ChunkStep::Processing, t);
    EXPECT_EQ(*r.not_before_ms, t + 7000);
    EXPECT_EQ(r.attempts, 1);
    t += 7000;
    expect_http(*m, ChunkRequestKind::GetJob, t);
    m->http_done(ok(200, job_json(kJobA, "InProgress", 100, 0)), t);
    r = expect_persist(*m, ChunkStep::Processing, t);
    EXPECT_EQ(r.attempts, 0);
    EXPECT_EQ(r.error, "");
    t = *r.not_before_ms;
    expect_http(*m, ChunkRequestKind::GetJob, t);
    m->http_done(err(503), t);
    r = expect_persist(*m, ChunkStep::Processing, t);
    EXPECT_EQ(r.attempts, 1);              // a fresh budget, not 2
    EXPECT_EQ(*r.not_before_ms, t + 100);  // first retry with random 0 -> min_delay
}

TEST(IngestMachineRetry, DailyLimitWaitsLongThenContinues) {
    auto m = make(at(ChunkStep::Creating), true);
    expect_http(*m, ChunkRequestKind::CreateJob);
    m->http_done(err(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."), kT0);
    const ChunkRecord r = expect_persist(*m, ChunkStep::Creating);
    EXPECT_EQ(*r.not_before_ms, kT0 + 15 * 60 * 1000);
    EXPECT_NE(r.error.find("REQUEST_LIMIT_EXCEEDED"), std::string::npos) << r.error;
    EXPECT_NE(r.error.find("limit"), std::string::npos) << r.error;
    EXPECT_EQ(m->next(kT0 + 60 * 1000, false).kind, ChunkActionKind::WaitUntil);
    expect_http(*m, ChunkRequestKind::CreateJob, kT0 + 15 * 60 * 1000);
    m->http_done(ok(200, job_json(kJobA, "Open")), kT0 + 15 * 60 * 1000);
    expect_persist(*m, ChunkStep::Created, kT0 + 15 * 60 * 1000);
}

TEST(IngestMachineRetry, DailyLimitWaitsDoNotConsumeTheRetryBudget) {
    auto m = make(at(ChunkStep::Processing, kJobA, "InProgress"), true);
    std::int64_t t = kT0;
    for (int i = 0; i < 10; ++i) {
        expect_http(*m, ChunkRequestKind::GetJob, t);
        m->http_done(err(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."), t);
        t = *expect_persist(*m, ChunkStep::Processing, t).not_before_ms;
    }
    for (int i = 0; i < 5; ++i) {
        expect_http(*m, ChunkRequestKind::GetJob, t);
        m->http_done(err(503), t);
        t = *expect_persist(*m, ChunkStep::Processing, t).not_before_ms;
    }
    expect_http(*m, ChunkRequestKind::GetJob, t);
    m->http_done(ok(200, job_json(kJobA, "InProgress", 1, 0)), t);
    EXPECT_EQ(expect_persist(*m, ChunkStep::Processing, t).attempts, 0);
}

TEST(IngestMachineRetry, LostCreateResponseCreatesAgain) {
    for (const ChunkResponse &lost :
         {transport(TransportError::Timeout, true), transport(TransportError::ConnectionDropped, true),
          err(500), err(502)}) {
        auto m = make(at(ChunkStep::Creating), true);
        expect_http(*m, ChunkRequestKind::CreateJob);
        m->http_done(lost, kT0);
        const ChunkRecord r = expect_persist(*m, ChunkStep::Creating);
        EXPECT_EQ(r.sf_job_id, "");
        EXPECT_EQ(r.attempts, 1);
        expect_http(*m, ChunkRequestKind::CreateJob, *r.not_before_ms);
        m->http_done(ok(200, job_json(kJobB, "Open")), *r.not_before_ms);
        EXPECT_EQ(expect_persist(*m, ChunkStep::Created, *r.not_before_ms).sf_job_id, kJobB);
    }
}

TEST(IngestMachineRetry, UnreadableCreateAnswerIsTreatedAsLost) {
    auto m = make(at(ChunkStep::Creating), true);
    expect_http(*m, ChunkRequestKind::CreateJob);
    m->http_done(ok(200, "<html>oops</html>"), kT0);
    const ChunkRecord r = expect_persist(*m, ChunkStep::Creating);
    EXPECT_EQ(r.attempts, 1);
    EXPECT_EQ(r.sf_job_id, "");
}

TEST(IngestMachineRetry, InvalidJobAtCreateFailsWithCodeAndMessage) {
    auto m = make(at(ChunkStep::Spooled), false);
    expect_persist(*m, ChunkStep::Creating);
    expect_http(*m, ChunkRequestKind::CreateJob);
    m->http_done(err(400, "INVALIDJOB", "InvalidJob : Unable to find object: Acount"), kT0);
    const ChunkRecord r = expect_persist(*m, ChunkStep::Failed);
    EXPECT_EQ(r.error, "INVALIDJOB: InvalidJob : Unable to find object: Acount");
    EXPECT_EQ(r.sf_job_id, "");
    expect_finished(*m);
}

TEST(IngestMachineRetry, UnauthorizedTwiceFails) {
    // The machine owns the 401 rule: one resend with a fresh token, then the second 401 is final.
    auto m = make(at(ChunkStep::Creating), true);
    expect_http(*m, ChunkRequestKind::CreateJob);
    m->http_done(err(401, "INVALID_SESSION_ID", "Session expired or invalid"), kT0);
    EXPECT_TRUE(expect_http(*m, ChunkRequestKind::CreateJob).needs_fresh_token);
    m->http_done(err(401, "INVALID_SESSION_ID", "Session expired or invalid"), kT0);
    const ChunkRecord r = expect_persist(*m, ChunkStep::Failed);
    EXPECT_EQ(
        r.error,
        "HTTP 401 INVALID_SESSION_ID: Session expired or invalid (again after refreshing the access token)");
}

// ---- upload ----------------------------------------------------------------------------------------------

TEST(IngestMachineUpload, DroppedPutAbortsReplacesAndPutsOnceToTheNewJob) {
    auto m = make(at(ChunkStep::Created, kJobA, "Open"), true);
    expect_persist(*m, ChunkStep::Uploading);
    ChunkRequest q = expect_http(*m, ChunkRequestKind::Upload);
    EXPECT_EQ(q.path, ingest_batches_path(ApiVersion{62}, kJobA));
    m->http_done(transport(TransportError::ConnectionDropped, true), kT0);
    q = expect_http(*m, ChunkRequestKind::Abort);
    EXPECT_EQ(q.path, ingest_job_path(ApiVersion{62}, kJobA));
    m->http_done(ok(200, job_json(kJobA, "Aborted")), kT0);
    ChunkRecord r = expect_persist(*m, ChunkStep::Creating);
    EXPECT_EQ(r.replaced_sf_job_ids, std::vector<std::string>{kJobA});
    EXPECT_NE(r.error.find("connection dropped"), std::string::npos) << r.error;
    const std::int64_t t = r.not_before_ms.value_or(kT0);
    EXPECT_GT(t, kT0);  // backs off before the new job
    expect_http(*m, ChunkRequestKind::CreateJob, t);
    m->http_done(ok(200, job_json(kJobB, "Open")), t);
    expect_persist(*m, ChunkStep::Created, t);
    expect_persist(*m, ChunkStep::Uploading, t);
    q = expect_http(*m, ChunkRequestKind::Upload, t);
    EXPECT_EQ(q.path, ingest_batches_path(ApiVersion{62}, kJobB));
    m->http_done(ok(201), t);
    r = expect_persist(*m, ChunkStep::Uploaded, t);
    EXPECT_EQ(r.sf_job_id, kJobB);
    EXPECT_EQ(r.replaced_sf_job_ids, std::vector<std::string>{kJobA});
}

TEST(IngestMachineUpload, Put503HonoursRetryAfterBeforeTheNewJob) {
    auto m = make(at(ChunkStep::Created, kJobA, "Open"), true);
    expect_persist(*m, ChunkStep::Uploading);
    expect_http(*m, ChunkRequestKind::Upload);
    ChunkResponse r503 = err(503);
    r503.retry_after = "30";
    m->http_done(r503, kT0);
    expect_http(*m, ChunkRequestKind::Abort);  // never a second PUT to A
    m->http_done(ok(200, job_json(kJobA, "Aborted")), kT0 + 10);
    const ChunkRecord r = expect_persist(*m, ChunkStep::Creating, kT0 + 10);
    EXPECT_EQ(*r.not_before_ms, kT0 + 30000);
}

TEST(IngestMachineUpload, DefiniteRejectionAbortsAndFailsWithoutAnotherJob) {
    auto m = make(at(ChunkStep::Created, kJobA, "Open"), true);
    expect_persist(*m, ChunkStep::Uploading);
    expect_http(*m, ChunkRequestKind::Upload);
    m->http_done(err(400, "BULK_API_ERROR", "Found multipe contents for job"), kT0);
    const ChunkRequest q = expect_http(*m, ChunkRequestKind::Abort);
    EXPECT_EQ(q.path, ingest_job_path(ApiVersion{62}, kJobA));
    m->http_done(ok(200, job_json(kJobA, "Aborted")), kT0);
    const ChunkAction s = expect_store(*m, ChunkStep::Failed);
    EXPECT_TRUE(s.result_files.empty());
    EXPECT_EQ(s.record.error, "BULK_API_ERROR: Found multipe contents for job");
    EXPECT_EQ(s.record.sf_job_id, kJobA);
    EXPECT_TRUE(s.record.replaced_sf_job_ids.empty());
    expect_finished(*m);
}

TEST(IngestMachineUpload, ReplacementsAreBounded) {
    auto m = make(at(ChunkStep::Spooled), false);
    std::int64_t t = kT0;
    expect_persist(*m, ChunkStep::Creating, t);
    std::vector<std::string> ids;
    for (int i = 0; i < 4; ++i) {
        const std::string id = job_id(10 + i);
        ids.push_back(id);
        t = std::max(t, m->record().not_before_ms.value_or(t));
        expect_http(*m, ChunkRequestKind::CreateJob, t);
        m->http_done(ok(200, job_json(id, "Open")), t);
        expect_persist(*m, ChunkStep::Created, t);
        expect_persist(*m, ChunkStep::Uploading, t);
        expect_http(*m, ChunkRequestKind::Upload, t);
        m->http_done(transport(TransportError::Timeout, true), t);
        expect_http(*m, ChunkRequestKind::Abort, t);
        m->http_done(ok(200, job_json(id, "Aborted")), t);
        const ChunkRecord r = expect_persist(*m, i < 3 ? ChunkStep::Creating : ChunkStep::Failed, t);
        EXPECT_EQ(r.replaced_sf_job_ids, ids);
    }
    EXPECT_NE(m->record().error.find("gave up after 4 Salesforce jobs"), std::string::npos)
        << m->record().error;
    EXPECT_EQ(m->record().sf_job_id, "");
    expect_finished(*m, t);
}

// ---- close -----------------------------------------------------------------------------------------------

TEST(IngestMachineClose, LostCloseResponseLooksInsteadOfPatchingAgain) {
    auto m = make(at(ChunkStep::Uploaded, kJobA, "Open"), true);
    expect_persist(*m, ChunkStep::Closing);
    expect_http(*m, ChunkRequestKind::Close);
    m->http_done(transport(TransportError::Timeout, true), kT0);
    expect_http(*m, ChunkRequestKind::GetJob);
    m->http_done(ok(200, job_json(kJobA, "UploadComplete")), kT0);
    expect_persist(*m, ChunkStep::Processing);
}

TEST(IngestMachineClose, RefusedBecauseAlreadyClosedLooksAtTheJob) {
    auto m = make(at(ChunkStep::Uploaded, kJobA, "Open"), true);
    expect_persist(*m, ChunkStep::Closing);
    expect_http(*m, ChunkRequestKind::Close);
    m->http_done(err(400, "INVALIDJOBSTATE", "job is not Open"), kT0);
    expect_http(*m, ChunkRequestKind::GetJob);
    m->http_done(ok(200, job_json(kJobA, "InProgress")), kT0);
    expect_persist(*m, ChunkStep::Processing);
}

TEST(IngestMachineClose, Close503IsSentAgainAfterBackoff) {
    auto m = make(at(ChunkStep::Uploaded, kJobA, "Open"), true);
    expect_persist(*m, ChunkStep::Closing);
    expect_http(*m, ChunkRequestKind::Close);
    m->http_done(err(503), kT0);
    const ChunkRecord r = expect_persist(*m, ChunkStep::Closing);
    expect_http(*m, ChunkRequestKind::Close, *r.not_before_ms);
}

TEST(IngestMachineClose, AJobThatStaysOpenDoesNotLoopForever) {
    auto m = make(at(ChunkStep::Uploaded, kJobA, "Open"), true);
    expect_persist(*m, ChunkStep::Closing);
    for (int i = 0; i < 6; ++i) {
        expect_http(*m, ChunkRequestKind::Close);
        m->http_done(err(400, "INVALIDJOBSTATE", "not open"), kT0);
        expect_http(*m, ChunkRequestKind::GetJob);
        m->http_done(ok(200, job_json(kJobA, "Open")), kT0);
    }
    expect_http(*m, ChunkRequestKind::Abort);
    m->http_done(ok(200, job_json(kJobA, "Aborted")), kT0);
    const ChunkAction s = expect_store(*m, ChunkStep::Failed);
    EXPECT_NE(s.record.error.find("still Open"), std::string::npos) << s.record.error;
}

// ---- polling ---------------------------------------------------------------------------------------------

TEST(IngestMachinePoll, IntervalGrowsByFactorAndIsCapped) {
    auto m = make(at(ChunkStep::Uploaded, kJobA, "Open"), true);
    expect_persist(*m, ChunkStep::Closing);
    expect_http(*m, ChunkRequestKind::Close);
    m->http_done(ok(200, job_json(kJobA, "UploadComplete")), kT0);
    std::int64_t t = kT0;
    std::vector<std::int64_t> gaps;
    std::int64_t next_at = *expect_persist(*m, ChunkStep::Processing, t).not_before_ms;
    gaps.push_back(next_at - t);
    for (int i = 0; i < 5; ++i) {
        t = next_at;
        EXPECT_EQ(m->next(t - 1, false).kind, ChunkActionKind::WaitUntil);
        expect_http(*m, ChunkRequestKind::GetJob, t);
        // Counters change every poll, so each one is persisted with its next poll time.
        m->http_done(ok(200, job_json(kJobA, "InProgress", i + 1, 0)), t);
        next_at = *expect_persist(*m, ChunkStep::Processing, t).not_before_ms;
        gaps.push_back(next_at - t);
    }
    EXPECT_EQ(gaps, (std::vector<std::int64_t>{1000, 2000, 4000, 5000, 5000, 5000}));
}

TEST(IngestMachinePoll, CountersUpdatedOnlyChangesPersistedNonMonotonicStatesAccepted) {
    auto m = make(at(ChunkStep::Processing, kJobA, "UploadComplete"), true);
    std::int64_t t = kT0;
    expect_http(*m, ChunkRequestKind::GetJob, t);
    m->http_done(ok(200, job_json(kJobA, "InProgress", 0, 0)), t);
    ChunkRecord r = expect_persist(*m, ChunkStep::Processing, t);
    EXPECT_EQ(r.sf_state, "InProgress");

    t = m->record().not_before_ms.value();
    expect_http(*m, ChunkRequestKind::GetJob, t);
    m->http_done(ok(200, job_json(kJobA, "InProgress", 0, 0)), t);
    ChunkAction a = m->next(t, false);  // nothing changed: no commit, just wait
    EXPECT_EQ(a.kind, ChunkActionKind::WaitUntil);
    EXPECT_GT(a.wait_until_ms, t);

    t = a.wait_until_ms;
    expect_http(*m, ChunkRequestKind::GetJob, t);
    m->http_done(ok(200, job_json(kJobA, "UploadComplete", 0, 0)), t);  // seen again after InProgress
    EXPECT_EQ(expect_persist(*m, ChunkStep::Processing, t).sf_state, "UploadComplete");

    t = m->record().not_before_ms.value();
    expect_http(*m, ChunkRequestKind::GetJob, t);
    m->http_done(ok(200, job_json(kJobA, "InProgress", 10000, 12)), t);
    r = expect_persist(*m, ChunkStep::Processing, t);
    EXPECT_EQ(r.records_processed, 10000);
    EXPECT_EQ(r.records_failed, 12);

    t = m->record().not_before_ms.value();
    expect_http(*m, ChunkRequestKind::GetJob, t);
    m->http_done(ok(200, job_json(kJobA, "JobComplete", 20000, 15)), t);
    r = expect_persist(*m, ChunkStep::Fetching, t);
    EXPECT_EQ(r.records_processed, 20000);
    EXPECT_EQ(r.records_failed, 15);
}

TEST(IngestMachinePoll, SalesforceJobFailedFetchesResultsAndFailsWithErrorMessage) {
    auto m = make(at(ChunkStep::Processing, kJobA, "InProgress"), true);
    expect_http(*m, ChunkRequestKind::GetJob);
    m->http_done(ok(200, job_json(kJobA, "Failed", 0, 0, "InvalidBatch : Field name not found : Rating__cc")),
                 kT0);
    const ChunkRecord r = expect_persist(*m, ChunkStep::Fetching);
    EXPECT_EQ(r.sf_state, "Failed");
    const ChunkAction s = fetch_all_and_store(*m, ChunkStep::Failed);
    EXPECT_EQ(s.record.error, "InvalidBatch : Field name not found : Rating__cc");
    expect_finished(*m);
}

TEST(IngestMachinePoll, AbortedElsewhereFetchesAndEndsAborted) {
    auto m = make(at(ChunkStep::Processing, kJobA, "InProgress"), true);
    expect_http(*m, ChunkRequestKind::GetJob);
    m->http_done(ok(200, job_json(kJobA, "Aborted", 10, 0)), kT0);
    expect_persist(*m, ChunkStep::Fetching);
    fetch_all_and_store(*m, ChunkStep::Aborted);
}

TEST(IngestMachinePoll, JobGoneFailsTheChunk) {
    auto m = make(at(ChunkStep::Processing, kJobA, "InProgress"), true);
    expect_http(*m, ChunkRequestKind::GetJob);
    m->http_done(err(404, "NOT_FOUND", "The requested resource does not exist"), kT0);
    expect_http(*m, ChunkRequestKind::Abort);  // best effort
    m->http_done(err(404, "NOT_FOUND", "The requested resource does not exist"), kT0);
    const ChunkAction s = expect_store(*m, ChunkStep::Failed);
    EXPECT_TRUE(s.result_files.empty());
    EXPECT_EQ(s.record.error, "NOT_FOUND: The requested resource does not exist");
}

// ---- results ---------------------------------------------------------------------------------------------

TEST(IngestMachineResults, NotFoundResultIsStoredAsAbsentWithANote) {
    auto m = make(at(ChunkStep::Fetching, kJobA, "JobComplete"), true);
    expect_http(*m, ChunkRequestKind::FetchResult);
    m->http_done(ok(200), kT0);
    expect_http(*m, ChunkRequestKind::FetchResult);
    m->http_done(ok(200), kT0);
    expect_http(*m, ChunkRequestKind::FetchResult);
    m->http_done(err(404, "NOT_FOUND", "The requested resource does not exist"), kT0);
    const ChunkAction s = expect_store(*m, ChunkStep::Done);
    ASSERT_EQ(s.result_files.size(), 2u);
    EXPECT_EQ(s.result_files[0].kind, IngestResult::Successful);
    EXPECT_EQ(s.result_files[1].kind, IngestResult::Failed);
    EXPECT_NE(s.record.error.find("unprocessedrecords not stored"), std::string::npos) << s.record.error;
}

TEST(IngestMachineResults, TransientFetchErrorsAreRetriedWithoutLosingTheFinalError) {
    ChunkRecord rec = at(ChunkStep::Fetching, kJobA, "Failed");
    rec.error = "InvalidBatch : boom";
    auto m = make(rec, true);
    expect_http(*m, ChunkRequestKind::FetchResult);
    m->http_done(err(503), kT0);
    const ChunkRecord r = expect_persist(*m, ChunkStep::Fetching);
    EXPECT_EQ(r.error, "InvalidBatch : boom");
    EXPECT_EQ(r.attempts, 1);
    const ChunkRequest q = expect_http(*m, ChunkRequestKind::FetchResult, *r.not_before_ms);
    EXPECT_EQ(q.result, IngestResult::Successful);  // the same file again
    m->http_done(ok(200), *r.not_before_ms);
    expect_http(*m, ChunkRequestKind::FetchResult, *r.not_before_ms);
}

// ---- abort -----------------------------------------------------------------------------------------------

TEST(IngestMachineAbort, WithoutASalesforceJobAbortsAtOnce) {
    for (ChunkStep s : {ChunkStep::Spooled, ChunkStep::Creating}) {
        auto m = make(at(s), s != ChunkStep::Spooled);
        const ChunkAction a = m->next(kT0, true);
        ASSERT_EQ(a.kind, ChunkActionKind::Persist);
        EXPECT_EQ(a.record.step, ChunkStep::Aborted);
        m->persisted();
        const ChunkAction f = m->next(kT0, true);
        EXPECT_EQ(f.kind, ChunkActionKind::Finished);
        EXPECT_EQ(f.record.step, ChunkStep::Aborted);
    }
}

TEST(IngestMachineAbort, WithAJobAbortsItFetchesAndEndsAborted) {
    for (ChunkStep s : {ChunkStep::Created, ChunkStep::Uploading, ChunkStep::Uploaded, ChunkStep::Closing,
                        ChunkStep::Processing}) {
        SCOPED_TRACE(std::string(to_string(s)));
        ChunkRecord rec = at(s, kJobA, "Open");
        rec.not_before_ms = kT0 + 100000;  // a pending backoff or poll wait does not delay the abort
        auto m = make(rec, true);
        const ChunkRecord intent = expect_persist(*m, s, kT0, /*abort=*/true);
        EXPECT_NE(intent.error.find("abort"), std::string::npos);
        const ChunkRequest q = expect_http(*m, ChunkRequestKind::Abort, kT0, true);
        EXPECT_EQ(q.path, ingest_job_path(ApiVersion{62}, kJobA));
        EXPECT_EQ(q.json_body, "{\"state\":\"Aborted\"}");
        m->http_done(ok(200, job_json(kJobA, "Aborted")), kT0);
        EXPECT_EQ(expect_persist(*m, ChunkStep::Fetching, kT0, true).sf_state, "Aborted");
        fetch_all_and_store(*m, ChunkStep::Aborted);
        expect_finished(*m);
    }
}

TEST(IngestMachineAbort, DuringTheLiveRunAfterUploadingIntent) {
    auto m = make(at(ChunkStep::Created, kJobA, "Open"), true);
    expect_persist(*m, ChunkStep::Uploading);
    expect_persist(*m, ChunkStep::Uploading, kT0, true);  // abort intent instead of the PUT
    expect_http(*m, ChunkRequestKind::Abort, kT0, true);
}

TEST(IngestMachineAbort, IgnoredWhileFetchingOrFinal) {
    auto m = make(at(ChunkStep::Fetching, kJobA, "JobComplete"), true);
    expect_http(*m, ChunkRequestKind::FetchResult, kT0, true);
    auto d = make(at(ChunkStep::Done, kJobA, "JobComplete"), true);
    EXPECT_EQ(d->next(kT0, true).kind, ChunkActionKind::Finished);
}

TEST(IngestMachineAbort, RefusedBecauseTheJobAlreadyCompletedEndsDone) {
    auto m = make(at(ChunkStep::Processing, kJobA, "InProgress"), true);
    expect_persist(*m, ChunkStep::Processing, kT0, true);
    expect_http(*m, ChunkRequestKind::Abort, kT0, true);
    m->http_done(err(400, "INVALIDJOBSTATE", "Job is in a terminal state"), kT0);
    expect_http(*m, ChunkRequestKind::GetJob, kT0, true);
    m->http_done(ok(200, job_json(kJobA, "JobComplete", 7, 0)), kT0);
    expect_persist(*m, ChunkStep::Fetching, kT0, true);
    fetch_all_and_store(*m, ChunkStep::Done);
}

TEST(IngestMachineAbort, OutcomesAreCommittedBeforeTheAbort) {
    auto m = make(at(ChunkStep::Creating), true);
    expect_http(*m, ChunkRequestKind::CreateJob);
    m->http_done(ok(200, job_json(kJobA, "Open")), kT0);
    // The job exists now: its id is committed first, then the job is aborted (not "aborted before a job").
    EXPECT_EQ(expect_persist(*m, ChunkStep::Created, kT0, true).sf_job_id, kJobA);
    expect_persist(*m, ChunkStep::Created, kT0, true);
    expect_http(*m, ChunkRequestKind::Abort, kT0, true);
}

// ---- the machine's in-memory state ----------------------------------------------------------------------

std::string state_of(const IngestChunkMachine &m) {
    return std::string(to_string(m.state()));
}

TEST(IngestMachineState, NamesAreDistinct) {
    using S = IngestChunkMachine::State;
    std::set<std::string> names;
    for (S s : {S::FollowStep, S::MayPut, S::MayClose, S::AbortingByRequest, S::CheckingAbort, S::Failing,
                S::Finished}) {
        names.insert(std::string(to_string(s)));
    }
    EXPECT_EQ(names.size(), 7u);
    EXPECT_EQ(names.count("unknown"), 0u);
}

TEST(IngestMachineState, HappyPathOnlyThisInstanceMayPutAndClose) {
    auto m = make(at(ChunkStep::Created, kJobA, "Open"), true);
    EXPECT_EQ(state_of(*m), "follow-step");
    const ChunkAction intent = m->next(kT0, false);
    EXPECT_EQ(state_of(*m), "follow-step");  // not before the intent is committed
    ASSERT_EQ(intent.kind, ChunkActionKind::Persist);
    m->persisted();
    EXPECT_EQ(state_of(*m), "may-put");
    expect_http(*m, ChunkRequestKind::Upload);
    EXPECT_EQ(state_of(*m), "follow-step");  // the one PUT is out
    m->http_done(ok(201), kT0);
    expect_persist(*m, ChunkStep::Uploaded);
    expect_persist(*m, ChunkStep::Closing);
    EXPECT_EQ(state_of(*m), "may-close");
    expect_http(*m, ChunkRequestKind::Close);
    EXPECT_EQ(state_of(*m), "follow-step");
    m->http_done(ok(200, job_json(kJobA, "UploadComplete")), kT0);
    const std::int64_t t = expect_persist(*m, ChunkStep::Processing).not_before_ms.value_or(kT0);
    expect_http(*m, ChunkRequestKind::GetJob, t);
    m->http_done(ok(200, job_json(kJobA, "JobComplete", 1, 0)), t);
    expect_persist(*m, ChunkStep::Fetching, t);
    fetch_all_and_store(*m, ChunkStep::Done, t);
    EXPECT_EQ(state_of(*m), "finished");
}

TEST(IngestMachineState, ResumedIntentsAreNeverTrusted) {
    for (ChunkStep s : {ChunkStep::Uploading, ChunkStep::Closing}) {
        auto m = make(at(s, kJobA, "Open"), true);
        EXPECT_EQ(state_of(*m), "follow-step");
        expect_http(*m, s == ChunkStep::Uploading ? ChunkRequestKind::Abort : ChunkRequestKind::GetJob);
    }
}

TEST(IngestMachineState, CloseRefusedBeforeProcessingMayCloseAgain) {
    auto m = make(at(ChunkStep::Uploaded, kJobA, "Open"), true);
    expect_persist(*m, ChunkStep::Closing);
    expect_http(*m, ChunkRequestKind::Close);
    m->http_done(err(503), kT0);
    const ChunkRecord r = expect_persist(*m, ChunkStep::Closing);
    EXPECT_EQ(state_of(*m), "may-close");
    expect_http(*m, ChunkRequestKind::Close, r.not_before_ms.value_or(kT0));
}

TEST(IngestMachineState, AbortByRequestThenCheckThenFetch) {
    auto m = make(at(ChunkStep::Created, kJobA, "Open"), true);
    expect_persist(*m, ChunkStep::Uploading);
    EXPECT_EQ(state_of(*m), "may-put");
    expect_persist(*m, ChunkStep::Uploading, kT0, true);  // the abort intent replaces the PUT
    EXPECT_EQ(state_of(*m), "aborting-by-request");
    expect_http(*m, ChunkRequestKind::Abort, kT0, true);
    m->http_done(err(404, "NOT_FOUND", "gone"), kT0);
    EXPECT_EQ(state_of(*m), "checking-abort");
    expect_http(*m, ChunkRequestKind::GetJob, kT0, true);
    m->http_done(ok(200, job_json(kJobA, "InProgress")), kT0);
    EXPECT_EQ(state_of(*m), "aborting-by-request");  // still running: abort again
    expect_http(*m, ChunkRequestKind::Abort, kT0, true);
    m->http_done(ok(200, job_json(kJobA, "Aborted")), kT0);
    EXPECT_EQ(state_of(*m), "follow-step");
    expect_persist(*m, ChunkStep::Fetching, kT0, true);
    fetch_all_and_store(*m, ChunkStep::Aborted);
    EXPECT_EQ(state_of(*m), "finished");
}

TEST(IngestMachineState, FailingAbortsTheJobThenStoresTheFailure) {
    auto m = make(at(ChunkStep::Processing, kJobA, "InProgress"), true);
    expect_http(*m, ChunkRequestKind::GetJob);
    m->http_done(err(400, "INVALIDJOB", "definite"), kT0);
    EXPECT_EQ(state_of(*m), "failing");
    expect_http(*m, ChunkRequestKind::Abort, kT0, /*abort=*/true);  // a user abort changes nothing now
    m->http_done(err(503), kT0);
    const ChunkRecord r = expect_persist(*m, ChunkStep::Processing, kT0, true);
    EXPECT_EQ(r.error, "");  // a retry of the best-effort abort is no news for users
    EXPECT_EQ(state_of(*m), "failing");
    expect_http(*m, ChunkRequestKind::Abort, r.not_before_ms.value_or(kT0), true);
    m->http_done(ok(200, job_json(kJobA, "Aborted")), kT0);
    const ChunkAction s = expect_store(*m, ChunkStep::Failed);
    EXPECT_EQ(s.record.error, "INVALIDJOB: definite");
    EXPECT_EQ(state_of(*m), "finished");
}

// ---- access tokens: 401 and credentials the worker could not use ------------------------------------------

// Brings a machine to the point where the given call is the pending Http action (next() returned it).
enum class PendingCall {
    Create,
    Upload,
    AbortReplace,
    Close,
    CloseCheck,
    Poll,
    AbortUser,
    AbortCheck,
    AbortFailing,
    Fetch
};

const char *name_of(PendingCall c) {
    switch (c) {
        case PendingCall::Create:
            return "create";
        case PendingCall::Upload:
            return "upload";
        case PendingCall::AbortReplace:
            return "abort-replace";
        case PendingCall::Close:
            return "close";
        case PendingCall::CloseCheck:
            return "close-check";
        case PendingCall::Poll:
            return "poll";
        case PendingCall::AbortUser:
            return "abort-user";
        case PendingCall::AbortCheck:
            return "abort-check";
        case PendingCall::AbortFailing:
            return "abort-failing";
        case PendingCall::Fetch:
            return "fetch";
    }
    return "?";
}

const PendingCall kAllPendingCalls[] = {
    PendingCall::Create,       PendingCall::Upload, PendingCall::AbortReplace, PendingCall::Close,
    PendingCall::CloseCheck,   PendingCall::Poll,   PendingCall::AbortUser,    PendingCall::AbortCheck,
    PendingCall::AbortFailing, PendingCall::Fetch};

// Returns the machine with `call` pending, and whether the job is being aborted by request (the abort flag
// to keep passing to next()).
std::unique_ptr<IngestChunkMachine> with_pending(PendingCall call, ChunkRequest &request, bool &abort) {
    abort = false;
    std::unique_ptr<IngestChunkMachine> m;
    switch (call) {
        case PendingCall::Create:
            m = make(at(ChunkStep::Creating), true);
            request = expect_http(*m, ChunkRequestKind::CreateJob);
            break;
        case PendingCall::Upload:
        case PendingCall::AbortFailing:
            m = make(at(ChunkStep::Created, kJobA, "Open"), true);
            expect_persist(*m, ChunkStep::Uploading);
            request = expect_http(*m, ChunkRequestKind::Upload);
            if (call == PendingCall::AbortFailing) {
                m->http_done(err(400, "INVALIDJOB", "definite"), kT0);
                request = expect_http(*m, ChunkRequestKind::Abort);
            }
            break;
        case PendingCall::AbortReplace:
            m = make(at(ChunkStep::Uploading, kJobA, "Open"), true);
            request = expect_http(*m, ChunkRequestKind::Abort);
            break;
        case PendingCall::Close:
            m = make(at(ChunkStep::Uploaded, kJobA, "Open"), true);
            expect_persist(*m, ChunkStep::Closing);
            request = expect_http(*m, ChunkRequestKind::Close);
            break;
        case PendingCall::CloseCheck:
            m = make(at(ChunkStep::Closing, kJobA, "Open"), true);
            request = expect_http(*m, ChunkRequestKind::GetJob);
            break;
        case PendingCall::Poll:
            m = make(at(ChunkStep::Processing, kJobA, "UploadComplete"), true);
            request = expect_http(*m, ChunkRequestKind::GetJob);
            break;
        case PendingCall::AbortUser:
        case PendingCall::AbortCheck:
            abort = true;
            m = make(at(ChunkStep::Processing, kJobA, "InProgress"), true);
            expect_persist(*m, ChunkStep::Processing, kT0, true);
            request = expect_http(*m, ChunkRequestKind::Abort, kT0, true);
            if (call == PendingCall::AbortCheck) {
                m->http_done(err(400, "INVALIDJOBSTATE", "Job is in a terminal state"), kT0);
                request = expect_http(*m, ChunkRequestKind::GetJob, kT0, true);
            }
            break;
        case PendingCall::Fetch:
            m = make(at(ChunkStep::Fetching, kJobA, "JobComplete"), true);
            request = expect_http(*m, ChunkRequestKind::FetchResult);
            break;
    }
    return m;
}

bool same_request(const ChunkRequest &a, const ChunkRequest &b) {
    return a.kind == b.kind && a.method == b.method && a.path == b.path && a.json_body == b.json_body &&
           a.upload_file == b.upload_file && a.result == b.result && a.download_file == b.download_file &&
           a.idempotent == b.idempotent;
}

// Answers every request 2xx as a healthy Salesforce would, until the machine finishes.
void run_to_the_end(IngestChunkMachine &m, bool abort) {
    for (int i = 0; i < 100 && !m.finished(); ++i) {
        const ChunkAction a = m.next(kT0 + 1000000, abort);
        switch (a.kind) {
            case ChunkActionKind::Persist:
            case ChunkActionKind::StoreResults:
                m.persisted();
                break;
            case ChunkActionKind::Http:
                ASSERT_FALSE(a.request.needs_fresh_token);
                switch (a.request.kind) {
                    case ChunkRequestKind::CreateJob:
                        m.http_done(ok(200, job_json(kJobB, "Open")), kT0);
                        break;
                    case ChunkRequestKind::Upload:
                        m.http_done(ok(201), kT0);
                        break;
                    case ChunkRequestKind::Close:
                        m.http_done(ok(200, job_json(m.record().sf_job_id, "UploadComplete")), kT0);
                        break;
                    case ChunkRequestKind::Abort:
                        m.http_done(ok(200, job_json(m.record().sf_job_id, "Aborted")), kT0);
                        break;
                    case ChunkRequestKind::GetJob:
                        m.http_done(ok(200, job_json(m.record().sf_job_id, "JobComplete", 5, 0)), kT0);
                        break;
                    case ChunkRequestKind::FetchResult:
                        m.http_done(ok(200), kT0);
                        break;
                }
                break;
            case ChunkActionKind::WaitUntil:
                ADD_FAILURE() << "unexpected wait";
                return;
            case ChunkActionKind::Finished:
                return;
        }
    }
}

TEST(IngestMachineToken, UnauthorizedIsResentOnceWithAFreshTokenAtEveryCall) {
    for (PendingCall call : kAllPendingCalls) {
        SCOPED_TRACE(name_of(call));
        ChunkRequest first;
        bool abort = false;
        auto m = with_pending(call, first, abort);
        EXPECT_FALSE(first.needs_fresh_token);
        m->http_done(err(401, "INVALID_SESSION_ID", "Session expired or invalid"), kT0);
        // Even an abort request or a pending wait does not come first: the refused call is completed.
        const ChunkAction again = m->next(kT0, true);
        ASSERT_EQ(to_string(again.kind), "Http");
        EXPECT_TRUE(again.request.needs_fresh_token);
        EXPECT_TRUE(same_request(again.request, first));
        EXPECT_THROW(m->next(kT0, abort), Error);  // one outstanding action
    }
}

TEST(IngestMachineToken, UnauthorizedPutIsResentOnceThenTheJobCompletes) {
    auto m = make(at(ChunkStep::Created, kJobA, "Open"), true);
    expect_persist(*m, ChunkStep::Uploading);
    const ChunkRequest put = expect_http(*m, ChunkRequestKind::Upload);
    m->http_done(err(401, "INVALID_SESSION_ID", "Session expired or invalid"), kT0);
    const ChunkRequest again = expect_http(*m, ChunkRequestKind::Upload);
    EXPECT_TRUE(again.needs_fresh_token);
    EXPECT_TRUE(same_request(again, put));  // same job: the refused PUT put no data in it
    m->http_done(ok(201), kT0);
    const ChunkRecord r = expect_persist(*m, ChunkStep::Uploaded);
    EXPECT_EQ(r.sf_job_id, kJobA);
    EXPECT_TRUE(r.replaced_sf_job_ids.empty());
    expect_persist(*m, ChunkStep::Closing);
    EXPECT_FALSE(expect_http(*m, ChunkRequestKind::Close).needs_fresh_token);
    m->http_done(ok(200, job_json(kJobA, "UploadComplete")), kT0);
    expect_persist(*m, ChunkStep::Processing);
    const std::int64_t t = m->record().not_before_ms.value_or(kT0);
    expect_http(*m, ChunkRequestKind::GetJob, t);
    m->http_done(ok(200, job_json(kJobA, "JobComplete", 10, 0)), t);
    expect_persist(*m, ChunkStep::Fetching, t);
    fetch_all_and_store(*m, ChunkStep::Done, t);
    expect_finished(*m, t);
}

TEST(IngestMachineToken, EachLogicalRequestGetsItsOwnRefresh) {
    // A 401 on the create and later one on the poll: each is resent once (tokens expire during long jobs).
    auto m = make(at(ChunkStep::Creating), true);
    expect_http(*m, ChunkRequestKind::CreateJob);
    m->http_done(err(401, "INVALID_SESSION_ID", "Session expired or invalid"), kT0);
    expect_http(*m, ChunkRequestKind::CreateJob);
    m->http_done(ok(200, job_json(kJobA, "Open")), kT0);
    expect_persist(*m, ChunkStep::Created);
    expect_persist(*m, ChunkStep::Uploading);
    expect_http(*m, ChunkRequestKind::Upload);
    m->http_done(ok(201), kT0);
    expect_persist(*m, ChunkStep::Uploaded);
    expect_persist(*m, ChunkStep::Closing);
    expect_http(*m, ChunkRequestKind::Close);
    m->http_done(ok(200, job_json(kJobA, "UploadComplete")), kT0);
    const std::int64_t t = expect_persist(*m, ChunkStep::Processing).not_before_ms.value_or(kT0);
    expect_http(*m, ChunkRequestKind::GetJob, t);
    m->http_done(err(401, "INVALID_SESSION_ID", "Session expired or invalid"), t);
    EXPECT_TRUE(expect_http(*m, ChunkRequestKind::GetJob, t).needs_fresh_token);
    m->http_done(ok(200, job_json(kJobA, "JobComplete", 3, 0)), t);
    expect_persist(*m, ChunkStep::Fetching, t);
}

TEST(IngestMachineToken, UnauthorizedTwiceOnTheUploadAbortsTheJobAndFails) {
    auto m = make(at(ChunkStep::Created, kJobA, "Open"), true);
    expect_persist(*m, ChunkStep::Uploading);
    expect_http(*m, ChunkRequestKind::Upload);
    m->http_done(err(401, "INVALID_SESSION_ID", "Session expired or invalid"), kT0);
    expect_http(*m, ChunkRequestKind::Upload);
    m->http_done(err(401, "INVALID_SESSION_ID", "Session expired or invalid"), kT0);
    EXPECT_FALSE(expect_http(*m, ChunkRequestKind::Abort).needs_fresh_token);
    m->http_done(ok(200, job_json(kJobA, "Aborted")), kT0);
    const ChunkAction s = expect_store(*m, ChunkStep::Failed);
    EXPECT_EQ(
        s.record.error,
        "HTTP 401 INVALID_SESSION_ID: Session expired or invalid (again after refreshing the access token)");
    EXPECT_TRUE(s.result_files.empty());
}

TEST(IngestMachineToken, RestApiScopeRefusalIsNotRetried) {
    auto m = make(at(ChunkStep::Creating), true);
    expect_http(*m, ChunkRequestKind::CreateJob);
    m->http_done(err(401, "INVALID_SESSION_ID", "This session is not valid for use with the REST API"), kT0);
    EXPECT_EQ(expect_persist(*m, ChunkStep::Failed).error,
              "INVALID_SESSION_ID: This session is not valid for use with the REST API");
}

TEST(IngestMachineToken, NoTokenForTheResendFailsWithTheLoginError) {
    auto m = make(at(ChunkStep::Creating), true);
    expect_http(*m, ChunkRequestKind::CreateJob);
    m->http_done(err(401, "INVALID_SESSION_ID", "Session expired or invalid"), kT0);
    expect_http(*m, ChunkRequestKind::CreateJob);
    m->credentials_failed("invalid_grant", "authentication failure", kT0);
    EXPECT_EQ(expect_persist(*m, ChunkStep::Failed).error, "invalid_grant: authentication failure");
    expect_finished(*m);
}

TEST(IngestMachineToken, CredentialsFailedWithoutAPendingCallThrows) {
    auto m = make(at(ChunkStep::Spooled), false);
    EXPECT_THROW(m->credentials_failed("AUTHENTICATION", "no user mapping", kT0), Error);
    m->next(kT0, false);  // Persist pending, not Http
    EXPECT_THROW(m->credentials_failed("AUTHENTICATION", "no user mapping", kT0), Error);
}

// credentials_failed() must end every call exactly as the worker's former stand-in did: a 401 whose body
// was [{"errorCode": code, "message": message}]. Two machines, one fed each way (and kept fed that way, as
// the org's credentials stay failed), must produce identical actions and records to the end.
void expect_same_as_refused_login(PendingCall call, const std::string &code, const std::string &message) {
    ChunkRequest q1, q2;
    bool abort = false;
    auto by_login = with_pending(call, q1, abort);
    auto by_401 = with_pending(call, q2, abort);
    const std::string body = nlohmann::json::array({{{"errorCode", code}, {"message", message}}}).dump();
    int calls = 0;
    for (int i = 0; i < 100; ++i) {
        by_login->credentials_failed(code, message, kT0 + i);
        by_401->http_done(ok(401, body), kT0 + i);
        ++calls;
        ChunkAction a, b;
        for (;;) {
            a = by_login->next(kT0 + i, abort);
            b = by_401->next(kT0 + i, abort);
            ASSERT_EQ(to_string(a.kind), to_string(b.kind));
            ASSERT_TRUE(a.record == b.record) << a.record.error << " vs " << b.record.error;
            if (a.kind == ChunkActionKind::Persist || a.kind == ChunkActionKind::StoreResults) {
                by_login->persisted();
                by_401->persisted();
                continue;
            }
            break;
        }
        if (a.kind == ChunkActionKind::Finished) {
            EXPECT_GE(calls, 1);
            return;
        }
        ASSERT_EQ(to_string(a.kind), "Http");
        ASSERT_TRUE(same_request(a.request, b.request));
    }
    ADD_FAILURE() << "did not finish";
}

TEST(IngestMachineToken, CredentialsFailedEndsEveryCallLikeTheRefusedLoginDid) {
    for (PendingCall call : kAllPendingCalls) {
        SCOPED_TRACE(name_of(call));
        expect_same_as_refused_login(call, "invalid_grant", "authentication failure");
        expect_same_as_refused_login(call, "", "token endpoint returned HTTP 500 with an empty body");
        expect_same_as_refused_login(call, "AUTHENTICATION", "user mapping not found for \"etl\"");
    }
}

TEST(IngestMachineToken, CredentialsFailedReasonsAtEachCall) {
    const std::string why = "invalid_grant: authentication failure";
    for (PendingCall call : kAllPendingCalls) {
        SCOPED_TRACE(name_of(call));
        ChunkRequest q;
        bool abort = false;
        auto m = with_pending(call, q, abort);
        m->credentials_failed("invalid_grant", "authentication failure", kT0);
        // The org stays refused: every later call fails the same way; look at the final record.
        ChunkRecord last;
        for (int i = 0; i < 50 && !m->finished(); ++i) {
            const ChunkAction a = m->next(kT0, abort);
            if (a.kind == ChunkActionKind::Http) {
                m->credentials_failed("invalid_grant", "authentication failure", kT0);
            } else if (a.kind == ChunkActionKind::Persist || a.kind == ChunkActionKind::StoreResults) {
                last = a.record;
                m->persisted();
            }
        }
        ASSERT_TRUE(m->finished());
        switch (call) {
            case PendingCall::Create:
            case PendingCall::AbortReplace:  // the replacement's create is refused the same way
                EXPECT_EQ(to_string(last.step), "failed");
                EXPECT_EQ(last.error, why);
                break;
            case PendingCall::Upload:
            case PendingCall::Close:
            case PendingCall::CloseCheck:
            case PendingCall::Poll:
                EXPECT_EQ(to_string(last.step), "failed");
                EXPECT_EQ(last.error, why);
                break;
            case PendingCall::AbortFailing:
                EXPECT_EQ(to_string(last.step), "failed");
                EXPECT_EQ(last.error, "INVALIDJOB: definite");  // the reason it was failing for
                break;
            case PendingCall::AbortUser:
                EXPECT_EQ(to_string(last.step), "aborted");
                EXPECT_EQ(last.error,
                          "abort requested, but aborting Salesforce job " + kJobA + " failed: " + why);
                break;
            case PendingCall::AbortCheck:
                EXPECT_EQ(to_string(last.step), "aborted");
                EXPECT_EQ(last.error, "aborted by request; successfulResults not stored: " + why +
                                          "; failedResults not stored: " + why +
                                          "; unprocessedrecords not stored: " + why);
                break;
            case PendingCall::Fetch:
                EXPECT_EQ(to_string(last.step), "done");
                EXPECT_EQ(last.error, "successfulResults not stored: " + why +
                                          "; failedResults not stored: " + why +
                                          "; unprocessedrecords not stored: " + why);
                break;
        }
    }
}

TEST(IngestMachineToken, AfterCredentialsFailedAHealthyRunStillWorks) {
    // A refused login only ends the call it was for; e.g. a failed fetch still lets the others through.
    ChunkRequest q;
    bool abort = false;
    auto m = with_pending(PendingCall::Fetch, q, abort);
    m->credentials_failed("invalid_grant", "authentication failure", kT0);
    run_to_the_end(*m, abort);
    EXPECT_TRUE(m->finished());
    EXPECT_EQ(to_string(m->record().step), "done");
    EXPECT_EQ(m->record().error, "successfulResults not stored: invalid_grant: authentication failure");
}

// ---- randomized property test ----------------------------------------------------------------------------

// A small Salesforce model plus a worker that crashes at random points. The database is `db`: the last
// committed record; a crash throws the machine away and resumes from it.
struct Sim {
    struct Job {
        std::string state = "Open";
        int puts = 0;
        bool put_accepted = false;
        int closes = 0;
        int polls = 0;
    };

    std::mt19937_64 rng;
    std::map<std::string, Job> jobs;
    int next_id = 100;
    ChunkRecord db;
    int stores_committed = 0;
    bool finished = false;
    std::int64_t now = kT0;
    int actions = 0;
    int crashes = 0;
    bool abort_flag = false;
    int abort_at = -1;
    std::vector<std::string> violations;

    explicit Sim(std::uint64_t seed) : rng(seed) {}

    double u() { return std::uniform_real_distribution<double>(0.0, 1.0)(rng); }
    bool chance(double p) { return u() < p; }

    std::string id_of(const std::string &path) const {
        const std::string marker = "/jobs/ingest/";
        const auto pos = path.find(marker);
        return path.substr(pos + marker.size(), 18);
    }

    // Applies the request to the model (when it reaches the server) and builds the answer.
    ChunkResponse serve(const ChunkRequest &q, bool &lost) {
        lost = false;
        // Failures that happen before the server acts.
        if (chance(0.12)) {
            switch (rng() % 6) {
                case 0:
                    return err(503);
                case 1: {
                    ChunkResponse r = err(429);
                    r.retry_after = "2";
                    return r;
                }
                case 2:
                    return err(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.");
                case 3:
                    return transport(TransportError::ConnectFailed, false);
                case 4:
                    return err(403, "REQUEST_LIMIT_EXCEEDED",
                               "ConcurrentRequests (Concurrent API Requests) Limit exceeded.");
                default:
                    return err(420);
            }
        }
        if (chance(0.005)) {
            return err(400, "INVALIDJOB", "InvalidJob : something definite");
        }
        ChunkResponse r;
        switch (q.kind) {
            case ChunkRequestKind::CreateJob: {
                const std::string id = job_id(next_id++);
                jobs[id] = Job{};
                r = ok(200, job_json(id, "Open"));
                break;
            }
            case ChunkRequestKind::Upload: {
                Job &j = jobs[id_of(q.path)];
                if (j.state != "Open") {
                    r = err(400, "INVALIDJOBSTATE", "not open");
                } else if (j.puts > 1) {
                    r = err(400, "BULK_API_ERROR", "Found multipe contents");
                } else {
                    j.put_accepted = true;
                    r = ok(201);
                }
                break;
            }
            case ChunkRequestKind::Close: {
                Job &j = jobs[id_of(q.path)];
                ++j.closes;
                if (j.state == "Open") {
                    j.state = "UploadComplete";
                    r = ok(200, job_json(id_of(q.path), j.state));
                } else {
                    r = err(400, "INVALIDJOBSTATE", "not open");
                }
                break;
            }
            case ChunkRequestKind::Abort: {
                const auto it = jobs.find(id_of(q.path));
                if (it == jobs.end()) {
                    r = err(404, "NOT_FOUND", "The requested resource does not exist");
                } else if (it->second.state == "JobComplete" || it->second.state == "Failed" ||
                           it->second.state == "Aborted") {
                    r = err(400, "INVALIDJOBSTATE", "terminal");
                } else {
                    it->second.state = "Aborted";
                    r = ok(200, job_json(it->first, "Aborted"));
                }
                break;
            }
            case ChunkRequestKind::GetJob: {
                Job &j = jobs[id_of(q.path)];
                ++j.polls;
                if (j.state == "UploadComplete" && chance(0.5)) {
                    j.state = "InProgress";
                } else if (j.state == "InProgress" && chance(0.4)) {
                    j.state = chance(0.15) ? "Failed" : "JobComplete";
                }
                r = ok(200, job_json(id_of(q.path), j.state, j.polls * 10, j.polls,
                                     j.state == "Failed" ? "InvalidBatch : model failure" : ""));
                break;
            }
            case ChunkRequestKind::FetchResult:
                r = chance(0.05) ? err(404, "NOT_FOUND", "gone") : ok(200);
                break;
        }
        // The answer may be lost after the server acted.
        if (chance(0.06)) {
            return transport(chance(0.5) ? TransportError::ConnectionDropped : TransportError::Timeout, true);
        }
        if (chance(0.02)) {
            return err(502);
        }
        lost = false;
        return r;
    }

    std::unique_ptr<IngestChunkMachine> build(bool resumed) {
        IngestMachineConfig cfg = test_config();
        auto seed = rng();
        auto local = std::make_shared<std::mt19937_64>(seed);
        return std::make_unique<IngestChunkMachine>(
            db, test_spec(), cfg,
            [local]() { return std::uniform_real_distribution<double>(0.0, 1.0)(*local); },
            []() { return std::chrono::system_clock::time_point(milliseconds(kT0)); }, resumed);
    }

    bool crash_now() {
        if (crashes < 12 && chance(0.03)) {
            ++crashes;
            return true;
        }
        return false;
    }

    void run() {
        abort_at = chance(0.25) ? static_cast<int>(rng() % 60) : -1;
        auto m = build(false);
        bool stored_before_finish = false;
        while (actions < 20000) {
            ++actions;
            if (actions == abort_at) {
                abort_flag = true;
            }
            const ChunkAction a = m->next(now, abort_flag);
            switch (a.kind) {
                case ChunkActionKind::Persist:
                case ChunkActionKind::StoreResults:
                    if (crash_now()) {  // crash before the commit
                        m = build(true);
                        continue;
                    }
                    db = a.record;
                    if (a.kind == ChunkActionKind::StoreResults) {
                        ++stores_committed;
                        stored_before_finish = true;
                        if (!is_final(a.record.step)) {
                            violations.push_back("StoreResults with a non-final step");
                        }
                    }
                    if (crash_now()) {  // crash after the commit, before persisted()
                        m = build(true);
                        continue;
                    }
                    m->persisted();
                    break;
                case ChunkActionKind::Http: {
                    const ChunkRequest &q = a.request;
                    if (q.kind == ChunkRequestKind::Upload) {
                        Job &j = jobs[id_of(q.path)];
                        if (++j.puts > 1) {
                            violations.push_back("second PUT to " + id_of(q.path));
                        }
                    }
                    if (q.kind == ChunkRequestKind::Close) {
                        const Job &j = jobs[id_of(q.path)];
                        if (!j.put_accepted) {
                            violations.push_back("close of a job without an accepted upload");
                        }
                    }
                    bool lost = false;
                    const ChunkResponse r = serve(q, lost);
                    now += 5;
                    if (crash_now()) {  // the request happened; the worker died before hearing back
                        m = build(true);
                        continue;
                    }
                    m->http_done(r, now);
                    break;
                }
                case ChunkActionKind::WaitUntil:
                    if (a.wait_until_ms <= now) {
                        violations.push_back("WaitUntil in the past");
                    }
                    now = a.wait_until_ms;
                    if (crash_now()) {
                        m = build(true);
                    }
                    break;
                case ChunkActionKind::Finished:
                    finished = true;
                    if (!is_final(a.record.step) || !is_final(db.step)) {
                        violations.push_back("Finished without a final committed record");
                    }
                    if (!stored_before_finish && stores_committed == 0 && !db.sf_job_id.empty()) {
                        violations.push_back("Finished with a job but without StoreResults");
                    }
                    return;
            }
        }
    }

    void check() {
        if (!finished) {
            violations.push_back("did not finish within the action bound");
            return;
        }
        if (stores_committed > 1) {
            violations.push_back("StoreResults committed " + std::to_string(stores_committed) + " times");
        }
        const std::set<std::string> replaced(db.replaced_sf_job_ids.begin(), db.replaced_sf_job_ids.end());
        for (const auto &[id, j] : jobs) {
            if (j.puts == 0) {
                continue;
            }
            if (id != db.sf_job_id && replaced.count(id) == 0) {
                violations.push_back("job " + id + " got a PUT but is neither the final job nor replaced");
            }
            if (replaced.count(id) != 0 && j.closes != 0) {
                violations.push_back("replaced job " + id + " was closed");
            }
        }
        if (db.step == ChunkStep::Done) {
            const auto it = jobs.find(db.sf_job_id);
            if (it == jobs.end() || it->second.puts != 1 || it->second.state != "JobComplete") {
                violations.push_back("Done but the final job was not uploaded once and completed");
            }
        }
    }
};

TEST(IngestMachineProperty, RandomOutcomesAndCrashesKeepTheInvariants) {
    std::map<ChunkStep, int> finals;
    int with_replacements = 0, with_crashes = 0;
    for (std::uint64_t seed = 1; seed <= 3000; ++seed) {
        Sim sim(seed * 7919);
        sim.run();
        sim.check();
        ASSERT_TRUE(sim.violations.empty()) << "seed " << seed << ": " << sim.violations.front();
        ++finals[sim.db.step];
        with_replacements += !sim.db.replaced_sf_job_ids.empty();
        with_crashes += sim.crashes > 0;
    }
    // The generator must actually reach the interesting paths, or the test proves nothing.
    EXPECT_GT(finals[ChunkStep::Done], 1000);
    EXPECT_GT(finals[ChunkStep::Failed], 20);
    EXPECT_GT(finals[ChunkStep::Aborted], 100);
    EXPECT_GT(with_replacements, 100);
    EXPECT_GT(with_crashes, 1000);
}

}  // namespace
}  // namespace sfb
