// The database worker: claims this database's unfinished uploads, drives one IngestChunkMachine per
// upload (at most sf_bulk.max_parallel_jobs at once) over one libcurl multi handle, keeps one access token
// per (server, role), records every step before the next, and stores results in bulk.
//
// Shape: C++ objects (the HTTP client, the machines, strings) live in this file's frames; every
// PostgreSQL call goes through pg_call or a transaction helper, so no ERROR ever jumps over them. No
// transaction is open while waiting on the network.
#include "core/csv.h"
#include "core/error.h"
#include "core/fdw_options.h"
#include "core/http.h"
#include "core/ingest_machine.h"
#include "core/oauth.h"
#include "result_store.h"

#include "pg_headers.h"

extern "C" {
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "commands/extension.h"
#include "pgstat.h"
#include "postmaster/interrupt.h"
#include "executor/spi.h"
#include "foreign/foreign.h"
#include "storage/latch.h"
#include "utils/array.h"
}

#include "guard.h"
#include "settings.h"
#include "shmem.h"
#include "spool.h"
#include "worker.h"

#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unistd.h>
#include <vector>

namespace sfb::pg {

namespace {

std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// Only shutdown and termination abort transfers: InterruptPending is also set by procsignal barriers
// (e.g. a DROP DATABASE elsewhere), which must not cancel uploads.
bool interrupt_pending() noexcept {
    return ShutdownRequestPending || ProcDiePending;
}

// ---- reading rows
// -------------------------------------------------------------------------------------------

const char *column(HeapTuple tuple, TupleDesc desc, int n) {
    char *value = SPI_getvalue(tuple, desc, n);
    return value ? value : "";
}

int64 column_int8(HeapTuple tuple, TupleDesc desc, int n, int64 if_null = 0) {
    bool is_null;
    Datum d = SPI_getbinval(tuple, desc, n, &is_null);
    return is_null ? if_null : DatumGetInt64(d);
}

std::vector<std::string> split_commas(const std::string &text) {
    std::vector<std::string> out;
    size_t start = 0;
    while (start < text.size()) {
        size_t comma = text.find(',', start);
        out.push_back(text.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
        if (comma == std::string::npos)
            break;
        start = comma + 1;
    }
    return out;
}

std::string join_commas(const std::vector<std::string> &items) {
    std::string out;
    for (const auto &item : items)
        out += (out.empty() ? "" : ",") + item;
    return out;
}

// ---- what the worker holds in memory
// -----------------------------------------------------------------------

struct LoadedChunk {
    int64 job_id = 0;
    int chunk_no = 0;
    std::string spool_file;
    std::string step, sf_job_id, sf_state, error, replaced;
    int64 records_processed = 0, records_failed = 0, attempts = 0, not_before_ms = -1;
    std::string operation, object, external_id, assignment_rule_id, line_ending, column_delimiter;
    std::string server_name;
    Oid owner = InvalidOid;
};

// One org as one role sees it: credentials (read at use time) and the cached access token.
struct Org {
    std::string server_name;
    Oid owner = InvalidOid;
    enum class Token { None, Fetching, Ready, Failed } token = Token::None;
    std::string access_token;  // secret: never logged, never stored
    std::string instance_url;
    std::string api_version = kDefaultApiVersion;
    std::string failure_code, failure_message;  // Token::Failed
    int attempts = 0;
    std::int64_t not_before_ms = 0;
    std::vector<std::string> secrets;  // scrubbed from transport error messages
    std::size_t options_digest = 0;    // of the options the cached token was obtained with
};

struct ActiveChunk {
    int64 job_id = 0;
    int chunk_no = 0;
    std::string org_key;
    std::string spool_file;
    std::unique_ptr<IngestChunkMachine> machine;
    std::optional<ChunkRequest> parked;  // waits for a token
    ChunkRequest in_flight;
    TransferId transfer = 0;
    std::int64_t wake_at_ms = 0;
    std::vector<std::string> columns;  // for result parsing
    csv::Delimiter delimiter = csv::Delimiter::Comma;
    int api_calls = 0;          // not yet added to sf_bulk.jobs.api_calls
    std::string org_api_usage;  // the last Sforce-Limit-Info seen, e.g. "api-usage=27/15000"
};

std::string org_key(const std::string &server, Oid owner) {
    return server + "\x1f" + std::to_string(owner);
}
std::string chunk_tag(int64 job, int chunk) {
    return "c" + std::to_string(job) + ":" + std::to_string(chunk);
}

// Crash tests (sf_bulk.test_pause_at): after the named step is committed, the worker logs where it is and
// holds still so that the test can SIGKILL it or stop the cluster in immediate mode at exactly that
// boundary. It never holds a transaction here. A shutdown request or five minutes end the pause, so a
// forgotten setting cannot wedge a cluster.
void test_pause_point(const char *step, int64 job_id, int chunk_no) {
    const char *wanted = settings.test_pause_at;
    if (wanted == nullptr || wanted[0] == '\0' || std::strcmp(wanted, step) != 0)
        return;
    pg_call([step, job_id, chunk_no] {
        ereport(LOG, (errmsg("sf_bulk test pause at \"%s\": job %lld upload %d, worker pid %d", step,
                             static_cast<long long>(job_id), chunk_no, MyProcPid)));
    });
    for (int waited_ms = 0; waited_ms < 300000 && !shutdown_requested(); waited_ms += 50)
        pg_call([] { pg_usleep(50000L); });
}

class Worker {
  public:
    void run();

  private:
    void refresh();
    void load_chunks(int free_slots);
    void start_machine(const LoadedChunk &row, const ServerSettings &server);
    void drive(ActiveChunk &chunk);
    void send(ActiveChunk &chunk, const ChunkRequest &request);
    void on_chunk_response(ActiveChunk &chunk, HttpResponse &response);
    void fail_parked(Org &org);
    void note_waiting_chunks(const Org &org, const std::string &note);
    void ensure_token(Org &org);
    void recheck_credentials(Org &org);
    void on_token_response(Org &org, HttpResponse &response);
    void persist(ActiveChunk &chunk, const ChunkRecord &record);
    void store_results(ActiveChunk &chunk, const ChunkAction &action);
    void finish_chunk(ActiveChunk &chunk);
    void set_aside(ActiveChunk &chunk, const std::string &failure);
    void finish_jobs();
    void purge_old_jobs();
    void remove_files_of_ended_jobs();
    void make_client();
    bool has_unfinished_work();
    int wait_timeout_ms() const;

    std::unique_ptr<HttpClient> client_;
    std::map<std::string, Org> orgs_;
    std::map<std::string, ActiveChunk> chunks_;  // by chunk_tag
    std::map<int64, bool> abort_requested_;
    std::set<int64> known_jobs_;  // jobs whose uploads this worker has started
    std::set<int64> jobs_to_check_;
    std::map<std::string, std::string> token_transfers_;  // transfer tag -> org key
    std::map<std::string, int> local_failures_;           // chunk tag -> failures of this worker
    std::int64_t next_refresh_ms_ = 0;
    std::int64_t next_purge_ms_ = 0;
    bool latch_was_set_ = true;
    bool extension_present_ = true;
    bool client_settings_changed_ = false;
    RandomSource token_random_ = default_random_source();
};

void Worker::make_client() {
    HttpClientOptions options;
    options.allow_http_loopback = settings.allow_http_loopback;
    options.ca_file = settings.ca_file ? settings.ca_file : "";
    options.should_stop = interrupt_pending;
    client_ = std::make_unique<HttpClient>(options);
}

// ---- the main loop
// ------------------------------------------------------------------------------------------

void Worker::run() {
    // Started by the launcher's sweep or on demand: leave at once where there is nothing to do.
    if (!has_unfinished_work())
        return;
    http_global_init();
    make_client();
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
        if (pg_call([] { return reload_requested_and_clear(); }))
            client_settings_changed_ = true;

        if (latch_was_set_ || now_ms() >= next_refresh_ms_)
            refresh();
        if (!extension_present_)
            break;

        for (HttpResponse &response : client_->take_completed()) {
            auto token = token_transfers_.find(response.tag);
            if (token != token_transfers_.end()) {
                auto org = orgs_.find(token->second);
                token_transfers_.erase(token);
                if (org != orgs_.end())
                    on_token_response(org->second, response);
                continue;
            }
            auto chunk = chunks_.find(response.tag);
            if (chunk == chunks_.end())
                continue;
            std::string failure;
            try {
                on_chunk_response(chunk->second, response);
            } catch (const std::exception &e) {
                failure = e.what();
            }
            if (!failure.empty()) {
                set_aside(chunk->second, failure);
                chunks_.erase(chunk);
            }
        }
        // Only between a drained client and the next request: no completed response may be dropped, and no
        // upload or login may be left waiting for a transfer of the old client.
        if (client_settings_changed_ && client_->active() == 0 && token_transfers_.empty() &&
            std::none_of(chunks_.begin(), chunks_.end(),
                         [](const auto &entry) { return entry.second.transfer != 0; })) {
            client_settings_changed_ = false;
            make_client();
        }
        for (auto it = chunks_.begin(); it != chunks_.end();) {
            // One upload's failure (a SQL error while recording it, a broken invariant) must not stop the
            // others: drop it from memory and let it resume from its last recorded step.
            std::string failure;
            bool finished = false;
            try {
                drive(it->second);
                if (it->second.machine->finished()) {
                    finish_chunk(it->second);
                    finished = true;
                }
            } catch (const std::exception &e) {
                failure = e.what();
            }
            if (!failure.empty()) {
                set_aside(it->second, failure);
                it = chunks_.erase(it);
                continue;
            }
            if (finished) {
                it = chunks_.erase(it);
                next_refresh_ms_ = 0;  // a slot is free: look for more work now
            } else {
                ++it;
            }
        }
        finish_jobs();

        if (!chunks_.empty() || client_->active() > 0) {
            idle_since = now_ms();
        } else if (now_ms() - idle_since > settings.worker_idle_timeout_s * 1000LL) {
            // Leave the slot first, then look once more: a job committed in between either finds the slot
            // free (and asks the launcher) or is seen here.
            pg_call([] { worker_detach(); });
            if (!has_unfinished_work())
                break;
            if (!pg_call([] { return worker_attach(MyDatabaseId); }))
                break;
            idle_since = now_ms();
        }

        // Wait for the network, the latch (new work, abort, shutdown) or the next deadline. While transfers
        // run, curl's own poll waits in slices of at most 50 ms and the latch is checked between them.
        int timeout = wait_timeout_ms();
        int latch_timeout = timeout;
        if (client_->active() > 0) {
            client_->poll(std::min(timeout, 50));
            latch_timeout = 0;
        }
        int rc = pg_call([latch_timeout] {
            return WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, latch_timeout,
                             PG_WAIT_EXTENSION);
        });
        if (rc & WL_LATCH_SET)
            latch_was_set_ = true;
    }
    client_.reset();
    http_global_cleanup();
}

int Worker::wait_timeout_ms() const {
    std::int64_t now = now_ms();
    std::int64_t next = next_refresh_ms_;
    for (const auto &[tag, chunk] : chunks_)
        if (chunk.transfer == 0 && !chunk.parked)
            next = std::min(next, chunk.wake_at_ms);
    for (const auto &[key, org] : orgs_)
        if (org.token == Org::Token::None && org.not_before_ms > now)
            next = std::min(next, org.not_before_ms);
    return static_cast<int>(std::clamp<std::int64_t>(next - now, 0, 1000));
}

// ---- claiming work
// ------------------------------------------------------------------------------------------

void Worker::refresh() {
    latch_was_set_ = false;
    // Commits wake us (new jobs, aborts); this periodic look is only the safety net for missed wakes.
    next_refresh_ms_ = now_ms() + 5000;
    bool present = false;
    std::vector<std::pair<int64, bool>> aborts;
    auto body = [&] {
        present = OidIsValid(get_extension_oid("sf_bulk", true)) && !creating_extension;
        if (!present)
            return;
        SPI_execute(
            // A job queued behind another of the same name (if_running => 'queue') waits for it to end.
            "UPDATE sf_bulk.jobs SET state = 'running', started_at = pg_catalog.now() "
            "WHERE id IN (SELECT j.id FROM sf_bulk.jobs j WHERE j.state OPERATOR(pg_catalog.=) 'queued' "
            "AND (j.after_job IS NULL OR NOT EXISTS (SELECT 1 FROM sf_bulk.jobs p WHERE p.id "
            "OPERATOR(pg_catalog.=) j.after_job AND p.state IN ('queued', 'running'))) "
            "ORDER BY j.id FOR UPDATE SKIP LOCKED)",
            false, 0);
        SPI_execute(
            "SELECT id, abort_requested FROM sf_bulk.jobs WHERE state OPERATOR(pg_catalog.=) 'running'",
            // read-write: a read-only query would not see the jobs the UPDATE above just claimed
            false, 0);
        for (uint64 i = 0; i < SPI_processed; ++i) {
            bool is_null;
            int64 id =
                DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &is_null));
            bool abort =
                DatumGetBool(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &is_null));
            aborts.emplace_back(id, abort);
        }
    };
    in_transaction("sf_bulk: looking for work", body);
    extension_present_ = present;
    if (present && settings.retention_s > 0 && now_ms() >= next_purge_ms_) {
        next_purge_ms_ = now_ms() + 10 * 60 * 1000;
        purge_old_jobs();
    }
    if (!present)
        return;
    abort_requested_.clear();
    for (const auto &[id, abort] : aborts) {
        abort_requested_[id] = abort;
        jobs_to_check_.insert(id);
    }
    int free_slots = settings.max_parallel_jobs - static_cast<int>(chunks_.size());
    if (free_slots > 0)
        load_chunks(free_slots);
}

