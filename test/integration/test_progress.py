"""Live progress: sf_bulk_jobs moves while Salesforce (the emulator, slowed down) processes a job, and
sf_bulk_wait prints progress NOTICEs that client_min_messages = warning silences."""

from harness import IntegrationTest, poll, sql_literal


class Progress(IntegrationTest):
    def test_progress_columns_move_during_a_slow_job(self):
        n = 300
        self.emu.config(batch_size=20, batch_delay_ms=300)  # 15 internal batches: about 4.5 s of processing
        job = self.enqueue("""SELECT sf_bulk_insert('Lead', $$SELECT %s || '-' || n AS "LastName",
                                'Progress' AS "Company" FROM generate_series(1, %d) n$$)""" % (sql_literal(self.tag), n))
        seen = []

        def sample():
            row = self.job_row(job)
            seen.append((row["state"], row["phase"], row["records_processed"], row["api_calls"]))
            return row["state"] in ("completed", "failed", "aborted")
        poll(sample, 60, 0.1, "the job to end")
        running = [s for s in seen if s[0] == "running"]
        counts = sorted({s[2] for s in running if s[1] == "processing"})
        # Salesforce reports whole internal batches as it goes: several distinct partial counts, growing.
        partial = [c for c in counts if 0 < c < n]
        self.assertGreaterEqual(len(partial), 2, "progress seen while running: %r" % (running,))
        self.assertIn("processing", {s[1] for s in running})
        calls = [s[3] for s in running]
        self.assertEqual(calls, sorted(calls), "api_calls never goes down")
        self.assertGreater(calls[-1], calls[0], "api_calls grows while the job runs")
        final = self.job_row(job)
        self.assertCompleted(final)
        self.assertEqual(final["records_processed"], n)
        self.assertRegex(final["org_api_usage"] or "", r"^api-usage=\d+/\d+$")

    def _wait_stderr(self, settings):
        self.emu.config(batch_size=20, batch_delay_ms=500)  # about 7.5 s: more than one 5 s progress period
        job = self.enqueue("""SELECT sf_bulk_insert('Lead', $$SELECT %s || '-' || n AS "LastName",
                                'Notice' AS "Company" FROM generate_series(1, 300) n$$)""" % sql_literal(self.tag))
        p = self.pg.psql("%s SELECT state FROM sf_bulk_wait(%d, '60 s');" % (settings, job), check=False)
        return job, p.stdout, p.stderr

    def test_wait_prints_progress_notices(self):
        job, out, err = self._wait_stderr("")
        self.assertIn("completed", out)
        self.assertRegex(err, r"NOTICE:  sf_bulk job %d: running \((processing|[a-z ]+)\), \d+ of 300 rows processed"
                         % job)

    def test_progress_notices_are_silent_with_client_min_messages_warning(self):
        job, out, err = self._wait_stderr("SET client_min_messages = warning;")
        self.assertIn("completed", out)
        self.assertNotIn("NOTICE", err)
