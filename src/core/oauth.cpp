#include "core/oauth.h"

#include "core/error.h"
#include "core/sf_names.h"

#include <algorithm>
#include <initializer_list>

#include <nlohmann/json.hpp>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

namespace sfb {

namespace {

constexpr std::string_view kInvalidPem =
    "option \"private_key\" is not a valid PEM RSA private key (PKCS#8 or PKCS#1, unencrypted)";
constexpr std::string_view kJwtGrant = "urn:ietf:params:oauth:grant-type:jwt-bearer";
constexpr std::string_view kFlowList = "password, client_credentials, jwt, refresh_token, access_token";
// Bound on text we copy from a server answer into an error message.
constexpr std::size_t kMaxServerText = 1000;

char lower(char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string to_lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), lower);
    return out;
}

bool ends_with(std::string_view s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool starts_with(std::string_view s, std::string_view prefix) {
    return s.substr(0, prefix.size()) == prefix;
}

std::string strip_trailing_slashes(std::string_view url) {
    while (!url.empty() && url.back() == '/') {
        url.remove_suffix(1);
    }
    return std::string(url);
}

// scheme://host[:port][/...] -> lower-cased host, or empty when the text is not such a URL.
std::string url_host(std::string_view url) {
    const std::size_t scheme_end = url.find("://");
    if (scheme_end == std::string_view::npos) {
        return {};
    }
    std::string_view rest = url.substr(scheme_end + 3);
    const std::size_t end = rest.find_first_of("/:?#");
    return to_lower(rest.substr(0, end));
}

bool is_http_url(std::string_view url) {
    const std::string l = to_lower(url.substr(0, 8));
    return (starts_with(l, "https://") || starts_with(l, "http://")) && !url_host(url).empty();
}

std::string truncate_server_text(std::string s) {
    if (s.size() > kMaxServerText) {
        s.resize(kMaxServerText);
        s += "...";
    }
    return s;
}

// Users paste PEM keys into SQL literals; without E'' strings the newlines arrive as the two characters "\n".
// Restore them so such a key still loads.
std::string normalize_pem(std::string_view pem) {
    std::string out(pem);
    if (out.find('\n') == std::string::npos && out.find("\\n") != std::string::npos) {
        std::string fixed;
        for (std::size_t i = 0; i < out.size(); ++i) {
            if (out[i] == '\\' && i + 1 < out.size() && out[i + 1] == 'n') {
                fixed += '\n';
                ++i;
            } else {
                fixed += out[i];
            }
        }
        out.swap(fixed);
    }
    return out;
}

struct PkeyDeleter {
    void operator()(EVP_PKEY *k) const { EVP_PKEY_free(k); }
};

}  // namespace

// ---- flows and options ----

std::optional<AuthFlow> parse_auth_flow(std::string_view name) {
    if (name == "password") {
        return AuthFlow::Password;
    }
    if (name == "client_credentials") {
        return AuthFlow::ClientCredentials;
    }
    if (name == "jwt") {
        return AuthFlow::Jwt;
    }
    if (name == "refresh_token") {
        return AuthFlow::RefreshToken;
    }
    if (name == "access_token") {
        return AuthFlow::AccessToken;
    }
    return std::nullopt;
}

std::string_view to_string(AuthFlow flow) {
    switch (flow) {
        case AuthFlow::Password:
            return "password";
        case AuthFlow::ClientCredentials:
            return "client_credentials";
        case AuthFlow::Jwt:
            return "jwt";
        case AuthFlow::RefreshToken:
            return "refresh_token";
        case AuthFlow::AccessToken:
            return "access_token";
    }
    return "unknown";
}

namespace {

using Names = std::vector<std::string_view>;

// Heap-allocated once and never freed, so no destructor runs at process exit.
const Names &leak(std::initializer_list<std::string_view> names) {
    return *new Names(names);
}

}  // namespace

const std::vector<std::string_view> &credential_option_names() {
    static const Names &names = leak({"auth", "client_id", "client_secret", "username", "password",
                                      "private_key", "refresh_token", "access_token", "jwt_audience"});
    return names;
}

const std::vector<std::string_view> &required_options(AuthFlow flow) {
    static const Names &password = leak({"client_id", "client_secret", "username", "password"});
    static const Names &client_credentials = leak({"client_id", "client_secret"});
    static const Names &jwt = leak({"client_id", "username", "private_key"});
    static const Names &refresh = leak({"client_id", "refresh_token"});
    static const Names &access = leak({"access_token"});
    switch (flow) {
        case AuthFlow::Password:
            return password;
        case AuthFlow::ClientCredentials:
            return client_credentials;
        case AuthFlow::Jwt:
            return jwt;
        case AuthFlow::RefreshToken:
            return refresh;
        case AuthFlow::AccessToken:
            break;
    }
    return access;
}