bool Worker::has_unfinished_work() {
    bool any = false;
    auto body = [&] {
        if (!OidIsValid(get_extension_oid("sf_bulk", true)))
            return;
        SPI_execute("SELECT 1 FROM sf_bulk.jobs WHERE state IN ('queued', 'running') LIMIT 1", true, 1);
        any = SPI_processed > 0;
    };
    in_transaction("sf_bulk: checking for work", body);
    return any;
}

void Worker::load_chunks(int free_slots) {
    std::vector<LoadedChunk> rows;
    std::map<std::string, OptionList> server_options;
    std::set<std::string> missing_servers;
    std::string active;
    for (const auto &[tag, chunk] : chunks_)
        active += (active.empty() ? "" : ",") + std::string("(") + std::to_string(chunk.job_id) + "," +
                  std::to_string(chunk.chunk_no) + ")";
    auto body = [&] {
        Oid types[1] = {INT4OID};
        Datum values[1] = {Int32GetDatum(free_slots + static_cast<int>(chunks_.size()))};
        SPI_execute_with_args(
            "SELECT c.job_id, c.chunk_no, c.spool_file, c.step, coalesce(c.sf_job_id, ''), "
            "coalesce(c.sf_state, ''), "
            "c.records_processed, c.records_failed, c.attempts, "
            "(extract(epoch FROM c.not_before) * 1000)::int8, coalesce(c.error, ''), "
            "pg_catalog.array_to_string(c.replaced_sf_job_ids, ','), j.operation, j.object, "
            "coalesce(j.external_id, ''), coalesce(j.assignment_rule_id, ''), j.line_ending, "
            "j.column_delimiter, "
            "j.server_name::text, j.owner::oid "
            "FROM sf_bulk.chunks c JOIN sf_bulk.jobs j ON j.id OPERATOR(pg_catalog.=) c.job_id "
            "WHERE j.state OPERATOR(pg_catalog.=) 'running' AND c.step NOT IN ('done', 'failed', 'aborted') "
            "ORDER BY c.job_id, c.chunk_no LIMIT $1",
            1, types, values, nullptr, true, 0);
        SPITupleTable *table = SPI_tuptable;
        for (uint64 i = 0; i < SPI_processed; ++i) {
            HeapTuple t = table->vals[i];
            TupleDesc d = table->tupdesc;
            rows.emplace_back();
            LoadedChunk &row = rows.back();
            row.job_id = column_int8(t, d, 1);
            bool is_null;
            row.chunk_no = DatumGetInt32(SPI_getbinval(t, d, 2, &is_null));
            row.spool_file = column(t, d, 3);
            row.step = column(t, d, 4);
            row.sf_job_id = column(t, d, 5);
            row.sf_state = column(t, d, 6);
            row.records_processed = column_int8(t, d, 7);
            row.records_failed = column_int8(t, d, 8);
            row.attempts = DatumGetInt32(SPI_getbinval(t, d, 9, &is_null));
            row.not_before_ms = column_int8(t, d, 10, -1);
            row.error = column(t, d, 11);
            row.replaced = column(t, d, 12);
            row.operation = column(t, d, 13);
            row.object = column(t, d, 14);
            row.external_id = column(t, d, 15);
            row.assignment_rule_id = column(t, d, 16);
            row.line_ending = column(t, d, 17);
            row.column_delimiter = column(t, d, 18);
            row.server_name = column(t, d, 19);
            row.owner = DatumGetObjectId(SPI_getbinval(t, d, 20, &is_null));
        }
        // The servers' options, read now: api_version and URLs for the machines.
        for (LoadedChunk &row : rows) {
            if (server_options.count(row.server_name) || missing_servers.count(row.server_name))
                continue;
            ForeignServer *server = GetForeignServerByName(row.server_name.c_str(), true);
            if (server == nullptr) {
                missing_servers.insert(row.server_name);
                continue;
            }
            OptionList &options = server_options[row.server_name];
            ListCell *cell;
            foreach (cell, server->options) {
                DefElem *def = lfirst_node(DefElem, cell);
                options.emplace_back(def->defname, defGetString(def));
            }
        }
    };
    in_transaction("sf_bulk: loading uploads", body);

    std::set<std::string> rechecked;
    for (const LoadedChunk &row : rows) {
        std::string tag = chunk_tag(row.job_id, row.chunk_no);
        std::string key = org_key(row.server_name, row.owner);
        if (!chunks_.count(tag) && known_jobs_.insert(row.job_id).second && orgs_.count(key) &&
            rechecked.insert(key).second)
            recheck_credentials(orgs_[key]);
        if (chunks_.count(tag) || static_cast<int>(chunks_.size()) >= settings.max_parallel_jobs)
            continue;
        ServerSettings server{parse_endpoint_url("login_url", kDefaultLoginUrl), "", kDefaultApiVersion};
        std::string problem;
        if (missing_servers.count(row.server_name)) {
            problem = "server \"" + row.server_name + "\" no longer exists";
        } else {
            try {
                server = server_settings(server_options[row.server_name]);
            } catch (const Error &e) {
                problem = e.what();
            }
        }
        start_machine(row, server);
        if (!problem.empty()) {
            Org &org = orgs_[chunks_[tag].org_key];
            org.token = Org::Token::Failed;
            org.failure_code = "SERVER_CONFIGURATION";
            org.failure_message = problem;
        }
    }
}

