// Process plumbing of the launcher and the database workers: registration, signals, the wait loop of the
// launcher, and the transaction wrapper the worker's C++ loop uses. The work itself is in worker_loop.cpp.
#include "pg_headers.h"

extern "C" {
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "catalog/pg_extension.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

PGDLLEXPORT void sf_bulk_launcher_main(Datum);
PGDLLEXPORT void sf_bulk_worker_main(Datum);
}

#include "guard.h"
#include "settings.h"
#include "shmem.h"
#include "worker.h"

#include <exception>
#include <string>

namespace sfb::pg {

bool shutdown_requested() {
    return ShutdownRequestPending;
}

bool reload_requested_and_clear() {
    if (!ConfigReloadPending)
        return false;
    ConfigReloadPending = false;
    ProcessConfigFile(PGC_SIGHUP);
    return true;
}

void register_launcher() {
    BackgroundWorker worker;
    memset(&worker, 0, sizeof worker);
    worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
    worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
    worker.bgw_restart_time = 5;
    snprintf(worker.bgw_library_name, BGW_MAXLEN, "sf_bulk");
    snprintf(worker.bgw_function_name, BGW_MAXLEN, "sf_bulk_launcher_main");
    snprintf(worker.bgw_name, BGW_MAXLEN, "sf_bulk launcher");
    snprintf(worker.bgw_type, BGW_MAXLEN, "sf_bulk launcher");
    RegisterBackgroundWorker(&worker);
}

namespace {

void install_signal_handlers() {
    // Handlers only record the request and set the latch: the loops leave cleanly, never from inside
    // libcurl or a destructor. SIGINT and SIGUSR1 keep their defaults (cancel, procsignals and barriers).
    pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
    pqsignal(SIGHUP, SignalHandlerForConfigReload);
    BackgroundWorkerUnblockSignals();
}

// Every database that accepts connections: after a restart their queues may hold unfinished jobs.
void request_workers_for_all_databases() {
    SetCurrentStatementStartTimestamp();
    StartTransactionCommand();
    Relation rel = table_open(DatabaseRelationId, AccessShareLock);
    TableScanDesc scan = table_beginscan_catalog(rel, 0, nullptr);
    HeapTuple tuple;
    while ((tuple = heap_getnext(scan, ForwardScanDirection)) != nullptr) {
        Form_pg_database db = (Form_pg_database)GETSTRUCT(tuple);
        if (db->datallowconn && !db->datistemplate)
            launcher_request_start(db->oid);
    }
    table_endscan(scan);
    table_close(rel, AccessShareLock);
    CommitTransactionCommand();
}

bool start_database_worker(Oid database) {
    BackgroundWorker worker;
    memset(&worker, 0, sizeof worker);
    worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
    worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
    // Never restarted by the postmaster (a dropped database would make it fail forever); the launcher's
    // sweep at start and every minute brings a worker back wherever one is missing.
    worker.bgw_restart_time = BGW_NEVER_RESTART;
    snprintf(worker.bgw_library_name, BGW_MAXLEN, "sf_bulk");
    snprintf(worker.bgw_function_name, BGW_MAXLEN, "sf_bulk_worker_main");
    snprintf(worker.bgw_name, BGW_MAXLEN, "sf_bulk worker for database %u", database);
    snprintf(worker.bgw_type, BGW_MAXLEN, "sf_bulk worker");
    worker.bgw_main_arg = ObjectIdGetDatum(database);
    worker.bgw_notify_pid = 0;
    return RegisterDynamicBackgroundWorker(&worker, nullptr);
}

constexpr int kSweepMs = 60000;

void launcher_loop(void *) {
    constexpr int kMaxStarts = 64;
    Oid pending[kMaxStarts];
    int pending_count = 0;
    TimestampTz last_sweep = GetCurrentTimestamp();
    for (;;) {
        WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
                  pending_count > 0 ? 1000 : kSweepMs, PG_WAIT_EXTENSION);
        ResetLatch(MyLatch);
        CHECK_FOR_INTERRUPTS();
        if (shutdown_requested())
            break;
        reload_requested_and_clear();
        // A worker that stopped for a DROP DATABASE that then failed, or died of an unexpected error, is
        // brought back by this sweep; where nothing is pending it exits at once.
        if (TimestampDifferenceExceeds(last_sweep, GetCurrentTimestamp(), kSweepMs)) {
            request_workers_for_all_databases();
            last_sweep = GetCurrentTimestamp();
        }
        pending_count += launcher_take_start_requests(pending + pending_count, kMaxStarts - pending_count);
        int kept = 0;
        for (int i = 0; i < pending_count; ++i) {
            // Registration fails when every max_worker_processes slot is taken: try again in a second.
            if (!start_database_worker(pending[i]))
                pending[kept++] = pending[i];
        }
        if (kept > 0 && kept == pending_count)
            ereport(LOG, (errmsg("sf_bulk launcher: no background worker slot free for %d database(s); "
                                 "raise max_worker_processes",
                                 kept)));
        pending_count = kept;
    }
}

void begin_transaction(const char *what) {
    SetCurrentStatementStartTimestamp();
    StartTransactionCommand();
    // DROP EXTENSION locks the extension before it locks, one by one, the tables it drops; a worker
    // transaction that touched one of those tables first and then wanted another would deadlock with it.
    // Holding the extension's own lock for the whole transaction orders the two: one waits for the other.
    Oid extension = get_extension_oid("sf_bulk", true);
    if (OidIsValid(extension))
        LockDatabaseObject(ExtensionRelationId, extension, 0, AccessShareLock);
    PushActiveSnapshot(GetTransactionSnapshot());
    if (SPI_connect() != SPI_OK_CONNECT)
        elog(ERROR, "SPI_connect failed");
    pgstat_report_activity(STATE_RUNNING, what);
}

void commit_transaction() {
    SPI_finish();
    PopActiveSnapshot();
    CommitTransactionCommand();
    pgstat_report_stat(false);
    pgstat_report_activity(STATE_IDLE, nullptr);
}

void abort_transaction() {
    // The error (if any) was already copied and flushed by pg_call; leave the failed transaction.
    HOLD_INTERRUPTS();
    AbortCurrentTransaction();
    RESUME_INTERRUPTS();
    pgstat_report_activity(STATE_IDLE, nullptr);
}

}  // namespace

