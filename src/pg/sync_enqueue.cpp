// sf_bulk_sync: one run of a mirror (docs/soql-and-rest.md §4). The call reads the object's describe and the
// mirror's state, decides the kind of run (core/sync_plan.h), fetches the /deleted/ window of an incremental
// run, adds the columns of new fields, and queues a query job whose load (sync_load.cpp) merges the rows and
// moves the watermark in one transaction. Everything a user can get wrong is refused here, before a
// Salesforce job exists; the table is touched only by the load (and by the columns a schema change adds).
#include "core/csv.h"
#include "core/error.h"
#include "core/rest_query.h"
#include "core/soql_select.h"
#include "core/retry.h"  // parse_http_date
#include "core/spool_names.h"
#include "core/sync_plan.h"

#include "pg_headers.h"

extern "C" {
#include "catalog/pg_type.h"
#include "datatype/timestamp.h"
#include "executor/spi.h"
#include "foreign/foreign.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
}

#include "backend_call.h"
#include "describe_cache.h"
#include "enqueue.h"
#include "guard.h"
#include "module.h"
#include "org_access.h"
#include "owner.h"
#include "query_enqueue.h"
#include "settings.h"
#include "shmem.h"
#include "spool.h"
#include "spi_columns.h"

#include <optional>
#include <string>
#include <vector>

namespace sfb::pg {

namespace {

constexpr const char *kFunction = "sf_bulk_sync";
constexpr int64 kUnixEpochInPgMs = (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * 86400LL * 1000;

std::int64_t epoch_ms(TimestampTz t) {
    return t / 1000 + kUnixEpochInPgMs;
}

TimestampTz timestamptz_of(std::int64_t ms) {
    return (ms - kUnixEpochInPgMs) * 1000;
}

// The call's arguments (palloc'd; NULL where the caller passed NULL), in the order of the SQL signature in
// extension/sf_bulk--1.3--1.4.sql.
struct SyncArgs {
    const char *object;
    const char *target;
    const char *server;
    bool has_fields;
    int nfields;
    char **fields;
    const char *filter;
    const char *deletes;
    std::int64_t overlap_ms;
    std::optional<std::int64_t> refresh_formulas_ms;
    std::optional<std::int64_t> reconcile_ms;
    const char *job_name;
    const char *if_running;
};

void require(const void *value, const char *name) {
    if (value == nullptr)
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                        errmsg("%s: %s must not be NULL", kFunction, name)));
}

// An interval as milliseconds, months as 30 days (PostgreSQL's own rule for interval comparison).
std::int64_t interval_ms(const Interval *iv) {
    return iv->time / 1000 + static_cast<std::int64_t>(iv->day) * 86400000LL +
           static_cast<std::int64_t>(iv->month) * DAYS_PER_MONTH * 86400000LL;
}

std::optional<std::int64_t> positive_interval(FunctionCallInfo fcinfo, int n, const char *name) {
    if (PG_ARGISNULL(n))
        return std::nullopt;
    std::int64_t ms = interval_ms(PG_GETARG_INTERVAL_P(n));
    if (ms <= 0)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("%s: %s must be a positive interval", kFunction, name),
                        errhint("NULL (the default) never runs it.")));
    return ms;
}

SyncArgs read_args(FunctionCallInfo fcinfo) {
    SyncArgs args{};
    args.object = text_arg(fcinfo, 0);
    args.target = text_arg(fcinfo, 1);
    args.server = name_arg(fcinfo, 2);
    args.has_fields = !PG_ARGISNULL(3);
    if (args.has_fields) {
        ArrayType *array = PG_GETARG_ARRAYTYPE_P(3);
        Datum *elements;
        bool *nulls;
        deconstruct_array(array, TEXTOID, -1, false, TYPALIGN_INT, &elements, &nulls, &args.nfields);
        args.fields = static_cast<char **>(palloc(sizeof(char *) * Max(args.nfields, 1)));
        for (int i = 0; i < args.nfields; ++i) {
            if (nulls[i])
                ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                                errmsg("%s: fields must not contain NULL", kFunction)));
            args.fields[i] = TextDatumGetCString(elements[i]);
        }
        if (args.nfields == 0)
            ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                            errmsg("%s: fields must not be empty", kFunction),
                            errhint("NULL (the default) mirrors every field Bulk API 2.0 can read.")));
    }
    args.filter = text_arg(fcinfo, 4);
    args.deletes = text_arg(fcinfo, 5);
    require(args.object, "object");
    require(args.target, "target");
    require(args.deletes, "deletes");
    if (PG_ARGISNULL(6))
        require(nullptr, "overlap");
    args.overlap_ms = interval_ms(PG_GETARG_INTERVAL_P(6));
    if (args.overlap_ms < 0)
        ereport(
            ERROR,
            (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("%s: overlap must not be negative", kFunction),
             errhint("It is how far before the watermark each run reads again (default 5 minutes).")));
    args.refresh_formulas_ms = positive_interval(fcinfo, 7, "refresh_formulas");
    args.reconcile_ms = positive_interval(fcinfo, 8, "reconcile");
    args.job_name = text_arg(fcinfo, 9);
    args.if_running = text_arg(fcinfo, 10);
    require(args.if_running, "if_running");
    if (args.filter != nullptr && args.filter[strspn(args.filter, " \t\r\n")] == '\0')
        ereport(ERROR,
                (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("%s: filter must not be empty", kFunction),
                 errhint("NULL (the default) mirrors every record.")));
    return args;
}

