// The database worker's loop: wait on the latch and curl's sockets in one WaitEventSet → feed what arrived
// to the tasks (worker_task.h) and the token broker → let the tasks act. It knows no job kind: the kinds'
// tasks record their steps through the job store, and the loop only claims jobs, routes responses, gets
// tokens and ends jobs whose tasks have all ended.
//
// Shape: C++ objects (the HTTP client, the tasks, strings) live in this file's frames; every PostgreSQL call
// goes through pg_call or a job-store transaction, so no ERROR ever jumps over them. No transaction is open
// while waiting on the network.
#include "core/http.h"
#include "core/token_broker.h"
#include "job_store.h"
#include "worker_task.h"

#include "client_settings.h"
#include "pg_headers.h"

extern "C" {
#include "pgstat.h"
#include "postmaster/interrupt.h"
#include "storage/latch.h"
}

#include "compat.h"
#include "guard.h"
#include "settings.h"
#include "shmem.h"
#include "spool.h"
#include "worker.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace sfb::pg {

namespace {

std::int64_t wall_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// Only shutdown and termination abort transfers: InterruptPending is also set by procsignal barriers
// (e.g. a DROP DATABASE elsewhere), which must not cancel uploads.
bool interrupt_pending() noexcept {
    return ShutdownRequestPending || ProcDiePending;
}

struct ReadySocket {
    int fd;
    bool readable, writable;
};

// One wait on the latch, postmaster death and `sockets`, at most `timeout_ms`. PostgreSQL calls only.
// Fills `ready` (room for `count` entries) and returns how many sockets are ready; *latch_set tells
// whether the latch woke us.
int wait_for_events(const WatchedSocket *sockets, int count, int timeout_ms, ReadySocket *ready,
                    bool *latch_set) {
    WaitEventSet *set = sfb_create_wait_event_set(count + 2);
    AddWaitEventToSet(set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, nullptr);
    AddWaitEventToSet(set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, nullptr, nullptr);
    for (int i = 0; i < count; ++i)
        AddWaitEventToSet(set,
                          (sockets[i].want_read ? WL_SOCKET_READABLE : 0) |
                              (sockets[i].want_write ? WL_SOCKET_WRITEABLE : 0),
                          sockets[i].fd, nullptr, nullptr);
    WaitEvent events[64];
    int n = WaitEventSetWait(set, timeout_ms, events, lengthof(events), PG_WAIT_EXTENSION);
    int found = 0;
    *latch_set = false;
    for (int i = 0; i < n; ++i) {
        if (events[i].events & WL_LATCH_SET) {
            *latch_set = true;
        } else if (found < count) {
            ready[found++] = ReadySocket{events[i].fd, (events[i].events & WL_SOCKET_READABLE) != 0,
                                         (events[i].events & WL_SOCKET_WRITEABLE) != 0};
        }
    }
    FreeWaitEventSet(set);
    return found;
}

class Worker final : public TaskContext {
  public:
    void run();

    // TaskContext
    std::int64_t now_ms() const override { return wall_ms(); }
    TokenBroker &tokens() override { return tokens_; }
    TransferId send(HttpRequest request) override;
    void cancel(TransferId transfer) override { client_->cancel(transfer); }
    void need_token(const OrgKey &org) override { tokens_wanted_.insert(org); }
    void job_may_have_ended(std::int64_t job_id) override { jobs_to_check_.insert(job_id); }
    void job_seen(std::int64_t job_id, const OrgKey &org) override;
    void new_tasks_ready() override { next_look_ms_ = 0; }

  private:
    void look_for_work();
    void dispatch(HttpResponse &response);
    void advance_tasks();
    void set_aside(WorkerTask &task, const std::string &failure);
    void get_tokens();
    void finish_jobs();
    void remove_files_of_ended_jobs();
    void make_client();
    bool transfers_pending() const;
    // Brings the next look for work forward (never back: a failure repeated every round must not keep
    // postponing the look that would notice, say, a dropped extension).
    void look_again_within(int ms) { next_look_ms_ = std::min(next_look_ms_, now_ms() + ms); }
    void wait();
    int wait_timeout_ms() const;

