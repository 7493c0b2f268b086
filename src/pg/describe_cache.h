// The one describe cache, sf_bulk.describe: what Salesforce said an org's objects look like, per user
// mapping (field-level security makes describes differ between Salesforce users), object and API version.
// A row younger than sf_bulk.describe_ttl is used as it is; an older one is revalidated with
// If-Modified-Since (304: still right), and replaced when Salesforce answers with a new describe. The SQL
// functions sf_bulk_describe and sf_bulk_objects read it; the ingest pre-flight, the query loader, foreign
// tables and sync are to read it through cached_describe too, never with their own copy.
#pragma once

#include "backend_call.h"

#include <string>

namespace sfb::pg {

// The describe of `object` (the empty string: describeGlobal, the list of objects) as JSON text, from the
// cache or from Salesforce. `refresh` asks Salesforce even within the TTL. Inside a transaction with an SPI
// connection; throws PgError (an unknown object, Salesforce unreachable: the message names `function`).
std::string cached_describe(const OrgCall &org, const std::string &object, bool refresh,
                            const char *function);

}  // namespace sfb::pg
