"""Server shape: start-up, loopback, keep-alive, chunked bodies, routing, JSON conventions, ids, admin API."""

import gzip
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import unittest

from emu import EMULATOR, PYTHON, TOKEN, EmuTestCase, Emulator

import sys
sys.path.insert(0, os.path.dirname(EMULATOR))
from sf_emulator import common as ids  # noqa: E402


class StartStop(unittest.TestCase):
    def test_starts_fast_writes_url_and_exits_on_sigterm(self):
        e = Emulator()
        try:
            self.assertLess(e.startup_seconds, 1.0)
            self.assertRegex(e.url, r"^http://127\.0\.0\.1:\d+$")
            out = e.proc.stdout.readline().decode().strip()
            self.assertEqual(out, e.url)
        finally:
            e.proc.send_signal(signal.SIGTERM)
            self.assertEqual(e.proc.wait(10), 0)
            e.stop()

    def test_sigint_exits_cleanly(self):
        e = Emulator()
        e.proc.send_signal(signal.SIGINT)
        self.assertEqual(e.proc.wait(10), 0)
        e.stop()

    def test_refuses_non_loopback(self):
        for host in ("0.0.0.0", "8.8.8.8"):
            p = subprocess.run([PYTHON, EMULATOR, "--host", host, "--port", "0"], capture_output=True, timeout=20)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn(b"refusing", p.stderr)

    def test_chosen_port(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        e = Emulator("--port", str(port)) if False else None
        p = subprocess.Popen([PYTHON, EMULATOR, "--port", str(port)], stdout=subprocess.PIPE)
        try:
            line = p.stdout.readline().decode().strip()
            self.assertEqual(line, "http://127.0.0.1:%d" % port)
        finally:
            p.terminate()
            p.wait(10)
            p.stdout.close()
        del e

    def test_data_dir_persists_store(self):
        import tempfile
        d = tempfile.mkdtemp()
        e = Emulator("--data-dir", d)
        import http.client
        c = http.client.HTTPConnection(e.host, e.port)
        c.request("POST", "/__emulator/records/Account", body=json.dumps([{"Name": "Persisted"}]))
        c.getresponse().read()
        c.close()
        e.stop()
        self.assertTrue(os.path.exists(os.path.join(d, "store.json")))
        e2 = Emulator("--data-dir", d)
        try:
            c = http.client.HTTPConnection(e2.host, e2.port)
            c.request("GET", "/__emulator/records/Account")
            recs = json.loads(c.getresponse().read())["records"]
            c.close()
            self.assertEqual([r["Name"] for r in recs], ["Persisted"])
        finally:
            e2.stop()


class Ids(unittest.TestCase):
    def test_checksum_matches_documented_algorithm(self):
        # bit i of each 5-char block set when char i is upper-case A-Z
        self.assertEqual(ids.id_suffix("001000000000000"), "AAA")
        self.assertEqual(ids.id_suffix("00AB0000000000Z"), "MAQ")
        self.assertEqual(ids.to18("001A0000006Vm9r"), "001A0000006Vm9rIAC")  # a well-known real id
        i = ids.make_id("750", 12345)
        self.assertEqual(len(i), 18)
        self.assertTrue(i.startswith("750"))
        self.assertEqual(ids.normalize_id(i[:15]), i)
        self.assertEqual(ids.normalize_id(i[:15] + i[15:].lower()), i)
        self.assertIsNone(ids.normalize_id(i[:15] + "ZZZ" if i[15:] != "ZZZ" else i[:15] + "AAA"))
        self.assertIsNone(ids.normalize_id("001-bad"))


class Http(EmuTestCase):
    def test_keep_alive_many_requests_one_connection(self):
        c = self.emu.conn()
        try:
            for _ in range(20):
                r = self.api("GET", "/limits", conn=c)
                self.assertEqual(r.status, 200)
            sock1 = c.sock
            r = self.api("GET", "/sobjects", conn=c)
            self.assertIs(c.sock, sock1)
        finally:
            c.close()

    def test_concurrent_requests(self):
        errors = []

        def worker():
            try:
                for _ in range(10):
                    r = self.api("GET", "/limits")
                    if r.status != 200:
                        errors.append(r.status)
            except Exception as e:  # noqa
                errors.append(e)
        ts = [threading.Thread(target=worker) for _ in range(8)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        self.assertEqual(errors, [])

    def test_chunked_upload_is_decoded(self):
        job = self.create_job("Account", "insert")
        s = socket.create_connection((self.emu.host, self.emu.port))
        data = b"Name,External_Id__c\nA1,E1\nA2,E2\n"
        chunks = [data[:7], data[7:20], data[20:]]
        body = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
        req = ("PUT /services/data/v62.0/jobs/ingest/%s/batches HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
               "Content-Type: text/csv\r\nTransfer-Encoding: chunked\r\n\r\n" % (job["id"], TOKEN)).encode()
        s.sendall(req + body)
        resp = s.recv(4096)
        s.close()
        self.assertTrue(resp.startswith(b"HTTP/1.1 201"), resp)
        self.close(job["id"])
        info = self.wait_job(job["id"])
        self.assertEqual(info["numberRecordsProcessed"], 2)
        self.assertEqual(sorted(r["Name"] for r in self.records("Account")), ["A1", "A2"])
        log = [e for e in self.requests_log() if e["method"] == "PUT"]
        self.assertEqual(log[0]["request_bytes"], len(data))

    def test_unknown_paths_versions_and_methods(self):
        self.assertApiError(self.api("GET", "/jobs/nothing"), 404, "NOT_FOUND",
                            "The requested resource does not exist")
        self.assertApiError(self.request("GET", "/services/data/v99.0/jobs/ingest"), 404, "NOT_FOUND")
        self.assertApiError(self.request("GET", "/services/data/v40.0/jobs/ingest"), 404, "NOT_FOUND")
        self.assertApiError(self.request("GET", "/services/data/v46.0/jobs/query"), 404, "NOT_FOUND")
        self.assertEqual(self.request("GET", "/services/data/v41.0/jobs/ingest").status, 200)
        self.assertApiError(self.request("GET", "/services/data/v62.0/jobs/query//750Em0000000001IAA"), 404,
                            "NOT_FOUND")
        self.assertEqual(self.api("DELETE", "/jobs/ingest").status, 405)
        self.assertEqual(self.api("POST", "/limits").status, 405)
        self.assertEqual(self.api("GET", "/jobs/ingest/").status, 200)  # trailing slash accepted

    def test_error_member_order_follows_the_subsystem(self):
        """docs/bulk-api-2.md §4.1: errorCode first from the jobs framework, message first from REST core."""
        jobs = '[{"errorCode":"NOT_FOUND","message":"The requested resource does not exist"}]'
        core = '[{"message":"The requested resource does not exist","errorCode":"NOT_FOUND"}]'
        self.assertEqual(self.api("GET", "/jobs/ingest/750Em0000000009IAA").text, jobs)
        self.assertEqual(self.api("GET", "/jobs/query/750Em0000000009IAA/results").text, jobs)
        self.assertEqual(self.api("GET", "/jobs/ingest/750Em0000000009IAA/nothing").text, jobs)
        self.assertEqual(self.api("GET", "/sobjects/Nope/describe").text, core)
        self.assertEqual(self.api("GET", "/nothing").text, core)
        self.assertEqual(self.request("GET", "/services/data/v99.0/jobs/ingest").text, core)
        r = self.api("GET", "/query?q=SELEKT+Id+FROM+Lead")
        self.assertEqual(list(r.json()[0]), ["message", "errorCode"])
        self.assertEqual(list(self.api("POST", "/jobs/ingest", {"object": "Nope", "operation": "insert"}).json()[0]),
                         ["errorCode", "message"])
        self.fault(path="/limits$", status=503)
        self.assertEqual(list(self.api("GET", "/limits").json()[0]), ["message", "errorCode"])

    def test_versions_list_needs_no_auth_and_is_not_counted(self):
        r = self.request("GET", "/services/data/", token=None)
        self.assertEqual(r.status, 200)
        vs = r.json()
        self.assertIn({"label": "Winter '25", "url": "/services/data/v62.0", "version": "62.0"}, vs)
        self.assertEqual(vs[0]["version"], "41.0")
        # not counted, but like every REST response it carries the usage (docs/bulk-api-2.md §2.3)
        self.assertEqual(r.headers.get("Sforce-Limit-Info"), "api-usage=0/15000")
        self.assertEqual(self.api("GET", "/limits").headers["Sforce-Limit-Info"], "api-usage=1/15000")

    def test_limit_info_on_refused_calls(self):
        """401 (before counting), unknown versions and the concurrency refusal also carry Sforce-Limit-Info."""
        self.assertEqual(self.api("GET", "/limits").headers["Sforce-Limit-Info"], "api-usage=1/15000")
        r = self.api("GET", "/limits", token="bogus")
        self.assertEqual((r.status, r.headers.get("Sforce-Limit-Info")), (401, "api-usage=1/15000"))
        r = self.request("GET", "/services/data/v99.0/limits")
        self.assertEqual((r.status, r.headers.get("Sforce-Limit-Info")), (404, "api-usage=1/15000"))
        self.assertIsNone(self.request("GET", "/__emulator/health", token=None).headers.get("Sforce-Limit-Info"))

    def test_json_conventions(self):
        job = self.create_job("Account", "insert")
        r = self.api("GET", "/jobs/ingest/" + job["id"])
        self.assertEqual(r.headers["Content-Type"], "application/json;charset=UTF-8")
        self.assertNotIn("\n", r.text)
        self.assertIn('"apiVersion":62.0', r.text)
        self.assertRegex(job["createdDate"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000\+0000$")
        p = self.api("GET", "/jobs/ingest/" + job["id"], headers={"X-PrettyPrint": "1"})
        self.assertIn("\n", p.text)
        self.assertEqual(p.json(), r.json())

    def test_gzip_responses_switchable(self):
        data = "Name\n" + "".join("Acct %d\n" % i for i in range(300))
        info = self.run_job("Account", "insert", data)
        path = "/jobs/ingest/%s/successfulResults" % info["id"]
        r = self.api("GET", path, headers={"Accept-Encoding": "gzip"})
        self.assertEqual(r.headers.get("Content-Encoding"), "gzip")
        self.assertEqual(len(r.dicts()), 300)
        self.config(gzip_responses=False)
        r = self.api("GET", path, headers={"Accept-Encoding": "gzip"})
        self.assertIsNone(r.headers.get("Content-Encoding"))
        self.assertEqual(len(r.dicts()), 300)

    def test_gzip_request_body_and_unsupported_encoding(self):
        job = self.create_job("Account", "insert")
        r = self.upload(job["id"], gzip.compress(b"Name\nZipped\n"), headers={"Content-Encoding": "gzip"})
        self.assertEqual(r.status, 201)
        self.close(job["id"])
        self.assertEqual(self.wait_job(job["id"])["numberRecordsProcessed"], 1)
        job = self.create_job("Account", "insert")
        r = self.upload(job["id"], b"Name\nX\n", headers={"Content-Encoding": "br"})
        self.assertEqual(r.status, 415)


class Admin(EmuTestCase):
    def test_request_log_entries_and_since(self):
        self.api("GET", "/limits")
        log = self.requests_log()
        self.assertEqual(len(log), 1)
        e = log[0]
        for k in ("seq", "method", "path", "query", "status", "request_bytes", "response_bytes", "start",
                  "duration_ms"):
            self.assertIn(k, e)
        self.assertEqual((e["method"], e["path"], e["status"]), ("GET", "/services/data/v62.0/limits", 200))
        self.assertGreater(e["response_bytes"], 10)
        self.api("GET", "/sobjects?x=1", headers={"Sforce-Call-Options": "client=sf_bulk/0.1, defaultNamespace=ns"})
        newer = self.requests_log(since=e["seq"])
        self.assertEqual([x["path"] for x in newer], ["/services/data/v62.0/sobjects"])
        self.assertEqual(newer[0]["query"], "x=1")
        self.assertEqual(newer[0]["client"], "sf_bulk/0.1")
        # admin calls are flagged and hidden by default
        alllog = self.admin("GET", "/requests?admin=1")["requests"]
        self.assertTrue(any(x["admin"] for x in alllog))

    def test_exactly_one_put_per_job_is_observable(self):
        info = self.run_job("Account", "insert", "Name\nA\n")
        puts = [e for e in self.requests_log() if e["method"] == "PUT"]
        self.assertEqual(len(puts), 1)
        self.assertTrue(puts[0]["path"].endswith("/jobs/ingest/%s/batches" % info["id"]))

    def test_admin_calls_do_not_count(self):
        self.api("GET", "/limits")
        for _ in range(5):
            self.admin("GET", "/jobs")
        r = self.api("GET", "/limits")
        self.assertEqual(r.headers["Sforce-Limit-Info"], "api-usage=2/15000")

    def test_reset_clears_store_jobs_log_faults_keeps_default_token(self):
        self.run_job("Account", "insert", "Name\nA\n")
        self.fault(path="never", status=500, count=5)
        self.admin("POST", "/tokens/expire", {})
        self.assertEqual(self.api("GET", "/limits").status, 401)
        self.admin("POST", "/reset")
        self.assertEqual(self.records("Account"), [])
        self.assertEqual(self.admin("GET", "/jobs")["jobs"], [])
        self.assertEqual(self.admin("GET", "/faults")["faults"], [])
        self.assertEqual(self.requests_log(), [])
        self.assertEqual(self.api("GET", "/limits").status, 200)

    def test_records_view_includes_deleted_flag(self):
        info = self.run_job("Account", "insert", "Name\nA\nB\n")
        ids = [r["sf__Id"] for r in self.results(info["id"], "successfulResults")]
        self.run_job("Account", "delete", "Id\n%s\n" % ids[0])
        recs = {r["Id"]: r for r in self.records("Account")}
        self.assertTrue(recs[ids[0]]["deleted"])
        self.assertFalse(recs[ids[1]]["deleted"])

    def test_jobs_view_and_config(self):
        job = self.create_job("Lead", "insert")
        jobs = self.admin("GET", "/jobs")["jobs"]
        self.assertEqual(jobs[0]["id"], job["id"])
        cfg = self.config(shuffle_results=False, seed=7)
        self.assertEqual((cfg["shuffle_results"], cfg["seed"]), (False, 7))
        r = self.request("POST", "/__emulator/config", {"no_such_key": 1}, token=None)
        self.assertEqual(r.status, 400)

    def test_admin_prefix_not_reachable_under_services(self):
        self.assertEqual(self.api("POST", "/__emulator/reset").status, 404)


if __name__ == "__main__":
    unittest.main()
