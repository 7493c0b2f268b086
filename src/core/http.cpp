#include "core/http.h"

#include "core/error.h"
#include "core/redact.h"
#include "core/url.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <unordered_map>

namespace sfb {

// ---- free functions ---------------------------------------------------------------------------------------

void http_global_init() {
    CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (rc != CURLE_OK)
        throw Error(ErrorKind::Internal, std::string("curl_global_init failed: ") + curl_easy_strerror(rc));
}

void http_global_cleanup() noexcept {
    curl_global_cleanup();
}

std::string_view method_name(HttpMethod m) {
    switch (m) {
        case HttpMethod::Get:
            return "GET";
        case HttpMethod::Post:
            return "POST";
        case HttpMethod::Put:
            return "PUT";
        case HttpMethod::Patch:
            return "PATCH";
        case HttpMethod::Delete:
            return "DELETE";
    }
    return "GET";
}

std::string_view to_string(TransferError e) {
    switch (e) {
        case TransferError::None:
            return "none";
        case TransferError::ResolveFailed:
            return "host name not resolved";
        case TransferError::ConnectFailed:
            return "connect failed";
        case TransferError::Timeout:
            return "timed out";
        case TransferError::ConnectionDropped:
            return "connection dropped";
        case TransferError::TlsError:
            return "TLS failure";
        case TransferError::ProtocolRefused:
            return "protocol refused";
        case TransferError::BodyTooLarge:
            return "response too large";
        case TransferError::LocalFileError:
            return "local file error";
        case TransferError::Cancelled:
            return "aborted";
        case TransferError::Other:
            return "transfer failed";
    }
    return "transfer failed";
}

TransportError to_transport_error(TransferError e) {
    switch (e) {
        case TransferError::None:
            return TransportError::None;
        case TransferError::ResolveFailed:
            return TransportError::ResolveFailed;
        case TransferError::ConnectFailed:
            return TransportError::ConnectFailed;
        case TransferError::Timeout:
            return TransportError::Timeout;
        case TransferError::ConnectionDropped:
            return TransportError::ConnectionDropped;
        case TransferError::TlsError:
            return TransportError::TlsError;
        case TransferError::Cancelled:
            return TransportError::Cancelled;
        case TransferError::ProtocolRefused:
        case TransferError::BodyTooLarge:
        case TransferError::LocalFileError:
        case TransferError::Other:
            return TransportError::Other;
    }
    return TransportError::Other;
}

AttemptOutcome to_attempt_outcome(const HttpResponse &r) {
    AttemptOutcome o;
    o.transport = to_transport_error(r.error);
    o.request_sent = r.request_started;
    if (r.ok()) {
        o.status = r.status;
        o.retry_after = r.header(kHeaderRetryAfter);
    }
    return o;
}

namespace {

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size())
        return false;
    for (size_t i = 0; i < a.size(); ++i) {
        if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
            return false;
    }
    return true;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
        s.remove_suffix(1);
    return s;
}

std::string errno_text(int err) {
    char buf[256];
    // GNU strerror_r returns the message pointer (which may or may not be buf).
    const char *msg = strerror_r(err, buf, sizeof buf);
    return msg ? std::string(msg) : std::string("errno ") + std::to_string(err);
}

}  // namespace

// ---- HttpHeaders ------------------------------------------------------------------------------------------

void HttpHeaders::add(std::string name, std::string value) {
    items_.emplace_back(std::move(name), std::move(value));
}

void HttpHeaders::append_to_last(std::string_view more) {
    if (items_.empty())
        return;
    items_.back().second += ' ';
    items_.back().second += more;
}

std::optional<std::string> HttpHeaders::get(std::string_view name) const {
    for (const auto &[n, v] : items_) {
        if (iequals(n, name))
            return v;
    }
    return std::nullopt;
}

// ---- the transfer record ----------------------------------------------------------------------------------

namespace http_detail {

// Everything curl's callbacks touch for one transfer. Owned by HttpClient::State::running; curl holds a
// pointer to it (CURLOPT_PRIVATE and the callback data pointers) while the easy handle is in the multi.
struct Transfer {
    HttpClient::State *state = nullptr;
    TransferId id = 0;
    CURL *easy = nullptr;
    bool in_multi = false;
    curl_slist *header_list = nullptr;
    HttpRequest req;
    std::string endpoint;
    std::string host;           // lower-cased, as curl's URL parser sees it
    std::string protocols;      // for CURLOPT_PROTOCOLS_STR; outlives the handle (curl copies, but cheap)
    std::string protocol_note;  // why a refused scheme was refused, for the message
    Redactor redactor;          // the secret values to remove from messages and debug output

    // Request body (memory or file), read through read_cb so it can be rewound.
    std::uint64_t upload_size = 0;
    std::uint64_t upload_offset = 0;
    int upload_fd = -1;

    int download_fd = -1;
    bool sink_decided = false;
    bool sink_file = false;
    std::size_t header_bytes = 0;

