"""The fault matrix: each fault of the emulator against one job, and what the job does about it. Every row ends
in completion or in a clear terminal state — never a hang — and every row sent is accounted for: in the
emulator's store exactly once when completed, and in sf_bulk's results (successful + failed + unprocessed = the
rows) whatever the outcome. The table is printed at the end of the run (run_tests -v shows it).
"""

import collections
import os
import re
import subprocess
import time

import harness
from harness import (ENV, ORG, PYTHON, EMULATOR, RE_PUT, IntegrationTest, free_port, log, mapping_options, poll,
                     sql_literal)

ROWS = 20

PUT = r"/jobs/ingest/[^/]+/batches/?$"
CREATE = r"/jobs/ingest/?$"
JOB = r"/jobs/ingest/[0-9A-Za-z]+/?$"
TOKEN = r"/services/oauth2/token/?$"

# name, faults, emulator config, sf_bulk settings, expected state, expected error text, Salesforce jobs replaced
# (-1: at least one)
MATRIX = [
    ("5xx burst on create", [{"method": "POST", "path": CREATE, "status": 503, "count": 3}], {}, {},
     "completed", None, 0),
    ("5xx burst on upload", [{"method": "PUT", "path": PUT, "status": 500, "count": 2}], {}, {}, "completed", None, 2),
    ("5xx burst on polls", [{"method": "GET", "path": JOB, "status": 503, "count": 3}], {}, {}, "completed", None, 0),
    ("502 (HTML) on result download", [{"method": "GET", "path": r"/successfulResults/?$", "status": 502,
                                        "count": 2}], {}, {}, "completed", None, 0),
    ("429 with Retry-After", [{"method": "POST", "path": CREATE, "status": 429, "headers": {"Retry-After": "1"},
                               "count": 2}], {}, {}, "completed", None, 0),
    ("429 without Retry-After", [{"method": "PATCH", "path": JOB, "status": 429, "count": 2}], {}, {},
     "completed", None, 0),
    ("connection dropped mid-upload", [{"method": "PUT", "path": PUT, "action": "drop", "when": "request",
                                        "after_bytes": 200}], {}, {}, "completed", None, 1),
    ("connection reset after upload", [{"method": "PUT", "path": PUT, "action": "reset"}], {}, {}, "completed",
     None, 1),
    ("connection dropped mid-result download", [{"method": "GET", "path": r"/successfulResults/?$",
                                                 "action": "drop", "when": "response"}], {}, {}, "completed", None, 0),
    ("lost create response (500 after creating)", [{"method": "POST", "path": CREATE, "status": 500,
                                                    "after_processing": True}], {}, {}, "completed", None, 0),
    ("stall beyond the request timeout (poll)", [{"method": "GET", "path": JOB, "action": "stall", "ms": 3000}],
     {}, {"sf_bulk.request_timeout": "1s"}, "completed", None, 0),
    ("stall beyond the request timeout (close)", [{"method": "PATCH", "path": JOB, "action": "stall", "ms": 3000}],
     {}, {"sf_bulk.request_timeout": "1s"}, "completed", None, 0),
    ("token expiry mid-job", "expire_after_calls", {}, {}, "completed", None, 0),
    ("token endpoint down briefly", [{"method": "POST", "path": TOKEN, "status": 503, "count": 2}], {}, {},
     "completed", None, 0),
    ("token endpoint down", [{"method": "POST", "path": TOKEN, "status": 503, "count": -1}], {},
     {"sf_bulk.max_retries": "3"}, "failed", "503", 0),
    ("token endpoint unreachable (connection reset)", [{"method": "POST", "path": TOKEN, "action": "reset",
                                                       "count": -1}], {}, {"sf_bulk.max_retries": "2"}, "failed",
     "oauth2/token", 0),
    ("5xx on every upload", [{"method": "PUT", "path": PUT, "status": 503, "count": -1}], {},
     {"sf_bulk.max_retries": "3"}, "failed", "503", -1),
    ("job failed by Salesforce", [], {"batch_size": 5, "next_job_fails": {"after_batches": 2, "message":
                                                                          "InvalidBatch : matrix failure"}}, {},
     "failed", "InvalidBatch : matrix failure", 0),
    # The worker's API reserve off: with it, the worker would not send the create at all (test_api_reserve).
    ("REQUEST_LIMIT_EXCEEDED (daily limit), then aborted", "daily_limit", {"daily_api_limit": 100},
     {"sf_bulk.api_reserve": "0"}, "aborted", None, 0),
]


def summarize_outcome(row, counts, replaced):
    s = row["state"]
    if row["error"]:
        s += ": " + row["error"][:90]
    return "%s [ok %d, failed %d, unprocessed %d, replaced %d]" % (s, counts["ok"], counts["failed"],
                                                                   counts["unprocessed"], replaced)


