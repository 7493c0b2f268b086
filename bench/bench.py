#!/usr/bin/python3
"""sf_bulk benchmark driver. Started by bench/run, which installs what is needed, builds the extension and
starts a throwaway cluster and the emulator; this script measures and prints the table.

Every ratio is computed from figures measured in this run. A failed step makes the exit status non-zero; a
missed target does not.
"""
import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

CLK_TCK = os.sysconf("SC_CLK_TCK")

SCALES = {
    # rows per section; seconds of idle measurement; repeats of the serialisation runs (best of N)
    "full": dict(ser_sizes=[1_000_000, 5_000_000], ser_repeats={1_000_000: 3, 5_000_000: 2}, e2e_rows=1_000_000,
                 mem_sizes=[100_000, 1_000_000, 5_000_000], latency_jobs=11, idle_seconds=60, wait_seconds=10,
                 q_rows=1_000_000, q_mem_sizes=[100_000, 1_000_000, 5_000_000], q_copy_repeats=3,
                 q_page_size=None,
                 fdw_rows=1_000_000, fdw_mem_rows=100_000, fdw_rest_rows=10_000, fdw_repeats=2, fdw_lookups=21,
                 sync_rows=1_000_000, sync_repeats=2),
    # small: result pages of 1,000 rows (the emulator's default is 100,000), so the smoke run pages too
    "small": dict(ser_sizes=[2_000, 5_000], ser_repeats={2_000: 2, 5_000: 1}, e2e_rows=3_000,
                  mem_sizes=[1_000, 3_000, 5_000], latency_jobs=3, idle_seconds=3, wait_seconds=2,
                  q_rows=3_000, q_mem_sizes=[1_000, 3_000, 5_000], q_copy_repeats=1,
                  q_page_size=1_000,
                  fdw_rows=3_000, fdw_mem_rows=1_000, fdw_rest_rows=2_500, fdw_repeats=1, fdw_lookups=21,
                  sync_rows=3_000, sync_repeats=1),
}

# The mixed table: integers, text with quotes and newlines, numeric, boolean, date, timestamptz, nulls.
# Column names are the Lead fields they go to, so the same table serves every section.
TABLE_SQL = """
CREATE TABLE {name} (
    id            bigint,
    ext_id        text,
    last_name     text,
    company       text,
    employees     integer,
    revenue       numeric(18,0),
    score         numeric(12,2),
    opted_out     boolean,
    birthdate     date,
    last_activity timestamptz,
    description   text
);
INSERT INTO {name}
SELECT g,
       'B' || g,
       CASE WHEN g % 10 = 0 THEN 'O''Neil "Jr", ' || g ELSE 'Last' || g END,
       'Company ' || (g % 5000),
       CASE WHEN g % 7 = 0 THEN NULL ELSE g % 100000 END,
       (g * 7919) % 100000000,
       CASE WHEN g % 9 = 0 THEN NULL ELSE ((g * 104729) % 10000000) / 100.0 END,
       CASE WHEN g % 11 = 0 THEN NULL ELSE g % 3 = 0 END,
       date '1950-01-01' + (g % 20000)::int,
       timestamptz '2020-01-01 00:00:00+00' + g * interval '1.237 second',
       CASE g % 5 WHEN 0 THEN NULL
                  WHEN 1 THEN 'Line one, with "quotes"' || chr(10) || 'line two ' || g
                  ELSE 'Plain note ' || g END
  FROM generate_series({lo}::bigint, {hi}::bigint) g;
"""

# Section 1: every column of the mixed table.
SER_QUERY = ('SELECT ext_id AS "External_Id__c", last_name AS "LastName", company AS "Company", '
             'employees AS "NumberOfEmployees", revenue AS "AnnualRevenue", score AS "Score__c", '
             'opted_out AS "HasOptedOutOfEmail", birthdate AS "Birthdate__c", last_activity AS "Last_Activity__c", '
             'description AS "Description" FROM {table}')
# Sections 2-5: without the long-text column, so 1,000,000 rows stay one upload (< 100 MB) for every client
# (jsforce and the CLI do not split files; Salesforce takes 150 MB of base64 per job).
E2E_QUERY = ('SELECT ext_id AS "External_Id__c", last_name AS "LastName", company AS "Company", '
             'employees AS "NumberOfEmployees", revenue AS "AnnualRevenue", score AS "Score__c", '
             'opted_out AS "HasOptedOutOfEmail", birthdate AS "Birthdate__c", last_activity AS "Last_Activity__c" '
             'FROM {table}')
# What a jsforce / CLI user exports for the same upsert: Salesforce's spellings written by hand in SQL
# (COPY writes booleans as t/f and timestamps in PostgreSQL's form, which Salesforce refuses).
EXPORT_QUERY = ('SELECT ext_id AS "External_Id__c", last_name AS "LastName", company AS "Company", '
                'employees AS "NumberOfEmployees", revenue AS "AnnualRevenue", score AS "Score__c", '
                "CASE WHEN opted_out THEN 'true' WHEN NOT opted_out THEN 'false' END AS \"HasOptedOutOfEmail\", "
                'birthdate AS "Birthdate__c", '
                "to_char(last_activity AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') AS \"Last_Activity__c\" "
                'FROM {table}')


def log(msg):
    print("==> " + msg, file=sys.stderr, flush=True)


class Failed(Exception):
    pass


# ---------------------------------------------------------------------------------------------------------
# processes, psql, the emulator
# ---------------------------------------------------------------------------------------------------------

def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as fh:
        f = fh.read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / CLK_TCK


def proc_status(pid):
    out = {}
    try:
        with open("/proc/%d/status" % pid) as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key in ("VmHWM", "VmRSS", "RssAnon", "RssFile", "RssShmem"):
                    out[key] = int(value.split()[0])  # kB
    except (FileNotFoundError, ProcessLookupError):
        pass
    return out


def reset_peak(pid):
    try:
        with open("/proc/%d/clear_refs" % pid, "w") as fh:
            fh.write("5")  # resets VmHWM to the current RSS
        return True
    except OSError:
        return False


class MemSampler:
    """Samples RssAnon (private memory) of some processes every 10 ms; keeps the maxima."""

    def __init__(self):
        self.pids = {}
        self.peak_anon = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def watch(self, name, pid):
        with self._lock:
            self.pids[name] = pid
            self.peak_anon.setdefault(name, 0)

    def _run(self):
        while not self._stop.is_set():
            with self._lock:
                items = list(self.pids.items())
            for name, pid in items:
                st = proc_status(pid)
                if "RssAnon" in st:
                    self.peak_anon[name] = max(self.peak_anon[name], st["RssAnon"])
            time.sleep(0.01)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


class Bench:
    def __init__(self, a):
        self.a = a
        self.scale = SCALES[a.scale]
        self.work = a.work
        self.db = a.db
        self.emu = a.emulator_url.rstrip("/")
        self.emu_pid = a.emulator_pid
        self.org = json.load(open(os.path.join(a.root, "test/emulator/default_org.json")))
        self.rows = []      # table rows: (section, measure, sf_bulk, reference, ratio, target, met)
        self.notes = []
        self.failures = []
        self.tmp = tempfile.mkdtemp(prefix="bench.", dir=self.work)
        os.chmod(self.tmp, 0o755)
        self.e2e = {}
        self.e2e_job = None

    # -- psql ------------------------------------------------------------------------------------------
    def psql(self, sql, timeout=3600, app="sf_bulk_bench"):
        env = dict(os.environ, PGAPPNAME=app)
        p = subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", self.db, "-f", "-"],
                           input=sql, capture_output=True, text=True, timeout=timeout, env=env)
        if p.returncode != 0:
            raise Failed("psql failed (%d): %s" % (p.returncode, p.stderr.strip()[-2000:]))
        return p.stdout

    def value(self, sql):
        return self.psql(sql).strip()

    def script(self, body, timeout=3600, watch_backend=None, sampler=None):
        """Runs a psql script that first writes its backend pid to a file. The body may use \\timing; the
        'Time:' figures (ms) are returned with the output and the script's wall time."""
        pidfile = os.path.join(self.tmp, "pid.%d" % time.monotonic_ns())
        sql = "\\o %s\nSELECT pg_backend_pid();\n\\o\nSELECT pg_sleep(0.2);\n%s\n" % (pidfile, body)
        env = dict(os.environ, PGAPPNAME="sf_bulk_bench")
        t0 = time.monotonic()
        p = subprocess.Popen(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", self.db, "-f", "-"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=env)
        result = {}

        def communicate():
            result["out"], result["err"] = p.communicate(sql, timeout=timeout)

        th = threading.Thread(target=communicate)
        th.start()
        pid = None
        while pid is None and th.is_alive():
            try:
                pid = int(open(pidfile).read().strip())
            except (OSError, ValueError):
                time.sleep(0.005)
        if pid is not None:
            reset_peak(pid)
            if sampler is not None and watch_backend:
                sampler.watch(watch_backend, pid)
        hwm = 0
        while th.is_alive():
            if pid is not None:
                hwm = max(hwm, proc_status(pid).get("VmHWM", 0))
            th.join(0.05)
        wall = time.monotonic() - t0
        if p.returncode != 0:
            raise Failed("psql failed (%d): %s" % (p.returncode, result.get("err", "").strip()[-2000:]))
        out = result["out"]
        times = [float(m) for m in re.findall(r"^Time: ([0-9.]+) ms", out, re.M)]
        lines = [l for l in out.splitlines() if not l.startswith("Time: ") and l.strip() != ""]
        return dict(out=out, lines=lines, times=times, wall=wall, pid=pid, hwm_kb=hwm)

    # -- emulator --------------------------------------------------------------------------------------
    def emu_call(self, method, path, body=None, token=False, raw=False):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.emu + path, data=data, method=method)
        if body is not None:
            req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", "Bearer " + self.org["access_token"])
        with urllib.request.urlopen(req, timeout=600) as r:
            payload = r.read()
        return payload if raw else json.loads(payload or b"null")

    def emu_reset(self):
        self.emu_call("POST", "/__emulator/reset", {})
        self.emu_call("POST", "/__emulator/config", {"processing_delay_ms": 0})

    def emu_last_seq(self):
        return self.emu_call("GET", "/__emulator/requests?since=0&admin=0").get("last_seq", 0)

    def emu_requests_since(self, seq):
        return self.emu_call("GET", "/__emulator/requests?since=%d" % seq)["requests"]

    def worker_pid(self):
        v = self.value("SELECT pid FROM pg_stat_activity WHERE backend_type = 'sf_bulk worker' "
                       "AND datname = current_database()")
        return int(v) if v else None

    def running_worker_pid(self):
        """The worker's pid, for a measurement that needs one running."""
        pid = self.worker_pid()
        if not pid:
            raise Failed("no sf_bulk worker running")
        return pid

    # -- table ---------------------------------------------------------------------------------------------
    def add(self, section, measure, ours, ref="", ratio="", target="", met=""):
        self.rows.append((section, measure, ours, ref, ratio, target, met))

    def fail(self, section, exc):
        msg = "%s: %s" % (type(exc).__name__, exc)
        log("FAILED %s: %s" % (section, msg))
        self.failures.append((section, msg))
        self.add(section, "**failed**", msg[:300].replace("|", "/").replace("\n", " "))


def fmt_s(seconds):
    return "%.2f s" % seconds


def fmt_rate(rows, seconds):
    return "%s rows/s" % format(int(rows / seconds), ",") if seconds > 0 else "-"


def fmt_mb(kb):
    return "%.1f MB" % (kb / 1024.0)


def yes(ok):
    return "yes" if ok else "**no**"


# ---------------------------------------------------------------------------------------------------------
# sections
# ---------------------------------------------------------------------------------------------------------

def setup(b):
    log("setting up database %s (extension, server, user mapping, tables)" % b.db)
    subprocess.run(["psql", "-X", "-q", "-d", "postgres", "-c", "CREATE DATABASE %s" % b.db], check=True)
    org = b.org
    b.psql("""
CREATE EXTENSION sf_bulk;
CREATE SERVER emulator FOREIGN DATA WRAPPER salesforce OPTIONS (login_url '%s', api_version '62.0');
CREATE USER MAPPING FOR CURRENT_USER SERVER emulator
  OPTIONS (auth 'password', client_id '%s', client_secret '%s', username '%s', password '%s');
""" % (b.emu, org["client_id"], org["client_secret"], org["user"]["username"], org["user"]["password"]))
    b.build = build_id(b.a.root)  # right after CREATE EXTENSION: what this cluster really runs
    sizes = sorted(set(b.scale["ser_sizes"] + b.scale["mem_sizes"] + [b.scale["e2e_rows"]]))
    biggest = sizes[-1]
    t0 = time.monotonic()
    b.psql(TABLE_SQL.format(name="mixed_%d" % biggest, lo=1, hi=biggest))
    for n in sizes[:-1]:
        b.psql("CREATE TABLE mixed_%d AS SELECT * FROM mixed_%d WHERE id <= %d;" % (n, biggest, n))
    b.psql("VACUUM (FREEZE, ANALYZE);")
    log("tables %s ready in %.1f s" % (", ".join("mixed_%d" % n for n in sizes), time.monotonic() - t0))


def section_serialisation(b):
    log("1. serialisation: spool writer vs COPY TO STDOUT (FORMAT csv) > /dev/null")
    for n in b.scale["ser_sizes"]:
        table = "mixed_%d" % n
        q = SER_QUERY.format(table=table)
        # bytes COPY writes (one untimed run)
        countfile = os.path.join(b.tmp, "copy_bytes")
        b.psql("\\o |wc -c > %s\nCOPY (%s) TO STDOUT (FORMAT csv);\n\\o\n" % (countfile, q))
        copy_bytes = int(open(countfile).read().strip())
        spool, copy = [], []
        spool_bytes = spool_rows = 0
        for _ in range(b.scale["ser_repeats"][n]):
            r = b.script("""
BEGIN;
\\timing on
SELECT sf_bulk_upsert('Lead', $q$%s$q$, external_id => 'External_Id__c') AS job \\gset
\\timing off
SELECT rows_spooled || ' ' || bytes_spooled FROM sf_bulk.jobs WHERE id = :job;
ROLLBACK;
""" % q)
            spool.append(r["times"][0] / 1000.0)
            spool_rows, spool_bytes = (int(x) for x in r["lines"][-1].split())
            r = b.script("\\o /dev/null\n\\timing on\nCOPY (%s) TO STDOUT (FORMAT csv);\n\\timing off\n\\o\n" % q)
            copy.append(r["times"][0] / 1000.0)
        if spool_rows != n:
            raise Failed("spooled %d rows, expected %d" % (spool_rows, n))
        s, c = min(spool), min(copy)
        ratio = c / s
        label = "%s rows" % format(n, ",")
        b.add("1 serialisation", "%s: time (best of %d)" % (label, len(spool)), fmt_s(s), fmt_s(c) + " (COPY)",
              "%.2f" % ratio, "COPY/spool ≥ 1.0", yes(ratio >= 1.0))
        b.add("1 serialisation", "%s: throughput" % label,
              "%s, %.0f MB/s" % (fmt_rate(n, s), spool_bytes / s / 1e6),
              "%s, %.0f MB/s" % (fmt_rate(n, c), copy_bytes / c / 1e6), "", "", "")
        b.notes.append("1: %s rows: spool %s (runs %s), %d bytes; COPY %s (runs %s), %d bytes" % (
            format(n, ","), fmt_s(s), ", ".join("%.2f" % x for x in spool), spool_bytes, fmt_s(c),
            ", ".join("%.2f" % x for x in copy), copy_bytes))


