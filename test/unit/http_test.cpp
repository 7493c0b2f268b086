// The HTTP transport (core/http.h) against the real Bulk API 2.0 emulator: no mocks. Fault cases use the
// emulator's admin API (/__emulator/faults).
#include "core/http.h"

#include "core/error.h"
#include "core/oauth.h"
#include "core/retry.h"
#include "emulator_fixture.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace sfb {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using test::run_one;
using Clock = std::chrono::steady_clock;

long elapsed_ms(Clock::time_point since) {
    return static_cast<long>(
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - since).count());
}

// Accounts CSV of `rows` rows (Name is the only required field).
std::string accounts_csv(int rows) {
    std::string csv = "Name,AccountNumber\n";
    for (int i = 0; i < rows; ++i)
        csv += "Transport Test Account " + std::to_string(i) + ",AN-" + std::to_string(100000 + i) + "\n";
    return csv;
}

void write_file(const std::string &path, const std::string &content) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << content;
}

class HttpTest : public test::EmulatorTest {
  protected:
    // POST /jobs/ingest for an Account insert; returns the job id.
    std::string create_ingest_job(HttpClient &client) {
        json spec = {{"object", "Account"},
                     {"operation", "insert"},
                     {"contentType", "CSV"},
                     {"columnDelimiter", "COMMA"},
                     {"lineEnding", "LF"}};
        HttpResponse r = run_one(client, json_request(HttpMethod::Post, api_url("/jobs/ingest"), spec));
        EXPECT_TRUE(r.ok()) << r.error_message;
        EXPECT_EQ(r.status, 200) << r.body;
        return json::parse(r.body).at("id").get<std::string>();
    }

    HttpRequest put_file(const std::string &job_id, const std::string &path) {
        HttpRequest r = get(api_url("/jobs/ingest/" + job_id + "/batches"));
        r.method = HttpMethod::Put;
        r.body_file = path;
        r.headers = {{"Authorization", "Bearer " + access_token()},
                     {"Content-Type", "text/csv"},
                     {"Accept", "application/json"}};
        r.timeouts = HttpTimeouts::bulk_transfer();
        return r;
    }

    // Non-admin requests of the log with this method whose path ends with `suffix`, once at least `expect`
    // of them are logged (bounded wait; then whatever is there, so a count assertion reports the shortfall).
    std::vector<json> logged(const std::string &method, const std::string &suffix, size_t expect = 0) {
        auto select = [&](const json &log) {
            std::vector<json> out;
            for (const auto &e : log) {
                std::string p = e.at("path").get<std::string>();
                if (e.at("method") == method && p.size() >= suffix.size() &&
                    p.compare(p.size() - suffix.size(), suffix.size(), suffix) == 0)
                    out.push_back(e);
            }
            return out;
        };
        return select(wait_for_request_log([&](const json &log) { return select(log).size() >= expect; }));
    }

    // Starts a GET of /limits that the emulator stalls for `stall_ms` before answering.
    HttpRequest stalled_request(int stall_ms) {
        add_fault({{"action", "stall"}, {"ms", stall_ms}, {"path", "/limits$"}});
        return get(api_url("/limits"));
    }
};

// ---- happy paths ------------------------------------------------------------------------------------------

TEST_F(HttpTest, TokenCallThenJsonApiCallWithBearerToken) {
    HttpClient client(client_options());
    const json &org = default_org();
    HttpRequest token;
    token.method = HttpMethod::Post;
    token.url = base_url() + "/services/oauth2/token";
    token.body = form_body({{"grant_type", "password"},
                            {"client_id", org.at("client_id").get<std::string>()},
                            {"client_secret", org.at("client_secret").get<std::string>()},
                            {"username", org.at("user").at("username").get<std::string>()},
                            {"password", org.at("user").at("password").get<std::string>()}});
    token.headers = {{"Content-Type", "application/x-www-form-urlencoded"}, {"Accept", "application/json"}};
    HttpResponse t = run_one(client, token);
    ASSERT_TRUE(t.ok()) << t.error_message;
    ASSERT_EQ(t.status, 200) << t.body;
    EXPECT_TRUE(t.request_fully_sent);
    json tj = json::parse(t.body);
    std::string access = tj.at("access_token").get<std::string>();
    std::string instance = tj.at("instance_url").get<std::string>();
    EXPECT_EQ(instance, base_url());
    EXPECT_NE(t.header("content-type").value_or("").find("application/json"), std::string::npos);

    HttpRequest limits;
    limits.url = instance + "/services/data/v62.0/limits";
    limits.headers = {{"Authorization", "Bearer " + access}, {"Accept", "application/json"}};
    HttpResponse l = run_one(client, limits);
    ASSERT_TRUE(l.ok()) << l.error_message;
    ASSERT_EQ(l.status, 200) << l.body;
    EXPECT_TRUE(json::parse(l.body).contains("DailyApiRequests"));
    // Headers the protocol needs, looked up case-insensitively.
    ASSERT_TRUE(l.header(kHeaderSforceLimitInfo).has_value());
    EXPECT_EQ(l.header("SFORCE-LIMIT-INFO")->rfind("api-usage=", 0), 0u);
    EXPECT_EQ(l.header(kHeaderContentType).value_or(""), "application/json;charset=UTF-8");
    EXPECT_EQ(l.body_bytes, l.body.size());
    EXPECT_GE(l.total_time.count(), 0);
    AttemptOutcome o = to_attempt_outcome(l);
    EXPECT_EQ(o.transport, TransportError::None);
    EXPECT_EQ(o.status, 200);
    EXPECT_EQ(classify(o, true), RetryAction::Success);
}

