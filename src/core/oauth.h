// OAuth 2.0 against the Salesforce token endpoint (docs/bulk-api-2.md §3): credential options and their
// rules, token-request building (form body, HTTP Basic, JWT bearer assertion signed with RS256), and parsing
// of the success and error answers. No I/O: the transport sends the TokenRequest and hands the answer back.
//
// Secrets (kSecretOptionNames, the access token, the JWT assertion) never appear in an exception message or a
// debug string produced here; tests check this.
#pragma once
#include "core/core_only.h"

#include "core/error.h"
#include "core/redact.h"

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

struct evp_pkey_st;  // OpenSSL's EVP_PKEY, kept out of this header

namespace sfb {

// ---- flows and options ----

enum class AuthFlow { Password, ClientCredentials, Jwt, RefreshToken, AccessToken };

// Option values of `auth`: "password", "client_credentials", "jwt", "refresh_token", "access_token".
std::optional<AuthFlow> parse_auth_flow(std::string_view name);
std::string_view to_string(AuthFlow flow);

// The option naming the flow.
inline constexpr std::string_view kAuthOption = "auth";

// Which options are secret (kSecretOptionNames, is_secret_option) is redact.h's, the one place for it.

// Every credential option understood (auth, client_id, client_secret, username, password, private_key,
// refresh_token, access_token, jwt_audience).
// The lists live for the whole process and are never destroyed (heap-allocated once, deliberately leaked):
// the module must not own static objects whose destructors run from exit() (docs/architecture.md §5).
const std::vector<std::string_view> &credential_option_names();

// The single source of truth for which options a flow needs and accepts:
//   password            required client_id, client_secret, username, password
//   client_credentials  required client_id, client_secret
//   jwt                 required client_id, username, private_key; optional jwt_audience
//   refresh_token       required client_id, refresh_token; optional client_secret
//   access_token        required access_token
// Any other credential option is "not allowed" for the flow (e.g. a password given with jwt is refused rather
// than silently ignored, so a user never believes a secret is in use when it is not).
const std::vector<std::string_view> &required_options(AuthFlow flow);
const std::vector<std::string_view> &optional_options(AuthFlow flow);

using OptionMap = std::map<std::string, std::string, std::less<>>;

struct CredentialIssue {
    enum class Kind {
        MissingAuth,    // no `auth` option (only from the map-only overload)
        UnknownFlow,    // `auth` has an unknown value
        MissingOption,  // a required option is absent
        NotAllowed,     // a credential option that this flow does not use
        UnknownOption,  // not a credential option at all
        EmptyValue,     // present but empty
        InvalidValue,   // e.g. private_key is not a PEM RSA private key; jwt_audience not an https URL
    };
    Kind kind;
    std::string option;   // the option concerned ("auth" for the flow problems)
    std::string message;  // complete, user-facing; never contains a secret value
};

// Checks an option set against the rules above. `options` may contain `auth` (ignored by this overload).
// Returns all issues, in a stable order: unknown, not allowed, empty, missing, invalid. Empty = valid.
std::vector<CredentialIssue> validate_credentials(AuthFlow flow, const OptionMap &options);
// Reads the flow from options["auth"].
std::vector<CredentialIssue> validate_credentials(const OptionMap &options);

// ---- credentials ----

struct Credentials {
    AuthFlow flow = AuthFlow::AccessToken;
    // Token endpoint base (server option login_url), e.g. https://login.salesforce.com, a My Domain URL, or
    // the emulator. For the access_token flow it is also the instance URL (no token call tells us another).
    std::string login_url;
    std::string client_id;
    std::string client_secret;  // secret
    std::string username;
    std::string password;       // secret
    std::string private_key;    // secret, PEM
    std::string refresh_token;  // secret
    std::string access_token;   // secret
    std::string jwt_audience;   // optional override of jwt_audience_for()
    // Send client_id/client_secret as HTTP Basic instead of in the body. Defaults to true for
    // client_credentials (as Salesforce's example does), false otherwise.
    bool client_auth_basic = false;
};

// Builds Credentials from options (user mapping) plus the server's login_url. Throws sfb::Error
// with every issue of validate_credentials joined by "; " (never echoing a secret).
Credentials credentials_from_options(const OptionMap &options, std::string login_url);

// "flow=jwt login_url=https://login.salesforce.com client_id=3MVG... username=etl@acme.com
// private_key=<redacted>" Safe for logs: secrets are shown as <redacted> (or <empty>).
std::string describe(const Credentials &c);

// redact.h's redact_secrets over every secret of `c` (and, as a second line of defence, the access token
// `extra_secret` when given). For messages that embed text we did not write (server error descriptions).
std::string redact_secrets(std::string text, const Credentials &c, std::string_view extra_secret = {});

// ---- encoding helpers (exposed for the emulator-facing tests and the transport) ----

// application/x-www-form-urlencoded component: keeps A-Z a-z 0-9 - . _ ~, everything else %XX (upper-case
// hex), space as %20 rather than '+' — decoded identically by every form parser, and unambiguous for '+' in
// secrets.
std::string form_urlencode(std::string_view value);
std::string form_body(const std::vector<std::pair<std::string, std::string>> &params);
std::string base64_encode(std::string_view bytes);     // standard alphabet, padded
std::string base64url_encode(std::string_view bytes);  // URL alphabet, no padding (JWT)
// Decodes base64url with or without padding; throws sfb::Error(InvalidParameter) on bad input (message
// without the input).
std::string base64url_decode(std::string_view text);

// ---- JWT bearer ----

// An RSA private key loaded from PEM (PKCS#8 "BEGIN PRIVATE KEY" or traditional "BEGIN RSA PRIVATE KEY").
// Encrypted keys are refused (there is no passphrase option and we never prompt).
class RsaPrivateKey {
  public:
    // Throws sfb::Error(InvalidParameter, "private_key is not a valid PEM RSA private key") or a more
    // specific message; never includes the key text.
    static RsaPrivateKey from_pem(std::string_view pem);
    // RSASSA-PKCS1-v1_5 with SHA-256 over `data`; raw signature bytes.
    std::string sign_rs256(std::string_view data) const;
    int bits() const;