    TransferError failure = TransferError::None;  // first failure recorded by a callback or by us
    std::string failure_detail;

    HttpResponse resp;
    std::chrono::steady_clock::time_point started;
    char errbuf[CURL_ERROR_SIZE] = {};

    Transfer() = default;
    Transfer(const Transfer &) = delete;
    Transfer &operator=(const Transfer &) = delete;
    ~Transfer() { release(); }

    void release() noexcept;

    // Records the first failure; later ones are consequences of it. Never throws (called from callbacks).
    void fail(TransferError kind, const char *detail) noexcept {
        if (failure != TransferError::None)
            return;
        failure = kind;
        try {
            failure_detail = detail;
        } catch (...) {
            // The kind alone still classifies the failure.
        }
    }

    // fail() with "<what>: <strerror(err)>", built without letting an allocation failure escape.
    void fail_errno(TransferError kind, const char *what, int err) noexcept {
        try {
            std::string msg = std::string(what) + ": " + errno_text(err);
            fail(kind, msg.c_str());
        } catch (...) {
            fail(kind, what);
        }
    }

    std::string redact(std::string text) const { return redactor.apply(std::move(text)); }
};

}  // namespace http_detail

using http_detail::Transfer;

struct HttpClient::State {
    HttpClientOptions opts;
    CURLM *multi = nullptr;
    std::string user_agent;
    TransferId next_id = 1;
    std::unordered_map<TransferId, std::unique_ptr<Transfer>> running;
    std::vector<HttpResponse> completed;
    std::map<curl_socket_t, int> sockets;  // what curl wants watched (CURL_POLL_IN/OUT/INOUT)
    std::optional<std::chrono::steady_clock::time_point> timer_deadline;

    void collect();
    void complete(Transfer &t, CURLcode rc);
    void check_stop();
    void perform();
    void socket_action(curl_socket_t fd, int flags);
    void add_to_multi(Transfer &t);
    void check_multi(CURLMcode mc, const char *what) const {
        if (mc != CURLM_OK && mc != CURLM_CALL_MULTI_PERFORM)
            throw Error(ErrorKind::Internal, std::string(what) + " failed: " + curl_multi_strerror(mc));
    }
};

void Transfer::release() noexcept {
    if (easy) {
        if (in_multi && state && state->multi)
            curl_multi_remove_handle(state->multi, easy);
        in_multi = false;
        curl_easy_cleanup(easy);
        easy = nullptr;
    }
    if (header_list) {
        curl_slist_free_all(header_list);
        header_list = nullptr;
    }
    if (upload_fd >= 0) {
        ::close(upload_fd);
        upload_fd = -1;
    }
    if (download_fd >= 0) {
        // Durable before the caller records the download as done: a page or result file that a crash of
        // the machine could empty must not be taken for a complete one afterwards.
        ::fsync(download_fd);
        ::close(download_fd);
        download_fd = -1;
    }
}

// ---- curl callbacks: noexcept, only the transfer record, failures recorded then curl's abort value --------

namespace {

size_t write_cb(char *ptr, size_t size, size_t nmemb, void *userdata) noexcept {
    auto *t = static_cast<Transfer *>(userdata);
    const size_t n = size * nmemb;
    if (!t->sink_decided) {
        // Decided on the first body byte, when the final status is known: only a 2xx body is the payload
        // the caller asked to stream; an error body is small JSON the caller must parse.
        long code = 0;
        curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &code);
        t->sink_file = t->download_fd >= 0 && code >= 200 && code < 300;
        t->sink_decided = true;
    }
    if (t->sink_file) {
        size_t done = 0;
        while (done < n) {
            ssize_t w = ::write(t->download_fd, ptr + done, n - done);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                t->fail_errno(TransferError::LocalFileError, "writing the response file failed",
                              w < 0 ? errno : EIO);
                return 0;  // != n: curl ends the transfer with CURLE_WRITE_ERROR
            }
            done += static_cast<size_t>(w);
        }
    } else {
        try {
            if (t->download_fd >= 0) {
                size_t room =
                    kMaxErrorBodyBytes > t->resp.body.size() ? kMaxErrorBodyBytes - t->resp.body.size() : 0;
                if (n > room)
                    t->resp.body_truncated = true;
                t->resp.body.append(ptr, std::min(n, room));
            } else {
                if (t->resp.body.size() + n > t->req.max_response_bytes) {
                    std::string why = "response body exceeds the limit of " +
                                      std::to_string(t->req.max_response_bytes) + " bytes";
                    t->fail(TransferError::BodyTooLarge, why.c_str());
                    return 0;
                }
                t->resp.body.append(ptr, n);
            }
        } catch (...) {
            t->fail(TransferError::Other, "out of memory while receiving the response body");
            return 0;
        }
    }
    t->resp.body_bytes += n;
    return n;
}