void Worker::start_machine(const LoadedChunk &row, const ServerSettings &server) {
    ChunkRecord record;
    record.step = parse_chunk_step(row.step).value_or(ChunkStep::Spooled);
    record.sf_job_id = row.sf_job_id;
    record.sf_state = row.sf_state;
    record.records_processed = row.records_processed;
    record.records_failed = row.records_failed;
    record.attempts = static_cast<int>(row.attempts);
    if (row.not_before_ms >= 0)
        record.not_before_ms = row.not_before_ms;
    record.error = row.error;
    record.replaced_sf_job_ids = split_commas(row.replaced);
    bool resumed = record.step != ChunkStep::Spooled;

    ChunkSpec spec;
    spec.api_version = parse_api_version(server.api_version, ApiKind::Ingest);
    spec.job.object = row.object;
    spec.job.operation = parse_operation(row.operation).value_or(Operation::Insert);
    spec.job.external_id_field_name = row.external_id;
    spec.job.column_delimiter = csv::parse_delimiter(row.column_delimiter);
    spec.job.line_ending = csv::parse_line_ending(row.line_ending);
    spec.job.assignment_rule_id = row.assignment_rule_id;
    spec.spool_path = row.spool_file;
    std::string stem = row.spool_file.substr(0, row.spool_file.size() - 4);  // without ".csv"
    spec.successful_results_path = stem + ".successful.csv";
    spec.failed_results_path = stem + ".failed.csv";
    spec.unprocessed_results_path = stem + ".unprocessed.csv";

    IngestMachineConfig config;
    config.retry.max_attempts = settings.max_retries;
    config.poll.first_ms = settings.poll_first_interval_ms;
    config.poll.max_ms = settings.poll_max_interval_ms;

    ActiveChunk chunk;
    chunk.job_id = row.job_id;
    chunk.chunk_no = row.chunk_no;
    chunk.spool_file = row.spool_file;
    chunk.org_key = org_key(row.server_name, row.owner);
    chunk.delimiter = csv::parse_delimiter(row.column_delimiter);
    chunk.machine = std::make_unique<IngestChunkMachine>(record, spec, config, default_random_source(),
                                                         system_wall_clock(), resumed);
    Org &org = orgs_[chunk.org_key];
    org.server_name = row.server_name;
    org.owner = row.owner;
    org.api_version = server.api_version;
    if (!server.instance_url.empty() && org.instance_url.empty())
        org.instance_url = server.instance_url;
    chunks_[chunk_tag(row.job_id, row.chunk_no)] = std::move(chunk);
    if (!resumed)
        test_pause_point("spooled", row.job_id, row.chunk_no);
}