TEST_F(HttpTest, IngestUploadStreamsFileWithContentLengthNotChunked) {
    test::TempDir dir;
    const std::string csv = accounts_csv(5000);  // ~230 KB: several read callbacks
    const std::string path = dir.file("upload.csv");
    write_file(path, csv);

    std::vector<std::string> trace;
    HttpClientOptions opts = client_options();
    opts.debug_log = [&trace](std::string_view line) { trace.emplace_back(line); };
    HttpClient client(opts);
    std::string job = create_ingest_job(client);
    HttpResponse r = run_one(client, put_file(job, path));
    ASSERT_TRUE(r.ok()) << r.error_message;
    EXPECT_EQ(r.status, 201) << r.body;
    EXPECT_EQ(r.bytes_sent, csv.size());
    EXPECT_TRUE(r.request_fully_sent);

    bool content_length = false, user_agent = false, gzip = false;
    for (const auto &line : trace) {
        if (line.find("> Content-Length: " + std::to_string(csv.size())) != std::string::npos)
            content_length = true;
        user_agent = user_agent ||
                     line.find("> User-Agent: sf_bulk/" + std::string(kSfBulkVersion)) != std::string::npos;
        gzip = gzip || line.find("> Accept-Encoding: gzip") != std::string::npos;
        EXPECT_EQ(line.find("Transfer-Encoding"), std::string::npos) << line;
        EXPECT_EQ(line.find("Expect: 100"), std::string::npos) << line;
    }
    EXPECT_TRUE(content_length) << "no Content-Length request header in the trace";
    EXPECT_TRUE(user_agent);
    EXPECT_TRUE(gzip);

    auto puts = logged("PUT", "/batches", 1);
    ASSERT_EQ(puts.size(), 1u);
    EXPECT_EQ(puts[0].at("request_bytes").get<size_t>(), csv.size());
    EXPECT_EQ(puts[0].at("status").get<int>(), 201);
    for (const auto &j : emulator_jobs()) {
        if (j.at("id") == job) {
            EXPECT_EQ(j.at("uploadCount").get<int>(), 1);
            EXPECT_EQ(j.at("uploadBytes").get<size_t>(), csv.size());
        }
    }
}

TEST_F(HttpTest, ResultsDownloadStreamsIntoFile) {
    test::TempDir dir;
    const int rows = 3000;
    const std::string upload = dir.file("upload.csv");
    write_file(upload, accounts_csv(rows));
    HttpClient client(client_options());
    std::string job = create_ingest_job(client);
    HttpResponse put = run_one(client, put_file(job, upload));
    ASSERT_EQ(put.status, 201) << put.error_message << put.body;
    HttpResponse close = run_one(client, json_request(HttpMethod::Patch, api_url("/jobs/ingest/" + job),
                                                      json{{"state", "UploadComplete"}}));
    ASSERT_EQ(close.status, 200) << close.error_message << close.body;

    std::string state;
    const auto deadline = Clock::now() + 30s;
    while (Clock::now() < deadline) {
        HttpResponse info = run_one(client, get(api_url("/jobs/ingest/" + job)));
        ASSERT_EQ(info.status, 200) << info.error_message;
        state = json::parse(info.body).at("state").get<std::string>();
        if (state == "JobComplete" || state == "Failed" || state == "Aborted")
            break;
        std::this_thread::sleep_for(50ms);
    }
    ASSERT_EQ(state, "JobComplete");

    const std::string results = dir.file("results.csv");
    HttpRequest req = get(api_url("/jobs/ingest/" + job + "/successfulResults"));
    req.headers = {{"Authorization", "Bearer " + access_token()}, {"Accept", "text/csv"}};
    req.response_file = results;
    req.max_response_bytes = 1024;  // applies to memory bodies only: the file sink is not limited by it
    req.timeouts = HttpTimeouts::bulk_transfer();
    HttpResponse r = run_one(client, req);
    ASSERT_TRUE(r.ok()) << r.error_message;
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_TRUE(r.body.empty());
    EXPECT_NE(r.header(kHeaderContentType).value_or("").find("text/csv"), std::string::npos);
    // The emulator gzips bodies >= 512 bytes when asked: the file holds the decoded CSV.
    EXPECT_EQ(r.header("Content-Encoding").value_or(""), "gzip");
    std::string content = test::read_text_file(results);
    EXPECT_EQ(content.size(), r.body_bytes);
    EXPECT_EQ(content.rfind("\"sf__Id\",\"sf__Created\"", 0), 0u) << content.substr(0, 80);
    EXPECT_EQ(std::count(content.begin(), content.end(), '\n'), rows + 1);
}

