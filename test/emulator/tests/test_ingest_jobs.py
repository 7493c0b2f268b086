"""Item 2: ingest job lifecycle: create validation and shapes, one upload per job, size cap, close/abort,
processing states and counters, get, list, delete, retention."""

import json
import time
import unittest

from emu import TOKEN, EmuTestCase

CREATE_KEYS = ["id", "operation", "object", "createdById", "createdDate", "systemModstamp", "state",
               "concurrencyMode", "contentType", "apiVersion", "contentUrl", "lineEnding", "columnDelimiter"]
INFO_KEYS = ["id", "operation", "object", "createdById", "createdDate", "systemModstamp", "state",
             "concurrencyMode", "contentType", "apiVersion", "jobType", "lineEnding", "columnDelimiter",
             "numberRecordsProcessed", "numberRecordsFailed", "retries", "totalProcessingTime",
             "apiActiveProcessingTime", "apexProcessingTime"]


class Create(EmuTestCase):
    def test_create_shape_exact(self):
        r = self.api("POST", "/jobs/ingest", {"object": "Contact", "operation": "insert"})
        self.assertEqual(r.status, 200)
        job = r.json()
        self.assertEqual(list(job), CREATE_KEYS)
        self.assertEqual(job["state"], "Open")
        self.assertRegex(job["id"], r"^750[0-9A-Za-z]{15}$")
        self.assertEqual(job["contentUrl"], "services/data/v62.0/jobs/ingest/%s/batches" % job["id"])
        self.assertEqual((job["concurrencyMode"], job["contentType"], job["lineEnding"], job["columnDelimiter"]),
                         ("Parallel", "CSV", "LF", "COMMA"))
        self.assertIn('"apiVersion":62.0', r.text)

    def test_create_upsert_shape_has_external_id(self):
        r = self.api("POST", "/jobs/ingest", {"object": "contact", "operation": "upsert",
                                              "externalIdFieldName": "external_id__c", "columnDelimiter": "PIPE",
                                              "lineEnding": "CRLF", "contentType": "CSV",
                                              "assignmentRuleId": "01QEm0000000001"},
                     headers={"Content-Type": "application/json; charset=UTF-8"})
        job = r.json()
        keys = list(job)
        self.assertEqual(keys[:8], CREATE_KEYS[:7] + ["externalIdFieldName"])
        self.assertEqual(keys[8], "assignmentRuleId")
        self.assertEqual((job["object"], job["externalIdFieldName"]), ("Contact", "External_Id__c"))
        self.assertEqual((job["lineEnding"], job["columnDelimiter"]), ("CRLF", "PIPE"))

    def test_create_errors_exact_bodies(self):
        cases = [
            ({"object": "Acount", "operation": "insert"}, "INVALIDJOB", "InvalidJob : Unable to find object: Acount"),
            ({"object": "", "operation": "insert"}, "INVALIDJOB", "InvalidJob : Unable to find object: "),
            ({"object": "Contact", "operation": "upsert"}, "INVALIDJOB",
             "InvalidJob : External ID was blank for Contact. An External ID must be specified for upsert."),
            ({"object": "Contact", "operation": "upsert", "externalIdFieldName": None}, "INVALIDJOB",
             "InvalidJob : External ID was blank for Contact. An External ID must be specified for upsert."),
            ({"object": "Lead", "operation": "upsert", "externalIdFieldName": ""}, "INVALIDJOB",
             "InvalidJob : Field name provided,  does not match an External ID for Lead"),
            ({"object": "Contact", "operation": "upsert", "externalIdFieldName": "Foo__c"}, "INVALIDJOB",
             "InvalidJob : Field name provided, Foo__c does not match an External ID for Contact"),
            ({"object": "Contact", "operation": "upsert", "externalIdFieldName": "LastName"}, "INVALIDJOB",
             "InvalidJob : Field name provided, LastName does not match an External ID for Contact"),
            ({"object": "Contact", "operation": "merge"}, "API_ERROR",
             "Invalid value: 'merge' supplied for property: 'operation'"),
            ({"object": "Contact", "operation": "Insert"}, "API_ERROR",
             "Invalid value: 'Insert' supplied for property: 'operation'"),
            ({"object": "Contact", "operation": "insert", "columnDelimiter": "COLON"}, "API_ERROR",
             "Invalid value: 'COLON' supplied for property: 'columnDelimiter'"),
            ({"object": "Contact", "operation": "insert", "lineEnding": "CR"}, "API_ERROR",
             "Invalid value: 'CR' supplied for property: 'lineEnding'"),
            ({"object": "Contact", "operation": "insert", "contentType": "JSON"}, "API_ERROR",
             "Invalid value: 'JSON' supplied for property: 'contentType'"),
        ]
        for body, code, msg in cases:
            with self.subTest(body=body):
                self.assertApiError(self.api("POST", "/jobs/ingest", body), 400, code, msg)

    def test_wrong_json_type_and_bad_json(self):
        r = self.api("POST", "/jobs/ingest", '{"object":"Contact","operation":12}',
                     {"Content-Type": "application/json"})
        self.assertEqual(r.status, 400)
        self.assertEqual(r.json()[0]["errorCode"], "API_ERROR")
        self.assertEqual(r.json()[0]["message"], "Value does not match expected type at [line:1, column:33]")
        # the column is where the value starts, whitespace included (a key inside a string value is no key)
        for text, where in (('{"assignmentRuleId": 42, "object": "Lead", "operation": "insert"}', "line:1, column:22"),
                            ('{"object":"operation",\n  "operation" :  ["insert"]}', "line:2, column:18")):
            r = self.api("POST", "/jobs/ingest", text, {"Content-Type": "application/json"})
            self.assertEqual(r.json()[0]["message"], "Value does not match expected type at [%s]" % where, text)
        r = self.api("POST", "/jobs/ingest", '{"object":', {"Content-Type": "application/json"})
        self.assertEqual(r.status, 400)

    def test_hard_delete_permission(self):
        self.assertEqual(self.api("POST", "/jobs/ingest", {"object": "Lead", "operation": "hardDelete"}).status,
                         200)
        self.config(hard_delete_allowed=False)
        r = self.api("POST", "/jobs/ingest", {"object": "Lead", "operation": "hardDelete"})
        self.assertApiError(r, 400, "FEATURENOTENABLED")


