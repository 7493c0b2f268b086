#include "pg_headers.h"

extern "C" {
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
}

#include "compat.h"
#include "shmem.h"

namespace sfb::pg {

int max_database_workers = 8;

namespace {

struct DatabaseSlot {
    Oid database;          // InvalidOid: free
    int pgprocno;          // the worker's PGPROC number, -1 while none runs
    pid_t pid;             // for diagnostics
    bool start_requested;  // the launcher should start a worker for it
    bool stop_requested;   // the worker must leave (its database is about to be dropped or renamed)
};

struct SharedState {
    slock_t mutex;
    int launcher_pgprocno;  // -1 when no launcher runs
    DatabaseSlot slots[FLEXIBLE_ARRAY_MEMBER];
};

SharedState *shared = nullptr;
shmem_request_hook_type prev_shmem_request_hook = nullptr;
shmem_startup_hook_type prev_shmem_startup_hook = nullptr;

Size shared_size() {
    return add_size(offsetof(SharedState, slots), mul_size(sizeof(DatabaseSlot), max_database_workers));
}

void request_shmem() {
    if (prev_shmem_request_hook)
        prev_shmem_request_hook();
    RequestAddinShmemSpace(shared_size());
}

void startup_shmem() {
    if (prev_shmem_startup_hook)
        prev_shmem_startup_hook();
    bool found;
    LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
    shared = static_cast<SharedState *>(ShmemInitStruct("sf_bulk", shared_size(), &found));
    if (!found) {
        SpinLockInit(&shared->mutex);
        shared->launcher_pgprocno = -1;
        for (int i = 0; i < max_database_workers; ++i)
            shared->slots[i] = DatabaseSlot{InvalidOid, -1, 0, false, false};
    }
    LWLockRelease(AddinShmemInitLock);
}

// Both callers hold the spinlock.
DatabaseSlot *find_slot(Oid database) {
    for (int i = 0; i < max_database_workers; ++i)
        if (shared->slots[i].database == database)
            return &shared->slots[i];
    return nullptr;
}

DatabaseSlot *find_or_claim_slot(Oid database) {
    DatabaseSlot *slot = find_slot(database);
    if (slot == nullptr) {
        slot = find_slot(InvalidOid);
        if (slot != nullptr)
            *slot = DatabaseSlot{database, -1, 0, false, false};
    }
    return slot;
}

void set_latch_of(int pgprocno) {
    if (pgprocno >= 0)
        SetLatch(&ProcGlobal->allProcs[pgprocno].procLatch);
}

void on_worker_exit(int, Datum) {
    worker_detach();
}

void on_launcher_exit(int, Datum) {
    SpinLockAcquire(&shared->mutex);
    shared->launcher_pgprocno = -1;
    SpinLockRelease(&shared->mutex);
}

}  // namespace

void install_shmem_hooks() {
    prev_shmem_request_hook = shmem_request_hook;
    shmem_request_hook = request_shmem;
    prev_shmem_startup_hook = shmem_startup_hook;
    shmem_startup_hook = startup_shmem;
}

void wake_database_worker(Oid database) {
    if (shared == nullptr)
        return;
    int worker = -1;
    int launcher = -1;
    SpinLockAcquire(&shared->mutex);
    DatabaseSlot *slot = find_or_claim_slot(database);
    if (slot != nullptr) {
        worker = slot->pgprocno;
        if (worker < 0) {
            slot->start_requested = true;
            launcher = shared->launcher_pgprocno;
        }
    }
    SpinLockRelease(&shared->mutex);
    // Latches are set outside the spinlock: SetLatch may make a system call.
    set_latch_of(worker);
    set_latch_of(launcher);
}

void launcher_attach() {
    SpinLockAcquire(&shared->mutex);
    shared->launcher_pgprocno = sfb_my_pgprocno();
    SpinLockRelease(&shared->mutex);
    on_shmem_exit(on_launcher_exit, 0);
}

int launcher_take_start_requests(Oid *databases, int max) {
    int n = 0;
    SpinLockAcquire(&shared->mutex);
    for (int i = 0; i < max_database_workers && n < max; ++i) {
        DatabaseSlot &slot = shared->slots[i];
        if (slot.database != InvalidOid && slot.start_requested && slot.pgprocno < 0) {
            databases[n++] = slot.database;
            slot.start_requested = false;
        }
    }
    SpinLockRelease(&shared->mutex);
    return n;
}

void launcher_request_start(Oid database) {
    SpinLockAcquire(&shared->mutex);
    DatabaseSlot *slot = find_or_claim_slot(database);
    if (slot != nullptr && slot->pgprocno < 0)
        slot->start_requested = true;
    SpinLockRelease(&shared->mutex);
}

bool worker_attach(Oid database) {
    bool attached = false;
    SpinLockAcquire(&shared->mutex);
    DatabaseSlot *slot = find_or_claim_slot(database);
    if (slot != nullptr && slot->pgprocno < 0) {
        slot->pgprocno = sfb_my_pgprocno();
        slot->pid = MyProcPid;
        slot->start_requested = false;
        slot->stop_requested = false;
        attached = true;
    }
    SpinLockRelease(&shared->mutex);
    if (attached)
        before_shmem_exit(on_worker_exit, 0);
    return attached;
}

void worker_request_restart() {
    SpinLockAcquire(&shared->mutex);
    for (int i = 0; i < max_database_workers; ++i)
        if (shared->slots[i].pgprocno == sfb_my_pgprocno() && shared->slots[i].pid == MyProcPid)
            shared->slots[i].start_requested = true;
    SpinLockRelease(&shared->mutex);
}

void worker_detach() {
    if (shared == nullptr)
        return;
    int launcher = -1;
    SpinLockAcquire(&shared->mutex);
    for (int i = 0; i < max_database_workers; ++i) {
        DatabaseSlot &slot = shared->slots[i];
        if (slot.pgprocno == sfb_my_pgprocno() && slot.pid == MyProcPid) {
            // A start request that arrived while we were leaving keeps the slot claimed for the launcher.
            if (slot.start_requested) {
                slot.pgprocno = -1;
                slot.pid = 0;
                launcher = shared->launcher_pgprocno;
            } else
                slot = DatabaseSlot{InvalidOid, -1, 0, false, false};
        }
    }
    SpinLockRelease(&shared->mutex);
    set_latch_of(launcher);
}

bool worker_stop_requested() {
    bool stop = false;
    SpinLockAcquire(&shared->mutex);
    for (int i = 0; i < max_database_workers; ++i)
        if (shared->slots[i].pgprocno == sfb_my_pgprocno() && shared->slots[i].pid == MyProcPid)
            stop = shared->slots[i].stop_requested;
    SpinLockRelease(&shared->mutex);
    return stop;
}

bool stop_database_worker(Oid database, int timeout_ms) {
    if (shared == nullptr)
        return true;
    for (int waited = 0;; waited += 10) {
        int worker = -1;
        SpinLockAcquire(&shared->mutex);
        DatabaseSlot *slot = find_slot(database);
        if (slot != nullptr && slot->pgprocno >= 0) {
            slot->stop_requested = true;
            worker = slot->pgprocno;
        }
        SpinLockRelease(&shared->mutex);
        if (worker < 0)
            return true;
        set_latch_of(worker);
        if (waited >= timeout_ms)
            return false;
        CHECK_FOR_INTERRUPTS();
        pg_usleep(10 * 1000L);
    }
}

}  // namespace sfb::pg
