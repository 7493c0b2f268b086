// sf_bulk_query: check the SOQL, the describe of what it selects and the target table, create the table
// from the describe when it does not exist, and queue the query job for the worker (src/pg/query_task.cpp),
// which the commit wakes. Everything a user can get wrong is refused here, before a Salesforce job exists.
#include "core/error.h"
#include "core/query_target.h"
#include "core/soql_select.h"

#include "pg_headers.h"

extern "C" {
#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "foreign/foreign.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/varlena.h"
}

#include "backend_call.h"
#include "compat.h"
#include "describe_cache.h"
#include "enqueue.h"
#include "guard.h"
#include "module.h"
#include "org_access.h"
#include "query_enqueue.h"
#include "owner.h"
#include "shmem.h"
#include "spi_columns.h"

#include <optional>
#include <string>
#include <vector>

namespace sfb::pg {

namespace {

constexpr const char *kFunction = "sf_bulk_query";

// The call's arguments (palloc'd C strings; NULL where the caller passed NULL). Positions follow the SQL
// signature in extension/sf_bulk--1.2--1.3.sql.
struct QueryArgs {
    const char *soql;
    const char *target;
    const char *server;
    const char *mode;
    bool all_rows;
    const char *job_name;
    const char *if_running;
    const char *column_delimiter;
    std::optional<int64> page_size;
    bool validate;
};

void require(const void *value, const char *name) {
    if (value == nullptr)
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                        errmsg("%s: %s must not be NULL", kFunction, name)));
}

QueryArgs read_args(FunctionCallInfo fcinfo) {
    QueryArgs args{};
    args.soql = text_arg(fcinfo, 0);
    args.target = text_arg(fcinfo, 1);
    args.server = name_arg(fcinfo, 2);
    args.mode = text_arg(fcinfo, 3);
    if (PG_ARGISNULL(4))
        require(nullptr, "all_rows");
    args.all_rows = PG_GETARG_BOOL(4);
    args.job_name = text_arg(fcinfo, 5);
    args.if_running = text_arg(fcinfo, 6);
    args.column_delimiter = text_arg(fcinfo, 7);
    if (!PG_ARGISNULL(8)) {
        args.page_size = PG_GETARG_INT64(8);
        if (*args.page_size <= 0)
            ereport(ERROR,
                    (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                     errmsg("%s: page_size must be positive, not " INT64_FORMAT, kFunction, *args.page_size),
                     errhint("It is the most rows Salesforce puts in one result page (maxRecords); "
                             "NULL leaves the page size to Salesforce.")));
    }
    if (PG_ARGISNULL(9))
        require(nullptr, "validate");
    args.validate = PG_GETARG_BOOL(9);
    require(args.soql, "soql");
    require(args.target, "target");
    require(args.mode, "mode");
    require(args.if_running, "if_running");
    require(args.column_delimiter, "column_delimiter");
    return args;
}

}  // namespace

TargetName resolve_target_name(const char *function, const char *target) {
    List *names = sfb_string_to_qualified_name_list(target);
    RangeVar *rv = makeRangeVarFromNameList(names);
    if (rv->catalogname != nullptr)
        ereport(ERROR,
                (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                 errmsg("%s: target \"%s\" names a database; give schema.table or table", function, target)));
    TargetName out{};
    out.relid = RangeVarGetRelid(rv, AccessShareLock, true);
    Oid namespace_id =
        OidIsValid(out.relid) ? get_rel_namespace(out.relid) : RangeVarGetCreationNamespace(rv);
    if (!OidIsValid(out.relid) && isAnyTempNamespace(namespace_id))
        ereport(ERROR,
                (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                 errmsg("%s: target %s would be a temporary table, which the background worker cannot see",
                        function, quote_identifier(rv->relname)),
                 errhint("Load into an ordinary (or unlogged) table.")));
    out.schema = get_namespace_name(namespace_id);
    out.table = pstrdup(rv->relname);
    out.display = psprintf("%s.%s", quote_identifier(out.schema), quote_identifier(out.table));
    return out;
}

