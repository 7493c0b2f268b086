#include "describe_cache.h"

#include "core/bulk_api.h"
#include "core/error.h"
#include "core/sf_names.h"
#include "core/text_util.h"

// Before postgres.h: port.h turns snprintf into a macro that the JSON library cannot use.
#include <nlohmann/json.hpp>

#include "pg_headers.h"

extern "C" {
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "foreign/foreign.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
}

#include "guard.h"
#include "owner.h"
#include "settings.h"

#include <chrono>
#include <map>
#include <tuple>
#include <optional>
#include <string>

namespace sfb::pg {

namespace {

struct CachedRow {
    bool found = false;
    bool fresh = false;
    std::string body;
    std::optional<std::string> validator;  // the Date of the answer it came from: If-Modified-Since
    std::string fetched_at;                // as timestamptz text, for messages
};

// The user mapping whose Salesforce user the describe is of (the caller's own, or PUBLIC).
Oid mapping_of(const std::string &server) {
    return pg_call([&server] {
        ForeignServer *s = GetForeignServerByName(server.c_str(), false);
        return GetUserMapping(GetUserId(), s->serverid)->umid;
    });
}

// Reads and writes run as the extension's owner: the table is nobody else's to touch.
CachedRow read_row(Oid mapping, const std::string &key, const std::string &version) {
    CachedRow row;
    pg_call([&] {
        const char *sql =
            "SELECT body::text, validator, fetched_at OPERATOR(pg_catalog.>) "
            "(pg_catalog.now() OPERATOR(pg_catalog.-) pg_catalog.make_interval(secs => $4)), fetched_at "
            "FROM sf_bulk.describe WHERE mapping OPERATOR(pg_catalog.=) $1 "
            "AND object OPERATOR(pg_catalog.=) $2 AND api_version OPERATOR(pg_catalog.=) $3";
        Oid types[4] = {OIDOID, TEXTOID, TEXTOID, FLOAT8OID};
        Datum values[4] = {ObjectIdGetDatum(mapping), CStringGetTextDatum(key.c_str()),
                           CStringGetTextDatum(version.c_str()),
                           Float8GetDatum(static_cast<double>(settings.describe_ttl_s))};
        as_extension_owner([&] {
            if (SPI_execute_with_args(sql, 4, types, values, nullptr, true, 1) != SPI_OK_SELECT)
                elog(ERROR, "could not read the sf_bulk describe cache");
        });
        if (SPI_processed == 0)
            return;
        HeapTuple tuple = SPI_tuptable->vals[0];
        TupleDesc desc = SPI_tuptable->tupdesc;
        row.found = true;
        row.body = SPI_getvalue(tuple, desc, 1);
        if (char *validator = SPI_getvalue(tuple, desc, 2))
            row.validator = std::string(validator);
        bool is_null;
        row.fresh = DatumGetBool(SPI_getbinval(tuple, desc, 3, &is_null));
        row.fetched_at = SPI_getvalue(tuple, desc, 4);
    });
    return row;
}

void write_row(const std::string &server, Oid mapping, const std::string &key, const std::string &version,
               const std::string &body, const std::optional<std::string> &validator) {
    // A read-only transaction or a standby (a foreign-table SELECT there) cannot write the table: what it
    // read stays in the session's copy.
    if (pg_call([] { return XactReadOnly || RecoveryInProgress(); }))
        return;
    pg_call([&] {
        const char *sql =
            "INSERT INTO sf_bulk.describe AS d (server_name, mapping, object, api_version, body, validator, "
            "fetched_at) VALUES ($1, $2, $3, $4, $5::jsonb, $6, pg_catalog.now()) "
            "ON CONFLICT (mapping, object, api_version) DO UPDATE SET body = excluded.body, "
            "validator = excluded.validator, server_name = excluded.server_name, fetched_at = "
            "excluded.fetched_at";
        Oid types[6] = {NAMEOID, OIDOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID};
        Datum values[6] = {DirectFunctionCall1(namein, CStringGetDatum(server.c_str())),
                           ObjectIdGetDatum(mapping),
                           CStringGetTextDatum(key.c_str()),
                           CStringGetTextDatum(version.c_str()),
                           CStringGetTextDatum(body.c_str()),
                           validator ? CStringGetTextDatum(validator->c_str()) : (Datum)0};
        char nulls[6] = {' ', ' ', ' ', ' ', ' ', validator ? ' ' : 'n'};
        as_extension_owner([&] {
            if (SPI_execute_with_args(sql, 6, types, values, nulls, false, 0) != SPI_OK_INSERT)
                elog(ERROR, "could not write the sf_bulk describe cache");
        });
    });
}

// Salesforce said 304: the row stands, fresh again from now.
void touch_row(Oid mapping, const std::string &key, const std::string &version,
               const std::optional<std::string> &validator) {
    // A read-only transaction or a standby (a foreign-table SELECT there) cannot write the table: what it
    // read stays in the session's copy.
    if (pg_call([] { return XactReadOnly || RecoveryInProgress(); }))
        return;
    pg_call([&] {
        const char *sql =
            "UPDATE sf_bulk.describe SET fetched_at = pg_catalog.now(), validator = coalesce($4, validator) "
            "WHERE mapping OPERATOR(pg_catalog.=) $1 AND object OPERATOR(pg_catalog.=) $2 "
            "AND api_version OPERATOR(pg_catalog.=) $3";
        Oid types[4] = {OIDOID, TEXTOID, TEXTOID, TEXTOID};
        Datum values[4] = {ObjectIdGetDatum(mapping), CStringGetTextDatum(key.c_str()),
                           CStringGetTextDatum(version.c_str()),
                           validator ? CStringGetTextDatum(validator->c_str()) : (Datum)0};
        char nulls[4] = {' ', ' ', ' ', validator ? ' ' : 'n'};
        as_extension_owner([&] {
            if (SPI_execute_with_args(sql, 4, types, values, nulls, false, 0) != SPI_OK_UPDATE)
                elog(ERROR, "could not update the sf_bulk describe cache");
        });
    });
}

// This session's copy of what it read or fetched. The table is written in the caller's transaction, so a
// call that fails (a refused pre-flight, most often) takes its row with it; the session copy survives that,
// and a user correcting a typo call after call costs one describe, not one per attempt.
struct SessionEntry {
    std::string body;
    std::optional<std::string> validator;
    std::chrono::steady_clock::time_point fetched;
    // Seen in the table by a later transaction: written by a transaction that committed, so other sessions
    // have it too. Until then every use checks, and writes it again if its transaction was rolled back.
    bool in_table = false;
};
using SessionKey = std::tuple<Oid, std::string, std::string>;  // mapping, object (lower case), API version

std::map<SessionKey, SessionEntry> &session_cache() {
    static std::map<SessionKey, SessionEntry> entries;
    return entries;
}

bool fresh(const SessionEntry &entry) {
    return std::chrono::steady_clock::now() - entry.fetched < std::chrono::seconds(settings.describe_ttl_s);
}

std::string describe_subject(const std::string &object) {
    return object.empty() ? std::string("the org's objects") : quote_for_message(object);
}

}  // namespace

std::string cached_describe(const OrgCall &org, const std::string &object, bool refresh,
                            const char *function) {
    std::string path;
    try {
        path =
            object.empty() ? sobjects_path(org.api_version) : sobject_describe_path(org.api_version, object);
    } catch (const Error &e) {
        raise_error(ERRCODE_INVALID_PARAMETER_VALUE, std::string(function) + ": " + e.what());
    }
    std::string key = ascii_lowercase(object);
    std::string version = org.api_version.str();
    Oid mapping = mapping_of(org.server);
    SessionKey session_key{mapping, key, version};
    auto &session = session_cache();
    if (auto entry = session.find(session_key); entry != session.end() && fresh(entry->second) && !refresh) {
        if (!entry->second.in_table) {
            if (read_row(mapping, key, version).found)
                entry->second.in_table = true;
            else
                write_row(org.server, mapping, key, version, entry->second.body, entry->second.validator);
        }
        return entry->second.body;
    }
    CachedRow cached = read_row(mapping, key, version);
    if (cached.found && cached.fresh && !refresh) {
        session[session_key] =
            SessionEntry{cached.body, cached.validator, std::chrono::steady_clock::now(), true};
        return cached.body;
    }
    if (!cached.found)
        if (auto entry = session.find(session_key); entry != session.end()) {
            // The table lost it (a rolled-back call): this session's copy can still be revalidated.
            cached.found = true;
            cached.body = entry->second.body;
            cached.validator = entry->second.validator;
        }

    HttpRequest request;
    request.url = path;
    request.headers.emplace_back("Accept", "application/json");
    if (cached.found && cached.validator)
        request.headers.emplace_back("If-Modified-Since", *cached.validator);
    // A describe that is only old is better than none when Salesforce cannot answer now: the call goes on
    // with it, and says so. (A cold cache has nothing to offer: the error stands.) `why` names the function.
    const auto use_stale = [&](const std::string &why) {
        const std::string warning =
            why + "; using the describe of " + describe_subject(object) + " cached " +
            (cached.fetched_at.empty() ? std::string("in this session") : "at " + cached.fetched_at);
        pg_call([&warning] { ereport(WARNING, (errmsg("%s", warning.c_str()))); });
        return cached.body;
    };
    HttpResponse response;
    try {
        response = call_org(org, std::move(request), function);
    } catch (const PgError &e) {
        // Only call_org's own transport failure (raised in C++, no PostgreSQL error behind it).
        if (!cached.found || e.sqlstate() != ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION)
            throw;
        return use_stale(e.what());
    }
    if (response.status >= 500 && cached.found)
        return use_stale(std::string(function) + ": Salesforce answered the describe with HTTP " +
                         std::to_string(response.status));
    std::optional<std::string> validator = response.header("Date");
    if (response.status == 304 && cached.found) {
        if (!read_row(mapping, key, version).found)
            write_row(org.server, mapping, key, version, cached.body,
                      validator ? validator : cached.validator);
        else
            touch_row(mapping, key, version, validator);
        session[session_key] = SessionEntry{cached.body, validator ? validator : cached.validator,
                                            std::chrono::steady_clock::now()};
        return cached.body;
    }
    if (response.status == 404 && !object.empty())
        raise_error(ERRCODE_UNDEFINED_OBJECT,
                    std::string(function) + ": Salesforce object " + describe_subject(object) +
                        " does not exist, or the server's user cannot see it",
                    parse_api_error(response.status, response.body).summary());
    if (response.status != 200)
        raise_error(ERRCODE_FDW_ERROR, std::string(function) + ": Salesforce refused the describe of " +
                                           describe_subject(object) + ": " +
                                           parse_api_error(response.status, response.body).summary());
    nlohmann::json parsed = nlohmann::json::parse(response.body, nullptr, false);
    if (!parsed.is_object() || (object.empty() ? !parsed.contains("sobjects") : !parsed.contains("fields")))
        raise_error(ERRCODE_FDW_INVALID_DATA_TYPE, std::string(function) + ": the describe of " +
                                                       describe_subject(object) +
                                                       " from Salesforce is not a describe result");
    write_row(org.server, mapping, key, version, response.body, validator);
    session[session_key] = SessionEntry{response.body, validator, std::chrono::steady_clock::now()};
    return response.body;
}

const ObjectDescribe &CallDescribes::get(const std::string &object) {
    auto found = describes_.find(object);
    if (found != describes_.end())
        return found->second;
    std::string body;
    try {
        body = cached_describe(org_, object, false, function_);
    } catch (const PgError &e) {
        if (e.sqlstate() == ERRCODE_UNDEFINED_OBJECT || e.sqlstate() == ERRCODE_INVALID_PARAMETER_VALUE)
            throw;
        raise_error(e.sqlstate(), e.what(), e.detail(),
                    "sf_bulk checks the call against Salesforce's describe first; validate => false skips "
                    "the check.");
    }
    return describes_.emplace(object, parse_sobject_describe(body)).first->second;
}

DescribeLookup CallDescribes::known() const {
    return [this](std::string_view name) -> const ObjectDescribe * {
        auto found = describes_.find(std::string(name));
        return found == describes_.end() ? nullptr : &found->second;
    };
}

DescribeLookup CallDescribes::fetching() {
    return [this](std::string_view name) -> const ObjectDescribe * {
        if (name == kPolymorphicTargetObject)
            return nullptr;
        return &get(std::string(name));
    };
}

}  // namespace sfb::pg
