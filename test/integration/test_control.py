"""Done means 5 and 6: sf_bulk_wait with a timeout while Salesforce is slow; sf_bulk_abort while it processes."""

import re
import time

from harness import RE_JOB, RE_PUT, IntegrationTest, log, poll, sql_literal


class WaitAndAbort(IntegrationTest):

    def test_wait_timeout_then_completes(self):
        self.emu.config(processing_delay_ms=3000)
        job = self.enqueue("""SELECT sf_bulk_insert('Lead', $$SELECT %s || '-' || n AS "LastName", 'Slow' AS "Company"
                                FROM generate_series(1, 3) n$$)""" % sql_literal(self.tag))
        # Let the worker take the job up (its Salesforce job exists), so "still running" is the honest answer.
        poll(lambda: any(r["method"] == "PUT" and RE_PUT.match(r["path"]) for r in self.new_requests()), 10, 0.02,
             "the upload")
        t = time.monotonic()
        err = self.pg.psql_fail("SELECT * FROM sf_bulk_wait(%d, '300 ms');" % job)
        elapsed = time.monotonic() - t
        log("    sf_bulk_wait(300 ms) gave up after %.0f ms: %s" % (elapsed * 1000, err.stderr.strip().splitlines()[0]))
        self.assertRegex(err.stderr, r"sf_bulk job %d is still running" % job)
        self.assertIn("57014", err.stderr, "SQLSTATE query_canceled")
        self.assertGreaterEqual(elapsed, 0.3)
        self.assertLess(elapsed, 2.5, "the timeout was not honoured")
        row = self.job_row(job)
        self.assertIn(row["state"], ("queued", "running"), "the job keeps running after the wait gave up")
        self.assertIsNone(row["finished_at"])
        row = self.wait(job, 60)
        self.assertCompleted(row)
        self.assertEqual(row["records_processed"], 3)
        self.assertEqual(len(self.store_by("LastName", self.tag + "-")), 3)

    def test_abort_while_processing(self):
        n = 300
        self.emu.config(batch_size=10, batch_delay_ms=150)  # about 4.5 s of processing
        # Slow polling: the worker has not polled yet when the abort comes, so what it records as processed
        # can only come from what Salesforce reports at or after the abort.
        self.pg.psql("ALTER SYSTEM SET sf_bulk.poll_first_interval = '3s'; "
                     "ALTER SYSTEM SET sf_bulk.poll_max_interval = '3s'; SELECT pg_reload_conf();")
        try:
            poll(lambda: self.pg.value("SHOW sf_bulk.poll_first_interval") == "3s", 5, 0.05, "the reload")
            job = self.enqueue("""SELECT sf_bulk_insert('Lead', $$SELECT %s || '-' || n AS "LastName",
                                    'Abort' AS "Company" FROM generate_series(1, %d) n$$)""" % (sql_literal(self.tag), n))

            def processing():
                ids = (self.job_row(job) or {}).get("sf_job_ids") or []
                if not ids:
                    return None
                j = self.emu.jobs().get(ids[0])
                return ids[0] if j and j["state"] == "InProgress" and j["numberRecordsProcessed"] > 0 else None
            sf_id = poll(processing, 20, 0.02, "the Salesforce job to process some rows")
            mark = self.emu.log_seq()
            out = self.pg.json("SELECT id, state FROM sf_bulk_abort(%d)" % job)
            self.assertEqual(out[0]["id"], job)
            row = self.wait(job, 30)
        finally:
            self.pg.psql("ALTER SYSTEM RESET sf_bulk.poll_first_interval; ALTER SYSTEM RESET sf_bulk.poll_max_interval; "
                         "SELECT pg_reload_conf();")
        self.assertEqual(row["state"], "aborted", "job row: %r" % (row,))
        self.assertIsNotNone(row["finished_at"])

        patches = [r for r in self.emu.requests(mark)
                   if r["method"] == "PATCH" and RE_JOB.match(r["path"]) and RE_JOB.match(r["path"]).group(1) == sf_id]
        self.assertTrue(patches, "no PATCH of Salesforce job %s after sf_bulk_abort" % sf_id)
        emu_job = self.emu.jobs()[sf_id]
        self.assertEqual(emu_job["state"], "Aborted", "the emulator's job was aborted")
        processed = emu_job["numberRecordsProcessed"]
        self.assertLess(processed, n, "the abort came after the job finished: the test proves nothing")

        ok = int(self.pg.value("SELECT count(*) FROM sf_bulk_successful(%d)" % job))
        failed = int(self.pg.value("SELECT count(*) FROM sf_bulk_failed(%d)" % job))
        unprocessed = int(self.pg.value("SELECT count(*) FROM sf_bulk_unprocessed(%d)" % job))
        emu_unprocessed = self.emu.unprocessed_rows(sf_id)
        log("    abort: Salesforce processed %d of %d; stored %d successful, %d failed, %d unprocessed "
            "(emulator reports %d unprocessed)" % (processed, n, ok, failed, unprocessed, len(emu_unprocessed)))
        self.assertGreater(len(emu_unprocessed), 0)
        self.assertEqual(unprocessed, len(emu_unprocessed), "unprocessed rows stored as Salesforce reported them")
        self.assertEqual(ok + failed, processed, "processed rows stored")
        self.assertEqual(ok + failed + unprocessed, n, "every row accounted for")
        self.assertEqual(row["records_processed"], processed,
                         "sf_bulk_jobs.records_processed is what Salesforce processed before the abort")
        keys = self.pg.json("SELECT fields->>'LastName' AS k FROM sf_bulk_unprocessed(%d)" % job)
        self.assertEqual({k["k"] for k in keys}, {r[0] for r in emu_unprocessed})
        self.assertEqual(self.spool_for(job), [])

    def test_abort_before_the_worker_starts(self):
        """Aborted in the enqueueing transaction: the job ends 'aborted' and no data is uploaded."""
        out = self.pg.psql("""
            BEGIN;
            SELECT sf_bulk_insert('Lead', $$SELECT %s || '-' || n AS "LastName", 'Never' AS "Company"
                                           FROM generate_series(1, 5) n$$) AS j \\gset
            SELECT 1 FROM sf_bulk_abort(:j);
            COMMIT;
            SELECT 'J=' || :j;""" % sql_literal(self.tag))
        job = int(re.search(r"^J=(\d+)$", out, re.M).group(1))
        row = self.wait(job, 30)
        self.assertEqual(row["state"], "aborted", "job row: %r" % (row,))
        puts = [r for r in self.new_requests() if r["method"] == "PUT" and RE_PUT.match(r["path"])]
        self.assertEqual(puts, [], "data uploaded for a job aborted before it started")
        self.assertEqual(self.store_by("LastName", self.tag + "-"), {})
        self.assertEqual(self.spool_for(job), [])
        # An abort of a finished job changes nothing.
        out = self.pg.json("SELECT state FROM sf_bulk_abort(%d)" % job)
        self.assertEqual(out[0]["state"], "aborted")

    def test_abort_while_stuck_in_upload_complete(self):
        """Salesforce never starts the job (stuck in UploadComplete): abort ends it, all rows unprocessed."""
        self.emu.config(stuck_jobs=True)
        job = self.enqueue("""SELECT sf_bulk_insert('Lead', $$SELECT %s || '-' || n AS "LastName", 'Stuck' AS "Company"
                                FROM generate_series(1, 7) n$$)""" % sql_literal(self.tag))

        def closed():
            ids = (self.job_row(job) or {}).get("sf_job_ids") or []
            j = self.emu.jobs().get(ids[0]) if ids else None
            return ids[0] if j and j["state"] == "UploadComplete" else None
        sf_id = poll(closed, 20, 0.05, "the Salesforce job to be closed")
        time.sleep(0.3)  # let a poll or two see UploadComplete: the job must not be taken for finished
        self.assertEqual(self.job_row(job)["state"], "running")
        self.pg.psql("SELECT 1 FROM sf_bulk_abort(%d);" % job)
        row = self.wait(job, 30)
        self.assertEqual(row["state"], "aborted", "job row: %r" % (row,))
        self.assertEqual(self.emu.jobs()[sf_id]["state"], "Aborted")
        self.assertEqual(int(self.pg.value("SELECT count(*) FROM sf_bulk_unprocessed(%d)" % job)),
                         len(self.emu.unprocessed_rows(sf_id)))
        self.assertEqual(self.store_by("LastName", self.tag + "-"), {})

    def test_abort_multi_chunk_job(self):
        """Three uploads driven one at a time (max_parallel_jobs = 1); abort while the first is processing. The
        uploads not started are never created, and every row is accounted for: processed rows in
        successful/failed, all others (also those of the uploads never sent) in sf_bulk_unprocessed."""
        self.pg.psql("ALTER SYSTEM SET sf_bulk.max_parallel_jobs = 1; SELECT pg_reload_conf();")
        try:
            poll(lambda: self.pg.value("SHOW sf_bulk.max_parallel_jobs") == "1", 5, 0.05, "the reload")
            self.emu.config(batch_size=100, batch_delay_ms=600)
            t = "abortchunks_" + self.tag.replace("-", "_")
            rows = 1200
            self.pg.psql("""CREATE TABLE %s AS SELECT n, %s || '-' || n AS key, repeat('x', 2000) AS d
                              FROM generate_series(1, %d) n;""" % (t, sql_literal(self.tag), rows))
            job = self.enqueue("""SELECT sf_bulk_insert('Lead', $$SELECT key AS "LastName", 'C' AS "Company",
                                    d AS "Description" FROM %s ORDER BY n$$, max_upload_mb => 1)""" % t)

            def processing():
                ids = (self.job_row(job) or {}).get("sf_job_ids") or []
                j = self.emu.jobs().get(ids[0]) if ids else None
                return ids[0] if j and j["state"] == "InProgress" and j["numberRecordsProcessed"] > 0 else None
            sf_id = poll(processing, 20, 0.05, "the first upload to be processing")
            self.pg.psql("SELECT 1 FROM sf_bulk_abort(%d);" % job)
            row = self.wait(job, 30)
        finally:
            self.pg.psql("ALTER SYSTEM RESET sf_bulk.max_parallel_jobs; SELECT pg_reload_conf();")
        self.assertEqual(row["state"], "aborted", "job row: %r" % (row,))
        self.assertEqual(row["sf_job_ids"], [sf_id], "no Salesforce job created for the uploads not started")
        chunks = self.chunks(job)
        self.assertGreaterEqual(len(chunks), 3)
        self.assertEqual({c["step"] for c in chunks}, {"aborted"})
        processed = self.emu.jobs()[sf_id]["numberRecordsProcessed"]
        counts = self.pg.json("""SELECT (SELECT count(*) FROM sf_bulk_successful(%(j)d)) AS ok,
                                        (SELECT count(*) FROM sf_bulk_failed(%(j)d)) AS failed,
                                        (SELECT count(*) FROM sf_bulk_unprocessed(%(j)d)) AS unprocessed""" % {"j": job})[0]
        log("    multi-chunk abort: %d uploads, Salesforce processed %d; stored %r; records_processed %d"
            % (len(chunks), processed, counts, row["records_processed"]))
        self.assertEqual(counts["ok"] + counts["failed"], processed)
        self.assertEqual(self.spool_for(job), [])
        self.assertEqual(counts["ok"] + counts["failed"] + counts["unprocessed"], rows,
                         "every row is successful, failed or unprocessed (README: 'the rest appear in "
                         "sf_bulk_unprocessed'); the uploads never sent are missing")