    std::unique_ptr<HttpClient> client_;
    TokenBroker tokens_{token_broker_config(), default_random_source(), system_wall_clock()};
    std::vector<std::unique_ptr<TaskSource>> sources_;
    size_t first_source_ = 0;  // the kind asked first for work at the next look
    std::map<std::string, std::unique_ptr<WorkerTask>> tasks_;  // by key
    std::map<TransferId, std::string> task_transfers_;          // -> task key
    std::map<TransferId, OrgKey> token_transfers_;
    std::set<OrgKey> tokens_wanted_;
    std::map<std::int64_t, bool> abort_requested_;
    std::set<std::int64_t> jobs_seen_;  // jobs whose tasks this worker has loaded
    std::set<std::int64_t> jobs_to_check_;
    std::map<std::string, int> local_failures_;  // task key -> local failures in a row
    std::int64_t next_look_ms_ = 0;
    std::int64_t next_purge_ms_ = 0;
    bool latch_was_set_ = true;
    bool extension_present_ = true;
    bool client_settings_changed_ = false;
    bool act_now_ = false;  // something changed that tasks should see without waiting
};

void Worker::make_client() {
    client_ = std::make_unique<HttpClient>(http_client_options(interrupt_pending));
}

void Worker::run() {
    // Started by the launcher's sweep or on demand: leave at once where there is nothing to do, after
    // removing what a crash left of jobs that ended (a query job ends in the transaction that loads its
    // pages, before its page files go).
    if (!job_store::has_unfinished_work()) {
        remove_files_of_ended_jobs();
        return;
    }
    http_global_init();
    make_client();
    sources_.push_back(make_ingest_source());
    sources_.push_back(make_query_source());
    remove_files_of_ended_jobs();

    std::int64_t idle_since = now_ms();
    for (;;) {
        pg_call([] {
            ResetLatch(MyLatch);
            CHECK_FOR_INTERRUPTS();
        });
        if (shutdown_requested() || pg_call([] { return worker_stop_requested(); }))
            break;
        // Settings are read live; those that shape the HTTP client (CA file, plain http to loopback) take
        // effect as soon as no transfer runs on the old one.
        if (pg_call([] { return reload_requested_and_clear(); })) {
            client_settings_changed_ = true;
            tokens_.set_config(
                token_broker_config());  // sf_bulk.max_retries, request_timeout for token requests
        }
        if (latch_was_set_ || now_ms() >= next_look_ms_)
            look_for_work();
        if (!extension_present_)
            break;

        for (HttpResponse &response : client_->take_completed())
            dispatch(response);
        // Only between a drained client and the next request: no completed response may be dropped, and no
        // task or login may be left waiting for a transfer of the old client.
        if (client_settings_changed_ && !transfers_pending()) {
            client_settings_changed_ = false;
            make_client();
        }
        act_now_ = false;
        advance_tasks();
        get_tokens();
        finish_jobs();

        if (!tasks_.empty() || client_->active() > 0) {
            idle_since = now_ms();
        } else if (now_ms() - idle_since > settings.worker_idle_timeout_s * 1000LL) {
            // Leave the slot first, then look once more: a job committed in between either finds the slot
            // free (and asks the launcher) or is seen here.
            pg_call([] { worker_detach(); });
            if (!job_store::has_unfinished_work())
                break;
            if (!pg_call([] { return worker_attach(MyDatabaseId); }))
                break;
            idle_since = now_ms();
        }
        wait();
    }
    tasks_.clear();
    client_.reset();
    http_global_cleanup();
}

bool Worker::transfers_pending() const {
    return client_->active() > 0 || !token_transfers_.empty() || !task_transfers_.empty();
}

// ---- claiming work

void Worker::look_for_work() {
    latch_was_set_ = false;
    // Commits wake us (new jobs, aborts); this periodic look is only the safety net for missed wakes.
    next_look_ms_ = now_ms() + 5000;
    std::optional<std::vector<RunningJob>> running = job_store::claim_jobs();
    extension_present_ = running.has_value();
    if (!running)
        return;
    if (settings.retention_s > 0 && now_ms() >= next_purge_ms_) {
        next_purge_ms_ = now_ms() + 10 * 60 * 1000;
        job_store::purge_old_jobs(settings.retention_s);
    }
    abort_requested_.clear();
    for (const RunningJob &job : *running) {
        abort_requested_[job.id] = job.abort_requested;
        jobs_to_check_.insert(job.id);
    }
    int busy = 0;
    std::set<std::string> keys;
    for (const auto &[key, task] : tasks_) {
        keys.insert(key);
        busy += task->idle() ? 0 : 1;
    }
    int free_slots = settings.max_parallel_jobs - busy;
    if (free_slots <= 0)
        return;
    // The kinds take turns at being asked first: a steady stream of one kind's work must not keep every
    // freed slot away from the other's for ever.
    first_source_ = (first_source_ + 1) % sources_.size();
    for (size_t i = 0; i < sources_.size(); ++i) {
        auto &source = sources_[(first_source_ + i) % sources_.size()];
        if (free_slots <= 0)
            break;
        for (auto &task : source->load(*this, keys, free_slots)) {
            keys.insert(task->key());
            std::string key = task->key();
            tasks_.emplace(std::move(key), std::move(task));
            --free_slots;
        }
    }
}

void Worker::job_seen(std::int64_t job_id, const OrgKey &org) {
    if (!jobs_seen_.insert(job_id).second || tokens_.state(org) == TokenState::Missing ||
        tokens_.state(org) == TokenState::Fetching)
        return;
    try {
        tokens_.recheck(org, job_store::read_credentials(org).digest);
    } catch (const std::exception &e) {
        tokens_.fail(org, "AUTHENTICATION", e.what());
    }
}

// ---- calls and tokens

TransferId Worker::send(HttpRequest request) {
    return client_->start(std::move(request));
}

void Worker::dispatch(HttpResponse &response) {
    if (auto token = token_transfers_.find(response.id); token != token_transfers_.end()) {
        OrgKey org = token->second;
        token_transfers_.erase(token);
        act_now_ = true;
        if (std::optional<std::string> note = tokens_.on_response(org, response, now_ms())) {
            // The token endpoint is down or throttling: the org's tasks wait — and say so, or a user sees a
            // job "creating" for minutes without a reason.
            for (auto &[key, task] : tasks_)
                if (task->waits_for_token() && task->org() == org)
                    task->note_waiting(*note);
        }
        return;
    }
    auto routed = task_transfers_.find(response.id);
    if (routed == task_transfers_.end())
        return;
    std::string key = std::move(routed->second);
    task_transfers_.erase(routed);
    auto task = tasks_.find(key);
    if (task == tasks_.end())
        return;
    try {
        task->second->on_response(*this, response);
    } catch (const std::exception &e) {
        set_aside(*task->second, e.what());
        tasks_.erase(task);
    }
}

// Credentials are read at use time from the user mapping (PostgreSQL keeps them), never cached on disk.
void Worker::get_tokens() {
    std::int64_t now = now_ms();
    for (const OrgKey &org : tokens_wanted_) {
        if (!tokens_.wants_credentials(org, now))
            continue;
        act_now_ = true;
        std::optional<HttpRequest> request;
        try {
            request = tokens_.begin_fetch(org, job_store::read_credentials(org));
        } catch (const std::exception &e) {
            tokens_.fail(org, "AUTHENTICATION", e.what());
            continue;
        }
        if (request)
            token_transfers_[client_->start(std::move(*request))] = org;
    }
    tokens_wanted_.clear();
}

// ---- driving the tasks

void Worker::advance_tasks() {
    for (auto it = tasks_.begin(); it != tasks_.end();) {
        WorkerTask &task = *it->second;
        // One task's failure (a SQL error while recording it, a broken invariant) must not stop the others:
        // drop it from memory and let it resume from its last recorded step.
        std::string failure;
        bool finished = false;
        try {
            auto abort = abort_requested_.find(task.job_id());
            TransferId before = task.transfer();
            task.advance(*this, abort != abort_requested_.end() && abort->second);
            if (task.transfer() != 0 && task.transfer() != before)
                task_transfers_[task.transfer()] = it->first;
            if (task.finished()) {
                task.finish(*this);
                finished = true;
            }
        } catch (const std::exception &e) {
            failure = e.what();
        }
        if (!failure.empty()) {
            set_aside(task, failure);
            it = tasks_.erase(it);
        } else if (finished) {
            local_failures_.erase(it->first);
            it = tasks_.erase(it);
            next_look_ms_ = 0;  // a slot is free: look for more work now
        } else {
            ++it;
        }
    }
}

// After a local failure the task is loaded again from its recorded step on the next look for work; the third
// failure in a row fails it, so a deterministic error cannot loop for ever.
void Worker::set_aside(WorkerTask &task, const std::string &failure) {
    if (task.transfer() != 0) {
        client_->cancel(task.transfer());
        task_transfers_.erase(task.transfer());
    }
    std::string message = "sf_bulk could not record " + task.key() + " of job " +
                          std::to_string(task.job_id()) + ": " + failure;
    pg_call([&message] { ereport(LOG, (errmsg("%s", message.c_str()))); });
    bool give_up = ++local_failures_[task.key()] >= 3;
    if (give_up)
        local_failures_.erase(task.key());
    else
        next_look_ms_ = now_ms() + 2000;  // not at once: let whatever failed (a lock, a full disk) pass
    try {
        task.set_aside(message, give_up);
    } catch (const std::exception &) {
        look_again_within(2000);  // logged by the store; the task is loaded and failed again later
    }
    jobs_to_check_.insert(task.job_id());
}

// Jobs whose tasks have all ended get their final state; their files go.
void Worker::finish_jobs() {
    if (jobs_to_check_.empty())
        return;
    std::vector<std::int64_t> ids(jobs_to_check_.begin(), jobs_to_check_.end());
    jobs_to_check_.clear();
    std::vector<std::int64_t> ended;
    try {
        ended = job_store::finish_jobs(ids);
    } catch (const std::exception &) {
        // Logged by the store. The calls in flight must not stop for it: look at these jobs again shortly.
        jobs_to_check_.insert(ids.begin(), ids.end());
        look_again_within(2000);
        return;
    }
    // Normally nothing is left; after a crash between storing results and this point, result downloads
    // and the upload's file are.
    for (std::int64_t id : ended)
        remove_job_files(id);
    // A job that ended may release one queued behind it (if_running => 'queue'): look for work now.
    if (!ended.empty())
        next_look_ms_ = 0;
}

// A worker that died after a job's results were stored but before the job ended leaves that job's files;
// the job is ended by the next worker (finish_jobs removes them then). Files of jobs that ended anyway are
// removed here. Files of jobs not visible yet (an enqueue still in its transaction) are never touched.
void Worker::remove_files_of_ended_jobs() {
    try {
        std::vector<std::int64_t> with_files = jobs_with_files();
        if (with_files.empty())
            return;  // no transaction (nor, where sf_bulk is not installed, an error in the log) for nothing
        for (std::int64_t id : job_store::ended_jobs(with_files))
            remove_job_files(id);
    } catch (const std::exception &) {
        // No spool directory, or the store logged its error: the files go when the next worker starts.
    }
}

// ---- waiting

int Worker::wait_timeout_ms() const {
    if (act_now_ || next_look_ms_ == 0)
        return 0;
    std::int64_t now = now_ms();
    std::int64_t next = next_look_ms_;
    for (const auto &[key, task] : tasks_)
        if (std::optional<std::int64_t> wake = task->wake_at_ms())
            next = std::min(next, *wake);
    if (std::optional<std::int64_t> retry = tokens_.next_retry_ms())
        next = std::min(next, *retry);
    return static_cast<int>(std::clamp<std::int64_t>(next - now, 0, 1000));
}

// The latch (new work, abort, shutdown), curl's sockets, curl's timer and the tasks' deadlines, in one wait.
void Worker::wait() {
    int timeout = wait_timeout_ms();
    std::vector<WatchedSocket> sockets;
    if (client_->active() > 0) {
        long curl_timeout = client_->timeout_ms();
        if (curl_timeout >= 0)
            timeout = static_cast<int>(std::min<long>(timeout, curl_timeout));
        sockets = client_->watched_sockets();
        sockets.erase(std::remove_if(sockets.begin(), sockets.end(),
                                     [](const WatchedSocket &s) { return !s.want_read && !s.want_write; }),
                      sockets.end());
    }
    std::vector<ReadySocket> ready(sockets.size());
    const WatchedSocket *watched = sockets.data();
    ReadySocket *out = ready.data();
    int count = static_cast<int>(sockets.size());
    bool latch_set = false;
    int n = pg_call([watched, count, timeout, out, &latch_set] {
        return wait_for_events(watched, count, timeout, out, &latch_set);
    });
    if (latch_set)
        latch_was_set_ = true;
    if (client_->active() == 0)
        return;
    for (int i = 0; i < n; ++i)
        client_->on_socket_ready(ready[i].fd, ready[i].readable, ready[i].writable);
    // curl's timer drives connects, retries of its own and timeouts; calling it early does nothing.
    if (n == 0 || client_->timeout_ms() == 0)
        client_->on_timeout();
}

}  // namespace

void run_database_worker() {
    Worker worker;
    worker.run();
}

// Crash tests (sf_bulk.test_pause_at): after the named step is committed, the worker logs where it is and
// holds still so that the test can SIGKILL it or stop the cluster in immediate mode at exactly that
// boundary. It never holds a transaction here. A shutdown request or five minutes end the pause, so a
// forgotten setting cannot wedge a cluster.
void test_pause_point(const char *step, std::int64_t job_id, int part_no) {
    const char *wanted = settings.test_pause_at;
    if (wanted == nullptr || wanted[0] == '\0' || std::strcmp(wanted, step) != 0)
        return;
    pg_call([step, job_id, part_no] {
        ereport(LOG, (errmsg("sf_bulk test pause at \"%s\": job %lld upload %d, worker pid %d", step,
                             static_cast<long long>(job_id), part_no, MyProcPid)));
    });
    for (int waited_ms = 0; waited_ms < 300000 && !shutdown_requested(); waited_ms += 50)
        pg_call([] { pg_usleep(50000L); });
}

}  // namespace sfb::pg
