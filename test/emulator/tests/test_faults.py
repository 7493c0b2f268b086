"""Item 7: faults on demand, targetable by method + path regex + count."""

import http.client
import socket
import time
import unittest

from emu import TOKEN, EmuTestCase


class Faults(EmuTestCase):
    def test_next_three_puts_answer_503_then_success(self):
        f = self.fault(method="PUT", path=r"/jobs/ingest/[^/]+/batches$", status=503, count=3)
        self.assertEqual(f["count"], 3)
        job = self.create_job("Account", "insert")
        codes = [self.upload(job["id"], "Name\nA\n").status for _ in range(4)]
        self.assertEqual(codes, [503, 503, 503, 201])
        r = self.upload(job["id"], "Name\nA\n")
        self.assertEqual(r.status, 400)  # now a real second upload
        log = [e for e in self.requests_log() if e["method"] == "PUT"]
        self.assertEqual([e["status"] for e in log], [503, 503, 503, 201, 400])
        self.assertEqual([e["fault"] is not None for e in log], [True, True, True, False, False])
        faults = self.admin("GET", "/faults")["faults"]
        self.assertEqual(faults[0]["hits"], 3)

    def test_status_bodies(self):
        self.fault(path="/limits$", status=500, count=1)
        r = self.api("GET", "/limits")
        self.assertApiError(r, 500, "UNKNOWN_EXCEPTION")
        self.fault(path="/limits$", status=500, body="html", count=1)
        r = self.api("GET", "/limits")
        self.assertEqual(r.status, 500)
        self.assertTrue(r.headers["Content-Type"].startswith("text/html"))
        self.fault(path="/limits$", status=502, count=1)
        self.assertTrue(self.api("GET", "/limits").text.startswith("<html>"))
        self.fault(path="/limits$", status=503, body="empty", count=1)
        r = self.api("GET", "/limits")
        self.assertEqual((r.status, r.raw), (503, b""))
        for st in (420, 406):
            self.fault(path="/limits$", status=st, count=1)
            r = self.api("GET", "/limits")
            self.assertEqual((r.status, r.raw), (st, b""))
        self.assertEqual(self.api("GET", "/limits").status, 200)

    def test_429_with_and_without_retry_after(self):
        self.fault(path="/jobs/ingest$", status=429, headers={"Retry-After": "2"}, count=1)
        self.fault(path="/jobs/ingest$", status=429, count=1)
        r1 = self.api("GET", "/jobs/ingest")
        r2 = self.api("GET", "/jobs/ingest")
        self.assertEqual((r1.status, r1.headers.get("Retry-After")), (429, "2"))
        self.assertEqual((r2.status, r2.headers.get("Retry-After")), (429, None))
        self.assertEqual(self.api("GET", "/jobs/ingest").status, 200)

    def test_skip_and_unlimited_count(self):
        self.fault(path="/limits$", status=500, skip=2, count=-1)
        self.assertEqual([self.api("GET", "/limits").status for _ in range(4)], [200, 200, 500, 500])

    def test_method_filter(self):
        self.fault(method="POST", path="/jobs/ingest$", status=503)
        self.assertEqual(self.api("GET", "/jobs/ingest").status, 200)
        self.assertEqual(self.api("POST", "/jobs/ingest", {"object": "Account", "operation": "insert"}).status, 503)

    def test_lost_response_after_processing(self):
        self.fault(method="POST", path="/jobs/ingest$", status=500, after_processing=True)
        r = self.api("POST", "/jobs/ingest", {"object": "Account", "operation": "insert"})
        self.assertEqual(r.status, 500)
        # the job was created although the client never learned its id
        jobs = self.api("GET", "/jobs/ingest").json()["records"]
        self.assertEqual([j["state"] for j in jobs], ["Open"])

    def test_drop_mid_request(self):
        job = self.create_job("Account", "insert")
        self.fault(method="PUT", path="/batches$", action="drop", when="request", after_bytes=10)
        with self.assertRaises((ConnectionError, http.client.HTTPException, OSError)):
            self.upload(job["id"], "Name\n" + "A\n" * 5000)
        info = self.api("GET", "/jobs/ingest/" + job["id"]).json()
        self.assertEqual(info["state"], "Open")
        self.assertEqual(self.upload(job["id"], "Name\nA\n").status, 201)  # restart succeeds: nothing stored
        time.sleep(0.05)
        log = [e for e in self.requests_log() if e["method"] == "PUT"]
        self.assertEqual(log[0].get("dropped"), "request")
        self.assertIsNone(log[0]["status"])

    def test_drop_mid_chunked_request(self):
        job = self.create_job("Account", "insert")
        self.fault(method="PUT", path="/batches$", action="drop", when="request", after_bytes=5)
        s = socket.create_connection((self.emu.host, self.emu.port))
        s.sendall(("PUT /services/data/v62.0/jobs/ingest/%s/batches HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s"
                   "\r\nContent-Type: text/csv\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nName\n\r\n"
                   % (job["id"], TOKEN)).encode())
        s.settimeout(5)
        try:
            data = s.recv(100)
        except ConnectionResetError:
            data = b""
        s.close()
        self.assertEqual(data, b"")

    def test_drop_in_middle_of_successful_results(self):
        info = self.run_job("Account", "insert", "Name\n" + "".join("A%d\n" % i for i in range(100)))
        self.fault(method="GET", path="/successfulResults$", action="drop", when="response")
        with self.assertRaises((http.client.IncompleteRead, ConnectionError, http.client.HTTPException)):
            self.api("GET", "/jobs/ingest/%s/successfulResults" % info["id"])
        self.assertEqual(len(self.results(info["id"], "successfulResults")), 100)
        log = [e for e in self.requests_log() if e["path"].endswith("successfulResults")]
        self.assertEqual(log[0]["dropped"], "response")
        self.assertLess(log[0]["response_bytes"], log[1]["response_bytes"])

    def test_truncated_chunked_response(self):
        info = self.run_job("Account", "insert", "Name\n" + "".join("A%d\n" % i for i in range(100)))
        self.fault(method="GET", path="/failedResults$", action="drop", when="response", chunked=True, after_bytes=20)
        with self.assertRaises((http.client.IncompleteRead, ConnectionError, http.client.HTTPException)):
            self.api("GET", "/jobs/ingest/%s/failedResults" % info["id"])

    def test_stall_longer_than_client_timeout(self):
        self.fault(path="/limits$", action="stall", ms=1500)
        c = self.emu.conn(timeout=0.4)
        t0 = time.time()
        with self.assertRaises(socket.timeout):
            self.api("GET", "/limits", conn=c)
        c.close()
        self.assertLess(time.time() - t0, 1.4)
        self.assertEqual(self.api("GET", "/limits").status, 200)

    def test_delay_then_normal_answer_and_trickle(self):
        self.fault(path="/limits$", action="delay", ms=300)
        t0 = time.time()
        self.assertEqual(self.api("GET", "/limits").status, 200)
        self.assertGreaterEqual(time.time() - t0, 0.3)
        self.fault(path="/sobjects$", action="trickle", bytes_per_second=5000)
        t0 = time.time()
        r = self.api("GET", "/sobjects")
        self.assertEqual(r.status, 200)
        self.assertGreater(time.time() - t0, 0.2)

    def test_reset_connection(self):
        self.fault(path="/limits$", action="reset")
        with self.assertRaises((ConnectionError, http.client.HTTPException, OSError)):
            self.api("GET", "/limits")
        self.assertEqual(self.api("GET", "/limits").status, 200)

    def test_query_page_failure_then_same_locator_succeeds(self):
        self.run_job("Lead", "insert", "LastName,Company\n" + "".join("L%02d,C\n" % i for i in range(6)))
        job, _ = self.query("SELECT LastName FROM Lead ORDER BY LastName")
        r1 = self.api("GET", "/jobs/query/%s/results?maxRecords=2" % job["id"])
        loc = r1.headers["Sforce-Locator"]
        self.fault(method="GET", path="/results$", query="locator=" + loc, status=503, count=1)
        p = "/jobs/query/%s/results?maxRecords=2&locator=%s" % (job["id"], loc)
        self.assertEqual(self.api("GET", p).status, 503)
        r2 = self.api("GET", p)
        self.assertEqual(r2.status, 200)
        self.assertEqual([x[0] for x in r2.csv()[1:]], ["L02", "L03"])

    def test_next_job_fails_and_only_next(self):
        self.config(next_job_fails={"message": "InvalidBatch : boom"})
        a = self.run_job("Account", "insert", "Name\nA\n")
        b = self.run_job("Account", "insert", "Name\nB\n")
        self.assertEqual((a["state"], a.get("errorMessage")), ("Failed", "InvalidBatch : boom"))
        self.assertEqual(b["state"], "JobComplete")

    def test_stuck_job_until_aborted(self):
        self.config(stuck_jobs=True)
        job = self.create_job("Account", "insert")
        self.upload(job["id"], "Name\nA\n")
        self.close(job["id"])
        time.sleep(0.4)
        self.assertEqual(self.api("GET", "/jobs/ingest/" + job["id"]).json()["state"], "UploadComplete")
        self.api("PATCH", "/jobs/ingest/" + job["id"], {"state": "Aborted"})
        self.assertEqual(self.wait_job(job["id"])["state"], "Aborted")
        self.assertEqual(len(self.results(job["id"], "unprocessedrecords")), 1)

    def test_slow_processing_does_not_block_other_requests(self):
        self.config(batch_size=10, batch_delay_ms=200)
        job = self.create_job("Account", "insert")
        self.upload(job["id"], "Name\n" + "".join("A%d\n" % i for i in range(50)))
        self.close(job["id"])
        t0 = time.time()
        for _ in range(10):
            self.assertEqual(self.api("GET", "/limits").status, 200)
        served = time.time() - t0
        info = self.wait_job(job["id"])
        self.assertGreaterEqual(info["totalProcessingTime"], 700)
        self.assertLess(served * 1000, info["totalProcessingTime"])

    def test_expire_all_tokens_fault(self):
        self.admin("POST", "/tokens/expire", {})
        self.assertApiError(self.api("GET", "/jobs/ingest"), 401, "INVALID_SESSION_ID")

    def test_fault_spec_validation_and_clear(self):
        r = self.request("POST", "/__emulator/faults", {"action": "explode"}, token=None)
        self.assertEqual(r.status, 400)
        r = self.request("POST", "/__emulator/faults", {"path": "("}, token=None)
        self.assertEqual(r.status, 400)
        self.fault(path="/limits$", status=500, count=-1)
        self.admin("DELETE", "/faults")
        self.assertEqual(self.api("GET", "/limits").status, 200)

    def test_faults_do_not_hit_admin_api(self):
        self.fault(path=".*", status=500, count=-1)
        self.assertEqual(self.admin("GET", "/jobs")["jobs"], [])
        self.assertEqual(self.api("GET", "/limits").status, 500)


if __name__ == "__main__":
    unittest.main()
