// Shared memory of sf_bulk: who the launcher is, which database has a worker, which needs one.
// Plain, position-independent data only (no pointers, handles or descriptors): after a crash the
// postmaster re-initialises it and new processes must be able to trust every byte.
#pragma once

#include "pg_headers.h"

namespace sfb::pg {

// Called from _PG_init when preloaded: installs the shmem request/startup hooks (chained).
void install_shmem_hooks();

// Asks for the worker of `database` to look at its queue now: sets its latch, or, when none runs,
// asks the launcher to start one. Never raises an error.
void wake_database_worker(Oid database);

// Wakes this database's worker when the current transaction commits (its jobs become visible then). The
// commit callback is the one that hands the transaction's spool files over (spool.cpp).
void wake_worker_at_commit();

// The launcher's and the workers' registration in shared memory.
void launcher_attach();
int launcher_take_start_requests(Oid *databases, int max);  // returns how many; clears them
void launcher_request_start(Oid database);                  // from the launcher itself (startup sweep)
bool worker_attach(Oid database);  // false if another worker already serves this database
void worker_detach();
// The worker is being terminated with work left: the launcher starts a new one once this one is gone.
void worker_request_restart();

// Asks the worker of `database` to exit and waits up to `timeout_ms` for it to go. True when none runs.
// For statements that need the database free of connections (DROP DATABASE and friends).
bool stop_database_worker(Oid database, int timeout_ms);
bool worker_stop_requested();  // from the worker itself

// The number of database worker slots (sf_bulk.max_databases).
extern int max_database_workers;

}  // namespace sfb::pg
