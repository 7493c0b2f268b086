"""Worker resilience: smart and fast shutdowns with a job in flight resume after start; DROP EXTENSION while a job
runs is clean (worker leaves, files go, a new extension starts afresh); no transaction is held open across HTTP
calls; idle, the worker uses no CPU; its memory stays flat across 1,000 jobs.
"""

import os
import time

from harness import ENV, IntegrationTest, log, mapping_options, poll, sql_literal

CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_status(pid, field):
    with open("/proc/%d/status" % pid) as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])  # kB
    raise AssertionError("no %s in /proc/%d/status" % (field, pid))


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


class Resilience(IntegrationTest):

    def enqueue_rows(self, n, company="Res"):
        return self.enqueue("""SELECT sf_bulk_insert('Lead', $$SELECT n AS id, %s || '-' || n AS "LastName",
                                  %s AS "Company" FROM generate_series(1, %d) n$$, key => 'id')"""
                            % (sql_literal(self.tag), sql_literal(company), n))

    def assert_exactly_once(self, job, n):
        row = self.wait(job, 90)
        self.assertCompleted(row)
        store = self.store_by("LastName", self.tag + "-")
        self.assertEqual(len(store), n)
        self.assertEqual({k for k, v in store.items() if len(v) > 1}, set())
        self.assertEqual(self.pg.value("SELECT count(DISTINCT key) FROM sf_bulk_successful(%d)" % job), str(n))

    def shutdown_with_job_in_flight(self, mode):
        self.emu.config(processing_delay_ms=1500)
        job = self.enqueue_rows(25)
        poll(lambda: self.chunks(job)[0]["step"] == "processing", 30, 0.02, "processing")
        t = time.monotonic()
        self.pg.restart(mode)
        log("    %s shutdown with a job in Salesforce: stop + start %.1f s" % (mode, time.monotonic() - t))
        self.assert_exactly_once(job, 25)

    def test_smart_shutdown_resumes(self):
        self.shutdown_with_job_in_flight("smart")

    def test_fast_shutdown_resumes(self):
        self.shutdown_with_job_in_flight("fast")

    def test_fast_shutdown_during_upload_resumes(self):
        """The PUT is on the wire when the worker is told to stop: its outcome is unknown, so the next worker
        aborts that Salesforce job and uploads to a new one."""
        self.emu.fault({"method": "PUT", "path": r"/batches/?$", "action": "stall", "ms": 3000})
        job = self.enqueue_rows(25)
        poll(lambda: self.chunks(job)[0]["step"] == "uploading", 30, 0.02, "uploading")
        time.sleep(0.5)
        self.pg.restart("fast")
        self.assert_exactly_once(job, 25)
        poll(lambda: any(r.get("fault") for r in self.new_requests()), 15, 0.1, "the held PUT to end")
        replaced = self.chunks(job)[0]["replaced_sf_job_ids"] or []
        self.assertEqual(len(replaced), 1)
        self.assertEqual(self.emu.jobs()[replaced[0]]["state"], "Aborted")

    def refuse_step(self, step):
        """A trigger makes every worker transaction that records `step` for an upload fail, until
        allow_steps()."""
        self.pg.psql("""
            CREATE TABLE public.refused_step(step text);
            INSERT INTO public.refused_step VALUES (%s);
            CREATE FUNCTION public.refuse_step() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF EXISTS (SELECT 1 FROM public.refused_step r WHERE r.step = NEW.step) THEN
                RAISE EXCEPTION 'test refuses step %%', NEW.step;
              END IF;
              RETURN NEW;
            END $$;
            CREATE TRIGGER refuse_step BEFORE UPDATE ON sf_bulk.chunks
              FOR EACH ROW EXECUTE FUNCTION public.refuse_step();""" % sql_literal(step))
        self.addCleanup(self.pg.psql, """DROP TRIGGER IF EXISTS refuse_step ON sf_bulk.chunks;
            DROP FUNCTION IF EXISTS public.refuse_step(); DROP TABLE IF EXISTS public.refused_step;""")

    def test_failed_record_rolls_back_and_resumes(self):
        """A worker transaction that fails (recording the upload intent) is rolled back and logged with what
        the worker was doing; the upload resumes from its last committed step once the cause is gone: nothing
        was sent for the refused step, one Salesforce job, every row once."""
        self.refuse_step("uploading")
        job = self.enqueue_rows(10)
        line = "sf_bulk: recording a step: test refuses step uploading"
        poll(lambda: line in self.pg.server_log(), 30, 0.02, "the refused step in the server log")
        self.assertEqual(self.chunks(job)[0]["step"], "created")
        self.pg.psql("DELETE FROM public.refused_step")
        self.assert_exactly_once(job, 10)
        sent = self.new_requests()
        self.assertEqual(len([r for r in sent if r["method"] == "POST" and r["path"].endswith("/jobs/ingest")]),
                         1)
        self.assertEqual(len([r for r in sent if r["method"] == "PUT"]), 1)
        self.assertEqual(self.chunks(job)[0]["replaced_sf_job_ids"] or [], [])

    def test_record_failing_three_times_fails_the_upload(self):
        """A deterministic local failure cannot loop for ever: after three attempts the upload fails with the
        reason and nothing was uploaded."""
        self.refuse_step("uploading")
        job = self.enqueue_rows(10)
        row = self.wait(job, 60)
        self.assertEqual(row["state"], "failed", row)
        error = self.chunks(job)[0]["error"]
        self.assertIn("could not record", error)
        self.assertIn("test refuses step uploading", error)
        self.assertEqual([r for r in self.new_requests() if r["method"] == "PUT"], [])

    def test_no_transaction_open_across_http_calls(self):
        """While the worker waits for Salesforce (a stalled poll and a stalled upload), it holds no transaction,
        no snapshot and no transaction id."""
        self.emu.fault([{"method": "PUT", "path": r"/batches/?$", "action": "stall", "ms": 1500},
                        {"method": "GET", "path": r"/jobs/ingest/[0-9A-Za-z]+/?$", "action": "stall", "ms": 1500}])
        job = self.enqueue_rows(10)
        samples = []
        deadline = time.monotonic() + 60
        while self.job_row(job)["state"] == "running" and time.monotonic() < deadline:
            samples += self.pg.json("""SELECT state, xact_start IS NOT NULL AS in_xact, backend_xid IS NOT NULL AS xid,
                                              backend_xmin IS NOT NULL AS xmin
                                         FROM pg_stat_activity WHERE backend_type = 'sf_bulk worker'""")
            time.sleep(0.05)
        self.assert_exactly_once(job, 10)
        self.assertGreater(len(samples), 20)
        busy = [s for s in samples if s["in_xact"] or s["xid"] or s["xmin"]]
        # A sample may land inside one of the short transactions that record a step; never most of the wait.
        self.assertLess(len(busy), len(samples) * 0.2, "the worker held a transaction while waiting: %r" % busy[:5])
        log("    worker in a transaction in %d of %d samples while Salesforce stalled" % (len(busy), len(samples)))

    def test_drop_extension_while_a_job_runs(self):
        self.emu.config(processing_delay_ms=3000)
        job = self.enqueue_rows(10)
        poll(lambda: self.chunks(job)[0]["step"] == "processing", 30, 0.02, "processing")
        worker = self.pg.worker_pids()
        self.assertTrue(self.spool_for(job))
        # A DROP that rolls back must leave everything in place.
        self.pg.psql("BEGIN; DROP EXTENSION sf_bulk CASCADE; ROLLBACK;")
        self.assertTrue(self.spool_for(job), "a rolled-back DROP EXTENSION removed the job's files")
        self.pg.psql("BEGIN; SAVEPOINT s; DROP EXTENSION sf_bulk CASCADE; ROLLBACK TO s; COMMIT;")
        self.assertTrue(self.spool_for(job), "a DROP EXTENSION rolled back to a savepoint removed the job's files")
        try:
            self.pg.psql("DROP EXTENSION sf_bulk CASCADE;")
            self.assertEqual(self.pg.spool_files(), [], "spool files outlived the extension")
            poll(lambda: not (set(worker) & set(self.pg.worker_pids())), 15, 0.1, "the worker to leave")
            self.assertEqual(self.pg.worker_pids(), [])
        finally:
            self.pg.psql("""CREATE EXTENSION IF NOT EXISTS sf_bulk;
                            CREATE SERVER IF NOT EXISTS emu FOREIGN DATA WRAPPER salesforce OPTIONS (login_url %s);
                            CREATE USER MAPPING IF NOT EXISTS FOR postgres SERVER emu OPTIONS (%s);"""
                         % (sql_literal(ENV.emulator.url), mapping_options()))
        # The new extension starts afresh: job ids from 1, and its first job works.
        self.tag += "-new"
        again = self.enqueue_rows(5)
        self.assertEqual(again, 1)
        self.assert_exactly_once(again, 5)

        # Dropped and re-created in one transaction with a job enqueued after the CREATE: the commit removes
        # the old extension's files, never the new job's.
        self.tag += "-same-xact"
        out = self.pg.psql("""BEGIN;
                              DROP EXTENSION sf_bulk CASCADE;
                              CREATE EXTENSION sf_bulk;
                              CREATE SERVER emu FOREIGN DATA WRAPPER salesforce OPTIONS (login_url %s);
                              CREATE USER MAPPING FOR postgres SERVER emu OPTIONS (%s);
                              SELECT sf_bulk_insert('Lead', $$SELECT n AS id, %s || '-' || n AS "LastName",
                                  'Res' AS "Company" FROM generate_series(1, 5) n$$, key => 'id');
                              COMMIT;""" % (sql_literal(ENV.emulator.url), mapping_options(), sql_literal(self.tag)))
        same_xact = int([line for line in out.split() if line.isdigit()][-1])
        self.assertEqual(same_xact, 1)
        self.assert_exactly_once(same_xact, 5)

    def test_drop_extension_never_deadlocks_with_the_worker(self):
        """DROP EXTENSION while the worker is busy with query and ingest jobs: the DROP waits for the worker's
        transaction (or the worker for the DROP), never a deadlock. Before the worker took the extension's
        lock, a few DROPs in a hundred were chosen as deadlock victims (the worker held sf_bulk.chunks and
        wanted sf_bulk.jobs, which the DROP had locked first)."""
        def recreate():
            self.pg.psql("""CREATE EXTENSION IF NOT EXISTS sf_bulk;
                            CREATE SERVER IF NOT EXISTS emu FOREIGN DATA WRAPPER salesforce OPTIONS (login_url %s);
                            CREATE USER MAPPING IF NOT EXISTS FOR postgres SERVER emu OPTIONS (%s);"""
                         % (sql_literal(ENV.emulator.url), mapping_options()))
        failures = []
        try:
            for i in range(60):
                recreate()
                run = self.pg.psql("""CREATE SCHEMA drop_race;
                    SELECT sf_bulk_query('SELECT Id, Name FROM Account', 'drop_race.a', server => 'emu');
                    SELECT sf_bulk_query('SELECT Id, Name FROM Account', 'drop_race.m', server => 'emu',
                                         mode => 'merge');
                    SELECT sf_bulk_query('SELECT Id, Name FROM Account', 'drop_race.r', server => 'emu',
                                         mode => 'replace');
                    SELECT sf_bulk_insert('Lead', $$SELECT %s || n AS "LastName", 'Race' AS "Company"
                                                     FROM generate_series(1, 50) n$$, server => 'emu');
                    SELECT pg_sleep(%f);
                    DROP SCHEMA drop_race CASCADE;
                    DROP EXTENSION sf_bulk CASCADE;""" % (sql_literal(self.tag), (i % 10) * 0.04), check=False)
                if run.returncode != 0:
                    failures.append("round %d: %s" % (i, [line for line in run.stderr.splitlines()
                                                          if "ERROR" in line]))
                    self.pg.psql("DROP SCHEMA IF EXISTS drop_race CASCADE; DROP EXTENSION IF EXISTS sf_bulk CASCADE;")
            self.assertEqual(self.pg.spool_files(), [], "spool files outlived the extension")
        finally:
            self.pg.psql("DROP SCHEMA IF EXISTS drop_race CASCADE")
            recreate()
        self.assertEqual(failures, [])

    def test_memory_flat_and_idle_cpu_over_1000_jobs(self):
        """1,000 jobs through one worker: its private memory (RssAnon) after 1,000 jobs is within 2 MB of what
        it was after the first 200; idle afterwards, it uses no CPU (no busy polling)."""
        self.pg.psql("ALTER SYSTEM SET sf_bulk.worker_idle_timeout = '10min'; SELECT pg_reload_conf();")
        self.addCleanup(self.pg.psql, "ALTER SYSTEM RESET sf_bulk.worker_idle_timeout; SELECT pg_reload_conf();")

        def batch(first, count):
            sql = "".join("""SELECT sf_bulk_insert('Lead', $$SELECT %s AS "LastName", 'Mem' AS "Company"$$);\n"""
                          % sql_literal("%s-%d" % (self.tag, i)) for i in range(first, first + count))
            self.pg.psql("BEGIN;\n" + sql + "COMMIT;", timeout=300)
            poll(lambda: self.pg.value("SELECT count(*) FROM sf_bulk.jobs WHERE state IN ('queued', 'running')")
                 == "0", 600, 0.2, "jobs %d..%d to end" % (first, first + count - 1))

        t = time.monotonic()
        batch(0, 200)
        pids = self.pg.worker_pids()
        self.assertEqual(len(pids), 1)
        pid = pids[0]
        rss_200 = proc_status(pid, "RssAnon")
        batch(200, 800)
        self.assertEqual(self.pg.worker_pids(), [pid], "the same worker must have run all 1,000 jobs")
        rss_1000 = proc_status(pid, "RssAnon")
        elapsed = time.monotonic() - t
        self.assertEqual(self.pg.value("SELECT count(*) FROM sf_bulk.jobs WHERE state = 'completed' "
                                       "AND rows_spooled = 1 AND id IN (SELECT job_id FROM sf_bulk.results "
                                       "WHERE sf_id IS NOT NULL)"), self.pg.value(
                                           "SELECT count(*) FROM sf_bulk.jobs WHERE state = 'completed' "
                                           "AND rows_spooled = 1"))
        self.assertEqual(len(self.store_by("LastName", self.tag + "-")), 1000)

        time.sleep(1.0)
        ticks_before = cpu_ticks(pid)
        time.sleep(5.0)
        idle_ticks = cpu_ticks(pid) - ticks_before
        log("    1,000 jobs in %.0f s; worker RssAnon %.1f MB after 200 jobs, %.1f MB after 1,000 (%+.1f MB); "
            "idle CPU %d ms in 5 s" % (elapsed, rss_200 / 1024.0, rss_1000 / 1024.0, (rss_1000 - rss_200) / 1024.0,
                                       idle_ticks * 1000 // CLK_TCK))
        self.assertLess(rss_1000 - rss_200, 2048, "worker memory grew by %d kB over 800 jobs" % (rss_1000 - rss_200))
        # A busy loop would be ~500 ticks; a few ticks are the 1-s refresh and timers.
        self.assertLessEqual(idle_ticks * 1000 // CLK_TCK, 100, "the idle worker used CPU")
