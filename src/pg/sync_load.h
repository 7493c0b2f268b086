// The load of a mirror's run (sf_bulk_sync): the staged result rows merged into the target by id, deletions
// applied, and the watermark moved, all in the load's one transaction (query_load.cpp calls these). A crash
// before the commit leaves the table and the watermark as they were, and the worker loads the run again;
// applying a run twice gives what applying it once gives (rows are only written when Salesforce's copy is
// not older and differs).
//
// PostgreSQL calls only, no C++ objects (like query_load.cpp): run inside the load's pg_call.
#pragma once

#include "pg_headers.h"

#include "query_load.h"

namespace sfb::pg {

// The run of a job, read as the worker before the load switches to the owner's rights.
struct SyncRunView {
    char kind;  // 'f' full, 'i' incremental, 'c' formulas (calculated fields)
    bool mark;  // deletes => 'mark': keep deleted rows with isdeleted = true
    bool has_deleted_ids;
    Datum deleted_ids;  // text[]: the /deleted/ window's ids (incremental)
};

struct SyncApplied {
    int64 inserted;
    int64 updated;
    int64 deleted;  // removed, or marked deleted
    bool has_max_stamp;
    TimestampTz max_stamp;  // the largest SystemModstamp staged
};

SyncRunView *read_sync_run(int64 job_id);

// As the owner (the load's restricted operation): merges `stage` (columns v->columns; array columns staged as
// text) into `target`. `plain_table`: ONLY applies (a partitioned table holds no rows of its own).
SyncApplied apply_sync(const SyncRunView *run, const LoadView *v, const char *stage, const char *target,
                       const bool *is_array, bool plain_table);

// Whether the target holds no row (read as the worker, before the owner's rights): a full run into it is
// copied straight in.
bool sync_target_is_empty(const LoadView *v, bool plain_table);

// As the owner, after the full run's rows were copied straight into the empty target: the deleted ones taken
// out (deletes => 'delete'), the counts and the newest SystemModstamp.
SyncApplied apply_sync_copied(const SyncRunView *run, const LoadView *v, const char *target, int64 rows,
                              bool plain_table);

// As the worker: the run's counts and the mirror's new watermark, cursor and times.
void record_sync_run(int64 job_id, const SyncRunView *run, const SyncApplied *applied);

}  // namespace sfb::pg
