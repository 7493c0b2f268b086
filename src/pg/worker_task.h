// The job-kind interface of the database worker. The loop (worker_loop.cpp) knows nothing of ingest or
// query jobs: it claims jobs, asks each kind for its runnable tasks, routes HTTP responses to the task that
// started the call, fetches access tokens through the token broker, and waits. A kind implements
// TaskSource (finding its unfinished work in the job store) and WorkerTask (driving one unit of it: an
// an ingest upload; a query job or one of its result pages; a sync run next).
//
// A task never waits itself and never holds a transaction across a call: advance() does what can be done
// now, starts at most one call, and returns.
#pragma once

#include "core/http.h"
#include "core/token_broker.h"

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace sfb::pg {

// What the loop offers a task.
class TaskContext {
  public:
    virtual ~TaskContext() = default;
    virtual std::int64_t now_ms() const = 0;
    virtual TokenBroker &tokens() = 0;
    // Starts a call; its response comes back through the task's on_response.
    virtual TransferId send(HttpRequest request) = 0;
    virtual void cancel(TransferId transfer) = 0;
    // The task needs a token of `org` that the broker does not have: the loop gets one (or a failure).
    virtual void need_token(const OrgKey &org) = 0;
    // The job may have ended: the loop checks after this round.
    virtual void job_may_have_ended(std::int64_t job_id) = 0;
    // A task of this job is loaded. The first time the worker sees the job, the org's credentials are read
    // again: a changed or dropped user mapping takes effect now, and an earlier login failure is retried.
    virtual void job_seen(std::int64_t job_id, const OrgKey &org) = 0;
    // The task recorded new work for other tasks (a query job's result pages): look for work this round.
    virtual void new_tasks_ready() = 0;
};

class WorkerTask {
  public:
    virtual ~WorkerTask() = default;
    virtual const std::string &key() const = 0;  // unique among a worker's tasks, e.g. "upload 42/1"
    virtual std::int64_t job_id() const = 0;
    virtual const OrgKey &org() const = 0;

    // Does what can be done now: local steps, recording them, starting a call. Throws on a local failure
    // (a record that could not be written, a broken invariant); the loop then sets the task aside.
    virtual void advance(TaskContext &context, bool abort_requested) = 0;
    // The response to the call this task started.
    virtual void on_response(TaskContext &context, HttpResponse &response) = 0;

    // When advance() must run again though nothing arrived (a poll interval, a backoff); nullopt while the
    // task waits on its call or a token.
    virtual std::optional<std::int64_t> wake_at_ms() const = 0;
    virtual bool waits_for_token() const = 0;
    virtual TransferId transfer() const = 0;  // the call in flight, 0 if none
    virtual bool finished() const = 0;
    // Waits only for other tasks (a query job while its pages download) and will start no call before they
    // progress: it does not count against sf_bulk.max_parallel_jobs, or jobs waiting for their pages could
    // take every slot and no page would ever be downloaded.
    virtual bool idle() const { return false; }

    // After finished(): stores what the end leaves to store and removes the task's files.
    virtual void finish(TaskContext &context) = 0;
    // After a local failure: the task leaves memory and resumes from its last recorded step when it is
    // loaded again. `give_up` (the same task failed locally three times in a row): it is failed with
    // `failure` instead, so that a deterministic error cannot loop for ever.
    virtual void set_aside(const std::string &failure, bool give_up) = 0;
    // A shown reason why the task waits (a token backoff); "" clears nothing. May fail silently.
    virtual void note_waiting(const std::string &note) = 0;
};

// A job kind: finds the runnable tasks of running jobs.
class TaskSource {
  public:
    virtual ~TaskSource() = default;
    // At most `limit` tasks not in `running` (keys), ready to advance.
    virtual std::vector<std::unique_ptr<WorkerTask>> load(TaskContext &context,
                                                          const std::set<std::string> &running,
                                                          int limit) = 0;
};

// The ingest kind (ingest_task.cpp).
std::unique_ptr<TaskSource> make_ingest_source();
// The query kind (query_task.cpp): a task per query job and one per result page being downloaded.
std::unique_ptr<TaskSource> make_query_source();

// Crash tests (sf_bulk.test_pause_at): after the named step is committed, the worker logs where it is and
// holds still, so that a test can SIGKILL it or stop the cluster at exactly that boundary.
void test_pause_point(const char *step, std::int64_t job_id, int part_no);

}  // namespace sfb::pg