size_t header_cb(char *buffer, size_t size, size_t nitems, void *userdata) noexcept {
    auto *t = static_cast<Transfer *>(userdata);
    const size_t n = size * nitems;
    t->header_bytes += n;
    if (t->header_bytes > kMaxResponseHeaderBytes) {
        t->fail(TransferError::BodyTooLarge, "response header section exceeds 65536 bytes");
        return 0;
    }
    std::string_view line(buffer, n);
    while (!line.empty() && (line.back() == '\r' || line.back() == '\n'))
        line.remove_suffix(1);
    try {
        if (line.size() >= 5 && line.substr(0, 5) == "HTTP/") {
            // A new response starts (an interim 1xx, or the final one): keep only the last one's headers.
            t->resp.headers.clear();
        } else if (!line.empty() && (line.front() == ' ' || line.front() == '\t')) {
            // Obsolete line folding: continuation of the previous header's value.
            t->resp.headers.append_to_last(trim(line));
        } else if (!line.empty()) {
            size_t colon = line.find(':');
            if (colon != std::string_view::npos && colon > 0)
                t->resp.headers.add(std::string(trim(line.substr(0, colon))),
                                    std::string(trim(line.substr(colon + 1))));
        }
    } catch (...) {
        t->fail(TransferError::Other, "out of memory while receiving response headers");
        return 0;
    }
    return n;
}

size_t read_cb(char *buffer, size_t size, size_t nitems, void *userdata) noexcept {
    auto *t = static_cast<Transfer *>(userdata);
    const size_t room = size * nitems;
    const std::uint64_t remaining = t->upload_size - t->upload_offset;
    const size_t want = static_cast<size_t>(std::min<std::uint64_t>(room, remaining));
    if (want == 0)
        return 0;
    if (t->upload_fd < 0) {
        std::memcpy(buffer, t->req.body->data() + t->upload_offset, want);
        t->upload_offset += want;
        return want;
    }
    for (;;) {
        ssize_t r = ::pread(t->upload_fd, buffer, want, static_cast<off_t>(t->upload_offset));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            t->fail_errno(TransferError::LocalFileError, "reading the request body file failed", errno);
            return CURL_READFUNC_ABORT;
        }
        if (r == 0) {
            // Content-Length was promised from the size at start(): a shorter file cannot honour it.
            t->fail(TransferError::LocalFileError, "the request body file shrank during the upload");
            return CURL_READFUNC_ABORT;
        }
        t->upload_offset += static_cast<std::uint64_t>(r);
        return static_cast<size_t>(r);
    }
}

// curl rewinds when it must resend the body within one transfer (e.g. a reused connection that turned out
// to be closed). A retry by the caller is a new transfer that starts from offset 0 anyway.
int seek_cb(void *userdata, curl_off_t offset, int origin) noexcept {
    auto *t = static_cast<Transfer *>(userdata);
    if (origin != SEEK_SET)
        return CURL_SEEKFUNC_CANTSEEK;
    if (offset < 0 || static_cast<std::uint64_t>(offset) > t->upload_size)
        return CURL_SEEKFUNC_FAIL;
    t->upload_offset = static_cast<std::uint64_t>(offset);
    return CURL_SEEKFUNC_OK;
}

int xferinfo_cb(void *clientp, curl_off_t, curl_off_t, curl_off_t, curl_off_t) noexcept {
    auto *t = static_cast<Transfer *>(clientp);
    ShouldStopFn stop = t->state->opts.should_stop;
    if (stop && stop()) {
        t->fail(TransferError::Cancelled, "stop requested");
        return 1;  // non-zero: CURLE_ABORTED_BY_CALLBACK
    }
    return 0;
}

int debug_cb(CURL *, curl_infotype type, char *data, size_t size, void *userptr) noexcept {
    auto *t = static_cast<Transfer *>(userptr);
    try {
        const auto &sink = t->state->opts.debug_log;
        if (!sink)
            return 0;
        std::string_view text(data, size);
        std::string prefix = "[" + std::to_string(t->id) + "] ";
        switch (type) {
            case CURLINFO_TEXT:
                sink(t->redact(prefix + "* " + std::string(trim(text))));
                break;
            case CURLINFO_HEADER_OUT:
            case CURLINFO_HEADER_IN: {
                const char *dir = type == CURLINFO_HEADER_OUT ? "> " : "< ";
                size_t pos = 0;
                while (pos < text.size()) {
                    size_t eol = text.find('\n', pos);
                    std::string_view line = trim(
                        text.substr(pos, eol == std::string_view::npos ? std::string_view::npos : eol - pos));
                    if (!line.empty())
                        sink(t->redact(prefix + dir + redact_header_line(line)));
                    if (eol == std::string_view::npos)
                        break;
                    pos = eol + 1;
                }
                break;
            }
            case CURLINFO_DATA_OUT:
            case CURLINFO_DATA_IN:
                // Bodies carry form secrets and customer data: sizes only.
                sink(prefix + (type == CURLINFO_DATA_OUT ? "> [" : "< [") + std::to_string(size) +
                     " body bytes]");
                break;
            default:
                break;  // TLS records: nothing useful, possibly sensitive
        }
    } catch (...) {
        // A failing log sink must not fail the transfer.
    }
    return 0;
}