// ---- driving one upload
// -------------------------------------------------------------------------------------

void Worker::drive(ActiveChunk &chunk) {
    // Bounded: a machine that keeps asking for local steps yields after a few so others get their turn.
    for (int step = 0; step < 16; ++step) {
        if (chunk.transfer != 0 || chunk.machine->finished())
            return;
        if (chunk.parked) {
            Org &org = orgs_[chunk.org_key];
            if (org.token == Org::Token::Failed) {
                fail_parked(org);
                continue;
            }
            if (org.token != Org::Token::Ready) {
                ensure_token(org);
                return;
            }
            ChunkRequest request = *chunk.parked;
            chunk.parked.reset();
            send(chunk, request);
            return;
        }
        std::int64_t now = now_ms();
        auto abort_flag = abort_requested_.find(chunk.job_id);
        bool abort = abort_flag != abort_requested_.end() && abort_flag->second;
        // An abort cuts through any wait (poll interval, backoff, the daily-limit window): the machine
        // decides what it means at this step.
        if (chunk.wake_at_ms > now && !abort)
            return;
        ChunkAction action = chunk.machine->next(now, abort);
        switch (action.kind) {
            case ChunkActionKind::Persist:
                persist(chunk, action.record);
                chunk.machine->persisted();
                break;
            case ChunkActionKind::StoreResults:
                store_results(chunk, action);
                chunk.machine->persisted();
                break;
            case ChunkActionKind::Http:
                // The resend after a 401: the cached token was refused, so it must not be used again
                // (one that is still being fetched, or already failed, is newer or final).
                if (action.request.needs_fresh_token) {
                    Org &org = orgs_[chunk.org_key];
                    if (org.token == Org::Token::Ready)
                        org.token = Org::Token::None;
                }
                chunk.parked = action.request;
                break;
            case ChunkActionKind::WaitUntil:
                chunk.wake_at_ms = action.wait_until_ms;
                return;
            case ChunkActionKind::Finished:
                return;
        }
    }
}

void Worker::send(ActiveChunk &chunk, const ChunkRequest &request) {
    Org &org = orgs_[chunk.org_key];
    HttpRequest http;
    http.method = request.method;
    http.url = org.instance_url + request.path;
    http.headers.emplace_back("Authorization", "Bearer " + org.access_token);
    http.secrets = org.secrets;
    http.tag = chunk_tag(chunk.job_id, chunk.chunk_no);
    http.idempotent = request.idempotent;
    if (request.kind == ChunkRequestKind::Upload) {
        http.body_file = request.upload_file;
        http.headers.emplace_back("Content-Type", "text/csv");
        http.headers.emplace_back("Accept", "application/json");
        http.timeouts = HttpTimeouts::bulk_transfer();
    } else if (request.kind == ChunkRequestKind::FetchResult) {
        http.response_file = request.download_file;
        http.headers.emplace_back("Accept", "text/csv");
        http.timeouts = HttpTimeouts::bulk_transfer();
    } else {
        if (!request.json_body.empty()) {
            http.body = request.json_body;
            http.headers.emplace_back("Content-Type", "application/json");
        }
        http.headers.emplace_back("Accept", "application/json");
        http.timeouts.total = std::chrono::milliseconds(settings.request_timeout_ms);
    }
    chunk.in_flight = request;
    chunk.transfer = client_->start(std::move(http));
    chunk.api_calls++;
}