class FaultMatrix(IntegrationTest):
    outcomes = []

    @classmethod
    def tearDownClass(cls):
        if cls.outcomes:
            log("    fault x outcome:")
            for name, outcome in cls.outcomes:
                log("      %-48s %s" % (name, outcome))

    def apply_settings(self, settings):
        if not settings:
            return
        self.pg.psql("".join("ALTER SYSTEM SET %s = %s;" % (k, sql_literal(v)) for k, v in settings.items()) +
                     "SELECT pg_reload_conf();")
        self.addCleanup(self.reset_settings, list(settings))
        name, value = next(iter(settings.items()))
        poll(lambda: self.pg.value("SHOW %s" % name).replace(" ", "") == value, 10, 0.05, "the settings to apply")
        time.sleep(0.3)  # the running worker reloads on the same signal

    def reset_settings(self, names):
        self.pg.psql("".join("ALTER SYSTEM RESET %s;" % k for k in names) + "SELECT pg_reload_conf();")

    def fresh_worker(self):
        """The worker keeps its token; a fault on the token endpoint needs a worker that must ask for one."""
        self.pg.stop_workers()

    def run_row(self, name, faults, config, settings, state, error, replaced):
        self.apply_settings(settings)
        if config:
            self.emu.config(**config)
        if isinstance(faults, list) and any(f["path"] == TOKEN for f in faults):
            self.fresh_worker()
        if faults == "expire_after_calls":
            self.emu.admin("POST", "/tokens/expire", {"after_calls": 3})
        elif faults == "daily_limit":
            self.emu.admin("POST", "/usage", {"api": 100})
        elif faults:
            self.emu.fault(faults)
        job = self.enqueue("""SELECT sf_bulk_insert('Lead', $$SELECT n AS id, %s || '-' || n AS "LastName",
                                  'Matrix' AS "Company" FROM generate_series(1, %d) n$$, key => 'id')"""
                           % (sql_literal(self.tag), ROWS))
        if faults == "daily_limit":
            poll(lambda: "REQUEST_LIMIT_EXCEEDED" in (self.chunks(job)[0]["error"] or ""), 20, 0.05,
                 "the job to wait for the daily limit")
            self.assertEqual(self.job_row(job)["state"], "running", "the job must wait, not fail")
            self.pg.psql("SELECT 1 FROM sf_bulk_abort(%d);" % job)
        row = self.wait(job, 120)
        if isinstance(faults, list) and faults:
            # A stalled request is logged when the emulator gives up holding it, which may be after the job ended.
            poll(lambda: any(r.get("fault") for r in self.new_requests()), 15, 0.1, "the fault to hit")
        reqs = self.new_requests()

        self.assertEqual(row["state"], state, "job row: %r" % (row,))
        if error:
            self.assertIn(error, row["error"] or "")
        for secret in (ORG["client_secret"], ORG["user"]["password"]):
            self.assertNotIn(secret, row["error"] or "")

        counts = self.pg.json("""SELECT (SELECT count(*) FROM sf_bulk_successful(%(j)d)) AS ok,
                                        (SELECT count(*) FROM sf_bulk_failed(%(j)d)) AS failed,
                                        (SELECT count(*) FROM sf_bulk_unprocessed(%(j)d)) AS unprocessed,
                                        (SELECT count(DISTINCT key) FROM sf_bulk.results WHERE job_id = %(j)d)
                                          AS keys""" % {"j": job})[0]
        self.assertEqual(counts["ok"] + counts["failed"] + counts["unprocessed"], ROWS, "rows unaccounted for")
        self.assertEqual(counts["keys"], ROWS, "every result carries its own key")

        store = self.store_by("LastName", self.tag + "-")
        self.assertEqual({k for k, v in store.items() if len(v) > 1}, set(), "rows stored twice in Salesforce")
        self.assertEqual(len(store), counts["ok"], "the store and the successful results disagree")
        if state == "completed":
            self.assertEqual(counts["ok"], ROWS)
            if isinstance(faults, list):
                # Completing despite the fault means the faulted call was made again (or, for an upload,
                # to a replacement job): more matching calls than the fault answered.
                for fault in faults:
                    method, path = re.compile(fault["method"]), re.compile(fault["path"])
                    calls = [r for r in reqs if method.fullmatch(r["method"]) and path.search(r["path"])]
                    hits = [r for r in calls if r.get("fault")]
                    self.assertGreater(len(calls), len(hits), "%s: the faulted call was not retried" % name)
        puts = collections.Counter(RE_PUT.match(r["path"]).group(1) for r in reqs
                                   if r["method"] == "PUT" and RE_PUT.match(r["path"]))
        self.assertEqual({j: n for j, n in puts.items() if n > 1}, {}, "a Salesforce job got two uploads")
        chunk = self.chunks(job)[0]
        got = len(chunk["replaced_sf_job_ids"] or [])
        self.assertTrue(got >= 1 if replaced < 0 else got == replaced, "replaced: %r" % (chunk,))
        replaced = got
        self.outcomes.append((name, summarize_outcome(row, counts, replaced)))


def _make(spec):
    def test(self):
        self.run_row(*spec)
    test.__doc__ = spec[0]
    return test