def timeline(reqs):
    """Phases of one client's run from the emulator's request log (single upload assumed for the split)."""
    reqs = [r for r in reqs if not r.get("admin")]
    if not reqs:
        return ""
    end = lambda r: r["start_epoch_ms"] + r.get("duration_ms", 0)
    puts = [r for r in reqs if r["method"] == "PUT"]
    closes = [r for r in reqs if r["method"] == "PATCH"]
    results = [r for r in reqs if r["method"] == "GET" and re.search(r"(successfulResults|failedResults|"
                                                                     r"unprocessedrecords)/?$", r["path"])]
    polls = [r for r in reqs if r["method"] == "GET" and re.search(r"/jobs/ingest/[^/]+/?$", r["path"])]
    parts = []
    if puts:
        parts.append("upload %.1f s" % ((max(map(end, puts)) - min(r["start_epoch_ms"] for r in puts)) / 1000))
    if closes and results:
        parts.append("close → first results request %.1f s (Salesforce processing + polling, %d polls)" % (
            (min(r["start_epoch_ms"] for r in results) - max(map(end, closes))) / 1000, len(polls)))
    if results:
        parts.append("results download %.1f s" % ((max(map(end, results)) - min(r["start_epoch_ms"]
                                                                                for r in results)) / 1000))
    return ", ".join(parts) + "; %d API requests" % len(reqs)


def run_sf_bulk_job(b, table, sampler=None):
    """One committed sf_bulk upsert from call to results stored. Returns figures."""
    q = E2E_QUERY.format(table=table)
    wpid = b.worker_pid()
    if wpid:
        reset_peak(wpid)
        if sampler:
            sampler.watch("worker", wpid)
    emu_cpu0 = cpu_seconds(b.emu_pid)
    wcpu0 = cpu_seconds(wpid) if wpid else 0.0
    seq = b.emu_last_seq()
    r = b.script("""
\\timing on
SELECT sf_bulk_upsert('Lead', $q$%s$q$, external_id => 'External_Id__c') AS job \\gset
SELECT id, state, rows_spooled, bytes_spooled, uploads, records_processed, records_failed, coalesce(error, '')
  FROM sf_bulk_wait(:job);
\\timing off
SELECT count(*) FILTER (WHERE kind = 's') || ' ' || count(*) FILTER (WHERE kind = 'f') || ' ' ||
       count(*) FILTER (WHERE kind = 'u') FROM sf_bulk.results WHERE job_id = :job;
""" % q, watch_backend="backend", sampler=sampler)
    emu_cpu = cpu_seconds(b.emu_pid) - emu_cpu0
    job_line = r["lines"][-2].split("|")
    job_id, state = int(job_line[0]), job_line[1]
    if state != "completed":
        raise Failed("job %d ended %s: %s" % (job_id, state, job_line[-1]))
    succ, failed, unproc = (int(x) for x in r["lines"][-1].split())
    wpid = wpid or b.worker_pid()
    out = dict(job=job_id, wall=sum(r["times"]) / 1000.0, call=r["times"][0] / 1000.0, emu_cpu=emu_cpu,
               rows=int(job_line[2]), bytes=int(job_line[3]), uploads=int(job_line[4]), successful=succ,
               failed=failed, unprocessed=unproc, backend_hwm_kb=r["hwm_kb"], worker_pid=wpid,
               worker_cpu=(cpu_seconds(wpid) - wcpu0) if wpid else None,
               worker_hwm_kb=proc_status(wpid).get("VmHWM", 0) if wpid else 0)
    try:
        out["timeline"] = timeline(b.emu_requests_since(seq))
    except Exception as e:  # the split is informative only
        out["timeline"] = "timeline unavailable: %s" % e
    return out


def section_end_to_end(b):
    n = b.scale["e2e_rows"]
    table = "mixed_%d" % n
    label = "%s-row upsert" % format(n, ",")
    log("2. end to end: %s with sf_bulk" % label)
    b.emu_reset()
    with MemSampler() as sampler:
        res = run_sf_bulk_job(b, table, sampler)
    res["backend_anon_kb"] = sampler.peak_anon.get("backend", 0)
    res["worker_anon_kb"] = sampler.peak_anon.get("worker", 0)
    b.e2e = res
    b.mem_results = {n: res}
    if res["successful"] + res["failed"] != n:
        raise Failed("sf_bulk stored %d results for %d rows" % (res["successful"] + res["failed"], n))
    b.add("2 end to end", "%s: sf_bulk, call → all results stored in Postgres" % label, fmt_s(res["wall"]),
          "", "", "", "")
    b.notes.append("2: sf_bulk job %d: %d rows, %d bytes, %d upload(s), %d successful / %d failed results; "
                   "enqueue call %.2f s; worker CPU %.1f s, emulator CPU %.1f s during the job" % (
                       res["job"], res["rows"], res["bytes"], res["uploads"], res["successful"], res["failed"],
                       res["call"], res["worker_cpu"] or 0, res["emu_cpu"]))

    if b.no_peers:  # --only 2-: sf_bulk's run alone (enough for section 4), for development
        return

    # jsforce, fed by psql \copy
    csv_file = os.path.join(b.tmp, "export.csv")
    t0 = time.monotonic()
    b.psql("\\copy (%s) TO '%s' (FORMAT csv, HEADER)\n" % (EXPORT_QUERY.format(table=table), csv_file))
    export_s = time.monotonic() - t0
    jsf_dir = os.path.join(b.a.root, "bench/peers/jsforce")
    b.emu_reset()
    emu0 = cpu_seconds(b.emu_pid)
    seq = b.emu_last_seq()
    t0 = time.monotonic()
    p = subprocess.run(["node", "--max-old-space-size=12288", os.path.join(jsf_dir, "upsert.js"), b.emu,
                        os.path.join(b.a.root, "test/emulator/default_org.json"), csv_file, "Lead",
                        "External_Id__c"], capture_output=True, text=True, timeout=3600)
    js_s = time.monotonic() - t0
    js_emu = cpu_seconds(b.emu_pid) - emu0
    try:
        js_timeline = timeline(b.emu_requests_since(seq))
    except Exception as e:
        js_timeline = "timeline unavailable: %s" % e
    if p.returncode != 0:
        raise Failed("jsforce: " + p.stderr.strip()[-1500:])
    js = json.loads(p.stdout.strip().splitlines()[-1])
    if js["successful"] + js["failed"] != n:
        raise Failed("jsforce got %d results for %d rows" % (js["successful"] + js["failed"], n))
    with_export = export_s + js_s
    b.add("2 end to end", "%s: jsforce 3.10.16 bulk2.loadAndWaitForResults + psql \\copy export" % label,
          fmt_s(res["wall"]), fmt_s(with_export), "%.2f" % (res["wall"] / with_export), "sf_bulk/jsforce ≤ 0.5",
          yes(res["wall"] / with_export <= 0.5))
    b.add("2 end to end", "%s: jsforce alone (no export; results only in Node's memory)" % label,
          fmt_s(res["wall"]), fmt_s(js_s), "%.2f" % (res["wall"] / js_s), "", "")
    b.notes.append("2: export %.2f s; jsforce %.2f s (its own clock %.2f s), %d successful / %d failed; "
                   "emulator CPU during jsforce %.2f s" % (export_s, js_s, js["ms"] / 1000.0, js["successful"],
                                                           js["failed"], js_emu))
    b.js_emu_share = js_emu / js_s
    b.notes.append("2: sf_bulk phases: enqueue (spool) %.1f s, %s" % (res["call"], res["timeline"]))
    b.notes.append("2: jsforce phases: %s" % js_timeline)

    # Salesforce CLI
    sf_bin = b.a.sf_bin
    if not sf_bin or not os.path.exists(sf_bin):
        b.add("2 end to end", "%s: Salesforce CLI `sf data upsert bulk`" % label, fmt_s(res["wall"]),
              "skipped (CLI not installed; `bench/run --rows-scale full` installs it)", "", "", "")
        return
    home = os.path.join(b.tmp, "sfhome")
    os.makedirs(home, exist_ok=True)
    env = dict(os.environ, HOME=home, SF_DISABLE_TELEMETRY="true", SF_AUTOUPDATE_DISABLE="true",
               SF_SKIP_NEW_VERSION_CHECK="true", SF_ACCESS_TOKEN=b.org["access_token"],
               NODE_OPTIONS="--max-old-space-size=12288")
    b.emu_reset()
    p = subprocess.run([sf_bin, "org", "login", "access-token", "--instance-url", b.emu, "--no-prompt",
                        "--alias", "local"], capture_output=True, text=True, timeout=300, env=env)
    if p.returncode != 0:
        raise Failed("sf org login: " + (p.stdout + p.stderr).strip()[-1500:])
    b.emu_reset()
    emu0 = cpu_seconds(b.emu_pid)
    t0 = time.monotonic()
    p = subprocess.run([sf_bin, "data", "upsert", "bulk", "--sobject", "Lead", "--file", csv_file,
                        "--external-id", "External_Id__c", "--wait", "60", "--target-org", "local", "--json"],
                       capture_output=True, text=True, timeout=3600, env=env, cwd=b.tmp)
    sf_s = time.monotonic() - t0
    sf_emu = cpu_seconds(b.emu_pid) - emu0
    try:
        sfj = json.loads(p.stdout)
    except ValueError:
        sfj = {}
    if p.returncode not in (0, 1) or not sfj:
        raise Failed("sf data upsert bulk (exit %d): %s" % (p.returncode, (p.stdout + p.stderr).strip()[-1500:]))
    jobs = b.emu_call("GET", "/__emulator/jobs")
    jobs = jobs if isinstance(jobs, list) else jobs.get("jobs", jobs.get("records", []))
    processed = sum(int(j.get("numberRecordsProcessed", 0)) for j in jobs if j.get("kind", "ingest") == "ingest")
    if processed != n:
        raise Failed("sf CLI: emulator processed %d rows, expected %d (%s)" % (processed, n, p.stdout[-800:]))
    sf_total = export_s + sf_s
    b.add("2 end to end", "%s: Salesforce CLI `sf data upsert bulk` + psql \\copy export" % label,
          fmt_s(res["wall"]), fmt_s(sf_total), "%.2f" % (res["wall"] / sf_total), "", "")
    b.notes.append("2: sf CLI %.2f s without the export (exit %d; emulator CPU %.2f s)" % (sf_s, p.returncode,
                                                                                     sf_emu))


def section_memory(b):
    log("3. memory: peak private memory of the calling backend and of the worker")
    figures = dict(getattr(b, "mem_results", {}))
    for n in b.scale["mem_sizes"]:
        if n in figures:
            continue
        log("3. memory: %s rows" % format(n, ","))
        b.emu_reset()
        with MemSampler() as sampler:
            res = run_sf_bulk_job(b, "mixed_%d" % n, sampler)
        res["backend_anon_kb"] = sampler.peak_anon.get("backend", 0)
        res["worker_anon_kb"] = sampler.peak_anon.get("worker", 0)
        if res["successful"] + res["failed"] != n:
            raise Failed("stored %d results for %d rows" % (res["successful"] + res["failed"], n))
        figures[n] = res
        b.notes.append("3: %s rows: job %d, %d upload(s), wall %.1f s, backend VmHWM %s, worker VmHWM %s" % (
            format(n, ","), res["job"], res["uploads"], res["wall"], fmt_mb(res["backend_hwm_kb"]),
            fmt_mb(res["worker_hwm_kb"])))
    sizes = b.scale["mem_sizes"]
    for who, key in (("calling backend", "backend_anon_kb"), ("worker", "worker_anon_kb")):
        vals = [figures[n][key] for n in sizes]
        growth = vals[-1] - vals[0]
        b.add("3 memory", "peak private memory (RssAnon) of the %s at %s rows" % (
            who, " / ".join(format(n, ",") for n in sizes)), " / ".join(fmt_mb(v) for v in vals), "",
            "+%s" % fmt_mb(growth) if growth >= 0 else "-%s" % fmt_mb(-growth), "≤ +32 MB", yes(growth <= 32 * 1024))
    hw = [figures[n]["backend_hwm_kb"] for n in sizes]
    ww = [figures[n]["worker_hwm_kb"] for n in sizes]
    b.add("3 memory", "for reference: VmHWM (includes shared buffers touched), backend / worker",
          " / ".join(fmt_mb(v) for v in hw) + " ; " + " / ".join(fmt_mb(v) for v in ww), "", "", "", "")