TEST_F(HttpTest, QueryResultPageCarriesLocatorAndRecordCountHeaders) {
    json records = {{"records", {{{"Name", "Q1"}}, {{"Name", "Q2"}}, {{"Name", "Q3"}}}}};
    admin(HttpMethod::Post, "/records/Account", &records);
    HttpClient client(client_options());
    json spec = {{"operation", "query"}, {"query", "SELECT Id, Name FROM Account"}};
    HttpResponse created = run_one(client, json_request(HttpMethod::Post, api_url("/jobs/query"), spec));
    ASSERT_EQ(created.status, 200) << created.error_message << created.body;
    std::string job = json::parse(created.body).at("id").get<std::string>();
    std::string state;
    const auto deadline = Clock::now() + 30s;
    while (Clock::now() < deadline && state != "JobComplete" && state != "Failed") {
        HttpResponse info = run_one(client, get(api_url("/jobs/query/" + job)));
        ASSERT_EQ(info.status, 200) << info.error_message;
        state = json::parse(info.body).at("state").get<std::string>();
        if (state != "JobComplete")
            std::this_thread::sleep_for(50ms);
    }
    ASSERT_EQ(state, "JobComplete");
    HttpResponse page = run_one(client, get(api_url("/jobs/query/" + job + "/results?maxRecords=1")));
    ASSERT_EQ(page.status, 200) << page.error_message << page.body;
    ASSERT_TRUE(page.header(kHeaderSforceNumberOfRecords).has_value());
    EXPECT_EQ(*page.header(kHeaderSforceNumberOfRecords), "1");
    ASSERT_TRUE(page.header(kHeaderSforceLocator).has_value());
    // Three accounts, one per page: more pages follow, so the locator is not the literal null.
    EXPECT_NE(*page.header(kHeaderSforceLocator), "null");
    EXPECT_FALSE(page.header(kHeaderSforceLocator)->empty());
}

TEST_F(HttpTest, TwentyParallelTransfersThroughOneMultiHandle) {
    // Each answer is delayed 400 ms: one after the other they would take 8 s.
    add_fault({{"action", "delay"}, {"ms", 400}, {"path", "/limits$"}, {"count", 20}});
    HttpClient client(client_options());
    std::vector<TransferId> ids;
    const auto t0 = Clock::now();
    for (int i = 0; i < 20; ++i) {
        HttpRequest r = get(api_url("/limits"));
        r.tag = "t" + std::to_string(i);
        ids.push_back(client.start(r));
    }
    EXPECT_EQ(client.active(), 20u);
    std::vector<HttpResponse> done;
    while (client.active() > 0 && Clock::now() - t0 < 20s) {
        client.poll(100);
        for (auto &r : client.take_completed())
            done.push_back(std::move(r));
    }
    ASSERT_EQ(done.size(), 20u);
    std::set<std::string> tags;
    for (const auto &r : done) {
        EXPECT_TRUE(r.success()) << r.error_message << " " << r.status;
        tags.insert(r.tag);
    }
    EXPECT_EQ(tags.size(), 20u);
    EXPECT_LT(elapsed_ms(t0), 4000) << "transfers did not run in parallel";
    EXPECT_EQ(logged("GET", "/limits", 20).size(), 20u);
}

TEST_F(HttpTest, SocketActionApiDrivesTransfersWithOwnPollLoop) {
    test::TempDir dir;
    const std::string csv = accounts_csv(2000);
    const std::string path = dir.file("upload.csv");
    write_file(path, csv);
    HttpClient client(client_options());
    std::string job;
    {
        // Job creation through the socket API too.
        json spec = {{"object", "Account"},
                     {"operation", "insert"},
                     {"contentType", "CSV"},
                     {"columnDelimiter", "COMMA"},
                     {"lineEnding", "LF"}};
        client.start(json_request(HttpMethod::Post, api_url("/jobs/ingest"), spec));
    }
    size_t max_watched = 0;
    int rounds = 0;
    std::vector<HttpResponse> done;
    auto drive = [&](size_t want) {
        const auto deadline = Clock::now() + 20s;
        while (done.size() < want && Clock::now() < deadline && rounds < 100000) {
            ++rounds;
            std::vector<WatchedSocket> ws = client.watched_sockets();
            max_watched = std::max(max_watched, ws.size());
            std::vector<pollfd> fds;
            for (const auto &w : ws)
                fds.push_back(pollfd{
                    w.fd, static_cast<short>((w.want_read ? POLLIN : 0) | (w.want_write ? POLLOUT : 0)), 0});
            long t = client.timeout_ms();
            int wait = t < 0 ? 200 : static_cast<int>(std::min<long>(t, 200));
            int n = ::poll(fds.data(), fds.size(), wait);
            ASSERT_GE(n, 0);
            for (const auto &p : fds) {
                if (p.revents != 0)
                    client.on_socket_ready(p.fd, (p.revents & (POLLIN | POLLHUP | POLLERR)) != 0,
                                           (p.revents & (POLLOUT | POLLERR)) != 0);
            }
            if (client.timeout_ms() == 0)
                client.on_timeout();
            for (auto &r : client.take_completed())
                done.push_back(std::move(r));
        }
    };
    drive(1);
    ASSERT_EQ(done.size(), 1u);
    ASSERT_EQ(done[0].status, 200) << done[0].error_message << done[0].body;
    job = json::parse(done[0].body).at("id").get<std::string>();
    client.start(put_file(job, path));
    drive(2);
    ASSERT_EQ(done.size(), 2u);
    EXPECT_TRUE(done[1].ok()) << done[1].error_message;
    EXPECT_EQ(done[1].status, 201);
    EXPECT_GE(max_watched, 1u) << "curl never asked for a socket to be watched";
    EXPECT_EQ(client.active(), 0u);
    EXPECT_LE(client.watched_sockets().size(), 1u);  // at most the idle keep-alive connection
    auto puts = logged("PUT", "/batches", 1);
    ASSERT_EQ(puts.size(), 1u);
    EXPECT_EQ(puts[0].at("request_bytes").get<size_t>(), csv.size());
}

