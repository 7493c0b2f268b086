// IMPORT FOREIGN SCHEMA salesforce FROM SERVER s INTO local: one foreign table per queryable object of the
// org (describeGlobal), a column per field with the type of the one type map (core/type_map.h), both named
// by the lower-cased API name, with the options `object` and `field` spelling the API names. LIMIT TO and
// EXCEPT name objects by API name, case-insensitively; a quoted LIMIT TO name also names its table.
//
// Import options: engine 'auto' | 'rest' | 'bulk' (becomes each table's engine option) and skip_compound
// 'true' (leave out address and location fields, which Bulk query jobs cannot return). base64 fields are
// always left out: REST answers them with a link to the blob, not its bytes.
#include "core/describe.h"
#include "core/error.h"
#include "core/fdw_options.h"
#include "core/ingest_preflight.h"
#include "core/text_util.h"
#include "core/type_map.h"

#include "pg_headers.h"

extern "C" {
#include "commands/defrem.h"
#include "executor/spi.h"
#include "foreign/foreign.h"
#include "nodes/parsenodes.h"
#include "utils/builtins.h"
}

#include "backend_call.h"
#include "describe_cache.h"
#include "fdw_meta.h"
#include "guard.h"
#include "org_access.h"

#include <set>
#include <string>
#include <vector>