// The mirror's row in sf_bulk.syncs, locked for this call (plain palloc'd data).
struct StoredSync {
    bool found;
    int64 id;
    Oid owner;
    Oid target_relid;
    bool fields_default;
    int nfields;
    char **fields;
    bool has_watermark, has_cursor, has_full, has_formulas;
    TimestampTz watermark, deleted_cursor, last_full_at, last_formulas_at;
    int64 unfinished_job;  // the latest run not yet finished, 0: none
};

StoredSync *read_sync(const char *server, const char *object, const TargetName &target) {
    StoredSync &s = *static_cast<StoredSync *>(palloc0(sizeof(StoredSync)));
    as_extension_owner([&] {
        Oid types[4] = {NAMEOID, TEXTOID, NAMEOID, NAMEOID};
        Datum values[4] = {DirectFunctionCall1(namein, CStringGetDatum(server)), CStringGetTextDatum(object),
                           DirectFunctionCall1(namein, CStringGetDatum(target.schema)),
                           DirectFunctionCall1(namein, CStringGetDatum(target.table))};
        if (SPI_execute_with_args(
                "SELECT id, owner::oid, target_relid, fields_default, fields, watermark, deleted_cursor, "
                "last_full_at, last_formulas_at, "
                "(SELECT max(r.job_id) FROM sf_bulk.sync_runs r JOIN sf_bulk.jobs j "
                "ON j.id OPERATOR(pg_catalog.=) r.job_id WHERE r.sync_id OPERATOR(pg_catalog.=) s.id "
                "AND j.state IN ('queued', 'running')) "
                "FROM sf_bulk.syncs s WHERE server_name OPERATOR(pg_catalog.=) $1 "
                "AND object OPERATOR(pg_catalog.=) $2 AND target_schema OPERATOR(pg_catalog.=) $3 "
                "AND target_table OPERATOR(pg_catalog.=) $4 FOR UPDATE OF s",
                4, types, values, nullptr, false, 1) != SPI_OK_SELECT)
            elog(ERROR, "could not read the state of the mirror");
        if (SPI_processed == 0)
            return;
        HeapTuple t = SPI_tuptable->vals[0];
        TupleDesc d = SPI_tuptable->tupdesc;
        bool is_null;
        s.found = true;
        s.id = DatumGetInt64(SPI_getbinval(t, d, 1, &is_null));
        s.owner = DatumGetObjectId(SPI_getbinval(t, d, 2, &is_null));
        s.target_relid = DatumGetObjectId(SPI_getbinval(t, d, 3, &is_null));
        s.fields_default = DatumGetBool(SPI_getbinval(t, d, 4, &is_null));
        Datum fields = SPI_getbinval(t, d, 5, &is_null);
        Datum *elements;
        bool *nulls;
        deconstruct_array(DatumGetArrayTypeP(fields), TEXTOID, -1, false, TYPALIGN_INT, &elements, &nulls,
                          &s.nfields);
        s.fields = static_cast<char **>(palloc(sizeof(char *) * Max(s.nfields, 1)));
        for (int i = 0; i < s.nfields; ++i)
            s.fields[i] = TextDatumGetCString(elements[i]);
        auto timestamp = [&](int column, bool &has, TimestampTz &value) {
            Datum v = SPI_getbinval(t, d, column, &is_null);
            has = !is_null;
            value = is_null ? 0 : DatumGetTimestampTz(v);
        };
        timestamp(6, s.has_watermark, s.watermark);
        timestamp(7, s.has_cursor, s.deleted_cursor);
        timestamp(8, s.has_full, s.last_full_at);
        timestamp(9, s.has_formulas, s.last_formulas_at);
        Datum v = SPI_getbinval(t, d, 10, &is_null);
        s.unfinished_job = is_null ? 0 : DatumGetInt64(v);
    });
    return &s;
}