// ---- HTTP errors are statuses, not transport errors -------------------------------------------------------

TEST_F(HttpTest, Status503IsReportedAsStatusWithRetryAfter) {
    add_fault(
        {{"action", "status"}, {"status", 503}, {"path", "/limits$"}, {"headers", {{"Retry-After", "7"}}}});
    HttpClient client(client_options());
    HttpResponse r = run_one(client, get(api_url("/limits")));
    EXPECT_TRUE(r.ok()) << r.error_message;
    EXPECT_FALSE(r.success());
    EXPECT_EQ(r.status, 503);
    EXPECT_EQ(r.error, TransferError::None);
    EXPECT_NE(r.body.find("SERVER_UNAVAILABLE"), std::string::npos) << r.body;
    EXPECT_EQ(r.header(kHeaderRetryAfter).value_or(""), "7");
    AttemptOutcome o = to_attempt_outcome(r);
    EXPECT_EQ(o.transport, TransportError::None);
    EXPECT_EQ(o.status, 503);
    ASSERT_TRUE(o.retry_after.has_value());
    EXPECT_EQ(*o.retry_after, "7");
    EXPECT_EQ(classify(o, true), RetryAction::RetryAfterBackoff);
}

TEST_F(HttpTest, ErrorBodyOfFileDownloadGoesToMemoryNotToTheFile) {
    test::TempDir dir;
    HttpClient client(client_options());
    HttpRequest r = get(api_url("/jobs/ingest/750Em0000000000AAA/successfulResults"));
    r.response_file = dir.file("results.csv");
    HttpResponse resp = run_one(client, r);
    ASSERT_TRUE(resp.ok()) << resp.error_message;
    EXPECT_EQ(resp.status, 404);
    EXPECT_NE(resp.body.find("NOT_FOUND"), std::string::npos) << resp.body;
    EXPECT_EQ(test::read_text_file(r.response_file), "");
}

// ---- transport failures -----------------------------------------------------------------------------------

TEST_F(HttpTest, ConnectionDroppedMidResponseIsConnectionDropped) {
    add_fault({{"action", "drop"}, {"after_bytes", 20}, {"path", "/sobjects$"}});
    HttpClient client(client_options());
    HttpResponse r = run_one(client, get(api_url("/sobjects")));
    EXPECT_EQ(r.error, TransferError::ConnectionDropped) << r.error_message;
    EXPECT_FALSE(r.ok());
    EXPECT_TRUE(r.request_started);
    EXPECT_TRUE(r.request_fully_sent);
    EXPECT_NE(r.error_message.find("GET " + api_url("/sobjects")), std::string::npos) << r.error_message;
    AttemptOutcome o = to_attempt_outcome(r);
    EXPECT_EQ(o.transport, TransportError::ConnectionDropped);
    EXPECT_TRUE(o.request_sent);
    EXPECT_EQ(o.status, 0);
    // The policy can tell "may have been applied": a POST would be reconciled, a GET retried.
    EXPECT_EQ(classify(o, false), RetryAction::Reconcile);
    EXPECT_EQ(classify(o, true), RetryAction::RetryAfterBackoff);
}

TEST_F(HttpTest, ChunkedResponseCutShortIsConnectionDropped) {
    add_fault({{"action", "drop"}, {"after_bytes", 30}, {"chunked", true}, {"path", "/limits$"}});
    HttpClient client(client_options());
    HttpResponse r = run_one(client, get(api_url("/limits")));
    EXPECT_EQ(r.error, TransferError::ConnectionDropped) << r.error_message;
}

TEST_F(HttpTest, ResetBeforeResponseIsConnectionDroppedAfterFullSend) {
    add_fault({{"action", "reset"}, {"path", "/jobs/ingest$"}});
    HttpClient client(client_options());
    json spec = {{"object", "Account"}, {"operation", "insert"}};
    HttpResponse r = run_one(client, json_request(HttpMethod::Post, api_url("/jobs/ingest"), spec));
    EXPECT_EQ(r.error, TransferError::ConnectionDropped) << r.error_message;
    EXPECT_TRUE(r.request_fully_sent);
    EXPECT_EQ(classify(to_attempt_outcome(r), bulk_method_is_idempotent(HttpMethod::Post)),
              RetryAction::Reconcile);
}

TEST_F(HttpTest, UploadDroppedMidRequestCanBeRestartedFromTheStart) {
    test::TempDir dir;
    const std::string csv = accounts_csv(20000);  // ~1 MB, larger than socket buffers
    const std::string path = dir.file("upload.csv");
    write_file(path, csv);
    HttpClient client(client_options());
    std::string job = create_ingest_job(client);
    add_fault({{"action", "drop"}, {"when", "request"}, {"after_bytes", 4096}, {"path", "/batches$"}});
    HttpResponse first = run_one(client, put_file(job, path));
    EXPECT_EQ(first.error, TransferError::ConnectionDropped) << first.error_message;
    EXPECT_TRUE(first.request_started);
    // The retry is a new transfer of the same request: the file is read again from its first byte.
    HttpResponse second = run_one(client, put_file(job, path));
    ASSERT_TRUE(second.ok()) << second.error_message;
    EXPECT_EQ(second.status, 201) << second.body;
    auto puts = logged("PUT", "/batches", 2);
    ASSERT_EQ(puts.size(), 2u);
    EXPECT_EQ(puts[1].at("request_bytes").get<size_t>(), csv.size());
}