int socket_cb(CURL *, curl_socket_t s, int what, void *userp, void *) noexcept {
    auto *st = static_cast<HttpClient::State *>(userp);
    try {
        if (what == CURL_POLL_REMOVE)
            st->sockets.erase(s);
        else
            st->sockets[s] = what;
    } catch (...) {
        return -1;  // curl aborts the transfers of this multi handle
    }
    return 0;
}

int timer_cb(CURLM *, long timeout_ms, void *userp) noexcept {
    auto *st = static_cast<HttpClient::State *>(userp);
    if (timeout_ms < 0)
        st->timer_deadline.reset();
    else
        st->timer_deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    return 0;
}

TransferError classify_curl(CURLcode rc) {
    switch (rc) {
        case CURLE_OK:
            return TransferError::None;
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
            return TransferError::ResolveFailed;
        case CURLE_COULDNT_CONNECT:
            return TransferError::ConnectFailed;
        case CURLE_OPERATION_TIMEDOUT:
            return TransferError::Timeout;
        case CURLE_SEND_ERROR:
        case CURLE_RECV_ERROR:
        case CURLE_PARTIAL_FILE:
        case CURLE_GOT_NOTHING:
        case CURLE_HTTP2:
        case CURLE_HTTP2_STREAM:
            return TransferError::ConnectionDropped;
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_SSL_ENGINE_NOTFOUND:
        case CURLE_SSL_ENGINE_SETFAILED:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_CIPHER:
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_USE_SSL_FAILED:
        case CURLE_SSL_ENGINE_INITFAILED:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_SHUTDOWN_FAILED:
        case CURLE_SSL_CRL_BADFILE:
        case CURLE_SSL_ISSUER_ERROR:
        case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
        case CURLE_SSL_INVALIDCERTSTATUS:
        case CURLE_SSL_CLIENTCERT:
            return TransferError::TlsError;
        case CURLE_UNSUPPORTED_PROTOCOL:
            return TransferError::ProtocolRefused;
        case CURLE_FILESIZE_EXCEEDED:
            return TransferError::BodyTooLarge;
        case CURLE_ABORTED_BY_CALLBACK:
            return TransferError::Cancelled;
        case CURLE_READ_ERROR:
        case CURLE_WRITE_ERROR:
            return TransferError::LocalFileError;
        default:
            return TransferError::Other;
    }
}

// curl_url_get wrapper: the part, or "" when absent.
std::string url_part(CURLU *u, CURLUPart part) {
    char *value = nullptr;
    if (curl_url_get(u, part, &value, 0) != CURLUE_OK || !value)
        return {};
    std::string out(value);
    curl_free(value);
    return out;
}

bool has_crlf(std::string_view s) {
    return s.find_first_of("\r\n") != std::string_view::npos;
}

// Blocks asynchronous signals while libcurl runs, so that a resolver thread it starts (threaded resolver:
// one thread per name lookup) inherits a mask with every signal blocked and PostgreSQL's handlers only ever
// run on the worker's own thread (docs/platform.md §4). Faults raised by the code itself stay
// deliverable. Held only around non-waiting curl calls, so signals are deferred for microseconds.
class AsyncSignalsBlocked {
  public:
    AsyncSignalsBlocked() noexcept {
        sigset_t all;
        sigfillset(&all);
        for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP, SIGSYS})
            sigdelset(&all, sig);
        active_ = pthread_sigmask(SIG_BLOCK, &all, &saved_) == 0;
    }
    ~AsyncSignalsBlocked() {
        if (active_)
            pthread_sigmask(SIG_SETMASK, &saved_, nullptr);
    }
    AsyncSignalsBlocked(const AsyncSignalsBlocked &) = delete;
    AsyncSignalsBlocked &operator=(const AsyncSignalsBlocked &) = delete;

  private:
    sigset_t saved_;
    bool active_ = false;
};

template <typename T>
void set_opt(CURL *easy, CURLoption opt, T value) {
    CURLcode rc = curl_easy_setopt(easy, opt, value);
    if (rc != CURLE_OK)
        throw Error(ErrorKind::Internal, std::string("curl_easy_setopt failed: ") + curl_easy_strerror(rc));
}

}  // namespace

// ---- State ------------------------------------------------------------------------------------------------

