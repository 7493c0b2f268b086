// The merge of a mirror's run (sync_load.h). Every statement is keyed by id and guarded by SystemModstamp:
//  - a row is written only when the mirror has no copy, or Salesforce's copy is not older than the mirror's
//    and differs from it (an overlap read again changes nothing and counts nothing);
//  - deleted rows (IsDeleted in queryAll, or an id of the /deleted/ window that the query did not return
//    alive) are removed, or kept with isdeleted = true under deletes => 'mark';
//  - a full run also removes rows Salesforce no longer returns at all (hard deletes, purged or emptied
//    recycle bins, merges, rows that left the filter), but never one stamped after the newest row it read:
//    such a row came from a later run and this snapshot cannot speak for it.
#include "sync_load.h"

extern "C" {
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
}

namespace sfb::pg {

namespace {

const char *column(const LoadView *v, int i) {
    return quote_identifier(v->columns[i]);
}

// The staged value as the target column takes it: a multipicklist's "a;b" as text[].
void append_value(StringInfo sql, const char *prefix, const LoadView *v, const bool *is_array, int i) {
    if (is_array[i])
        appendStringInfo(sql, "pg_catalog.string_to_array(%s%s, ';')", prefix, column(v, i));
    else
        appendStringInfo(sql, "%s%s", prefix, column(v, i));
}

bool has_column(const LoadView *v, const char *name) {
    for (int i = 0; i < v->ncolumns; ++i)
        if (strcmp(v->columns[i], name) == 0)
            return true;
    return false;
}

int64 run_counted(const char *sql, int expected, int nargs = 0, Oid *types = nullptr,
                  Datum *values = nullptr) {
    if (SPI_execute_with_args(sql, nargs, types, values, nullptr, false, 0) != expected)
        elog(ERROR, "could not apply the mirror's run: %s", sql);
    return static_cast<int64>(SPI_processed);
}

// `(t.a, t.b) IS DISTINCT FROM (EXCLUDED.a, EXCLUDED.b)` over every column but id.
void append_differs(StringInfo sql, const LoadView *v, const char *left, const char *right,
                    const bool *is_array, bool convert_right) {
    appendStringInfoString(sql, "(");
    bool first = true;
    for (int i = 0; i < v->ncolumns; ++i) {
        if (strcmp(v->columns[i], "id") == 0)
            continue;
        appendStringInfo(sql, "%s%s%s", first ? "" : ", ", left, column(v, i));
        first = false;
    }
    appendStringInfoString(sql, ") IS DISTINCT FROM (");
    first = true;
    for (int i = 0; i < v->ncolumns; ++i) {
        if (strcmp(v->columns[i], "id") == 0)
            continue;
        if (!first)
            appendStringInfoString(sql, ", ");
        if (convert_right)
            append_value(sql, right, v, is_array, i);
        else
            appendStringInfo(sql, "%s%s", right, column(v, i));
        first = false;
    }
    appendStringInfoString(sql, ")");
}

// The start of a statement that takes rows out of the mirror: DELETE, or under deletes => 'mark' an UPDATE
// that marks them (only rows not marked yet, so that they count once). The caller appends the condition on t.
void start_removal(StringInfo sql, const SyncRunView *run, const char *only, const char *target) {
    resetStringInfo(sql);
    if (run->mark)
        appendStringInfo(sql,
                         "UPDATE %s%s AS t SET isdeleted = true WHERE t.isdeleted IS DISTINCT FROM true AND ",
                         only, target);
    else
        appendStringInfo(sql, "DELETE FROM %s%s AS t WHERE ", only, target);
}

// The newest SystemModstamp of the run's rows in `relation` (the stage, or the target they were copied into);
// a run without the tracking columns is refused (the call always selects them).
void read_newest_stamp(const LoadView *v, const char *relation, SyncApplied *applied) {
    if (!has_column(v, "systemmodstamp") || !has_column(v, "isdeleted"))
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("sf_bulk query job " INT64_FORMAT
                               " is a mirror's run without SystemModstamp and IsDeleted in its results",
                               v->job_id)));
    StringInfoData sql;
    initStringInfo(&sql);
    appendStringInfo(&sql, "SELECT pg_catalog.max(systemmodstamp) FROM %s", relation);
    if (SPI_execute(sql.data, false, 1) != SPI_OK_SELECT)
        elog(ERROR, "could not read the newest SystemModstamp of the run");
    bool is_null;
    Datum max_stamp = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &is_null);
    applied->has_max_stamp = !is_null;
    applied->max_stamp = is_null ? DT_NOEND : DatumGetTimestampTz(max_stamp);
}

}  // namespace