for _i, _spec in enumerate(MATRIX):
    setattr(FaultMatrix, "test_%02d_%s" % (_i, "_".join(_spec[0].split()[:4]).replace("(", "").replace(")", "")
                                           .replace(",", "").replace("-", "_")), _make(_spec))


class EmulatorRestart(IntegrationTest):
    """A second emulator on a fixed port that the test stops and starts: Salesforce unreachable for a while, and
    Salesforce coming back without the job it was processing."""

    def setUp(self):
        super().setUp()
        self.port = free_port()
        self.data = os.path.join(ENV.workdir, "emu2-%s" % self._testMethodName)
        self.proc = None
        self.start_emulator()
        self.url = "http://127.0.0.1:%d" % self.port
        self.pg.psql("""CREATE SERVER IF NOT EXISTS emu_restart FOREIGN DATA WRAPPER salesforce
                          OPTIONS (login_url %s);
                        ALTER SERVER emu_restart OPTIONS (SET login_url %s);
                        DROP USER MAPPING IF EXISTS FOR postgres SERVER emu_restart;
                        CREATE USER MAPPING FOR postgres SERVER emu_restart OPTIONS (%s);"""
                     % (sql_literal(self.url), sql_literal(self.url), mapping_options()))

    def tearDown(self):
        self.stop_emulator()
        super().tearDown()
        # Other tests rely on one server being the default.
        self.pg.psql("DROP SERVER emu_restart CASCADE;")

    def start_emulator(self):
        log_file = open(os.path.join(ENV.workdir, "emu2.log"), "ab")
        self.proc = subprocess.Popen([PYTHON, EMULATOR, "--host", "127.0.0.1", "--port", str(self.port),
                                      "--data-dir", self.data], stdout=log_file, stderr=subprocess.STDOUT)
        log_file.close()

        def up():
            try:
                return self.admin2("GET", "/health")["ok"]
            except OSError:
                return False
        poll(up, 15, 0.1, "the second emulator to listen")

    def stop_emulator(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(15)
        self.proc = None

    def admin2(self, method, path, body=None):
        import json
        import urllib.request
        req = urllib.request.Request("http://127.0.0.1:%d/__emulator%s" % (self.port, path), method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read() or b"null")

    def enqueue2(self, validate=True):
        # validate=False while the emulator is down: the call-time check could not ask it.
        return self.enqueue("""SELECT sf_bulk_insert('Lead', $$SELECT n AS id, %s || '-' || n AS "LastName",
                                  'Restart' AS "Company" FROM generate_series(1, %d) n$$, key => 'id',
                                  server => 'emu_restart', validate => %s)"""
                            % (sql_literal(self.tag), ROWS, "true" if validate else "false"))

    def test_unreachable_then_back(self):
        """Salesforce down when the job starts (connection refused): retried with backoff until it is back."""
        self.stop_emulator()
        job = self.enqueue2(validate=False)
        poll(lambda: "127.0.0.1:%d" % self.port in (self.job_row(job)["error"] or ""), 20, 0.1,
             "the job to say which endpoint it cannot reach")
        waiting = self.job_row(job)
        self.assertEqual(waiting["state"], "running", "one refused connection must not fail the job")
        time.sleep(1.0)
        self.start_emulator()
        row = self.wait(job, 120)
        self.assertCompleted(row)
        records = [r for r in self.admin2("GET", "/records/Lead")["records"]
                   if (r.get("LastName") or "").startswith(self.tag + "-")]
        self.assertEqual(len(records), ROWS)
        self.assertEqual(len({r["LastName"] for r in records}), ROWS)
        FaultMatrix.outcomes.append(("emulator unreachable at start, then back",
                                     "completed (while down: %s)" % (waiting["error"] or "")[:80]))

    def test_restarted_while_processing_forgets_the_job(self):
        """Salesforce restarts mid-job and has forgotten the job (the emulator keeps records, not jobs): the
        job ends with a clear error instead of polling forever, and every row is accounted for."""
        self.admin2("POST", "/config", {"processing_delay_ms": 4000})
        job = self.enqueue2()
        poll(lambda: self.chunks(job)[0]["step"] == "processing", 30, 0.05, "processing")
        self.stop_emulator()
        time.sleep(1.0)
        self.start_emulator()
        row = self.wait(job, 120)
        self.assertEqual(row["state"], "failed", "job row: %r" % (row,))
        self.assertIn("NOT_FOUND", row["error"] or "")
        counts = self.pg.json("""SELECT (SELECT count(*) FROM sf_bulk_successful(%(j)d)) AS ok,
                                        (SELECT count(*) FROM sf_bulk_failed(%(j)d)) AS failed,
                                        (SELECT count(*) FROM sf_bulk_unprocessed(%(j)d)) AS unprocessed"""
                              % {"j": job})[0]
        self.assertEqual(counts, {"ok": 0, "failed": 0, "unprocessed": ROWS}, "rows unaccounted for")
        FaultMatrix.outcomes.append(("emulator restarted mid-job (job forgotten)",
                                     summarize_outcome(row, dict(counts), 0)))