def section_store(b):
    log("4. storing results vs COPY FROM of the same CSV")
    res = b.e2e
    if not res:
        raise Failed("no end-to-end job to look at")
    job = res["job"]
    lines = b.value("""
SELECT chunk_no || '|' || sf_job_id || '|' ||
       extract(epoch FROM pg_xact_commit_timestamp(xmin) - updated_at)
  FROM sf_bulk.chunks WHERE job_id = %d ORDER BY chunk_no;""" % job).splitlines()
    store_s = 0.0
    sf_jobs = []
    for line in lines:
        _, sf_job, secs = line.split("|")
        store_s += float(secs)
        sf_jobs.append(sf_job)
    stored = res["successful"] + res["failed"] + res["unprocessed"]
    # the same CSV the worker stored: the successful results of its Salesforce job(s), from the emulator
    csv_file = os.path.join(b.tmp, "results.csv")
    with open(csv_file, "wb") as out:
        for i, sf_job in enumerate(sf_jobs):
            data = b.emu_call("GET", "/services/data/v62.0/jobs/ingest/%s/successfulResults/" % sf_job,
                              token=True, raw=True)
            if i > 0:
                data = data.split(b"\n", 1)[1]
            out.write(data)
    os.chmod(csv_file, 0o644)
    with open(csv_file, "rb") as fh:
        header = fh.readline().decode().strip().split(",")
    cols = ", ".join('"%s" %s' % (h.strip('"'), "boolean" if h.strip('"') == "sf__Created" else "text")
                     for h in header)
    r = b.script("""
CREATE TABLE copy_results (%s);
\\timing on
COPY copy_results FROM '%s' (FORMAT csv, HEADER);
\\timing off
SELECT count(*) FROM copy_results;
DROP TABLE copy_results;
""" % (cols, csv_file))
    copy_s = r["times"][0] / 1000.0
    copied = int(r["lines"][-1])
    if copied != res["successful"]:
        raise Failed("COPY read %d rows, the job stored %d successful results" % (copied, res["successful"]))
    ratio = (copy_s * stored / copied) / store_s if store_s > 0 else 0
    b.add("4 storing results", "%s result rows stored by the worker (parse, jsonb, INSERT, commit)" %
          format(stored, ","), "%s (%s)" % (fmt_s(store_s), fmt_rate(stored, store_s)),
          "%s (%s) COPY FROM" % (fmt_s(copy_s), fmt_rate(copied, copy_s)), "%.2f" % ratio, "COPY/store ≥ 0.5",
          yes(ratio >= 0.5))
    b.notes.append("4: storing = commit timestamp of the storing transaction minus its start (chunks.updated_at, "
                   "track_commit_timestamp = on), summed over %d upload(s); COPY FROM into an unindexed table "
                   "of text columns" % len(sf_jobs))


def section_overheads(b, phase):
    if phase == "latency":
        log("5. overheads: COMMIT-to-first-request latency")
        lat = []
        q = E2E_QUERY.format(table="mixed_%d" % b.scale["mem_sizes"][0]) + " LIMIT 5"
        # the first job starts the worker (launcher); the others find it idle
        for i in range(b.scale["latency_jobs"] + 1):
            seq = b.emu_last_seq()
            r = b.script("""
BEGIN;
SELECT sf_bulk_upsert('Lead', $q$%s$q$, external_id => 'External_Id__c') AS job \\gset
SELECT floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint AS t \\gset
COMMIT;
SELECT :job || ' ' || :t;
SELECT state FROM sf_bulk_wait(:job, '120 s');
""" % q)
            job, t_commit = (int(x) for x in r["lines"][-2].split())
            if r["lines"][-1] != "completed":
                raise Failed("latency job %d ended %s" % (job, r["lines"][-1]))
            reqs = [x for x in b.emu_requests_since(seq) if not x.get("admin")]
            if not reqs:
                raise Failed("no request reached the emulator for job %d" % job)
            first = min(x["start_epoch_ms"] for x in reqs)
            if i > 0:
                lat.append(first - t_commit)
        med = statistics.median(lat)
        b.add("5 overheads", "COMMIT → first request to Salesforce, worker idle (median of %d)" % len(lat),
              "%.0f ms" % med, "", "", "< 50 ms", yes(med < 50))
        b.notes.append("5: latencies (ms): %s" % ", ".join("%.0f" % x for x in lat))
        return
    if phase == "preflight":
        # The call-time check against the describe, warm cache: the same empty upsert with and without it, in one
        # session, alternating, 21 of each; the difference of the medians is the check's cost.
        log("5. overheads: pre-flight against the describe, warm cache")
        q = E2E_QUERY.format(table="mixed_%d" % b.scale["mem_sizes"][0]) + " LIMIT 0"
        call = "SELECT sf_bulk_upsert('Lead', $q$%s$q$, external_id => 'External_Id__c', validate => %s) > 0;"
        rounds = 21
        body = call % (q, "true") + "\n\\timing on\n" + "".join(
            call % (q, "true") + "\n" + call % (q, "false") + "\n" for _ in range(rounds)) + "\\timing off\n"
        seq = b.emu_last_seq()
        r = b.script(body)
        describes = [x for x in b.emu_requests_since(seq) if "/describe" in x["path"]]
        checked, unchecked = r["times"][0::2], r["times"][1::2]
        med_on, med_off = statistics.median(checked), statistics.median(unchecked)
        b.add("5 overheads", "pre-flight of an ingest call, warm describe cache (median of %d with / without)"
              % rounds, "%.2f ms" % (med_on - med_off), "%.2f ms / %.2f ms" % (med_on, med_off), "",
              "< 5 ms", yes(med_on - med_off < 5))
        b.notes.append("5: pre-flight: %d describe request(s) to Salesforce during the %d checked calls (one per "
                       "object and TTL at most)" % (len(describes), rounds + 1))
        return
    if phase == "idle":
        secs = b.scale["idle_seconds"]
        log("5. overheads: idle worker CPU over %d s" % secs)
        wpid = b.running_worker_pid()
        c0 = cpu_seconds(wpid)
        time.sleep(secs)
        used = cpu_seconds(wpid) - c0
        if b.worker_pid() != wpid:
            raise Failed("the worker exited during the idle measurement")
        b.add("5 overheads", "idle worker CPU over %d s" % secs, "%.0f ms" % (used * 1000), "", "%.3f%%" % (
            100 * used / secs), "≈ 0", yes(used <= 0.01 * secs))
        return
    if phase == "waiting":
        secs = b.scale["wait_seconds"]
        log("5. overheads: worker CPU while Salesforce processes a job (%d s)" % secs)
        wpid = b.running_worker_pid()
        b.emu_reset()
        b.emu_call("POST", "/__emulator/config", {"processing_delay_ms": secs * 1000})
        q = E2E_QUERY.format(table="mixed_%d" % b.scale["mem_sizes"][0]) + " LIMIT 5"
        c0 = cpu_seconds(wpid)
        r = b.script("""
SELECT sf_bulk_upsert('Lead', $q$%s$q$, external_id => 'External_Id__c') AS job \\gset
\\timing on
SELECT state, api_calls FROM sf_bulk_wait(:job, '300 s');
\\timing off
""" % q)
        used = cpu_seconds(wpid) - c0
        wall = r["times"][0] / 1000.0
        b.emu_call("POST", "/__emulator/config", {"processing_delay_ms": 0})
        state, calls = r["lines"][-1].split("|")
        if state != "completed":
            raise Failed("the job ended " + state)
        b.add("5 overheads", "worker CPU while a 5-row job waits %d s for Salesforce (processing delay)" % secs,
              "%.0f ms in %.1f s, %s API calls" % (used * 1000, wall, calls), "", "%.1f%% of a core" % (
                  100 * used / wall), "≈ 0", yes(used <= 0.02 * wall))
        return
    if phase == "emulator":
        res = b.e2e
        if not res:
            raise Failed("no end-to-end run to look at")
        share = res["emu_cpu"] / res["wall"]
        b.add("5 overheads", "emulator CPU / sf_bulk end-to-end wall time (1 emulator core of 2)",
              "%.2f s / %.2f s" % (res["emu_cpu"], res["wall"]), "", "%.0f%%" % (100 * share),
              "not the bottleneck", yes(share < 0.5))
        if hasattr(b, "js_emu_share"):
            b.notes.append("5: emulator CPU share during the jsforce run: %.0f%%" % (100 * b.js_emu_share))


# ---------------------------------------------------------------------------------------------------------
# section 6: the read path (sf_bulk_query) against jsforce, the Salesforce CLI and plain COPY FROM
# ---------------------------------------------------------------------------------------------------------

# The query every client runs: Account fields of each kind the type map knows (ids, text with quotes, commas
# and newlines, picklist, int, currency, boolean, date, date-time) with nulls.
QUERY_SOQL = ("SELECT Id, Name, External_Id__c, Industry, NumberOfEmployees, AnnualRevenue, Active__c, "
              "Customer_Since__c, Description, Phone, OwnerId, CreatedDate FROM Account")
# (field, column, type): the table sf_bulk_query creates from Account's describe (src/core/type_map.h: ids
# text COLLATE "C", int integer, currency numeric(precision, scale), datetime timestamptz). Every client
# loads into this same shape, created fresh for each run, with the same primary key.
QUERY_COLUMNS = [
    ("Id", "id", 'text COLLATE "C" PRIMARY KEY'), ("Name", "name", "text"),
    ("External_Id__c", "external_id__c", "text"), ("Industry", "industry", "text"),
    ("NumberOfEmployees", "numberofemployees", "integer"), ("AnnualRevenue", "annualrevenue", "numeric(18,0)"),
    ("Active__c", "active__c", "boolean"), ("Customer_Since__c", "customer_since__c", "date"),
    ("Description", "description", "text"), ("Phone", "phone", "text"),
    ("OwnerId", "ownerid", 'text COLLATE "C"'), ("CreatedDate", "createddate", "timestamp with time zone"),
]
# Salesforce writes a null as an empty quoted value (""), which COPY reads as an empty string unless the
# column is FORCE_NULL; Salesforce has no empty strings, so every nullable column is.
QUERY_COPY_OPTIONS = "(FORMAT csv, HEADER, FORCE_NULL (%s))" % ", ".join(c for _, c, _ in QUERY_COLUMNS[1:])
# The seeded Accounts: cycles of coprime-ish lengths so that rows differ; nulls in every nullable kind.
QUERY_SEED = {
    "Name": "Account {n}", "External_Id__c": "A{n}",
    "Industry": {"cycle": ["Banking", "Retail", "Technology", None, "Food & Beverage"]},
    "NumberOfEmployees": {"cycle": [42, 1200, None, 7, 250000, 3, 18]},
    "AnnualRevenue": {"cycle": [1500000, None, 250000000, 0, 98765]},
    "Active__c": {"cycle": [True, False, None]},
    "Customer_Since__c": {"cycle": ["2019-03-01", "2021-12-31", None, "1998-07-15"]},
    "Description": {"cycle": ['Line one, with "quotes"\nline two', None, "Plain note", None, None]},
    "Phone": {"cycle": ["+1 415 555 0100", None]},
}


class NotAvailable(Exception):
    pass


def query_table_sql(name):
    return "DROP TABLE IF EXISTS %s;\nCREATE TABLE %s (%s);\n" % (
        name, name, ", ".join("%s %s" % (c, t) for _, c, t in QUERY_COLUMNS))


def query_seed(b, n):
    """A fresh emulator with n Accounts (the previous client's jobs and result sets gone)."""
    b.emu_reset()
    if b.scale.get("q_page_size"):
        b.emu_call("POST", "/__emulator/config", {"query_page_size": b.scale["q_page_size"]})
    t0 = time.monotonic()
    r = b.emu_call("POST", "/__emulator/records/Account", {"generate": {"count": n, "values": QUERY_SEED}})
    if r.get("count") != n:
        raise Failed("seeding: %s" % r)
    return time.monotonic() - t0


def union_seconds(intervals):
    total, end = 0.0, None
    for s, e in sorted(intervals):
        if end is None or s > end:
            total += e - s
            end = e
        elif e > end:
            total += e - end
            end = e
    return total / 1000.0


def query_server_split(b, seq, seen_jobs_only=False):
    """Server time of one client's run, from the emulator: the union of its API requests (start, duration in
    the request log) and of its query jobs' processing (processingStartedEpochMs + totalProcessingTime), in
    seconds; the rest of the client's wall time is its own (including its polling slack). The query jobs are
    every one since the emulator's reset, or with seen_jobs_only those the requests since seq name."""
    reqs = [r for r in b.emu_requests_since(seq) if not r.get("admin")]
    jobs = [j for j in b.emu_call("GET", "/__emulator/jobs")["jobs"] if j.get("kind") == "query"]
    if seen_jobs_only:
        seen = set(m.group(1) for m in (re.search(r"/jobs/query/([^/]+)", r["path"]) for r in reqs) if m)
        jobs = [j for j in jobs if j.get("id") in seen]
    spans = [(r["start_epoch_ms"], r["start_epoch_ms"] + r.get("duration_ms", 0)) for r in reqs]
    proc = [(j["processingStartedEpochMs"], j["processingStartedEpochMs"] + j.get("totalProcessingTime", 0))
            for j in jobs if j.get("processingStartedEpochMs") and j.get("state") == "JobComplete"]
    pages = [r for r in reqs if r["method"] == "GET" and re.search(r"/jobs/query/[^/]+/results/?$", r["path"])]
    polls = [r for r in reqs if r["method"] == "GET" and re.search(r"/jobs/query/[^/]+/?$", r["path"])]
    out = dict(server=union_seconds(spans + proc), requests=len(reqs), pages=len(pages), polls=len(polls),
               processing=sum(e - s for s, e in proc) / 1000.0, jobs=len(jobs),
               page_bytes=sum(r.get("response_bytes", 0) for r in pages))
    if pages:
        end = max(r["start_epoch_ms"] + r.get("duration_ms", 0) for r in pages)
        start = min(r["start_epoch_ms"] for r in pages)
        out["download_span"] = (end - start) / 1000.0
        out["page_serving"] = sum(r.get("duration_ms", 0) for r in pages) / 1000.0
        if proc:
            out["slack"] = (start - max(e for _, e in proc)) / 1000.0
    return out


def fmt_split(s):
    parts = ["server %.2f s (query processing %.2f s, %d page(s) served in %.2f s, %.0f MB)" % (
        s["server"], s["processing"], s["pages"], s.get("page_serving", 0), s["page_bytes"] / 1e6)]
    if "slack" in s:
        parts.append("JobComplete → first page request %.2f s (%d polls)" % (s["slack"], s["polls"]))
    parts.append("%d API requests" % s["requests"])
    return ", ".join(parts)


def query_download_csv(b, path):
    """Runs the query job over the public API (as a client would: create, poll, pages by locator) and writes
    one CSV file (the first page's header only). Returns the emulator's figures for serving it."""
    api = "/services/data/v62.0/jobs/query"
    seq = b.emu_last_seq()
    t0 = time.monotonic()
    job = b.emu_call("POST", api, {"operation": "query", "query": QUERY_SOQL}, token=True)
    while True:
        info = b.emu_call("GET", "%s/%s" % (api, job["id"]), token=True)
        if info["state"] in ("JobComplete", "Failed", "Aborted"):
            break
        time.sleep(0.02)
    if info["state"] != "JobComplete":
        raise Failed("query job %s ended %s" % (job["id"], info))
    t_job = time.monotonic() - t0
    locator, rows, pages = None, 0, 0
    t1 = time.monotonic()
    with open(path, "wb") as out:
        while True:
            req = urllib.request.Request(b.emu + "%s/%s/results%s" % (api, job["id"], "?locator=" + locator
                                                                      if locator else ""))
            req.add_header("Authorization", "Bearer " + b.org["access_token"])
            with urllib.request.urlopen(req, timeout=600) as r:
                data = r.read()
                rows += int(r.headers["Sforce-NumberOfRecords"])
                locator = r.headers["Sforce-Locator"]
            out.write(data if pages == 0 else data.split(b"\n", 1)[1])
            pages += 1
            if locator == "null":
                break
    os.chmod(path, 0o644)
    split = query_server_split(b, seq)
    split.update(job_wall=t_job, download_wall=time.monotonic() - t1, rows=rows, bytes=os.path.getsize(path))
    return split