SyncRunView *read_sync_run(int64 job_id) {
    SyncRunView *run = static_cast<SyncRunView *>(palloc0(sizeof(SyncRunView)));
    Oid types[1] = {INT8OID};
    Datum values[1] = {Int64GetDatum(job_id)};
    if (SPI_execute_with_args("SELECT r.kind, s.deletes, r.deleted_ids FROM sf_bulk.sync_runs r "
                              "JOIN sf_bulk.syncs s ON s.id OPERATOR(pg_catalog.=) r.sync_id "
                              "WHERE r.job_id OPERATOR(pg_catalog.=) $1",
                              1, types, values, nullptr, true, 1) != SPI_OK_SELECT ||
        SPI_processed != 1)
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
                        errmsg("sf_bulk query job " INT64_FORMAT " is a mirror's run, but its mirror is gone",
                               job_id)));
    HeapTuple t = SPI_tuptable->vals[0];
    TupleDesc d = SPI_tuptable->tupdesc;
    const char *kind = SPI_getvalue(t, d, 1);
    run->kind = strcmp(kind, "full") == 0 ? 'f' : strcmp(kind, "incremental") == 0 ? 'i' : 'c';
    run->mark = strcmp(SPI_getvalue(t, d, 2), "mark") == 0;
    bool is_null;
    Datum ids = SPI_getbinval(t, d, 3, &is_null);
    run->has_deleted_ids = !is_null;
    if (!is_null)
        run->deleted_ids = SPI_datumTransfer(ids, false, -1);
    return run;
}

SyncApplied apply_sync(const SyncRunView *run, const LoadView *v, const char *stage, const char *target,
                       const bool *is_array, bool plain_table) {
    SyncApplied applied{};
    const char *only = plain_table ? "ONLY " : "";
    StringInfoData sql;
    initStringInfo(&sql);

    if (run->kind == 'c') {
        // Formulas: only the calculated columns of rows the mirror has.
        appendStringInfo(&sql, "UPDATE %s%s AS t SET ", only, target);
        bool first = true;
        for (int i = 0; i < v->ncolumns; ++i) {
            if (strcmp(v->columns[i], "id") == 0)
                continue;
            appendStringInfo(&sql, "%s%s = ", first ? "" : ", ", column(v, i));
            append_value(&sql, "s.", v, is_array, i);
            first = false;
        }
        appendStringInfo(&sql, " FROM %s AS s WHERE t.id OPERATOR(pg_catalog.=) s.id AND ", stage);
        append_differs(&sql, v, "t.", "s.", is_array, true);
        applied.updated = first ? 0 : run_counted(sql.data, SPI_OK_UPDATE);
        return applied;
    }

    read_newest_stamp(v, stage, &applied);
    bool is_null;

    // 1. Rows Salesforce returned deleted, unless the mirror holds a newer copy (a run queued behind another
    //    can carry an older snapshot: an undelete the earlier run applied must stay).
    if (!run->mark) {
        resetStringInfo(&sql);
        appendStringInfo(
            &sql,
            "DELETE FROM %s%s AS t USING %s AS s WHERE t.id OPERATOR(pg_catalog.=) s.id "
            "AND s.isdeleted AND (t.systemmodstamp IS NULL OR t.systemmodstamp <= s.systemmodstamp)",
            only, target, stage);
        applied.deleted += run_counted(sql.data, SPI_OK_DELETE);
    }

    // 2. New and changed rows.
    resetStringInfo(&sql);
    appendStringInfo(&sql, "WITH applied AS (INSERT INTO %s AS t (", target);
    for (int i = 0; i < v->ncolumns; ++i)
        appendStringInfo(&sql, "%s%s", i > 0 ? ", " : "", column(v, i));
    appendStringInfoString(&sql, ") SELECT ");
    for (int i = 0; i < v->ncolumns; ++i) {
        if (i > 0)
            appendStringInfoString(&sql, ", ");
        append_value(&sql, "", v, is_array, i);
    }
    appendStringInfo(&sql, " FROM %s%s ON CONFLICT (id) DO UPDATE SET ", stage,
                     run->mark ? "" : " WHERE NOT isdeleted");
    bool first = true;
    for (int i = 0; i < v->ncolumns; ++i) {
        if (strcmp(v->columns[i], "id") == 0)
            continue;
        appendStringInfo(&sql, "%s%s = EXCLUDED.%s", first ? "" : ", ", column(v, i), column(v, i));
        first = false;
    }
    appendStringInfoString(
        &sql, " WHERE t.systemmodstamp IS NULL OR (t.systemmodstamp <= EXCLUDED.systemmodstamp AND ");
    append_differs(&sql, v, "t.", "EXCLUDED.", is_array, false);
    appendStringInfoString(&sql,
                           ") RETURNING t.xmax OPERATOR(pg_catalog.=) 0 AS inserted) "
                           "SELECT pg_catalog.count(*) FILTER (WHERE inserted), "
                           "pg_catalog.count(*) FILTER (WHERE NOT inserted) FROM applied");
    if (SPI_execute(sql.data, false, 0) != SPI_OK_SELECT || SPI_processed != 1)
        elog(ERROR, "could not merge the run's rows into %s", target);
    applied.inserted =
        DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &is_null));
    applied.updated = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &is_null));

    // 3. Ids of the /deleted/ window that the query did not return at all (purged from the bin, hard
    // deleted).
    //    One it returned is the query's to decide: alive (undeleted since), or deleted (step 1, with its
    //    SystemModstamp guard).
    if (run->kind == 'i' && run->has_deleted_ids) {
        start_removal(&sql, run, only, target);
        appendStringInfo(&sql,
                         "t.id OPERATOR(pg_catalog.=) ANY ($1) AND NOT EXISTS (SELECT 1 FROM %s AS s "
                         "WHERE s.id OPERATOR(pg_catalog.=) t.id)",
                         stage);
        Oid types[1] = {TEXTARRAYOID};
        Datum values[1] = {run->deleted_ids};
        applied.deleted += run_counted(sql.data, run->mark ? SPI_OK_UPDATE : SPI_OK_DELETE, 1, types, values);
    }

    // 4. A full run: rows Salesforce no longer returns.
    if (run->kind == 'f') {
        start_removal(&sql, run, only, target);
        appendStringInfo(&sql,
                         "NOT EXISTS (SELECT 1 FROM %s AS s WHERE s.id OPERATOR(pg_catalog.=) t.id) "
                         "AND (t.systemmodstamp IS NULL OR t.systemmodstamp <= $1)",
                         stage);
        Oid types[1] = {TIMESTAMPTZOID};
        Datum values[1] = {TimestampTzGetDatum(applied.max_stamp)};
        applied.deleted += run_counted(sql.data, run->mark ? SPI_OK_UPDATE : SPI_OK_DELETE, 1, types, values);
    }
    return applied;
}

