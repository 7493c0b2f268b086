// What the functions that queue a job share (the ingest functions in enqueue.cpp, sf_bulk_query in
// query_enqueue.cpp): their arguments, the refusal inside another call's spooling, and named jobs.
#pragma once

#include "pg_headers.h"

extern "C" {
#include "fmgr.h"
}

namespace sfb::pg {

// The argument as a palloc'd C string; NULL where the caller passed NULL.
const char *text_arg(FunctionCallInfo fcinfo, int n);
const char *name_arg(FunctionCallInfo fcinfo, int n);

// Raises ERROR when called from the query an ingest call of this backend is spooling right now.
void refuse_while_spooling(const char *function);

// Raises ERROR unless `if_running` is 'queue', 'skip' or 'error'.
void check_if_running(const char *function, const char *if_running);

// For a named job (`job_name` not NULL): the caller's unfinished job of that name goes first. Sets
// *after_job to it (0: none). Returns false for if_running => 'skip' with such a job (a NOTICE says so:
// start nothing); raises ERROR for 'error'. Needs an SPI connection.
bool follow_named_job(const char *function, const char *job_name, const char *if_running, int64 *after_job);

}  // namespace sfb::pg
