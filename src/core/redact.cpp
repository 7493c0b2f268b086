#include "core/redact.h"

#include <algorithm>
#include <cctype>
#include <utility>

namespace sfb {

namespace {

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) {
        return false;
    }
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (std::tolower(static_cast<unsigned char>(a[i])) !=
            std::tolower(static_cast<unsigned char>(b[i]))) {
            return false;
        }
    }
    return true;
}

// Header text as traces deliver it: blanks before, blanks and line ends after.
std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
        s.remove_suffix(1);
    }
    return s;
}

void replace_all(std::string &s, std::string_view what, std::string_view with) {
    if (what.empty()) {
        return;
    }
    for (std::size_t pos = s.find(what); pos != std::string::npos; pos = s.find(what, pos)) {
        s.replace(pos, what.size(), with);
        pos += with.size();
    }
}

// Calls `each(name, value, has_value)` for every "name=value" part of a query.
template <typename Fn>
void for_each_param(std::string_view query, Fn each) {
    std::size_t pos = 0;
    for (;;) {
        const std::size_t amp = query.find('&', pos);
        const std::string_view part =
            query.substr(pos, amp == std::string_view::npos ? std::string_view::npos : amp - pos);
        const std::size_t eq = part.find('=');
        if (eq == std::string_view::npos) {
            each(part, std::string_view{}, false);
        } else {
            each(part.substr(0, eq), part.substr(eq + 1), true);
        }
        if (amp == std::string_view::npos) {
            return;
        }
        pos = amp + 1;
    }
}

}  // namespace

bool is_secret_option(std::string_view name) {
    return std::find(kSecretOptionNames.begin(), kSecretOptionNames.end(), name) != kSecretOptionNames.end();
}

bool is_secret_header(std::string_view name) {
    return iequals(name, "authorization") || iequals(name, "proxy-authorization") ||
           iequals(name, "cookie") || iequals(name, "set-cookie");
}

Redactor::Redactor(std::vector<std::string> values, std::size_t min_length) : min_length_(min_length) {
    for (std::string &v : values) {
        add(std::move(v));
    }
}

void Redactor::add(std::string value) {
    if (value.empty() || value.size() < min_length_) {
        return;
    }
    const auto at =
        std::upper_bound(values_.begin(), values_.end(), value,
                         [](const std::string &a, const std::string &b) { return a.size() > b.size(); });
    values_.insert(at, std::move(value));
}

std::string Redactor::apply(std::string text) const {
    for (const std::string &v : values_) {
        replace_all(text, v, kRedacted);
    }
    return text;
}

std::string redact_secrets(std::string text, const std::vector<std::string_view> &secrets) {
    return Redactor(std::vector<std::string>(secrets.begin(), secrets.end()), kMinSecretLengthInServerText)
        .apply(std::move(text));
}

std::string redact_query(std::string_view query) {
    std::string out;
    bool first = true;
    for_each_param(query, [&](std::string_view name, std::string_view value, bool has_value) {
        if (!first) {
            out += '&';
        }
        first = false;
        out += name;
        if (has_value) {
            out += '=';
            out += is_secret_option(name) ? kRedacted : value;
        }
    });
    return out;
}

std::vector<std::string> secret_query_values(std::string_view query) {
    std::vector<std::string> out;
    for_each_param(query, [&](std::string_view name, std::string_view value, bool) {
        if (!value.empty() && is_secret_option(name)) {
            out.emplace_back(value);
        }
    });
    return out;
}

std::string redact_header_line(std::string_view line) {
    const std::size_t colon = line.find(':');
    if (colon != std::string_view::npos && is_secret_header(trim(line.substr(0, colon)))) {
        return std::string(line.substr(0, colon)) + ": " + std::string(kRedacted);
    }
    const std::size_t q = line.find('?');
    if (q != std::string_view::npos && line.find(" HTTP/") != std::string_view::npos) {
        // Request line "GET /path?query HTTP/1.1".
        const std::size_t end = line.find(' ', q);
        return std::string(line.substr(0, q + 1)) + redact_query(line.substr(q + 1, end - q - 1)) +
               std::string(line.substr(end));
    }
    return std::string(line);
}

std::vector<std::string> secret_header_values(std::string_view name, std::string_view value) {
    std::vector<std::string> out;
    if (!is_secret_header(name) || value.empty()) {
        return out;
    }
    out.emplace_back(value);
    const std::size_t sp = value.find(' ');
    if (sp != std::string_view::npos && sp + 1 < value.size()) {
        out.emplace_back(value.substr(sp + 1));  // the token without "Bearer "
    }
    return out;
}

}  // namespace sfb