const std::vector<std::string_view> &optional_options(AuthFlow flow) {
    static const Names &none = leak({});
    static const Names &jwt = leak({"jwt_audience"});
    static const Names &refresh = leak({"client_secret"});
    switch (flow) {
        case AuthFlow::Jwt:
            return jwt;
        case AuthFlow::RefreshToken:
            return refresh;
        default:
            return none;
    }
}

std::vector<CredentialIssue> validate_credentials(AuthFlow flow, const OptionMap &options) {
    using Kind = CredentialIssue::Kind;
    const auto &required = required_options(flow);
    const auto &optional = optional_options(flow);
    const auto &known = credential_option_names();
    const auto in = [](const std::vector<std::string_view> &v, std::string_view s) {
        return std::find(v.begin(), v.end(), s) != v.end();
    };
    const std::string flow_text = "auth '" + std::string(to_string(flow)) + "'";

    std::vector<CredentialIssue> unknown, not_allowed, empty, missing, invalid;
    for (const auto &[name, value] : options) {
        if (name == kAuthOption) {
            continue;
        }
        if (!in(known, name)) {
            unknown.push_back(
                {Kind::UnknownOption, name, "unknown credential option " + quote_for_message(name)});
        } else if (!in(required, name) && !in(optional, name)) {
            not_allowed.push_back({Kind::NotAllowed, name,
                                   "option \"" + name + "\" is not used by " + flow_text + "; remove it"});
        } else if (value.empty()) {
            empty.push_back({Kind::EmptyValue, name, "option \"" + name + "\" must not be empty"});
        }
    }
    for (std::string_view name : required) {
        if (options.find(name) == options.end()) {
            missing.push_back({Kind::MissingOption, std::string(name),
                               "option \"" + std::string(name) + "\" is required for " + flow_text});
        }
    }
    if (flow == AuthFlow::Jwt) {
        const auto key = options.find("private_key");
        if (key != options.end() && !key->second.empty() && !is_valid_rsa_private_key_pem(key->second)) {
            invalid.push_back({Kind::InvalidValue, "private_key", std::string(kInvalidPem)});
        }
        const auto aud = options.find("jwt_audience");
        if (aud != options.end() && !aud->second.empty() && !is_http_url(aud->second)) {
            invalid.push_back({Kind::InvalidValue, "jwt_audience",
                               "jwt_audience must be an http(s) URL, got " + quote_for_message(aud->second)});
        }
    }
    std::vector<CredentialIssue> all;
    for (auto *group : {&unknown, &not_allowed, &empty, &missing, &invalid}) {
        all.insert(all.end(), group->begin(), group->end());
    }
    return all;
}

std::vector<CredentialIssue> validate_credentials(const OptionMap &options) {
    const auto it = options.find(kAuthOption);
    if (it == options.end()) {
        return {{CredentialIssue::Kind::MissingAuth, std::string(kAuthOption),
                 "option \"auth\" is required (one of " + std::string(kFlowList) + ")"}};
    }
    const auto flow = parse_auth_flow(it->second);
    if (!flow) {
        return {{CredentialIssue::Kind::UnknownFlow, std::string(kAuthOption),
                 "unknown auth " + quote_for_message(it->second) + "; expected one of " +
                     std::string(kFlowList)}};
    }
    return validate_credentials(*flow, options);
}

// ---- credentials ----

Credentials credentials_from_options(const OptionMap &options, std::string login_url) {
    const auto issues = validate_credentials(options);
    if (!issues.empty()) {
        std::string msg;
        for (const auto &i : issues) {
            msg += (msg.empty() ? "" : "; ") + i.message;
        }
        const auto k = issues.front().kind;
        const bool missing =
            k == CredentialIssue::Kind::MissingOption || k == CredentialIssue::Kind::MissingAuth;
        throw Error(missing ? ErrorKind::MissingOption : ErrorKind::InvalidParameter, msg);
    }
    if (!is_http_url(login_url)) {
        throw Error(ErrorKind::InvalidParameter,
                    "login_url must be an http(s) URL, got " + quote_for_message(login_url));
    }
    const auto get = [&](std::string_view name) {
        const auto it = options.find(name);
        return it == options.end() ? std::string() : it->second;
    };
    Credentials c;
    c.flow = *parse_auth_flow(get(kAuthOption));
    c.login_url = strip_trailing_slashes(login_url);
    c.client_id = get("client_id");
    c.client_secret = get("client_secret");
    c.username = get("username");
    c.password = get("password");
    c.private_key = get("private_key");
    c.refresh_token = get("refresh_token");
    c.access_token = get("access_token");
    c.jwt_audience = strip_trailing_slashes(get("jwt_audience"));
    c.client_auth_basic = c.flow == AuthFlow::ClientCredentials;
    return c;
}

