// The HTTP transport of the core: a non-blocking multi-transfer client around libcurl's multi interface
// (docs/architecture.md §8, docs/platform.md §4).
//
// Why it looks like this:
// - The worker must never block longer than a fraction of a second without servicing its latch and
//   interrupts, so nothing here blocks except poll(max_wait_ms), and only for the time the caller allows.
// - The worker waits on a WaitEventSet, not in curl, so the client exposes the sockets and the timeout curl
//   wants (socket-action style) and is driven with on_socket_ready()/on_timeout().
// - Callbacks run inside libcurl's C frames: they are noexcept, touch only the transfer record, store the
//   reason of a failure there and return curl's abort value. Nothing in this file calls PostgreSQL.
// - The transport reports outcomes; retry.h decides what to do with them (to_attempt_outcome()).
// - Secrets: error messages name the endpoint (method, origin, path; never the query) and are scrubbed of the
//   Authorization/Cookie values, secret-named query parameters and every string in HttpRequest::secrets
//   (redact.h decides what is secret). Bodies are never logged.
//
// Threads: the client creates none. libcurl's threaded resolver starts one short-lived thread per host-name
// lookup (not for IP literals); it only runs getaddrinfo and never calls our code. The client blocks
// asynchronous signals around every libcurl call that can start one, so such threads are born with all
// signals blocked and PostgreSQL's signal handlers keep running on the worker's own thread.
#pragma once
#include "core/core_only.h"

#include "core/http_types.h"
#include "core/retry.h"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sfb {

// Sent as the user agent "sf_bulk/<version>". Keep equal to default_version in sf_bulk.control.
inline constexpr std::string_view kSfBulkVersion = "1.4";

// curl_global_init/curl_global_cleanup. The client never calls them itself: the worker calls init once at
// start (not in _PG_init, which runs in the postmaster) and cleanup in its exit callback, with no client
// alive. init throws sfb::Error(Internal) when libcurl cannot initialise.
void http_global_init();
void http_global_cleanup() noexcept;

// "GET", "POST", "PUT", "PATCH", "DELETE" (http_types.h; retry.h decides idempotency by the same enum).
std::string_view method_name(HttpMethod m);

// Response header names the protocol reads (docs/bulk-api-2.md §2.3). Lookups are case-insensitive.
inline constexpr std::string_view kHeaderSforceLimitInfo = "Sforce-Limit-Info";
inline constexpr std::string_view kHeaderRetryAfter = "Retry-After";
inline constexpr std::string_view kHeaderSforceLocator = "Sforce-Locator";
inline constexpr std::string_view kHeaderSforceNumberOfRecords = "Sforce-NumberOfRecords";
inline constexpr std::string_view kHeaderContentType = "Content-Type";

// Response headers in arrival order. Names keep their case; get() compares case-insensitively (HTTP/2
// delivers lower-case names, HTTP/1.1 servers whatever they like).
class HttpHeaders {
  public:
    void add(std::string name, std::string value);
    // Obsolete line folding: appends " more" to the last header's value (no-op when there is none).
    void append_to_last(std::string_view more);
    // The first header with that name, or nullopt.
    std::optional<std::string> get(std::string_view name) const;
    const std::vector<std::pair<std::string, std::string>> &all() const { return items_; }
    bool empty() const { return items_.empty(); }
    void clear() { items_.clear(); }

  private:
    std::vector<std::pair<std::string, std::string>> items_;
};

// Timeouts of one request. API calls: connect + total. Big uploads/downloads: connect + low-speed limit and
// no total timeout, so a slow-but-alive 100 MB transfer survives while a stalled one dies.
struct HttpTimeouts {
    std::chrono::milliseconds connect{10000};
    std::chrono::milliseconds total{60000};  // 0 = no total timeout
    // Abort when fewer than `low_speed_bytes_per_second` bytes/s flow (either direction) for
    // `low_speed_window`. 0 / 0 s = off. curl measures in whole seconds.
    long low_speed_bytes_per_second = 0;
    std::chrono::seconds low_speed_window{0};