namespace {

// What the catalog says of an existing target, as plain palloc'd data (read under pg_call; the C++ values
// are built after, so that an ERROR here jumps over no C++ object).
struct CatalogColumn {
    char *name;
    char *type;
    bool generated;
    bool identity_always;
};

struct CatalogTarget {
    char relkind;
    char persistence;
    bool row_security;
    bool can_insert, can_delete, can_update, can_select;
    bool id_is_unique;
    int column_count;
    CatalogColumn *columns;
};

bool bool_value(int row, int column) {
    return bool_column(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, column);
}

// Not read-only SPI: that would read with the snapshot taken before this call's own DDL, and miss a column
// sf_bulk_sync has just added for a new field.
CatalogTarget *read_target(Oid relid) {
    CatalogTarget &out = *static_cast<CatalogTarget *>(palloc0(sizeof(CatalogTarget)));
    Oid types[1] = {OIDOID};
    Datum values[1] = {ObjectIdGetDatum(relid)};
    if (SPI_execute_with_args(
            "SELECT c.relkind, c.relpersistence, c.relrowsecurity, "
            "pg_catalog.has_table_privilege(c.oid, 'INSERT'), pg_catalog.has_table_privilege(c.oid, "
            "'DELETE'), "
            "pg_catalog.has_table_privilege(c.oid, 'UPDATE'), pg_catalog.has_table_privilege(c.oid, "
            "'SELECT'), "
            "EXISTS (SELECT 1 FROM pg_catalog.pg_index i JOIN pg_catalog.pg_attribute a "
            "ON a.attrelid OPERATOR(pg_catalog.=) i.indrelid AND a.attnum OPERATOR(pg_catalog.=) i.indkey[0] "
            "WHERE i.indrelid OPERATOR(pg_catalog.=) c.oid AND i.indisunique AND i.indisvalid "
            "AND i.indnkeyatts OPERATOR(pg_catalog.=) 1 AND i.indpred IS NULL AND i.indexprs IS NULL "
            "AND a.attname OPERATOR(pg_catalog.=) 'id') "
            "FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) $1",
            1, types, values, nullptr, false, 1) != SPI_OK_SELECT ||
        SPI_processed != 1)
        elog(ERROR, "could not read the target table's catalog entry");
    bool is_null;
    out.relkind = DatumGetChar(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &is_null));
    out.persistence = DatumGetChar(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &is_null));
    out.row_security = bool_value(0, 3);
    out.can_insert = bool_value(0, 4);
    out.can_delete = bool_value(0, 5);
    out.can_update = bool_value(0, 6);
    out.can_select = bool_value(0, 7);
    out.id_is_unique = bool_value(0, 8);
    if (SPI_execute_with_args("SELECT attname::text, pg_catalog.format_type(atttypid, atttypmod), "
                              "attgenerated <> '', attidentity = 'a' FROM pg_catalog.pg_attribute "
                              "WHERE attrelid OPERATOR(pg_catalog.=) $1 AND attnum > 0 AND NOT attisdropped "
                              "ORDER BY attnum",
                              1, types, values, nullptr, false, 0) != SPI_OK_SELECT)
        elog(ERROR, "could not read the target table's columns");
    out.column_count = static_cast<int>(SPI_processed);
    out.columns = static_cast<CatalogColumn *>(palloc0(sizeof(CatalogColumn) * Max(out.column_count, 1)));
    for (int i = 0; i < out.column_count; ++i) {
        out.columns[i].name = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
        out.columns[i].type = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);
        out.columns[i].generated = bool_value(i, 3);
        out.columns[i].identity_always = bool_value(i, 4);
    }
    return &out;
}

const char *relkind_name(char relkind) {
    switch (relkind) {
        case RELKIND_VIEW:
            return "a view";
        case RELKIND_MATVIEW:
            return "a materialized view";
        case RELKIND_FOREIGN_TABLE:
            return "a foreign table";
        case RELKIND_SEQUENCE:
            return "a sequence";
        case RELKIND_COMPOSITE_TYPE:
            return "a composite type";
        default:
            return "not a table";
    }
}

[[noreturn]] void refuse(const std::string &message, const std::string &hint = "") {
    raise_error(ERRCODE_INVALID_PARAMETER_VALUE, std::string(kFunction) + ": " + message, "", hint);
}

}  // namespace