void Worker::on_chunk_response(ActiveChunk &chunk, HttpResponse &response) {
    chunk.transfer = 0;
    if (auto usage = response.header(kHeaderSforceLimitInfo))
        chunk.org_api_usage = *usage;
    ChunkResponse outcome;
    outcome.transport = to_transport_error(response.error);
    outcome.request_sent = response.request_started;
    outcome.status = response.status;
    outcome.body = std::move(response.body);
    outcome.retry_after = response.header(kHeaderRetryAfter);
    if (!response.ok()) {
        // The transport's message (endpoint + cause, no credentials) is what users should see.
        outcome.body = response.error_message;
    }
    chunk.machine->http_done(outcome, now_ms());
}

// ---- tokens
// -------------------------------------------------------------------------------------------------

// The server's and the user mapping's options of an org, read in a short transaction. Throws (PgError for
// a missing mapping, sfb::Error for a dropped server) with a message that names no secret.
void read_org_options(const Org &org, OptionMap &options, OptionList &server_options) {
    bool server_missing = false;
    auto body = [&] {
        ForeignServer *server = GetForeignServerByName(org.server_name.c_str(), true);
        if (server == nullptr) {
            server_missing = true;
            return;
        }
        ListCell *cell;
        foreach (cell, server->options) {
            DefElem *def = lfirst_node(DefElem, cell);
            server_options.emplace_back(def->defname, defGetString(def));
        }
        UserMapping *mapping = GetUserMapping(org.owner, server->serverid);
        foreach (cell, mapping->options) {
            DefElem *def = lfirst_node(DefElem, cell);
            options.emplace(def->defname, defGetString(def));
        }
    };
    in_transaction("sf_bulk: reading credentials", body);
    if (server_missing)
        throw Error(ErrorKind::InvalidParameter, "server \"" + org.server_name + "\" no longer exists");
}

std::size_t options_digest(const OptionMap &options, const OptionList &server_options) {
    std::string all;
    for (const auto &[name, value] : options)
        all += name + '\0' + value + '\0';
    for (const auto &[name, value] : server_options)
        all += name + '\0' + value + '\0';
    return std::hash<std::string>{}(all);
}

// When a job starts: a changed or dropped user mapping (or server) takes effect now, and an earlier login
// failure is tried again; an unchanged one keeps its cached token.
void Worker::recheck_credentials(Org &org) {
    if (org.token == Org::Token::Fetching)
        return;
    OptionMap options;
    OptionList server_options;
    try {
        read_org_options(org, options, server_options);
    } catch (const std::exception &e) {
        org.token = Org::Token::Failed;
        org.failure_code = "AUTHENTICATION";
        org.failure_message = e.what();
        return;
    }
    if (org.token == Org::Token::Failed || options_digest(options, server_options) != org.options_digest) {
        org.token = Org::Token::None;
        org.attempts = 0;
        org.not_before_ms = 0;
        // A new login_url (or a re-created server) may mean another org: the instance comes from the next
        // token (or the server's instance_url), never from the old one.
        org.instance_url.clear();
    }
}

void Worker::ensure_token(Org &org) {
    if (org.token == Org::Token::Ready || org.token == Org::Token::Fetching ||
        org.token == Org::Token::Failed)
        return;
    if (org.not_before_ms > now_ms())
        return;
    // Credentials are read at use time from the user mapping (PostgreSQL keeps them), never cached on disk.
    OptionMap options;
    OptionList server_options;
    try {
        read_org_options(org, options, server_options);
        org.options_digest = options_digest(options, server_options);
        ServerSettings server = server_settings(server_options);
        Credentials credentials =
            credentials_from_options(options, server.login_url.origin() + server.login_url.path);
        org.secrets.clear();
        for (const std::string *secret :
             {&credentials.client_secret, &credentials.password, &credentials.private_key,
              &credentials.refresh_token, &credentials.access_token})
            if (!secret->empty())
                org.secrets.push_back(*secret);
        if (!needs_token_request(credentials.flow)) {
            TokenResponse token = static_token_response(credentials);
            org.access_token = token.access_token;
            org.secrets.push_back(org.access_token);
            org.instance_url = server.instance_url.empty() ? token.instance_url : server.instance_url;
            org.token = Org::Token::Ready;
            return;
        }
        TokenRequest token_request = build_token_request(credentials, std::chrono::system_clock::now());
        HttpRequest http;
        http.method = HttpMethod::Post;
        http.url = token_request.url;
        http.body = token_request.body;
        http.headers = token_request.headers;
        http.secrets = org.secrets;
        http.secrets.push_back(token_request.body);
        http.idempotent = true;  // a second token request is harmless
        http.timeouts.total = std::chrono::milliseconds(settings.request_timeout_ms);
        http.tag = "t" + org_key(org.server_name, org.owner);
        org.token = Org::Token::Fetching;
        client_->start(std::move(http));
        token_transfers_[std::string("t") + org_key(org.server_name, org.owner)] =
            org_key(org.server_name, org.owner);
        if (!server.instance_url.empty())
            org.instance_url = server.instance_url;
    } catch (const std::exception &e) {
        org.token = Org::Token::Failed;
        org.failure_code = "AUTHENTICATION";
        org.failure_message = e.what();
    }
}

// The login server's own text is not ours: it is redacted against every secret of the org before it is kept.
std::vector<std::string_view> secret_views(const std::vector<std::string> &secrets) {
    return std::vector<std::string_view>(secrets.begin(), secrets.end());
}

