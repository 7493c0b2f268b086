// A reusable GoogleTest fixture that runs the project's Bulk API 2.0 emulator (test/emulator/sf_emulator/, a
// package run as a directory) as a child process on 127.0.0.1, plus small blocking helpers for its admin API
// (/__emulator/...).
//
// Usage:
//     class MyTest : public sfb::test::EmulatorTest {};
//     TEST_F(MyTest, Something) {
//         sfb::HttpClient client(client_options());
//         auto r = run_one(client, get(api_url("/limits")));  // Bearer default token
//         EXPECT_EQ(r.status, 200);
//     }
// One emulator per test suite (SetUpTestSuite/TearDownTestSuite); every test starts from a reset emulator
// (jobs, records, faults, request log, tokens, config back to defaults). For a different command line, own an
// EmulatorProcess directly.
//
// No process is left behind: TearDownTestSuite stops the emulator (SIGTERM, then SIGKILL after 3 s), and the
// child asks the kernel to SIGKILL it if the test process dies (crash, abort, sanitizer exit).
#pragma once

#include "core/http.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#ifndef SFB_SOURCE_DIR
#error "SFB_SOURCE_DIR must name the repository root (CMakeLists.txt defines it for sfb_unit_tests)"
#endif

namespace sfb {
namespace test {

inline std::string source_path(const std::string &relative) {
    return std::string(SFB_SOURCE_DIR) + "/" + relative;
}

inline std::string read_text_file(const std::string &path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// A private temporary directory, removed (with its plain files) on destruction.
class TempDir {
  public:
    TempDir() {
        const char *base = std::getenv("TMPDIR");
        std::string tmpl = std::string(base && *base ? base : "/tmp") + "/sfb-test-XXXXXX";
        std::vector<char> buf(tmpl.begin(), tmpl.end());
        buf.push_back('\0');
        if (!mkdtemp(buf.data()))
            throw std::runtime_error("mkdtemp failed");
        path_ = buf.data();
    }
    ~TempDir() {
        // Only the files handed out by file(): no recursive removal in test code.
        remove_files();
        ::rmdir(path_.c_str());
    }
    TempDir(const TempDir &) = delete;
    TempDir &operator=(const TempDir &) = delete;
    const std::string &path() const { return path_; }
    std::string file(const std::string &name) const {
        names_.push_back(name);
        return path_ + "/" + name;
    }

  private:
    void remove_files() {
        for (const auto &n : names_)
            ::unlink((path_ + "/" + n).c_str());
    }
    std::string path_;
    mutable std::vector<std::string> names_;
};

// The emulator as a child process. Throws std::runtime_error (with the emulator's stderr) when it does not
// come up within `startup_timeout`.
class EmulatorProcess {
  public:
    explicit EmulatorProcess(std::vector<std::string> extra_args = {},
                             std::chrono::milliseconds startup_timeout = std::chrono::seconds(20))
        : url_file_(dir_.file("url")), stderr_file_(dir_.file("stderr")) {
        dir_.file("url.tmp");  // the emulator writes url.tmp, then renames it
        std::vector<std::string> args = {"/usr/bin/python3", source_path("test/emulator/sf_emulator"),
                                         "--host",           "127.0.0.1",
                                         "--port",           "0",
                                         "--url-file",       url_file_};
        args.insert(args.end(), extra_args.begin(), extra_args.end());
        // Everything the child needs is prepared before fork: after fork only async-signal-safe calls.
        std::vector<char *> argv;
        for (auto &a : args)
            argv.push_back(a.data());
        argv.push_back(nullptr);
        int err_fd = ::open(stderr_file_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        int null_fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
        const pid_t parent = ::getpid();
        pid_ = ::fork();
        if (pid_ == 0) {
            // Dies with the test process, whatever way that ends.
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (::getppid() != parent)
                ::_exit(126);
            if (null_fd >= 0)
                ::dup2(null_fd, STDOUT_FILENO);
            if (err_fd >= 0)
                ::dup2(err_fd, STDERR_FILENO);
            ::execv(argv[0], argv.data());
            ::_exit(127);
        }
        if (err_fd >= 0)
            ::close(err_fd);
        if (null_fd >= 0)
            ::close(null_fd);
        if (pid_ < 0)
            throw std::runtime_error("fork failed");

        const auto deadline = std::chrono::steady_clock::now() + startup_timeout;
        for (;;) {
            std::string url = read_text_file(url_file_);
            if (!url.empty() && url.back() == '\n') {
                base_url_ = url.substr(0, url.size() - 1);
                break;
            }
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                throw std::runtime_error("the emulator exited during startup: " +
                                         read_text_file(stderr_file_));
            }
            if (std::chrono::steady_clock::now() > deadline) {
                stop();
                throw std::runtime_error("the emulator did not start in time: " +
                                         read_text_file(stderr_file_));
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        port_ = std::atoi(base_url_.substr(base_url_.rfind(':') + 1).c_str());
    }

    ~EmulatorProcess() { stop(); }
    EmulatorProcess(const EmulatorProcess &) = delete;
    EmulatorProcess &operator=(const EmulatorProcess &) = delete;

    // SIGTERM, wait up to 3 s, then SIGKILL. Idempotent.
    void stop() noexcept {
        if (pid_ <= 0)
            return;
        ::kill(pid_, SIGTERM);
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
        int status = 0;
        while (::waitpid(pid_, &status, WNOHANG) == 0) {
            if (std::chrono::steady_clock::now() > deadline) {
                ::kill(pid_, SIGKILL);
                ::waitpid(pid_, &status, 0);
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        pid_ = -1;
    }

    const std::string &base_url() const { return base_url_; }  // "http://127.0.0.1:PORT"
    int port() const { return port_; }
    pid_t pid() const { return pid_; }
    std::string stderr_text() const { return read_text_file(stderr_file_); }

  private:
    TempDir dir_;
    std::string url_file_;
    std::string stderr_file_;
    pid_t pid_ = -1;
    std::string base_url_;
    int port_ = 0;
};

// Runs one request to completion on `client` with poll(), bounded by `limit` (then cancelled). The client
// must have nothing else running.
inline HttpResponse run_one(HttpClient &client, HttpRequest request,
                            std::chrono::milliseconds limit = std::chrono::seconds(30)) {
    TransferId id = client.start(std::move(request));
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
        for (auto &r : client.take_completed()) {
            if (r.id == id)
                return std::move(r);
        }
        if (std::chrono::steady_clock::now() > deadline)
            client.cancel(id);
        else
            client.poll(50);
    }
}

class EmulatorTest : public ::testing::Test {
  public:
    static constexpr const char *kApiVersion = "62.0";

    static void SetUpTestSuite() {
        // PostgreSQL ignores SIGPIPE in its processes; do the same so a peer closing a socket mid-write
        // behaves here as it will in the worker.
        ::signal(SIGPIPE, SIG_IGN);
        http_global_init();
        org_ = nlohmann::json::parse(read_text_file(source_path("test/emulator/default_org.json")));
        try {
            emulator_ = std::make_unique<EmulatorProcess>();
        } catch (const std::exception &e) {
            startup_error_ = e.what();
        }
    }

    static void TearDownTestSuite() {
        emulator_.reset();
        http_global_cleanup();
    }

  protected:
    void SetUp() override {
        ASSERT_TRUE(emulator_) << "emulator not running: " << startup_error_;
        admin(HttpMethod::Post, "/reset");
    }

    static EmulatorProcess &emulator() { return *emulator_; }
    static const std::string &base_url() { return emulator_->base_url(); }
    static const nlohmann::json &default_org() { return org_; }
    static std::string access_token() { return org_.at("access_token").get<std::string>(); }
    // base_url() + "/services/data/v62.0" + rest
    static std::string api_url(const std::string &rest) {
        return base_url() + "/services/data/v" + kApiVersion + rest;
    }

    // Plain http to the emulator needs the loopback allowance.
    static HttpClientOptions client_options() {
        HttpClientOptions o;
        o.allow_http_loopback = true;
        return o;
    }

    // A GET with the default org's bearer token.
    static HttpRequest get(const std::string &url) {
        HttpRequest r;
        r.method = HttpMethod::Get;
        r.url = url;
        r.headers = {{"Authorization", "Bearer " + access_token()}, {"Accept", "application/json"}};
        r.timeouts.total = std::chrono::seconds(30);
        return r;
    }

    // A request with a JSON body and the bearer token.
    static HttpRequest json_request(HttpMethod method, const std::string &url, const nlohmann::json &body) {
        HttpRequest r = get(url);
        r.method = method;
        r.body = body.dump();
        r.headers.emplace_back("Content-Type", "application/json");
        return r;
    }

    // Admin API call, blocking (bounded to 10 s). Throws when it does not answer 2xx.
    static nlohmann::json admin(HttpMethod method, const std::string &path,
                                const nlohmann::json *body = nullptr) {
        HttpClient client(client_options());
        HttpRequest r;
        r.method = method;
        r.url = base_url() + "/__emulator" + path;
        if (body) {
            r.body = body->dump();
            r.headers.emplace_back("Content-Type", "application/json");
        } else if (method == HttpMethod::Post) {
            r.body = "";
        }
        HttpResponse resp = run_one(client, std::move(r), std::chrono::seconds(10));
        if (!resp.success())
            throw std::runtime_error("emulator admin " + resp.endpoint + " failed: " + resp.error_message +
                                     " status " + std::to_string(resp.status) + " " + resp.body);
        return resp.body.empty() ? nlohmann::json() : nlohmann::json::parse(resp.body);
    }

    // Fault injection (see the emulator's Faults class): e.g.
    // {"action":"status","status":503,"path":"/limits$"} or {"action":"stall","ms":3000,"path":...},
    // {"action":"drop","after_bytes":10}, {"action":"reset"}.
    static nlohmann::json add_fault(const nlohmann::json &spec) {
        return admin(HttpMethod::Post, "/faults", &spec);
    }
    static void clear_faults() { admin(HttpMethod::Delete, "/faults"); }
    // Non-admin requests seen by the emulator, oldest first (method, path, query, status, request_bytes,
    // response_bytes, dropped...).
    static nlohmann::json request_log(int since = 0) {
        return admin(HttpMethod::Get, "/requests?since=" + std::to_string(since)).at("requests");
    }
    // The emulator appends a log entry only after it has sent the response, so a client can see the answer
    // before the entry exists: wait (bounded) until `done(log)` holds, then return the log as it is.
    template <typename Pred>
    static nlohmann::json wait_for_request_log(Pred done,
                                               std::chrono::milliseconds limit = std::chrono::seconds(5)) {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        for (;;) {
            nlohmann::json log = request_log();
            if (done(log) || std::chrono::steady_clock::now() > deadline)
                return log;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
    }
    static nlohmann::json emulator_jobs() { return admin(HttpMethod::Get, "/jobs").at("jobs"); }

  private:
    static inline std::unique_ptr<EmulatorProcess> emulator_;
    static inline std::string startup_error_;
    static inline nlohmann::json org_;
};

// A port on 127.0.0.1 that nothing listens on: bound to an ephemeral port, then closed.
inline int closed_loopback_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    int port = 0;
    if (fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr *>(&addr), &len) == 0)
        port = ntohs(addr.sin_port);
    if (fd >= 0)
        ::close(fd);
    return port;
}

}  // namespace test
}  // namespace sfb
