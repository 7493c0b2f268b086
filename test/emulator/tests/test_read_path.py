"""The read path against docs/bulk-api-2.md §9 (query jobs), §10 (limits) and docs/soql-and-rest.md §3, §5:
seeding through the admin API, result rendering, query-job faults, result-volume allocation."""

import re
import time
import unittest

from emu import EmuTestCase


class Seeding(EmuTestCase):
    def test_generate_records(self):
        r = self.admin("POST", "/records/Account", {"generate": {"count": 3, "start": 7, "values": {
            "Name": "Acct {n}", "External_Id__c": "X-{n}-y", "Active__c": True, "NumberOfEmployees": 5}}})
        self.assertEqual(r["count"], 3)
        recs = self.records("Account")
        self.assertEqual([x["Name"] for x in recs], ["Acct 7", "Acct 8", "Acct 9"])
        self.assertEqual([x["External_Id__c"] for x in recs], ["X-7-y", "X-8-y", "X-9-y"])
        self.assertEqual((r["first_id"], r["last_id"]), (recs[0]["Id"], recs[-1]["Id"]))
        self.assertEqual({x["Active__c"] for x in recs}, {"true"})
        self.assertRegex(recs[0]["CreatedDate"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z$")
        # the generated external ids are indexed: an upsert matches them
        info = self.run_job("Account", "upsert", "External_Id__c,Rating\nX-8-y,Hot\n",
                            externalIdFieldName="External_Id__c")
        self.assertEqual(self.results(info["id"], "successfulResults")[0]["sf__Created"], "false")
        # ids continue after generated ones
        ids = self.admin("POST", "/records/Account", [{"Name": "Z", "IsDeleted": True}])["ids"]
        self.assertNotIn(ids[0], [x["Id"] for x in recs])
        self.assertEqual([x for x in self.records("Account") if x["Id"] == ids[0]][0]["IsDeleted"], "true")
        r = self.request("POST", "/__emulator/records/Account", {"generate": {"count": 1, "values": {"Nope": 1}}},
                         token=None)
        self.assertEqual(r.status, 400)

    def test_generate_cycles(self):
        """A cycle gives the k-th generated record values[k % len]; null leaves the field null (also over a
        default); cycled external ids are indexed."""
        self.admin("POST", "/records/Account", {"generate": {"count": 5, "values": {
            "Name": "C{n}", "Active__c": {"cycle": [True, None]}, "NumberOfEmployees": {"cycle": [1, 2, None]},
            "External_Id__c": {"cycle": ["E1", "E2", "E3", "E4", "E5"]}}}})
        recs = self.records("Account")
        self.assertEqual([x.get("Active__c") for x in recs], ["true", None, "true", None, "true"])
        self.assertEqual([x.get("NumberOfEmployees") for x in recs], ["1", "2", None, "1", "2"])
        info = self.run_job("Account", "upsert", "External_Id__c,Rating\nE4,Hot\n", externalIdFieldName="External_Id__c")
        self.assertEqual(self.results(info["id"], "successfulResults")[0]["sf__Created"], "false")
        jobs = self.admin("GET", "/jobs")["jobs"]
        self.assertIsInstance(jobs[0]["processingStartedEpochMs"], int)
        for bad in ({"cycle": []}, {"cycle": [1], "x": 2}, {"other": 1}):
            r = self.request("POST", "/__emulator/records/Account",
                             {"generate": {"count": 1, "values": {"Name": bad}}}, token=None)
            self.assertEqual(r.status, 400)


class QueryResults(EmuTestCase):
    def setUp(self):
        super().setUp()
        self.admin("POST", "/records/User", [{"Username": "owner2@x.org", "LastName": "Two", "Email": "o2@x.org"}])
        self.owner2 = [u for u in self.records("User") if u["Username"] == "owner2@x.org"][0]["Id"]
        ids = self.admin("POST", "/records/Account", [
            {"Name": 'Quote "Inc"', "OwnerId": self.owner2, "Description": "two\nlines, and a comma"},
            {"Name": "Plain", "Rating": "Hot"}])["ids"]
        self.admin("POST", "/records/Contact", [{"LastName": "WithAcct", "AccountId": ids[0]},
                                                {"LastName": "Orphan"}])

    def rows(self, soql, **kw):
        job, info = self.query(soql, **kw)
        self.assertEqual(info["state"], "JobComplete", info)
        return self.api("GET", "/jobs/query/%s/results" % job["id"])

    def test_every_value_quoted_nulls_empty_and_relationships(self):
        """§9.3: every value double-quoted, embedded quotes doubled, null -> "", dotted parent columns, null parent
        -> "", SELECT order (50.0+), trailing line ending."""
        r = self.rows("SELECT Name, Rating, Owner.Email, Owner.Username, Description FROM Account ORDER BY Name")
        self.assertEqual(r.text,
                         '"Name","Rating","Owner.Email","Owner.Username","Description"\n'
                         '"Plain","Hot","etl@sfbulk.emulator","etl@sfbulk.emulator",""\n'
                         '"Quote ""Inc""","","o2@x.org","owner2@x.org","two\nlines, and a comma"\n')
        r = self.rows("SELECT LastName, Account.Name, Account.Owner.Email FROM Contact ORDER BY LastName")
        self.assertEqual(r.text, '"LastName","Account.Name","Account.Owner.Email"\n'
                                 '"Orphan","",""\n"WithAcct","Quote ""Inc""","o2@x.org"\n')

    def test_delimiters_and_crlf_for_every_delimiter(self):
        for name, d in (("COMMA", ","), ("TAB", "\t"), ("PIPE", "|"), ("SEMICOLON", ";"), ("CARET", "^"),
                        ("BACKQUOTE", "`")):
            with self.subTest(delimiter=name):
                r = self.rows("SELECT Name, Rating FROM Account WHERE Name = 'Plain'", columnDelimiter=name,
                              lineEnding="CRLF")
                self.assertEqual(r.text, '"Name"%s"Rating"\r\n"Plain"%s"Hot"\r\n' % (d, d))

    def test_empty_result_is_header_only(self):
        r = self.rows("SELECT Id, Name FROM Account WHERE Name = 'nobody'")
        self.assertEqual((r.text, r.headers["Sforce-Locator"], r.headers["Sforce-NumberOfRecords"]),
                         ('"Id","Name"\n', "null", "0"))

    def test_datetimes_utc_whole_seconds(self):
        """§9.3 / soql-and-rest §1.4: date-times in UTC, milliseconds .000, Z."""
        r = self.rows("SELECT CreatedDate, SystemModstamp FROM Account")
        for row in r.csv()[1:]:
            for v in row:
                self.assertRegex(v, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z$")

    def test_query_vs_query_all_soft_deleted(self):
        self.admin("POST", "/records/Account", [{"Name": "Gone", "IsDeleted": True}])
        live = [x[0] for x in self.rows("SELECT Name FROM Account ORDER BY Name").csv()[1:]]
        every = [x[0] for x in self.rows("SELECT Name, IsDeleted FROM Account ORDER BY Name", op="queryAll").csv()[1:]]
        self.assertEqual(live, ["Plain", 'Quote "Inc"'])
        self.assertEqual(every, ["Gone", "Plain", 'Quote "Inc"'])


class QueryJobStates(EmuTestCase):
    def test_upload_complete_in_progress_job_complete(self):
        """§4.2: created UploadComplete, then InProgress (counters grow by batch_size with batch_delay_ms), then
        JobComplete; systemModstamp moves, createdDate does not."""
        self.admin("POST", "/records/Account", {"generate": {"count": 25, "values": {"Name": "A{n}"}}})
        self.config(processing_delay_ms=300, batch_delay_ms=200, batch_size=10)
        r = self.api("POST", "/jobs/query", {"operation": "query", "query": "SELECT Id FROM Account"})
        job = r.json()
        self.assertEqual(job["state"], "UploadComplete")
        seen = []
        deadline = time.time() + 20
        while time.time() < deadline:
            info = self.api("GET", "/jobs/query/" + job["id"]).json()
            seen.append((info["state"], info["numberRecordsProcessed"]))
            if info["state"] == "JobComplete":
                break
            time.sleep(0.03)
        states = [s for s, _ in seen]
        self.assertEqual(states[0], "UploadComplete")
        self.assertIn("InProgress", states)
        self.assertEqual(seen[-1], ("JobComplete", 25))
        progress = sorted({n for s, n in seen if s == "InProgress"})
        self.assertTrue(set(progress) <= {0, 10, 20, 25}, progress)
        self.assertEqual(info["createdDate"], job["createdDate"])
        self.assertRegex(info["systemModstamp"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000\+0000$")
        self.assertNotIn("errorMessage", info)

    def test_list_query_jobs(self):
        """§9.7: the query job list shows query jobs only, with jobType V2Query."""
        self.query("SELECT Id FROM Account")
        self.create_job("Account", "insert")
        body = self.api("GET", "/jobs/query").json()
        self.assertTrue(body["done"])
        self.assertEqual([j["jobType"] for j in body["records"]], ["V2Query"])
        self.assertEqual(self.api("GET", "/jobs/query?jobType=V2Ingest").json()["records"], [])
        self.assertEqual(len(self.api("GET", "/jobs/query?jobType=V2Query").json()["records"]), 1)

    def test_versions_below_47_have_no_query_jobs(self):
        """§1, §11: query jobs exist from 47.0; resultPages from 58.0."""
        r = self.api("POST", "/jobs/query", {"operation": "query", "query": "SELECT Id FROM Account"}, v="46.0")
        self.assertApiError(r, 404, "NOT_FOUND")
        job, _ = self.query("SELECT Id FROM Account", v="47.0")
        self.assertEqual(job["apiVersion"], 47.0)
        self.assertEqual(self.api("GET", "/jobs/query/%s/results" % job["id"], v="47.0").status, 200)
        self.assertApiError(self.api("GET", "/jobs/query/%s/resultPages" % job["id"], v="47.0"), 404, "NOT_FOUND")
        self.assertApiError(self.api("GET", "/jobs/query/%s/results" % job["id"], v="48.0"), 409, "API_ERROR")


class QueryJobFaults(EmuTestCase):
    def setUp(self):
        super().setUp()
        self.admin("POST", "/records/Account", {"generate": {"count": 30, "values": {"Name": "A{n}"}}})

    def test_fail_with_and_without_error_message(self):
        """§9.2: a Failed query job may carry no errorMessage."""
        self.config(next_job_fails={"kind": "query", "message": "InvalidBatch : boom"})
        _, info = self.query("SELECT Id FROM Account")
        self.assertEqual((info["state"], info["errorMessage"]), ("Failed", "InvalidBatch : boom"))
        self.config(next_job_fails={"kind": "query", "message": None})
        _, info = self.query("SELECT Id FROM Account")
        self.assertEqual(info["state"], "Failed")
        self.assertNotIn("errorMessage", info)
        self.config(next_job_fails={"kind": "query"})
        _, info = self.query("SELECT Id FROM Account")
        self.assertEqual(info["errorMessage"], "InvalidBatch : Failed to process query: the job was retried more "
                                               "than 15 times")
        self.assertEqual(info["retries"], 15)
        r = self.api("GET", "/jobs/query/%s/results" % info["id"])
        self.assertApiError(r, 400, "JOB_NOT_COMPLETE")

    def test_kind_waits_for_a_job_of_that_kind(self):
        self.config(next_job_fails={"kind": "query"})
        ingest = self.run_job("Account", "insert", "Name\nB\n")
        self.assertEqual(ingest["state"], "JobComplete")
        _, info = self.query("SELECT Id FROM Account")
        self.assertEqual(info["state"], "Failed")
        _, info = self.query("SELECT Id FROM Account")
        self.assertEqual(info["state"], "JobComplete")

    def test_query_timeout(self):
        self.config(next_job_fails={"kind": "query", "error": "QUERY_TIMEOUT"})
        _, info = self.query("SELECT Id FROM Account")
        self.assertEqual((info["state"], info["errorMessage"]),
                         ("Failed", "QUERY_TIMEOUT : Your query request was running for too long."))

    def test_fail_after_batches_shows_progress_first(self):
        self.config(next_job_fails={"kind": "query", "after_batches": 2}, batch_size=10, batch_delay_ms=100)
        r = self.api("POST", "/jobs/query", {"operation": "query", "query": "SELECT Id FROM Account"})
        seen = set()
        while True:
            info = self.api("GET", "/jobs/query/" + r.json()["id"]).json()
            seen.add(info["numberRecordsProcessed"])
            if info["state"] in ("JobComplete", "Failed"):
                break
            time.sleep(0.02)
        self.assertEqual(info["state"], "Failed")
        self.assertEqual(info["numberRecordsProcessed"], 20)
        self.assertIn(10, seen)

    def test_nth_page_faults_then_refetch_by_locator(self):
        """§13 (fault) failure between pages and success when the same locator is retried: 503, 429 and a
        dropped connection on the Nth results download (skip N-1)."""
        job, _ = self.query("SELECT Name FROM Account ORDER BY Name")
        base = "/jobs/query/%s/results?maxRecords=10" % job["id"]
        first = self.api("GET", base)
        loc2 = first.headers["Sforce-Locator"]
        page2 = self.api("GET", base + "&locator=" + loc2)
        self.assertEqual(page2.status, 200)
        for spec in ({"status": 503}, {"status": 500}, {"status": 429, "headers": {"Retry-After": "1"}},
                     {"action": "drop", "when": "response"}):
            with self.subTest(spec=spec):
                self.fault(method="GET", path="/results$", skip=1, **spec)  # the 2nd download from now on
                self.assertEqual(self.api("GET", base).raw, first.raw)
                if spec.get("action") == "drop":
                    with self.assertRaises(Exception):
                        self.api("GET", base + "&locator=" + loc2)
                else:
                    bad = self.api("GET", base + "&locator=" + loc2)
                    self.assertEqual(bad.status, spec["status"])
                    if spec["status"] == 429:
                        self.assertEqual(bad.headers["Retry-After"], "1")
                again = self.api("GET", base + "&locator=" + loc2)
                self.assertEqual((again.status, again.raw), (200, page2.raw))
                self.assertEqual(again.headers["Sforce-Locator"], page2.headers["Sforce-Locator"])


class QueryAllocations(EmuTestCase):
    def test_daily_query_jobs_limit(self):
        """§10: DailyBulkV2QueryJobs counts created query jobs; at the maximum, creation is refused."""
        self.config(daily_query_jobs_limit=2)
        self.query("SELECT Id FROM Account")
        self.assertEqual(self.api("GET", "/limits").json()["DailyBulkV2QueryJobs"], {"Max": 2, "Remaining": 1})
        self.query("SELECT Id FROM Account")
        r = self.api("POST", "/jobs/query", {"operation": "query", "query": "SELECT Id FROM Account"})
        self.assertApiError(r, 400, "LIMIT_EXCEEDED", "ExceededQuota : Maximum number of Bulk API 2.0 query jobs "
                                                      "per rolling 24 hour period exceeded")
        self.assertEqual(self.api("GET", "/limits").json()["DailyBulkV2QueryJobs"], {"Max": 2, "Remaining": 0})

    def test_result_volume_counts_and_refuses(self):
        """§9.1, §10: the result volume of finished jobs counts against DailyBulkV2QueryFileStorageMB; when it is
        used up, creation is refused with the documented message."""
        self.assertEqual(self.api("GET", "/limits").json()["DailyBulkV2QueryFileStorageMB"],
                         {"Max": 976562, "Remaining": 976562})
        self.admin("POST", "/records/Account", {"generate": {"count": 30000, "values": {"Name": "Account {n}"}}})
        self.query("SELECT Id, Name FROM Account")
        used = self.admin("GET", "/usage")
        self.assertGreaterEqual(used["query_storage_kb"], 30000 * 36 // 1024)
        self.assertEqual(self.api("GET", "/limits").json()["DailyBulkV2QueryFileStorageMB"]["Remaining"],
                         976562 - used["query_storage_kb"] // 1024)
        self.admin("POST", "/usage", {"query_storage_mb": 976563})
        r = self.api("POST", "/jobs/query", {"operation": "query", "query": "SELECT Id FROM Account"})
        self.assertApiError(r, 400, "LIMIT_EXCEEDED", "Max bulk v2 query result size stored (1000000000) kb per 24 "
                                                      "hrs has been exceeded")
        self.assertEqual(self.api("GET", "/limits").json()["DailyBulkV2QueryFileStorageMB"]["Remaining"], 0)


class LimitsResource(EmuTestCase):
    def test_keys_shapes_and_versions(self):
        """soql-and-rest §5.2: {Max, Remaining} per key, per-app nesting; DailyBulkApiBatches from 49.0
        (DailyBulkApiRequests before), the Bulk 2.0 query keys from 47.0, /limits from 29.0."""
        body = self.api("GET", "/limits").json()
        for k in ("DailyApiRequests", "DailyBulkApiBatches", "DailyBulkV2QueryJobs", "DailyBulkV2QueryFileStorageMB"):
            self.assertEqual(body[k]["Max"] - body[k]["Remaining"] >= 0, True, k)
        self.assertEqual(body["DailyBulkV2QueryJobs"], {"Max": 10000, "Remaining": 10000})
        self.assertEqual(body["DailyBulkApiBatches"]["Max"], 15000)
        self.assertEqual(list(body["DailyApiRequests"]), ["Max", "Remaining"])  # bulk-api-2 §10
        self.config(limits_per_app=True)
        body = self.api("GET", "/limits").json()
        apps = {k: v for k, v in body["DailyApiRequests"].items() if k not in ("Max", "Remaining")}
        self.assertEqual(list(apps.values()), [{"Max": 0, "Remaining": 0}])
        old = self.api("GET", "/limits", v="48.0").json()
        self.assertIn("DailyBulkApiRequests", old)
        self.assertNotIn("DailyBulkApiBatches", old)
        self.assertNotIn("DailyBulkV2QueryJobs", self.api("GET", "/limits", v="46.0").json())
        self.assertApiError(self.api("GET", "/limits", v="28.0"), 404, "NOT_FOUND")

    def test_counts_real_usage_and_settable(self):
        """Every counted call moves DailyApiRequests and Sforce-Limit-Info alike; ingest batches and query jobs
        move their keys; POST /__emulator/config sets the maxima, POST /__emulator/usage the counters."""
        r = self.api("GET", "/limits")
        n = int(re.match(r"api-usage=(\d+)/15000$", r.headers["Sforce-Limit-Info"]).group(1))
        self.assertEqual(r.json()["DailyApiRequests"]["Remaining"], 15000 - n)
        self.config(batch_size=2)
        self.run_job("Account", "insert", "Name\nA\nB\nC\n")
        self.query("SELECT Id FROM Account")
        r = self.api("GET", "/limits")
        body = r.json()
        used = int(re.match(r"api-usage=(\d+)/", r.headers["Sforce-Limit-Info"]).group(1))
        self.assertEqual(body["DailyApiRequests"]["Remaining"], 15000 - used)
        self.assertEqual(body["DailyBulkApiBatches"]["Remaining"], 15000 - 2)
        self.assertEqual(body["DailyBulkV2QueryJobs"]["Remaining"], 10000 - 1)
        self.config(daily_api_limit=500, daily_batches_limit=100, daily_query_jobs_limit=50,
                    daily_query_result_kb_limit=2048000)
        self.admin("POST", "/usage", {"api": 10, "batches": 7, "query_jobs": 5, "query_storage_mb": 3})
        r = self.api("GET", "/limits")
        body = r.json()
        self.assertEqual(r.headers["Sforce-Limit-Info"], "api-usage=11/500")
        self.assertEqual(body["DailyApiRequests"]["Max"], 500)
        self.assertEqual(body["DailyApiRequests"]["Remaining"], 489)
        self.assertEqual(body["DailyBulkApiBatches"], {"Max": 100, "Remaining": 93})
        self.assertEqual(body["DailyBulkV2QueryJobs"], {"Max": 50, "Remaining": 45})
        self.assertEqual(body["DailyBulkV2QueryFileStorageMB"], {"Max": 2000, "Remaining": 1997})

    def test_limit_info_on_every_api_response(self):
        """bulk-api-2 §1: Sforce-Limit-Info on every REST response, Bulk and describe included, errors too."""
        job, _ = self.query("SELECT Id FROM Account")
        for method, path in (("GET", "/jobs/query/" + job["id"]), ("GET", "/jobs/query/%s/results" % job["id"]),
                             ("GET", "/jobs/query/%s/resultPages" % job["id"]), ("GET", "/sobjects"),
                             ("GET", "/sobjects/Account/describe"), ("GET", "/limits"),
                             ("GET", "/query?q=SELECT+Id+FROM+Account"), ("GET", "/jobs/query/750Em00000000zzAAA"),
                             ("POST", "/jobs/query")):
            with self.subTest(path=path):
                r = self.api(method, path, {} if method == "POST" else None)
                self.assertRegex(r.headers.get("Sforce-Limit-Info") or "", r"^api-usage=\d+/15000$")


if __name__ == "__main__":
    unittest.main()
