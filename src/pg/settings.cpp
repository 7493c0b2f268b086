#include "client_settings.h"

#include "pg_headers.h"

extern "C" {
#include "utils/guc.h"
}

#include "settings.h"

#include <chrono>
#include "shmem.h"

namespace sfb::pg {

Settings settings = {4,       1000, 30000, 60,  8,       120000, 7 * 24 * 3600, false,
                     nullptr, 3600, 5,     300, nullptr, 0,      20000};

void define_settings() {
    // A PGC_POSTMASTER setting can only be defined while the postmaster loads us; a backend loading the
    // library on demand (not preloaded) has no worker slots to size anyway.
    if (process_shared_preload_libraries_in_progress)
        DefineCustomIntVariable(
            "sf_bulk.max_databases", "Databases that can have an sf_bulk worker at the same time.",
            "Each needs a background worker slot (max_worker_processes).", &max_database_workers, 8, 1, 64,
            PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("sf_bulk.max_parallel_jobs", "Salesforce jobs a worker drives at once.", nullptr,
                            &settings.max_parallel_jobs, 4, 1, 100, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("sf_bulk.poll_first_interval",
                            "First wait before asking Salesforce for a job's state.", nullptr,
                            &settings.poll_first_interval_ms, 1000, 10, 600000, PGC_SIGHUP, GUC_UNIT_MS,
                            nullptr, nullptr, nullptr);
    DefineCustomIntVariable("sf_bulk.poll_max_interval", "Longest wait between two polls of a job's state.",
                            nullptr, &settings.poll_max_interval_ms, 30000, 10, 3600000, PGC_SIGHUP,
                            GUC_UNIT_MS, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("sf_bulk.worker_idle_timeout", "An idle database worker exits after this long.",
                            nullptr, &settings.worker_idle_timeout_s, 60, 1, 86400, PGC_SIGHUP, GUC_UNIT_S,
                            nullptr, nullptr, nullptr);
    DefineCustomIntVariable("sf_bulk.max_retries", "Attempts of one request before its job fails.",
                            "Connection errors, 5xx and 429 answers are retried with exponential backoff.",
                            &settings.max_retries, 8, 1, 100, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("sf_bulk.request_timeout", "Total timeout of one API call.",
                            "Uploads and result downloads use a low-speed limit instead.",
                            &settings.request_timeout_ms, 120000, 1000, 3600000, PGC_SIGHUP, GUC_UNIT_MS,
                            nullptr, nullptr, nullptr);
    DefineCustomIntVariable("sf_bulk.retention", "Ended jobs and their results are deleted after this long.",
                            "Salesforce keeps job results for 7 days too. 0 keeps them forever.",
                            &settings.retention_s, 7 * 24 * 3600, 0, INT_MAX, PGC_SIGHUP, GUC_UNIT_S, nullptr,
                            nullptr, nullptr);
    DefineCustomIntVariable(
        "sf_bulk.describe_ttl", "How long a cached describe is used without asking Salesforce.",
        "After this, the next use asks Salesforce whether the object changed (If-Modified-Since); "
        "0 asks every time.",
        &settings.describe_ttl_s, 3600, 0, 7 * 24 * 3600, PGC_USERSET, GUC_UNIT_S, nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "sf_bulk.api_reserve",
        "Percent of the org's daily API requests that the worker leaves to other uses.",
        "New Salesforce jobs wait while starting one would leave fewer; jobs already running go on. "
        "0 turns the reserve off.",
        &settings.api_reserve_percent, 5, 0, 100, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "sf_bulk.limits_refresh", "How often the worker reads an org's /limits at most.",
        "While a job waits on the org's allocation, and before query jobs; each read is one API request.",
        &settings.limits_refresh_s, 300, 1, 86400, PGC_SIGHUP, GUC_UNIT_S, nullptr, nullptr, nullptr);
    DefineCustomBoolVariable("sf_bulk.allow_http_loopback",
                             "Allow plain http to 127.0.0.1, localhost and [::1] (the Bulk API emulator).",
                             "Everything else always needs https with a verified certificate.",
                             &settings.allow_http_loopback, false, PGC_SIGHUP, GUC_SUPERUSER_ONLY, nullptr,
                             nullptr, nullptr);
    DefineCustomStringVariable("sf_bulk.ca_file", "Additional CA certificates (PEM) to trust for Salesforce.",
                               "For a test emulator's CA. Verification itself cannot be turned off.",
                               &settings.ca_file, "", PGC_SIGHUP, GUC_SUPERUSER_ONLY, nullptr, nullptr,
                               nullptr);
    static const struct config_enum_entry scan_engines[] = {
        {"auto", 0, false}, {"rest", 1, false}, {"bulk", 2, false}, {nullptr, 0, false}};
    DefineCustomEnumVariable(
        "sf_bulk.scan_engine", "Which Salesforce API foreign-table scans and small mirror runs read through.",
        "auto: the table's or server's `engine` option decides (auto there too: REST for small results, a "
        "Bulk API 2.0 query job for large ones); rest or bulk force one for every scan of the session. bulk "
        "also makes every sf_bulk_sync run a Bulk query job.",
        &settings.scan_engine, 0, scan_engines, PGC_USERSET, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "sf_bulk.rest_max_rows",
        "Rows above which an automatic foreign-table scan, or an incremental mirror run, uses a Bulk query "
        "job.",
        "Below it the REST query API reads the rows, 2,000 per request, without the job's fixed cost.",
        &settings.rest_max_rows, 20000, 0, INT_MAX, PGC_USERSET, 0, nullptr, nullptr, nullptr);
    // Crash-safety tests kill the worker at a chosen step boundary; this makes the boundary observable.
    // Hidden from SHOW ALL and the sample file: it is not a knob for users.
    DefineCustomStringVariable("sf_bulk.test_pause_at", "Test only: the worker holds still after this step.",
                               "A step name (spooled, creating, created, uploading, uploaded, closing, "
                               "processing, fetching, stored). Used by the crash tests; empty in production.",
                               &settings.test_pause_at, "", PGC_SIGHUP,
                               GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE, nullptr, nullptr,
                               nullptr);
}

HttpClientOptions http_client_options(ShouldStopFn should_stop) {
    HttpClientOptions options;
    options.allow_http_loopback = settings.allow_http_loopback;
    options.ca_file = settings.ca_file ? settings.ca_file : "";
    options.should_stop = should_stop;
    return options;
}

TokenBrokerConfig token_broker_config() {
    TokenBrokerConfig config;
    config.retry.max_attempts = settings.max_retries;
    config.request_timeout = std::chrono::milliseconds(settings.request_timeout_ms);
    return config;
}

AllowancePolicy allowance_policy() {
    AllowancePolicy policy;
    policy.api_reserve_percent = settings.api_reserve_percent;
    policy.refresh_ms = settings.limits_refresh_s * 1000LL;
    return policy;
}

}  // namespace sfb::pg
