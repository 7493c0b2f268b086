"""The worker's API reserve (issue 13 item 3): with the org's daily API requests within sf_bulk.api_reserve, or
no Bulk API 2.0 query job or query result storage left, new Salesforce jobs wait — nothing is created, and
sf_bulk_jobs.error names the limit, the numbers and the setting — and resume by themselves when the allocation
allows. Jobs already running go on. An abort cuts through the wait. sf_bulk.api_reserve = 0 holds nothing.

The cluster runs with sf_bulk.limits_refresh = 1s (harness.py), so a held org is read again every second or two.
Each test starts a new worker: the first job of an org it serves waits for one /limits read.
"""

import re
import time

from harness import RE_CREATE, RE_JOB, IntegrationTest, log, poll, sql_literal

RE_QUERY_CREATE = re.compile(r"^/services/data/v\d+\.0/jobs/query/?$")
RE_LIMITS = re.compile(r"^/services/data/v\d+\.0/limits/?$")
API_HOLD = re.compile(r"^waiting: the org has (\d[\d,]*) of 15,000 daily API requests left, and sf_bulk\.api_reserve "
                      r"keeps 5% \(750\) for other uses; new Salesforce jobs start when more are free$")


class ApiReserve(IntegrationTest):

    def setUp(self):
        # The worker keeps the org's last known usage, and here usage jumps at a test's command (in an org it
        # moves by the calls made): each test starts with a worker that knows nothing yet, so that its first
        # job reads /limits before anything is created.
        self.pg.stop_workers()
        super().setUp()

    def tearDown(self):
        self.emu.admin("POST", "/usage", {"api": 0, "query_jobs": 0, "query_storage_kb": 0})
        super().tearDown()

    # -- helpers --------------------------------------------------------------------------------------------
    def ingest(self, n=3, suffix="i"):
        return self.enqueue("""SELECT sf_bulk_insert('Lead', $$SELECT %s || '-' || n AS "LastName",
                                   'Reserve' AS "Company" FROM generate_series(1, %d) n$$)"""
                            % (sql_literal("%s-%s" % (self.tag, suffix)), n))

    def query(self):
        self.emu.admin("POST", "/records/Lead", {"records": [{"LastName": "%s-q%d" % (self.tag, i), "Company": "Q"}
                                                             for i in range(1, 3)]})
        t = ("r_" + self.tag.replace("-", "_")).lower()
        self.pg.psql("DROP TABLE IF EXISTS %s; CREATE TABLE %s (id text, lastname text);" % (t, t))
        self.addCleanup(self.pg.psql, "DROP TABLE IF EXISTS %s;" % t)
        soql = "SELECT Id, LastName FROM Lead WHERE LastName LIKE '%s-q%%'" % self.tag
        job = self.enqueue("SELECT sf_bulk_query(%s, %s, validate => false)" % (sql_literal(soql), sql_literal(t)))
        return job, t

    def creates(self):
        return [r for r in self.new_requests()
                if r["method"] == "POST" and (RE_CREATE.match(r["path"]) or RE_QUERY_CREATE.match(r["path"]))]

    def error_of(self, job):
        return self.job_row(job)["error"] or ""

    def await_error(self, job, pattern, what):
        try:
            return poll(lambda: re.search(pattern, self.error_of(job)), 15, 0.05, what)
        except AssertionError as e:
            raise AssertionError("%s; the job: %r; its uploads: %r" % (e, self.job_row(job), self.chunks(job)))

    def set_worker_setting(self, name, value):
        self.pg.psql("ALTER SYSTEM SET %s = %s; SELECT pg_reload_conf();" % (name, sql_literal(value)))
        self.addCleanup(self.pg.psql, "ALTER SYSTEM RESET %s; SELECT pg_reload_conf();" % name)
        time.sleep(0.5)  # the worker reloads at its next round (SIGHUP sets its latch)

    def assertHeldOnApi(self, job):
        self.await_error(job, API_HOLD.pattern, "job %d to wait on the API reserve" % job)
        row = self.job_row(job)
        self.assertEqual(row["state"], "running")
        left = int(API_HOLD.match(row["error"]).group(1).replace(",", ""))
        # 700 left when the test started; the worker's own /limits reads spend a few while it waits.
        self.assertLessEqual(left, 700)
        self.assertGreater(left, 600)
        return row["error"]

    # -- tests ----------------------------------------------------------------------------------------------
    def test_jobs_wait_within_the_reserve_and_resume_by_themselves(self):
        """700 of 15,000 requests left (< 5 %): a new ingest job and a new query job wait with no create sent,
        the reason names the numbers and the setting; usage falls, and both complete without any nudge."""
        self.emu.admin("POST", "/usage", {"api": 14300})
        ingest = self.ingest()
        query, table = self.query()
        reason = self.assertHeldOnApi(ingest)
        self.assertHeldOnApi(query)
        # Held, not merely slow: still nothing created after the worker read /limits again.
        poll(lambda: len([r for r in self.new_requests() if RE_LIMITS.match(r["path"])]) >= 2, 10, 0.1,
             "the worker to read the held org's /limits again")
        self.assertEqual(self.creates(), [])
        self.assertEqual(self.job_row(ingest)["state"], "running")
        self.assertEqual(self.job_row(query)["state"], "running")
        log("    held: %s" % reason)

        self.emu.admin("POST", "/usage", {"api": 100})  # the rolling window freed requests
        for job in (ingest, query):
            row = self.wait(job, 30)
            self.assertCompleted(row)
            self.assertIsNone(row["error"], "the hold's reason must go once the job runs")
        self.assertEqual(len(self.store_by("LastName", "%s-i-" % self.tag)), 3)
        self.assertEqual(self.pg.value("SELECT count(*) FROM %s" % table), "2")
        self.assertEqual(len(self.creates()), 2)  # one Salesforce job each: a hold is no retry

    def test_reserve_zero_holds_nothing(self):
        """sf_bulk.api_reserve = 0 (a worker setting, ALTER SYSTEM + reload): the same usage holds nothing."""
        self.set_worker_setting("sf_bulk.api_reserve", "0")
        self.emu.admin("POST", "/usage", {"api": 14300})
        ingest = self.ingest()
        query, table = self.query()
        for job in (ingest, query):
            self.assertCompleted(self.wait(job, 30))
        self.assertEqual(self.pg.value("SELECT count(*) FROM %s" % table), "2")

    def test_query_quotas_hold_query_jobs_while_ingest_runs(self):
        """No DailyBulkV2QueryJobs left: the query job waits naming that limit while an ingest job completes;
        then no query result storage left (DailyBulkV2QueryFileStorageMB): it still waits; both freed: it
        completes."""
        self.emu.admin("POST", "/usage", {"query_jobs": 10000})
        query, table = self.query()
        self.await_error(query, r"^waiting: the org has 0 of 10,000 daily Bulk API 2\.0 query jobs left "
                         r"\(DailyBulkV2QueryJobs\); the query job starts when one is free$",
                         "the query job to wait on DailyBulkV2QueryJobs")
        ingest = self.ingest()
        self.assertCompleted(self.wait(ingest, 30))
        self.assertEqual(self.job_row(query)["state"], "running")

        self.emu.admin("POST", "/usage", {"query_jobs": 0, "query_storage_kb": 1000000000})
        self.await_error(query, r"^waiting: the org has 0 of 976,562 MB of daily Bulk API 2\.0 query results left "
                         r"\(DailyBulkV2QueryFileStorageMB\); the query job starts when more is free$",
                         "the query job to wait on DailyBulkV2QueryFileStorageMB")
        self.assertEqual([r for r in self.creates() if RE_QUERY_CREATE.match(r["path"])], [])

        self.emu.admin("POST", "/usage", {"query_storage_kb": 0})
        row = self.wait(query, 30)
        self.assertCompleted(row)
        self.assertIsNone(row["error"])
        self.assertEqual(self.pg.value("SELECT count(*) FROM %s" % table), "2")

    def test_abort_while_held_creates_nothing(self):
        """An abort cuts through the wait: both jobs end aborted, no Salesforce job was ever created."""
        self.emu.admin("POST", "/usage", {"api": 14300})
        ingest = self.ingest()
        query, _ = self.query()
        self.assertHeldOnApi(ingest)
        self.assertHeldOnApi(query)
        t = time.monotonic()
        self.pg.psql("SELECT sf_bulk_abort(%d), sf_bulk_abort(%d);" % (ingest, query))
        rows = [self.wait(job, 10) for job in (ingest, query)]
        log("    abort while held: ended after %.2f s" % (time.monotonic() - t))
        self.assertEqual([r["state"] for r in rows], ["aborted", "aborted"])
        self.assertEqual(self.chunks(ingest)[0]["error"], "aborted by request before a Salesforce job was created")
        self.assertEqual(self.pg.value("SELECT error FROM sf_bulk.queries WHERE job_id = %d" % query),
                         "aborted by request before a Salesforce query job was known")
        self.assertEqual(self.creates(), [])
        poll(lambda: not self.spool_for(ingest), 10, 0.1, "the spool file to go")

    def test_a_running_job_finishes_when_the_reserve_is_reached(self):
        """A job whose Salesforce job exists goes on (polls, results) after usage crosses the reserve; a job
        enqueued then waits, and starts when usage falls."""
        self.emu.config(processing_delay_ms=1500)
        first = self.ingest(suffix="a")
        poll(lambda: (self.chunks(first)[0]["step"] == "processing"), 15, 0.02, "the first job to be processing")
        self.emu.admin("POST", "/usage", {"api": 14300})
        # The worker knows the org's usage from its answers: let a poll of the running job tell it.
        since = self.emu.log_seq()
        poll(lambda: any(RE_JOB.match(r["path"]) for r in self.emu.requests(since)), 15, 0.02,
             "a poll of the running job after usage rose")
        second = self.ingest(suffix="b")
        row = self.wait(first, 30)
        self.assertCompleted(row)
        self.assertEqual(len(self.store_by("LastName", "%s-a-" % self.tag)), 3)
        self.assertHeldOnApi(second)
        self.assertEqual(len(self.creates()), 1)
        self.emu.admin("POST", "/usage", {"api": 100})
        self.assertCompleted(self.wait(second, 30))
        self.assertEqual(len(self.store_by("LastName", "%s-b-" % self.tag)), 3)
