// Which Salesforce org a call goes to, and with whose credentials: the salesforce server a SQL function
// names (or the only one there is), the caller's right to use it, and the user mapping's options, read at
// use time (PostgreSQL keeps them; sf_bulk never copies them anywhere). Shared by the enqueue functions, the
// backend's own calls (describe, limits) and the worker.
#pragma once

#include "core/token_broker.h"

#include "pg_headers.h"

extern "C" {
#include "foreign/foreign.h"
}

namespace sfb::pg {

// The server named (NULL: the only salesforce server), checked: it is a salesforce server, the current
// user has USAGE on it and a user mapping (own or PUBLIC). Errors name `function`. PostgreSQL calls only,
// needs an SPI connection; raises ERROR.
ForeignServer *resolve_server(const char *function, const char *server_name);

// Copies a catalog option list (a server's, a mapping's). PostgreSQL calls only (defGetString).
void read_options(List *options, OptionList &into);

// The server's settings and the mapping's options of `org.role` on `org.server`. Inside a transaction;
// PostgreSQL calls through pg_call (throws PgError: the server or the mapping is gone), sfb::Error for an
// invalid server option.
OrgCredentials read_org_credentials(const OrgKey &org);

}  // namespace sfb::pg