    static HttpTimeouts api_call() { return HttpTimeouts{}; }
    static HttpTimeouts bulk_transfer() {
        HttpTimeouts t;
        t.total = std::chrono::milliseconds(0);
        t.low_speed_bytes_per_second = 1024;
        t.low_speed_window = std::chrono::seconds(60);
        return t;
    }
};

struct HttpRequest {
    HttpMethod method = HttpMethod::Get;
    std::string url;  // absolute; https (http only to loopback when the client allows it); no user info
    std::vector<std::pair<std::string, std::string>> headers;  // e.g. {"Authorization", "Bearer ..."}

    // Request body: at most one of the two. Content-Length is always sent (never chunked). Give a
    // Content-Type header with a body; without one none is sent.
    std::optional<std::string> body;  // from memory: JSON, form
    std::string body_file;            // streamed from this regular file; Content-Length = its size at start()

    // Response sink. Without `response_file` the body is kept in memory up to `max_response_bytes`
    // (decoded size); more fails the transfer with BodyTooLarge. With `response_file` a 2xx body is written
    // to that file as it arrives (created or truncated at start(), mode 0600; its content means something
    // only when the response is success()); a non-2xx body (a Salesforce error) goes to `body` instead,
    // truncated to kMaxErrorBodyBytes.
    std::string response_file;
    std::size_t max_response_bytes = 16u * 1024 * 1024;

    HttpTimeouts timeouts;

    // Whether sending this request twice is harmless; default bulk_method_is_idempotent(method) (retry.h).
    // A non-idempotent request always opens a fresh connection: when a reused keep-alive connection dies
    // before any response byte, libcurl silently resends the request on a new one, which could create a
    // second job or a second upload. On a fresh connection the failure is reported instead, and
    // request_started/request_fully_sent let the retry policy reconcile.
    std::optional<bool> idempotent;

    // Extra values scrubbed from error messages and debug output besides the Authorization value (the token
    // request's client_secret, password, assertion...).
    std::vector<std::string> secrets;

    std::string tag;  // opaque, returned with the response
};

// Error bodies kept when the 2xx body goes to a file; response header section limit.
inline constexpr std::size_t kMaxErrorBodyBytes = 64 * 1024;
inline constexpr std::size_t kMaxResponseHeaderBytes = 64 * 1024;

// How a transfer failed below HTTP. Finer than http_types.h's TransportError; to_transport_error() maps it.
enum class TransferError {
    None,               // a complete HTTP response arrived (any status)
    ResolveFailed,      // host name did not resolve
    ConnectFailed,      // TCP connect refused / unreachable
    Timeout,            // connect, total or low-speed timeout (a stall)
    ConnectionDropped,  // reset, EOF or truncated body after the connection was up
    TlsError,           // handshake, certificate or CA file problem
    ProtocolRefused,    // scheme not allowed (http to a non-loopback host, or loopback http not enabled)
    BodyTooLarge,       // response body above max_response_bytes, or header section above its limit
    LocalFileError,     // body_file / response_file could not be opened, read or written
    Cancelled,          // cancel() or the should-stop callback
    Other,              // anything else libcurl reports; the message names it
};
std::string_view to_string(TransferError e);
// ProtocolRefused, BodyTooLarge and LocalFileError become Other (not retried: resending cannot fix them).
TransportError to_transport_error(TransferError e);

using TransferId = std::uint64_t;

struct HttpResponse {
    TransferId id = 0;
    std::string tag;
    HttpMethod method = HttpMethod::Get;
    std::string endpoint;  // "POST http://127.0.0.1:8080/services/oauth2/token": no query, no user info

    int status = 0;  // last HTTP status received, 0 if none; meaningful as an outcome only when ok()
    HttpHeaders headers;
    std::string body;              // memory sink, or the (bounded) error body with a file sink
    bool body_truncated = false;   // error body cut at kMaxErrorBodyBytes (file sink only)
    std::uint64_t body_bytes = 0;  // decoded body bytes delivered to the sink (memory or file)
    std::uint64_t bytes_sent = 0;  // request body bytes handed to the network

    TransferError error = TransferError::None;
    std::string error_message;  // names the endpoint; never a credential
    // For the retry policy: request_started = some byte of the request may have reached the server
    // (errs towards true); request_fully_sent = every header and body byte was handed to the network.
    bool request_started = false;
    bool request_fully_sent = false;