def query_copy_baseline(b, csv_file, n, repeats):
    times = []
    for _ in range(repeats):
        r = b.script(query_table_sql("q_copy") + "\\timing on\nCOPY q_copy FROM '%s' %s;\n\\timing off\n"
                     "SELECT count(*) FROM q_copy;\n" % (csv_file, QUERY_COPY_OPTIONS))
        if int(r["lines"][-1]) != n:
            raise Failed("COPY FROM loaded %s rows, expected %d" % (r["lines"][-1], n))
        times.append(r["times"][0] / 1000.0)
    b.psql("DROP TABLE q_copy;")
    return times


def query_peer(b, n, argv, table, env=None, then_copy=None):
    """One peer's run after a fresh seed: argv writes the CSV to stdout (piped into psql \\copy FROM STDIN), or,
    with then_copy, into the file then_copy, which psql \\copy loads afterwards. Returns wall time, the peer's
    stderr (its last line), peak RSS of the peer process (kB, from wait4) and the server split."""
    query_seed(b, n)
    b.psql(query_table_sql(table))
    copy_cmd = "\\copy %s FROM %s %s" % (table, "STDIN" if then_copy is None else "'%s'" % then_copy,
                                         QUERY_COPY_OPTIONS)
    psql_argv = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", b.db, "-c", copy_cmd]
    seq = b.emu_last_seq()
    t0 = time.monotonic()
    if then_copy is None:
        peer = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=b.tmp)
        loader = subprocess.Popen(psql_argv, stdin=peer.stdout, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        peer.stdout.close()  # psql holds the pipe now; the peer sees EPIPE if psql dies
        err_box = {}
        th = threading.Thread(target=lambda: err_box.update(err=peer.stderr.read()))
        th.start()
        _, status, ru = os.wait4(peer.pid, 0)
        peer.returncode = os.waitstatus_to_exitcode(status)
        th.join()
        lerr = loader.communicate(timeout=3600)[1]
        peer_err = err_box["err"]
    else:
        peer = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=b.tmp)
        peer_out = peer.stdout.read()
        _, status, ru = os.wait4(peer.pid, 0)
        peer.returncode = os.waitstatus_to_exitcode(status)
        peer_err = peer_out
        t_export = time.monotonic() - t0
        loader = subprocess.run(psql_argv, capture_output=True) if peer.returncode == 0 else None
        lerr = loader.stderr if loader else b""
    wall = time.monotonic() - t0
    if peer.returncode != 0:
        raise Failed("%s (exit %d): %s" % (os.path.basename(argv[1] if argv[0] == "node" else argv[0]),
                                           peer.returncode, peer_err.decode(errors="replace").strip()[-1500:]))
    if loader.returncode != 0:
        raise Failed("psql \\copy: " + lerr.decode(errors="replace").strip()[-1500:])
    loaded = int(b.value("SELECT count(*) FROM %s" % table))
    if loaded != n:
        raise Failed("%s: loaded %d rows, expected %d" % (table, loaded, n))
    b.psql("DROP TABLE %s;" % table)
    out = dict(wall=wall, err=peer_err.decode(errors="replace").strip(), rss_kb=ru.ru_maxrss,
               split=query_server_split(b, seq))
    if then_copy is not None:
        out["export"] = t_export
    return out


PHASE_POLL_SQL = """
SET statement_timeout = '2h';
DO $$
DECLARE
    seen text := '';
    cur text;
    t0 timestamptz := clock_timestamp();
BEGIN
    LOOP
        -- A new snapshot per statement (READ COMMITTED): every commit of the worker shows.
        SELECT j.state || '|' || coalesce(j.phase, '') INTO cur FROM sf_bulk.jobs j WHERE j.name = '%s';
        IF cur IS NOT NULL AND cur <> seen THEN
            RAISE NOTICE 'phase|%%|%%', extract(epoch FROM clock_timestamp()), cur;
            seen := cur;
        END IF;
        EXIT WHEN split_part(cur, '|', 1) IN ('completed', 'failed', 'aborted');
        EXIT WHEN cur IS NULL AND clock_timestamp() - t0 > interval '60 s';
        PERFORM pg_sleep(0.01);
    END LOOP;
END
$$;
"""


def query_phases(text):
    """[(epoch seconds, state, phase)] from the phase poller's NOTICEs."""
    out = []
    for m in re.finditer(r"phase\|([0-9.]+)\|([^|\n]*)\|([^\n]*)", text):
        out.append((float(m.group(1)), m.group(2), m.group(3).strip()))
    return out


def run_timed_job(b, call, name, sampler=None, count_table=None, function="sf_bulk_query"):
    """`SELECT <call> AS job` (a call that returns a job id, given `name`), then sf_bulk_wait(job), under psql's
    \\timing in one session, with a second session polling the job's phase every 10 ms and, with a sampler, the
    worker's private memory watched. Raises NotAvailable while the installed extension has no working
    `function`, Failed when the job does not complete. count_table: its row count afterwards is `loaded`."""
    poller = subprocess.Popen(["psql", "-X", "-q", "-d", b.db, "-f", "-"], stdin=subprocess.PIPE,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              env=dict(os.environ, PGAPPNAME="sf_bulk_bench_phase"))
    poll_box = {}
    poll_th = threading.Thread(target=lambda: poll_box.update(err=poller.communicate(PHASE_POLL_SQL % name)[1]))
    poll_th.start()
    stop = threading.Event()

    def find_worker():  # the launcher starts the worker on the first job; watch it as soon as it is there
        while not stop.is_set():
            pid = b.worker_pid()
            if pid:
                reset_peak(pid)
                sampler.watch("worker", pid)
                return
            time.sleep(0.1)
    finder = None
    if sampler is not None:
        wpid = b.worker_pid()
        if wpid:
            reset_peak(wpid)
            sampler.watch("worker", wpid)
        else:
            finder = threading.Thread(target=find_worker, daemon=True)
            finder.start()
    emu_cpu0 = cpu_seconds(b.emu_pid)
    seq = b.emu_last_seq()
    try:
        r = b.script("""
\\timing on
SELECT %s AS job \\gset
SELECT id, state, coalesce(rows_loaded, -1), coalesce(pages, 0), coalesce(bytes_downloaded, 0),
       extract(epoch FROM started_at), extract(epoch FROM finished_at), api_calls, coalesce(error, '')
  FROM sf_bulk_wait(:job);
\\timing off
%s""" % (call, "SELECT count(*) FROM %s;\n" % count_table if count_table else ""))
    except Failed as e:
        stop.set()
        b.psql("SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 'sf_bulk_bench_phase';")
        poll_th.join()
        msg = str(e)
        if "%s is being built" % function in msg or "function %s" % function in msg:
            m = re.search(r"ERROR:\s+([^\n]*)", msg)
            raise NotAvailable(m.group(1) if m else msg[-300:])
        raise
    finally:
        stop.set()
    poll_th.join()
    emu_cpu = cpu_seconds(b.emu_pid) - emu_cpu0
    line = r["lines"][-2 if count_table else -1].split("|")
    job, state = int(line[0]), line[1]
    if state != "completed":
        raise Failed("%s job %d ended %s: %s" % (function, job, state, line[-1]))
    phases = query_phases(poll_box.get("err", ""))
    load_start = next((t for t, st, ph in phases if ph == "loading"), None)
    done_at = next((t for t, st, ph in phases if st == "completed"), None)
    out = dict(job=job, wall=sum(r["times"]) / 1000.0, call=r["times"][0] / 1000.0, rows_loaded=int(line[2]),
               pages=int(line[3]), bytes=int(line[4]), api_calls=line[7], emu_cpu=emu_cpu, phases=phases, seq=seq,
               job_span=float(line[6]) - float(line[5]))
    if count_table:
        out["loaded"] = int(r["lines"][-1])
    if load_start is not None and done_at is not None:
        out["load"] = done_at - load_start
    return out


def run_sf_bulk_query(b, n, label, sampler=None):
    """sf_bulk_query ... sf_bulk_wait into a fresh table after a fresh seed. Raises NotAvailable while the
    installed extension has no working sf_bulk_query."""
    query_seed(b, n)
    b.psql(query_table_sql("q_sfb"))
    name = "bench-query-%s-%d" % (label, time.monotonic_ns())
    out = run_timed_job(b, "sf_bulk_query($s$%s$s$, 'q_sfb', server => 'emulator', name => '%s')" % (
        QUERY_SOQL, name), name, sampler, count_table="q_sfb")
    job, rows_loaded, loaded = out["job"], out["rows_loaded"], out["loaded"]
    if loaded != n or rows_loaded not in (n, -1):
        raise Failed("sf_bulk query job %d: %d rows in the table, rows_loaded %s, %d pages, expected %d rows" % (
            job, loaded, rows_loaded if rows_loaded >= 0 else "NULL", out["pages"], n))
    out["split"] = query_server_split(b, out["seq"])
    b.psql("DROP TABLE q_sfb;")
    return out


def query_jsforce(b, n, label, jsf_dir, org_file, versus):
    log("6. query: jsforce bulk2.query → psql \\copy")
    js = query_peer(b, n, ["node", "--max-old-space-size=12288", os.path.join(jsf_dir, "query.js"), b.emu,
                           org_file, QUERY_SOQL], "q_jsforce")
    stats = json.loads(js["err"].splitlines()[-1])
    if stats["rows"] != n:
        raise Failed("jsforce wrote %d rows, expected %d" % (stats["rows"], n))
    versus("%s: jsforce 3.10.16 bulk2.query, its CSV stream (repeated page headers dropped) → psql "
           "\\copy FROM STDIN" % label, js, "sf_bulk/jsforce ≤ 0.5")
    b.notes.append("6: jsforce: wall %.2f s (its own clock %.2f s), peak RSS %s; %s" % (
        js["wall"], stats["ms"] / 1000.0, fmt_mb(js["rss_kb"]), fmt_split(js["split"])))


def query_cli(b, n, label, sfb, versus):
    sf_bin = b.a.sf_bin
    if not sf_bin or not os.path.exists(sf_bin):
        b.add("6 query", "%s: Salesforce CLI `sf data export bulk` + psql \\copy" % label,
              fmt_s(sfb["wall"]) if sfb else "not available",
              "skipped (CLI not installed; `bench/run --rows-scale full` installs it)", "", "", "")
    else:
        log("6. query: sf data export bulk + psql \\copy")
        home = os.path.join(b.tmp, "sfhome")
        os.makedirs(home, exist_ok=True)
        env = dict(os.environ, HOME=home, SF_DISABLE_TELEMETRY="true", SF_AUTOUPDATE_DISABLE="true",
                   SF_SKIP_NEW_VERSION_CHECK="true", SF_ACCESS_TOKEN=b.org["access_token"],
                   NODE_OPTIONS="--max-old-space-size=12288")
        p = subprocess.run([sf_bin, "org", "login", "access-token", "--instance-url", b.emu, "--no-prompt",
                            "--alias", "local"], capture_output=True, text=True, timeout=300, env=env)
        if p.returncode != 0:
            raise Failed("sf org login: " + (p.stdout + p.stderr).strip()[-1500:])
        out_csv = os.path.join(b.tmp, "cli-accounts.csv")
        cli = query_peer(b, n, [sf_bin, "data", "export", "bulk", "--query", QUERY_SOQL, "--output-file",
                                out_csv, "--result-format", "csv", "--wait", "60", "--target-org", "local",
                                "--json"], "q_cli", env=env, then_copy=out_csv)
        versus("%s: Salesforce CLI `sf data export bulk` (file) + psql \\copy" % label, cli)
        b.notes.append("6: sf CLI: export %.2f s, \\copy %.2f s, peak RSS %s; %s" % (
            cli["export"], cli["wall"] - cli["export"], fmt_mb(cli["rss_kb"]), fmt_split(cli["split"])))