void HttpClient::State::complete(Transfer &t, CURLcode rc) {
    HttpResponse &r = t.resp;
    r.total_time =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t.started);
    if (t.easy) {
        long code = 0;
        curl_easy_getinfo(t.easy, CURLINFO_RESPONSE_CODE, &code);
        curl_off_t uploaded = 0;
        curl_easy_getinfo(t.easy, CURLINFO_SIZE_UPLOAD_T, &uploaded);
        long request_header_bytes = 0;
        curl_easy_getinfo(t.easy, CURLINFO_REQUEST_SIZE, &request_header_bytes);
        curl_off_t pretransfer_us = 0;
        curl_easy_getinfo(t.easy, CURLINFO_PRETRANSFER_TIME_T, &pretransfer_us);
        r.status = static_cast<int>(code);
        r.bytes_sent = uploaded > 0 ? static_cast<std::uint64_t>(uploaded) : 0;
        // Pre-transfer means the connection was up and the request about to be written: from there on the
        // server may have seen (part of) it. Errs towards true, as the retry policy requires.
        r.request_started = pretransfer_us > 0 || request_header_bytes > 0 || uploaded > 0 || code > 0;
        r.request_fully_sent = request_header_bytes > 0 && r.bytes_sent >= t.upload_size;
    }
    TransferError kind = TransferError::None;
    std::string detail;
    if (t.failure != TransferError::None) {
        kind = t.failure;
        detail = t.failure_detail;
    } else if (rc != CURLE_OK) {
        kind = classify_curl(rc);
        detail = t.errbuf[0] ? std::string(t.errbuf) : std::string(curl_easy_strerror(rc));
        if (kind == TransferError::ProtocolRefused && !t.protocol_note.empty())
            detail = t.protocol_note + " (" + detail + ")";
    }
    if (kind != TransferError::None) {
        r.error = kind;
        std::string msg = t.endpoint + ": " + std::string(to_string(kind));
        if (!detail.empty())
            msg += ": " + detail;
        if (r.status > 0)
            msg += " (after HTTP status " + std::to_string(r.status) + ")";
        r.error_message = t.redact(std::move(msg));
    }
    // Closes the response file before the caller sees the result, and detaches the handle from the multi.
    t.release();
    completed.push_back(std::move(r));
    running.erase(t.id);  // destroys t
}

void HttpClient::State::perform() {
    int still = 0;
    AsyncSignalsBlocked blocked;
    check_multi(curl_multi_perform(multi, &still), "curl_multi_perform");
}

void HttpClient::State::socket_action(curl_socket_t fd, int flags) {
    int still = 0;
    AsyncSignalsBlocked blocked;
    check_multi(curl_multi_socket_action(multi, fd, flags, &still), "curl_multi_socket_action");
}

void HttpClient::State::collect() {
    int left = 0;
    // Bounded by the number of running transfers: each finishes once.
    while (CURLMsg *m = curl_multi_info_read(multi, &left)) {
        if (m->msg != CURLMSG_DONE)
            continue;
        CURLcode rc = m->data.result;
        char *priv = nullptr;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
        if (priv)
            complete(*reinterpret_cast<Transfer *>(priv), rc);
    }
}

void HttpClient::State::check_stop() {
    if (!opts.should_stop || running.empty() || !opts.should_stop())
        return;
    // Also done by the progress callback, but curl calls that only for transfers it is processing; a
    // transfer waiting on a silent socket must stop too.
    std::vector<Transfer *> all;
    all.reserve(running.size());
    for (auto &kv : running)
        all.push_back(kv.second.get());
    for (Transfer *t : all) {
        t->fail(TransferError::Cancelled, "stop requested");
        complete(*t, CURLE_ABORTED_BY_CALLBACK);
    }
}

// ---- HttpClient -------------------------------------------------------------------------------------------