TargetFacts check_existing_target(const char *function, const TargetName &name, LoadMode mode,
                                  const char *use) {
    auto refuse = [function](const std::string &message, const std::string &hint = "") {
        raise_error(ERRCODE_INVALID_PARAMETER_VALUE, std::string(function) + ": " + message, "", hint);
    };
    const CatalogTarget &catalog = *pg_call([&name] { return read_target(name.relid); });
    const std::string display = name.display;
    if (catalog.relkind != RELKIND_RELATION && catalog.relkind != RELKIND_PARTITIONED_TABLE)
        refuse("target " + display + " is " + relkind_name(catalog.relkind) + "; " + function +
               " loads rows into a table");
    if (catalog.persistence == RELPERSISTENCE_TEMP)
        refuse("target " + std::string(name.table) +
                   " is a temporary table, which the background worker cannot see",
               "Load into an ordinary (or unlogged) table.");
    if (catalog.row_security)
        refuse("target " + display + " has row-level security enabled",
               std::string(function) +
                   " loads through COPY FROM, which PostgreSQL does not allow on a table with "
                   "row-level security; load into a table without it and copy from there.");
    const char *missing = !catalog.can_insert                                ? "INSERT"
                          : mode == LoadMode::Replace && !catalog.can_delete ? "DELETE"
                          : mode == LoadMode::Merge && !catalog.can_update   ? "UPDATE"
                          : mode == LoadMode::Merge && !catalog.can_select   ? "SELECT"
                                                                             : nullptr;
    if (missing != nullptr)
        raise_error(ERRCODE_INSUFFICIENT_PRIVILEGE,
                    std::string(function) + ": permission denied for table " + display + ": " +
                        (use != nullptr ? std::string(use) : "mode '" + std::string(to_string(mode)) + "'") +
                        " needs " + missing + " on it",
                    "",
                    std::string("The worker loads with the privileges of the role that calls ") + function +
                        ", never more.");
    TargetFacts facts;
    facts.table = display;
    facts.id_is_unique = catalog.id_is_unique;
    for (int i = 0; i < catalog.column_count; ++i) {
        const CatalogColumn &c = catalog.columns[i];
        facts.columns.push_back(TargetColumn{c.name, c.type, c.generated, c.identity_always});
    }
    return facts;
}

Oid create_target(const char *function, const TargetName &name, const QueryColumns &plan) {
    std::string statement = create_table_statement(plan, name.display);
    return pg_call([&statement, &name, &plan, function] {
        // As the caller: the table is theirs, created where their privileges allow.
        if (SPI_execute(statement.c_str(), false, 0) != SPI_OK_UTILITY)
            elog(ERROR, "could not create the target table");
        Oid relid = RangeVarGetRelid(makeRangeVar(name.schema, name.table, -1), NoLock, false);
        ereport(NOTICE,
                (errmsg("%s: created table %s (%d columns%s)", function, name.display,
                        static_cast<int>(plan.columns.size()), plan.selects_id ? ", primary key id" : "")));
        return relid;
    });
}

namespace {

Datum text_datum(const std::string &value) {
    return PointerGetDatum(cstring_to_text_with_len(value.data(), static_cast<int>(value.size())));
}

}  // namespace

QueryCallStart begin_query_call(const char *function, const char *server_name, const char *job_name,
                                const char *if_running, const char *target) {
    check_if_running(function, if_running);
    if (SPI_connect() != SPI_OK_CONNECT)
        elog(ERROR, "SPI_connect failed");
    QueryCallStart start{};
    start.server = resolve_server(function, server_name);
    if (!follow_named_job(function, job_name, if_running, &start.after_job)) {
        SPI_finish();
        start.skip = true;
        return start;
    }
    start.target = resolve_target_name(function, target);
    return start;
}

int64 insert_query_job(const QueryJobOrder &order) {
    const std::string operation(to_string(order.operation));
    const QueryColumns &plan = *order.plan;
    int count = static_cast<int>(plan.columns.size());
    return pg_call([&]() -> int64 {
        Datum *paths = static_cast<Datum *>(palloc(sizeof(Datum) * Max(count, 1)));
        for (int i = 0; i < count; ++i)
            paths[i] = text_datum(plan.columns[i].path);
        const char *sql =
            "INSERT INTO sf_bulk.jobs (owner, server_name, operation, object, nulls, line_ending, "
            "column_delimiter, max_upload_bytes, columns, name, after_job, soql, target_schema, "
            "target_table, "
            "load_mode, page_size, target_relid) "
            "VALUES ($1, $2, $3, $4, 'keep', 'LF', $5, 0, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING "
            "id";
        Oid types[14] = {REGROLEOID, NAMEOID, TEXTOID, TEXTOID, TEXTOID, TEXTARRAYOID, TEXTOID,
                         INT8OID,    TEXTOID, NAMEOID, NAMEOID, TEXTOID, INT8OID,      OIDOID};
        Datum values[14] = {ObjectIdGetDatum(GetUserId()),
                            DirectFunctionCall1(namein, CStringGetDatum(order.server_name)),
                            text_datum(operation),
                            text_datum(plan.object),
                            CStringGetTextDatum(order.column_delimiter),
                            PointerGetDatum(construct_array(paths, count, TEXTOID, -1, false, TYPALIGN_INT)),
                            order.job_name ? CStringGetTextDatum(order.job_name) : (Datum)0,
                            Int64GetDatum(order.after_job),
                            text_datum(order.soql),
                            DirectFunctionCall1(namein, CStringGetDatum(order.target->schema)),
                            DirectFunctionCall1(namein, CStringGetDatum(order.target->table)),
                            text_datum(order.load_mode),
                            Int64GetDatum(order.page_size.value_or(0)),
                            ObjectIdGetDatum(order.target_relid)};
        char nulls[15] = "              ";
        nulls[6] = order.job_name ? ' ' : 'n';
        nulls[7] = order.after_job > 0 ? ' ' : 'n';
        nulls[12] = order.page_size ? ' ' : 'n';
        int64 id = 0;
        as_extension_owner([&] {
            if (SPI_execute_with_args(sql, 14, types, values, nulls, false, 1) != SPI_OK_INSERT_RETURNING)
                elog(ERROR, "could not record the sf_bulk query job");
            bool is_null;
            id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &is_null));
            Oid query_types[2] = {INT8OID, TEXTOID};
            Datum query_values[2] = {Int64GetDatum(id), text_datum(order.api_version)};
            if (SPI_execute_with_args("INSERT INTO sf_bulk.queries (job_id, api_version) VALUES ($1, $2)", 2,
                                      query_types, query_values, nullptr, false, 0) != SPI_OK_INSERT)
                elog(ERROR, "could not record the sf_bulk query job");
        });
        return id;
    });
}