class Multipart(EmuTestCase):
    def body(self, job, csv_text):
        b = "----sfemuBoundary"
        parts = ('--%s\r\nContent-Disposition: form-data; name="job"\r\nContent-Type: application/json\r\n\r\n%s\r\n'
                 '--%s\r\nContent-Disposition: form-data; name="content"; filename="content"\r\n'
                 'Content-Type: text/csv\r\n\r\n%s\r\n--%s--\r\n' % (b, json.dumps(job), b, csv_text, b))
        return parts.encode(), {"Content-Type": "multipart/form-data; boundary=" + b}

    def test_multipart_create(self):
        body, h = self.body({"object": "Account", "operation": "insert"}, "Name\nMulti A\nMulti B\n")
        r = self.api("POST", "/jobs/ingest", body, h)
        self.assertEqual(r.status, 200, r.text)
        self.assertEqual(r.json()["state"], "UploadComplete")
        self.assertNotIn("contentUrl", r.json())
        info = self.wait_job(r.json()["id"])
        self.assertEqual(info["numberRecordsProcessed"], 2)
        self.config(multipart_max_chars=10)
        body, h = self.body({"object": "Account", "operation": "insert"}, "Name\nMulti A\nMulti B\n")
        self.assertApiError(self.api("POST", "/jobs/ingest", body, h), 400, "INVALIDJOB")


