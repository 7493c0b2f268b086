// The background processes: one static launcher per cluster, one dynamic worker per database with work.
#pragma once

#include "pg_headers.h"

namespace sfb::pg {

// From _PG_init (preloaded only): registers the launcher.
void register_launcher();

// Set by the signal handlers; read by the loops.
bool shutdown_requested();
bool reload_requested_and_clear();

// The three steps of a worker transaction, for callers that interleave C++ work (parsing a result file)
// with SQL inside one transaction. Call them through pg_call; on failure, abort_transaction() leaves it.
void begin_transaction(const char *what);
void commit_transaction();
void abort_transaction();

// Runs one short transaction with an active snapshot and an SPI connection around `body`, a plain
// function (PostgreSQL calls only; no C++ objects). If it raises an ERROR, the error is logged, the
// transaction aborted, the error state cleared, and a PgError with the message thrown to the C++ caller.
void run_transaction(const char *what, void (*body)(void *), void *arg);

template <typename Fn>
void in_transaction(const char *what, Fn &fn) {
    run_transaction(
        what, [](void *f) { (*static_cast<Fn *>(f))(); }, &fn);
}

// The database worker's C++ loop (worker_loop.cpp). Returns when the worker should exit.
void run_database_worker();

}  // namespace sfb::pg