void Worker::on_token_response(Org &org, HttpResponse &response) {
    org.token = Org::Token::None;
    if (response.success()) {
        try {
            TokenResponse token = parse_token_response(response.body);
            org.access_token = token.access_token;
            org.secrets.push_back(org.access_token);
            if (org.instance_url.empty())
                org.instance_url = token.instance_url;
            org.token = Org::Token::Ready;
            org.attempts = 0;
            return;
        } catch (const OAuthError &e) {
            org.token = Org::Token::Failed;
            org.failure_code = e.error();
            org.failure_message = redact_secrets(e.description(), secret_views(org.secrets));
            return;
        }
    }
    // The same classification as every other call (a TLS verification failure or a refused login is final;
    // a refused connection, a timeout, 5xx or 429 are worth another try). A token request is idempotent.
    AttemptOutcome attempt;
    attempt.transport = to_transport_error(response.error);
    attempt.request_sent = response.request_started;
    attempt.status = response.status;
    bool transient = classify(attempt, true) == RetryAction::RetryAfterBackoff || response.status == 420;
    if (transient && ++org.attempts < settings.max_retries) {
        // The token endpoint is down or throttling: back off, the uploads wait — and say so, or a user sees
        // a job "creating" for minutes without a reason.
        // The same full-jitter backoff as every other call (RetryConfig's base and cap).
        const RetryConfig backoff;
        std::int64_t delay = std::max(backoff.min_delay, full_jitter_backoff(backoff.base, backoff.cap,
                                                                             org.attempts, token_random_()))
                                 .count();
        org.not_before_ms = now_ms() + delay;
        std::string cause = !response.ok()
                                ? response.error_message
                                : "the token endpoint answered HTTP " + std::to_string(response.status);
        note_waiting_chunks(org, "waiting for an access token (attempt " + std::to_string(org.attempts) +
                                     " of " + std::to_string(settings.max_retries) + ", next in " +
                                     std::to_string((delay + 999) / 1000) + " s): " + cause);
        return;
    }
    org.token = Org::Token::Failed;
    if (!response.ok()) {
        org.failure_code = "TOKEN_ENDPOINT_UNREACHABLE";
        org.failure_message = response.error_message;
    } else {
        OAuthError error = parse_token_error(response.status, response.body);
        org.failure_code = error.error();
        org.failure_message = redact_secrets(error.description(), secret_views(org.secrets));
    }
}

// A chunk waiting for a token of an org whose credentials failed: the machine fails it with the OAuth error.
// Records why the uploads of an org wait (chunks.error, shown by sf_bulk_jobs while the job runs); the next
// step they record replaces it.
void Worker::note_waiting_chunks(const Org &org, const std::string &note) {
    std::vector<std::pair<int64, int>> waiting;
    for (const auto &[tag, chunk] : chunks_) {
        auto found = orgs_.find(chunk.org_key);
        if (chunk.parked && found != orgs_.end() && &found->second == &org)
            waiting.emplace_back(chunk.job_id, chunk.chunk_no);
    }
    if (waiting.empty())
        return;
    auto body = [&] {
        for (const auto &[job_id, chunk_no] : waiting) {
            Oid types[3] = {INT8OID, INT4OID, TEXTOID};
            Datum values[3] = {Int64GetDatum(job_id), Int32GetDatum(chunk_no),
                               CStringGetTextDatum(note.c_str())};
            if (SPI_execute_with_args(
                    "UPDATE sf_bulk.chunks SET error = $3, updated_at = pg_catalog.now() "
                    "WHERE job_id OPERATOR(pg_catalog.=) $1 AND chunk_no OPERATOR(pg_catalog.=) $2",
                    3, types, values, nullptr, false, 0) != SPI_OK_UPDATE)
                elog(ERROR, "could not record why an upload waits");
        }
    };
    try {
        in_transaction("sf_bulk: recording a wait", body);
    } catch (const std::exception &) {
        // Only the explanation is lost (run_transaction logged the error); the wait itself goes on.
    }
}

void Worker::fail_parked(Org &org) {
    for (auto &[tag, chunk] : chunks_) {
        if (!chunk.parked || orgs_.find(chunk.org_key) == orgs_.end() || &orgs_[chunk.org_key] != &org)
            continue;
        chunk.parked.reset();
        chunk.machine->credentials_failed(org.failure_code, org.failure_message, now_ms());
    }
}

// ---- recording

// A transaction around C++ work that interleaves parsing with SQL (pg_call for every PostgreSQL call inside
// `work`). On any failure the transaction is aborted, then the exception continues to the caller.
template <typename Fn>
void cxx_transaction(const char *what, Fn work) {
    pg_call([what] { begin_transaction(what); });
    bool committed = false;
    std::exception_ptr failure;
    try {
        work();
        pg_call([] { commit_transaction(); });
        committed = true;
    } catch (...) {
        failure = std::current_exception();
    }
    if (!committed) {
        pg_call([] { abort_transaction(); });
        std::rethrow_exception(failure);
    }
}

// ----------------------------------------------------------------------------------------------

const char *phase_of(ChunkStep step) {
    switch (step) {
        case ChunkStep::Spooled:
        case ChunkStep::Creating:
        case ChunkStep::Created:
            return "creating Salesforce job";
        case ChunkStep::Uploading:
            return "uploading";
        case ChunkStep::Uploaded:
        case ChunkStep::Closing:
            return "closing upload";
        case ChunkStep::Processing:
            return "processing";
        case ChunkStep::Fetching:
            return "fetching results";
        default:
            return "storing results";
    }
}

// Shared by persist() and store_results(): writes one chunk record and the job's phase and call count.
// A chunk record's values as the SQL below needs them. Built before any transaction starts, so that no
// std::string is created in a frame an ERROR could jump over.
struct ChunkRow {
    int64 job_id;
    int chunk_no;
    const ChunkRecord &record;
    std::string step;
    std::string replaced;  // text[] literal
    int api_calls;
    std::string org_api_usage;
};

ChunkRow chunk_row(int64 job_id, int chunk_no, const ChunkRecord &record, int api_calls, std::string usage) {
    return ChunkRow{job_id,
                    chunk_no,
                    record,
                    std::string(to_string(record.step)),
                    "{" + join_commas(record.replaced_sf_job_ids) + "}",
                    api_calls,
                    std::move(usage)};
}