HttpClient::HttpClient(HttpClientOptions options) : state_(std::make_unique<State>()) {
    State &st = *state_;
    st.opts = std::move(options);
    st.user_agent = "sf_bulk/" + st.opts.version;
    st.multi = curl_multi_init();
    if (!st.multi)
        throw Error(ErrorKind::Internal, "curl_multi_init failed (was http_global_init called?)");
    curl_multi_setopt(st.multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(st.multi, CURLMOPT_SOCKETDATA, &st);
    curl_multi_setopt(st.multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(st.multi, CURLMOPT_TIMERDATA, &st);
    if (st.opts.max_connections_per_host > 0)
        curl_multi_setopt(st.multi, CURLMOPT_MAX_HOST_CONNECTIONS, st.opts.max_connections_per_host);
}

HttpClient::~HttpClient() {
    State &st = *state_;
    // Easy handles first: curl_multi_cleanup requires them detached.
    for (auto &kv : st.running)
        kv.second->release();
    st.running.clear();
    curl_multi_cleanup(st.multi);
    st.multi = nullptr;
}

// ---- starting a transfer: HttpClient::start and its steps -------------------------------------------------

namespace {

bool has_body_method(HttpMethod m) {
    return m == HttpMethod::Post || m == HttpMethod::Put || m == HttpMethod::Patch;
}

// Step 1: a request that can never work is the caller's bug: refused before anything is set up.
void validate_request(const HttpRequest &request) {
    if (request.body && !request.body_file.empty())
        throw Error(ErrorKind::InvalidParameter, "HTTP request has both an in-memory body and a body file");
    if (!has_body_method(request.method) && (request.body || !request.body_file.empty()))
        throw Error(ErrorKind::InvalidParameter,
                    "HTTP " + std::string(method_name(request.method)) + " request must not have a body");
    for (const auto &[name, value] : request.headers) {
        if (name.empty() || has_crlf(name) || has_crlf(value) || name.find(':') != std::string::npos)
            throw Error(ErrorKind::InvalidParameter, "invalid HTTP request header name or value");
    }
}

// Step 2: where the request goes, judged by curl's own URL parser so the host we judge is the host curl will
// connect to: the endpoint for messages, the allowed protocols, and the secrets the request carries. Throws
// for a malformed URL or one with user information.
void resolve_target(Transfer &t, const HttpRequest &request, bool allow_http_loopback) {
    std::unique_ptr<CURLU, void (*)(CURLU *)> url(curl_url(), curl_url_cleanup);
    if (!url)
        throw Error(ErrorKind::Internal, "curl_url failed");
    CURLUcode uc = curl_url_set(url.get(), CURLUPART_URL, request.url.c_str(), 0);
    if (uc != CURLUE_OK)
        // The URL is not echoed: it may carry a secret in its query.
        throw Error(ErrorKind::InvalidParameter,
                    std::string("invalid HTTP request URL: ") + curl_url_strerror(uc));
    if (!url_part(url.get(), CURLUPART_USER).empty() || !url_part(url.get(), CURLUPART_PASSWORD).empty())
        throw Error(ErrorKind::InvalidParameter,
                    "HTTP request URL must not contain user information; credentials go in headers");
    std::string scheme = url_part(url.get(), CURLUPART_SCHEME);
    std::string host = url_part(url.get(), CURLUPART_HOST);
    std::string port = url_part(url.get(), CURLUPART_PORT);
    std::string path = url_part(url.get(), CURLUPART_PATH);
    std::transform(host.begin(), host.end(), host.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    t.endpoint = std::string(method_name(request.method)) + " " + scheme + "://" + host +
                 (port.empty() ? "" : ":" + port) + path;

    // https always; plain http only to this machine and only when the (superuser-only) setting allows it.
    // curl enforces the list, so a refused scheme fails before any connection is made.
    t.host = host;
    const bool loopback = is_loopback_host(host);
    if (allow_http_loopback && loopback) {
        t.protocols = "http,https";
    } else {
        t.protocols = "https";
        if (scheme != "https")
            t.protocol_note = !loopback ? "only https is allowed to a non-loopback host"
                                        : "plain http to a loopback host is not enabled for this client";
    }

    // Credential headers, secret-named query parameters (?access_token=...) and the caller's secrets.
    for (const auto &[name, value] : request.headers) {
        for (std::string &secret : secret_header_values(name, value))
            t.redactor.add(std::move(secret));
    }
    for (std::string &secret : secret_query_values(url_part(url.get(), CURLUPART_QUERY)))
        t.redactor.add(std::move(secret));
    for (const auto &s : request.secrets)
        t.redactor.add(s);
}

// Step 3: the body source and the response sink. A local file that cannot be used is recorded as the
// transfer's failure (returns false), to be completed without traffic.
bool open_local_files(Transfer &t, CURLcode &failure) {
    const HttpRequest &req = t.req;
    if (!req.body_file.empty()) {
        t.upload_fd = ::open(req.body_file.c_str(), O_RDONLY | O_CLOEXEC);
        struct stat sb {};
        if (t.upload_fd < 0 || ::fstat(t.upload_fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
            std::string why = t.upload_fd < 0 ? "cannot open the request body file: " + errno_text(errno)
                                              : "the request body file is not a regular file";
            t.fail(TransferError::LocalFileError, why.c_str());
            failure = CURLE_READ_ERROR;
            return false;
        }
        t.upload_size = static_cast<std::uint64_t>(sb.st_size);
    } else if (req.body) {
        t.upload_size = req.body->size();
    }
    if (!req.response_file.empty()) {
        t.download_fd = ::open(req.response_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (t.download_fd < 0) {
            std::string why = "cannot create the response file: " + errno_text(errno);
            t.fail(TransferError::LocalFileError, why.c_str());
            failure = CURLE_WRITE_ERROR;
            return false;
        }
    }
    return true;
}

// Step 4: the easy handle's options: target and security, timeouts, callbacks, method.
void set_easy_options(Transfer &t, const HttpClientOptions &opts, const std::string &user_agent) {
    const HttpRequest &req = t.req;
    t.easy = curl_easy_init();
    if (!t.easy)
        throw Error(ErrorKind::Internal, "curl_easy_init failed");
    CURL *e = t.easy;
    set_opt(e, CURLOPT_PRIVATE, static_cast<void *>(&t));
    set_opt(e, CURLOPT_ERRORBUFFER, t.errbuf);
    set_opt(e, CURLOPT_URL, req.url.c_str());
    // PostgreSQL owns SIGALRM; curl's signal-based resolver timeout would clobber it.
    set_opt(e, CURLOPT_NOSIGNAL, 1L);
    set_opt(e, CURLOPT_PROTOCOLS_STR, t.protocols.c_str());
    set_opt(e, CURLOPT_REDIR_PROTOCOLS_STR, t.protocols.c_str());
    set_opt(e, CURLOPT_FOLLOWLOCATION, 0L);
    // The secure defaults, stated explicitly; there is deliberately no way to turn them off.
    set_opt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    set_opt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    // A proxy from the server's environment may be needed to reach Salesforce, but never for this machine:
    // loopback requests (the emulator) go direct.
    if (is_loopback_host(t.host))
        set_opt(e, CURLOPT_NOPROXY, "*");
    if (!opts.ca_file.empty())
        set_opt(e, CURLOPT_CAINFO, opts.ca_file.c_str());
    set_opt(e, CURLOPT_ACCEPT_ENCODING, "gzip");
    set_opt(e, CURLOPT_USERAGENT, user_agent.c_str());
    // Long downloads sit idle on the client side while the server prepares pages; keepalive probes let NAT
    // boxes keep the mapping and reveal dead peers.
    set_opt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    if (!req.idempotent.value_or(bulk_method_is_idempotent(req.method)))
        set_opt(e, CURLOPT_FRESH_CONNECT, 1L);  // see HttpRequest::idempotent

    set_opt(e, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(req.timeouts.connect.count()));
    set_opt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(req.timeouts.total.count()));
    if (req.timeouts.low_speed_bytes_per_second > 0 && req.timeouts.low_speed_window.count() > 0) {
        set_opt(e, CURLOPT_LOW_SPEED_LIMIT, req.timeouts.low_speed_bytes_per_second);
        set_opt(e, CURLOPT_LOW_SPEED_TIME, static_cast<long>(req.timeouts.low_speed_window.count()));
    }

    set_opt(e, CURLOPT_WRITEFUNCTION, write_cb);
    set_opt(e, CURLOPT_WRITEDATA, static_cast<void *>(&t));
    set_opt(e, CURLOPT_HEADERFUNCTION, header_cb);
    set_opt(e, CURLOPT_HEADERDATA, static_cast<void *>(&t));
    set_opt(e, CURLOPT_NOPROGRESS, 0L);
    set_opt(e, CURLOPT_XFERINFOFUNCTION, xferinfo_cb);
    set_opt(e, CURLOPT_XFERINFODATA, static_cast<void *>(&t));
    if (opts.debug_log) {
        set_opt(e, CURLOPT_DEBUGFUNCTION, debug_cb);
        set_opt(e, CURLOPT_DEBUGDATA, static_cast<void *>(&t));
        set_opt(e, CURLOPT_VERBOSE, 1L);
    }

    const auto size = static_cast<curl_off_t>(t.upload_size);
    switch (req.method) {
        case HttpMethod::Get:
            set_opt(e, CURLOPT_HTTPGET, 1L);
            break;
        case HttpMethod::Delete:
            set_opt(e, CURLOPT_CUSTOMREQUEST, "DELETE");
            break;
        case HttpMethod::Put:
            set_opt(e, CURLOPT_UPLOAD, 1L);
            set_opt(e, CURLOPT_INFILESIZE_LARGE, size);  // known size: Content-Length, never chunked
            break;
        case HttpMethod::Post:
        case HttpMethod::Patch:
            set_opt(e, CURLOPT_POST, 1L);
            set_opt(e, CURLOPT_POSTFIELDSIZE_LARGE, size);
            if (req.method == HttpMethod::Patch)
                set_opt(e, CURLOPT_CUSTOMREQUEST, "PATCH");
            break;
    }
}

// Step 5: the request headers, and for a body the read/seek callbacks and the headers curl must not add.
void set_headers_and_body(Transfer &t) {
    const HttpRequest &req = t.req;
    CURL *e = t.easy;
    bool has_content_type = false;
    auto append = [&](const std::string &line) {
        curl_slist *next = curl_slist_append(t.header_list, line.c_str());
        if (!next)
            throw Error(ErrorKind::Internal, "out of memory building HTTP headers");
        t.header_list = next;
    };
    for (const auto &[name, value] : req.headers) {
        has_content_type = has_content_type || iequals(name, "content-type");
        // "Name:" would tell curl to drop the header; "Name;" sends it empty.
        append(value.empty() ? name + ";" : name + ": " + value);
    }
    if (has_body_method(req.method)) {
        set_opt(e, CURLOPT_READFUNCTION, read_cb);
        set_opt(e, CURLOPT_READDATA, static_cast<void *>(&t));
        set_opt(e, CURLOPT_SEEKFUNCTION, seek_cb);
        set_opt(e, CURLOPT_SEEKDATA, static_cast<void *>(&t));
        // No "Expect: 100-continue": it adds a round trip (or a 1 s wait with servers that ignore it) per
        // upload, and a rejected upload is simply resent by the caller.
        append("Expect:");
        if (!has_content_type)
            append("Content-Type:");  // curl would otherwise label POST bodies as a form
    }
    if (t.header_list)
        set_opt(e, CURLOPT_HTTPHEADER, t.header_list);
}

}  // namespace

// Step 6: hand the configured handle to the multi; from here on curl drives it.
void HttpClient::State::add_to_multi(Transfer &t) {
    AsyncSignalsBlocked blocked;
    CURLMcode mc = curl_multi_add_handle(multi, t.easy);
    check_multi(mc, "curl_multi_add_handle");
    t.in_multi = true;
}

TransferId HttpClient::start(HttpRequest request) {
    State &st = *state_;
    auto t = std::make_unique<Transfer>();
    t->state = &st;
    t->id = st.next_id++;
    t->started = std::chrono::steady_clock::now();

    validate_request(request);
    resolve_target(*t, request, st.opts.allow_http_loopback);

    t->req = std::move(request);
    t->resp.id = t->id;
    t->resp.tag = t->req.tag;
    t->resp.method = t->req.method;
    t->resp.endpoint = t->endpoint;

    Transfer &tr = *t;
    TransferId id = t->id;
    st.running.emplace(id, std::move(t));

    // Local files: failures here complete the transfer at once, without traffic.
    CURLcode file_failure = CURLE_OK;
    if (!open_local_files(tr, file_failure)) {
        st.complete(tr, file_failure);
        return id;
    }
    try {
        set_easy_options(tr, st.opts, st.user_agent);
        set_headers_and_body(tr);
        st.add_to_multi(tr);
    } catch (...) {
        st.running.erase(id);
        throw;
    }
    return id;
}

bool HttpClient::cancel(TransferId id) {
    State &st = *state_;
    auto it = st.running.find(id);
    if (it == st.running.end())
        return false;
    Transfer &t = *it->second;
    t.fail(TransferError::Cancelled, "cancelled by the caller");
    st.complete(t, CURLE_ABORTED_BY_CALLBACK);
    return true;
}

std::size_t HttpClient::poll(int max_wait_ms) {
    State &st = *state_;
    if (st.running.empty())
        return 0;
    const std::size_t done_before = st.completed.size();
    st.perform();
    st.collect();
    st.check_stop();
    if (st.running.empty() || st.completed.size() > done_before)
        return st.running.size();
    // Waits with signals deliverable: curl_multi_poll starts no threads.
    st.check_multi(curl_multi_poll(st.multi, nullptr, 0, std::max(0, max_wait_ms), nullptr),
                   "curl_multi_poll");
    st.perform();
    st.collect();
    st.check_stop();
    return st.running.size();
}

std::vector<WatchedSocket> HttpClient::watched_sockets() const {
    std::vector<WatchedSocket> out;
    out.reserve(state_->sockets.size());
    for (const auto &[fd, what] : state_->sockets) {
        WatchedSocket w;
        w.fd = static_cast<int>(fd);
        w.want_read = what == CURL_POLL_IN || what == CURL_POLL_INOUT;
        w.want_write = what == CURL_POLL_OUT || what == CURL_POLL_INOUT;
        out.push_back(w);
    }
    return out;
}

long HttpClient::timeout_ms() const {
    const State &st = *state_;
    long from_timer = -1;
    if (st.timer_deadline) {
        auto left = std::chrono::ceil<std::chrono::milliseconds>(*st.timer_deadline -
                                                                 std::chrono::steady_clock::now());
        from_timer = std::max<long>(0, static_cast<long>(left.count()));
    }
    // curl_multi_timeout is authoritative (curl calls the timer callback only when the value changes);
    // the smaller of the two never loses a timer.
    long from_curl = -1;
    if (curl_multi_timeout(st.multi, &from_curl) != CURLM_OK)
        from_curl = -1;
    if (from_timer < 0)
        return from_curl;
    if (from_curl < 0)
        return from_timer;
    return std::min(from_timer, from_curl);
}

void HttpClient::on_socket_ready(int fd, bool readable, bool writable) {
    State &st = *state_;
    int flags = (readable ? CURL_CSELECT_IN : 0) | (writable ? CURL_CSELECT_OUT : 0);
    st.socket_action(static_cast<curl_socket_t>(fd), flags);
    st.collect();
    st.check_stop();
}

void HttpClient::on_timeout() {
    State &st = *state_;
    if (st.timer_deadline && *st.timer_deadline <= std::chrono::steady_clock::now())
        st.timer_deadline.reset();  // consumed; curl sets a new one through the callback if needed
    st.socket_action(CURL_SOCKET_TIMEOUT, 0);
    st.collect();
    st.check_stop();
}

std::vector<HttpResponse> HttpClient::take_completed() {
    state_->collect();  // normally empty already: every drive call drains curl's message queue
    std::vector<HttpResponse> out;
    out.swap(state_->completed);
    return out;
}

std::size_t HttpClient::active() const {
    return state_->running.size();
}

}  // namespace sfb