def section_query(b):
    n = b.scale["q_rows"]
    label = "%s Accounts" % format(n, ",")
    log("6. query: %s into a table" % label)
    # The CSV of the COPY baseline, fetched once; the same fetch measures the emulator serving the job.
    csv_file = os.path.join(b.tmp, "accounts.csv")
    seed_s = query_seed(b, n)
    emu = query_download_csv(b, csv_file)
    if emu["rows"] != n:
        raise Failed("the emulator served %d rows, expected %d" % (emu["rows"], n))
    b.add("6 query", "emulator serving the %s-row query job: processing; %d pages by locator (%.0f MB)" % (
        format(n, ","), emu["pages"], emu["bytes"] / 1e6), "", "%s; %s" % (fmt_s(emu["processing"]), fmt_s(
            emu["page_serving"])), "", "", "")
    b.notes.append("6: seeding %s Accounts (admin generate) %.1f s; a plain client's run: create → JobComplete "
                   "%.2f s wall, %d pages downloaded in %.2f s wall (%s rows/s), %d bytes of CSV" % (
                       format(n, ","), seed_s, emu["job_wall"], emu["pages"], emu["download_wall"],
                       format(int(n / emu["download_wall"]), ","), emu["bytes"]))

    copies = query_copy_baseline(b, csv_file, n, b.scale["q_copy_repeats"])
    copy_s = min(copies)
    b.notes.append("6: COPY FROM of that CSV into a fresh table of the same shape (primary key on id): %s "
                   "(runs %s)" % (fmt_s(copy_s), ", ".join("%.2f" % x for x in copies)))

    # sf_bulk
    sfb = None
    with MemSampler() as sampler:
        try:
            sfb = run_sf_bulk_query(b, n, "main", sampler)
        except NotAvailable as e:
            b.sfb_query_missing = str(e)
        except Failed as e:  # reported as a failed step; the peers are still measured
            b.fail("6", e)
            b.sfb_query_missing = "the sf_bulk run failed, see above"
    if sfb is not None:
        sfb["worker_anon_kb"] = sampler.peak_anon.get("worker", 0)
        b.query_mem = {n: sfb}
        ours = "%s (client %s)" % (fmt_s(sfb["wall"]), fmt_s(sfb["wall"] - sfb["split"]["server"]))
        b.add("6 query", "%s → table: sf_bulk_query … sf_bulk_wait, wall (client = wall − server time)" % label,
              ours, "", "", "", "")
        b.notes.append("6: sf_bulk job %d: call %.2f s, %d pages, %d bytes, %s API calls, job started → finished "
                       "%.2f s; %s" % (sfb["job"], sfb["call"], sfb["pages"], sfb["bytes"], sfb["api_calls"],
                                       sfb["job_span"], fmt_split(sfb["split"])))
        t_first = sfb["phases"][0][0] if sfb["phases"] else 0
        b.notes.append("6: sf_bulk phases (polled every 10 ms): " + ", ".join(
            "%.2f s %s%s" % (t - t_first, st, " (%s)" % ph if ph else "") for t, st, ph in sfb["phases"]))
        if "load" in sfb:
            ratio = copy_s / sfb["load"] if sfb["load"] > 0 else 0
            b.add("6 query", "%s: sf_bulk's load step ('loading' phase → completed) vs COPY FROM of the same CSV" %
                  label, fmt_s(sfb["load"]), fmt_s(copy_s) + " (COPY)", "%.2f" % ratio, "COPY/load ≥ 0.7",
                  yes(ratio >= 0.7))
        else:
            b.add("6 query", "%s: sf_bulk's load step vs COPY FROM" % label, "no 'loading' phase seen", fmt_s(
                copy_s) + " (COPY)", "", "COPY/load ≥ 0.7", "not measured")
    else:
        na = "not available (%s)" % b.sfb_query_missing
        b.add("6 query", "%s → table: sf_bulk_query … sf_bulk_wait" % label, na, "", "", "", "")
        b.add("6 query", "%s: sf_bulk's load step vs COPY FROM of the same CSV" % label, "not available",
              fmt_s(copy_s) + " (COPY)", "", "COPY/load ≥ 0.7", "not measured")

    def versus(measure, peer, target=""):
        ref = "%s (client %s)" % (fmt_s(peer["wall"]), fmt_s(peer["wall"] - peer["split"]["server"]))
        if sfb is None:
            b.add("6 query", measure, "not available", ref, "", target, "not measured" if target else "")
            return
        ratio = sfb["wall"] / peer["wall"]
        client = (sfb["wall"] - sfb["split"]["server"]) / max(1e-9, peer["wall"] - peer["split"]["server"])
        b.add("6 query", measure, fmt_s(sfb["wall"]), ref, "%.2f (client %.2f)" % (ratio, client), target,
              yes(ratio <= 0.5) if target else "")

    if not b.q_no_peers:
        jsf_dir = os.path.join(b.a.root, "bench/peers/jsforce")
        org_file = os.path.join(b.a.root, "test/emulator/default_org.json")
        try:
            query_jsforce(b, n, label, jsf_dir, org_file, versus)
        except Failed as e:  # one peer's failure is reported; the others still run
            b.fail("6", e)
        try:
            query_cli(b, n, label, sfb, versus)
        except Failed as e:
            b.fail("6", e)

    # memory: the worker over the sizes (the main run is one of them)
    if sfb is None:
        b.add("6 query", "peak private memory (RssAnon) of the worker at %s rows" % " / ".join(
            format(x, ",") for x in b.scale["q_mem_sizes"]), "not available", "", "", "≤ +32 MB", "not measured")
        return
    figures = dict(b.query_mem)
    for m in b.scale["q_mem_sizes"]:
        if m in figures:
            continue
        log("6. query: worker memory at %s rows" % format(m, ","))
        with MemSampler() as sampler:
            res = run_sf_bulk_query(b, m, "mem", sampler)
        res["worker_anon_kb"] = sampler.peak_anon.get("worker", 0)
        figures[m] = res
        b.notes.append("6: %s rows: job %d, %d pages, wall %.1f s%s" % (
            format(m, ","), res["job"], res["pages"], res["wall"],
            ", load step %.2f s" % res["load"] if "load" in res else ""))
    sizes = b.scale["q_mem_sizes"]
    vals = [figures[m]["worker_anon_kb"] for m in sizes]
    growth = vals[-1] - vals[0]
    b.add("6 query", "peak private memory (RssAnon) of the worker at %s rows" % " / ".join(
        format(x, ",") for x in sizes), " / ".join(fmt_mb(v) for v in vals), "",
        ("+" if growth >= 0 else "-") + fmt_mb(abs(growth)), "≤ +32 MB", yes(growth <= 32 * 1024))


# ---------------------------------------------------------------------------------------------------------
# section 7: foreign tables (the `salesforce` wrapper) against jsforce and the emulator's own answer time
# ---------------------------------------------------------------------------------------------------------

# The Accounts of section 6, with NumberOfEmployees numbered 1..N so that `> 0.9 N` keeps exactly 10 %.
FDW_SEED = dict(QUERY_SEED, NumberOfEmployees="{n}")
# The filtered scan's and the REST scan's columns: id, text, picklist, int, currency, date-time.
FDW_COLUMNS = "id, name, industry, numberofemployees, annualrevenue, createddate"


def fmt_t(seconds):
    """A time in ms below one second (section 7's statements are often a few ms), else in seconds."""
    return "%.1f ms" % (seconds * 1000) if seconds < 1 else fmt_s(seconds)


def fdw_seed(b, n):
    """A fresh emulator with n Accounts (section 6's values, NumberOfEmployees = 1..n)."""
    b.emu_reset()
    if b.scale.get("q_page_size"):
        b.emu_call("POST", "/__emulator/config", {"query_page_size": b.scale["q_page_size"]})
    t0 = time.monotonic()
    r = b.emu_call("POST", "/__emulator/records/Account", {"generate": {"count": n, "values": FDW_SEED}})
    if r.get("count") != n:
        raise Failed("seeding: %s" % r)
    b.fdw_first_id = r.get("first_id")
    return time.monotonic() - t0


def explain_fields(text):
    engine = re.search(r"Salesforce Engine: ([^\n]+)", text)
    soql = re.search(r"SOQL: ([^\n]+)", text)
    if not engine or not soql:
        raise Failed("EXPLAIN shows no Salesforce Engine / SOQL line: %s" % text[-800:])
    return engine.group(1).strip(), soql.group(1).strip()


def fdw_split(b, reqs, t0_ms=None):
    """Server time of one client's statement from the emulator: the union of its API requests (the token
    request left out) and of its query jobs' processing, in seconds; requests, pages, polls."""
    reqs = [r for r in reqs if not r.get("admin") and "/oauth2/" not in r["path"]
            and (t0_ms is None or r["start_epoch_ms"] >= t0_ms)]
    ids = set(m.group(1) for m in (re.search(r"/jobs/query/([^/]+)", r["path"]) for r in reqs) if m)
    jobs = [j for j in b.emu_call("GET", "/__emulator/jobs")["jobs"] if j.get("id") in ids]
    spans = [(r["start_epoch_ms"], r["start_epoch_ms"] + r.get("duration_ms", 0)) for r in reqs]
    proc = [(j["processingStartedEpochMs"], j["processingStartedEpochMs"] + j.get("totalProcessingTime", 0))
            for j in jobs if j.get("processingStartedEpochMs") and j.get("state") == "JobComplete"]
    bulk_pages = [r for r in reqs if r["method"] == "GET" and re.search(r"/jobs/query/[^/]+/results/?$", r["path"])]
    rest_pages = [r for r in reqs if r["method"] == "GET" and re.search(r"/query(/[^/]+)?/?$", r["path"])
                  and "/jobs/" not in r["path"]]
    polls = [r for r in reqs if r["method"] == "GET" and re.search(r"/jobs/query/[^/]+/?$", r["path"])]
    out = dict(server=union_seconds(spans + proc), requests=len(reqs), pages=len(bulk_pages) + len(rest_pages),
               polls=len(polls), processing=sum(e - s for s, e in proc) / 1000.0,
               page_serving=sum(r.get("duration_ms", 0) for r in bulk_pages + rest_pages) / 1000.0,
               kinds=sorted(set("%s %s" % (r["method"], re.sub(r"/(750|01g)[A-Za-z0-9-]+", "/{id}",
                                                                    r["path"])) for r in reqs)))
    if bulk_pages and proc:
        out["slack"] = (min(r["start_epoch_ms"] for r in bulk_pages) - max(e for _, e in proc)) / 1000.0
    return out


def fmt_fdw_split(s):
    parts = ["server %s (query processing %s, %d page(s) served in %s)" % (
        fmt_t(s["server"]), fmt_t(s["processing"]), s["pages"], fmt_t(s["page_serving"]))]
    if "slack" in s:
        parts.append("JobComplete → first page request %s (%d polls)" % (fmt_t(s["slack"]), s["polls"]))
    parts.append("%d API requests" % s["requests"])
    return ", ".join(parts)


def fdw_statement(b, engine, stmt, rows_out, sampler=None):
    """One foreign-table statement in a fresh session: EXPLAIN (VERBOSE) first (it plans, so the session
    fetches its token and the record count, and the describe if the cache has none: warm), then the statement
    under \\timing. rows_out: the statement's rows go to /dev/null and psql's ROW_COUNT is the row count;
    otherwise its one value is returned. Returns wall (the statement's \\timing), engine, SOQL, rows, memory
    and the server split of the statement's own requests."""
    seq = b.emu_last_seq()
    sink = ("\\o /dev/null\n", "\\o\n\\echo 'ROWS|' :ROW_COUNT\n") if rows_out else ("", "")
    r = b.script("""
SET sf_bulk.scan_engine = '%s';
EXPLAIN (VERBOSE) %s;
SELECT pg_sleep(0.02);
SELECT 'T0|' || floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint;
%s\\timing on
%s;
\\timing off
%s""" % (engine, stmt, sink[0], stmt, sink[1]), watch_backend="backend", sampler=sampler)
    out = r["out"]
    eng, soql = explain_fields(out)
    t0_ms = int(re.search(r"^T0\|(\d+)", out, re.M).group(1))
    if rows_out:
        rows = int(re.search(r"^ROWS\| ?(\d+)", out, re.M).group(1))
    else:
        rows = int(r["lines"][-1].split("|")[0])  # the first column: count(*)
    reqs = b.emu_requests_since(seq)
    return dict(wall=r["times"][0] / 1000.0, engine=eng, soql=soql, rows=rows, hwm_kb=r["hwm_kb"],
                anon_kb=sampler.peak_anon.get("backend", 0) if sampler else 0, split=fdw_split(b, reqs, t0_ms))


def fdw_auto_engine(b, stmt):
    r = b.script("SET sf_bulk.scan_engine = 'auto';\nEXPLAIN (VERBOSE) %s;\n" % stmt)
    return explain_fields(r["out"])


def fdw_jsforce(b, mode, soql):
    jsf = os.path.join(b.a.root, "bench/peers/jsforce")
    seq = b.emu_last_seq()
    t0 = time.monotonic()
    p = subprocess.run(["node", "--max-old-space-size=12288", os.path.join(jsf, "read.js"), b.emu,
                        os.path.join(b.a.root, "test/emulator/default_org.json"), mode, soql],
                       capture_output=True, text=True, timeout=3600)
    wall = time.monotonic() - t0
    if p.returncode != 0:
        raise Failed("jsforce %s (exit %d): %s" % (mode, p.returncode, p.stderr.strip()[-1500:]))
    js = json.loads(p.stdout.strip().splitlines()[-1])
    js.update(wall=js["ms"] / 1000.0, process_wall=wall, split=fdw_split(b, b.emu_requests_since(seq)))
    return js


def median(xs):
    return statistics.median(xs) if xs else float("nan")