// Shared by persist() and store_results(): one chunk record, the job's phase, calls and API usage.
// PostgreSQL calls only.
void write_chunk_record(const ChunkRow &row) {
    const ChunkRecord &record = row.record;
    Oid types[12] = {INT8OID, INT4OID, TEXTOID, TEXTOID, TEXTOID, INT8OID,
                     INT8OID, INT4OID, INT8OID, TEXTOID, TEXTOID, INT4OID};
    Datum values[12] = {Int64GetDatum(row.job_id),
                        Int32GetDatum(row.chunk_no),
                        CStringGetTextDatum(row.step.c_str()),
                        CStringGetTextDatum(record.sf_job_id.c_str()),
                        CStringGetTextDatum(record.sf_state.c_str()),
                        Int64GetDatum(record.records_processed),
                        Int64GetDatum(record.records_failed),
                        Int32GetDatum(record.attempts),
                        Int64GetDatum(record.not_before_ms.value_or(0)),
                        CStringGetTextDatum(record.error.c_str()),
                        CStringGetTextDatum(row.replaced.c_str()),
                        Int32GetDatum(row.api_calls)};
    char nulls[12] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', record.not_before_ms ? ' ' : 'n',
                      ' ', ' ', ' '};
    if (SPI_execute_with_args(
            "UPDATE sf_bulk.chunks SET step = $3, sf_job_id = nullif($4, ''), sf_state = nullif($5, ''), "
            "records_processed = $6, records_failed = $7, attempts = $8, "
            "not_before = pg_catalog.to_timestamp($9 / 1000.0), error = nullif($10, ''), "
            "replaced_sf_job_ids = $11::text[], updated_at = pg_catalog.now() "
            "WHERE job_id OPERATOR(pg_catalog.=) $1 AND chunk_no OPERATOR(pg_catalog.=) $2",
            12, types, values, nulls, false, 0) != SPI_OK_UPDATE)
        elog(ERROR, "could not record the upload's step");
    Oid job_types[4] = {INT8OID, TEXTOID, INT4OID, TEXTOID};
    Datum job_values[4] = {Int64GetDatum(row.job_id), CStringGetTextDatum(phase_of(record.step)),
                           Int32GetDatum(row.api_calls), CStringGetTextDatum(row.org_api_usage.c_str())};
    if (SPI_execute_with_args("UPDATE sf_bulk.jobs SET phase = $2, api_calls = api_calls + $3, "
                              "org_api_usage = coalesce(nullif($4, ''), org_api_usage) "
                              "WHERE id OPERATOR(pg_catalog.=) $1",
                              4, job_types, job_values, nullptr, false, 0) != SPI_OK_UPDATE)
        elog(ERROR, "could not record the job's phase");
}

void Worker::persist(ActiveChunk &chunk, const ChunkRecord &record) {
    ChunkRow row = chunk_row(chunk.job_id, chunk.chunk_no, record, chunk.api_calls, chunk.org_api_usage);
    auto body = [&row] { write_chunk_record(row); };
    in_transaction("sf_bulk: recording a step", body);
    chunk.api_calls = 0;
    test_pause_point(std::string(to_string(record.step)).c_str(), chunk.job_id, chunk.chunk_no);
}

void Worker::store_results(ActiveChunk &chunk, const ChunkAction &action) {
    // One transaction: all result rows of this upload and its final record, or nothing (and a retry).
    cxx_transaction("sf_bulk: storing results", [&] {
        int64 total = 0, failed = 0;
        for (const ChunkResultFile &file : action.result_files) {
            int64 rows = store_result_file(chunk.job_id, chunk.chunk_no, file, chunk.delimiter);
            total += rows;
            if (file.kind == IngestResult::Failed)
                failed += rows;
            else if (file.kind == IngestResult::Unprocessed)
                total -= rows;  // never attempted: not "processed"
        }
        int64 job_id = chunk.job_id;
        int chunk_no = chunk.chunk_no;
        pg_call([job_id, chunk_no] { match_keys(job_id, chunk_no); });
        ChunkRecord record = action.record;
        // With all three result sets in hand, the counts are the rows stored (after an abort the last poll
        // may be behind); otherwise Salesforce's own counters stand.
        if (action.result_files.size() == 3) {
            record.records_processed = total;
            record.records_failed = failed;
        }
        ChunkRow row = chunk_row(chunk.job_id, chunk.chunk_no, record, chunk.api_calls, chunk.org_api_usage);
        pg_call([&row] { write_chunk_record(row); });
    });
    chunk.api_calls = 0;
    test_pause_point("stored", chunk.job_id, chunk.chunk_no);
    for (const ChunkResultFile &file : action.result_files)
        unlink(file.path.c_str());
}

// After a local failure the upload is reloaded from its recorded step on the next look for work; the third
// failure in a row marks it failed, so a deterministic error cannot loop forever.
void Worker::set_aside(ActiveChunk &chunk, const std::string &failure) {
    std::string tag = chunk_tag(chunk.job_id, chunk.chunk_no);
    if (chunk.transfer != 0)
        client_->cancel(chunk.transfer);
    std::string message = "sf_bulk could not record upload " + std::to_string(chunk.chunk_no) + " of job " +
                          std::to_string(chunk.job_id) + ": " + failure;
    pg_call([&] { ereport(LOG, (errmsg("%s", message.c_str()))); });
    if (++local_failures_[tag] < 3) {
        next_refresh_ms_ = now_ms() + 2000;
        return;
    }
    local_failures_.erase(tag);
    int64 job_id = chunk.job_id;
    int chunk_no = chunk.chunk_no;
    auto body = [&] {
        Oid types[3] = {INT8OID, INT4OID, TEXTOID};
        Datum values[3] = {Int64GetDatum(job_id), Int32GetDatum(chunk_no),
                           CStringGetTextDatum(message.c_str())};
        SPI_execute_with_args(
            "UPDATE sf_bulk.chunks SET step = 'failed', error = $3, updated_at = pg_catalog.now() "
            "WHERE job_id OPERATOR(pg_catalog.=) $1 AND chunk_no OPERATOR(pg_catalog.=) $2",
            3, types, values, nullptr, false, 0);
    };
    in_transaction("sf_bulk: failing an upload", body);
    jobs_to_check_.insert(job_id);
}

void Worker::finish_chunk(ActiveChunk &chunk) {
    // An upload that ended without any result from Salesforce — before a Salesforce job existed (aborted,
    // refused credentials), with every upload attempt refused, or with a job Salesforce no longer knows —
    // has rows whose fate is unknown: they are the job's unprocessed rows, stored from the spool file itself,
    // so that every row sent is accounted for.
    const ChunkRecord &record = chunk.machine->record();
    if (record.step != ChunkStep::Done) {
        cxx_transaction("sf_bulk: storing rows without a result", [&] {
            int64 job_id = chunk.job_id;
            int chunk_no = chunk.chunk_no;
            if (pg_call([job_id, chunk_no] { return upload_has_rows("sf_bulk.results", job_id, chunk_no); }))
                return;
            store_result_file(chunk.job_id, chunk.chunk_no,
                              ChunkResultFile{IngestResult::Unprocessed, chunk.spool_file}, chunk.delimiter);
            pg_call([job_id, chunk_no] { match_keys(job_id, chunk_no); });
        });
    }
    unlink(chunk.spool_file.c_str());
    jobs_to_check_.insert(chunk.job_id);
}

