#include "core/error.h"

#include "pg_headers.h"

extern "C" {
#include "access/xact.h"
}

#include "guard.h"
#include "shmem.h"
#include "spool.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <memory>
#include <vector>

namespace sfb::pg {

namespace {

struct TrackedFile {
    std::string path;
    SubTransactionId owner;
};

// Backend-lifetime state. Heap objects reached through plain pointers and never destroyed: a static
// C++ object would be destroyed from exit() after PostgreSQL has torn its subsystems down.
std::vector<TrackedFile> *tracked = nullptr;
bool callbacks_registered = false;
bool wake_requested = false;
// DROP EXTENSION sf_bulk in this transaction: the (sub)transaction that dropped it, or 0.
SubTransactionId dropped_in = InvalidSubTransactionId;

void remove_database_files() noexcept;

void unlink_quietly(const std::string &path) noexcept {
    if (unlink(path.c_str()) != 0 && errno != ENOENT) {
        // Nothing to do but leave it: the files of a job that ended are removed again by the next worker.
    }
}

void at_transaction_end(XactEvent event, void *) {
    switch (event) {
        case XACT_EVENT_ABORT:
        case XACT_EVENT_PARALLEL_ABORT:
            dropped_in = InvalidSubTransactionId;
            if (tracked != nullptr) {
                for (const TrackedFile &file : *tracked)
                    unlink_quietly(file.path);
                tracked->clear();
            }
            wake_requested = false;
            break;
        case XACT_EVENT_COMMIT:
        case XACT_EVENT_PARALLEL_COMMIT:
        case XACT_EVENT_PREPARE:
            // Before the list is cleared: files this transaction made after the DROP belong to a new
            // extension's jobs and stay.
            if (dropped_in != InvalidSubTransactionId && event != XACT_EVENT_PREPARE)
                remove_database_files();
            dropped_in = InvalidSubTransactionId;
            if (tracked != nullptr)
                tracked->clear();
            if (wake_requested && event != XACT_EVENT_PREPARE)
                wake_database_worker(MyDatabaseId);
            wake_requested = false;
            break;
        default:
            break;
    }
}

void at_subtransaction_end(SubXactEvent event, SubTransactionId sub, SubTransactionId parent, void *) {
    if (dropped_in == sub)
        dropped_in = event == SUBXACT_EVENT_ABORT_SUB    ? InvalidSubTransactionId
                     : event == SUBXACT_EVENT_COMMIT_SUB ? parent
                                                         : dropped_in;
    if (tracked == nullptr)
        return;
    if (event == SUBXACT_EVENT_ABORT_SUB) {
        // Compacted in place: an abort (perhaps for lack of memory) must not need to allocate.
        std::size_t kept = 0;
        for (std::size_t i = 0; i < tracked->size(); ++i) {
            TrackedFile &file = (*tracked)[i];
            if (file.owner == sub) {
                unlink_quietly(file.path);
            } else {
                if (kept != i)
                    (*tracked)[kept] = std::move(file);
                ++kept;
            }
        }
        tracked->erase(tracked->begin() + static_cast<std::ptrdiff_t>(kept), tracked->end());
    } else if (event == SUBXACT_EVENT_COMMIT_SUB) {
        for (TrackedFile &file : *tracked)
            if (file.owner == sub)
                file.owner = parent;
    }
}

// Transaction callbacks are entry points called by PostgreSQL: guarded like every other one.
struct XactArgs {
    XactEvent event;
};
void xact_body(void *arg) {
    at_transaction_end(static_cast<XactArgs *>(arg)->event, nullptr);
}
void xact_callback(XactEvent event, void *) {
    XactArgs args{event};
    guarded_void_call(xact_body, &args);
}
struct SubXactArgs {
    SubXactEvent event;
    SubTransactionId sub, parent;
};
void subxact_body(void *arg) {
    auto *a = static_cast<SubXactArgs *>(arg);
    at_subtransaction_end(a->event, a->sub, a->parent, nullptr);
}
void subxact_callback(SubXactEvent event, SubTransactionId sub, SubTransactionId parent, void *) {
    SubXactArgs args{event, sub, parent};
    guarded_void_call(subxact_body, &args);
}

// Registered once per backend, lazily: registering per transaction would pile callbacks up.
void ensure_callbacks() {
    if (callbacks_registered)
        return;
    if (tracked == nullptr)
        tracked = new std::vector<TrackedFile>();
    pg_call([] {
        RegisterXactCallback(xact_callback, nullptr);
        RegisterSubXactCallback(subxact_callback, nullptr);
    });
    callbacks_registered = true;
}

}  // namespace

std::string spool_directory() {
    std::string dir = std::string(DataDir) + "/sf_bulk_spool";
    if (mkdir(dir.c_str(), S_IRWXU) != 0 && errno != EEXIST)
        throw Error(ErrorKind::Internal,
                    "could not create the spool directory \"" + dir + "\": " + std::strerror(errno));
    return dir;
}

std::string job_file_prefix(int64_t job_id) {
    return spool_directory() + "/db" + std::to_string(MyDatabaseId) + "_job" + std::to_string(job_id) + "_";
}

namespace {

// Names of the spool directory's entries that start with `name_prefix`, as full paths.
std::vector<std::string> spool_files_named(const std::string &dir, const std::string &name_prefix) {
    std::unique_ptr<DIR, int (*)(DIR *)> handle(opendir(dir.c_str()), closedir);
    std::vector<std::string> paths;
    if (!handle)
        return paths;
    while (struct dirent *entry = readdir(handle.get()))
        if (std::strncmp(entry->d_name, name_prefix.c_str(), name_prefix.size()) == 0)
            paths.push_back(dir + "/" + entry->d_name);
    return paths;
}

std::string database_file_prefix() {
    return "db" + std::to_string(MyDatabaseId) + "_job";
}

bool tracked_by_this_transaction(const std::string &path) {
    if (tracked == nullptr)
        return false;
    return std::any_of(tracked->begin(), tracked->end(),
                       [&path](const TrackedFile &file) { return file.path == path; });
}

// Every file of this database (its jobs' rows and results went with the extension's tables) except those
// this transaction created itself, after the DROP (a re-created extension's jobs).
void remove_database_files() noexcept {
    try {
        for (const std::string &path : spool_files_named(spool_directory(), database_file_prefix()))
            if (!tracked_by_this_transaction(path))
                unlink_quietly(path);
    } catch (...) {
        // No spool directory, or out of memory: files stay. A later job whose file name they hold fails to
        // spool (files are created with O_EXCL) instead of mixing rows.
    }
}

}  // namespace

void remove_job_files(int64_t job_id) noexcept {
    try {
        std::string prefix = job_file_prefix(job_id);
        std::string::size_type slash = prefix.rfind('/');
        for (const std::string &path : spool_files_named(prefix.substr(0, slash), prefix.substr(slash + 1)))
            unlink_quietly(path);
    } catch (...) {
        // Out of memory or no spool directory: the files stay until the job is seen ended again.
    }
}

std::vector<int64_t> jobs_with_files() {
    std::string name_prefix = database_file_prefix();
    std::vector<int64_t> jobs;
    for (const std::string &path : spool_files_named(spool_directory(), name_prefix)) {
        const char *name = path.c_str() + path.rfind('/') + 1 + name_prefix.size();
        char *end = nullptr;
        long long id = std::strtoll(name, &end, 10);
        if (end != nullptr && *end == '_')
            jobs.push_back(id);
    }
    std::sort(jobs.begin(), jobs.end());
    jobs.erase(std::unique(jobs.begin(), jobs.end()), jobs.end());
    return jobs;
}

void remove_spool_files_at_commit() {
    ensure_callbacks();
    if (dropped_in == InvalidSubTransactionId)
        dropped_in = GetCurrentSubTransactionId();
}

void track_spool_file(const std::string &path) {
    ensure_callbacks();
    tracked->push_back(TrackedFile{path, GetCurrentSubTransactionId()});
}

void sync_spool_directory() {
    std::string dir = spool_directory();
    int fd = open(dir.c_str(), O_RDONLY);
    if (fd < 0 || fsync(fd) != 0) {
        int saved = errno;
        if (fd >= 0)
            close(fd);
        throw Error(ErrorKind::Internal,
                    "could not fsync the spool directory \"" + dir + "\": " + std::strerror(saved));
    }
    close(fd);
}

void wake_worker_at_commit() {
    ensure_callbacks();
    wake_requested = true;
}

}  // namespace sfb::pg
