"""Done means 3 and 4: the enqueue is transactional (ROLLBACK sends nothing and leaves no spool file, ROLLBACK
TO SAVEPOINT removes only that enqueue) and COMMIT wakes the worker at once."""

import re
import statistics
import time

from harness import RE_ANY_JOB, RE_CREATE, IntegrationTest, log, poll, sql_literal


def ingest_requests(reqs):
    return [r for r in reqs if RE_CREATE.match(r["path"]) or RE_ANY_JOB.match(r["path"])]


class Transactions(IntegrationTest):

    def parse(self, out, key):
        m = re.search(r"^%s=(.*)$" % key, out, re.M)
        self.assertIsNotNone(m, "%s missing in psql output %r" % (key, out))
        return m.group(1)

    def spool_sql(self, var):
        return ("SELECT '%s_SPOOL=' || coalesce(string_agg(f, ',' ORDER BY f), '') FROM pg_ls_dir('sf_bulk_spool') f "
                "WHERE f LIKE 'db' || (SELECT oid FROM pg_database WHERE datname = current_database()) || '\\_job' "
                "|| :%s || '\\_%%';" % (var.upper(), var))

    def test_rollback_sends_nothing(self):
        out = self.pg.psql("""
            BEGIN;
            SELECT sf_bulk_insert('Lead', $$SELECT %(p)s || '-' || n AS "LastName", 'Rolled' AS "Company"
                                           FROM generate_series(1, 50) n$$) AS a \\gset
            SELECT 'A=' || :a;
            %(spool)s
            ROLLBACK;
            """ % {"p": sql_literal(self.tag), "spool": self.spool_sql("a")})
        job = int(self.parse(out, "A"))
        self.assertNotEqual(self.parse(out, "A_SPOOL"), "", "the enqueue spooled a file inside the transaction")
        # Nothing may reach the emulator: watch the log for a bounded time.
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            sent = ingest_requests(self.new_requests())
            self.assertEqual(sent, [], "ingest requests after ROLLBACK")
            time.sleep(0.05)
        self.assertIsNone(self.job_row(job))
        self.assertEqual(self.pg.value("SELECT count(*) FROM sf_bulk.jobs WHERE id = %d" % job), "0")
        self.assertEqual(self.pg.value("SELECT count(*) FROM sf_bulk.chunks WHERE job_id = %d" % job), "0")
        self.assertEqual(self.spool_for(job), [], "spool file left after ROLLBACK")
        self.assertEqual(self.store_by("LastName", self.tag + "-"), {})

    def test_rollback_to_savepoint(self):
        out = self.pg.psql("""
            BEGIN;
            SELECT sf_bulk_insert('Lead', $$SELECT %(p)s || '-kept-' || n AS "LastName", 'Kept' AS "Company"
                                           FROM generate_series(1, 5) n$$) AS a \\gset
            SAVEPOINT s;
            SELECT sf_bulk_insert('Lead', $$SELECT %(p)s || '-gone-' || n AS "LastName", 'Gone' AS "Company"
                                           FROM generate_series(1, 5) n$$) AS b \\gset
            SELECT 'A=' || :a;
            SELECT 'B=' || :b;
            %(spool_b)s
            ROLLBACK TO SAVEPOINT s;
            SELECT 'AFTER_' || x FROM (%(spool_b2)s) q(x);
            %(spool_a)s
            COMMIT;
            """ % {"p": sql_literal(self.tag), "spool_b": self.spool_sql("b"),
                   "spool_b2": self.spool_sql("b").rstrip(";"), "spool_a": self.spool_sql("a")})
        a, b = int(self.parse(out, "A")), int(self.parse(out, "B"))
        self.assertNotEqual(self.parse(out, "B_SPOOL"), "", "the second enqueue spooled a file")
        self.assertEqual(self.parse(out, "AFTER_B_SPOOL"), "", "ROLLBACK TO SAVEPOINT removed its spool file")
        self.assertNotEqual(self.parse(out, "A_SPOOL"), "", "the first enqueue's spool file survives")

        row = self.wait(a)
        self.assertCompleted(row)
        self.assertEqual(row["records_processed"], 5)
        self.assertIsNone(self.job_row(b))
        self.assertEqual(self.pg.value("SELECT count(*) FROM sf_bulk.jobs WHERE id = %d" % b), "0")
        self.assertEqual(self.spool_for(b), [])
        self.assertEqual(self.spool_for(a), [], "spool file removed once the job is done")
        self.assertEqual(len(self.store_by("LastName", self.tag + "-kept-")), 5)
        self.assertEqual(self.store_by("LastName", self.tag + "-gone-"), {})
        creates = [r for r in self.new_requests() if r["method"] == "POST" and RE_CREATE.match(r["path"])]
        self.assertEqual(len(creates), 1, "only the committed enqueue created a Salesforce job")

    def enqueue_at_commit(self, last_name):
        """Enqueues a one-row job in a transaction; returns the job id and the clock just before its COMMIT."""
        out = self.pg.psql("""
            BEGIN;
            SELECT sf_bulk_insert('Lead', $$SELECT %s AS "LastName", 'Wake' AS "Company"$$) AS j \\gset
            SELECT 'J=' || :j;
            SELECT 'T0=' || extract(epoch FROM clock_timestamp());
            COMMIT;
            """ % sql_literal(last_name))
        return int(self.parse(out, "J")), float(self.parse(out, "T0"))

    def test_commit_wakes_worker_promptly(self):
        first_any, first_ingest = [], []
        for i in range(5):
            mark = self.emu.log_seq()
            job, t0 = self.enqueue_at_commit("%s-%d" % (self.tag, i))

            def first():
                reqs = self.emu.requests(mark)
                ing = ingest_requests(reqs)
                return (reqs, ing) if ing else None
            reqs, ing = poll(first, 10, 0.01, "the first request after COMMIT")
            first_any.append(reqs[0]["start_epoch_ms"] / 1000.0 - t0)
            first_ingest.append(ing[0]["start_epoch_ms"] / 1000.0 - t0)
            self.assertCompleted(self.wait(job))
        med_any, med_ingest = statistics.median(first_any), statistics.median(first_ingest)
        log("    COMMIT -> first request: median %.0f ms (%s); -> first ingest request: median %.0f ms (%s)"
            % (med_any * 1000, ", ".join("%.0f" % (x * 1000) for x in first_any), med_ingest * 1000,
               ", ".join("%.0f" % (x * 1000) for x in first_ingest)))
        self.assertLess(med_ingest, 2.0, "COMMIT did not wake the worker promptly")
        self.assertGreater(min(first_any), -0.05, "a request was sent before COMMIT")

    def test_commit_starts_an_exited_worker_promptly(self):
        """The database's worker exits when idle; the next COMMIT must have the launcher start it at once."""
        self.pg.psql("ALTER SYSTEM SET sf_bulk.worker_idle_timeout = '1s'; SELECT pg_reload_conf();")
        try:
            def worker_count():
                return int(self.pg.value("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'sf_bulk worker'"))
            warm = self.enqueue("""SELECT sf_bulk_insert('Lead', $$SELECT %s AS "LastName", 'Warm' AS "Company"$$)"""
                                % sql_literal(self.tag + "-warm"))
            self.assertCompleted(self.wait(warm))
            self.assertEqual(worker_count(), 1, "a worker ran the warm-up job")
            poll(lambda: worker_count() == 0, 20, 0.1, "the idle worker to exit (sf_bulk.worker_idle_timeout = 1s)")
            mark = self.emu.log_seq()
            job, t0 = self.enqueue_at_commit(self.tag + "-cold")
            ing = poll(lambda: ingest_requests(self.emu.requests(mark)), 10, 0.01, "the first ingest request")
            latency = ing[0]["start_epoch_ms"] / 1000.0 - t0
            log("    COMMIT -> first ingest request with no worker running: %.0f ms" % (latency * 1000))
            self.assertLess(latency, 2.0, "COMMIT did not start a worker promptly")
            self.assertCompleted(self.wait(job))
        finally:
            self.pg.psql("ALTER SYSTEM RESET sf_bulk.worker_idle_timeout; SELECT pg_reload_conf();")
