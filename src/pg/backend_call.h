// Salesforce calls a backend makes itself, for a SQL function that needs an answer now (describe, limits):
// one short, time-limited call (sf_bulk.request_timeout) that Ctrl-C and statement_timeout interrupt, with
// the current role's credentials. Everything else goes through the worker.
//
// Tokens are kept per backend, one per server and role, in the same TokenBroker the worker uses: a token is
// fetched on first use, reused by later calls, dropped when Salesforce refuses it as an invalid session (and
// the call sent once more with a new one), and forgotten when the user mapping's options change.
#pragma once

#include "core/bulk_api.h"
#include "core/http.h"

#include <string>

namespace sfb::pg {

struct OrgCall {
    std::string server;      // the salesforce server's name
    ApiVersion api_version;  // the server's api_version option
};

// The org `function` calls: the server named (or the only one), checked as resolve_server does. Needs
// an SPI connection; throws PgError.
OrgCall org_for_call(const char *function, const char *server_name);

// Sends `request` (its url: a path below the instance URL) to the org as the current user and returns the
// answer, whatever its status. A transport failure or a token that cannot be had throws PgError naming
// `what`; a cancel request raises PostgreSQL's own error. Never shows a credential.
HttpResponse call_org(const OrgCall &org, HttpRequest request, const char *what);

// Sends `request` once with the token the backend already holds, waiting at most `timeout_ms`, and ignores
// the outcome: for clean-up while a transaction is being aborted (a foreign scan's unfinished Bulk job),
// where no PostgreSQL call may be made. Without a token it sends nothing. Never throws.
void call_org_quietly(const OrgCall &org, HttpRequest request, int timeout_ms) noexcept;

}  // namespace sfb::pg