bool sync_target_is_empty(const LoadView *v, bool plain_table) {
    StringInfoData sql;
    initStringInfo(&sql);
    appendStringInfo(&sql, "SELECT 1 FROM %s%s LIMIT 1", plain_table ? "ONLY " : "",
                     quote_qualified_identifier(v->schema, v->table));
    if (SPI_execute(sql.data, false, 1) != SPI_OK_SELECT)
        elog(ERROR, "could not read the mirror's table");
    return SPI_processed == 0;
}

SyncApplied apply_sync_copied(const SyncRunView *run, const LoadView *v, const char *target, int64 rows,
                              bool plain_table) {
    SyncApplied applied{};
    read_newest_stamp(v, target, &applied);
    StringInfoData sql;
    initStringInfo(&sql);
    int64 removed = 0;
    if (!run->mark) {
        // Deleted in Salesforce before this first run: never part of the mirror, so not counted as deleted.
        resetStringInfo(&sql);
        appendStringInfo(&sql, "DELETE FROM %s%s WHERE isdeleted", plain_table ? "ONLY " : "", target);
        removed = run_counted(sql.data, SPI_OK_DELETE);
    }
    applied.inserted = rows - removed;
    return applied;
}

void record_sync_run(int64 job_id, const SyncRunView *run, const SyncApplied *applied) {
    (void)run;
    Oid types[6] = {INT8OID, INT8OID, INT8OID, INT8OID, TIMESTAMPTZOID, BOOLOID};
    Datum values[6] = {Int64GetDatum(job_id),
                       Int64GetDatum(applied->inserted),
                       Int64GetDatum(applied->updated),
                       Int64GetDatum(applied->deleted),
                       TimestampTzGetDatum(applied->max_stamp),
                       BoolGetDatum(applied->has_max_stamp)};
    // GREATEST ignores NULLs: a first watermark is the run's, later ones never move back (a run queued before
    // another can be applied after it).
    if (SPI_execute_with_args(
            "WITH run AS (SELECT r.sync_id, r.kind, r.deleted_until, j.created_at FROM sf_bulk.sync_runs r "
            "JOIN sf_bulk.jobs j ON j.id OPERATOR(pg_catalog.=) r.job_id WHERE r.job_id "
            "OPERATOR(pg_catalog.=) $1), "
            "moved AS (UPDATE sf_bulk.syncs s SET "
            "watermark = CASE WHEN run.kind <> 'formulas' AND $6 THEN GREATEST(s.watermark, $5) "
            "ELSE s.watermark END, "
            "deleted_cursor = CASE WHEN run.kind IN ('incremental', 'full') THEN GREATEST(s.deleted_cursor, "
            "run.deleted_until) ELSE s.deleted_cursor END, "
            "last_full_at = CASE WHEN run.kind = 'full' THEN GREATEST(s.last_full_at, run.created_at) "
            "ELSE s.last_full_at END, "
            "last_formulas_at = CASE WHEN run.kind IN ('full', 'formulas') "
            "THEN GREATEST(s.last_formulas_at, run.created_at) ELSE s.last_formulas_at END "
            "FROM run WHERE s.id OPERATOR(pg_catalog.=) run.sync_id RETURNING s.watermark) "
            "UPDATE sf_bulk.sync_runs SET rows_inserted = $2, rows_updated = $3, rows_deleted = $4, "
            "watermark = (SELECT watermark FROM moved), applied_at = pg_catalog.now() "
            "WHERE job_id OPERATOR(pg_catalog.=) $1",
            6, types, values, nullptr, false, 0) != SPI_OK_UPDATE)
        elog(ERROR, "could not record the mirror's run");
}

}  // namespace sfb::pg