Datum text_array(const std::vector<std::string> &items) {
    Datum *elements = static_cast<Datum *>(palloc(sizeof(Datum) * Max(items.size(), std::size_t{1})));
    for (std::size_t i = 0; i < items.size(); ++i)
        elements[i] =
            PointerGetDatum(cstring_to_text_with_len(items[i].data(), static_cast<int>(items[i].size())));
    return PointerGetDatum(
        construct_array(elements, static_cast<int>(items.size()), TEXTOID, -1, false, TYPALIGN_INT));
}

Datum text_datum(const std::string &value) {
    return PointerGetDatum(cstring_to_text_with_len(value.data(), static_cast<int>(value.size())));
}

Datum interval_datum(std::int64_t ms) {
    Interval *iv = static_cast<Interval *>(palloc0(sizeof(Interval)));
    iv->time = ms * 1000;
    return IntervalPGetDatum(iv);
}

// What the call writes to sf_bulk.syncs: the options of this call, which every later run keeps until a call
// gives others (a pg_cron schedule repeats the same ones).
struct SyncRow {
    const char *server;
    std::string object;
    const TargetName *target;
    Oid target_relid;
    std::vector<std::string> fields;
    bool fields_default;
    const char *filter;
    std::string deletes;
    std::int64_t overlap_ms;
    std::optional<std::int64_t> refresh_formulas_ms, reconcile_ms;
    bool reset;  // a new table under the mirror's name: the mirror starts again with a full run
};

int64 write_sync(const SyncRow &row) {
    // Built here: the transaction's PostgreSQL calls below must jump over no C++ object if one raises.
    std::string sql =
        "INSERT INTO sf_bulk.syncs AS s (owner, server_name, object, target_schema, target_table, "
        "target_relid, fields, fields_default, filter, deletes, overlap, refresh_formulas, reconcile) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) "
        "ON CONFLICT (server_name, object, target_schema, target_table) DO UPDATE SET "
        "target_relid = EXCLUDED.target_relid, fields = EXCLUDED.fields, "
        "fields_default = EXCLUDED.fields_default, filter = EXCLUDED.filter, "
        "deletes = EXCLUDED.deletes, overlap = EXCLUDED.overlap, "
        "refresh_formulas = EXCLUDED.refresh_formulas, reconcile = EXCLUDED.reconcile";
    if (row.reset)
        sql += ", watermark = NULL, deleted_cursor = NULL, last_full_at = NULL, last_formulas_at = NULL";
    sql += " RETURNING id";
    return pg_call([&row, &sql]() -> int64 {
        int64 id = 0;
        const Oid owner = GetUserId();  // the caller: as_extension_owner switches the current user
        as_extension_owner([&] {
            Oid types[13] = {REGROLEOID, NAMEOID, TEXTOID, NAMEOID,     NAMEOID,     OIDOID,     TEXTARRAYOID,
                             BOOLOID,    TEXTOID, TEXTOID, INTERVALOID, INTERVALOID, INTERVALOID};
            Datum values[13] = {ObjectIdGetDatum(owner),
                                DirectFunctionCall1(namein, CStringGetDatum(row.server)),
                                text_datum(row.object),
                                DirectFunctionCall1(namein, CStringGetDatum(row.target->schema)),
                                DirectFunctionCall1(namein, CStringGetDatum(row.target->table)),
                                ObjectIdGetDatum(row.target_relid),
                                text_array(row.fields),
                                BoolGetDatum(row.fields_default),
                                row.filter ? CStringGetTextDatum(row.filter) : (Datum)0,
                                text_datum(row.deletes),
                                interval_datum(row.overlap_ms),
                                row.refresh_formulas_ms ? interval_datum(*row.refresh_formulas_ms) : (Datum)0,
                                row.reconcile_ms ? interval_datum(*row.reconcile_ms) : (Datum)0};
            char nulls[14] = "             ";
            nulls[8] = row.filter ? ' ' : 'n';
            nulls[11] = row.refresh_formulas_ms ? ' ' : 'n';
            nulls[12] = row.reconcile_ms ? ' ' : 'n';
            if (SPI_execute_with_args(sql.c_str(), 13, types, values, nulls, false, 1) !=
                SPI_OK_INSERT_RETURNING)
                elog(ERROR, "could not record the mirror");
            bool is_null;
            id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &is_null));
        });
        return id;
    });
}

struct RunRow {
    int64 job_id;
    int64 sync_id;
    SyncDecision decision;
    std::optional<DeletedRecords> deleted;
    std::vector<std::string> calculated;
};

