"""Foreign-table scans under Salesforce's failures, end to end against the emulator: transient errors are retried
(the core retry policy), an expired session is renewed once, REST pages are followed through nextRecordsUrl, a
Bulk query job's pages are read in turn, a failing Salesforce answer becomes an error carrying its code, message
and the SOQL sent (never a credential), and a cancelled Bulk scan aborts its Salesforce job.
"""

import re
import time

from harness import ORG, IntegrationTest, poll, sql_literal


class ForeignScanResilience(IntegrationTest):

    def setUp(self):
        super().setUp()
        self.pg.psql("DROP SCHEMA IF EXISTS fdw_res CASCADE; CREATE SCHEMA fdw_res;"
                     "IMPORT FOREIGN SCHEMA salesforce LIMIT TO (Lead) FROM SERVER emu INTO fdw_res;")
        self.addCleanup(self.pg.psql, "SET client_min_messages = warning; DROP SCHEMA IF EXISTS fdw_res CASCADE;")

    def seed(self, n, company):
        self.emu.admin("POST", "/records/Lead", {"generate": {"count": n, "values": {
            "LastName": "Res {n}", "Company": company, "NumberOfEmployees": "{n}"}}})

    def scan_requests(self, since, pattern):
        return [r for r in self.emu.requests(since) if re.search(pattern, r.get("path", ""))]

    def test_transient_failures_are_retried(self):
        company = "Retry-" + self.tag
        self.seed(3, company)
        self.emu.fault({"method": "GET", "path": r"/query/?$", "action": "status", "status": 503, "count": 2})
        mark = self.emu.log_seq()
        out = self.pg.value("SELECT count(*) FROM fdw_res.lead WHERE company = %s" % sql_literal(company))
        self.assertEqual(out, "3")
        self.assertEqual(len(self.scan_requests(mark, r"/query/?$")), 3, "two 503s, then the answer")

    def test_an_expired_session_is_renewed(self):
        company = "Token-" + self.tag
        self.seed(2, company)
        self.assertEqual(self.pg.value("SELECT count(*) FROM fdw_res.lead WHERE company = %s" % sql_literal(company)),
                         "2")
        self.emu.admin("POST", "/tokens/expire", {})
        # The same session: its token is refused once (401), a new one is fetched and the query sent again.
        self.assertEqual(self.pg.value("SELECT count(*) FROM fdw_res.lead WHERE company = %s" % sql_literal(company)),
                         "2")

    def test_rest_pages_are_followed(self):
        company = "Pages-" + self.tag
        self.seed(4500, company)
        plan = self.pg.psql("SET sf_bulk.scan_engine = 'rest'; EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) "
                            "SELECT lastname FROM fdw_res.lead WHERE company = %s" % sql_literal(company))
        self.assertIn("rows=4500", plan)
        self.assertRegex(plan, r"Salesforce Pages: 3\b", plan)
        total = self.pg.value("SET sf_bulk.scan_engine = 'rest'; SELECT sum(numberofemployees) FROM fdw_res.lead "
                              "WHERE company = %s" % sql_literal(company)).splitlines()[-1]
        self.assertEqual(total, str(4500 * 4501 // 2))

    def test_bulk_rows_match(self):
        company = "BulkRows-" + self.tag
        self.seed(2500, company)
        out = self.pg.psql("SET sf_bulk.scan_engine = 'bulk'; SELECT count(*), count(DISTINCT id), "
                           "sum(numberofemployees) FROM fdw_res.lead WHERE company = %s" % sql_literal(company))
        self.assertEqual(out.strip().splitlines()[-1], "2500|2500|%d" % (2500 * 2501 // 2))

    def test_salesforce_errors_carry_code_message_and_soql(self):
        self.emu.fault({"method": "GET", "path": r"/query/?$", "action": "status", "status": 400,
                        "error_code": "MALFORMED_QUERY", "message": "unexpected token: 'WHEREVER'"})
        err = self.pg.psql_fail("SELECT count(*) FROM fdw_res.lead WHERE numberofemployees > 5")
        self.assertIn("MALFORMED_QUERY", err.stderr)
        self.assertIn("unexpected token", err.stderr)
        self.assertIn("SOQL: SELECT Id FROM Lead WHERE NumberOfEmployees > 5", err.stderr)
        for secret in (ORG["client_secret"], ORG["user"]["password"]):
            self.assertNotIn(secret, err.stderr)
        self.assertNotIn("Bearer", err.stderr)

    def test_a_failing_bulk_job_is_an_error(self):
        self.emu.fault({"method": "POST", "path": r"/jobs/query/?$", "action": "status", "status": 400,
                        "error_code": "INVALIDJOB", "message": "Selecting compound data not supported in Bulk Query"})
        err = self.pg.psql_fail("SET sf_bulk.scan_engine = 'bulk'; SELECT count(*) FROM fdw_res.lead")
        self.assertIn("INVALIDJOB", err.stderr)
        self.assertIn("SOQL: SELECT Id FROM Lead", err.stderr)

    def test_a_cancelled_bulk_scan_aborts_its_job(self):
        company = "Cancel-" + self.tag
        self.seed(10, company)
        before = set(self.emu.jobs())
        self.emu.config(processing_delay_ms=20000)
        t = time.monotonic()
        err = self.pg.psql_fail("SET sf_bulk.scan_engine = 'bulk'; SET statement_timeout = '700ms'; "
                                "SELECT count(*) FROM fdw_res.lead WHERE company = %s" % sql_literal(company))
        elapsed = time.monotonic() - t
        self.assertIn("canceling statement due to statement timeout", err.stderr)
        self.assertLess(elapsed, 5.0)

        def aborted():
            jobs = [j for i, j in self.emu.jobs().items() if i not in before and j.get("kind") == "query"]
            return len(jobs) == 1 and jobs[0].get("state") == "Aborted"
        poll(aborted, 10, 0.1, "the scan's query job to be Aborted in Salesforce")
        # The session goes on.
        self.assertEqual(self.pg.value("SELECT 1"), "1")

