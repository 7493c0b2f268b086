// Small SQL-callable helpers behind sf_bulk_abort and sf_bulk_wait.
#include "pg_headers.h"

extern "C" {
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
}

#include "guard.h"
#include "module.h"
#include "owner.h"
#include "shmem.h"
#include "spool.h"

#include <unistd.h>

SFB_PG_FUNCTION(sf_bulk_is_current_transaction) {
    PG_RETURN_BOOL(TransactionIdIsCurrentTransactionId(DatumGetTransactionId(PG_GETARG_DATUM(0))));
}

SFB_PG_FUNCTION(sf_bulk_request_abort) {
    sfb::pg::require_preloaded("sf_bulk_abort");
    int64 job = PG_GETARG_INT64(0);
    if (SPI_connect() != SPI_OK_CONNECT)
        elog(ERROR, "SPI_connect failed");
    Oid types[1] = {INT8OID};
    Datum values[1] = {Int64GetDatum(job)};
    // Read as the caller: row-level security shows only the caller's own jobs (superusers: all).
    if (SPI_execute_with_args("SELECT state FROM sf_bulk.jobs WHERE id OPERATOR(pg_catalog.=) $1", 1, types,
                              values, nullptr, true, 1) != SPI_OK_SELECT)
        elog(ERROR, "could not read sf_bulk job");
    if (SPI_processed == 0)
        ereport(ERROR, (errcode(ERRCODE_NO_DATA_FOUND),
                        errmsg("sf_bulk job " INT64_FORMAT " does not exist or is not yours", job)));
    char *state = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
    if (strcmp(state, "queued") == 0 || strcmp(state, "running") == 0) {
        sfb::pg::as_extension_owner([&] {
            if (SPI_execute_with_args(
                    "UPDATE sf_bulk.jobs SET abort_requested = true WHERE id OPERATOR(pg_catalog.=) $1", 1,
                    types, values, nullptr, false, 0) != SPI_OK_UPDATE)
                elog(ERROR, "could not update sf_bulk job");
        });
        sfb::pg::wake_worker_at_commit();
    } else {
        ereport(NOTICE, (errmsg("sf_bulk job " INT64_FORMAT " is already %s", job, state)));
    }
    SPI_finish();
    PG_RETURN_VOID();
}

// sf_bulk.link_retry(job, original): records that `job` re-sends failures of `original` (both the caller's).
SFB_PG_FUNCTION(sf_bulk_link_retry) {
    int64 job = PG_GETARG_INT64(0);
    int64 original = PG_GETARG_INT64(1);
    if (SPI_connect() != SPI_OK_CONNECT)
        elog(ERROR, "SPI_connect failed");
    Oid types[2] = {INT8OID, INT8OID};
    Datum values[2] = {Int64GetDatum(job), Int64GetDatum(original)};
    // Both must be visible to the caller (row-level security): nobody links another role's jobs.
    if (SPI_execute_with_args("SELECT count(*) FROM sf_bulk.jobs WHERE id IN ($1, $2)", 2, types, values,
                              nullptr, true, 1) != SPI_OK_SELECT)
        elog(ERROR, "could not read sf_bulk jobs");
    bool is_null;
    if (DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &is_null)) != 2)
        ereport(ERROR, (errcode(ERRCODE_NO_DATA_FOUND),
                        errmsg("sf_bulk jobs to link do not exist or are not yours")));
    sfb::pg::as_extension_owner([&] {
        if (SPI_execute_with_args("UPDATE sf_bulk.jobs SET retry_of = $2 WHERE id OPERATOR(pg_catalog.=) $1",
                                  2, types, values, nullptr, false, 0) != SPI_OK_UPDATE)
            elog(ERROR, "could not link the retry");
    });
    SPI_finish();
    PG_RETURN_VOID();
}

// sf_bulk.delete_jobs(ids): deletes those of the given jobs that the caller can see and that have ended,
// with their uploads, results and any spool file left. Returns how many jobs went.
SFB_PG_FUNCTION(sf_bulk_delete_jobs) {
    Datum ids = PG_GETARG_DATUM(0);
    if (SPI_connect() != SPI_OK_CONNECT)
        elog(ERROR, "SPI_connect failed");
    Oid types[1] = {INT8ARRAYOID};
    Datum values[1] = {ids};
    // Chosen as the caller (row-level security), deleted as the owner.
    if (SPI_execute_with_args("SELECT pg_catalog.array_agg(id) FROM sf_bulk.jobs WHERE id = ANY ($1) "
                              "AND state IN ('completed', 'failed', 'aborted')",
                              1, types, values, nullptr, true, 1) != SPI_OK_SELECT)
        elog(ERROR, "could not read sf_bulk jobs");
    bool is_null;
    Datum mine = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &is_null);
    int64 deleted = 0;
    if (!is_null) {
        Datum own_values[1] = {mine};
        if (SPI_execute_with_args("SELECT pg_catalog.unnest($1)", 1, types, own_values, nullptr, true, 0) !=
            SPI_OK_SELECT)
            elog(ERROR, "could not read sf_bulk jobs");
        // Files of ended jobs are never needed again, whether or not this transaction commits.
        for (uint64 i = 0; i < SPI_processed; ++i)
            sfb::pg::remove_job_files(
                DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &is_null)));
        sfb::pg::as_extension_owner([&] {
            // Results and sent rows carry no foreign key (see the install script): delete them explicitly.
            if (SPI_execute_with_args("DELETE FROM sf_bulk.results WHERE job_id = ANY ($1)", 1, types,
                                      own_values, nullptr, false, 0) != SPI_OK_DELETE ||
                SPI_execute_with_args("DELETE FROM sf_bulk.sent WHERE job_id = ANY ($1)", 1, types,
                                      own_values, nullptr, false, 0) != SPI_OK_DELETE ||
                SPI_execute_with_args("DELETE FROM sf_bulk.jobs WHERE id = ANY ($1)", 1, types, own_values,
                                      nullptr, false, 0) != SPI_OK_DELETE)
                elog(ERROR, "could not delete sf_bulk jobs");
            deleted = static_cast<int64>(SPI_processed);
        });
    }
    SPI_finish();
    PG_RETURN_INT64(deleted);
}