void write_run(const RunRow &run) {
    const std::string kind(to_string(run.decision.kind));
    pg_call([&run, &kind] {
        as_extension_owner([&] {
            Oid types[8] = {INT8OID,        INT8OID,      TEXTOID,        TEXTOID,
                            TIMESTAMPTZOID, TEXTARRAYOID, TIMESTAMPTZOID, TEXTARRAYOID};
            const bool formulas = run.decision.kind == SyncRunKind::Formulas;
            Datum values[8] = {
                Int64GetDatum(run.job_id),
                Int64GetDatum(run.sync_id),
                text_datum(kind),
                text_datum(run.decision.reason),
                run.decision.since_ms ? TimestampTzGetDatum(timestamptz_of(*run.decision.since_ms))
                                      : (Datum)0,
                run.deleted ? text_array(run.deleted->ids) : (Datum)0,
                run.deleted ? TimestampTzGetDatum(timestamptz_of(run.deleted->latest_covered_ms)) : (Datum)0,
                formulas ? text_array(run.calculated) : (Datum)0};
            char nulls[9] = "        ";
            nulls[4] = run.decision.since_ms ? ' ' : 'n';
            nulls[5] = run.deleted ? ' ' : 'n';
            nulls[6] = run.deleted ? ' ' : 'n';
            nulls[7] = formulas ? ' ' : 'n';
            if (SPI_execute_with_args("INSERT INTO sf_bulk.sync_runs (job_id, sync_id, kind, reason, since, "
                                      "deleted_ids, deleted_until, calculated) "
                                      "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                                      8, types, values, nulls, false, 0) != SPI_OK_INSERT)
                elog(ERROR, "could not record the mirror's run");
        });
    });
}

[[noreturn]] void refuse(const std::string &message, const std::string &detail = "",
                         const std::string &hint = "") {
    raise_error(ERRCODE_INVALID_PARAMETER_VALUE, std::string(kFunction) + ": " + message, detail, hint);
}

template <typename Fn>
auto checked(Fn fn) -> decltype(fn()) {
    return checked_for(kFunction, fn);
}

// parse_soql_select of a run's statement. A problem found in the filter is told of the filter: "filter:"
// and the character within it, not within the statement the caller never wrote.
SoqlSelect parse_soql_filtered(const std::string &soql, const std::optional<std::string> &filter) {
    try {
        return parse_soql_select(soql);
    } catch (const Error &e) {
        const std::string message = e.what();
        const std::size_t at = message.rfind(" (at character ");
        const std::size_t filter_start = filter ? soql.find(" WHERE (" + *filter + ")") : std::string::npos;
        if (e.kind() != ErrorKind::InvalidParameter || at == std::string::npos ||
            filter_start == std::string::npos)
            throw;
        auto characters = [](std::string_view text) {
            std::size_t n = 0;
            for (unsigned char c : text)
                n += (c & 0xC0) != 0x80;
            return n;
        };
        const std::size_t prefix = characters(std::string_view(soql).substr(0, filter_start + 8));
        const std::size_t position = std::strtoul(message.c_str() + at + 15, nullptr, 10);
        if (position <= prefix || position > prefix + characters(*filter))
            throw;
        throw Error(ErrorKind::InvalidParameter, "filter: " + message.substr(0, at) + " (at character " +
                                                     std::to_string(position - prefix) + " of the filter)");
    }
}

std::string joined(const std::vector<std::string> &names) {
    std::string out;
    for (const std::string &n : names)
        out += (out.empty() ? "" : ", ") + n;
    return out;
}

// The columns of fields new since the mirror's last run, added to the target (fields => NULL: the mirror
// follows the object). A NOTICE names each.
void add_new_columns(const TargetName &target, const QueryColumns &plan, const TargetFacts &facts,
                     const std::vector<std::string> &added, const std::string &object) {
    for (const std::string &field : added) {
        const QueryColumn *column = nullptr;
        for (const QueryColumn &c : plan.columns)
            if (c.path == field)
                column = &c;
        if (column == nullptr)
            continue;
        bool exists = false;
        for (const TargetColumn &t : facts.columns)
            exists = exists || t.name == column->column;
        if (exists)
            continue;
        const char *quoted = pg_call([column] { return quote_identifier(column->column.c_str()); });
        std::string statement =
            std::string("ALTER TABLE ") + target.display + " ADD COLUMN " + quoted + " " + column->type.ddl();
        pg_call([&] {
            // As the caller, who owns the table (or the ALTER fails with PostgreSQL's own message).
            if (SPI_execute(statement.c_str(), false, 0) != SPI_OK_UTILITY)
                elog(ERROR, "could not add a column to the mirror");
            ereport(NOTICE,
                    (errmsg("%s: %s has a new field %s: added column %s %s to %s", kFunction, object.c_str(),
                            field.c_str(), quoted, column->type.sql.c_str(), target.display)));
        });
    }
}

// GET the /deleted/ window. Sets `reason` when it cannot serve an incremental run (a full run must
// reconcile); nullopt when Salesforce refused the window.
std::optional<DeletedRecords> fetch_deleted(const OrgCall &org, const std::string &object,
                                            std::int64_t cursor_ms, std::int64_t overlap_ms,
                                            std::int64_t now_ms, std::string &reason) {
    DeletedWindow window = deleted_window(cursor_ms, overlap_ms, now_ms);
    HttpResponse response;
    for (int attempt = 0;; ++attempt) {
        HttpRequest request;
        request.url = deleted_records_path(org.api_version, object, window);
        request.headers.emplace_back("Accept", "application/json");
        request.max_response_bytes = 64u * 1024 * 1024;  // 600,000 ids at most (EXCEEDED_ID_LIMIT beyond)
        response = call_org(org, std::move(request), kFunction);
        // The window ends at Salesforce's present, not this server's: with Salesforce's clock ahead, a window
        // ending at ours would leave out the deletions of the minutes between, and the cursor (its
        // latestDateCovered) could never pass our clock. The Date header tells; ask once more if it is ahead.
        std::optional<std::string> date = response.header("Date");
        std::optional<std::int64_t> salesforce_now = date ? parse_http_date(*date) : std::nullopt;
        if (attempt > 0 || !salesforce_now || *salesforce_now * 1000 < window.end_ms + 60 * 1000)
            break;
        window = deleted_window(cursor_ms, overlap_ms, *salesforce_now * 1000);
    }
    if (response.status != 200) {
        ApiError error = parse_api_error(response.status, response.body);
        const std::string &code = error.first_code();
        if (code == "INVALID_REPLICATION_DATE" || code == "EXCEEDED_ID_LIMIT") {
            reason = "Salesforce's deletion log cannot answer for " + utc_datetime_text(window.start_ms) +
                     " onwards (" + error.summary() + "): a full run reconciles the mirror instead";
            return std::nullopt;
        }
        raise_error(ERRCODE_FDW_ERROR, std::string(kFunction) +
                                           ": Salesforce refused the deleted-records request of " + object +
                                           ": " + error.summary());
    }
    DeletedRecords answer = parse_deleted_records(response.body);
    if (!deleted_window_covered(answer, window)) {
        reason =
            "Salesforce's deletion log of " + object + " is complete only from " +
            utc_datetime_text(*answer.earliest_available_ms) + ", after " +
            utc_datetime_text(window.needed_from_ms) +
            " where this run needs it: records purged meanwhile may be missed, so a full run reconciles the "
            "mirror instead";
    }
    return answer;
}

// ---- a small incremental run over the REST query API
//
// A run whose answer is small (at most sf_bulk.rest_max_rows records) is read here, through REST queryAll
// pages of 2,000 records, instead of by a Bulk query job: no job to create and poll (about a second each
// time, the whole cost of a run with few changes), and none of the org's 10,000 daily Bulk query jobs spent
// on it (a mirror every five minutes is 288 a day). The rows go to the job's result file in Salesforce's own
// Bulk CSV shape, the job is recorded as downloaded, and the worker loads it like any other run.

std::vector<SoqlPath> rest_paths(const QueryColumns &plan) {
    std::vector<SoqlPath> paths;
    for (const QueryColumn &c : plan.columns)
        paths.push_back(SoqlPath{c.path});  // a mirror's fields are the object's own: no relationship paths
    return paths;
}

RestQueryPage rest_page(const OrgCall &org, const std::string &path, const std::vector<SoqlPath> &paths,
                        bool *refused) {
    HttpRequest request;
    request.url = path;
    request.headers.emplace_back("Accept", "application/json");
    HttpResponse response = call_org(org, std::move(request), kFunction);
    if (response.status != 200) {
        if (refused != nullptr) {
            *refused = true;
            return RestQueryPage{};
        }
        raise_error(ERRCODE_FDW_ERROR, std::string(kFunction) + ": Salesforce refused a query page: " +
                                           parse_api_error(response.status, response.body).summary());
    }
    try {
        return parse_rest_query_page(response.body, paths);
    } catch (const Error &e) {
        raise_error(ERRCODE_FDW_ERROR, std::string(kFunction) + ": " + e.what());
    }
}

// The first REST page of the run, or nullopt when the run is for a Bulk query job: more records than
// sf_bulk.rest_max_rows, sf_bulk.scan_engine = 'bulk', or an answer that is not a page (a statement
// Salesforce refuses then fails the job, with its error in the job's row, as for any run).
std::optional<RestQueryPage> small_run_first_page(const OrgCall &org, const std::string &soql,
                                                  const QueryColumns &plan) {
    if (settings.scan_engine == 2)
        return std::nullopt;
    bool refused = false;
    RestQueryPage page =
        rest_page(org, rest_query_path(org.api_version, soql, /*all_rows=*/true), rest_paths(plan), &refused);
    if (refused || page.total_size > settings.rest_max_rows)
        return std::nullopt;
    return page;
}

void add_row(csv::RowEncoder &encoder, csv::FdFileSink &file,
             const std::vector<std::optional<std::string>> &row) {
    for (const std::optional<std::string> &value : row)
        encoder.add_field(value ? *value : std::string_view());  // unquoted empty: COPY's NULL
    encoder.finish_row();
    file.write(encoder.buffer());
    encoder.clear();
}

// Writes the run's records (the first page, then the pages it leads to) to the job's result file and records
// the job as downloaded: the worker's next step is the load.
void spool_small_run(const OrgCall &org, int64 job_id, const QueryColumns &plan, RestQueryPage page) {
    const std::string path = query_page_file_name(job_file_prefix(job_id), 1);
    pg_call([&path] { track_spool_file(path); });  // removed if this transaction aborts
    const std::vector<SoqlPath> paths = rest_paths(plan);
    csv::RowEncoder encoder;
    std::unique_ptr<csv::FdFileSink> file = csv::FdFileSink::create_new(path);
    std::vector<std::optional<std::string>> header;
    for (const QueryColumn &c : plan.columns)
        header.emplace_back(c.path);
    add_row(encoder, *file, header);
    std::int64_t rows = 0;
    int requests = 1;  // the first page's
    for (;;) {
        for (const std::vector<std::optional<std::string>> &row : page.rows)
            add_row(encoder, *file, row);
        rows += static_cast<std::int64_t>(page.rows.size());
        if (page.done || page.next_records_url.empty())
            break;
        page = rest_page(org, page.next_records_url, paths, nullptr);
        ++requests;
    }
    file->close();  // flushed and fsynced: the worker reads it after the commit, a crash or not
    const std::int64_t bytes = static_cast<std::int64_t>(file->bytes_written());
    sync_spool_directory();
    pg_call([&] {
        as_extension_owner([&] {
            Oid types[4] = {INT8OID, TEXTOID, INT8OID, INT8OID};
            Datum values[4] = {Int64GetDatum(job_id), CStringGetTextDatum(path.c_str()), Int64GetDatum(rows),
                               Int64GetDatum(bytes)};
            if (SPI_execute_with_args("UPDATE sf_bulk.queries SET step = 'loading', page_list_done = true, "
                                      "records_processed = $3, updated_at = pg_catalog.now() "
                                      "WHERE job_id OPERATOR(pg_catalog.=) $1",
                                      4, types, values, nullptr, false, 0) != SPI_OK_UPDATE ||
                SPI_execute_with_args("INSERT INTO sf_bulk.query_pages (job_id, page_no, path_or_locator, "
                                      "spool_file, step, records, bytes) "
                                      "VALUES ($1, 1, '', $2, 'downloaded', $3, $4)",
                                      4, types, values, nullptr, false, 0) != SPI_OK_INSERT)
                elog(ERROR, "could not record the run's rows");
            // The job's API calls are the query pages the call read for it.
            Oid count_types[2] = {INT8OID, INT4OID};
            Datum count_values[2] = {Int64GetDatum(job_id), Int32GetDatum(requests)};
            if (SPI_execute_with_args("UPDATE sf_bulk.jobs SET api_calls = api_calls + $2 "
                                      "WHERE id OPERATOR(pg_catalog.=) $1",
                                      2, count_types, count_values, nullptr, false, 0) != SPI_OK_UPDATE)
                elog(ERROR, "could not record the run's rows");
        });
    });
}

Datum enqueue_sync(FunctionCallInfo fcinfo) {
    // PostgreSQL-only work first, while no C++ object exists in this frame.
    refuse_while_spooling(kFunction);
    require_preloaded(kFunction);
    SyncArgs args = read_args(fcinfo);
    QueryCallStart start =
        begin_query_call(kFunction, args.server, args.job_name, args.if_running, args.target);
    if (start.skip)
        PG_RETURN_NULL();
    ForeignServer *server = start.server;
    int64 after_job = start.after_job;
    TargetName target = start.target;
    TimestampTz call_time = GetCurrentTransactionStartTimestamp();

    const SyncDeletes deletes = checked([&] { return parse_sync_deletes(args.deletes); });
    OrgCall org = org_for_call(kFunction, server->servername);
    CallDescribes describes(org, kFunction);
    const ObjectDescribe &root = describes.get(args.object);
    checked([&] { check_mirrorable(root); });

    std::optional<std::vector<std::string>> requested;
    if (args.has_fields)
        requested = std::vector<std::string>(args.fields, args.fields + args.nfields);
    std::vector<std::string> fields = checked([&] { return sync_fields(root, requested); });

    const StoredSync &stored =
        *pg_call([&] { return read_sync(server->servername, root.name.c_str(), target); });
    if (stored.found && stored.owner != GetUserId())
        raise_error(ERRCODE_INSUFFICIENT_PRIVILEGE,
                    std::string(kFunction) + ": the mirror of " + root.name + " into " + target.display +
                        " is kept by role " + pg_call([&] {
                            return static_cast<const char *>(GetUserNameFromId(stored.owner, false));
                        }),
                    "", "Each mirror has one owner, whose credentials and privileges its runs use.");
    std::vector<std::string> previous(stored.fields, stored.fields + (stored.found ? stored.nfields : 0));
    // The same table as at the last run? A table dropped (and perhaps made again) starts the mirror over.
    const bool reset = stored.found && stored.target_relid != target.relid;
    if (stored.found && !reset && stored.fields_default && !requested) {
        std::vector<std::string> removed = removed_fields(previous, root);
        if (!removed.empty())
            refuse("field" + std::string(removed.size() > 1 ? "s " : " ") + joined(removed) + " of " +
                       root.name + (removed.size() > 1 ? " are" : " is") +
                       " no longer readable in Salesforce",
                   "The mirror " + std::string(target.display) +
                       " has a column for it; nothing was changed and no job was started.",
                   "Removed from the object, or hidden from this user by field-level security. Drop the "
                   "column and call again to mirror the object without it, or give fields => ARRAY[...].");
    }
    if (reset && OidIsValid(target.relid))
        pg_call([&target] {
            ereport(NOTICE, (errmsg("%s: %s is not the table this mirror filled before; the mirror starts "
                                    "again with a full run",
                                    kFunction, target.display)));
        });

    // The columns, checked as sf_bulk_query checks a select list (unknown fields with the closest names,
    // fields Bulk API cannot read), and the target against them.
    const std::optional<std::string> filter =
        args.filter ? std::optional<std::string>(args.filter) : std::optional<std::string>();
    SyncDecision everything;  // Full: the select list every kind but Formulas reads
    const std::string full_soql = sync_soql(root.name, fields, {}, filter, everything);
    SoqlSelect select = checked([&] { return parse_soql_filtered(full_soql, filter); });
    if (filter)
        checked([&] { check_sync_filter(*filter); });
    QueryColumns plan = checked([&] { return plan_query_columns(select, &root, describes.fetching()); });
    Oid target_relid = target.relid;
    if (OidIsValid(target.relid)) {
        TargetFacts facts = check_existing_target(kFunction, target, LoadMode::Merge, "a mirror");
        if (stored.found && !reset && stored.fields_default && !requested)
            add_new_columns(target, plan, facts, added_fields(fields, previous), root.name);
        facts = check_existing_target(kFunction, target, LoadMode::Merge, "a mirror");
        std::vector<std::string> problems = check_query_target(plan, facts, LoadMode::Merge);
        // The rules are merge's (a mirror is a merge by id), said of the mirror.
        for (std::string &p : problems)
            if (p.compare(0, 12, "mode 'merge'") == 0)
                p = "a mirror" + p.substr(12);
        if (!problems.empty()) {
            std::string detail;
            for (std::size_t i = 1; i < problems.size(); ++i)
                detail += (i > 1 ? "; " : "Also: ") + problems[i];
            refuse(problems.front(), detail.empty() ? detail : detail + ".",
                   "A mirror has one column per field, named as the field in lower case, and a unique key on "
                   "id; "
                   "an existing table must have that shape (extra columns keep their defaults).");
        }
        const bool can_delete =
            pg_call([&] { return pg_class_aclcheck(target.relid, GetUserId(), ACL_DELETE) == ACLCHECK_OK; });
        if (deletes == SyncDeletes::Delete && !can_delete)
            raise_error(ERRCODE_INSUFFICIENT_PRIVILEGE,
                        std::string(kFunction) + ": permission denied for table " + target.display +
                            ": deletes => 'delete' needs DELETE on it",
                        "", "Or keep deleted records with deletes => 'mark'.");
    } else {
        target_relid = create_target(kFunction, target, plan);
    }

    // What kind of run, from the state (a reset mirror has none).
    SyncSchedule schedule;
    const bool fresh = !stored.found || reset;
    if (!fresh && stored.has_watermark)
        schedule.watermark_ms = epoch_ms(stored.watermark);
    if (!fresh && stored.has_full)
        schedule.last_full_ms = epoch_ms(stored.last_full_at);
    if (!fresh && stored.has_formulas)
        schedule.last_formulas_ms = epoch_ms(stored.last_formulas_at);
    schedule.overlap_ms = args.overlap_ms;
    schedule.refresh_formulas_ms = args.refresh_formulas_ms;
    schedule.reconcile_ms = args.reconcile_ms;
    std::vector<std::string> calculated = calculated_fields(fields, root);
    schedule.has_calculated = !calculated.empty();

    // The mirror's own unfinished run counts as a job of the same name: if_running says what to do.
    if (!fresh && args.job_name == nullptr && stored.unfinished_job > 0) {
        if (strcmp(args.if_running, "skip") == 0) {
            pg_call([&] {
                ereport(NOTICE,
                        (errmsg("%s: run " INT64_FORMAT " of the mirror of %s into %s is still unfinished; "
                                "nothing started",
                                kFunction, stored.unfinished_job, root.name.c_str(), target.display)));
                SPI_finish();
            });
            PG_RETURN_NULL();
        }
        if (strcmp(args.if_running, "error") == 0)
            raise_error(ERRCODE_OBJECT_IN_USE,
                        std::string(kFunction) + ": run " + std::to_string(stored.unfinished_job) +
                            " of the mirror of " + root.name + " into " + target.display +
                            " is still unfinished",
                        "", "Wait for it (sf_bulk_wait), or use if_running => 'queue' or 'skip'.");
        after_job = stored.unfinished_job;
    }

    const std::int64_t now_ms = epoch_ms(call_time);
    SyncDecision decision = decide_sync_run(schedule, now_ms);
    std::optional<DeletedRecords> deleted;
    if (decision.kind == SyncRunKind::Incremental) {
        const std::int64_t cursor_ms =
            stored.has_cursor ? epoch_ms(stored.deleted_cursor) : *schedule.watermark_ms;
        std::string reason;
        deleted = fetch_deleted(org, root.name, cursor_ms, args.overlap_ms, now_ms, reason);
        if (!reason.empty()) {
            decision.kind = SyncRunKind::Full;
            decision.since_ms.reset();
            decision.reason = reason;
            pg_call([&] { ereport(NOTICE, (errmsg("%s: %s", kFunction, reason.c_str()))); });
        }
    }
    if (decision.kind == SyncRunKind::Full && !deleted) {
        // Where the deletion log stands now, in Salesforce's clock (latestDateCovered), so that the next
        // incremental run asks for the deletions after this snapshot without trusting this server's clock.
        // (A window that could not serve an incremental run ended now too: its answer says the same.)
        std::string ignored;
        deleted = fetch_deleted(org, root.name, now_ms, 0, now_ms, ignored);
    }

    SyncRow row{server->servername,
                root.name,
                &target,
                target_relid,
                fields,
                !requested,
                args.filter,
                std::string(to_string(deletes)),
                args.overlap_ms,
                args.refresh_formulas_ms,
                args.reconcile_ms,
                reset};
    const int64 sync_id = write_sync(row);

    const std::string run_soql = sync_soql(root.name, fields, calculated, filter, decision);
    QueryColumns run_plan = plan;
    if (decision.kind == SyncRunKind::Formulas) {
        SoqlSelect run_select = checked([&] { return parse_soql_select(run_soql); });
        run_plan = checked([&] { return plan_query_columns(run_select, &root, describes.fetching()); });
    }
    QueryJobOrder order;
    order.server_name = server->servername;
    order.operation = decision.kind == SyncRunKind::Formulas ? Operation::Query : Operation::QueryAll;
    order.soql = run_soql;
    order.plan = &run_plan;
    order.target = &target;
    order.target_relid = target_relid;
    order.load_mode = "sync";
    order.api_version = org.api_version.str();
    order.job_name = args.job_name;
    order.after_job = after_job;
    std::optional<RestQueryPage> first_page;
    if (decision.kind == SyncRunKind::Incremental)
        first_page = small_run_first_page(org, run_soql, run_plan);
    const int64 job_id = insert_query_job(order);
    write_run(RunRow{job_id, sync_id, decision, deleted, calculated});
    if (first_page)
        spool_small_run(org, job_id, run_plan, std::move(*first_page));
    pg_call([] { SPI_finish(); });
    wake_worker_at_commit();
    return Int64GetDatum(job_id);
}

}  // namespace

}  // namespace sfb::pg

SFB_PG_FUNCTION(sf_bulk_sync) {
    return sfb::pg::enqueue_sync(fcinfo);
}