TEST_F(HttpTest, NonIdempotentRequestIsNeverSilentlyResentOnAReusedConnection) {
    HttpClient client(client_options());
    // Warm a keep-alive connection, then have the server reset the POST after reading it.
    ASSERT_EQ(run_one(client, get(api_url("/limits"))).status, 200);
    add_fault({{"action", "reset"}, {"path", "/jobs/ingest$"}, {"method", "POST"}});
    json spec = {{"object", "Account"},
                 {"operation", "insert"},
                 {"contentType", "CSV"},
                 {"columnDelimiter", "COMMA"},
                 {"lineEnding", "LF"}};
    HttpResponse r = run_one(client, json_request(HttpMethod::Post, api_url("/jobs/ingest"), spec));
    EXPECT_EQ(r.error, TransferError::ConnectionDropped) << r.error_message;
    EXPECT_TRUE(r.request_started);
    // Give a silent resend time to show up in the log, then count.
    std::this_thread::sleep_for(200ms);
    EXPECT_EQ(logged("POST", "/jobs/ingest", 1).size(), 1u);
    EXPECT_TRUE(emulator_jobs().empty());

    // An idempotent GET may use the pooled connection (curl's resend of a GET on a dead reused connection is
    // harmless); a request marked idempotent explicitly behaves the same.
    HttpRequest again = json_request(HttpMethod::Post, api_url("/jobs/ingest"), spec);
    again.idempotent = false;
    HttpResponse ok = run_one(client, again);
    EXPECT_EQ(ok.status, 200) << ok.error_message << ok.body;
}

TEST_F(HttpTest, StallBeyondTotalTimeoutIsTimeout) {
    HttpClient client(client_options());
    HttpRequest r = stalled_request(5000);
    r.timeouts.total = 400ms;
    const auto t0 = Clock::now();
    HttpResponse resp = run_one(client, r);
    EXPECT_EQ(resp.error, TransferError::Timeout) << resp.error_message;
    EXPECT_LT(elapsed_ms(t0), 2000);
    EXPECT_GE(elapsed_ms(t0), 350);
    EXPECT_TRUE(resp.request_fully_sent);
    EXPECT_EQ(to_attempt_outcome(resp).transport, TransportError::Timeout);
}

TEST_F(HttpTest, StallBeyondLowSpeedLimitIsTimeoutWithoutTotalTimeout) {
    HttpClient client(client_options());
    HttpRequest r = stalled_request(8000);
    r.timeouts.total = 0ms;
    r.timeouts.low_speed_bytes_per_second = 100;
    r.timeouts.low_speed_window = 1s;
    const auto t0 = Clock::now();
    HttpResponse resp = run_one(client, r);
    EXPECT_EQ(resp.error, TransferError::Timeout) << resp.error_message;
    EXPECT_LT(elapsed_ms(t0), 4000);
}

TEST_F(HttpTest, SlowButAliveDownloadSurvivesLowSpeedLimit) {
    // 2 KB/s trickle for ~1.5 s with a 100 B/s limit: slow but alive, so it must complete.
    add_fault({{"action", "trickle"}, {"bytes_per_second", 2000}, {"path", "/sobjects$"}});
    HttpClient client(client_options());
    HttpRequest r = get(api_url("/sobjects"));
    r.headers.emplace_back("Accept-Encoding", "identity");  // keep the body big enough to trickle
    r.timeouts = HttpTimeouts::bulk_transfer();
    r.timeouts.low_speed_bytes_per_second = 100;
    r.timeouts.low_speed_window = 1s;
    HttpResponse resp = run_one(client, r, 60s);
    EXPECT_TRUE(resp.success()) << resp.error_message;
}

TEST_F(HttpTest, ClosedPortIsConnectFailureAndNothingWasSent) {
    HttpClient client(client_options());
    int port = test::closed_loopback_port();
    ASSERT_GT(port, 0);
    HttpRequest r = get("http://127.0.0.1:" + std::to_string(port) + "/services/data/v62.0/limits");
    HttpResponse resp = run_one(client, r);
    EXPECT_EQ(resp.error, TransferError::ConnectFailed) << resp.error_message;
    EXPECT_FALSE(resp.request_started);
    EXPECT_FALSE(resp.request_fully_sent);
    AttemptOutcome o = to_attempt_outcome(resp);
    EXPECT_EQ(o.transport, TransportError::ConnectFailed);
    EXPECT_FALSE(o.request_sent);
    EXPECT_EQ(classify(o, false), RetryAction::RetryAfterBackoff);  // even a POST: it never left
}

TEST_F(HttpTest, BodyAboveMaximumIsBodyTooLarge) {
    HttpClient client(client_options());
    HttpRequest r = get(api_url("/sobjects"));
    r.max_response_bytes = 100;
    HttpResponse resp = run_one(client, r);
    EXPECT_EQ(resp.error, TransferError::BodyTooLarge) << resp.error_message;
    EXPECT_LE(resp.body.size(), 100u);
    EXPECT_NE(resp.error_message.find("100 bytes"), std::string::npos) << resp.error_message;
    EXPECT_EQ(to_transport_error(resp.error), TransportError::Other);
}

