#include "core/token_broker.h"

#include "core/error.h"

#include <functional>
#include <string_view>
#include <utility>

namespace sfb {

namespace {

const std::string kEmpty;
const TokenFailure kNoFailure;
const std::vector<std::string> kNoSecrets;

std::vector<std::string_view> views(const std::vector<std::string> &secrets) {
    return std::vector<std::string_view>(secrets.begin(), secrets.end());
}

}  // namespace

std::size_t options_digest(const OptionMap &mapping_options, const OptionList &server_options) {
    std::string all;
    for (const auto &[name, value] : mapping_options)
        all.append(name).append(1, '\0').append(value).append(1, '\0');
    all.append(1, '\x1e');  // mapping and server options never run into each other
    for (const auto &[name, value] : server_options)
        all.append(name).append(1, '\0').append(value).append(1, '\0');
    return std::hash<std::string>{}(all);
}

TokenBroker::TokenBroker(TokenBrokerConfig config, RandomSource random, WallClock clock)
    : config_(config), clock_(clock), policy_(config.retry, std::move(random), std::move(clock)) {}

void TokenBroker::set_config(const TokenBrokerConfig &config) {
    policy_.set_config(config.retry);
    config_ = config;
}

const TokenBroker::Org *TokenBroker::find(const OrgKey &org) const {
    auto it = orgs_.find(org);
    return it == orgs_.end() ? nullptr : &it->second;
}

TokenState TokenBroker::state(const OrgKey &org) const {
    const Org *o = find(org);
    return o ? o->state : TokenState::Missing;
}

const std::string &TokenBroker::access_token(const OrgKey &org) const {
    const Org *o = find(org);
    return o && o->state == TokenState::Ready ? o->access_token : kEmpty;
}

const std::string &TokenBroker::instance_url(const OrgKey &org) const {
    const Org *o = find(org);
    return o ? o->instance_url : kEmpty;
}

const TokenFailure &TokenBroker::failure(const OrgKey &org) const {
    const Org *o = find(org);
    return o && o->state == TokenState::Failed ? o->failure : kNoFailure;
}

const std::vector<std::string> &TokenBroker::secrets(const OrgKey &org) const {
    const Org *o = find(org);
    return o ? o->secrets : kNoSecrets;
}

bool TokenBroker::wants_credentials(const OrgKey &org, std::int64_t now_ms) const {
    const Org *o = find(org);
    return o == nullptr || (o->state == TokenState::Missing && o->not_before_ms <= now_ms);
}

void TokenBroker::set_failed(Org &org, std::string code, std::string message) {
    org.state = TokenState::Failed;
    org.failure = TokenFailure{std::move(code), std::move(message)};
    org.access_token.clear();
}

void TokenBroker::fail(const OrgKey &key, std::string code, std::string message) {
    set_failed(orgs_[key], std::move(code), std::move(message));
}

std::optional<HttpRequest> TokenBroker::begin_fetch(const OrgKey &key, const OrgCredentials &credentials) {
    Org &org = orgs_[key];
    org.not_before_ms = 0;  // the backoff that led here has ended
    org.digest = credentials.digest;
    org.forced_instance_url = credentials.server.instance_url;
    try {
        const EndpointUrl &login = credentials.server.login_url;
        Credentials c = credentials_from_options(credentials.mapping_options, login.origin() + login.path);
        org.secrets.clear();
        for (const std::string *secret :
             {&c.client_secret, &c.password, &c.private_key, &c.refresh_token, &c.access_token})
            if (!secret->empty())
                org.secrets.push_back(*secret);
        if (!needs_token_request(c.flow)) {
            TokenResponse token = static_token_response(c);
            org.access_token = token.access_token;
            org.instance_url = org.forced_instance_url.empty() ? token.instance_url : org.forced_instance_url;
            org.state = TokenState::Ready;
            return std::nullopt;
        }
        TokenRequest token_request = build_token_request(c, clock_());
        HttpRequest http;
        http.method = HttpMethod::Post;
        http.url = token_request.url;
        http.body = token_request.body;
        http.headers = token_request.headers;
        http.secrets = org.secrets;
        http.secrets.push_back(token_request.body);
        http.idempotent = true;  // a second token request only mints a second token
        http.timeouts.total = config_.request_timeout;
        org.state = TokenState::Fetching;
        return http;
    } catch (const std::bad_alloc &) {
        throw;
    } catch (const std::exception &e) {
        // Invalid credentials in the mapping (a missing option, a malformed key): the message names the
        // problem, never a value.
        set_failed(org, "AUTHENTICATION", e.what());
        return std::nullopt;
    }
}

std::optional<std::string> TokenBroker::on_response(const OrgKey &key, const HttpResponse &response,
                                                    std::int64_t now_ms) {
    Org &org = orgs_[key];
    org.state = TokenState::Missing;
    if (response.success()) {
        try {
            TokenResponse token = parse_token_response(response.body);
            org.access_token = token.access_token;
            org.secrets.push_back(org.access_token);
            org.instance_url = org.forced_instance_url.empty() ? token.instance_url : org.forced_instance_url;
            org.state = TokenState::Ready;
            org.retry = RetryState{};
        } catch (const OAuthError &e) {
            set_failed(org, e.error(), redact_secrets(e.description(), views(org.secrets)));
        }
        return std::nullopt;
    }
    // The same classification and backoff as every other call: a TLS verification failure or a refused
    // login is final; a refused connection, a timeout, 5xx or 429 are worth another try.
    RetryDecision decision = policy_.decide(to_attempt_outcome(response), /*idempotent=*/true, org.retry);
    if (decision.action == RetryAction::RetryAfterBackoff) {
        org.not_before_ms = now_ms + decision.delay.count();
        std::string cause = !response.ok()
                                ? response.error_message
                                : "the token endpoint answered HTTP " + std::to_string(response.status);
        return "waiting for an access token (attempt " + std::to_string(org.retry.attempts) + " of " +
               std::to_string(config_.retry.max_attempts) + ", next in " +
               std::to_string((decision.delay.count() + 999) / 1000) + " s): " + cause;
    }
    if (!response.ok()) {
        set_failed(org, "TOKEN_ENDPOINT_UNREACHABLE", response.error_message);
    } else {
        OAuthError error = parse_token_error(response.status, response.body);
        set_failed(org, error.error(), redact_secrets(error.description(), views(org.secrets)));
    }
    return std::nullopt;
}

void TokenBroker::token_refused(const OrgKey &key, const std::string &token) {
    auto it = orgs_.find(key);
    if (it == orgs_.end() || it->second.state != TokenState::Ready || it->second.access_token != token)
        return;
    it->second.state = TokenState::Missing;
    it->second.access_token.clear();
}

void TokenBroker::recheck(const OrgKey &key, std::size_t digest) {
    auto it = orgs_.find(key);
    if (it == orgs_.end())
        return;
    Org &org = it->second;
    if (org.state == TokenState::Fetching)
        return;
    if (org.state != TokenState::Failed && digest == org.digest)
        return;
    std::vector<std::string> secrets = std::move(org.secrets);
    org = Org{};
    // Tokens issued before stay scrubbed: a message about the old session may still arrive.
    org.secrets = std::move(secrets);
    org.digest = digest;
}

std::optional<std::int64_t> TokenBroker::next_retry_ms() const {
    std::optional<std::int64_t> next;
    for (const auto &[key, org] : orgs_)
        if (org.state == TokenState::Missing && org.not_before_ms > 0 && (!next || org.not_before_ms < *next))
            next = org.not_before_ms;
    return next;
}

}  // namespace sfb