namespace sfb::pg {

namespace {

constexpr const char *kWhat = "IMPORT FOREIGN SCHEMA";

struct ImportRequest {
    std::string remote_schema;
    std::string local_schema;
    std::string server;
    int list_type;                   // FDW_IMPORT_SCHEMA_ALL / LIMIT_TO / EXCEPT
    std::vector<std::string> named;  // the LIMIT TO / EXCEPT names
    OptionList options;
};

std::string quoted_identifier(const std::string &name) {
    return pg_call([&name] { return quote_identifier(name.c_str()); });
}

std::string quoted_literal(const std::string &value) {
    std::string out = "'";
    for (char c : value) {
        if (c == '\'')
            out += '\'';
        out += c;
    }
    return out + "'";
}

std::vector<std::string> import(const ImportRequest &req) {
    if (!ascii_iequals(req.remote_schema, "salesforce"))
        raise_error(
            ERRCODE_FDW_SCHEMA_NOT_FOUND,
            std::string(kWhat) + ": a salesforce server has one remote schema, \"salesforce\"; not \"" +
                req.remote_schema + "\"",
            "", "IMPORT FOREIGN SCHEMA salesforce FROM SERVER " + req.server + " INTO " + req.local_schema);
    std::string engine;
    bool skip_compound = false;
    for (const auto &[name, value] : req.options) {
        if (name == "engine") {
            try {
                engine = std::string(to_string(parse_scan_engine(value, name)));
            } catch (const Error &e) {
                raise_error(ERRCODE_FDW_INVALID_OPTION_NAME, std::string(kWhat) + ": " + e.what());
            }
        } else if (name == "skip_compound") {
            if (!ascii_iequals(value, "true") && !ascii_iequals(value, "false"))
                raise_error(ERRCODE_FDW_INVALID_OPTION_NAME,
                            std::string(kWhat) + ": option \"skip_compound\" takes true or false");
            skip_compound = ascii_iequals(value, "true");
        } else {
            raise_error(ERRCODE_FDW_INVALID_OPTION_NAME, std::string(kWhat) + ": invalid option \"" + name +
                                                             "\"; valid options are: engine, skip_compound");
        }
    }
    OrgCredentials credentials = read_org_credentials(OrgKey{req.server, GetUserId()});
    OrgCall org{req.server, parse_api_version(credentials.server.api_version)};
    GlobalDescribe global = parse_describe_global(cached_describe(org, "", false, kWhat));

    std::vector<std::string> objects;
    std::vector<std::string> queryable;
    for (const SObjectSummary &o : global.sobjects)
        if (o.queryable)
            queryable.push_back(o.name);
    if (req.list_type != FDW_IMPORT_SCHEMA_ALL) {
        // A name that is not an object of the org is an error, not silently nothing.
        for (const std::string &n : req.named) {
            const SObjectSummary *o = global.find(n);
            if (o == nullptr || !o->queryable) {
                std::string close;
                for (const std::string &c : closest_names(n, queryable))
                    close += (close.empty() ? "" : ", ") + c;
                raise_error(ERRCODE_FDW_TABLE_NOT_FOUND,
                            std::string(kWhat) + ": the org has no queryable object \"" + n + "\"" +
                                (close.empty() ? std::string() : " (closest: " + close + ")"));
            }
        }
    }
    for (const std::string &name : queryable) {
        bool listed = false;
        for (const std::string &n : req.named)
            listed = listed || ascii_iequals(n, name);
        if ((req.list_type == FDW_IMPORT_SCHEMA_LIMIT_TO && !listed) ||
            (req.list_type == FDW_IMPORT_SCHEMA_EXCEPT && listed))
            continue;
        objects.push_back(name);
    }

    std::vector<std::string> statements;
    for (const std::string &name : objects) {
        // A table is named by the lower-cased API name, or as a LIMIT TO entry spells it: PostgreSQL keeps
        // only the tables named exactly as listed, and a quoted "Invoice__c" is listed so.
        std::string table = ascii_lowercase(name);
        if (req.list_type == FDW_IMPORT_SCHEMA_LIMIT_TO)
            for (const std::string &n : req.named)
                if (ascii_iequals(n, name))
                    table = n;
        ObjectDescribe d = parse_sobject_describe(cached_describe(org, name, false, kWhat));
        std::string columns;
        for (const FieldDescribe &f : d.fields) {
            PgColumnType t = pg_type_for(f);
            if (ascii_iequals(f.type, "base64") || (skip_compound && t.compound))
                continue;
            if (!columns.empty())
                columns += ",\n  ";
            // The grammar wants OPTIONS before COLLATE.
            columns += quoted_identifier(ascii_lowercase(f.name)) + " " + t.sql + " OPTIONS (field " +
                       quoted_literal(f.name) + ")";
            if (!t.collation.empty())
                columns += " COLLATE " + quoted_identifier(t.collation);
        }
        std::string sql = "CREATE FOREIGN TABLE " + quoted_identifier(req.local_schema) + "." +
                          quoted_identifier(table) + " (\n  " + columns + "\n) SERVER " +
                          quoted_identifier(req.server) + " OPTIONS (object " + quoted_literal(d.name);
        if (!engine.empty())
            sql += ", engine " + quoted_literal(engine);
        statements.push_back(sql + ")");
    }
    return statements;
}

struct ImportIo {
    ImportForeignSchemaStmt *stmt;
    Oid serverid;
    List *result;
};

void run_import(void *arg) {
    auto *io = static_cast<ImportIo *>(arg);
    ImportRequest req;
    pg_call([&req, io] {
        req.remote_schema = io->stmt->remote_schema;
        req.local_schema = io->stmt->local_schema;
        req.server = GetForeignServer(io->serverid)->servername;
        req.list_type = io->stmt->list_type;
        ListCell *lc;
        foreach (lc, io->stmt->table_list)
            req.named.emplace_back(((RangeVar *)lfirst(lc))->relname);
        read_options(io->stmt->options, req.options);
        if (SPI_connect() != SPI_OK_CONNECT)
            elog(ERROR, "SPI_connect failed");
    });
    std::vector<std::string> statements = import(req);
    pg_call([] { SPI_finish(); });
    io->result = pg_call([&statements] {
        List *out = NIL;
        for (const std::string &s : statements)
            out = lappend(out, pstrdup(s.c_str()));
        return out;
    });
}

}  // namespace

List *sf_import_foreign_schema(ImportForeignSchemaStmt *stmt, Oid serverid) {
    ImportIo io{stmt, serverid, NIL};
    guarded_void_call(run_import, &io);
    return io.result;
}

}  // namespace sfb::pg