TEST_F(HttpTest, HttpToNonLoopbackHostIsRefusedBeforeAnyTraffic) {
    HttpClient client(client_options());  // loopback http allowed, but 192.0.2.1 is not loopback
    // TEST-NET-1: never reachable. A connection attempt would hang until the connect timeout.
    HttpRequest r = get("http://192.0.2.1/services/data/v62.0/limits");
    r.timeouts.connect = 5s;
    const auto t0 = Clock::now();
    HttpResponse resp = run_one(client, r);
    EXPECT_LT(elapsed_ms(t0), 500);
    EXPECT_EQ(resp.error, TransferError::ProtocolRefused) << resp.error_message;
    EXPECT_FALSE(resp.request_started);
    EXPECT_NE(resp.error_message.find("only https"), std::string::npos) << resp.error_message;
    EXPECT_EQ(classify(to_attempt_outcome(resp), true), RetryAction::Fail);
}

TEST_F(HttpTest, LoopbackHttpNeedsTheClientAllowance) {
    HttpClient strict{HttpClientOptions{}};
    HttpResponse refused = run_one(strict, get(api_url("/limits")));
    EXPECT_EQ(refused.error, TransferError::ProtocolRefused) << refused.error_message;
    EXPECT_TRUE(logged("GET", "/limits").empty());
}

TEST_F(HttpTest, HttpsToPlainHttpPortIsTlsError) {
    HttpClient client(client_options());
    HttpRequest r =
        get("https://127.0.0.1:" + std::to_string(emulator().port()) + "/services/data/v62.0/limits");
    r.timeouts.total = 10s;
    HttpResponse resp = run_one(client, r);
    EXPECT_EQ(resp.error, TransferError::TlsError) << resp.error_message;
    EXPECT_EQ(to_attempt_outcome(resp).transport, TransportError::TlsError);

    // A CA file that cannot be loaded is a TLS failure too, never a silent fallback to no verification.
    HttpClientOptions opts = client_options();
    opts.ca_file = "/nonexistent/sfb-test-ca.pem";
    HttpClient with_ca(opts);
    HttpResponse bad_ca = run_one(with_ca, r);
    EXPECT_EQ(bad_ca.error, TransferError::TlsError) << bad_ca.error_message;
}

TEST_F(HttpTest, LocalFileProblemsFailWithoutTraffic) {
    test::TempDir dir;
    HttpClient client(client_options());
    HttpResponse missing =
        run_one(client, put_file("750Em0000000000AAA", dir.path() + "/does-not-exist.csv"));
    EXPECT_EQ(missing.error, TransferError::LocalFileError) << missing.error_message;
    EXPECT_FALSE(missing.request_started);
    HttpRequest r = get(api_url("/limits"));
    r.response_file = dir.path() + "/no-such-dir/out.csv";
    HttpResponse unwritable = run_one(client, r);
    EXPECT_EQ(unwritable.error, TransferError::LocalFileError) << unwritable.error_message;
    EXPECT_TRUE(logged("GET", "/limits").empty());
    EXPECT_TRUE(logged("PUT", "/batches").empty());
}

// ---- cancellation -----------------------------------------------------------------------------------------

TEST_F(HttpTest, CancelAbortsStalledTransferPromptly) {
    HttpClient client(client_options());
    TransferId id = client.start(stalled_request(10000));
    const auto t0 = Clock::now();
    while (elapsed_ms(t0) < 300)
        client.poll(50);
    EXPECT_EQ(client.active(), 1u);
    const auto t_cancel = Clock::now();
    EXPECT_TRUE(client.cancel(id));
    EXPECT_FALSE(client.cancel(id));
    std::vector<HttpResponse> done;
    while (done.empty() && elapsed_ms(t_cancel) < 2000) {
        client.poll(50);
        done = client.take_completed();
    }
    EXPECT_LT(elapsed_ms(t_cancel), 500);
    ASSERT_EQ(done.size(), 1u);
    EXPECT_EQ(done[0].id, id);
    EXPECT_EQ(done[0].error, TransferError::Cancelled);
    EXPECT_EQ(to_attempt_outcome(done[0]).transport, TransportError::Cancelled);
    EXPECT_EQ(client.active(), 0u);
}

std::atomic<bool> g_stop{false};
bool should_stop_for_test() noexcept {
    return g_stop.load();
}

TEST_F(HttpTest, ShouldStopCallbackAbortsStalledTransferPromptly) {
    g_stop = false;
    HttpClientOptions opts = client_options();
    opts.should_stop = should_stop_for_test;
    HttpClient client(opts);
    client.start(stalled_request(10000));
    client.start(stalled_request(10000));
    const auto t0 = Clock::now();
    while (elapsed_ms(t0) < 300)
        client.poll(100);
    ASSERT_EQ(client.active(), 2u);
    g_stop = true;
    const auto t_stop = Clock::now();
    std::vector<HttpResponse> done;
    while (done.size() < 2 && elapsed_ms(t_stop) < 3000) {
        client.poll(100);
        for (auto &r : client.take_completed())
            done.push_back(std::move(r));
    }
    EXPECT_LT(elapsed_ms(t_stop), 500);
    ASSERT_EQ(done.size(), 2u);
    for (const auto &r : done) {
        EXPECT_EQ(r.error, TransferError::Cancelled);
        EXPECT_NE(r.error_message.find("stop requested"), std::string::npos) << r.error_message;
    }
    g_stop = false;
}