void run_in_transaction(const char *what, void (*work)(void *), void *arg) {
    MemoryContext caller = CurrentMemoryContext;
    std::exception_ptr failure;
    try {
        pg_call([what] { begin_transaction(what); });
        pg_call([work, arg] { work(arg); });
        pg_call([] { commit_transaction(); });
        return;
    } catch (...) {
        failure = std::current_exception();
    }
    pg_call([caller] {
        abort_transaction();
        MemoryContextSwitchTo(caller);
    });
    try {
        std::rethrow_exception(failure);
    } catch (const PgError &e) {
        std::string message = std::string(what) + ": " + e.what();
        pg_call([&message, &e] {
            ereport(LOG, (errmsg("%s", message.c_str()),
                          e.detail().empty() ? 0 : errdetail_internal("%s", e.detail().c_str())));
        });
        throw PgError(e.sqlstate(), std::move(message), e.detail(), e.hint(), e.context());
    }
}

}  // namespace sfb::pg

void sf_bulk_launcher_main(Datum) {
    sfb::pg::install_signal_handlers();
    BackgroundWorkerInitializeConnection(nullptr, nullptr, 0);
    sfb::pg::launcher_attach();
    sfb::pg::request_workers_for_all_databases();
    sfb::pg::guarded_void_call(sfb::pg::launcher_loop, nullptr);
    // Exit code 1: a stray pg_terminate_backend must not disable the launcher until the next restart.
    proc_exit(1);
}

void sf_bulk_worker_main(Datum main_arg) {
    Oid database = DatumGetObjectId(main_arg);
    sfb::pg::install_signal_handlers();
    BackgroundWorkerInitializeConnectionByOid(database, InvalidOid, 0);
    // The worker is a superuser session: no database or role setting (ALTER DATABASE ... SET search_path by
    // a database owner who is no superuser) may put a schema others can write ahead of pg_catalog.
    SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);
    if (!sfb::pg::worker_attach(database))
        proc_exit(0);  // another worker already serves this database
    sfb::pg::guarded_void_call([](void *) { sfb::pg::run_database_worker(); }, nullptr);
    // Terminated (pg_terminate_backend, or a shutdown): a successor resumes the unfinished uploads.
    if (sfb::pg::shutdown_requested())
        sfb::pg::worker_request_restart();
    proc_exit(0);
}