class Upload(EmuTestCase):
    def test_upload_201_empty_body_no_content_type(self):
        job = self.create_job("Account", "insert")
        r = self.upload(job["id"], "Name\nA\n")
        self.assertEqual(r.status, 201)
        self.assertEqual(r.raw, b"")
        self.assertIsNone(r.headers.get("Content-Type"))
        self.assertRegex(r.headers["Sforce-Limit-Info"], r"^api-usage=\d+/15000$")

    def test_second_put_fails_with_verbatim_message(self):
        job = self.create_job("Account", "insert")
        self.assertEqual(self.upload(job["id"], "Name\nA\n").status, 201)
        r = self.upload(job["id"], "Name\nB\n")
        msg = ("Found multipe contents for job: <%s>, please 'Close' / 'Abort' / 'Delete' the current Job then "
               "create a new Job and make sure you only do 'PUT' once on a given Job." % job["id"][:15])
        self.assertApiError(r, 400, "BULK_API_ERROR", msg)
        # the first upload still stands
        self.assertEqual(self.close(job["id"]).status, 200)
        self.assertEqual(self.wait_job(job["id"])["numberRecordsProcessed"], 1)

    def test_second_put_mode_close(self):
        self.config(second_upload_mode="close")
        job = self.create_job("Account", "insert")
        self.assertEqual(self.upload(job["id"], "Name\nA\n").status, 201)
        self.assertEqual(self.upload(job["id"], "Name\nB\n").status, 201)
        r = self.close(job["id"])
        self.assertApiError(r, 400, "INVALIDJOB")
        self.assertIn("Found multipe contents for job: <%s>" % job["id"][:15], r.json()[0]["message"])

    def test_upload_only_when_open(self):
        info = self.run_job("Account", "insert", "Name\nA\n")
        self.assertApiError(self.upload(info["id"], "Name\nB\n"), 400, "INVALIDJOBSTATE")
        job = self.create_job("Account", "insert")
        self.api("PATCH", "/jobs/ingest/" + job["id"], {"state": "Aborted"})
        self.assertApiError(self.upload(job["id"], "Name\nB\n"), 400, "INVALIDJOBSTATE")

    def test_size_cap(self):
        self.config(max_upload_bytes=1000)
        job = self.create_job("Account", "insert")
        ok = "Name\n" + "x" * 740 + "\n"  # 746 bytes -> 996 base64
        self.assertEqual(self.upload(job["id"], ok).status, 201)
        job = self.create_job("Account", "insert")
        r = self.upload(job["id"], "Name\n" + "x" * 800 + "\n")
        self.assertApiError(r, 400, "INVALIDBATCH")
        self.assertIn("Exceeded max size limit of 1000", r.json()[0]["message"])

    def test_size_cap_chunked_and_connection_stays_usable(self):
        self.config(max_upload_bytes=1000)
        job = self.create_job("Account", "insert")
        c = self.emu.conn()
        try:
            data = ("Name\n" + "x" * 5000 + "\n").encode()
            c.request("PUT", "/services/data/v62.0/jobs/ingest/%s/batches" % job["id"],
                      body=iter([data[:3000], data[3000:]]), encode_chunked=True,
                      headers={"Authorization": "Bearer " + TOKEN, "Content-Type": "text/csv"})
            r = c.getresponse()
            body = r.read()
            self.assertEqual(r.status, 400, body)
            self.assertIn(b"Exceeded max size limit of 1000", body)
            self.assertEqual(self.api("GET", "/jobs/ingest/" + job["id"], conn=c).json()["state"], "Open")
        finally:
            c.close()
        log = [e for e in self.requests_log() if e["method"] == "PUT"]
        self.assertEqual(log[0]["request_bytes"], 0)

    def test_close_without_upload_fails_job(self):
        job = self.create_job("Account", "insert")
        self.assertEqual(self.close(job["id"]).status, 200)
        info = self.wait_job(job["id"])
        self.assertEqual(info["state"], "Failed")
        self.assertTrue(info["errorMessage"].startswith("InvalidBatch : No data"))

    def test_unknown_job(self):
        self.assertApiError(self.upload("750Em00000000zzAAA", "Name\n"), 404, "NOT_FOUND",
                            "The requested resource does not exist")