TEST_F(HttpTest, ShouldStopAbortsThroughSocketActionDriving) {
    g_stop = false;
    HttpClientOptions opts = client_options();
    opts.should_stop = should_stop_for_test;
    HttpClient client(opts);
    client.start(stalled_request(10000));
    const auto t0 = Clock::now();
    std::vector<HttpResponse> done;
    Clock::time_point t_stop{};
    while (done.empty() && elapsed_ms(t0) < 5000) {
        if (!g_stop && elapsed_ms(t0) > 300) {
            g_stop = true;
            t_stop = Clock::now();
        }
        std::vector<pollfd> fds;
        for (const auto &w : client.watched_sockets())
            fds.push_back(pollfd{
                w.fd, static_cast<short>((w.want_read ? POLLIN : 0) | (w.want_write ? POLLOUT : 0)), 0});
        long t = client.timeout_ms();
        ::poll(fds.data(), fds.size(), t < 0 ? 100 : static_cast<int>(std::min<long>(t, 100)));
        bool any = false;
        for (const auto &p : fds) {
            if (p.revents) {
                any = true;
                client.on_socket_ready(p.fd, (p.revents & POLLIN) != 0, (p.revents & POLLOUT) != 0);
            }
        }
        // The worker's loop also runs on every latch wake-up: the timer path must notice the stop.
        if (!any)
            client.on_timeout();
        done = client.take_completed();
    }
    g_stop = false;
    ASSERT_EQ(done.size(), 1u);
    EXPECT_EQ(done[0].error, TransferError::Cancelled);
    EXPECT_LT(elapsed_ms(t_stop), 500);
}

// ---- secrets ----------------------------------------------------------------------------------------------

TEST_F(HttpTest, ErrorMessagesNameTheEndpointButNeverTheToken) {
    const std::string token = "00DEm0000000001!AQSecretTokenValueForRedactionTest.0001";
    HttpClient client(client_options());
    int port = test::closed_loopback_port();
    HttpRequest r;
    r.url = "http://127.0.0.1:" + std::to_string(port) + "/services/data/v62.0/jobs/ingest?locator=" + token;
    r.headers = {{"Authorization", "Bearer " + token}};
    HttpResponse refused = run_one(client, r);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error_message.find(token), std::string::npos) << refused.error_message;
    EXPECT_EQ(refused.error_message.find("AQSecret"), std::string::npos) << refused.error_message;
    EXPECT_NE(refused.error_message.find("GET http://127.0.0.1:" + std::to_string(port) +
                                         "/services/data/v62.0/jobs/ingest"),
              std::string::npos)
        << refused.error_message;
    EXPECT_EQ(refused.endpoint.find('?'), std::string::npos);

    // Against the emulator: a stall that times out, with the default org's real token.
    HttpRequest stalled = stalled_request(3000);
    stalled.timeouts.total = 200ms;
    HttpResponse timeout = run_one(client, stalled);
    ASSERT_EQ(timeout.error, TransferError::Timeout);
    EXPECT_EQ(timeout.error_message.find(access_token()), std::string::npos) << timeout.error_message;
    EXPECT_NE(timeout.error_message.find("GET " + api_url("/limits")), std::string::npos)
        << timeout.error_message;
}

TEST_F(HttpTest, DebugLogRedactsAuthorizationAndSecrets) {
    std::vector<std::string> trace;
    HttpClientOptions opts = client_options();
    opts.debug_log = [&trace](std::string_view line) { trace.emplace_back(line); };
    HttpClient client(opts);
    const json &org = default_org();
    const std::string secret = org.at("client_secret").get<std::string>();
    const std::string password = org.at("user").at("password").get<std::string>();
    HttpRequest token;
    token.method = HttpMethod::Post;
    token.url = base_url() + "/services/oauth2/token";
    token.body = form_body({{"grant_type", "password"},
                            {"client_id", org.at("client_id").get<std::string>()},
                            {"client_secret", secret},
                            {"username", org.at("user").at("username").get<std::string>()},
                            {"password", password}});
    token.headers = {{"Content-Type", "application/x-www-form-urlencoded"}};
    token.secrets = {secret, password};
    HttpResponse t = run_one(client, token);
    ASSERT_EQ(t.status, 200) << t.error_message;
    std::string minted = json::parse(t.body).at("access_token").get<std::string>();

    HttpRequest api = get(api_url("/limits?access_token=" + minted));
    api.headers = {{"Authorization", "Bearer " + minted}};
    HttpResponse a = run_one(client, api);
    ASSERT_EQ(a.status, 200) << a.error_message;

    bool saw_redacted_auth = false;
    ASSERT_FALSE(trace.empty());
    for (const auto &line : trace) {
        EXPECT_EQ(line.find(minted), std::string::npos) << line;
        EXPECT_EQ(line.find(secret), std::string::npos) << line;
        EXPECT_EQ(line.find(password), std::string::npos) << line;
        if (line.find("> Authorization: <redacted>") != std::string::npos)
            saw_redacted_auth = true;
    }
    EXPECT_TRUE(saw_redacted_auth);
}

