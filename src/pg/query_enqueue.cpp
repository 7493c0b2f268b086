// sf_bulk_query: validate the SOQL and the target table, create the table from the describe when it does not
// exist, and queue the query job for the worker (src/pg/query_task.cpp), which the commit wakes.
#include "guard.h"

SFB_PG_FUNCTION(sf_bulk_query) {
    ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED), errmsg("sf_bulk_query is being built")));
    PG_RETURN_NULL();
}
