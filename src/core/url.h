// Endpoint URLs as sf_bulk accepts them: where we log in and where the org lives. One parser, used by
// the FDW validator and by the HTTP transport, so both enforce the same https/loopback rule.
#pragma once
#include "core/core_only.h"

#include <string>
#include <string_view>

namespace sfb {

struct EndpointUrl {
    std::string scheme;  // "https" or "http"
    std::string host;    // lower-cased; IPv6 literals keep their brackets
    int port = 0;        // 0 when the URL names none
    std::string path;    // "" or starting with '/', without a trailing slash

    // scheme://host[:port] — the origin requests are sent to.
    std::string origin() const;
};

// True for hosts that can only mean this machine: localhost, 127.0.0.0/8 and [::1].
bool is_loopback_host(std::string_view host);

// Parses and checks an endpoint URL given as option `option_name`. Accepts https to any host and plain
// http only to a loopback host (the emulator); rejects user info, query strings and fragments. Throws
// sfb::Error(InvalidParameter) naming the option and what is expected.
EndpointUrl parse_endpoint_url(std::string_view option_name, std::string_view url);

}  // namespace sfb
