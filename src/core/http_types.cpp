#include "core/http_types.h"

namespace sfb {

std::string_view to_string(TransportError e) {
    switch (e) {
        case TransportError::None:
            return "none";
        case TransportError::ResolveFailed:
            return "could not resolve host";
        case TransportError::ConnectFailed:
            return "could not connect";
        case TransportError::Timeout:
            return "timed out";
        case TransportError::ConnectionDropped:
            return "connection dropped";
        case TransportError::TlsError:
            return "TLS error";
        case TransportError::Cancelled:
            return "cancelled";
        case TransportError::Other:
            return "other transport error";
    }
    return "unknown";
}

}  // namespace sfb