std::string describe(const Credentials &c) {
    const auto secret = [](const std::string &v) {
        return v.empty() ? std::string("<empty>") : std::string(kRedacted);
    };
    std::string s = "flow=" + std::string(to_string(c.flow)) + " login_url=" + c.login_url;
    if (!c.client_id.empty()) {
        s += " client_id=" + c.client_id;
    }
    if (!c.username.empty()) {
        s += " username=" + c.username;
    }
    switch (c.flow) {
        case AuthFlow::Password:
            s += std::string(" client_secret=") + secret(c.client_secret) + " password=" + secret(c.password);
            break;
        case AuthFlow::ClientCredentials:
            s += std::string(" client_secret=") + secret(c.client_secret);
            break;
        case AuthFlow::Jwt:
            s += std::string(" private_key=") + secret(c.private_key);
            if (!c.jwt_audience.empty()) {
                s += " jwt_audience=" + c.jwt_audience;
            }
            break;
        case AuthFlow::RefreshToken:
            s += std::string(" refresh_token=") + secret(c.refresh_token) +
                 " client_secret=" + secret(c.client_secret);
            break;
        case AuthFlow::AccessToken:
            s += std::string(" access_token=") + secret(c.access_token);
            break;
    }
    return s;
}

std::string redact_secrets(std::string text, const Credentials &c, std::string_view extra_secret) {
    return redact_secrets(std::move(text),
                          std::vector<std::string_view>{c.client_secret, c.password, c.private_key,
                                                        c.refresh_token, c.access_token, extra_secret});
}

// ---- encoding helpers ----

std::string form_urlencode(std::string_view value) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(value.size() * 3);
    for (char ch : value) {
        const auto c = static_cast<unsigned char>(ch);
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
            c == '.' || c == '_' || c == '~') {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += kHex[c >> 4];
            out += kHex[c & 0xf];
        }
    }
    return out;
}

std::string form_body(const std::vector<std::pair<std::string, std::string>> &params) {
    std::string body;
    for (const auto &[k, v] : params) {
        if (!body.empty()) {
            body += '&';
        }
        body += form_urlencode(k) + '=' + form_urlencode(v);
    }
    return body;
}

namespace {

std::string base64_with(std::string_view bytes, const char *alphabet, bool pad) {
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 3 <= bytes.size(); i += 3) {
        const std::uint32_t n = (static_cast<unsigned char>(bytes[i]) << 16) |
                                (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                                static_cast<unsigned char>(bytes[i + 2]);
        out += alphabet[(n >> 18) & 63];
        out += alphabet[(n >> 12) & 63];
        out += alphabet[(n >> 6) & 63];
        out += alphabet[n & 63];
    }
    const std::size_t rest = bytes.size() - i;
    if (rest > 0) {
        std::uint32_t n = static_cast<unsigned char>(bytes[i]) << 16;
        if (rest == 2) {
            n |= static_cast<unsigned char>(bytes[i + 1]) << 8;
        }
        out += alphabet[(n >> 18) & 63];
        out += alphabet[(n >> 12) & 63];
        if (rest == 2) {
            out += alphabet[(n >> 6) & 63];
        }
        if (pad) {
            out.append(3 - rest, '=');
        }
    }
    return out;
}

constexpr const char *kB64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr const char *kB64Url = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

}  // namespace

std::string base64_encode(std::string_view bytes) {
    return base64_with(bytes, kB64, true);
}

std::string base64url_encode(std::string_view bytes) {
    return base64_with(bytes, kB64Url, false);
}

