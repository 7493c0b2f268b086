// sf_bulk's settings (GUCs). Defined in _PG_init; read by the worker and the SQL functions.
#pragma once

namespace sfb::pg {

struct Settings {
    int max_parallel_jobs;       // Salesforce jobs one worker drives at once
    int poll_first_interval_ms;  // first wait before polling a job's state
    int poll_max_interval_ms;    // polling backs off up to this
    int worker_idle_timeout_s;   // an idle database worker exits after this
    int max_retries;             // attempts per request before a job fails
    int request_timeout_ms;      // total timeout of an API call (not of uploads/downloads)
    int retention_s;             // ended jobs and their results are purged after this (0: never)
    bool allow_http_loopback;    // plain http to 127.0.0.1/localhost/[::1] (the emulator)
    char *ca_file;               // extra CA bundle (the emulator's test CA)
    int describe_ttl_s;          // a cached describe is used without asking Salesforce for this long
    int api_reserve_percent;     // new Salesforce jobs wait while fewer daily API requests are left (0: off)
    int limits_refresh_s;        // the worker reads an org's /limits at most this often
    char *test_pause_at;         // crash tests only: the worker holds still after this step (see worker_loop)
    int scan_engine;    // foreign-table scans: 0 as the table/server says, 1 REST, 2 Bulk (ScanEngine)
    int rest_max_rows;  // an automatic scan expecting more rows than this uses a Bulk query job
};

extern Settings settings;

void define_settings();

}  // namespace sfb::pg
