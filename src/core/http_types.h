// The two HTTP vocabulary types shared by the transport (http.h), the retry policy (retry.h) and the job
// machines: which method a request uses and how an attempt failed below HTTP. Kept apart so that code
// describing a request needs neither libcurl's client nor the policy.
#pragma once
#include "core/core_only.h"

#include <string_view>

namespace sfb {

// The methods Bulk API 2.0 and the OAuth endpoints use. Whether one may be sent twice is the retry policy's
// call: bulk_method_is_idempotent (retry.h).
enum class HttpMethod { Get, Post, Put, Patch, Delete };

// How an attempt failed below HTTP. `None` means a complete HTTP response (status line and body) arrived.
// http.h's finer TransferError maps onto it (to_transport_error).
enum class TransportError {
    None,
    ResolveFailed,      // DNS: transient more often than not in containers; retried
    ConnectFailed,      // TCP connect refused/unreachable: the request never left; retried
    Timeout,            // connect, total or low-speed timeout
    ConnectionDropped,  // reset/EOF/truncated body after the connection was up
    TlsError,           // handshake or certificate failure: retrying cannot fix a trust problem
    Cancelled,          // we aborted it (interrupt, shutdown): never retried by policy
    Other,              // anything else libcurl reports: not retried, the message names it
};
std::string_view to_string(TransportError e);  // "could not connect", "timed out", ...

}  // namespace sfb