    std::chrono::milliseconds total_time{0};  // from start() to completion

    bool ok() const { return error == TransferError::None; }
    bool success() const { return ok() && status >= 200 && status < 300; }
    std::optional<std::string> header(std::string_view name) const { return headers.get(name); }
};

// Feeds RetryPolicy::decide(): transport kind, request_sent (= request_started), status when ok(), and
// Retry-After. error_code/error_message are the caller's to fill from the body (bulk_api.h parsers).
AttemptOutcome to_attempt_outcome(const HttpResponse &r);

// Returns true when running transfers must be aborted (shutdown, cancel). Called from curl's progress
// callback and after every drive call, so it must be cheap, must not throw and must not call PostgreSQL
// functions that can fail: read a flag.
using ShouldStopFn = bool (*)() noexcept;

struct HttpClientOptions {
    // Permit plain http, only to loopback hosts (the emulator). From a superuser-only setting.
    bool allow_http_loopback = false;
    // CA bundle for TLS peer verification (the emulator's test CA); empty = system default. Verification of
    // peer and host is always on: there is deliberately no switch to disable it.
    std::string ca_file;
    std::string version = std::string(kSfBulkVersion);  // user agent "sf_bulk/<version>"
    ShouldStopFn should_stop = nullptr;
    // 0 = unlimited. Caps parallel connections to one host (Salesforce limits concurrent long requests).
    long max_connections_per_host = 0;
    // Verbose curl trace, one redacted line per call; off when empty. Authorization/Cookie header values,
    // request secrets and secret-named query parameters are replaced; bodies are shown only as sizes.
    std::function<void(std::string_view)> debug_log;
};

// One file descriptor curl wants watched, for an external event loop.
struct WatchedSocket {
    int fd = -1;
    bool want_read = false;
    bool want_write = false;
};

// Not thread-safe: one thread drives a client. Not copyable or movable (curl holds pointers into it).
//
// Worker loop, socket-action style (preferred):
//     id = client.start(req);                      // curl arms its timer: timeout_ms() becomes 0
//     loop:
//         wait on latch + client.watched_sockets() with timeout min(client.timeout_ms(), own deadline)
//         for each ready socket: client.on_socket_ready(fd, readable, writable)
//         if the timeout elapsed (or timeout_ms() == 0): client.on_timeout()
//         for (auto &r : client.take_completed()) record the outcome
//     Rebuild the wait set every round: curl adds and removes sockets as connections come and go.
// Simple style: while (client.active() > 0) { client.poll(100); handle client.take_completed(); }
// Do not mix the two styles on one client. Never call the client from inside debug_log or should_stop.
class HttpClient {
  public:
    explicit HttpClient(HttpClientOptions options = {});
    ~HttpClient();  // aborts running transfers (no completion is reported for them)
    HttpClient(const HttpClient &) = delete;
    HttpClient &operator=(const HttpClient &) = delete;

    // Queues a transfer. Throws sfb::Error(InvalidParameter) for a request that can never work (malformed
    // URL, user info in it, two bodies, CR/LF in a header) and sfb::Error(Internal) when libcurl refuses.
    // Everything else, including a refused scheme or an unreadable body_file, completes as a failed
    // transfer through take_completed(), without network traffic.
    TransferId start(HttpRequest request);

    // Aborts a running transfer; it completes as Cancelled. False when `id` is not running.
    bool cancel(TransferId id);

    // (a) Let curl work, waiting at most `max_wait_ms` for network activity. Returns at once when nothing is
    // running or something completed. Returns the number of running transfers.
    std::size_t poll(int max_wait_ms);

    // (b) Socket-action style. The sockets curl wants watched now, and how long until on_timeout() is due
    // (-1 = no timer, 0 = now).
    std::vector<WatchedSocket> watched_sockets() const;
    long timeout_ms() const;
    void on_socket_ready(int fd, bool readable, bool writable);
    void on_timeout();

    // Completed transfers since the last call, in completion order.
    std::vector<HttpResponse> take_completed();

    std::size_t active() const;  // transfers started and not yet completed

    struct State;  // implementation (http.cpp)

  private:
    std::unique_ptr<State> state_;
};

}  // namespace sfb