  private:
    explicit RsaPrivateKey(evp_pkey_st *key);
    std::shared_ptr<evp_pkey_st> key_;
};

// True when `pem` parses as an RSA private key (used by validate_credentials).
bool is_valid_rsa_private_key_pem(std::string_view pem);

// JWT audience rule (explicit, host compared case-insensitively):
//   login.salesforce.com                               -> https://login.salesforce.com
//   test.salesforce.com                                -> https://test.salesforce.com
//   *.sandbox.my.salesforce.com, *.scratch.my.salesforce.com, and legacy sandbox My Domains whose first label
//   contains "--" (acme--uat.my.salesforce.com)        -> https://test.salesforce.com
//   any other *.my.salesforce.com (production My Domain, Developer Edition, ...)
//                                                      -> https://login.salesforce.com
//     (§2.3: a My Domain URL is not a valid audience, so we map it to the one Salesforce accepts)
//   anything else (the emulator on 127.0.0.1, an Experience Cloud site, a gov-cloud host)
//                                                      -> login_url as given, without trailing slashes
// Credentials::jwt_audience, when set, wins over the rule.
std::string jwt_audience_for(std::string_view login_url);

// Default and maximum assertion lifetime: Salesforce accepts exp at most ~3 minutes ahead (§2.3).
inline constexpr std::chrono::seconds kJwtLifetime{180};

// Builds the signed assertion header.claims.signature: header {"alg":"RS256"}, claims iss=client_id,
// sub=username, aud=(override or jwt_audience_for(login_url)), exp=now+lifetime as a JSON number.
std::string build_jwt_assertion(const Credentials &c, std::chrono::system_clock::time_point now,
                                std::chrono::seconds lifetime = kJwtLifetime);

// ---- token request ----

inline constexpr std::string_view kTokenPath = "/services/oauth2/token";

struct TokenRequest {
    std::string url;   // login_url (trailing slashes removed) + kTokenPath
    std::string body;  // form-urlencoded; contains secrets
    // Content-Type, Accept and, for Basic client authentication, Authorization (secret).
    std::vector<std::pair<std::string, std::string>> headers;

    // "POST https://login.salesforce.com/services/oauth2/token grant_type=password" — for logs; no secret.
    std::string describe() const;
};

bool needs_token_request(AuthFlow flow);  // false only for access_token

// Throws sfb::Error(InvalidParameter) for the access_token flow (it makes no call) or invalid credentials.
// `now` is only used by the JWT flow.
TokenRequest build_token_request(const Credentials &c, std::chrono::system_clock::time_point now);

// ---- token response ----

struct TokenResponse {
    std::string access_token;  // secret
    std::string instance_url;  // without trailing slash
    std::string id_url;        // identity URL, may be empty
    std::string org_id;        // parsed from id_url (.../id/{orgId}/{userId}); empty if absent/malformed
    std::string user_id;
    std::string token_type;
    std::string scope;
    std::optional<std::string> issued_at;  // milliseconds since the epoch, as sent (string)
    std::optional<std::string> signature;
};

// Parses a 200 answer. Throws OAuthError (status 200, error "invalid_token_response") when the body is not
// JSON, not an object, or lacks access_token/instance_url. The message never quotes the body.
TokenResponse parse_token_response(std::string_view body);

// The access_token flow's "response": the configured token and login_url as the instance URL.
TokenResponse static_token_response(const Credentials &c);

// A failed token call.
class OAuthError : public Error {
  public:
    OAuthError(int http_status, std::string error, std::string description);
    int http_status() const { return http_status_; }
    const std::string &error() const { return error_; }
    const std::string &description() const { return description_; }
    // Only transient failures (5xx, 420, 429, transport) are worth retrying; invalid_grant and friends never
    // are (§2.6).
    bool retryable() const;

  private:
    int http_status_;
    std::string error_;
    std::string description_;
};

// Interprets a non-200 answer: {"error":..,"error_description":..} gives "<error>: <error_description>"
// verbatim; anything else (HTML from a proxy, empty, an API-style array) gives "token endpoint returned HTTP
// <status>" with error "http_<status>". The body itself is never quoted beyond those two members, and the
// members pass through redact_secrets when credentials are given.
OAuthError parse_token_error(int http_status, std::string_view body, const Credentials *c = nullptr);

}  // namespace sfb
