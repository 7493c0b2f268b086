// The load of a query job's result pages (query_load.h). PostgreSQL calls only, no C++ objects: an ERROR
// anywhere here leaves through the caller's pg_call and aborts the load's transaction, which also restores
// the user id switched to below.
//
// Why COPY's C API and not SQL: the pages stream from their files with COPY's own parsing and input
// conversion (the errors name line, column and value), and no row passes through SPI. Calling BeginCopyFrom
// directly skips what DoCopy checks (privileges, row-level security), so this file does it: the load runs
// as the job's owner, checks the owner's INSERT (replace: DELETE; merge: UPDATE) privileges and the schema's
// USAGE, and refuses a target on which row-level security applies to the owner (a direct COPY would not
// apply its policies, and a replace would delete only the visible rows).
//
// The owner's code (triggers, defaults, CHECK functions of the target) runs in a security-restricted
// operation with search_path = pg_catalog, pg_temp and a lock_timeout, the way PostgreSQL runs a table
// owner's code in its own maintenance commands: it cannot change settings that outlive the load, cannot
// create temporary objects, and a deferred trigger cannot wait for the commit, which runs as the worker:
// asked to fire before the rights are switched back, PostgreSQL refuses it there and the load fails.
//
// Two paths. Direct: COPY into the target (append, replace). Staged: COPY into a temporary table of the
// same column types (ON COMMIT DROP), then INSERT ... SELECT into the target: for merge (ON CONFLICT (id) DO
// UPDATE) and for array columns, whose values Salesforce sends as "a;b;c" (a multipicklist), which COPY's
// array input does not read: they are staged as text and converted with string_to_array(v, ';').
#include "query_load.h"

#include "pg_headers.h"

extern "C" {
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "commands/copy.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parse_node.h"
#include "parser/parse_relation.h"
#include "commands/trigger.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/rls.h"
}

#include "compat.h"
#include "sync_load.h"