TEST_F(HttpTest, NoVerboseOutputWithoutADebugSink) {
    // libcurl's verbose mode writes to stderr when no debug callback takes it: capture fd 2 during a call
    // that carries a token and check that nothing at all was written.
    test::TempDir dir;
    const std::string captured = dir.file("stderr.txt");
    HttpClientOptions opts = client_options();
    ASSERT_FALSE(static_cast<bool>(opts.debug_log));
    HttpClient client(opts);
    fflush(stderr);
    int saved = ::dup(STDERR_FILENO);
    int fd = ::open(captured.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ASSERT_GE(saved, 0);
    ASSERT_GE(fd, 0);
    ::dup2(fd, STDERR_FILENO);
    HttpResponse r = run_one(client, get(api_url("/limits?access_token=" + access_token())));
    fflush(stderr);
    ::dup2(saved, STDERR_FILENO);
    ::close(saved);
    ::close(fd);
    EXPECT_EQ(r.status, 200) << r.error_message;
    EXPECT_EQ(test::read_text_file(captured), "");
}

TEST_F(HttpTest, SecretQueryParametersAreScrubbedFromMessages) {
    HttpClient client(client_options());
    const std::string secret = "QuerySecretValue0123456789";
    HttpRequest r = stalled_request(3000);
    r.url += "?access_token=" + secret;
    r.headers = {};
    r.timeouts.total = 200ms;
    HttpResponse resp = run_one(client, r);
    ASSERT_EQ(resp.error, TransferError::Timeout) << resp.error_message;
    EXPECT_EQ(resp.error_message.find(secret), std::string::npos) << resp.error_message;
}

// ---- memory -----------------------------------------------------------------------------------------------

long max_rss_kb() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

TEST_F(HttpTest, FileSourceAndSinkKeepMemoryBounded) {
    test::TempDir dir;
    const std::string path = dir.file("big.csv");
    {
        std::ofstream out(path, std::ios::binary);
        out << "Name,AccountNumber\n";
        std::string row = "Bounded Memory Account,AN-0000000000000000000000000000000000000000000000000000\n";
        for (size_t written = 0; written < 48u * 1024 * 1024; written += row.size())
            out << row;
    }
    const long before = max_rss_kb();
    HttpClient client(client_options());
    std::string job = create_ingest_job(client);
    HttpResponse r = run_one(client, put_file(job, path), 120s);
    ASSERT_TRUE(r.ok()) << r.error_message;
    EXPECT_EQ(r.status, 201) << r.body;
    const long grown_kb = max_rss_kb() - before;
    EXPECT_LT(grown_kb, 16 * 1024) << "a 48 MB upload grew the peak RSS by " << grown_kb << " KB";
}

// ---- request validation and mapping -----------------------------------------------------------------------

TEST_F(HttpTest, RequestsThatCanNeverWorkThrow) {
    HttpClient client(client_options());
    HttpRequest both = get(api_url("/limits"));
    both.method = HttpMethod::Post;
    both.body = "{}";
    both.body_file = "/tmp/x";
    EXPECT_THROW(client.start(both), Error);
    HttpRequest get_body = get(api_url("/limits"));
    get_body.body = "x";
    EXPECT_THROW(client.start(get_body), Error);
    HttpRequest crlf = get(api_url("/limits"));
    crlf.headers.emplace_back("X-Test", "a\r\nInjected: yes");
    EXPECT_THROW(client.start(crlf), Error);
    HttpRequest userinfo = get("http://user:pw@127.0.0.1:1/x");
    try {
        client.start(userinfo);
        ADD_FAILURE() << "user info accepted";
    } catch (const Error &e) {
        EXPECT_EQ(e.kind(), ErrorKind::InvalidParameter);
        EXPECT_EQ(std::string(e.what()).find("pw"), std::string::npos);
    }
    HttpRequest garbage = get("not a url");
    EXPECT_THROW(client.start(garbage), Error);
    EXPECT_EQ(client.active(), 0u);
}

TEST(HttpMapping, EveryTransferErrorMapsOntoTheRetryPolicyTypes) {
    EXPECT_EQ(to_transport_error(TransferError::None), TransportError::None);
    EXPECT_EQ(to_transport_error(TransferError::ResolveFailed), TransportError::ResolveFailed);
    EXPECT_EQ(to_transport_error(TransferError::ConnectFailed), TransportError::ConnectFailed);
    EXPECT_EQ(to_transport_error(TransferError::Timeout), TransportError::Timeout);
    EXPECT_EQ(to_transport_error(TransferError::ConnectionDropped), TransportError::ConnectionDropped);
    EXPECT_EQ(to_transport_error(TransferError::TlsError), TransportError::TlsError);
    EXPECT_EQ(to_transport_error(TransferError::Cancelled), TransportError::Cancelled);
    EXPECT_EQ(to_transport_error(TransferError::ProtocolRefused), TransportError::Other);
    EXPECT_EQ(to_transport_error(TransferError::BodyTooLarge), TransportError::Other);
    EXPECT_EQ(to_transport_error(TransferError::LocalFileError), TransportError::Other);
    EXPECT_EQ(to_transport_error(TransferError::Other), TransportError::Other);
}

TEST(HttpMapping, HeadersAreCaseInsensitiveAndKeepFirstMatch) {
    HttpHeaders h;
    h.add("Sforce-Locator", "MTAwMDA");
    h.add("sforce-locator", "second");
    h.add("Content-Type", "text/csv");
    EXPECT_EQ(h.get("SFORCE-LOCATOR").value_or(""), "MTAwMDA");
    EXPECT_EQ(h.get(kHeaderContentType).value_or(""), "text/csv");
    EXPECT_FALSE(h.get("Retry-After").has_value());
    EXPECT_EQ(method_name(HttpMethod::Patch), "PATCH");
}

}  // namespace
}  // namespace sfb
