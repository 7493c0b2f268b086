"""Shared machinery of the end-to-end integration suite: a throwaway preloaded PostgreSQL cluster, the Bulk
API 2.0 emulator, psql and admin-API helpers, and the base TestCase.

Standard library only. The runner (run_tests) calls Environment.start() once, runs the tests, and calls
Environment.stop() in a finally block, so both processes go away even when a test or the set-up fails.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
EMULATOR = os.path.join(ROOT, "test", "emulator", "sf_emulator")  # a package, run as a directory
PYTHON = "/usr/bin/python3"
PG_BIN = os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin")
PSQL = os.path.join(PG_BIN, "psql") if os.path.exists(os.path.join(PG_BIN, "psql")) else "psql"
DB = "integration"
with open(os.path.join(ROOT, "test", "emulator", "default_org.json")) as _fh:
    ORG = json.load(_fh)
API = "62.0"

# A run-unique prefix keeps every record of this run apart in the emulator's store.
RUN = "it%x" % int(time.time() * 1000)

# Request-log path patterns (trailing slash tolerated).
INGEST_BASE = r"^/services/data/v\d+\.0/jobs/ingest"
RE_CREATE = re.compile(INGEST_BASE + r"/?$")
RE_JOB = re.compile(INGEST_BASE + r"/([0-9A-Za-z]{15,18})/?$")
RE_PUT = re.compile(INGEST_BASE + r"/([0-9A-Za-z]{15,18})/batches/?$")
RE_ANY_JOB = re.compile(INGEST_BASE + r"/([0-9A-Za-z]{15,18})(?:/|$)")
RE_TOKEN = re.compile(r"^/services/oauth2/token/?$")


def log(msg):
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


def poll(fn, timeout, interval=0.05, what="condition"):
    """Calls fn until it returns a truthy value (returned) or `timeout` seconds pass (AssertionError)."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1f s waiting for %s" % (timeout, what))
        time.sleep(interval)


def sql_literal(s):
    return "'" + str(s).replace("'", "''") + "'"


class PsqlError(Exception):
    def __init__(self, rc, stdout, stderr):
        super().__init__("psql exited %d: %s" % (rc, stderr.strip()))
        self.rc, self.stdout, self.stderr = rc, stdout, stderr


# ------------------------------------------------------------------------------------------------ emulator
class Emulator:
    def __init__(self, workdir):
        self.workdir = workdir
        self.proc = None
        self.url = None

    def start(self):
        url_file = os.path.join(self.workdir, "emulator.url")
        self.log_path = os.path.join(self.workdir, "emulator.log")
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([PYTHON, EMULATOR, "--host", "127.0.0.1", "--port", "0", "--url-file", url_file],
                                     stdout=self._log, stderr=subprocess.STDOUT)

        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError("emulator exited: %s" % open(self.log_path).read())
            return os.path.exists(url_file) and os.path.getsize(url_file) > 0
        poll(ready, 15, 0.05, "the emulator to listen")
        with open(url_file) as fh:
            self.url = fh.read().strip()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc:
            self._log.close()

    def http(self, method, path, body=None, headers=None, timeout=30):
        data = None
        hdrs = dict(headers or {})
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def admin(self, method, path, body=None):
        status, data = self.http(method, "/__emulator" + path, body)
        if status >= 300:
            raise RuntimeError("emulator admin %s %s -> %d %s" % (method, path, status, data[:300]))
        return json.loads(data.decode()) if data else None

    # convenience
    def log_seq(self):
        return self.admin("GET", "/requests?since=%d" % (1 << 62))["last_seq"]

    def requests(self, since=0):
        return self.admin("GET", "/requests?since=%d" % since)["requests"]

    def records(self, obj="Lead"):
        return self.admin("GET", "/records/%s" % obj)["records"]

    def jobs(self):
        return {j["id"]: j for j in self.admin("GET", "/jobs")["jobs"]}

    def config(self, **kv):
        return self.admin("POST", "/config", kv)

    def fault(self, spec):
        return self.admin("POST", "/faults", spec)

    def fresh_token(self):
        """A newly issued token: the org's fixed one may have been expired by a test's fault."""
        return self.admin("POST", "/tokens", {"ttl_seconds": 600})["access_token"]

    def unprocessed_rows(self, sf_job_id):
        """Rows of the emulator's unprocessedrecords file for a job (header excluded)."""
        status, data = self.http("GET", "/services/data/v%s/jobs/ingest/%s/unprocessedrecords/" % (API, sf_job_id),
                                 headers={"Authorization": "Bearer " + self.fresh_token()})
        if status != 200:
            raise RuntimeError("unprocessedrecords -> %d %s" % (status, data[:300]))
        import csv
        import io
        rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
        return rows[1:] if rows else []


