#include "pg_headers.h"

extern "C" {
#include "catalog/pg_type.h"
#include "executor/spi.h"
}

#include "owner.h"

namespace sfb::pg {

Oid extension_owner() {
    const char *sql =
        "SELECT extowner FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'sf_bulk'";
    if (SPI_execute(sql, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("the sf_bulk extension is not installed in this database"),
                        errhint("CREATE EXTENSION sf_bulk;")));
    bool is_null;
    return DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &is_null));
}

}  // namespace sfb::pg
