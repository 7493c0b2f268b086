// The one place that decides what is secret and how it is hidden in text sf_bulk writes (error messages,
// job errors, debug traces). Three kinds of secret:
//  - values: every credential the caller holds (options of kSecretOptionNames, access tokens, a token
//    request's form body) is replaced by kRedacted wherever it occurs — used for messages that embed text we
//    did not write (a login server's error description, libcurl's error buffer);
//  - secret-named query parameters (?access_token=...): their values;
//  - credential header values (Authorization, Cookie, ...).
// Bodies are never shown at all (callers log sizes only), so nothing here looks into them.
#pragma once
#include "core/core_only.h"

#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace sfb {

inline constexpr std::string_view kRedacted = "<redacted>";

// Every option whose value is secret. The one list used for redaction everywhere (FDW option display, logs,
// error text, query parameters).
inline constexpr std::array<std::string_view, 5> kSecretOptionNames = {
    "password", "client_secret", "private_key", "refresh_token", "access_token"};
bool is_secret_option(std::string_view name);

// Header names whose values are credentials or session state (case-insensitive): Authorization,
// Proxy-Authorization, Cookie, Set-Cookie.
bool is_secret_header(std::string_view name);

// Replaces known secret values. Longest first, so a token is never half-replaced by a shorter secret it
// contains; empty values and values shorter than `min_length` are ignored.
class Redactor {
  public:
    explicit Redactor(std::vector<std::string> values = {}, std::size_t min_length = 1);
    void add(std::string value);  // keeps the longest-first order
    std::string apply(std::string text) const;
    bool empty() const { return values_.empty(); }

  private:
    std::vector<std::string> values_;
    std::size_t min_length_;
};

// Server text (an error description we did not write) is redacted against values of at least this length:
// a real secret is longer, and very short "secrets" would redact ordinary words.
inline constexpr std::size_t kMinSecretLengthInServerText = 4;

// `text` with every occurrence of each secret (>= kMinSecretLengthInServerText characters) replaced.
std::string redact_secrets(std::string text, const std::vector<std::string_view> &secrets);

// "name=value&..." with the value of every secret-named parameter (is_secret_option) replaced.
std::string redact_query(std::string_view query);
// The non-empty values of secret-named parameters of a query, to redact wherever else they may show up.
std::vector<std::string> secret_query_values(std::string_view query);

// One header line of a trace ("Name: value", or a request line "GET /path?query HTTP/1.1"): a credential
// header's value, or the secret query parameters of a request line, replaced.
std::string redact_header_line(std::string_view line);
// The secret values a request header carries: for a credential header, its value and the part after the
// scheme ("Bearer <token>" -> also "<token>"); nothing for other headers.
std::vector<std::string> secret_header_values(std::string_view name, std::string_view value);

}  // namespace sfb