// sf_bulk.retention: ended jobs older than that go, with their results and any spool file left, through
// the same function sf_bulk_purge uses (the worker sees every role's jobs).
void Worker::purge_old_jobs() {
    int retention = settings.retention_s;
    auto body = [&] {
        Oid types[1] = {INT4OID};
        Datum values[1] = {Int32GetDatum(retention)};
        if (SPI_execute_with_args(
                "SELECT sf_bulk.delete_jobs(ARRAY(SELECT id FROM sf_bulk.jobs "
                "WHERE state IN ('completed', 'failed', 'aborted') "
                "AND finished_at < pg_catalog.now() - pg_catalog.make_interval(secs => $1)))",
                1, types, values, nullptr, false, 0) != SPI_OK_SELECT)
            elog(ERROR, "could not purge old jobs");
    };
    in_transaction("sf_bulk: purging old jobs", body);
}

// A worker that died after a job's results were stored but before the job ended leaves that job's files;
// the job is ended by the next worker (finish_jobs removes them then). Files of jobs that ended anyway are
// removed here. Files of jobs not visible yet (an enqueue still in its transaction) are never touched.
void Worker::remove_files_of_ended_jobs() {
    std::vector<int64_t> candidates;
    try {
        candidates = jobs_with_files();
    } catch (const Error &) {
        return;  // no spool directory: nothing to remove
    }
    if (candidates.empty())
        return;
    std::vector<int64> ended(candidates.size());
    size_t count = 0;
    auto body = [&] {
        Datum *ids = static_cast<Datum *>(palloc(sizeof(Datum) * candidates.size()));
        for (size_t i = 0; i < candidates.size(); ++i)
            ids[i] = Int64GetDatum(candidates[i]);
        Oid types[1] = {INT8ARRAYOID};
        Datum values[1] = {PointerGetDatum(construct_array(ids, static_cast<int>(candidates.size()), INT8OID,
                                                           8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE))};
        if (SPI_execute_with_args("SELECT id FROM sf_bulk.jobs WHERE id OPERATOR(pg_catalog.=) ANY ($1) "
                                  "AND state IN ('completed', 'failed', 'aborted')",
                                  1, types, values, nullptr, true, 0) != SPI_OK_SELECT)
            elog(ERROR, "could not read sf_bulk jobs");
        for (uint64 i = 0; i < SPI_processed; ++i) {
            bool is_null;
            ended[count++] =
                DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &is_null));
        }
    };
    try {
        in_transaction("sf_bulk: removing files of ended jobs", body);
    } catch (const std::exception &) {
        return;  // logged by run_transaction; the files go when the next worker starts
    }
    for (size_t i = 0; i < count; ++i)
        remove_job_files(ended[i]);
}

// Jobs whose uploads have all ended get their final state, in one statement per job.
void Worker::finish_jobs() {
    if (jobs_to_check_.empty())
        return;
    std::vector<int64> ids(jobs_to_check_.begin(), jobs_to_check_.end());
    jobs_to_check_.clear();
    std::vector<int64> ended(ids.size());  // sized before the transaction: no allocation inside it
    size_t finished = 0;
    auto body = [&] {
        for (int64 id : ids) {
            Oid types[1] = {INT8OID};
            Datum values[1] = {Int64GetDatum(id)};
            SPI_execute_with_args(
                "UPDATE sf_bulk.jobs j SET "
                "state = CASE WHEN j.abort_requested AND EXISTS (SELECT 1 FROM sf_bulk.chunks c WHERE "
                "c.job_id "
                "OPERATOR(pg_catalog.=) j.id AND c.step OPERATOR(pg_catalog.=) 'aborted') THEN 'aborted' "
                "WHEN EXISTS (SELECT 1 FROM sf_bulk.chunks c WHERE c.job_id OPERATOR(pg_catalog.=) j.id "
                "AND c.step IN ('failed', 'aborted')) THEN 'failed' ELSE 'completed' END, "
                // Name the upload only when there are several.
                "error = (SELECT pg_catalog.string_agg(pg_catalog.format(CASE WHEN j.uploads > 1 "
                "THEN 'upload %s: %s' ELSE '%2$s' END, c.chunk_no, c.error), '; ' ORDER BY c.chunk_no) FROM "
                "sf_bulk.chunks c WHERE c.job_id OPERATOR(pg_catalog.=) j.id "
                "AND c.step IN ('failed', 'aborted') AND c.error IS NOT NULL), "
                "phase = NULL, finished_at = pg_catalog.now() "
                "WHERE j.id OPERATOR(pg_catalog.=) $1 AND j.state OPERATOR(pg_catalog.=) 'running' "
                "AND NOT EXISTS (SELECT 1 FROM sf_bulk.chunks c WHERE c.job_id OPERATOR(pg_catalog.=) j.id "
                "AND c.step NOT IN ('done', 'failed', 'aborted'))",
                1, types, values, nullptr, false, 0);
            if (SPI_processed > 0)
                ended[finished++] = id;
        }
    };
    try {
        in_transaction("sf_bulk: finishing jobs", body);
    } catch (const std::exception &) {
        // Logged by run_transaction. The uploads in flight must not stop for it: look at these jobs again
        // shortly.
        jobs_to_check_.insert(ids.begin(), ids.end());
        next_refresh_ms_ = now_ms() + 2000;
        return;
    }
    // Normally nothing is left; after a crash between storing results and this point, result downloads
    // and the upload's file are.
    for (size_t i = 0; i < finished; ++i)
        remove_job_files(ended[i]);
    // A job that ended may release one queued behind it (if_running => 'queue'): look for work now.
    if (finished > 0)
        next_refresh_ms_ = 0;
}

}  // namespace

void run_database_worker() {
    Worker worker;
    worker.run();
}

}  // namespace sfb::pg