std::string base64url_decode(std::string_view text) {
    while (!text.empty() && text.back() == '=') {
        text.remove_suffix(1);
    }
    if (text.size() % 4 == 1) {
        throw Error(ErrorKind::InvalidParameter, "invalid base64url text (bad length)");
    }
    std::string out;
    std::uint32_t acc = 0;
    int bits = 0;
    for (char c : text) {
        int v;
        if (c >= 'A' && c <= 'Z') {
            v = c - 'A';
        } else if (c >= 'a' && c <= 'z') {
            v = c - 'a' + 26;
        } else if (c >= '0' && c <= '9') {
            v = c - '0' + 52;
        } else if (c == '-') {
            v = 62;
        } else if (c == '_') {
            v = 63;
        } else {
            throw Error(ErrorKind::InvalidParameter, "invalid base64url text (bad character)");
        }
        acc = (acc << 6) | static_cast<std::uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((acc >> bits) & 0xff);
        }
    }
    return out;
}

// ---- JWT bearer ----

RsaPrivateKey::RsaPrivateKey(evp_pkey_st *key) : key_(key, PkeyDeleter{}) {}

RsaPrivateKey RsaPrivateKey::from_pem(std::string_view pem_in) {
    // A PEM RSA key is a few kB; refuse megabytes before handing them to OpenSSL (and int-size the length).
    if (pem_in.empty() || pem_in.size() > 64 * 1024) {
        throw Error(ErrorKind::InvalidParameter, std::string(kInvalidPem));
    }
    const std::string pem = normalize_pem(pem_in);
    if (pem.find("-----BEGIN") == std::string::npos) {
        throw Error(ErrorKind::InvalidParameter, std::string(kInvalidPem) + " (no -----BEGIN line)");
    }
    // PKCS#8 "BEGIN ENCRYPTED PRIVATE KEY" or a traditional key with "Proc-Type: 4,ENCRYPTED" (checked on
    // the header text, not anywhere in the base64 body, where the letters could occur by chance).
    if (pem.find("-----BEGIN ENCRYPTED") != std::string::npos ||
        pem.find("Proc-Type: 4,ENCRYPTED") != std::string::npos) {
        throw Error(ErrorKind::InvalidParameter,
                    std::string(kInvalidPem) + " (it is encrypted; provide it without a passphrase)");
    }
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())),
                                                  &BIO_free);
    if (!bio) {
        throw std::bad_alloc();
    }
    // The password callback refuses, so OpenSSL never prompts on a terminal from inside a server process.
    pem_password_cb *no_password = [](char *, int, int, void *) -> int { return 0; };
    EVP_PKEY *key = PEM_read_bio_PrivateKey(bio.get(), nullptr, no_password, nullptr);
    // OpenSSL keeps errors in a per-thread queue that libcurl's TLS code reads later; leave it clean. Its
    // messages are not used: they can quote parts of the input.
    ERR_clear_error();
    if (key == nullptr) {
        throw Error(ErrorKind::InvalidParameter, std::string(kInvalidPem));
    }
    std::unique_ptr<EVP_PKEY, PkeyDeleter> owned(key);
    if (EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA) {
        throw Error(ErrorKind::InvalidParameter, std::string(kInvalidPem) + " (the key is not an RSA key)");
    }
    return RsaPrivateKey(owned.release());
}

std::string RsaPrivateKey::sign_rs256(std::string_view data) const {
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
    if (!ctx) {
        throw std::bad_alloc();
    }
    std::size_t len = 0;
    const auto *in = reinterpret_cast<const unsigned char *>(data.data());
    if (EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key_.get()) != 1 ||
        EVP_DigestSign(ctx.get(), nullptr, &len, in, data.size()) != 1) {
        ERR_clear_error();
        throw Error(ErrorKind::Internal, "RS256 signing failed");
    }
    std::string sig(len, '\0');
    if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char *>(sig.data()), &len, in, data.size()) !=
        1) {
        ERR_clear_error();
        throw Error(ErrorKind::Internal, "RS256 signing failed");
    }
    sig.resize(len);
    return sig;
}

int RsaPrivateKey::bits() const {
    return EVP_PKEY_get_bits(key_.get());
}

bool is_valid_rsa_private_key_pem(std::string_view pem) {
    try {
        RsaPrivateKey::from_pem(pem);
        return true;
    } catch (const Error &) {
        return false;
    }
}

std::string jwt_audience_for(std::string_view login_url) {
    static constexpr std::string_view kLogin = "https://login.salesforce.com";
    static constexpr std::string_view kTest = "https://test.salesforce.com";
    const std::string host = url_host(login_url);
    if (host == "login.salesforce.com") {
        return std::string(kLogin);
    }
    if (host == "test.salesforce.com") {
        return std::string(kTest);
    }
    if (ends_with(host, ".my.salesforce.com")) {
        const std::string first_label = host.substr(0, host.find('.'));
        if (ends_with(host, ".sandbox.my.salesforce.com") || ends_with(host, ".scratch.my.salesforce.com") ||
            first_label.find("--") != std::string::npos) {
            return std::string(kTest);
        }
        return std::string(kLogin);
    }
    return strip_trailing_slashes(login_url);
}

