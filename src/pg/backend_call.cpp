#include "backend_call.h"

#include "core/error.h"
#include "core/redact.h"
#include "core/token_broker.h"

#include "client_settings.h"
#include "pg_headers.h"

extern "C" {
#include "miscadmin.h"
}

#include "guard.h"
#include "org_access.h"
#include "settings.h"

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sfb::pg {

namespace {

// A cancel (Ctrl-C, statement_timeout) or termination stops the transfer; other interrupts do not.
bool cancel_pending() noexcept {
    return QueryCancelPending || ProcDiePending;
}

std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

// One per backend, made on first use and kept: the connection to the org stays open between calls.
HttpClient &client() {
    static std::unique_ptr<HttpClient> instance;
    if (!instance) {
        http_global_init();
        instance = std::make_unique<HttpClient>(http_client_options(cancel_pending));
    }
    return *instance;
}

TokenBroker &tokens() {
    static TokenBroker broker(token_broker_config(), default_random_source(), system_wall_clock());
    return broker;
}

// Waits for the one transfer. Between waits a cancel request is honoured: curl has already stopped the
// transfer (should_stop), and CHECK_FOR_INTERRUPTS raises the cancel error through pg_call, so the C++ frames
// above unwind.
HttpResponse perform(HttpRequest request) {
    HttpClient &http = client();
    TransferId id = http.start(std::move(request));
    for (;;) {
        http.poll(100);
        for (HttpResponse &response : http.take_completed()) {
            // A transfer curl stopped for a cancel request ends as failed: PostgreSQL's cancel error it is.
            if (cancel_pending())
                pg_call([] { CHECK_FOR_INTERRUPTS(); });
            if (response.id == id)
                return std::move(response);
        }
        if (cancel_pending()) {
            http.cancel(id);
            http.take_completed();
            pg_call([] { CHECK_FOR_INTERRUPTS(); });
        }
    }
}

std::vector<std::string_view> secret_views(const std::vector<std::string> &secrets) {
    return std::vector<std::string_view>(secrets.begin(), secrets.end());
}

[[noreturn]] void token_failure(const char *what, const TokenFailure &failure) {
    raise_error(
        ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION,
        std::string(what) + ": could not log in to Salesforce: " + failure.code + ": " + failure.message);
}

// A token of `org`, fetched now when the broker has none.
void ensure_token(const OrgKey &org, const OrgCredentials &credentials, const char *what) {
    TokenBroker &broker = tokens();
    broker.set_config(token_broker_config());
    broker.recheck(org, credentials.digest);
    for (int round = 0; broker.state(org) != TokenState::Ready; ++round) {
        if (broker.state(org) == TokenState::Failed)
            token_failure(what, broker.failure(org));
        // A backend does not sit out a token endpoint's backoff: the caller is waiting at a prompt.
        if (round > 0 || !broker.wants_credentials(org, now_ms()))
            raise_error(ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION,
                        std::string(what) + ": could not get an access token from Salesforce now; try again");
        std::optional<HttpRequest> request = broker.begin_fetch(org, credentials);
        if (!request)
            continue;  // Ready (access_token flow) or Failed: the loop condition says which
        HttpResponse response = perform(std::move(*request));
        if (std::optional<std::string> waiting = broker.on_response(org, response, now_ms()))
            raise_error(ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION, std::string(what) + ": " + *waiting);
    }
}

}  // namespace

OrgCall org_for_call(const char *function, const char *server_name) {
    ForeignServer *server =
        pg_call([function, server_name] { return resolve_server(function, server_name); });
    OrgCall call;
    call.server = server->servername;
    OrgCredentials credentials = read_org_credentials(OrgKey{call.server, GetUserId()});
    call.api_version = parse_api_version(credentials.server.api_version);
    return call;
}

HttpResponse call_org(const OrgCall &call, HttpRequest request, const char *what) {
    OrgKey org{call.server, GetUserId()};
    std::string path = std::move(request.url);
    if (request.timeouts.total.count() == 0)
        request.timeouts = HttpTimeouts::api_call();
    request.timeouts.total = std::chrono::milliseconds(settings.request_timeout_ms);
    for (int attempt = 0;; ++attempt) {
        OrgCredentials credentials = read_org_credentials(org);
        ensure_token(org, credentials, what);
        TokenBroker &broker = tokens();
        HttpRequest sent = request;
        std::string token = broker.access_token(org);
        sent.url = broker.instance_url(org) + path;
        sent.headers.emplace_back("Authorization", "Bearer " + token);
        HttpResponse response = perform(std::move(sent));
        if (!response.ok())
            raise_error(ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION,
                        std::string(what) + ": " +
                            redact_secrets(response.error_message, secret_views(broker.secrets(org))));
        // An expired or revoked session: once more with a new token (Salesforce did nothing with this one).
        if (response.status == 401 && attempt == 0) {
            broker.token_refused(org, token);
            continue;
        }
        return response;
    }
}

void call_org_quietly(const OrgCall &call, HttpRequest request, int timeout_ms) noexcept {
    try {
        OrgKey org{call.server, GetUserId()};
        TokenBroker &broker = tokens();
        if (broker.state(org) != TokenState::Ready)
            return;
        request.url = broker.instance_url(org) + request.url;
        request.headers.emplace_back("Authorization", "Bearer " + broker.access_token(org));
        request.timeouts = HttpTimeouts::api_call();
        request.timeouts.total = std::chrono::milliseconds(timeout_ms);
        HttpClient &http = client();
        TransferId id = http.start(std::move(request));
        for (int waited = 0; waited < timeout_ms + 1000; waited += 100) {
            http.poll(100);
            for (HttpResponse &response : http.take_completed())
                if (response.id == id)
                    return;
        }
        http.cancel(id);
        http.take_completed();
    } catch (...) {
        // Best effort by design: the caller is cleaning up after an error already being reported.
    }
}

}  // namespace sfb::pg
