"""Item 5: query jobs: SOQL subset, query vs queryAll, paging with maxRecords/locator, headers, abort/delete."""

import time
import unittest

from emu import EmuTestCase

QUERY_CREATE_KEYS = ["id", "operation", "object", "createdById", "createdDate", "systemModstamp", "state",
                     "concurrencyMode", "contentType", "apiVersion", "lineEnding", "columnDelimiter"]


class Query(EmuTestCase):
    def setUp(self):
        super().setUp()
        self.config(shuffle_results=False)
        info = self.run_job("Account", "insert", "Name,External_Id__c,NumberOfEmployees,Industry\n"
                                                 "Okafor Farms,A1,10,Agriculture\nTanaka & Söhne,A2,250,Banking\n")
        self.assertEqual(info["numberRecordsFailed"], 0)
        info = self.run_job("Contact", "insert",
                            "FirstName,LastName,Account.External_Id__c,Birthdate,Last_Contacted__c,HasOptedOutOfEmail,"
                            "Email,Score__c\n"
                            "Ada,Okafor,A1,1990-01-02,2025-10-01T08:00:00.000Z,true,ada@x.org,10.5\n"
                            "Per,Lindqvist,,1985-05-06,2025-10-02T09:30:00Z,false,per@y.org,\n"
                            "Mei,Tanaka,A2,,2025-10-03T11:15:00Z,false,mei@x.org,99\n"
                            'Quo,"O""Neil",,,,false,,1\n')
        self.assertEqual(info["numberRecordsFailed"], 0, self.results(info["id"], "failedResults"))

    def names(self, soql, op="query"):
        return [r["LastName"] for r in self.query_rows(soql, op)]

    def test_create_shape_and_info(self):
        r = self.api("POST", "/jobs/query", {"operation": "query", "query": "SELECT Id FROM Contact"})
        self.assertEqual(r.status, 200)
        job = r.json()
        self.assertEqual(list(job), QUERY_CREATE_KEYS)
        self.assertEqual((job["state"], job["object"], job["operation"]), ("UploadComplete", "Contact", "query"))
        info = self.wait_job(job["id"], "query")
        self.assertEqual(list(info), QUERY_CREATE_KEYS[:10] + ["jobType", "lineEnding", "columnDelimiter",
                                                               "numberRecordsProcessed", "retries",
                                                               "totalProcessingTime"])
        self.assertEqual((info["jobType"], info["numberRecordsProcessed"]), ("V2Query", 4))

    def test_result_format(self):
        job, info = self.query("SELECT Id, Name, Account.Name, Birthdate, Last_Contacted__c, HasOptedOutOfEmail, "
                               "Score__c FROM Contact WHERE LastName = 'Okafor' OR LastName = 'lindqvist' "
                               "ORDER BY LastName")
        r = self.api("GET", "/jobs/query/%s/results" % job["id"])
        self.assertEqual(r.headers["Sforce-Locator"], "null")
        self.assertEqual(r.headers["Sforce-NumberOfRecords"], "2")
        lines = r.text.split("\n")
        self.assertEqual(lines[0], '"Id","Name","Account.Name","Birthdate","Last_Contacted__c","HasOptedOutOfEmail",'
                                   '"Score__c"')
        self.assertRegex(lines[1], r'^"003[0-9A-Za-z]{15}","Per Lindqvist","","1985-05-06",'
                                   r'"2025-10-02T09:30:00.000Z","false",""$')
        self.assertRegex(lines[2], r'^"003[0-9A-Za-z]{15}","Ada Okafor","Okafor Farms","1990-01-02",'
                                   r'"2025-10-01T08:00:00.000Z","true","10.50"$')
        self.assertEqual(lines[3], "")  # trailing newline after the last row

    def test_where_operators(self):
        self.assertEqual(self.names("SELECT LastName FROM Contact WHERE Score__c > 5 ORDER BY Score__c DESC"),
                         ["Tanaka", "Okafor"])
        self.assertEqual(self.names("SELECT LastName FROM Contact WHERE Score__c = null ORDER BY LastName"),
                         ["Lindqvist"])
        self.assertEqual(self.names("SELECT LastName FROM Contact WHERE Score__c != null AND "
                                    "(HasOptedOutOfEmail = true OR LastName LIKE 'tan%') ORDER BY LastName"),
                         ["Okafor", "Tanaka"])
        self.assertEqual(self.names("SELECT LastName FROM Contact WHERE LastName IN ('Okafor','Tanaka','x') "
                                    "ORDER BY LastName DESC"), ["Tanaka", "Okafor"])
        self.assertEqual(self.names("SELECT LastName FROM Contact WHERE LastName NOT IN ('Okafor') AND "
                                    "Birthdate >= 1985-01-01 ORDER BY LastName"), ["Lindqvist"])
        self.assertEqual(self.names("SELECT LastName FROM Contact WHERE Last_Contacted__c < "
                                    "2025-10-02T10:00:00-01:00 ORDER BY Last_Contacted__c"), ["Okafor", "Lindqvist"])
        self.assertEqual(self.names("SELECT LastName FROM Contact WHERE Account.Industry = 'Banking'"), ["Tanaka"])
        self.assertEqual(self.names("SELECT LastName FROM Contact WHERE LastName = 'O\"Neil' AND FirstName != 'It\\'s'"), ['O"Neil'])
        self.assertEqual(self.names("SELECT LastName FROM Contact WHERE NOT LastName LIKE '%a%' ORDER BY LastName"),
                         ['Lindqvist', 'O"Neil'])
        self.assertEqual(len(self.names("SELECT LastName FROM Contact ORDER BY LastName LIMIT 3")), 3)
        self.assertEqual(self.names("SELECT LastName FROM Contact ORDER BY Score__c ASC NULLS LAST, LastName LIMIT 4")
                         [-1], "Lindqvist")
        self.assertEqual(self.names("select lastname from contact where email like '%@x.org' order by lastname"),
                         ["Okafor", "Tanaka"])

    def test_query_vs_query_all(self):
        rec = [r for r in self.records("Contact") if r["LastName"] == "Tanaka"][0]
        self.run_job("Contact", "delete", "Id\n%s\n" % rec["Id"])
        self.assertNotIn("Tanaka", self.names("SELECT LastName FROM Contact"))
        rows = self.query_rows("SELECT LastName, IsDeleted FROM Contact WHERE LastName = 'Tanaka'", "queryAll")
        self.assertEqual(rows, [{"LastName": "Tanaka", "IsDeleted": "true"}])

    def test_paging_locator_and_repeatable_pages(self):
        self.run_job("Lead", "insert", "LastName,Company\n" + "".join("L%02d,C\n" % i for i in range(25)))
        job, info = self.query("SELECT LastName FROM Lead ORDER BY LastName")
        self.assertEqual(info["numberRecordsProcessed"], 25)
        got, loc, pages = [], None, []
        while True:
            path = "/jobs/query/%s/results?maxRecords=10" % job["id"] + ("&locator=" + loc if loc else "")
            r = self.api("GET", path)
            self.assertEqual(r.status, 200)
            pages.append((path, r.raw))
            rows = r.csv()
            self.assertEqual(rows[0], ["LastName"])  # header on every page
            self.assertEqual(int(r.headers["Sforce-NumberOfRecords"]), len(rows) - 1)
            got += [x[0] for x in rows[1:]]
            loc = r.headers["Sforce-Locator"]
            if loc == "null":
                break
            self.assertRegex(loc, r"^[A-Za-z0-9_-]+$")
        self.assertEqual(got, ["L%02d" % i for i in range(25)])
        self.assertEqual(len(pages), 3)
        for path, raw in pages:
            self.assertEqual(self.api("GET", path).raw, raw)
        self.config(query_page_size=7)
        r = self.api("GET", "/jobs/query/%s/results" % job["id"])
        self.assertEqual(r.headers["Sforce-NumberOfRecords"], "7")
        self.assertEqual(self.api("GET", "/jobs/query/%s/results?maxRecords=0" % job["id"]).status, 400)
        self.assertEqual(self.api("GET", "/jobs/query/%s/results?locator=@@" % job["id"]).status, 400)

    def test_version_rules(self):
        job, _ = self.query("SELECT Id FROM Contact")
        self.assertApiError(self.api("GET", "/jobs/query/%s/results" % job["id"], v="61.0"), 409, "API_ERROR")
        r = self.api("POST", "/jobs/query", {"operation": "query", "query": "SELECT LastName, Id FROM Contact"},
                     v="49.0")
        self.wait_job(r.json()["id"], "query", v="49.0")
        res = self.api("GET", "/jobs/query/%s/results" % r.json()["id"], v="49.0")
        self.assertEqual(res.csv()[0], ["Id", "LastName"])  # alphabetical up to 49.0

    def test_delimiter_line_ending(self):
        job, _ = self.query("SELECT LastName, FirstName FROM Contact WHERE LastName = 'Okafor'",
                            columnDelimiter="TAB", lineEnding="CRLF")
        r = self.api("GET", "/jobs/query/%s/results" % job["id"])
        self.assertEqual(r.text, '"LastName"\t"FirstName"\r\n"Okafor"\t"Ada"\r\n')

    def test_result_pages(self):
        self.run_job("Lead", "insert", "LastName,Company\n" + "".join("L%02d,C\n" % i for i in range(13)))
        job, _ = self.query("SELECT LastName FROM Lead")
        r = self.api("GET", "/jobs/query/%s/resultPages?maxRecords=2" % job["id"])
        body = r.json()
        self.assertEqual(len(body["resultPages"]), 5)
        self.assertFalse(body["done"])
        total = 0
        while True:
            for p in body["resultPages"]:
                res = self.request("GET", p["resultUrl"])
                self.assertEqual(res.status, 200)
                total += int(res.headers["Sforce-NumberOfRecords"])
            if body["done"]:
                break
            body = self.request("GET", body["nextRecordsUrl"]).json()
        self.assertEqual(total, 13)
        self.assertEqual(self.api("GET", "/jobs/query/%s/resultPages" % job["id"], v="57.0").status, 409)

    def test_result_pages_shape(self):
        """docs/bulk-api-2.md §9.4: resultPages, nextRecordsUrl, done; every link with a locator, no page size unless
        the caller gave one; result_pages_per_call links per answer."""
        self.run_job("Lead", "insert", "LastName,Company\n" + "".join("L%02d,C\n" % i for i in range(5)))
        self.config(query_page_size=1, result_pages_per_call=2)
        job, _ = self.query("SELECT LastName FROM Lead")
        base = "/services/data/v62.0/jobs/query/%s/" % job["id"]
        body = self.api("GET", "/jobs/query/%s/resultPages" % job["id"]).json()
        self.assertEqual(list(body), ["resultPages", "nextRecordsUrl", "done"])
        self.assertEqual(body, {"resultPages": [{"resultUrl": base + "results?locator=MA"},
                                                {"resultUrl": base + "results?locator=MQ"}],
                                "nextRecordsUrl": base + "resultPages?locator=Mg", "done": False})
        body = self.request("GET", body["nextRecordsUrl"]).json()
        body = self.request("GET", body["nextRecordsUrl"]).json()
        self.assertEqual(body, {"resultPages": [{"resultUrl": base + "results?locator=NA"}], "nextRecordsUrl": None,
                                "done": True})
        res = self.request("GET", base + "results?locator=NA")
        self.assertEqual((res.text, res.headers["Sforce-Locator"]), ('"LastName"\n"L04"\n', "null"))
        body = self.api("GET", "/jobs/query/%s/resultPages?maxRecords=3" % job["id"]).json()
        self.assertEqual(body["resultPages"], [{"resultUrl": base + "results?locator=MA&maxRecords=3"},
                                               {"resultUrl": base + "results?locator=Mw&maxRecords=3"}])
        self.assertTrue(body["done"])

    def test_unsupported_and_invalid_soql(self):
        cases = [
            ("SELECT COUNT() FROM Contact", "API_ERROR"),
            ("SELECT LastName, COUNT(Id) FROM Contact GROUP BY LastName", "API_ERROR"),
            ("SELECT LastName FROM Contact GROUP BY LastName", "API_ERROR"),
            ("SELECT Id FROM Contact LIMIT 5 OFFSET 2", "API_ERROR"),
            ("SELECT TYPEOF Owner WHEN User THEN Name END FROM Contact", "API_ERROR"),
            ("SELECT Id, (SELECT Id FROM Contacts) FROM Account", "API_ERROR"),
            ("SELECT FIELDS(ALL) FROM Contact", "API_ERROR"),
            ("SELECT MailingAddress FROM Contact", "API_ERROR"),
            ("SELECT Id FROM Contct", "INVALID_TYPE"),
            ("SELECT Foo__c FROM Contact", "INVALID_FIELD"),
            ("SELECT Id FROM Contact WHERE Score__c = 'x'", "INVALID_FIELD"),
            ("SELECT Id Contact", "MALFORMED_QUERY"),
            ("SELECT FROM Contact", "MALFORMED_QUERY"),
        ]
        for soql, code in cases:
            with self.subTest(soql=soql):
                r = self.api("POST", "/jobs/query", {"operation": "query", "query": soql})
                self.assertApiError(r, 400, code)
        r = self.api("POST", "/jobs/query", {"operation": "query", "query": "SELECT MailingAddress FROM Contact"})
        self.assertEqual(r.json()[0]["message"], "Selecting compound data not supported in Bulk Query")
        r = self.api("POST", "/jobs/query", {"operation": "select", "query": "SELECT Id FROM Contact"})
        self.assertApiError(r, 400, "API_ERROR", "Invalid value: 'select' supplied for property: 'operation'")
        # configurable: unknown field -> job Failed instead
        self.config(query_errors_at="job")
        r = self.api("POST", "/jobs/query", {"operation": "query", "query": "SELECT Foo__c FROM Contact"})
        self.assertEqual(r.status, 200)
        info = self.wait_job(r.json()["id"], "query")
        self.assertEqual(info["state"], "Failed")

    def test_abort_delete_and_not_complete(self):
        self.config(processing_delay_ms=2000)
        r = self.api("POST", "/jobs/query", {"operation": "query", "query": "SELECT Id FROM Contact"})
        jid = r.json()["id"]
        self.assertApiError(self.api("GET", "/jobs/query/%s/results" % jid), 400, "JOB_NOT_COMPLETE")
        self.assertApiError(self.api("DELETE", "/jobs/query/" + jid), 400, "API_ERROR",
                            "Error encountered when deleting the job because the job is not terminated")
        r = self.api("PATCH", "/jobs/query/" + jid, {"state": "Aborted"})
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["state"], "Aborted")
        self.assertEqual(list(r.json()), ["id", "operation", "object", "createdById", "createdDate",
                                          "systemModstamp", "state", "concurrencyMode", "contentType", "apiVersion"])
        time.sleep(0.1)
        self.assertEqual(self.api("GET", "/jobs/query/" + jid).json()["state"], "Aborted")
        self.assertEqual(self.api("DELETE", "/jobs/query/" + jid).status, 204)
        self.assertEqual(self.api("GET", "/jobs/query/" + jid).status, 404)
        self.assertEqual(self.api("GET", "/jobs/ingest/" + jid).status, 404)

    def test_query_job_fault_and_limit(self):
        self.config(next_job_fails=True)
        job, info = self.query("SELECT Id FROM Contact")
        self.assertEqual(info["state"], "Failed")
        self.admin("POST", "/usage", {"query_jobs": 10000})
        r = self.api("POST", "/jobs/query", {"operation": "query", "query": "SELECT Id FROM Contact"})
        self.assertApiError(r, 400, "LIMIT_EXCEEDED")

    def test_synthetic_large_result_paged_lazily(self):
        self.config(synthetic_query_rows=2000000, query_page_size=50000)
        job, info = self.query("SELECT Id, LastName, Birthdate, Account.Name FROM Contact")
        self.assertEqual(info["numberRecordsProcessed"], 2000000)
        r = self.api("GET", "/jobs/query/%s/results" % job["id"])
        rows = r.csv()
        self.assertEqual(rows[0], ["Id", "LastName", "Birthdate", "Account.Name"])
        self.assertEqual(len(rows), 50001)
        self.assertRegex(rows[1][0], r"^003[0-9A-Za-z]{15}$")
        loc = r.headers["Sforce-Locator"]
        last = self.api("GET", "/jobs/query/%s/results?maxRecords=10&locator=%s" % (job["id"], "MTk5OTk5NQ"))
        self.assertEqual(last.headers["Sforce-NumberOfRecords"], "5")
        self.assertEqual(last.headers["Sforce-Locator"], "null")
        self.assertNotEqual(loc, "null")

    def test_rest_query_for_cli(self):
        r = self.api("GET", "/query?q=SELECT+Name,+OrganizationType,+IsSandbox+FROM+Organization")
        self.assertEqual(r.status, 200)
        body = r.json()
        self.assertEqual(body["totalSize"], 1)
        self.assertEqual(body["records"][0]["IsSandbox"], False)
        r = self.api("GET", "/query?q=SELECT+LastName,+Account.Name+FROM+Contact+WHERE+LastName='Okafor'")
        self.assertEqual(r.json()["records"][0]["Account"]["Name"], "Okafor Farms")
        r = self.api("GET", "/query?q=SELECT+Id+FROM+ScratchOrgInfo")
        self.assertApiError(r, 400, "INVALID_TYPE")


if __name__ == "__main__":
    unittest.main()