# ------------------------------------------------------------------------------------------------ cluster
def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def as_postgres(argv):
    return (["runuser", "-u", "postgres", "--"] + argv) if os.getuid() == 0 else argv


class Cluster:
    def __init__(self, workdir):
        self.workdir = workdir
        self.pgdata = os.path.join(workdir, "data")
        self.logfile = os.path.join(workdir, "server.log")
        self.port = free_port()
        self.started = False

    def start(self, extra_conf=()):
        subprocess.run(as_postgres([os.path.join(PG_BIN, "initdb"), "-D", self.pgdata, "-A", "trust", "-U",
                                    "postgres", "-E", "UTF8", "--locale=C.UTF-8"]),
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)
        conf = [
            "port = %d" % self.port,
            "listen_addresses = ''",
            "unix_socket_directories = '%s'" % self.workdir,
            "shared_preload_libraries = 'sf_bulk'",
            "max_worker_processes = 32",
            "fsync = off",
            "log_line_prefix = '%m [%p] %b '",
            "sf_bulk.allow_http_loopback = on",
            "sf_bulk.poll_first_interval = 50ms",
            "sf_bulk.poll_max_interval = 500ms",
            # A held org's /limits is read again after this (default 5 min): the tests move the emulator's usage
            # counters at will, and the next test must not wait minutes for a reading an earlier one left.
            "sf_bulk.limits_refresh = 1s",
        ] + list(extra_conf)
        with open(os.path.join(self.pgdata, "postgresql.conf"), "a") as fh:
            fh.write("\n".join(conf) + "\n")
        # The log lives outside PGDATA but in the work dir, which the postgres account owns.
        subprocess.run(as_postgres([os.path.join(PG_BIN, "pg_ctl"), "-D", self.pgdata, "-l", self.logfile, "-w",
                                    "-t", "60", "start"]),
                       check=True, stdout=subprocess.DEVNULL, timeout=90)
        self.started = True

    def stop(self):
        if self.started and os.path.exists(os.path.join(self.pgdata, "postmaster.pid")):
            subprocess.run(as_postgres([os.path.join(PG_BIN, "pg_ctl"), "-D", self.pgdata, "-m", "fast", "-w", "-t",
                                        "30", "stop"]),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        self.started = False

    def pg_ctl(self, *args, timeout=90):
        subprocess.run(as_postgres([os.path.join(PG_BIN, "pg_ctl"), "-D", self.pgdata] + list(args)),
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=timeout)

    def restart(self, mode):
        """Stops the cluster in `mode` (smart, fast, immediate) and starts it again."""
        self.pg_ctl("-m", mode, "-w", "-t", "60", "stop")
        self.pg_ctl("-l", self.logfile, "-w", "-t", "60", "start")
        self.wait_ready()

    def kill(self, pid, sig=signal.SIGKILL):
        """Sends `sig` to a server process. The postmaster answers a SIGKILLed child with a crash restart:
        every session ends, shared memory is reinitialised, then connections are accepted again."""
        ENV.expected_kills.add(int(pid))
        os.kill(int(pid), sig)

    def wait_ready(self, timeout=60):
        def ready():
            p = self.psql("SELECT NOT pg_is_in_recovery();", check=False, db="postgres")
            return p.returncode == 0 and p.stdout.strip() == "t"
        poll(ready, timeout, 0.2, "the cluster to accept connections again")

    def worker_pids(self):
        return [int(x) for x in self.value(
            "SELECT pid FROM pg_stat_activity WHERE backend_type = 'sf_bulk worker'").split()]

    def stop_workers(self):
        """Terminates the sf_bulk workers and waits until those processes are gone. (With unfinished jobs the
        launcher starts a new worker at once: only the old pids are waited for.)"""
        old = set(self.worker_pids())
        for pid in old:
            self.psql("SELECT pg_terminate_backend(%d);" % pid, check=False)
        poll(lambda: not (old & set(self.worker_pids())), 10, 0.05, "the worker to exit")

    def server_log(self):
        try:
            with open(self.logfile, encoding="utf-8", errors="replace") as fh:
                return fh.read()
        except OSError:
            return ""

    def spool_files(self):
        d = os.path.join(self.pgdata, "sf_bulk_spool")
        try:
            return sorted(os.listdir(d))
        except FileNotFoundError:
            return []

    def psql_argv(self, user="postgres", db=DB, verbose=False):
        argv = [PSQL, "-X", "-At", "-v", "ON_ERROR_STOP=1", "-h", self.workdir, "-p", str(self.port), "-U", user,
                "-d", db]
        if verbose:
            argv += ["-v", "VERBOSITY=verbose"]
        return argv

    def psql(self, sql, user="postgres", db=DB, timeout=120, check=True, verbose=False):
        """Runs a psql script; returns stdout (raises PsqlError on failure when check)."""
        p = subprocess.run(self.psql_argv(user, db, verbose) + ["-f", "-"], input=sql, capture_output=True,
                           text=True, timeout=timeout, env=dict(os.environ, PGAPPNAME="sf_bulk_integration",
                                                               PGTZ="UTC"))
        if check and p.returncode != 0:
            raise PsqlError(p.returncode, p.stdout, p.stderr)
        return p if not check else p.stdout

    def psql_fail(self, sql, user="postgres", timeout=120):
        """Runs a psql script that must fail; returns the PsqlError (stderr with SQLSTATE)."""
        p = self.psql(sql, user=user, timeout=timeout, check=False, verbose=True)
        if p.returncode == 0:
            raise AssertionError("expected an error, psql succeeded with output: %r" % p.stdout)
        return PsqlError(p.returncode, p.stdout, p.stderr)

    def value(self, sql, user="postgres"):
        return self.psql(sql, user=user).strip()

    def json(self, sql, user="postgres"):
        """Runs one SELECT and returns its rows as a list of dicts."""
        out = self.psql("SELECT coalesce(json_agg(q), '[]') FROM (%s) q;" % sql.rstrip().rstrip(";"), user=user)
        return json.loads(out)


class Environment:
    def __init__(self, keep=False):
        self.keep = keep
        self.workdir = tempfile.mkdtemp(prefix="sf_bulk_it.")
        os.chmod(self.workdir, 0o755)
        if os.getuid() == 0:
            shutil.chown(self.workdir, "postgres", "postgres")
        self.emulator = Emulator(self.workdir)
        self.cluster = Cluster(self.workdir)
        self.expected_kills = set()  # server pids a test SIGKILLed on purpose (the crash watch allows those)

    def start(self):
        self.emulator.start()
        self.cluster.start()
        c = self.cluster
        c.psql("CREATE DATABASE %s;" % DB, db="postgres")
        c.psql("""
            CREATE EXTENSION sf_bulk;
            CREATE SERVER emu FOREIGN DATA WRAPPER salesforce OPTIONS (login_url %s);
            CREATE USER MAPPING FOR postgres SERVER emu OPTIONS (%s);
            """ % (sql_literal(self.emulator.url), mapping_options()))
        self.db_oid = int(c.value("SELECT oid FROM pg_database WHERE datname = current_database();"))
        self.default_config = self.emulator.admin("GET", "/config")

    def stop(self):
        try:
            self.cluster.stop()
        finally:
            self.emulator.stop()
            if not self.keep:
                shutil.rmtree(self.workdir, ignore_errors=True)


def mapping_options(password=None):
    return ("auth 'password', client_id %s, client_secret %s, username %s, password %s"
            % (sql_literal(ORG["client_id"]), sql_literal(ORG["client_secret"]), sql_literal(ORG["user"]["username"]),
               sql_literal(password if password is not None else ORG["user"]["password"])))


ENV = None  # set by run_tests


# ------------------------------------------------------------------------------------------------ base test
class IntegrationTest(unittest.TestCase):
    """Each test: its own run-unique external ids; the emulator's faults and config restored afterwards; every
    job it left unfinished aborted and awaited (bounded), so the next test starts with an idle worker."""

    @property
    def pg(self):
        return ENV.cluster

    @property
    def emu(self):
        return ENV.emulator

    def setUp(self):
        self.emu.admin("DELETE", "/faults")
        self.emu.admin("POST", "/config", ENV.default_config)
        self.tag = "%s-%s" % (RUN, self._testMethodName.replace("test_", "")[:20])
        self.mark = self.emu.log_seq()

    def tearDown(self):
        self.emu.admin("DELETE", "/faults")
        self.emu.admin("POST", "/config", ENV.default_config)
        self.emu.admin("POST", "/usage", {"api": 0})
        self.end_open_jobs()

    def end_open_jobs(self):
        def open_jobs():
            return [r["id"] for r in self.pg.json("SELECT id FROM sf_bulk.jobs WHERE state IN ('queued', 'running')")]
        jobs = open_jobs()
        if not jobs:
            return
        for job in jobs:
            self.pg.psql("SELECT 1 FROM sf_bulk_abort(%d);" % job, check=False)
        try:
            poll(lambda: not open_jobs(), 5, 0.1, "left-over jobs %s to end after an abort" % jobs)
            return
        except AssertionError as e:
            log("tearDown of %s: %s; restarting the worker so that it resumes them" % (self.id(), e))
        # A worker that ignores the abort (e.g. while it waits out a backoff) would hold a parallel slot for the
        # rest of the run. A new worker resumes the chunks from their committed state, abort flag included.
        self.pg.stop_workers()
        self.pg.psql("""SELECT sf_bulk_insert('Lead', $$SELECT 'kick' AS "LastName", 'Kick' AS "Company"$$);""",
                     check=False)
        try:
            poll(lambda: not open_jobs(), 20, 0.1, "left-over jobs %s to end after a worker restart" % jobs)
        except AssertionError as e:
            log("tearDown of %s: %s" % (self.id(), e))

    # -- helpers --------------------------------------------------------------------------------------------
    def enqueue(self, sql, user="postgres"):
        """Runs `sql` (one SELECT sf_bulk_...(...)) in its own transaction; returns the job id."""
        return int(self.pg.psql(sql.rstrip().rstrip(";") + ";", user=user).strip().splitlines()[-1])

    def wait(self, job, timeout=60, user="postgres"):
        rows = self.pg.json("SELECT * FROM sf_bulk_wait(%d, '%d s')" % (job, timeout), user=user)
        return rows[0]

    def job_row(self, job, user="postgres"):
        rows = self.pg.json("SELECT * FROM sf_bulk_jobs WHERE id = %d" % job, user=user)
        return rows[0] if rows else None

    def chunks(self, job):
        return self.pg.json("SELECT * FROM sf_bulk.chunks WHERE job_id = %d ORDER BY chunk_no" % job)

    def store_by(self, field, prefix, obj="Lead"):
        """Emulator records (not deleted) whose `field` starts with prefix, as {value: [records]}."""
        out = {}
        for r in self.emu.records(obj):
            v = r.get(field)
            if v is not None and v.startswith(prefix) and not r.get("deleted"):
                out.setdefault(v, []).append(r)
        return out

    def spool_for(self, job):
        prefix = "db%d_job%d_" % (ENV.db_oid, job)
        return [f for f in self.pg.spool_files() if f.startswith(prefix)]

    def new_requests(self):
        return self.emu.requests(self.mark)

    def assertCompleted(self, row):
        self.assertEqual(row["state"], "completed", "job did not complete: %r" % (row,))


class PausedWorker:
    """For crash tests, mixed in before the test base class: sf_bulk.test_pause_at makes the worker hold still
    after a named step, so that a test can kill it exactly there; tearDown clears it again."""

    def set_pause(self, step):
        self.pg.psql("ALTER SYSTEM SET sf_bulk.test_pause_at = %s; SELECT pg_reload_conf();" % sql_literal(step)
                     if step else "ALTER SYSTEM RESET sf_bulk.test_pause_at; SELECT pg_reload_conf();")
        # New backends fork from the postmaster: once one shows the value, the postmaster has it. A running
        # worker is replaced so that the next one starts with it for sure.
        poll(lambda: self.pg.value("SHOW sf_bulk.test_pause_at") == step, 10, 0.05, "the setting to apply")
        self.pg.stop_workers()

    def tearDown(self):
        if self.pg.value("SHOW sf_bulk.test_pause_at"):
            self.set_pause("")
        super().tearDown()