namespace sfb::pg {

namespace {

struct PageContext {
    int64 job_id;
    int page_no;
    int npages;
};

// Names the page in every error raised while it is copied; COPY's own context line (line, column, value)
// comes on top of it.
void page_error_context(void *arg) {
    const PageContext *page = static_cast<const PageContext *>(arg);
    errcontext("result page %d of %d of sf_bulk query job " INT64_FORMAT, page->page_no, page->npages,
               page->job_id);
}

const char *qualified(const char *schema, const char *table) {
    return quote_qualified_identifier(schema, table);
}

// The owner's right `mode` on the table, or on every loaded column (column privileges count, as for a
// plain INSERT or UPDATE naming those columns). `skip` names a column the check leaves out ("" none).
bool has_column_rights(Oid relid, Oid owner, AclMode mode, const AttrNumber *attnums, int n,
                       AttrNumber skip) {
    if (pg_class_aclcheck(relid, owner, mode) == ACLCHECK_OK)
        return true;
    for (int i = 0; i < n; ++i)
        if (attnums[i] != skip && pg_attribute_aclcheck(relid, attnums[i], owner, mode) != ACLCHECK_OK)
            return false;
    return true;
}

void refuse_privilege(const LoadView *v, const char *what) {
    ereport(ERROR,
            (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
             errmsg("permission denied: role \"%s\", the owner of sf_bulk query job " INT64_FORMAT
                    ", may not %s %s",
                    GetUserNameFromId(v->owner, false), v->job_id, what, qualified(v->schema, v->table))));
}

// COPY of one page file into `into` (the target or the staging table). Returns the rows copied.
uint64 copy_page(Relation into, const LoadView *v, int page) {
    PageContext context{v->job_id, v->page_nos[page], v->npages};
    ErrorContextCallback callback;
    callback.callback = page_error_context;
    callback.arg = &context;
    callback.previous = error_context_stack;
    error_context_stack = &callback;

    ParseState *pstate = make_parsestate(nullptr);
    // CopyFrom builds its executor state from the parse state's range table (DoCopy would have made it).
    addRangeTableEntryForRelation(pstate, into, RowExclusiveLock, nullptr, false, false);
    List *columns = NIL;
    List *force_null = NIL;
    for (int i = 0; i < v->ncolumns; ++i) {
        columns = lappend(columns, makeString(pstrdup(v->columns[i])));
        force_null = lappend(force_null, makeString(pstrdup(v->columns[i])));
    }
    char delimiter[2] = {v->delimiter, '\0'};
    // Salesforce quotes every value and writes null (and empty text, which it cannot tell apart) as "":
    // FORCE_NULL makes a quoted empty value NULL in every column.
    List *options = list_make5(makeDefElem(pstrdup("format"), (Node *)makeString(pstrdup("csv")), -1),
                               makeDefElem(pstrdup("header"), (Node *)makeString(pstrdup("true")), -1),
                               makeDefElem(pstrdup("delimiter"), (Node *)makeString(pstrdup(delimiter)), -1),
                               makeDefElem(pstrdup("encoding"), (Node *)makeString(pstrdup("UTF8")), -1),
                               makeDefElem(pstrdup("force_null"), (Node *)force_null, -1));
    CopyFromState cstate =
        BeginCopyFrom(pstate, into, nullptr, v->page_files[page], false, nullptr, columns, options);
    uint64 rows = CopyFrom(cstate);
    EndCopyFrom(cstate);
    free_parsestate(pstate);

    error_context_stack = callback.previous;
    return rows;
}

}  // namespace

int64 load_query_pages(const LoadView *v) {
    // Settings local to the load, reverted (whatever the owner's code set meanwhile) before the worker's
    // own statements run again.
    int guc_nest = NewGUCNestLevel();
    set_config_option("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_SESSION, GUC_ACTION_SAVE, true,
                      0, false);
    // A lock held on the target by someone else must not stall the worker, which serves every job of the
    // database: the load gives up after this and is tried again later (a transient failure).
    set_config_option("lock_timeout", "10s", PGC_SUSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
    // No temporary object of an earlier load (or of the owner's code in it) may outlive it: it would be
    // found first by the next owner's unqualified names. The namespace itself is made now, as the worker:
    // a restricted operation may use it but not create it.
    ResetTempTableNamespace();
    (void)LookupCreationNamespace("pg_temp");

    RangeVar *rv = makeRangeVar(pstrdup(v->schema), pstrdup(v->table), -1);
    Oid relid = RangeVarGetRelidExtended(rv, RowExclusiveLock, RVR_MISSING_OK, nullptr, nullptr);
    if (!OidIsValid(relid))
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE),
                        errmsg("the target table %s of sf_bulk query job " INT64_FORMAT " no longer exists",
                               qualified(v->schema, v->table), v->job_id),
                        errhint("It was dropped or renamed after the job was queued.")));
    if (OidIsValid(v->target_relid) && relid != v->target_relid)
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE),
                        errmsg("the target table %s of sf_bulk query job " INT64_FORMAT
                               " is not the table the job was queued for",
                               qualified(v->schema, v->table), v->job_id),
                        errhint("That table was dropped or renamed, and another one took its name; sf_bulk "
                                "does not load into it.")));
    Relation rel = table_open(relid, NoLock);  // locked above
    if (rel->rd_rel->relkind != RELKIND_RELATION && rel->rd_rel->relkind != RELKIND_PARTITIONED_TABLE)
        ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE),
                        errmsg("the target %s of sf_bulk query job " INT64_FORMAT " is not a table",
                               qualified(v->schema, v->table), v->job_id)));

    if (sfb_namespace_aclcheck(RelationGetNamespace(rel), v->owner, ACL_USAGE) != ACLCHECK_OK)
        ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                        errmsg("permission denied: role \"%s\", the owner of sf_bulk query job " INT64_FORMAT
                               ", has no USAGE on schema %s",
                               GetUserNameFromId(v->owner, false), v->job_id, quote_identifier(v->schema))));
    if (check_enable_rls(relid, v->owner, false) == RLS_ENABLED)
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                        errmsg("sf_bulk cannot load %s: row-level security applies to role \"%s\", the owner "
                               "of sf_bulk query job " INT64_FORMAT,
                               qualified(v->schema, v->table), GetUserNameFromId(v->owner, false), v->job_id),
                        errhint("Load into a table without row-level security for that role, and copy the "
                                "rows from there.")));

    AttrNumber *attnums = static_cast<AttrNumber *>(palloc(sizeof(AttrNumber) * v->ncolumns));
    bool *is_array = static_cast<bool *>(palloc(sizeof(bool) * v->ncolumns));
    bool any_array = false;
    AttrNumber id_attnum = InvalidAttrNumber;
    TupleDesc desc = RelationGetDescr(rel);
    for (int i = 0; i < v->ncolumns; ++i) {
        attnums[i] = get_attnum(relid, v->columns[i]);
        if (attnums[i] <= 0)
            ereport(ERROR,
                    (errcode(ERRCODE_UNDEFINED_COLUMN),
                     errmsg("the target table %s of sf_bulk query job " INT64_FORMAT " has no column \"%s\"",
                            qualified(v->schema, v->table), v->job_id, v->columns[i])));
        Form_pg_attribute att = TupleDescAttr(desc, attnums[i] - 1);
        is_array[i] = OidIsValid(get_element_type(att->atttypid));
        any_array = any_array || is_array[i];
        if (strcmp(v->columns[i], "id") == 0)
            id_attnum = attnums[i];
    }
    if (!has_column_rights(relid, v->owner, ACL_INSERT, attnums, v->ncolumns, InvalidAttrNumber))
        refuse_privilege(v, "INSERT into");
    if (v->mode == 'r' && pg_class_aclcheck(relid, v->owner, ACL_DELETE) != ACLCHECK_OK)
        refuse_privilege(v, "DELETE from (load mode replace)");
    const SyncRunView *sync = v->mode == 's' ? read_sync_run(v->job_id) : nullptr;
    if (sync != nullptr && !sync->mark && pg_class_aclcheck(relid, v->owner, ACL_DELETE) != ACLCHECK_OK)
        refuse_privilege(v, "DELETE from (a mirror with deletes => 'delete')");
    if (v->mode == 'm' || v->mode == 's') {
        if (id_attnum == InvalidAttrNumber)
            ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                            errmsg("load mode merge of sf_bulk query job " INT64_FORMAT
                                   " needs the Id field in the SELECT list",
                                   v->job_id)));
        if (!has_column_rights(relid, v->owner, ACL_UPDATE, attnums, v->ncolumns, id_attnum))
            refuse_privilege(v, "UPDATE (load mode merge)");
    }

    // A mirror's full run into an empty table (its first run) has nothing to merge with: its rows are copied
    // straight in, as an append is, and only the deleted ones taken out after.
    const bool sync_direct = sync != nullptr && sync->kind == 'f' && !any_array &&
                             sync_target_is_empty(v, rel->rd_rel->relkind == RELKIND_RELATION);
    bool staged = v->mode == 'm' || (v->mode == 's' && !sync_direct) || any_array;
    Relation into = rel;
    const char *stage = nullptr;
    if (staged) {
        // Named after the target so that COPY's error context reads "COPY <table>, line ..." either way.
        stage = quote_qualified_identifier("pg_temp", v->table);
        StringInfoData sql;
        initStringInfo(&sql);
        appendStringInfo(&sql, "CREATE TEMPORARY TABLE %s (", stage);
        for (int i = 0; i < v->ncolumns; ++i) {
            Form_pg_attribute att = TupleDescAttr(desc, attnums[i] - 1);
            appendStringInfo(
                &sql, "%s%s %s", i > 0 ? ", " : "", quote_identifier(v->columns[i]),
                is_array[i] ? "pg_catalog.text" : format_type_with_typemod(att->atttypid, att->atttypmod));
        }
        appendStringInfoString(&sql, ") ON COMMIT DROP");
        if (SPI_execute(sql.data, false, 0) != SPI_OK_UTILITY)
            elog(ERROR, "could not create the staging table of the load");
        Oid stage_id = RangeVarGetRelid(makeRangeVar(pstrdup("pg_temp"), pstrdup(v->table), -1),
                                        RowExclusiveLock, false);
        // Made by the worker (a restricted operation may not create a temporary table) and handed to the
        // owner, whose INSERT ... SELECT reads it.
        resetStringInfo(&sql);
        appendStringInfo(&sql, "ALTER TABLE %s OWNER TO %s", stage,
                         quote_identifier(GetUserNameFromId(v->owner, false)));
        if (SPI_execute(sql.data, false, 0) != SPI_OK_UTILITY)
            elog(ERROR, "could not hand the staging table of the load to its owner");
        into = table_open(stage_id, NoLock);
    }

    // The owner's rights, not the worker's, in a restricted operation (see the top of the file): local to
    // this transaction (an ERROR's abort restores them).
    Oid saved_user;
    int saved_context;
    GetUserIdAndSecContext(&saved_user, &saved_context);
    SetUserIdAndSecContext(v->owner,
                           saved_context | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);

    const char *target = qualified(v->schema, v->table);
    if (v->mode == 'r') {
        // Same transaction as the COPY: readers see the old rows or the new ones, never none or a mix.
        // (TRUNCATE would be faster but is not MVCC-safe and takes an exclusive lock.)
        StringInfoData sql;
        initStringInfo(&sql);
        // ONLY for a plain table: COPY fills the table itself, not its inheritance children. (A partitioned
        // table holds no rows of its own: its partitions are the table.)
        appendStringInfo(&sql, "DELETE FROM %s%s", rel->rd_rel->relkind == RELKIND_RELATION ? "ONLY " : "",
                         target);
        if (SPI_execute(sql.data, false, 0) != SPI_OK_DELETE)
            elog(ERROR, "could not empty %s for the load", target);
    }

    int64 rows = 0;
    for (int page = 0; page < v->npages; ++page)
        rows += static_cast<int64>(copy_page(into, v, page));

    SyncApplied applied{};
    if (sync_direct) {
        CommandCounterIncrement();  // the statements below must see the copied rows
        applied = apply_sync_copied(sync, v, target, rows, rel->rd_rel->relkind == RELKIND_RELATION);
    } else if (sync != nullptr) {
        table_close(into, NoLock);
        CommandCounterIncrement();  // the statements below must see the staged rows
        applied = apply_sync(sync, v, stage, target, is_array, rel->rd_rel->relkind == RELKIND_RELATION);
    } else if (staged) {
        table_close(into, NoLock);
        CommandCounterIncrement();  // the INSERT below must see the staged rows
        StringInfoData sql;
        initStringInfo(&sql);
        appendStringInfo(&sql, "INSERT INTO %s (", target);
        for (int i = 0; i < v->ncolumns; ++i)
            appendStringInfo(&sql, "%s%s", i > 0 ? ", " : "", quote_identifier(v->columns[i]));
        appendStringInfoString(&sql, ") SELECT ");
        for (int i = 0; i < v->ncolumns; ++i) {
            const char *column = quote_identifier(v->columns[i]);
            if (is_array[i])
                appendStringInfo(&sql, "%spg_catalog.string_to_array(%s, ';')", i > 0 ? ", " : "", column);
            else
                appendStringInfo(&sql, "%s%s", i > 0 ? ", " : "", column);
        }
        appendStringInfo(&sql, " FROM %s", stage);
        if (v->mode == 'm') {
            bool any_update = false;
            appendStringInfoString(&sql, " ON CONFLICT (id) DO ");
            for (int i = 0; i < v->ncolumns; ++i) {
                if (attnums[i] == id_attnum)
                    continue;
                const char *column = quote_identifier(v->columns[i]);
                appendStringInfo(&sql, "%s%s = EXCLUDED.%s", any_update ? ", " : "UPDATE SET ", column,
                                 column);
                any_update = true;
            }
            if (!any_update)
                appendStringInfoString(&sql, "NOTHING");
        }
        if (SPI_execute(sql.data, false, 0) != SPI_OK_INSERT)
            elog(ERROR, "could not insert the staged rows into %s", target);
        rows = static_cast<int64>(SPI_processed);
    }
    table_close(rel, NoLock);
    // Deferred triggers of the target fire now, as the owner, not at the commit (or PostgreSQL refuses them
    // here and the load fails).
    if (SPI_execute("SET CONSTRAINTS ALL IMMEDIATE", false, 0) != SPI_OK_UTILITY)
        elog(ERROR, "could not fire the target's deferred triggers");
    AtEOXact_GUC(false, guc_nest);
    SetUserIdAndSecContext(saved_user, saved_context);
    if (sync != nullptr)
        record_sync_run(v->job_id, sync, &applied);  // as the worker: the watermark with the rows
    return rows;
}

}  // namespace sfb::pg
