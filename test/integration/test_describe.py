"""Asking the org from SQL: sf_bulk_describe, sf_bulk_objects and sf_bulk_limits against the emulator. The rows
are Salesforce's answer (compared with what the emulator serves to a client of its own); describes are cached per
user mapping and revalidated after sf_bulk.describe_ttl; the backend's token is reused across calls and renewed
once after a 401; a stalled call is cancelled by statement_timeout; errors name the problem and no secret.
"""

import calendar
import json
import re
import time
import uuid

from harness import API, ORG, IntegrationTest, mapping_options, sql_literal

RE_DESCRIBE_LEAD = re.compile(r"^/services/data/v\d+\.0/sobjects/Lead/describe/?$")
RE_SOBJECTS = re.compile(r"^/services/data/v\d+\.0/sobjects/?$")
RE_LIMITS = re.compile(r"^/services/data/v\d+\.0/limits/?$")
RE_TOKEN = re.compile(r"^/services/oauth2/token/?$")


class Describe(IntegrationTest):

    def setUp(self):
        super().setUp()
        # Each test starts with an empty cache: what it measures is its own.
        self.pg.psql("DELETE FROM sf_bulk.describe; RESET sf_bulk.describe_ttl;")
        self.mark = self.emu.log_seq()

    def served(self, path):
        """What the emulator answers a client of its own for `path` (JSON). Its requests are in the emulator's
        log too: count sf_bulk's calls from a mark set after it."""
        status, body = self.emu.http("GET", "/services/data/v%s%s" % (API, path),
                                     headers={"Authorization": "Bearer " + self.emu.fresh_token()})
        self.assertEqual(status, 200, body[:300])
        return json.loads(body.decode())

    def calls(self, pattern):
        return [r for r in self.new_requests() if pattern.match(r["path"])]

    def test_describe_rows_are_salesforce_fields_in_order(self):
        rows = self.pg.json("SELECT * FROM sf_bulk_describe('Lead')")
        fields = self.served("/sobjects/Lead/describe")["fields"]
        self.assertEqual([r["name"] for r in rows], [f["name"] for f in fields])
        by_name = {r["name"]: r for r in rows}
        for f in fields:
            row = by_name[f["name"]]
            self.assertEqual(row["type"], f["type"], f["name"])
            self.assertEqual(row["label"], f.get("label"), f["name"])
            self.assertEqual(row["nillable"], f.get("nillable"), f["name"])
            self.assertEqual(row["external_id"], f.get("externalId"), f["name"])
            self.assertEqual(row["reference_to"] or [], f.get("referenceTo") or [], f["name"])
        self.assertEqual(by_name["Id"]["type"], "id")
        self.assertTrue(by_name["Id"]["id_lookup"])
        self.assertEqual(by_name["External_Id__c"]["external_id"], True)

    def test_describe_is_cached_then_revalidated(self):
        # A schema change of an earlier test dates Lead up to a second ahead: until then every describe is "new".
        modified = self.emu.admin("GET", "/schema")["objects"]["Lead"]["modified"]
        ahead = calendar.timegm(time.strptime(modified[:19], "%Y-%m-%dT%H:%M:%S")) + 1 - time.time()
        if ahead > 0:
            time.sleep(ahead)
        sql = "SELECT count(*) FROM sf_bulk_describe('Lead')"
        first = self.pg.value(sql)
        self.assertEqual(len(self.calls(RE_DESCRIBE_LEAD)), 1)
        # Within the TTL, in another session too: no call. The object name's case does not matter.
        self.assertEqual(self.pg.value("SELECT count(*) FROM sf_bulk_describe('LEAD')"), first)
        self.assertEqual(len(self.calls(RE_DESCRIBE_LEAD)), 1, "a cached describe asks nobody")
        # Past the TTL: asked again, conditionally: unchanged (304), the same rows.
        self.assertEqual(self.pg.value("SET sf_bulk.describe_ttl = 0; " + sql).splitlines()[-1], first)
        # refresh => true asks within the TTL.
        self.assertEqual(self.pg.value("SELECT count(*) FROM sf_bulk_describe('Lead', refresh => true)"), first)
        self.assertEqual([r["status"] for r in self.calls(RE_DESCRIBE_LEAD)], [200, 304, 304])
        cached = self.pg.json("SELECT server_name, object, api_version, validator IS NOT NULL AS validated "
                              "FROM sf_bulk.describe")
        self.assertEqual(cached, [{"server_name": "emu", "object": "lead", "api_version": API, "validated": True}])

    def test_a_field_added_in_salesforce_is_seen_on_refresh(self):
        name = "Seen_%s__c" % uuid.uuid4().hex[:8]
        before = self.pg.value("SELECT count(*) FROM sf_bulk_describe('Lead')")
        self.emu.admin("POST", "/schema/Lead/fields", {"name": name, "type": "string", "length": 40})
        self.addCleanup(self.emu.admin, "DELETE", "/schema/Lead/fields/%s" % name)
        # Within the TTL the cache answers (as Salesforce's own caches would, a change shows after the TTL).
        self.assertEqual(self.pg.value("SELECT count(*) FROM sf_bulk_describe('Lead')"), before)
        row = self.pg.json("SELECT name, type, length FROM sf_bulk_describe('Lead', refresh => true) "
                           "WHERE name = %s" % sql_literal(name))
        self.assertEqual(row, [{"name": name, "type": "string", "length": 40}])
        self.assertEqual([r["status"] for r in self.calls(RE_DESCRIBE_LEAD)], [200, 200])

    def test_preflight_reads_the_cache_and_repeated_refusals_ask_once(self):
        """An ingest call checks its columns against the describe; refused calls roll their cache row back, but
        the session keeps its copy: three refusals in one session cost one describe. A new session asks again
        (the table has nothing), and once a call is accepted the row stays for every session."""
        bad = """SELECT sf_bulk_insert('Lead', $$SELECT 'x' AS "LastName", 'y' AS "Company", 1 AS "Emial"$$);"""
        run = self.pg.psql("\\set ON_ERROR_STOP off\n" + bad + bad.replace("Emial", "Emal") +
                           bad.replace("Emial", "Eml"), check=False)
        self.assertEqual(run.stderr.count("ERROR:"), 3, run.stderr)
        self.assertIn('Lead has no field "Emial" (did you mean Email?)', run.stderr)
        self.assertIn('Lead has no field "Eml" (did you mean Email?)', run.stderr)
        self.assertEqual(len(self.calls(RE_DESCRIBE_LEAD)), 1, "one session, one describe")
        self.assertEqual(self.pg.value("SELECT count(*) FROM sf_bulk.describe"), "0")
        job = self.enqueue("""SELECT sf_bulk_insert('Lead', $$SELECT %s AS "LastName", 'y' AS "Company",
                                     'a@example.org' AS "Email"$$)""" % sql_literal(self.tag))
        self.assertCompleted(self.wait(job, 60))
        self.assertEqual(len(self.calls(RE_DESCRIBE_LEAD)), 2, "a new session, the table empty: asked again")
        self.pg.psql(bad.replace("1 AS \"Emial\"", "'z' AS \"Title\""))
        self.assertEqual(len(self.calls(RE_DESCRIBE_LEAD)), 2, "the accepted call's row serves the next session")

    def test_objects(self):
        served = sorted(o["name"] for o in self.served("/sobjects")["sobjects"])
        self.mark = self.emu.log_seq()
        rows = self.pg.json("SELECT * FROM sf_bulk_objects()")
        self.assertEqual([r["name"] for r in rows], served)
        lead = next(r for r in rows if r["name"] == "Lead")
        self.assertTrue(lead["queryable"])
        self.assertFalse(lead["custom"])
        self.assertEqual(len(self.calls(RE_SOBJECTS)), 1)
        self.pg.value("SELECT count(*) FROM sf_bulk_objects()")
        self.assertEqual(len(self.calls(RE_SOBJECTS)), 1, "describeGlobal is cached too")

    def test_limits_are_fresh(self):
        served = self.served("/limits")
        rows = self.pg.json("SELECT * FROM sf_bulk_limits()")
        totals = {r["name"]: (r["max"], r["remaining"]) for r in rows if r["app"] is None}
        self.assertEqual(set(totals), set(served))
        self.assertEqual(totals["DailyBulkV2QueryJobs"],
                         (served["DailyBulkV2QueryJobs"]["Max"], served["DailyBulkV2QueryJobs"]["Remaining"]))
        # The allocation moves: the next call shows it (nothing is cached).
        self.emu.admin("POST", "/usage", {"api": 1234})
        self.mark = self.emu.log_seq()
        remaining = self.pg.value("SELECT remaining FROM sf_bulk_limits() "
                                  "WHERE name = 'DailyApiRequests' AND app IS NULL")
        self.assertEqual(len(self.calls(RE_LIMITS)), 1)
        # This call counted too: the emulator's answer to the next client is one lower.
        self.assertEqual(int(remaining), self.served("/limits")["DailyApiRequests"]["Remaining"] + 1)

    def test_token_reused_and_renewed_once_after_401(self):
        out = self.pg.psql("SELECT count(*) > 0 FROM sf_bulk_limits(); SELECT count(*) > 0 FROM sf_bulk_limits();")
        self.assertEqual(out.split(), ["t", "t"])
        self.assertEqual(len(self.calls(RE_TOKEN)), 1, "one session, one login")
        # Salesforce revokes the session's token right after the first call: the second is refused once, the
        # backend logs in again, and the same call is answered.
        self.mark = self.emu.log_seq()
        self.emu.admin("POST", "/tokens/expire", {"after_calls": 1})
        out = self.pg.psql("SELECT count(*) > 0 FROM sf_bulk_limits(); SELECT count(*) > 0 FROM sf_bulk_limits();")
        self.assertEqual(out.split(), ["t", "t"])
        self.assertEqual([r["status"] for r in self.calls(RE_LIMITS)], [200, 401, 200])
        self.assertEqual(len(self.calls(RE_TOKEN)), 2, "the session's login, and one after the 401")

    def test_statement_timeout_cancels_a_stalled_call(self):
        self.emu.fault({"method": "GET", "path": r"/limits/?$", "action": "stall", "ms": 20000})
        t = time.monotonic()
        err = self.pg.psql_fail("SET statement_timeout = '700ms'; SELECT count(*) FROM sf_bulk_limits();")
        elapsed = time.monotonic() - t
        self.assertIn("canceling statement due to statement timeout", err.stderr)
        self.assertLess(elapsed, 8, "the call stopped at the timeout, not when the emulator answered")
        # The backend is fine afterwards, and its next call is answered.
        self.emu.admin("DELETE", "/faults")
        self.assertEqual(self.pg.value("SELECT count(*) > 0 FROM sf_bulk_limits()"), "t")

    def test_a_stale_describe_serves_while_salesforce_cannot_answer(self):
        sql = "SELECT count(*) FROM sf_bulk_describe('Lead')"
        # Cold cache and Salesforce unavailable: the error stands (there is nothing to fall back on).
        self.emu.fault({"method": "GET", "path": r"/sobjects/Lead/describe/?$", "action": "status", "status": 503,
                        "count": 1})
        err = self.pg.psql_fail(sql)
        self.assertIn("sf_bulk_describe: Salesforce refused the describe of \"Lead\"", err.stderr)
        self.assertEqual(self.pg.value("SELECT count(*) FROM sf_bulk.describe"), "0")
        first = self.pg.value(sql)
        # Past the TTL, a 503 and then a dropped connection: the cached rows, with a WARNING naming the cause
        # and the age, in a new session each time (so the session copy is not what answers).
        self.emu.fault({"method": "GET", "path": r"/sobjects/Lead/describe/?$", "action": "status", "status": 503,
                        "count": 1})
        out = self.pg.psql("SET sf_bulk.describe_ttl = 0; " + sql, check=False)
        self.assertEqual(out.stdout.split()[-1], first)
        self.assertRegex(out.stderr, r"WARNING:  sf_bulk_describe: Salesforce answered the describe with HTTP 503; "
                                     r"using the describe of \"Lead\" cached at \d{4}-\d\d-\d\d ")
        # Twice: libcurl sends a request once more on a fresh connection when a reused one dies unanswered.
        self.emu.fault({"method": "GET", "path": r"/sobjects/Lead/describe/?$", "action": "drop", "when": "request",
                        "count": 2})
        out = self.pg.psql("SET sf_bulk.describe_ttl = 0; " + sql, check=False)
        self.assertEqual(out.stdout.split()[-1], first)
        self.assertRegex(out.stderr, r"WARNING:  sf_bulk_describe: GET \S+/sobjects/Lead/describe: connection dropped: "
                                     r".*; using the describe of \"Lead\" cached at ")
        # Salesforce back: asked as usual (a 304, or a 200 when an earlier test's schema change dates Lead
        # ahead of the cached copy), no warning.
        out = self.pg.psql("SET sf_bulk.describe_ttl = 0; " + sql, check=False)
        self.assertNotIn("WARNING", out.stderr)
        self.assertEqual(out.stdout.split()[-1], first)
        self.assertIn([r["status"] for r in self.calls(RE_DESCRIBE_LEAD)][-1], (200, 304))

    def test_errors_name_the_problem(self):
        err = self.pg.psql_fail("SELECT * FROM sf_bulk_describe('NoSuchThing__c')")
        self.assertIn('ERROR:  42704: sf_bulk_describe: Salesforce object "NoSuchThing__c" does not exist, '
                      "or the server's user cannot see it", err.stderr)
        self.assertIn("HTTP 404 NOT_FOUND", err.stderr)
        err = self.pg.psql_fail("SELECT * FROM sf_bulk_describe('Lead/../limits')")
        self.assertIn('ERROR:  22023: sf_bulk_describe: invalid Salesforce object name "Lead/../limits"', err.stderr)
        err = self.pg.psql_fail("SELECT * FROM sf_bulk_describe(NULL)")
        self.assertIn("ERROR:  22004: sf_bulk_describe: object must not be NULL", err.stderr)
        err = self.pg.psql_fail("SELECT * FROM sf_bulk_limits(server => 'nowhere')")
        self.assertIn('server "nowhere" does not exist', err.stderr)
        self.assertEqual(self.calls(RE_LIMITS), [])

    def test_roles_need_usage_and_a_mapping_and_see_their_own_cache(self):
        password = "Wr0ng-%s" % uuid.uuid4().hex
        role = "it_describer_%s" % uuid.uuid4().hex[:6]
        self.pg.psql("CREATE ROLE %s LOGIN;" % role)
        self.addCleanup(self.pg.psql, "DROP OWNED BY %(r)s; DROP USER MAPPING IF EXISTS FOR %(r)s SERVER emu; "
                        "DROP ROLE %(r)s;" % {"r": role})
        err = self.pg.psql_fail("SELECT * FROM sf_bulk_limits()", user=role)
        self.assertIn("permission denied for foreign server emu", err.stderr)
        self.pg.psql("GRANT USAGE ON FOREIGN SERVER emu TO %s;" % role)
        err = self.pg.psql_fail("SELECT * FROM sf_bulk_limits()", user=role)
        self.assertIn("no user mapping for role %s on server emu" % role, err.stderr)
        self.pg.psql("CREATE USER MAPPING FOR %s SERVER emu OPTIONS (%s);" % (role, mapping_options(password)))
        err = self.pg.psql_fail("SELECT * FROM sf_bulk_describe('Lead')", user=role)
        self.assertIn("sf_bulk_describe: could not log in to Salesforce: invalid_grant: authentication failure",
                      err.stderr)
        self.assertNotIn(password, err.stderr)
        self.assertNotIn(password, self.pg.server_log())
        # With the right password the role gets its own cache row; the table itself stays closed to it.
        self.pg.psql("ALTER USER MAPPING FOR %s SERVER emu OPTIONS (SET password %s);"
                     % (role, sql_literal(ORG["user"]["password"])))
        self.assertGreater(int(self.pg.value("SELECT count(*) FROM sf_bulk_describe('Lead')", user=role)), 5)
        self.pg.value("SELECT count(*) FROM sf_bulk_describe('Lead')")
        self.assertEqual(self.pg.value("SELECT count(DISTINCT mapping) FROM sf_bulk.describe WHERE object = 'lead'"),
                         "2", "one cache row per user mapping")
        err = self.pg.psql_fail("SELECT count(*) FROM sf_bulk.describe", user=role)
        self.assertIn("permission denied for table describe", err.stderr)