std::string build_jwt_assertion(const Credentials &c, std::chrono::system_clock::time_point now,
                                std::chrono::seconds lifetime) {
    if (c.client_id.empty() || c.username.empty()) {
        throw Error(ErrorKind::InvalidParameter, "the jwt flow needs client_id and username");
    }
    if (lifetime.count() <= 0 || lifetime > kJwtLifetime) {
        throw Error(ErrorKind::InvalidParameter, "JWT lifetime must be between 1 and 180 seconds");
    }
    const RsaPrivateKey key = RsaPrivateKey::from_pem(c.private_key);
    const auto exp = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()) + lifetime;
    nlohmann::ordered_json claims;
    claims["iss"] = c.client_id;
    claims["sub"] = c.username;
    claims["aud"] = c.jwt_audience.empty() ? jwt_audience_for(c.login_url) : c.jwt_audience;
    claims["exp"] = static_cast<std::int64_t>(exp.count());
    const std::string signing_input =
        base64url_encode(R"({"alg":"RS256"})") + "." + base64url_encode(claims.dump());
    return signing_input + "." + base64url_encode(key.sign_rs256(signing_input));
}

// ---- token request ----

std::string TokenRequest::describe() const {
    // The grant type is the only body parameter that is never secret.
    std::string grant;
    const std::string_view b = body;
    if (starts_with(b, "grant_type=")) {
        grant = std::string(b.substr(0, b.find('&')));
    }
    return "POST " + url + (grant.empty() ? "" : " " + grant);
}

bool needs_token_request(AuthFlow flow) {
    return flow != AuthFlow::AccessToken;
}

TokenRequest build_token_request(const Credentials &c, std::chrono::system_clock::time_point now) {
    if (!needs_token_request(c.flow)) {
        throw Error(ErrorKind::InvalidParameter,
                    "auth 'access_token' uses the configured token and makes no token request");
    }
    if (!is_http_url(c.login_url)) {
        throw Error(ErrorKind::InvalidParameter,
                    "login_url must be an http(s) URL, got " + quote_for_message(c.login_url));
    }
    const auto need = [](const std::string &v, const char *name) {
        if (v.empty()) {
            throw Error(ErrorKind::InvalidParameter,
                        std::string("option \"") + name + "\" is required for this auth flow");
        }
    };
    TokenRequest r;
    r.url = strip_trailing_slashes(c.login_url) + std::string(kTokenPath);
    r.headers = {{"Content-Type", "application/x-www-form-urlencoded"}, {"Accept", "application/json"}};
    std::vector<std::pair<std::string, std::string>> p;
    // Client authentication in the body, or as Basic with both parts form-encoded first (RFC 6749 §2.3.1).
    const auto client_auth = [&](bool secret_required) {
        need(c.client_id, "client_id");
        if (secret_required) {
            need(c.client_secret, "client_secret");
        }
        if (c.client_auth_basic && !c.client_secret.empty()) {
            r.headers.emplace_back("Authorization",
                                   "Basic " + base64_encode(form_urlencode(c.client_id) + ":" +
                                                            form_urlencode(c.client_secret)));
            return;
        }
        p.emplace_back("client_id", c.client_id);
        if (!c.client_secret.empty()) {
            p.emplace_back("client_secret", c.client_secret);
        }
    };
    switch (c.flow) {
        case AuthFlow::Password:
            p.emplace_back("grant_type", "password");
            client_auth(true);
            need(c.username, "username");
            need(c.password, "password");
            p.emplace_back("username", c.username);
            p.emplace_back("password", c.password);
            break;
        case AuthFlow::ClientCredentials:
            p.emplace_back("grant_type", "client_credentials");
            client_auth(true);
            break;
        case AuthFlow::Jwt:
            p.emplace_back("grant_type", std::string(kJwtGrant));
            p.emplace_back("assertion", build_jwt_assertion(c, now));
            break;
        case AuthFlow::RefreshToken:
            p.emplace_back("grant_type", "refresh_token");
            need(c.refresh_token, "refresh_token");
            p.emplace_back("refresh_token", c.refresh_token);
            client_auth(false);
            break;
        case AuthFlow::AccessToken:
            break;
    }
    r.body = form_body(p);
    return r;
}

