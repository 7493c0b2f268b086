// The pre-flight of an ingest call (core/ingest_preflight.h) in the calling backend: the query's columns as
// Salesforce will receive them, checked against the object's describe (and the describes of the objects its
// relationship columns point to), read through the one describe cache. Runs before a row is spooled.
#pragma once

#include "core/bulk_api.h"

#include "pg_headers.h"

extern "C" {
#include "access/tupdesc.h"
}

#include <optional>
#include <string>

namespace sfb::pg {

// Raises the first problem as an ERROR (with the others in its DETAIL) and reports lossy conversions as
// WARNINGs. `is_key` flags the columns that stay in Postgres (not sent). Needs an SPI connection; throws
// PgError. When Salesforce cannot be asked and nothing is cached, the error says so and names validate =>
// false.
void preflight_ingest_call(const char *function, const char *server_name, Operation operation,
                           const std::string &object, const std::optional<std::string> &external_id,
                           TupleDesc desc, const bool *is_key);

}  // namespace sfb::pg