class PsqlSession:
    """One psql session driven statement by statement (the client of the point lookup): each call sends a
    statement and reads up to a marker, so the caller can do other work between statements."""

    def __init__(self, b):
        env = dict(os.environ, PGAPPNAME="sf_bulk_bench")
        self.p = subprocess.Popen(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", b.db, "-f", "-"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True, bufsize=1, env=env)

    def run(self, sql):
        self.p.stdin.write(sql + "\n\\echo __bench_done__\n")
        self.p.stdin.flush()
        out = []
        while True:
            line = self.p.stdout.readline()
            if not line:
                raise Failed("psql ended: %s" % "\n".join(out)[-1500:])
            if line.strip() == "__bench_done__":
                return out
            out.append(line.rstrip("\n"))

    def timed(self, sql):
        """(ms from psql's \\timing, other output lines)."""
        out = self.run("\\timing on\n%s\n\\timing off" % sql)
        times = [float(m.group(1)) for m in (re.match(r"Time: ([0-9.]+) ms", l) for l in out) if m]
        if len(times) != 1:
            raise Failed("expected one timing for %s: %s" % (sql, out))
        return times[0], [l for l in out if not l.startswith("Time: ")]

    def close(self):
        self.p.stdin.close()
        self.p.wait(timeout=60)


def fdw_lookup(b, n_runs):
    """The point lookup through a prepared statement in one session: its first execution (a cold session:
    token, record count), three warm-ups, then n_runs rounds of one execution and one direct GET of the same
    REST URL over a kept-alive connection (interleaved, so both see the same machine), generic plan first,
    then custom. Each execution's requests are read from the emulator's log right after it."""
    import http.client
    import urllib.parse
    ident = b.fdw_first_id
    stmt = "EXECUTE lookup('%s');" % ident
    u = urllib.parse.urlparse(b.emu)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    headers = {"Authorization": "Bearer " + b.org["access_token"], "Accept": "application/json",
               "Accept-Encoding": "gzip"}
    state = {"seq": b.emu_last_seq()}

    def new_requests():
        r = b.emu_call("GET", "/__emulator/requests?since=%d" % state["seq"])
        state["seq"] = r.get("last_seq", state["seq"])
        return [q for q in r["requests"] if not q.get("admin")]

    def direct(target):
        t0 = time.perf_counter()
        conn.request("GET", target, headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        ms = (time.perf_counter() - t0) * 1000.0
        if resp.status != 200 or not body:
            raise Failed("direct GET %s: %d %s" % (target, resp.status, body[:300]))
        return ms

    s = PsqlSession(b)
    res = dict(generic=[], custom=[], direct_generic=[], direct_custom=[], generic_reqs=[], custom_reqs=[],
               direct_emu=[], fdw_emu=[])
    try:
        s.run("PREPARE lookup(text) AS SELECT name FROM sf.account WHERE id = $1;\n"
              "SET plan_cache_mode = force_generic_plan;")
        new_requests()
        first_ms, out = s.timed(stmt)
        res["first"], res["first_ms"] = new_requests(), first_ms
        if not any(l.startswith("Account ") for l in out):
            raise Failed("lookup returned no Account name: %s" % out)
        lookups = [q for q in res["first"] if q["method"] == "GET" and q["path"].endswith("/query")]
        if not lookups:
            raise Failed("lookup: no REST query request in the emulator's log")
        target = lookups[-1]["path"] + "?" + lookups[-1]["query"]
        res["target"] = target
        res["sent_soql"] = urllib.parse.parse_qs(lookups[-1]["query"]).get("q", ["?"])[0]
        res["engine"], res["soql"] = explain_fields("\n".join(s.run("EXPLAIN (VERBOSE) " + stmt)))
        for kind in ("generic", "custom"):
            s.run("SET plan_cache_mode = force_%s_plan;" % kind)
            for _ in range(3):  # warm-ups: the plan, and both clients' connections
                s.run(stmt)
                direct(target)
            new_requests()
            for _ in range(n_runs):
                ms, _ = s.timed(stmt)
                reqs = new_requests()
                res[kind].append(ms)
                res[kind + "_reqs"].append(reqs)
                res["fdw_emu"] += [q.get("duration_ms", 0) for q in reqs]
                res["direct_" + kind].append(direct(target))
                res["direct_emu"] += [q.get("duration_ms", 0) for q in new_requests()]
    finally:
        conn.close()
        s.close()
    return res


def section_fdw(b):
    n = b.scale["fdw_rows"]
    big = format(n, ",")
    repeats = b.scale["fdw_repeats"]
    x = int(n * 0.9)
    count_stmt = "SELECT count(*) FROM sf.account"
    filt_stmt = "SELECT %s FROM sf.account WHERE numberofemployees > %d" % (FDW_COLUMNS, x)
    log("7. foreign tables: importing Account, seeding %s Accounts" % big)
    b.psql("CREATE SCHEMA IF NOT EXISTS sf;\nDROP FOREIGN TABLE IF EXISTS sf.account;\n"
           "IMPORT FOREIGN SCHEMA salesforce LIMIT TO (Account) FROM SERVER emulator INTO sf;\n")
    seed_s = fdw_seed(b, n)
    b.notes.append("7: seeding %s Accounts (admin generate, section 6's values, NumberOfEmployees 1..%d) %.1f s; "
                   "the emulator is reset and seeded once per size (%s, %s, %s rows) and the foreign table and "
                   "jsforce alternate on the same data; each foreign-table statement runs in a new session after "
                   "its EXPLAIN (VERBOSE), which fetches the token and record count (the describe is cached from "
                   "IMPORT FOREIGN SCHEMA); jsforce is timed from after its login" % (
                       big, n, seed_s, big, format(b.scale["fdw_mem_rows"], ","),
                       format(b.scale["fdw_rest_rows"], ",")))
    auto = {k: fdw_auto_engine(b, s)[0] for k, s in (("count", count_stmt), ("filtered", filt_stmt))}

    # 1. Bulk: count(*) and the filtered scan, the FDW and jsforce alternating, best of `repeats`.
    runs = {}
    for i in range(repeats):
        for key, stmt, rows_out in (("count", count_stmt, False), ("filtered", filt_stmt, True)):
            log("7. %s: foreign table (bulk), run %d" % (key, i + 1))
            with MemSampler() as sampler:
                f = fdw_statement(b, "bulk", stmt, rows_out, sampler)
            want = n if key == "count" else n - x
            if f["rows"] != want:
                raise Failed("7 %s: the foreign table gave %d rows, expected %d" % (key, f["rows"], want))
            if not f["engine"].startswith("Bulk"):
                raise Failed("7 %s: engine %s with scan_engine = bulk" % (key, f["engine"]))
            runs.setdefault((key, "fdw"), []).append(f)
            if b.fdw_no_peers:
                continue
            log("7. %s: jsforce bulk2.query of the same SOQL, run %d" % (key, i + 1))
            j = fdw_jsforce(b, "bulk2", f["soql"])
            if j["rows"] != want:
                raise Failed("7 %s: jsforce counted %d rows, expected %d" % (key, j["rows"], want))
            runs.setdefault((key, "jsforce"), []).append(j)
    labels = {"count": "`%s` (%s rows)" % (count_stmt, big),
              "filtered": "`SELECT <6 columns> … WHERE numberofemployees > %d` (%s rows)" % (x, format(n - x, ","))}
    for key in ("count", "filtered"):
        fs = runs[(key, "fdw")]
        f = min(fs, key=lambda r: r["wall"])
        ours = "%s (client %s)" % (fmt_t(f["wall"]), fmt_t(f["wall"] - f["split"]["server"]))
        if b.fdw_no_peers:
            b.add("7 foreign tables", "%s, Bulk engine; auto: %s" % (labels[key], auto[key]), ours, "", "", "", "")
        else:
            js = runs[(key, "jsforce")]
            j = min(js, key=lambda r: r["wall"])
            ratio = f["wall"] / j["wall"]
            client = (f["wall"] - f["split"]["server"]) / max(1e-9, j["wall"] - j["split"]["server"])
            b.add("7 foreign tables", "%s, Bulk engine vs jsforce 3.10.16 bulk2.query of the same SOQL "
                  "(best of %d; wall, client = wall − server time); auto: %s" % (labels[key], len(fs), auto[key]), ours,
                  "%s (client %s)" % (fmt_t(j["wall"]), fmt_t(j["wall"] - j["split"]["server"])),
                  "%.2f (client %.2f)" % (ratio, client), "", "")
        b.notes.append("7: %s: SOQL `%s`; auto would choose: %s" % (key, f["soql"], auto[key]))
        b.notes.append("7: %s, foreign table runs: %s; best: %s" % (
            key, ", ".join(fmt_t(r["wall"]) for r in fs), fmt_fdw_split(f["split"])))
        if not b.fdw_no_peers:
            b.notes.append("7: %s, jsforce runs (after login): %s (process wall %s); best: %s; bulk2.query "
                           "resolved (all pages in memory) after %s, the rows counted (CSV lines, repeated headers "
                           "dropped) in %s more; peak RSS %s" % (
                               key, ", ".join(fmt_t(r["wall"]) for r in js),
                               ", ".join(fmt_t(r["process_wall"]) for r in js), fmt_fdw_split(j["split"]),
                               fmt_t(j["fetched_ms"] / 1000.0), fmt_t(j["wall"] - j["fetched_ms"] / 1000.0),
                               fmt_mb(j["maxRssKb"])))

    # Memory: the backend's peak private memory over the same scans at the smaller size. The filtered scan
    # returns a tenth of the rows, so its pages differ in size between the two sizes; a scan of the same six
    # columns over every row (aggregated, so nothing but one row goes to the client) fills whole pages at both.
    wide_stmt = ("SELECT count(*), count(name), count(industry), count(numberofemployees), count(annualrevenue), "
                 "count(createddate) FROM sf.account")
    log("7. memory: a six-column scan of every row (%s Accounts)" % big)
    with MemSampler() as sampler:
        f = fdw_statement(b, "bulk", wide_stmt, False, sampler)
    runs[("wide", "fdw")] = [f]
    m = b.scale["fdw_mem_rows"]
    log("7. memory: foreign-table scans over %s Accounts" % format(m, ","))
    fdw_seed(b, m)
    mx = int(m * 0.9)
    small = {}
    for key, stmt, rows_out in (("count", count_stmt, False),
                                ("filtered", "SELECT %s FROM sf.account WHERE numberofemployees > %d" % (
                                    FDW_COLUMNS, mx), True),
                                ("wide", wide_stmt, False)):
        with MemSampler() as sampler:
            f = fdw_statement(b, "bulk", stmt, rows_out, sampler)
        want = m if key != "filtered" else m - mx
        if f["rows"] != want:
            raise Failed("7 memory %s: %d rows, expected %d" % (key, f["rows"], want))
        small[key] = f
    what = {"count": "`SELECT count(*)` (Id only)", "wide": "six columns of every row (`count(name)`, …)",
            "filtered": "the filtered scan (%s / %s rows returned)" % (format(m - mx, ","), format(n - x, ","))}
    for key in ("count", "wide", "filtered"):
        lo = small[key]["anon_kb"]
        hi = max(r["anon_kb"] for r in runs[(key, "fdw")])
        growth = hi - lo
        pages = "%d / %d Bulk result pages" % (small[key]["split"]["pages"], runs[(key, "fdw")][0]["split"]["pages"])
        if key == "filtered":
            b.notes.append("7: %s: peak RssAnon of the backend %s at %s rows, %s at %s rows (%s; a page holds up to "
                           "50,000 rows, so the smaller run's single page is smaller)" % (
                               what[key], fmt_mb(lo), format(m, ","), fmt_mb(hi), big, pages))
        else:
            b.add("7 foreign tables", "%s: peak private memory (RssAnon) of the backend over a Bulk scan at %s / %s "
                  "rows" % (what[key], format(m, ","), big), "%s / %s" % (fmt_mb(lo), fmt_mb(hi)), "",
                  ("+" if growth >= 0 else "-") + fmt_mb(abs(growth)), "flat (≤ +32 MB)", yes(growth <= 32 * 1024))
        b.notes.append("7: %s: backend VmHWM (reset when the session starts; includes shared buffers) %s at %s rows, "
                       "%s at %s rows; %s" % (what[key], fmt_mb(small[key]["hwm_kb"]), format(m, ","),
                                             fmt_mb(max(r["hwm_kb"] for r in runs[(key, "fdw")])), big, pages))
    b.notes.append("7: six-column scan of every row, %s rows: %s; %s" % (
        big, fmt_t(runs[("wide", "fdw")][0]["wall"]), fmt_fdw_split(runs[("wide", "fdw")][0]["split"])))

    # 2. REST: a scan of fdw_rest_rows rows, the FDW and jsforce's query with autoFetch.
    nr = b.scale["fdw_rest_rows"]
    log("7. REST: %s Accounts through the REST engine and jsforce query(autoFetch)" % format(nr, ","))
    fdw_seed(b, nr)
    rest_stmt = "SELECT %s FROM sf.account" % FDW_COLUMNS
    rest_auto = fdw_auto_engine(b, rest_stmt)[0]
    fr, jr = [], []
    for i in range(repeats):
        f = fdw_statement(b, "rest", rest_stmt, True)
        if f["rows"] != nr or not f["engine"].startswith("REST"):
            raise Failed("7 REST: %d rows through %s, expected %d through REST" % (f["rows"], f["engine"], nr))
        fr.append(f)
        if not b.fdw_no_peers:
            j = fdw_jsforce(b, "rest", f["soql"])
            if j["rows"] != nr:
                raise Failed("7 REST: jsforce got %d records, expected %d" % (j["rows"], nr))
            jr.append(j)
    f = min(fr, key=lambda r: r["wall"])
    label = "`SELECT <6 columns> FROM sf.account` (%s rows), REST engine, %d page(s); auto: %s" % (
        format(nr, ","), f["split"]["pages"], rest_auto)
    if jr:
        j = min(jr, key=lambda r: r["wall"])
        b.add("7 foreign tables", "%s vs jsforce query of the same SOQL with autoFetch (best of %d; wall, client = "
              "wall − server time)" % (label, len(fr)), "%s (client %s)" % (
                  fmt_t(f["wall"]), fmt_t(f["wall"] - f["split"]["server"])),
              "%s (client %s)" % (fmt_t(j["wall"]), fmt_t(j["wall"] - j["split"]["server"])),
              "%.2f (client %.2f)" % (f["wall"] / j["wall"], (f["wall"] - f["split"]["server"]) / max(
                  1e-9, j["wall"] - j["split"]["server"])), "", "")
        b.notes.append("7: REST scan, jsforce runs (after login): %s; best: %d page(s), %s; peak RSS %s" % (
            ", ".join(fmt_t(r["wall"]) for r in jr), j["pages"], fmt_fdw_split(j["split"]), fmt_mb(j["maxRssKb"])))
    else:
        b.add("7 foreign tables", label, fmt_t(f["wall"]), "", "", "", "")
    b.notes.append("7: REST scan: SOQL `%s`; auto would choose: %s; foreign table runs: %s; best: %s" % (
        f["soql"], rest_auto, ", ".join(fmt_t(r["wall"]) for r in fr), fmt_fdw_split(f["split"])))

    # 3. The point lookup (same seed).
    k = b.scale["fdw_lookups"]
    log("7. point lookup: %d prepared executions per plan kind, each followed by a direct GET" % k)
    lk = fdw_lookup(b, k)
    for kind in ("generic", "custom"):
        ms, d = median(lk[kind]), median(lk["direct_" + kind])
        per = [len(r) for r in lk[kind + "_reqs"]]
        b.add("7 foreign tables", "point lookup `SELECT name FROM sf.account WHERE id = $1`, prepared, %s plan, "
              "REST: median of %d statements (psql \\timing) vs median of %d direct GETs of the same URL (kept-alive "
              "connection, interleaved)" % (kind, k, k), "%.2f ms" % ms, "%.2f ms" % d,
              "%+.2f ms" % (ms - d), "< +20 ms", yes(ms - d < 20))
        b.add("7 foreign tables", "point lookup, %s plan: HTTP requests per statement, warm session (max)" % kind,
              "%.2f (%d)" % (sum(per) / float(len(per)), max(per)), "", "", "< 3", yes(max(per) < 3))
        b.notes.append("7: lookup, %s plan: statement times (ms) %s; direct GETs (ms) %s; requests %s" % (
            kind, ", ".join("%.2f" % t for t in lk[kind]), ", ".join("%.2f" % t for t in lk["direct_" + kind]),
            ", ".join(sorted(set("%s %s" % (q["method"], q["path"]) for r in lk[kind + "_reqs"] for q in r)))))
    b.notes.append("7: lookup: SOQL `%s` (EXPLAIN of the generic plan: `%s`, %s); the emulator's own time to answer "
                   "(its request log's duration, median): %.2f ms for the backend's requests, %.2f ms for the direct "
                   "ones" % (lk["sent_soql"], lk["soql"], lk["engine"], median(lk["fdw_emu"]),
                             median(lk["direct_emu"])))
    b.notes.append("7: lookup: the first statement of the session (%.1f ms) made %d request(s): %s" % (
        lk["first_ms"], len(lk["first"]), ", ".join("%s %s" % (q["method"], q["path"]) for q in lk["first"])))


# ---------------------------------------------------------------------------------------------------------
# section 8: the mirror (sf_bulk_sync): its first (full) run against sf_bulk_query of the same fields, then an
# incremental run after 1 % of the rows changed against a full reload
# ---------------------------------------------------------------------------------------------------------

# The mirrored fields: section 6's seeded values (text with quotes, commas and newlines, picklist, int, currency,
# boolean, date, nulls of every kind); sf_bulk_sync adds Id, SystemModstamp and IsDeleted to what it reads.
SYNC_FIELDS = ["Name", "External_Id__c", "Industry", "NumberOfEmployees", "AnnualRevenue", "Active__c",
               "Customer_Since__c", "Description", "Phone"]
SYNC_SOQL = "SELECT Id, %s FROM Account" % ", ".join(SYNC_FIELDS)
# What the sync reads (src/core/sync_plan.cpp): the same fields and its bookkeeping, deleted rows included.
SYNC_READ_SOQL = "SELECT Id, %s, SystemModstamp, IsDeleted FROM Account" % ", ".join(SYNC_FIELDS)
SYNC_COLUMNS = ", ".join(["id"] + [f.lower() for f in SYNC_FIELDS])
# The seeded rows' CreatedDate = LastModifiedDate = SystemModstamp: 1,000 values 20 minutes apart, the latest an
# hour before the run (data that was written over two weeks, not all at one instant), so the incremental run's
# overlap (5 minutes before the watermark) re-reads one value's rows: 0.1 % of them.
SYNC_STAMPS, SYNC_STAMP_STEP, SYNC_STAMP_LATEST = 1000, 1200, 3600
# The hard deletes are dated this many seconds before the emulator's clock (its clock skew), so that their minute
# is over when the incremental run asks /deleted/ (a window ends at the current minute; a deletion made in the
# run's own minute is found by the next run), as deletions made between two runs of a 5-minute schedule are.
SYNC_HARD_SKEW = 70


def sync_seed(b, n):
    """A fresh emulator with n Accounts (section 6's values, SystemModstamps spread over two weeks)."""
    b.emu_reset()
    if b.scale.get("q_page_size"):
        b.emu_call("POST", "/__emulator/config", {"query_page_size": b.scale["q_page_size"]})
    now = b.emu_call("GET", "/__emulator/clock")["now_epoch"]
    stamps = [time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(int(now) - SYNC_STAMP_LATEST - SYNC_STAMP_STEP * k))
              for k in range(SYNC_STAMPS)]
    values = dict(QUERY_SEED, CreatedDate={"cycle": stamps}, LastModifiedDate={"cycle": stamps},
                  SystemModstamp={"cycle": stamps})
    t0 = time.monotonic()
    r = b.emu_call("POST", "/__emulator/records/Account", {"generate": {"count": n, "values": values}})
    if r.get("count") != n:
        raise Failed("seeding: %s" % r)
    return time.monotonic() - t0, stamps[0], stamps[-1]


def sync_call(target, name):
    return "sf_bulk_sync('Account', '%s', server => 'emulator', fields => ARRAY[%s], name => '%s')" % (
        target, ", ".join("'%s'" % f for f in SYNC_FIELDS), name)


def request_kinds(reqs):
    """'METHOD path' (job ids as {id}, no query string) → count, for the notes."""
    kinds = {}
    for r in reqs:
        k = "%s %s" % (r["method"], re.sub(r"/(750|7nd|01g)[A-Za-z0-9-]+", "/{id}", r["path"]))
        kinds[k] = kinds.get(k, 0) + 1
    return ", ".join("%s ×%d" % (k, v) if v > 1 else k for k, v in sorted(kinds.items()))


def sync_job(b, label, call, name, table, function):
    """One timed job (a sync run or a query), the worker's private memory sampled, the emulator's split."""
    log("8. mirror: %s" % label)
    wpid = b.worker_pid()
    r0 = proc_status(wpid).get("RssAnon") if wpid else None  # what earlier jobs left the worker holding
    with MemSampler() as sampler:
        r = run_timed_job(b, call, name, sampler, count_table=table, function=function)
    r["worker_anon_kb"] = sampler.peak_anon.get("worker", 0)
    r["worker_anon_start_kb"] = r0
    r["split"] = query_server_split(b, r["seq"], seen_jobs_only=True)
    reqs = [q for q in b.emu_requests_since(r["seq"]) if not q.get("admin")]
    r["requests"], r["request_kinds"] = len(reqs), request_kinds(reqs)
    r["label"] = label
    return r


def sync_state(b, job):
    """The sf_bulk_syncs row whose last run is job."""
    out = b.psql("SELECT last_kind, coalesce(rows_inserted, -1), coalesce(rows_updated, -1), "
                 "coalesce(rows_deleted, -1), watermark, lag, coalesce(last_reason, '') FROM sf_bulk_syncs "
                 "WHERE last_job = %d;" % job).strip()
    if not out:
        raise Failed("sf_bulk_syncs has no row whose last_job is %d" % job)
    f = out.split("|", 6)
    st = dict(kind=f[0], inserted=int(f[1]), updated=int(f[2]), deleted=int(f[3]), watermark=f[4], lag=f[5],
              reason=f[6])
    try:  # the run's own record (not part of the interface: details for the notes only)
        d = b.psql("SELECT since, coalesce(array_length(deleted_ids, 1), 0), deleted_until FROM sf_bulk.sync_runs "
                   "WHERE job_id = %d;" % job).strip()
        if d:
            st["since"], st["deleted_ids"], st["deleted_until"] = d.split("|")
    except Failed:
        pass
    return st


def sync_changes(b, table, n):
    """1 % of the rows updated (a number, a picklist and a date), some deleted into the recycle bin, some hard
    deleted (gone from queryAll; only /deleted/ knows them; dated SYNC_HARD_SKEW seconds back), some inserted,
    through the emulator's admin API after its clock moved 5 s on. The ids come from `table` (a full copy): row k in
    id order (1, 2, ...) is updated when k % 100 = 50, deleted when k % 2000 = 25, hard deleted when
    k % 2000 = 1025; none of them has the latest seeded SystemModstamp (k % 1000 = 1: the generator's first record
    takes a cycle's first value), so the incremental run's overlap re-reads those rows unchanged."""
    rows = b.psql("SELECT k %% 2000, id FROM (SELECT id, row_number() OVER (ORDER BY id) AS k FROM %s) s "
                  "WHERE k %% 100 = 50 OR k %% 2000 IN (25, 1025) ORDER BY k;" % table).split()
    upd, soft, hard = [], [], []
    for line in rows:
        k, rid = line.split("|")
        (soft if k == "25" else hard if k == "1025" else upd).append(rid)
    n_new = max(3, n // 1000)
    b.emu_call("POST", "/__emulator/clock", {"advance_seconds": 5})
    t0 = time.monotonic()
    for i in range(0, len(upd), 5000):
        b.emu_call("PATCH", "/__emulator/records/Account", {"records": [
            {"Id": rid, "NumberOfEmployees": 900000 + i + j, "Industry": "Technology", "Customer_Since__c": "2025-01-15"}
            for j, rid in enumerate(upd[i:i + 5000])]})
    if soft:
        b.emu_call("POST", "/__emulator/records/Account/delete", {"ids": soft})
    if hard:  # dated 70 s back: /deleted/ covers whole minutes up to the current one (see SYNC_HARD_SKEW)
        b.emu_call("POST", "/__emulator/clock", {"skew_seconds": SYNC_HARD_SKEW, "skew_writes": 1})
        b.emu_call("POST", "/__emulator/records/Account/delete", {"ids": hard, "hard": True})
    new = b.emu_call("POST", "/__emulator/records/Account", [
        {"Name": "New account %d" % i, "External_Id__c": "N%d" % i, "Industry": "Banking", "NumberOfEmployees": i,
         "Customer_Since__c": "2025-01-15", "Description": 'Added, "new"\nrow %d' % i} for i in range(1, n_new + 1)])
    return dict(updated=upd, soft=soft, hard=hard, inserted=new["ids"], seconds=time.monotonic() - t0,
                clock=b.emu_call("GET", "/__emulator/clock")["now"])


def sync_diff(b, a, c):
    """How table a differs from table c on the mirrored columns: ids only in a, ids only in c, common ids whose
    values differ."""
    only_a = b.psql("SELECT id FROM %s EXCEPT SELECT id FROM %s ORDER BY 1;" % (a, c)).split()
    only_c = b.psql("SELECT id FROM %s EXCEPT SELECT id FROM %s ORDER BY 1;" % (c, a)).split()
    differ = int(b.value("SELECT count(*) FROM (SELECT %s FROM %s WHERE id IN (SELECT id FROM %s) EXCEPT "
                         "SELECT %s FROM %s) d;" % (SYNC_COLUMNS, a, c, SYNC_COLUMNS, c)))
    return only_a, only_c, differ


def fmt_job(r):
    return "%s (client %s)" % (fmt_s(r["wall"]), fmt_s(r["wall"] - r["split"]["server"]))


def fmt_ratio(a, c):
    client = (a["wall"] - a["split"]["server"]) / max(1e-9, c["wall"] - c["split"]["server"])
    return a["wall"] / c["wall"], "%.3f (client %.3f)" % (a["wall"] / c["wall"], client)


def sync_note(b, r):
    t_first = r["phases"][0][0] if r["phases"] else 0
    b.notes.append("8: %s: job %d, call %.2f s, %s rows loaded, %d pages, %d bytes, %s API calls (the job's count), job started → "
                   "finished %.2f s, worker peak RssAnon %s (%s at the start); %s; requests: %s; phases: %s" % (
                       r["label"], r["job"], r["call"], format(r["rows_loaded"], ",") if r["rows_loaded"] >= 0 else
                       "?", r["pages"], r["bytes"], r["api_calls"], r["job_span"],
                       fmt_mb(r["worker_anon_kb"]), fmt_mb(r["worker_anon_start_kb"]) if r["worker_anon_start_kb"]
                       is not None else "no worker", fmt_split(r["split"]), r["request_kinds"], ", ".join(
                           "%.2f s %s%s" % (t - t_first, st, " (%s)" % ph if ph else "") for t, st, ph in r["phases"])))


def section_sync(b):
    n = b.scale["sync_rows"]
    repeats = b.scale["sync_repeats"]
    big = format(n, ",")
    sec = "8 mirror"
    nf = len(SYNC_FIELDS)
    log("8. mirror: seeding %s Accounts" % big)
    seed_s, latest, earliest = sync_seed(b, n)
    b.notes.append("8: seeding %s Accounts (admin generate, section 6's values; CreatedDate = LastModifiedDate = "
                   "SystemModstamp cycling through %d values from %s to %s, %d minutes apart) %.1f s; the emulator "
                   "is reset once: every run of this section reads the same data (the changes of step 2 aside)" % (
                       big, SYNC_STAMPS, earliest, latest, SYNC_STAMP_STEP // 60, seed_s))
    tables = ["s_mirror", "q_reload", "q_read"] + ["%s_%d" % (t, i) for i in range(repeats)
                                                    for t in ("s_full", "q_full", "q_read", "s_reload")]
    b.psql("DROP TABLE IF EXISTS %s;" % ", ".join(tables))
    tag = time.monotonic_ns()
    state = {}

    def query(label, soql, table, extra="", mode="replace"):
        name = "bench-sync-q-%s-%d" % (table, time.monotonic_ns())
        r = sync_job(b, label, "sf_bulk_query($s$%s$s$, target => '%s', server => 'emulator', mode => '%s', "
                     "name => '%s'%s)" % (soql, table, mode, name, extra), name, table, "sf_bulk_query")
        sync_note(b, r)
        return r

    def sync(label, table, kind):
        if "missing" in state:
            return None
        name = "bench-sync-%s-%d-%d" % (table, tag, time.monotonic_ns())
        try:
            r = sync_job(b, label, sync_call(table, name), name, table, "sf_bulk_sync")
        except NotAvailable as e:
            state["missing"] = str(e)
            return None
        r["state"] = sync_state(b, r["job"])
        if r["state"]["kind"] != kind:
            raise Failed("sync job %d into %s ran %s, expected %s (%s)" % (
                r["job"], table, r["state"]["kind"], kind, r["state"]["reason"]))
        sync_note(b, r)
        return r

    def best(runs):
        runs = [r for r in runs if r is not None]
        return min(runs, key=lambda r: r["wall"]) if runs else None

    def runs_note(what, runs):
        if len(runs) > 1 and all(runs):
            b.notes.append("8: %s: runs %s; the table shows the best" % (what, ", ".join(fmt_s(r["wall"]) for r in runs)))

    # A warm-up, not compared: sf_bulk_query of what the sync reads, so that the worker has started and holds a
    # token and the describe before the compared runs.
    read = query("warm-up: sf_bulk_query of what the sync reads (queryAll, + SystemModstamp, IsDeleted)",
                 SYNC_READ_SOQL, "q_read", ", all_rows => true")
    if read["loaded"] != n:
        raise Failed("q_read: %d rows, expected %d" % (read["loaded"], n))
    b.psql("DROP TABLE q_read;")

    # 1. The first run against sf_bulk_query of the same fields, and of the same columns as the sync reads (the
    # fields + SystemModstamp and IsDeleted, queryAll: the same bytes), each into a table it creates; in turns,
    # best of `repeats`. The first sync's table is the mirror of steps 2 and 3.
    fulls, q1s, qrs = [], [], []
    for i in range(repeats):
        steps = [lambda: fulls.append(sync("first sf_bulk_sync run (full) into a new table, run %d" % (i + 1),
                                           "s_mirror" if i == 0 else "s_full_%d" % i, "full")),
                 lambda: q1s.append(query("sf_bulk_query(…, mode => 'replace') of the same fields into a new table, "
                                          "run %d" % (i + 1), SYNC_SOQL, "q_full_%d" % i)),
                 lambda: qrs.append(query("sf_bulk_query(…, mode => 'replace', all_rows => true) of what the sync "
                                          "reads into a new table, run %d" % (i + 1), SYNC_READ_SOQL, "q_read_%d" % i,
                                          ", all_rows => true"))]
        for step in (steps if i % 2 == 0 else steps[::-1]):
            step()
    for r in fulls + q1s + qrs:
        if r is not None and r["loaded"] != n:
            raise Failed("%s: %d rows, expected %d" % (r["label"], r["loaded"], n))
    b.psql("DROP TABLE %s;" % ", ".join("q_read_%d" % i for i in range(repeats)))
    full, q1, qr = best(fulls), best(q1s), best(qrs)
    runs_note("first sync run", fulls)
    runs_note("sf_bulk_query of the same fields into a new table", q1s)
    runs_note("sf_bulk_query of what the sync reads into a new table", qrs)
    label = "%s Accounts (Id + %d fields), first run: sf_bulk_sync (full, queryAll) → sf_bulk_wait vs " \
            "sf_bulk_query(…, mode => 'replace') of the same fields, both into a new table (best of %d; wall, " \
            "client = wall − server time)" % (big, nf, repeats)
    label_r = "the same first run vs sf_bulk_query(…, mode => 'replace', all_rows => true) of what the sync reads " \
              "(the fields + SystemModstamp, IsDeleted: the same CSV), into a new table"
    if full is not None:
        ratio, text = fmt_ratio(full, q1)
        b.add(sec, label, fmt_job(full), fmt_job(q1), text, "≈ 1.0 (≤ 1.1)", yes(ratio <= 1.1))
        b.add(sec, label_r, fmt_job(full), fmt_job(qr), fmt_ratio(full, qr)[1], "", "")
    else:
        na = "not available (%s)" % state["missing"]
        b.add(sec, label, na, fmt_job(q1), "", "≈ 1.0 (≤ 1.1)", "not measured")
        b.add(sec, label_r, na, fmt_job(qr), "", "", "")

    def load(r):
        return fmt_s(r["load"]) if r is not None and "load" in r else "?"
    b.add(sec, "load step ('loading' phase → completed, polled every 10 ms) of those best runs: the sync / "
          "sf_bulk_query of the same fields / sf_bulk_query of what the sync reads",
          " / ".join(load(r) for r in (full, q1, qr)), "", "", "", "")

    # 2. 1 % changed in Salesforce.
    log("8. mirror: changing 1 % of the rows in the emulator")
    ch = sync_changes(b, "s_mirror" if full is not None else "q_full_0", n)
    nu, ns, nh, ni = len(ch["updated"]), len(ch["soft"]), len(ch["hard"]), len(ch["inserted"])
    live = n - ns - nh + ni
    what = "%s updated, %s deleted (recycle bin), %s hard deleted, %s inserted" % (
        format(nu, ","), format(ns, ","), format(nh, ","), format(ni, ","))
    b.notes.append("8: changes through the admin API after the emulator's clock moved 5 s on (now %s): %s "
                   "(NumberOfEmployees, Industry and Customer_Since__c of each updated row; the hard deletes dated "
                   "%d s back, in a minute /deleted/ covers) in %.1f s" % (ch["clock"], what, SYNC_HARD_SKEW,
                                                                         ch["seconds"]))

    # 3. The incremental run, then the reloads it is compared with: a full sync into a new table and
    # sf_bulk_query replacing the rows of a full table (what a nightly reload does), alternating, best of `repeats`.
    inc = sync("incremental sf_bulk_sync run", "s_mirror", "incremental")
    b.psql("CREATE TABLE q_reload AS SELECT * FROM q_full_0; ALTER TABLE q_reload ADD PRIMARY KEY (id); "
           "VACUUM ANALYZE q_reload;")
    reloads, q2s = [], []
    for i in range(repeats):
        pair = [lambda: reloads.append(sync("reload: first sf_bulk_sync run (full) into another new table, run %d" % (
                    i + 1), "s_reload_%d" % i, "full")),
                lambda: q2s.append(query("reload: sf_bulk_query(…, mode => 'replace') into a full table (its %s old "
                                         "rows deleted), run %d" % (big, i + 1), SYNC_SOQL, "q_reload"))]
        for step in (pair if i % 2 == 0 else pair[::-1]):
            step()
    for r in q2s:
        if r["loaded"] != live:
            raise Failed("%s: %d rows, expected %d" % (r["label"], r["loaded"], live))
    reload_sync, q2 = best(reloads), best(q2s)
    runs_note("reload, full sync into a new table", reloads)
    runs_note("reload, sf_bulk_query replacing a full table's rows", q2s)

    label = "after 1 %% changed (%s): incremental sf_bulk_sync run vs" % what
    if inc is None:
        na = "not available (%s)" % state["missing"]
        b.add(sec, label + " a full sync into a new table", na, "not available", "", "≤ 0.05", "not measured")
        b.add(sec, label + " sf_bulk_query(…, mode => 'replace') replacing the %s rows of a full table (best of %d)" % (
            big, repeats), na, fmt_job(q2), "", "≤ 0.05", "not measured")
        return
    ratio, text = fmt_ratio(inc, reload_sync)
    b.add(sec, label + " a full sync into a new table (best of %d; wall, client = wall − server time)" % repeats,
          fmt_job(inc), fmt_job(reload_sync), text, "≤ 0.05", yes(ratio <= 0.05))
    ratio, text = fmt_ratio(inc, q2)
    b.add(sec, label + " sf_bulk_query(…, mode => 'replace') replacing the %s rows of a full table (best of %d)" % (
        big, repeats), fmt_job(inc), fmt_job(q2), text, "≤ 0.05", yes(ratio <= 0.05))
    st = inc["state"]
    b.add(sec, "incremental run: rows inserted / updated / deleted (sf_bulk_syncs) vs the changes made",
          "%s / %s / %s" % tuple(format(x, ",") for x in (st["inserted"], st["updated"], st["deleted"])),
          "%s / %s / %s" % (format(ni, ","), format(nu, ","), format(ns + nh, ",")), "", "equal",
          yes((st["inserted"], st["updated"], st["deleted"]) == (ni, nu, ns + nh)))
    b.add(sec, "API requests in the emulator's log (the job's api_calls): incremental / full sync / sf_bulk_query "
          "reload", " / ".join("%d (%s)" % (r["requests"], r["api_calls"]) for r in (inc, reload_sync, q2)), "", "",
          "", "")
    def mem(r):
        start = r["worker_anon_start_kb"]
        return fmt_mb(r["worker_anon_kb"]) + (" (%s at the start)" % fmt_mb(start) if start is not None else "")
    b.add(sec, "peak private memory (RssAnon) of the worker: incremental / full sync / sf_bulk_query reload (what "
          "the worker held when the run began: earlier jobs' memory it kept)", " / ".join(
              mem(max(rs, key=lambda r: r["worker_anon_kb"])) for rs in ([inc], reloads, q2s)), "", "", "", "")
    slack = inc["split"].get("slack")
    if slack is not None:
        b.notes.append("8: the incremental run waited %.2f s from JobComplete to its first page request (the worker "
                       "polls every 1 s); without that wait it would take %.2f s, %.3f of the full sync's and %.3f of "
                       "sf_bulk_query's reload (derived, not measured)" % (
                           slack, inc["wall"] - slack, (inc["wall"] - slack) / reload_sync["wall"],
                           (inc["wall"] - slack) / q2["wall"]))
    b.notes.append("8: sf_bulk_syncs after the incremental run: last_kind %s (%s), watermark %s, lag %s; read "
                   "SystemModstamp >= %s, %s id(s) from /deleted/ (covered until %s)" % (
                       st["kind"], st["reason"], st["watermark"], st["lag"], st.get("since", "?"),
                       st.get("deleted_ids", "?"), st.get("deleted_until", "?")))

    # The mirror is exact: the incremental mirror equals a fresh full sync, which equals sf_bulk_query's reload.
    rs_q = sync_diff(b, "s_reload_0", "q_reload")
    if any(rs_q[:2]) or rs_q[2]:
        raise Failed("the full sync and sf_bulk_query disagree after the changes: %d id(s) only in the sync "
                     "(%s), %d only in the query (%s), %d row(s) with other values" % (
                         len(rs_q[0]), " ".join(rs_q[0][:5]), len(rs_q[1]), " ".join(rs_q[1][:5]), rs_q[2]))
    only_m, only_r, differ = sync_diff(b, "s_mirror", "s_reload_0")
    hard = set(ch["hard"])
    lagging = [i for i in only_m if i in hard]
    if lagging:
        b.notes.append("8: %d of the %d hard-deleted rows are still in the mirror after the incremental run (%s …): "
                       "/deleted/ had not covered their deletion yet; a later run removes them" % (
                           len(lagging), nh, " ".join(lagging[:3])))
    if len(only_m) != len(lagging) or only_r or differ:
        raise Failed("the incremental mirror differs from a full reload: %d extra id(s) (%s), %d missing (%s), %d "
                     "row(s) with other values" % (len(only_m) - len(lagging), " ".join(
                         [i for i in only_m if i not in hard][:5]), len(only_r), " ".join(only_r[:5]), differ))
    b.notes.append("8: the mirror after the incremental run equals the full reload (%s rows) on id and the %d fields%s" % (
        format(live, ","), nf, ", but for the hard deletes above" if lagging else ""))

    # A scheduled run that finds nothing new (the overlap's rows aside).
    idle = sync("a second incremental run, nothing changed since", "s_mirror", "incremental")
    st = idle["state"]
    b.add(sec, "a second incremental run, nothing changed since: wall; rows inserted / updated / deleted; API "
          "requests (the job's api_calls)", fmt_job(idle), "%s / %s / %s; %d (%s)" % (
              format(st["inserted"], ","), format(st["updated"], ","), format(st["deleted"], ","), idle["requests"],
              idle["api_calls"]), "", "", "")
    left = int(b.value("SELECT count(*) FROM s_mirror;"))
    if left != live:
        raise Failed("the mirror holds %d rows after the second incremental run, expected %d" % (left, live))


def machine():
    model = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = 0
    for line in open("/proc/meminfo"):
        if line.startswith("MemTotal"):
            mem = int(line.split()[1])
    pg = subprocess.run(["psql", "-X", "-At", "-d", "postgres", "-c", "SHOW server_version"], capture_output=True,
                        text=True).stdout.strip()
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    load = open("/proc/loadavg").read().split()[:3]
    return "%d × %s, %.1f GiB RAM, %s %s, PostgreSQL %s, Node %s; load average at the end %s" % (
        os.cpu_count(), model, mem / 1024 / 1024, platform.system(), platform.release(), pg, node, " ".join(load))


PG_CONFIG = os.environ.get("PG_CONFIG", os.path.join(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"), "pg_config"))


def build_id(root):
    def git(*args):
        p = subprocess.run(["git", "-C", root] + list(args), capture_output=True, text=True)
        return p.stdout.strip() if p.returncode == 0 else ""
    head = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = [l for l in git("status", "--porcelain", "--untracked-files=no", "--", "src", "extension",
                            "Makefile").splitlines() if l.strip()]
    so = subprocess.run([PG_CONFIG, "--pkglibdir"], capture_output=True,
                        text=True).stdout.strip() + "/sf_bulk.so"
    when = time.strftime("%H:%M UTC", time.gmtime(os.path.getmtime(so))) if os.path.exists(so) else "?"

    def same(a, b):
        try:
            return open(a, "rb").read() == open(b, "rb").read()
        except OSError:
            return False
    share = subprocess.run([PG_CONFIG, "--sharedir"], capture_output=True,
                           text=True).stdout.strip()
    match = same(so, os.path.join(root, "sf_bulk.so")) and same(
        os.path.join(share, "extension/sf_bulk--1.0.sql"), os.path.join(root, "extension/sf_bulk--1.0.sql"))
    return "commit %s%s; installed sf_bulk.so built %s; installed .so and install script %s this checkout" % (
        head, " + %d modified file(s) in src/extension" % len(dirty) if dirty else "", when,
        "match" if match else "DO NOT match (another checkout installed over them?)")


def render(b, started, commandline):
    out = []
    out.append("sf_bulk benchmark — scale `%s`, %s UTC, %.1f min" % (
        b.a.scale, time.strftime("%Y-%m-%d %H:%M", time.gmtime()), (time.monotonic() - started) / 60))
    out.append("")
    out.append("Machine: " + machine())
    out.append("Command: `%s`" % commandline)
    out.append("Build: " + (getattr(b, "build", None) or build_id(b.a.root)))
    out.append("")
    out.append("| section | measure | sf_bulk | reference | ratio | target | met |")
    out.append("|---|---|---|---|---|---|---|")
    for r in b.rows:
        out.append("| " + " | ".join(str(x) for x in r) + " |")
    out.append("")
    out.append("Notes:")
    for n in b.notes:
        out.append("- " + n)
    out.append("- every ratio is from this run; times are wall-clock; the worker polls every 1 s "
               "(poll_first_interval = poll_max_interval = 1s), jsforce every 1 s (pollInterval 1000); the "
               "emulator runs with processing_delay_ms 0 and is reset before each client's run")
    if b.failures:
        out.append("")
        out.append("FAILED steps: " + "; ".join("%s (%s)" % f for f in b.failures))
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", choices=sorted(SCALES), default="full")
    ap.add_argument("--work", required=True)
    ap.add_argument("--db", default="bench")
    ap.add_argument("--emulator-url", required=True)
    ap.add_argument("--emulator-pid", type=int, required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--sf-bin", default="")
    ap.add_argument("--out", required=True)
    ap.add_argument("--only", default="", help="comma-separated sections to run (1-8; 2-, 6- and 7- are "
                    "sections 2, 6 and 7 without their peers), for development")
    ap.add_argument("--commandline", default="bench/run")
    a = ap.parse_args()
    started = time.monotonic()
    b = Bench(a)
    only = set(a.only.split(",")) if a.only else {"1", "2", "3", "4", "5", "6", "7", "8"}
    b.no_peers = "2-" in only
    if b.no_peers:
        only.add("2")
    b.q_no_peers = "6-" in only
    if b.q_no_peers:
        only.add("6")
    b.fdw_no_peers = "7-" in only
    if b.fdw_no_peers:
        only.add("7")
    steps = [
        ("setup", lambda: setup(b)),
        ("5", lambda: section_overheads(b, "latency")),
        ("5", lambda: section_overheads(b, "waiting")),
        ("1", lambda: section_serialisation(b)),
        ("2", lambda: section_end_to_end(b)),
        ("4", lambda: section_store(b)),
        ("5", lambda: section_overheads(b, "emulator")),
        ("3", lambda: section_memory(b)),
        ("6", lambda: section_query(b)),
        ("7", lambda: section_fdw(b)),
        ("8", lambda: section_sync(b)),
        ("5", lambda: section_overheads(b, "preflight")),
        ("5", lambda: section_overheads(b, "idle")),
    ]
    loads = []
    for name, fn in steps:
        if name != "setup" and name not in only:
            continue
        loads.append(open("/proc/loadavg").read().split()[0])
        try:
            fn()
        except Exception as e:  # a failed step is reported, the rest still run
            b.fail(name, e)
            if name == "setup":
                break
    b.notes.append("1-minute load average at the start of each step: %s (2 cores; anything above ~1 during a "
                   "single-process step means other work shared the machine)" % ", ".join(loads))
    text = render(b, started, a.commandline)
    sys.stdout.write("\n" + text)
    with open(a.out, "w") as fh:
        fh.write(text)
    log("table written to %s" % a.out)
    return 1 if b.failures else 0


if __name__ == "__main__":
    sys.exit(main())
