// One access token per org as one role sees it (a foreign server and a role): fetched when a call first
// needs it, shared by every call of that org, dropped once when Salesforce refuses it as an invalid session,
// and fetched again; token endpoint failures are retried through the one retry policy (retry.h).
//
// Pure, like the machines: the caller reads credentials from wherever they live (the glue reads user
// mappings at use time), sends the HTTP request the broker hands out, and reports the response. Time comes
// in as an argument; randomness through RandomSource. No I/O, no threads.
//
// Per org:   Missing --wants_credentials--> begin_fetch --> Fetching --on_response--> Ready
//                ^                               |                          |
//                |  (access_token flow: Ready at once)                      +--> Missing + backoff
//                (transient)
//                +---- token_refused / recheck (changed options) ----       +--> Failed (final until recheck)
#pragma once
#include "core/core_only.h"

#include "core/fdw_options.h"
#include "core/http.h"
#include "core/oauth.h"
#include "core/retry.h"

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace sfb {

// An org as one role sees it: the foreign server's name and the role's id.
struct OrgKey {
    std::string server;
    std::uint32_t role = 0;
    bool operator<(const OrgKey &o) const { return server != o.server ? server < o.server : role < o.role; }
    bool operator==(const OrgKey &o) const { return server == o.server && role == o.role; }
};

// What the caller read for one org when the broker asked for it.
struct OrgCredentials {
    ServerSettings server;
    OptionMap mapping_options;  // the user mapping's options (credentials; secret)
    // Of every server and mapping option they were read from: a different digest later means the token was
    // obtained with options that no longer hold.
    std::size_t digest = 0;
};

// A digest of options for OrgCredentials::digest and recheck(): equal options, equal digest.
std::size_t options_digest(const OptionMap &mapping_options, const OptionList &server_options);

enum class TokenState { Missing, Fetching, Ready, Failed };

struct TokenFailure {
    std::string code;     // e.g. "invalid_grant", "TOKEN_ENDPOINT_UNREACHABLE", "AUTHENTICATION"
    std::string message;  // never a secret
};

struct TokenBrokerConfig {
    RetryConfig retry;  // max_attempts and the backoff of token requests
    std::chrono::milliseconds request_timeout{60000};
};

class TokenBroker {
  public:
    TokenBroker(TokenBrokerConfig config, RandomSource random, WallClock clock);

    TokenState state(const OrgKey &org) const;  // Missing for an org never seen
    // Ready: the token (secret: never log it) and the instance URL every call of the org goes to.
    const std::string &access_token(const OrgKey &org) const;
    const std::string &instance_url(const OrgKey &org) const;
    // Failed: why.
    const TokenFailure &failure(const OrgKey &org) const;
    // Every secret of the org (credentials and tokens issued), for scrubbing text we did not write.
    const std::vector<std::string> &secrets(const OrgKey &org) const;

    // True when the org has no token, none is being fetched and no backoff runs: the caller reads the
    // credentials now and calls begin_fetch (or fail when they cannot be read).
    bool wants_credentials(const OrgKey &org, std::int64_t now_ms) const;

    // Starts getting a token. Returns the token request to send, whose response goes to on_response; or
    // nullopt when no request is needed (the access_token flow: Ready) or the credentials are invalid
    // (Failed). Throws nothing but std::bad_alloc.
    std::optional<HttpRequest> begin_fetch(const OrgKey &org, const OrgCredentials &credentials);

    // The credentials could not be read (the mapping or the server is gone, a server option is invalid).
    void fail(const OrgKey &org, std::string code, std::string message);

    // The answer to begin_fetch's request: Ready, Failed, or Missing with a backoff. In the last case the
    // result says why the org's calls wait ("waiting for an access token (attempt 2 of 6, next in 3 s): …"),
    // for the live status users see.
    std::optional<std::string> on_response(const OrgKey &org, const HttpResponse &response,
                                           std::int64_t now_ms);

    // A call made with `token` was refused as an invalid session (expired, revoked): the token is forgotten
    // so that the next call fetches a new one. A token that was already replaced is left alone, so that
    // several calls refused at once cost one token request.
    void token_refused(const OrgKey &org, const std::string &token);

    // A new job of the org starts, and its options read now have this digest. Changed options, or an earlier
    // failure, forget the token (and the instance URL: another login_url may be another org); an unchanged
    // org keeps its token. Nothing changes while a token request is in flight.
    void recheck(const OrgKey &org, std::size_t digest);

    // New settings (the worker's configuration was reloaded): the next token request and the next retry
    // decision use them. Tokens held and backoffs already running are kept.
    void set_config(const TokenBrokerConfig &config);

    // When the earliest backoff of an org without a token ends (for the caller's wait), if any.
    std::optional<std::int64_t> next_retry_ms() const;

  private:
    struct Org {
        TokenState state = TokenState::Missing;
        std::string access_token;
        std::string instance_url;
        std::string forced_instance_url;  // the server's instance_url option, if any
        TokenFailure failure;
        RetryState retry;
        std::int64_t not_before_ms = 0;
        std::vector<std::string> secrets;
        std::size_t digest = 0;
    };
    const Org *find(const OrgKey &org) const;
    void set_failed(Org &org, std::string code, std::string message);

    TokenBrokerConfig config_;
    WallClock clock_;  // JWT assertions carry the time they were made
    RetryPolicy policy_;
    std::map<OrgKey, Org> orgs_;
};

}  // namespace sfb
