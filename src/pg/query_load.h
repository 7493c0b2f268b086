// The load of a query job's result pages into its target table, through PostgreSQL's COPY FROM C API
// (BeginCopyFrom/CopyFrom/EndCopyFrom): the file streams into the table, so memory stays flat in rows, and
// COPY's own error context names the line, column and value of a value that does not convert.
//
// PostgreSQL calls only (it raises ERROR and owns no C++ object): run it through pg_call, inside the
// transaction that also records the job's step Done.
#pragma once

#include "pg_headers.h"

namespace sfb::pg {

// What the load needs, as plain values: the C++ side (query_store.cpp) has read the job and checked every
// page's header against the job's columns before.
struct LoadView {
    int64 job_id;
    Oid owner;           // the job's owner: the load runs with its rights, never more
    Oid target_relid;    // the table `schema`.`table` named when the job was queued (InvalidOid: unknown)
    const char *schema;  // the target, resolved again now (renamed or dropped: the load fails naming it)
    const char *table;
    char mode;       // 'a' append, 'r' replace, 'm' merge, 's' a mirror's run (sync_load.h)
    char delimiter;  // the result files' column delimiter
    int ncolumns;
    const char *const *columns;  // target column of each header field, in the files' order
    int npages;
    const int *page_nos;
    const char *const *page_files;  // in page order
};

// Loads every page; returns the rows the target received (inserted, or inserted and updated by a merge).
int64 load_query_pages(const LoadView *view);

}  // namespace sfb::pg
