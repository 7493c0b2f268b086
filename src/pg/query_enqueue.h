// What sf_bulk_query (query_enqueue.cpp) and sf_bulk_sync (sync_enqueue.cpp) share: the target table as
// named, its checks and its creation from the describe, and the query job's row in the ledger.
#pragma once

#include "core/bulk_api.h"
#include "core/error.h"
#include "core/query_target.h"

#include "pg_headers.h"

extern "C" {
#include "foreign/foreign.h"
}

#include "guard.h"

#include <optional>
#include <string>

namespace sfb::pg {

// The target as named: its schema and table, and the relation if it exists. PostgreSQL calls only.
struct TargetName {
    char *schema;  // the schema it is in, or would be created in (the caller's search_path)
    char *table;
    Oid relid;      // InvalidOid: does not exist
    char *display;  // schema.table, quoted where needed
};

// `function` names the SQL function in every message. Needs an SPI connection; raises ERROR.
TargetName resolve_target_name(const char *function, const char *target);

// The target's kind, persistence, row security and the caller's privileges for `mode`; then its columns.
// `use` names what needs the privileges in the message (nullptr: "mode '<mode>'"). Throws PgError.
TargetFacts check_existing_target(const char *function, const TargetName &name, LoadMode mode,
                                  const char *use = nullptr);

// Creates the target from `plan` as the caller (a NOTICE says so) and returns its OID. Throws PgError.
Oid create_target(const char *function, const TargetName &name, const QueryColumns &plan);

// What every query-job function does first, as PostgreSQL-only code (call it while the frame holds no C++
// object): the preload and nesting refusals are the caller's; this connects SPI, resolves the server, follows
// a named job (if_running) and names the target. `skip`: a named job is unfinished and if_running => 'skip'
// (a NOTICE said so; SPI is finished, return NULL).
struct QueryCallStart {
    ForeignServer *server;
    int64 after_job;
    TargetName target;
    bool skip;
};
QueryCallStart begin_query_call(const char *function, const char *server_name, const char *job_name,
                                const char *if_running, const char *target);

// `fn` (the pure checks: SOQL, describe, options), with an sfb::Error(InvalidParameter) raised as an ERROR
// naming `function`.
template <typename Fn>
auto checked_for(const char *function, Fn fn) -> decltype(fn()) {
    try {
        return fn();
    } catch (const Error &e) {
        if (e.kind() != ErrorKind::InvalidParameter)
            throw;
        raise_error(ERRCODE_INVALID_PARAMETER_VALUE, std::string(function) + ": " + e.what());
    }
}

// A query job to record: its sf_bulk.jobs and sf_bulk.queries rows.
struct QueryJobOrder {
    const char *server_name = nullptr;
    Operation operation = Operation::Query;
    std::string soql;
    const QueryColumns *plan = nullptr;
    const TargetName *target = nullptr;
    Oid target_relid = InvalidOid;
    std::string load_mode;  // "append", "replace", "merge", "sync"
    std::string api_version;
    const char *job_name = nullptr;
    int64 after_job = 0;
    const char *column_delimiter = "COMMA";
    std::optional<int64> page_size;
};

// Inserts the job as the current user's and returns its id. Throws PgError.
int64 insert_query_job(const QueryJobOrder &order);

}  // namespace sfb::pg
