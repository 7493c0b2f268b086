// The background processes: one static launcher per cluster, one dynamic worker per database with work.
#pragma once

#include "pg_headers.h"

#include <type_traits>

namespace sfb::pg {

// From _PG_init (preloaded only): registers the launcher.
void register_launcher();

// Set by the signal handlers; read by the loops.
bool shutdown_requested();
bool reload_requested_and_clear();

// in_transaction's implementation.
void run_in_transaction(const char *what, void (*work)(void *), void *arg);

// One short transaction of the worker around `work`, with an active snapshot and an SPI connection; commits
// when `work` returns. `work` runs under pg_call: it may be a body of PostgreSQL calls only, or C++ code
// (parsing a result file between statements) that makes each PostgreSQL call through its own pg_call, so
// that no ERROR jumps over a C++ object with a destructor. On any failure the transaction is rolled back and
// the error logged; a PostgreSQL error reaches the caller as PgError, its message prefixed with `what`.
template <typename Work>
void in_transaction(const char *what, Work &&work) {
    using Body = std::remove_reference_t<Work>;
    run_in_transaction(
        what, [](void *body) { (*static_cast<Body *>(body))(); }, &work);
}

// The database worker's C++ loop (worker_loop.cpp). Returns when the worker should exit.
void run_database_worker();

}  // namespace sfb::pg
