"""Done means 7, 8 and 9: tokens expiring mid-job, bursts of 503s on uploads and polls, wrong credentials."""

import collections
import time
import uuid

from harness import (ORG, RE_ANY_JOB, RE_CREATE, RE_JOB, RE_PUT, RE_TOKEN, IntegrationTest, log, mapping_options,
                     poll, sql_literal)


def is_ingest(r):
    return bool(RE_CREATE.match(r["path"]) or RE_ANY_JOB.match(r["path"]))


class Faults(IntegrationTest):

    def test_token_expiry_mid_job(self):
        self.emu.config(processing_delay_ms=2500)
        job = self.enqueue("""SELECT sf_bulk_insert('Lead', $$SELECT %s || '-' || n AS "LastName", 'Tok' AS "Company"
                                FROM generate_series(1, 20) n$$)""" % sql_literal(self.tag))

        # Wait until the job is closed and being polled with a working token, then kill every token.
        def polling():
            reqs = self.new_requests()
            return any(r["method"] == "GET" and RE_JOB.match(r["path"]) and r["status"] == 200 for r in reqs)
        poll(polling, 15, 0.02, "the first successful poll")
        mark = self.emu.log_seq()
        expired = self.emu.admin("POST", "/tokens/expire", {})
        self.assertGreater(expired["expired"], 0)
        row = self.wait(job, 60)
        self.assertCompleted(row)
        self.assertEqual(row["records_processed"], 20)
        self.assertEqual(len(self.store_by("LastName", self.tag + "-")), 20)

        reqs = self.emu.requests(mark)
        unauthorized = [r for r in reqs if r["status"] == 401 and is_ingest(r)]
        self.assertTrue(unauthorized, "no 401 after the tokens expired: %s" % summarize(reqs))
        first = unauthorized[0]
        tokens = [r for r in reqs if RE_TOKEN.match(r["path"]) and r["seq"] > first["seq"]]
        self.assertTrue(tokens, "no token request after the 401: %s" % summarize(reqs))
        self.assertEqual(tokens[0]["status"], 200)
        retried = [r for r in reqs if r["seq"] > tokens[0]["seq"] and r["method"] == first["method"]
                   and r["path"] == first["path"]]
        self.assertTrue(retried, "the call that got the 401 was not retried: %s" % summarize(reqs))
        self.assertLess(retried[0]["status"], 300, "the retried call failed: %s" % summarize(reqs))
        self.assertEqual(len(unauthorized), 1, "one 401 is enough; the new token must be used: %s" % summarize(reqs))
        log("    token expiry: %s" % summarize(reqs))

    def test_burst_of_503s(self):
        self.emu.config(processing_delay_ms=300)
        self.emu.fault([
            {"method": "PUT", "path": r"/jobs/ingest/[^/]+/batches/?$", "status": 503, "count": 2},
            {"method": "GET", "path": r"/jobs/ingest/[0-9A-Za-z]+/?$", "status": 503, "count": 3},
        ])
        job = self.enqueue("""SELECT sf_bulk_insert('Lead', $$SELECT %s || '-' || n AS "LastName", '503' AS "Company"
                                FROM generate_series(1, 40) n$$)""" % sql_literal(self.tag))
        row = self.wait(job, 90)
        self.assertCompleted(row)
        self.assertEqual(row["records_processed"], 40)
        store = self.store_by("LastName", self.tag + "-")
        self.assertEqual(len(store), 40)
        self.assertEqual({k: len(v) for k, v in store.items() if len(v) > 1}, {}, "rows inserted twice")

        reqs = self.new_requests()
        puts = [r for r in reqs if r["method"] == "PUT" and RE_PUT.match(r["path"])]
        per_job = collections.Counter(RE_PUT.match(r["path"]).group(1) for r in puts)
        self.assertEqual(sum(1 for r in puts if r["status"] == 503), 2, "both PUT faults hit")
        self.assertEqual(sum(1 for r in reqs if r["method"] == "GET" and r["status"] == 503), 3,
                         "all three poll faults hit")
        self.assertTrue(all(v == 1 for v in per_job.values()), "more than one PUT to a Salesforce job: %r" % per_job)

        chunk = self.chunks(job)[0]
        failed_puts = {RE_PUT.match(r["path"]).group(1) for r in puts if r["status"] != 201}
        good_puts = {RE_PUT.match(r["path"]).group(1) for r in puts if r["status"] == 201}
        self.assertEqual(good_puts, {chunk["sf_job_id"]}, "the chunk's final job is the one that took the upload")
        self.assertEqual(set(chunk["replaced_sf_job_ids"]), failed_puts,
                         "replaced_sf_job_ids records the jobs whose upload failed")
        self.assertEqual(row["sf_job_ids"], [chunk["sf_job_id"]])
        self.assertEqual(row["uploads"], 1)
        self.assertEqual(row["api_calls"], sum(1 for r in reqs if is_ingest(r)),
                         "api_calls counts every ingest call, retries and replacements included")
        emu_jobs = self.emu.jobs()
        states = {j: emu_jobs[j]["state"] for j in failed_puts}
        log("    503 burst: %d PUTs (%s), replaced jobs %s; %s"
            % (len(puts), [r["status"] for r in puts], states, summarize(reqs)))
        self.assertTrue(all(s == "Aborted" for s in states.values()), "replaced jobs are aborted: %r" % states)

    def test_wrong_credentials(self):
        password = "Wr0ng-%s" % uuid.uuid4().hex
        self.pg.psql("""
            CREATE ROLE it_badcreds LOGIN;
            GRANT USAGE ON FOREIGN SERVER emu TO it_badcreds;
            CREATE USER MAPPING FOR it_badcreds SERVER emu OPTIONS (%s);
            """ % mapping_options(password))
        # The call-time check logs in first and refuses at once, without the password.
        err = self.pg.psql_fail("""SELECT sf_bulk_insert('Lead', $$SELECT 'x' AS "LastName", 'y' AS "Company"$$)""",
                                user="it_badcreds")
        self.assertIn("sf_bulk_insert: could not log in to Salesforce: invalid_grant: authentication failure",
                      err.stderr)
        self.assertNotIn(password, err.stderr)
        # The worker's own login, with the check skipped: the job fails with the same error.
        job = self.enqueue("""SELECT sf_bulk_insert('Lead', $$SELECT 'x' AS "LastName", 'y' AS "Company"$$,
                                             validate => false)""", user="it_badcreds")
        row = self.wait(job, 60, user="it_badcreds")
        self.assertEqual(row["state"], "failed", "job row: %r" % (row,))
        self.assertIn("invalid_grant: authentication failure", row["error"] or "")
        self.assertFalse(any(is_ingest(r) and r["status"] < 300 for r in self.new_requests()),
                         "nothing was created without a token")
        # The password appears nowhere: job and chunk rows (all columns), results, the server log.
        everything = self.pg.psql("""
            SELECT row_to_json(j) FROM sf_bulk.jobs j;
            SELECT row_to_json(c) FROM sf_bulk.chunks c;
            SELECT row_to_json(r) FROM sf_bulk.results r WHERE job_id = %d;
            SELECT row_to_json(v) FROM sf_bulk_jobs v;""" % job)
        self.assertFalse(password in everything, "the password is in a job, chunk or result row")
        self.assertIn("invalid_grant", everything)
        self.assertFalse(password in self.pg.server_log(), "the password is in the server log")
        self.assertEqual(self.spool_for(job), [], "the failed job's spool file was removed")

    def test_corrected_credentials_take_effect(self):
        """After a login failure the user fixes the mapping's password: the next job logs in and completes
        (the worker must not keep the old failure for the rest of its life)."""
        self.pg.psql("""
            CREATE ROLE it_fixcreds LOGIN;
            GRANT USAGE ON FOREIGN SERVER emu TO it_fixcreds;
            CREATE USER MAPPING FOR it_fixcreds SERVER emu OPTIONS (%s);
            """ % mapping_options("Wr0ng-%s" % uuid.uuid4().hex))
        # validate => false: the worker's login is under test (the call-time check would refuse the first call).
        sql = """SELECT sf_bulk_insert('Lead', $$SELECT %s AS "LastName", 'Fix' AS "Company"$$, validate => false)"""
        job = self.enqueue(sql % sql_literal(self.tag + "-before"), user="it_fixcreds")
        row = self.wait(job, 60, user="it_fixcreds")
        self.assertEqual(row["state"], "failed")
        self.assertIn("invalid_grant", row["error"] or "")
        self.pg.psql("ALTER USER MAPPING FOR it_fixcreds SERVER emu OPTIONS (SET password %s);"
                     % sql_literal(ORG["user"]["password"]))
        mark = self.emu.log_seq()
        job = self.enqueue(sql % sql_literal(self.tag + "-after"), user="it_fixcreds")
        row = self.wait(job, 60, user="it_fixcreds")
        tokens = [r for r in self.emu.requests(mark) if RE_TOKEN.match(r["path"])]
        self.assertCompleted(row)
        self.assertEqual(len(tokens), 1, "one new token request with the corrected password")
        self.assertEqual(len(self.store_by("LastName", self.tag + "-after")), 1)

    def test_salesforce_job_fails_midway(self):
        """Salesforce fails the job after one internal batch: the job fails with Salesforce's message, and the
        rows it did process are stored with the rest as unprocessed."""
        n = 50
        self.emu.config(batch_size=10, next_job_fails={"after_batches": 1,
                                                       "message": "InvalidBatch : emulated failure after a batch"})
        job = self.enqueue("""SELECT sf_bulk_insert('Lead', $$SELECT %s || '-' || n AS "LastName", 'Half' AS "Company"
                                FROM generate_series(1, %d) n$$)""" % (sql_literal(self.tag), n))
        row = self.wait(job, 60)
        self.assertEqual(row["state"], "failed", "job row: %r" % (row,))
        self.assertIn("InvalidBatch : emulated failure after a batch", row["error"] or "")
        sf_id = row["sf_job_ids"][0]
        emu_job = self.emu.jobs()[sf_id]
        self.assertEqual(emu_job["state"], "Failed")
        counts = self.pg.json("""SELECT (SELECT count(*) FROM sf_bulk_successful(%(j)d)) AS ok,
                                        (SELECT count(*) FROM sf_bulk_failed(%(j)d)) AS failed,
                                        (SELECT count(*) FROM sf_bulk_unprocessed(%(j)d)) AS unprocessed""" % {"j": job})[0]
        self.assertEqual(counts, {"ok": emu_job["numberRecordsProcessed"], "failed": 0,
                                  "unprocessed": len(self.emu.unprocessed_rows(sf_id))})
        self.assertEqual(counts["ok"] + counts["unprocessed"], n)
        self.assertEqual(len(self.store_by("LastName", self.tag + "-")), counts["ok"])
        self.assertEqual(row["records_processed"], counts["ok"])