// ---- token response ----

namespace {

std::optional<std::string> string_member(const nlohmann::json &o, const char *name) {
    const auto it = o.find(name);
    if (it == o.end()) {
        return std::nullopt;
    }
    if (it->is_string()) {
        return it->get<std::string>();
    }
    if (it->is_number_integer() || it->is_number_unsigned()) {
        return it->dump();
    }
    return std::nullopt;
}

}  // namespace

TokenResponse parse_token_response(std::string_view body) {
    const auto bad = [](const char *why) { return OAuthError(200, "invalid_token_response", why); };
    // Non-throwing parse: nlohmann's parse_error text quotes the bytes it choked on, which may be the token.
    const nlohmann::json j = nlohmann::json::parse(body.begin(), body.end(), nullptr, false);
    if (j.is_discarded()) {
        throw bad("token endpoint answer is not valid JSON");
    }
    if (!j.is_object()) {
        throw bad("token endpoint answer is not a JSON object");
    }
    TokenResponse t;
    const auto token = string_member(j, "access_token");
    if (!token || token->empty()) {
        throw bad("token endpoint answer has no access_token");
    }
    t.access_token = *token;
    const auto instance = string_member(j, "instance_url");
    if (!instance || !is_http_url(*instance)) {
        throw bad("token endpoint answer has no valid instance_url");
    }
    t.instance_url = strip_trailing_slashes(*instance);
    t.id_url = string_member(j, "id").value_or("");
    // .../id/{orgId}/{userId}
    const std::size_t id_pos = t.id_url.rfind("/id/");
    if (id_pos != std::string::npos) {
        const std::string rest = t.id_url.substr(id_pos + 4);
        const std::size_t slash = rest.find('/');
        if (slash != std::string::npos) {
            const std::string org = rest.substr(0, slash);
            const std::string user = strip_trailing_slashes(rest.substr(slash + 1));
            if (is_valid_record_id(org) && is_valid_record_id(user)) {
                t.org_id = org;
                t.user_id = user;
            }
        }
    }
    t.token_type = string_member(j, "token_type").value_or("");
    t.scope = string_member(j, "scope").value_or("");
    t.issued_at = string_member(j, "issued_at");
    t.signature = string_member(j, "signature");
    return t;
}

TokenResponse static_token_response(const Credentials &c) {
    if (c.flow != AuthFlow::AccessToken || c.access_token.empty()) {
        throw Error(ErrorKind::InvalidParameter,
                    "static token response needs auth 'access_token' with an access_token");
    }
    if (!is_http_url(c.login_url)) {
        throw Error(ErrorKind::InvalidParameter,
                    "login_url must be the instance URL for auth 'access_token', got " +
                        quote_for_message(c.login_url));
    }
    TokenResponse t;
    t.access_token = c.access_token;
    t.instance_url = strip_trailing_slashes(c.login_url);
    t.token_type = "Bearer";
    return t;
}

OAuthError::OAuthError(int http_status, std::string error, std::string description)
    : Error(ErrorKind::ExternalService, error.empty() ? description : error + ": " + description),
      http_status_(http_status),
      error_(std::move(error)),
      description_(std::move(description)) {}

bool OAuthError::retryable() const {
    if (error_ == "invalid_grant" || error_ == "invalid_client" || error_ == "invalid_client_id" ||
        error_ == "unsupported_grant_type") {
        return false;
    }
    const int s = http_status_;
    return s == 0 || s == 406 || s == 420 || s == 429 || s == 500 || s == 502 || s == 503 || s == 504;
}

OAuthError parse_token_error(int http_status, std::string_view body, const Credentials *c) {
    const nlohmann::json j = nlohmann::json::parse(body.begin(), body.end(), nullptr, false);
    if (!j.is_discarded() && j.is_object()) {
        const auto error = string_member(j, "error");
        if (error && !error->empty()) {
            std::string description = string_member(j, "error_description").value_or("");
            std::string err = *error;
            if (c != nullptr) {
                err = redact_secrets(err, *c);
                description = redact_secrets(description, *c);
            }
            return OAuthError(http_status, truncate_server_text(err), truncate_server_text(description));
        }
    }
    std::string what = "token endpoint returned HTTP " + std::to_string(http_status);
    const bool blank = std::all_of(body.begin(), body.end(), [](char ch) {
        return ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t';
    });
    what += blank ? " with an empty body" : " without an OAuth error object";
    return OAuthError(http_status, "", what);
}

}  // namespace sfb