class StateMachine(EmuTestCase):
    def test_close_reduced_shape(self):
        job = self.create_job("Contact", "upsert", externalIdFieldName="External_Id__c")
        self.upload(job["id"], "External_Id__c,LastName\nK1,A\n")
        r = self.close(job["id"])
        self.assertEqual(r.status, 200)
        self.assertEqual(list(r.json()), ["id", "operation", "object", "createdById", "createdDate",
                                          "systemModstamp", "state", "externalIdFieldName", "concurrencyMode",
                                          "contentType", "apiVersion"])
        self.assertEqual(r.json()["state"], "UploadComplete")

    def test_illegal_transitions(self):
        job = self.create_job("Account", "insert")
        jid = job["id"]
        for st in ("JobComplete", "InProgress", "Open", "Failed"):
            self.assertEqual(self.api("PATCH", "/jobs/ingest/" + jid, {"state": st}).status, 400)
        self.assertApiError(self.api("PATCH", "/jobs/ingest/" + jid, {"state": "Bogus"}), 400, "API_ERROR")
        self.upload(jid, "Name\nA\n")
        self.close(jid)
        self.wait_job(jid)
        self.assertApiError(self.close(jid), 400, "INVALIDJOBSTATE")
        self.assertApiError(self.api("PATCH", "/jobs/ingest/" + jid, {"state": "Aborted"}), 400, "INVALIDJOBSTATE")
        self.assertApiError(self.api("PATCH", "/jobs/ingest/750Em00000000zzAAA", {"state": "Aborted"}), 404,
                            "NOT_FOUND", "The requested resource does not exist")

    def test_abort_open_and_abort_shape(self):
        job = self.create_job("Account", "insert")
        r = self.api("PATCH", "/jobs/ingest/" + job["id"], {"state": "Aborted"})
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["state"], "Aborted")
        self.assertNotIn("contentUrl", r.json())
        self.assertEqual(self.wait_job(job["id"])["state"], "Aborted")

    def test_processing_never_starts_without_close(self):
        job = self.create_job("Account", "insert")
        self.upload(job["id"], "Name\nA\n")
        time.sleep(0.3)
        info = self.api("GET", "/jobs/ingest/" + job["id"]).json()
        self.assertEqual(info["state"], "Open")
        self.assertEqual(self.records("Account"), [])

    def test_states_and_live_counters_in_internal_batches(self):
        self.config(processing_delay_ms=300, batch_size=100, batch_delay_ms=150)
        data = "Name\n" + "".join("A%d\n" % i for i in range(450))
        job = self.create_job("Account", "insert")
        self.upload(job["id"], data)
        self.close(job["id"])
        seen_states, counts = [], []
        deadline = time.time() + 30
        while time.time() < deadline:
            info = self.api("GET", "/jobs/ingest/" + job["id"]).json()
            seen_states.append(info["state"])
            counts.append(info["numberRecordsProcessed"])
            if info["state"] == "JobComplete":
                break
            time.sleep(0.03)
        self.assertEqual(seen_states[0], "UploadComplete")
        self.assertIn("InProgress", seen_states)
        self.assertEqual(seen_states[-1], "JobComplete")
        self.assertEqual(counts, sorted(counts))
        self.assertTrue(all(c % 100 == 0 or c == 450 for c in counts), counts)
        self.assertTrue(any(0 < c < 450 for c in counts), counts)
        self.assertEqual(counts[-1], 450)
        for k in ("totalProcessingTime", "apiActiveProcessingTime", "apexProcessingTime", "retries"):
            self.assertGreaterEqual(info[k], 0)
        self.assertGreater(info["totalProcessingTime"], 0)

    def test_get_info_shape(self):
        job = self.create_job("Account", "insert")
        info = self.api("GET", "/jobs/ingest/" + job["id"]).json()
        self.assertEqual(list(info), INFO_KEYS[:11] + ["contentUrl"] + INFO_KEYS[11:])
        self.upload(job["id"], "Name\nA\n")
        self.close(job["id"])
        info = self.wait_job(job["id"])
        self.assertEqual(list(info), INFO_KEYS)
        r = self.api("GET", "/jobs/ingest/" + job["id"][:15])  # 15-char id accepted
        self.assertEqual(r.status, 200)

    def test_abort_in_progress_stops_at_batch_boundary(self):
        self.config(batch_size=100, batch_delay_ms=300)
        data = "Name\n" + "".join("A%d\n" % i for i in range(1000))
        job = self.create_job("Account", "insert")
        self.upload(job["id"], data)
        self.close(job["id"])
        deadline = time.time() + 10
        while self.api("GET", "/jobs/ingest/" + job["id"]).json()["numberRecordsProcessed"] == 0:
            self.assertLess(time.time(), deadline)
            time.sleep(0.02)
        r = self.api("PATCH", "/jobs/ingest/" + job["id"], {"state": "Aborted"})
        self.assertEqual(r.status, 200)
        time.sleep(0.5)
        info = self.api("GET", "/jobs/ingest/" + job["id"]).json()
        self.assertEqual(info["state"], "Aborted")
        done = info["numberRecordsProcessed"]
        self.assertTrue(0 < done < 1000 and done % 100 == 0, done)
        self.assertEqual(len(self.records("Account")), done)
        un = self.results(job["id"], "unprocessedrecords")
        ok = self.results(job["id"], "successfulResults")
        self.assertEqual(len(un) + len(ok), 1000)
        self.assertEqual(sorted(r["Name"] for r in un + ok), sorted("A%d" % i for i in range(1000)))