def summarize(reqs):
    out = []
    for r in reqs:
        p = r["path"]
        m = RE_ANY_JOB.match(p)
        short = ("job…" + p[m.end(1):]) if m else p.split("/")[-1] or p
        out.append("%s %s %s" % (r["method"], short, r["status"]))
    return "; ".join(out)





class LostResponses(IntegrationTest):

    def test_lost_responses_and_dropped_downloads(self):
        """Responses lost after Salesforce acted (create, close) and result downloads cut off mid-body: the job
        completes, every row is in the store once, and the result rows are complete and not duplicated."""
        self.emu.config(processing_delay_ms=200)
        self.emu.fault([
            {"method": "POST", "path": r"/jobs/ingest/?$", "status": 500, "after_processing": True, "count": 1},
            # skip 1: the first PATCH aborts the job whose upload is dropped; the second closes its replacement
            {"method": "PATCH", "path": r"/jobs/ingest/[0-9A-Za-z]+/?$", "status": 503, "after_processing": True,
             "skip": 1, "count": 1},
            {"path": r"/successfulResults/?$", "action": "drop", "when": "response", "count": 1},
            {"path": r"/failedResults/?$", "action": "drop", "when": "response", "chunked": True, "count": 1},
            {"method": "PUT", "action": "drop", "when": "request", "count": 1},
        ])
        n = 400
        job = self.enqueue("""SELECT sf_bulk_insert('Lead', $$SELECT %s || '-' || n AS "LastName",
                                CASE WHEN n %% 10 = 0 THEN NULL ELSE 'Lost' END AS "Company"
                                FROM generate_series(1, %d) n$$)""" % (sql_literal(self.tag), n))
        row = self.wait(job, 90)
        reqs = self.new_requests()
        log("    lost responses: %s" % summarize(reqs))
        self.assertCompleted(row)
        self.assertEqual((row["records_processed"], row["records_failed"]), (n, n // 10))
        fired = [r for r in reqs if r["fault"] is not None]
        self.assertEqual(len(fired), 5, "every fault hit once: %s" % summarize(fired))
        store = self.store_by("LastName", self.tag + "-")
        self.assertEqual(len(store), n - n // 10)
        self.assertEqual({k: len(v) for k, v in store.items() if len(v) > 1}, {})
        puts = [r for r in reqs if r["method"] == "PUT" and RE_PUT.match(r["path"])]
        per_job = collections.Counter(RE_PUT.match(r["path"]).group(1) for r in puts)
        self.assertTrue(all(v == 1 for v in per_job.values()), per_job)
        chunk = self.chunks(job)[0]
        self.assertEqual(len(chunk["replaced_sf_job_ids"]), 1, "the job whose upload was cut off was replaced")
        self.assertEqual(row["sf_job_ids"], [chunk["sf_job_id"]])
        counts = self.pg.json("""SELECT (SELECT count(*) FROM sf_bulk_successful(%(j)d)) AS ok,
                                        (SELECT count(DISTINCT fields->>'LastName') FROM sf_bulk_successful(%(j)d)) AS ok_keys,
                                        (SELECT count(*) FROM sf_bulk_failed(%(j)d)) AS failed,
                                        (SELECT count(DISTINCT fields->>'LastName') FROM sf_bulk_failed(%(j)d)) AS failed_keys,
                                        (SELECT count(*) FROM sf_bulk_unprocessed(%(j)d)) AS unprocessed""" % {"j": job})[0]
        self.assertEqual(counts, {"ok": n - n // 10, "ok_keys": n - n // 10, "failed": n // 10,
                                  "failed_keys": n // 10, "unprocessed": 0})
        errors = self.pg.json("SELECT DISTINCT split_part(sf_error, ':', 1) AS code FROM sf_bulk_failed(%d)" % job)
        self.assertEqual(errors, [{"code": "REQUIRED_FIELD_MISSING"}])

    def test_token_rejected_on_upload(self):
        """A 401 INVALID_SESSION_ID on the PUT itself (nothing stored): new token, the same PUT once more."""
        self.emu.fault({"method": "PUT", "status": 401, "error_code": "INVALID_SESSION_ID",
                        "message": "Session expired or invalid", "count": 1})
        job = self.enqueue("""SELECT sf_bulk_insert('Lead', $$SELECT %s || '-' || n AS "LastName", 'Tok' AS "Company"
                                FROM generate_series(1, 10) n$$)""" % sql_literal(self.tag))
        row = self.wait(job, 60)
        reqs = self.new_requests()
        log("    401 on upload: %s" % summarize(reqs))
        self.assertCompleted(row)
        self.assertEqual(len(self.store_by("LastName", self.tag + "-")), 10)
        puts = [r for r in reqs if r["method"] == "PUT"]
        self.assertEqual([r["status"] for r in puts], [401, 201])
        tok = [r for r in reqs if RE_TOKEN.match(r["path"]) and puts[0]["seq"] < r["seq"] < puts[1]["seq"]]
        self.assertEqual(len(tok), 1, "one token request between the rejected and the resent upload")

    def test_token_rejected_on_result_download(self):
        """A 401 INVALID_SESSION_ID on a result download: new token, the download once more, results complete."""
        self.emu.fault({"method": "GET", "path": r"/successfulResults/?$", "status": 401,
                        "error_code": "INVALID_SESSION_ID", "message": "Session expired or invalid", "count": 1})
        job = self.enqueue("""SELECT sf_bulk_insert('Lead', $$SELECT %s || '-' || n AS "LastName", 'Tok' AS "Company"
                                FROM generate_series(1, 10) n$$)""" % sql_literal(self.tag))
        row = self.wait(job, 60)
        reqs = self.new_requests()
        log("    401 on a result download: %s" % summarize(reqs))
        self.assertCompleted(row)
        downloads = [r for r in reqs if r["path"].rstrip("/").endswith("/successfulResults")]
        self.assertEqual([r["status"] for r in downloads], [401, 200])
        self.assertTrue([r for r in reqs if RE_TOKEN.match(r["path"]) and downloads[0]["seq"] < r["seq"] <
                         downloads[1]["seq"]], "a token request between the two downloads")
        self.assertEqual(self.pg.value("SELECT count(DISTINCT fields->>'LastName') FROM sf_bulk_successful(%d)" % job),
                         "10")


class Throttling(IntegrationTest):

    def test_429_retry_after_is_honoured(self):
        self.emu.fault({"method": "POST", "path": r"/jobs/ingest/?$", "status": 429, "headers": {"Retry-After": "2"},
                        "count": 1})
        job = self.enqueue("""SELECT sf_bulk_insert('Lead', $$SELECT %s AS "LastName", '429' AS "Company"$$)"""
                           % sql_literal(self.tag))
        row = self.wait(job, 60)
        self.assertCompleted(row)
        creates = [r for r in self.new_requests() if r["method"] == "POST" and RE_CREATE.match(r["path"])]
        self.assertEqual([r["status"] for r in creates], [429, 200])
        gap = (creates[1]["start_epoch_ms"] - creates[0]["start_epoch_ms"]) / 1000.0
        log("    429 with Retry-After: 2 -> retried after %.2f s" % gap)
        self.assertGreaterEqual(gap, 1.9, "Retry-After was not honoured")
        self.assertLess(gap, 10.0)

    def job_refused_by_the_daily_limit(self):
        """The org's daily API allocation used up; a one-row job is enqueued and has got its first 403. The
        worker's API reserve is off: with it, the worker would not even try (test_api_reserve)."""
        self.pg.psql("ALTER SYSTEM SET sf_bulk.api_reserve = 0; SELECT pg_reload_conf();")
        self.addCleanup(self.pg.psql, "ALTER SYSTEM RESET sf_bulk.api_reserve; SELECT pg_reload_conf();")
        time.sleep(0.5)  # the worker reloads at its next round
        self.emu.admin("POST", "/usage", {"api": 100})
        self.emu.config(daily_api_limit=100)
        job = self.enqueue("""SELECT sf_bulk_insert('Lead', $$SELECT %s AS "LastName", 'Limit' AS "Company"$$)"""
                           % sql_literal(self.tag))
        poll(lambda: any(r["status"] == 403 for r in self.new_requests()), 10, 0.05, "the 403")
        return job

    def test_daily_limit_makes_the_job_wait(self):
        """REQUEST_LIMIT_EXCEEDED (daily allocation used up): the job waits instead of failing."""
        job = self.job_refused_by_the_daily_limit()
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            self.assertEqual(self.job_row(job)["state"], "running", "the job must wait, not fail")
            time.sleep(0.1)
        chunk = self.chunks(job)[0]
        self.assertIn("REQUEST_LIMIT_EXCEEDED", chunk["error"] or "")
        log("    daily limit: the job waits until %s (chunk error: %s)" % (chunk["not_before"], chunk["error"]))

    def test_abort_while_waiting_out_a_backoff(self):
        """An abort must not wait for the end of a backoff: here the daily-limit wait (15 minutes)."""
        job = self.job_refused_by_the_daily_limit()
        time.sleep(0.2)
        t = time.monotonic()
        self.pg.psql("SELECT 1 FROM sf_bulk_abort(%d);" % job)
        err = None
        try:
            row = self.wait(job, 5)
        except Exception as e:  # still running after 5 s
            err = e
        log("    abort while waiting out a backoff: %s after %.1f s"
            % ("ended" if err is None else "still running", time.monotonic() - t))
        self.assertIsNone(err, "the abort was not acted upon within 5 s: %s" % err)
        self.assertEqual(row["state"], "aborted")
        self.assertEqual([r for r in self.new_requests() if r["method"] == "PUT"], [])
