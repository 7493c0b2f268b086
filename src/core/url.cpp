#include "core/url.h"

#include "core/error.h"

#include <algorithm>
#include <cctype>

namespace sfb {

namespace {

[[noreturn]] void bad_url(std::string_view option_name, std::string_view url, const std::string &why) {
    // URLs are not secrets, but a user may paste anything; keep the echo short.
    std::string shown(url.substr(0, 200));
    throw Error(ErrorKind::InvalidParameter,
                "invalid value for option \"" + std::string(option_name) + "\": \"" + shown + "\" " + why);
}

bool is_host_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
}

bool is_ipv4_loopback(std::string_view host) {
    // 127.x.y.z with four decimal octets.
    int octets = 0;
    size_t pos = 0;
    while (pos <= host.size()) {
        size_t dot = host.find('.', pos);
        std::string_view part =
            host.substr(pos, dot == std::string_view::npos ? std::string_view::npos : dot - pos);
        if (part.empty() || part.size() > 3 ||
            !std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; }))
            return false;
        int value = std::stoi(std::string(part));
        if (value > 255 || (octets == 0 && value != 127))
            return false;
        ++octets;
        if (dot == std::string_view::npos)
            break;
        pos = dot + 1;
    }
    return octets == 4;
}

}  // namespace

std::string EndpointUrl::origin() const {
    std::string out = scheme + "://" + host;
    if (port != 0)
        out += ":" + std::to_string(port);
    return out;
}

bool is_loopback_host(std::string_view host) {
    return host == "localhost" || host == "[::1]" || is_ipv4_loopback(host);
}

EndpointUrl parse_endpoint_url(std::string_view option_name, std::string_view url) {
    EndpointUrl out;
    size_t sep = url.find("://");
    if (sep == std::string_view::npos)
        bad_url(option_name, url, "is not a URL; expected https://host[:port]");
    out.scheme = std::string(url.substr(0, sep));
    std::transform(out.scheme.begin(), out.scheme.end(), out.scheme.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (out.scheme != "https" && out.scheme != "http")
        bad_url(option_name, url, "has an unsupported scheme; expected https://");

    std::string_view rest = url.substr(sep + 3);
    size_t path_start = rest.find('/');
    std::string_view authority = rest.substr(0, path_start);
    std::string_view path =
        path_start == std::string_view::npos ? std::string_view() : rest.substr(path_start);
    if (authority.find('@') != std::string_view::npos)
        bad_url(option_name, url,
                "must not contain user information; credentials belong in the user mapping");
    if (rest.find_first_of("?#") != std::string_view::npos)
        bad_url(option_name, url, "must not contain a query string or fragment");
    if (rest.find_first_of(" \t\r\n\\") != std::string_view::npos)
        bad_url(option_name, url, "must not contain whitespace or backslashes");

    std::string_view host;
    std::string_view port;
    if (!authority.empty() && authority.front() == '[') {
        size_t close = authority.find(']');
        if (close == std::string_view::npos)
            bad_url(option_name, url, "has an unterminated IPv6 address");
        host = authority.substr(0, close + 1);
        std::string_view after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':')
                bad_url(option_name, url, "has junk after the IPv6 address");
            port = after.substr(1);
        }
    } else {
        size_t colon = authority.find(':');
        host = authority.substr(0, colon);
        if (colon != std::string_view::npos)
            port = authority.substr(colon + 1);
        if (host.empty() || !std::all_of(host.begin(), host.end(), is_host_char) || host.front() == '.' ||
            host.back() == '.' || host.find("..") != std::string_view::npos)
            bad_url(option_name, url, "has no valid host name");
    }
    out.host = std::string(host);
    std::transform(out.host.begin(), out.host.end(), out.host.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (!port.empty() || (authority.size() > host.size() && port.empty())) {
        if (port.empty() || port.size() > 5 ||
            !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }))
            bad_url(option_name, url, "has an invalid port");
        out.port = std::stoi(std::string(port));
        if (out.port < 1 || out.port > 65535)
            bad_url(option_name, url, "has a port outside 1-65535");
    }
    while (!path.empty() && path.back() == '/')
        path.remove_suffix(1);
    out.path = std::string(path);

    if (out.scheme == "http" && !is_loopback_host(out.host))
        bad_url(
            option_name, url,
            "uses plain http to a host that is not loopback; use https (http is only allowed for 127.0.0.1, "
            "localhost and [::1], e.g. the emulator)");
    return out;
}

}  // namespace sfb
