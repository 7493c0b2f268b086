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
#include "spool.h"

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