class Concurrency(EmuTestCase):
    def test_jobs_process_in_parallel_and_requests_keep_flowing(self):
        self.config(batch_size=500)
        jobs = []
        for n in range(3):
            job = self.create_job("Lead", "insert")
            data = "LastName,Company\n" + "".join("J%d-%d,C\n" % (n, i) for i in range(3000))
            self.assertEqual(self.upload(job["id"], data).status, 201)
            jobs.append(job["id"])
        for jid in jobs:
            self.close(jid)
        infos = [self.wait_job(jid) for jid in jobs]
        self.assertEqual([i["numberRecordsProcessed"] for i in infos], [3000, 3000, 3000])
        self.assertEqual(len(self.records("Lead")), 9000)
        ids = set()
        for jid in jobs:
            ids |= {r["sf__Id"] for r in self.results(jid, "successfulResults")}
        self.assertEqual(len(ids), 9000)  # no id handed out twice


class ListDelete(EmuTestCase):
    def test_delete_rules(self):
        job = self.create_job("Account", "insert")
        self.assertEqual(self.api("DELETE", "/jobs/ingest/" + job["id"]).status, 400)
        self.upload(job["id"], "Name\nA\n")
        self.close(job["id"])
        self.wait_job(job["id"])
        r = self.api("DELETE", "/jobs/ingest/" + job["id"])
        self.assertEqual(r.status, 204)
        self.assertEqual(r.raw, b"")
        for m, p in (("GET", ""), ("GET", "/successfulResults"), ("GET", "/failedResults"),
                     ("GET", "/unprocessedrecords"), ("DELETE", "")):
            self.assertApiError(self.api(m, "/jobs/ingest/%s%s" % (job["id"], p)), 404, "NOT_FOUND")
        aborted = self.create_job("Account", "insert")
        self.api("PATCH", "/jobs/ingest/" + aborted["id"], {"state": "Aborted"})
        self.assertEqual(self.api("DELETE", "/jobs/ingest/" + aborted["id"]).status, 204)

    def test_list_paging_and_filter(self):
        self.config(list_page_size=3)
        ids = [self.create_job("Account", "insert")["id"] for _ in range(7)]
        self.query("SELECT Id FROM Account")
        r = self.api("GET", "/jobs/ingest?jobType=V2Ingest")
        page = r.json()
        self.assertFalse(page["done"])
        self.assertEqual(len(page["records"]), 3)
        got = [j["id"] for j in page["records"]]
        self.assertEqual(list(page["records"][0]), ["id", "operation", "object", "createdById", "createdDate",
                                                    "systemModstamp", "state", "concurrencyMode", "contentType",
                                                    "apiVersion", "jobType", "lineEnding", "columnDelimiter"])
        while not page["done"]:
            self.assertTrue(page["nextRecordsUrl"].startswith("/services/data/v62.0/jobs/ingest?queryLocator="))
            page = self.request("GET", page["nextRecordsUrl"]).json()
            got += [j["id"] for j in page["records"]]
        self.assertIsNone(page["nextRecordsUrl"])
        self.assertEqual(sorted(got), sorted(ids))
        self.assertEqual(self.api("GET", "/jobs/ingest?jobType=Classic").json()["records"], [])
        q = self.api("GET", "/jobs/query").json()
        self.assertEqual([j["jobType"] for j in q["records"]], ["V2Query"])

    def test_retention_removes_old_terminal_jobs(self):
        info = self.run_job("Account", "insert", "Name\nA\n")
        open_job = self.create_job("Account", "insert")
        self.config(job_retention_seconds=60)
        self.admin("POST", "/clock", {"advance_seconds": 120})
        self.assertEqual(self.api("GET", "/jobs/ingest/" + info["id"]).status, 404)
        self.assertEqual(self.api("GET", "/jobs/ingest/" + open_job["id"]).status, 200)


if __name__ == "__main__":
    unittest.main()