namespace {

template <typename Fn>
auto checked(Fn fn) -> decltype(fn()) {
    return checked_for(kFunction, fn);
}

Datum enqueue_query(FunctionCallInfo fcinfo) {
    // PostgreSQL-only work first, while no C++ object exists in this frame.
    refuse_while_spooling(kFunction);
    require_preloaded(kFunction);
    QueryArgs args = read_args(fcinfo);
    QueryCallStart start =
        begin_query_call(kFunction, args.server, args.job_name, args.if_running, args.target);
    if (start.skip)
        PG_RETURN_NULL();
    ForeignServer *server = start.server;
    int64 after_job = start.after_job;
    TargetName target = start.target;

    LoadMode mode = checked([&] { return parse_load_mode(args.mode); });
    checked([&] { return csv::parse_delimiter(args.column_delimiter); });
    SoqlSelect select = checked([&] { return parse_soql_select(args.soql); });
    OrgCall org = org_for_call(kFunction, server->servername);
    // API 47.0 is the first with query jobs (the core refuses older ones when the worker starts the job).
    const std::string api_version = org.api_version.str();
    QueryColumns plan;
    if (args.validate) {
        CallDescribes describes(org, kFunction);
        const ObjectDescribe &root = describes.get(select.object);
        plan = checked([&] { return plan_query_columns(select, &root, describes.fetching()); });
    } else {
        plan = plan_query_columns(select, nullptr, nullptr);
    }

    Oid target_relid = target.relid;
    if (OidIsValid(target.relid)) {
        TargetFacts facts = check_existing_target(kFunction, target, mode);
        std::vector<std::string> problems = check_query_target(plan, facts, mode);
        if (!problems.empty()) {
            std::string detail;
            for (std::size_t i = 1; i < problems.size(); ++i)
                detail += (i > 1 ? "; " : "Also: ") + problems[i];
            raise_error(ERRCODE_INVALID_PARAMETER_VALUE, std::string(kFunction) + ": " + problems.front(),
                        detail.empty() ? detail : detail + ".",
                        "A selected field Owner.Email loads into the column owner_email; columns the query "
                        "does not select keep their defaults.");
        }
    } else if (!args.validate) {
        refuse(std::string("target ") + target.display + " does not exist",
               "sf_bulk_query creates it from Salesforce's describe, which validate => false skips; create "
               "the table first, or call with validate => true.");
    } else {
        if (mode == LoadMode::Merge && !plan.selects_id)
            refuse("mode 'merge' matches rows by id: select Id");
        target_relid = create_target(kFunction, target, plan);
    }

    QueryJobOrder order;
    order.server_name = server->servername;
    order.operation = args.all_rows ? Operation::QueryAll : Operation::Query;
    order.soql = args.soql;
    order.plan = &plan;
    order.target = &target;
    order.target_relid = target_relid;
    order.load_mode = std::string(to_string(mode));
    order.api_version = api_version;
    order.job_name = args.job_name;
    order.after_job = after_job;
    order.column_delimiter = args.column_delimiter;
    order.page_size = args.page_size;
    int64 job_id = insert_query_job(order);
    pg_call([] { SPI_finish(); });
    wake_worker_at_commit();
    return Int64GetDatum(job_id);
}

}  // namespace

}  // namespace sfb::pg

SFB_PG_FUNCTION(sf_bulk_query) {
    return sfb::pg::enqueue_query(fcinfo);
}
