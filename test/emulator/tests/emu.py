"""Shared helpers for the emulator's own test suite: start an emulator on a free port, talk HTTP to it."""

import atexit
import base64
import csv
import gzip
import http.client
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
EMU_DIR = os.path.dirname(HERE)
EMULATOR = os.path.join(EMU_DIR, "sf_emulator")  # the package directory (runs its __main__.py)
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
with open(os.path.join(EMU_DIR, "default_org.json")) as _fh:
    ORG = json.load(_fh)
TOKEN = ORG["access_token"]
V = "62.0"


_RUNNING = []


@atexit.register
def _stop_all():
    for e in list(_RUNNING):
        e.stop()


class Emulator:
    """A running emulator process on a free port."""

    def __init__(self, *extra):
        self.tmp = tempfile.mkdtemp(prefix="sfemu-test-")
        self.url_file = os.path.join(self.tmp, "url")
        self.t0 = time.time()
        self.stderr_path = os.path.join(self.tmp, "stderr")
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen([PYTHON, EMULATOR, "--port", "0", "--url-file", self.url_file] + list(extra),
                                     stdout=subprocess.PIPE, stderr=self._stderr)
        _RUNNING.append(self)
        deadline = time.time() + 10
        while not os.path.exists(self.url_file):
            if self.proc.poll() is not None:
                raise RuntimeError("emulator exited: %s" % open(self.stderr_path).read())
            if time.time() > deadline:
                raise RuntimeError("emulator did not start")
            time.sleep(0.01)
        self.startup_seconds = time.time() - self.t0
        with open(self.url_file) as fh:
            self.url = fh.read().strip()
        u = urllib.parse.urlsplit(self.url)
        self.host, self.port = u.hostname, u.port

    def stop(self):
        if self in _RUNNING:
            _RUNNING.remove(self)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self._stderr.close()

    def conn(self, timeout=30):
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)


class Resp:
    def __init__(self, r, raw):
        self.status = r.status
        self.headers = r.headers
        self.raw = raw
        if r.getheader("Content-Encoding") == "gzip":
            self.raw = gzip.decompress(raw)
        self.text = self.raw.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.text)

    def csv(self, delimiter=","):
        return list(csv.reader(io.StringIO(self.text, newline=""), delimiter=delimiter))

    def dicts(self, delimiter=","):
        return list(csv.DictReader(io.StringIO(self.text, newline=""), delimiter=delimiter))


class EmuTestCase(unittest.TestCase):
    """One emulator per test class; reset before each test."""
    emu_args = ()

    @classmethod
    def setUpClass(cls):
        cls.emu = Emulator(*cls.emu_args)
        cls._conn = None

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop()

    def setUp(self):
        self.admin("POST", "/reset")

    # -- raw HTTP
    def request(self, method, path, body=None, headers=None, token=TOKEN, conn=None):
        h = {}
        if token:
            h["Authorization"] = "Bearer " + token
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        elif isinstance(body, str):
            body = body.encode("utf-8")
        h.update(headers or {})
        h = {k: v for k, v in h.items() if v is not None}
        own = conn is None
        c = conn or self.emu.conn()
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            raw = r.read()
            return Resp(r, raw)
        finally:
            if own:
                c.close()

    def api(self, method, rest, body=None, headers=None, v=V, **kw):
        return self.request(method, "/services/data/v%s%s" % (v, rest), body, headers, **kw)

    def admin(self, method, rest, body=None):
        r = self.request(method, "/__emulator" + rest, body, token=None)
        if r.status != 200:
            raise AssertionError("admin %s %s -> %d %s" % (method, rest, r.status, r.text))
        return r.json()

    def config(self, **kw):
        return self.admin("POST", "/config", kw)

    def fault(self, **spec):
        return self.admin("POST", "/faults", spec)["faults"][0]

    def requests_log(self, since=0):
        return self.admin("GET", "/requests?since=%d" % since)["requests"]

    def records(self, obj):
        return self.admin("GET", "/records/" + obj)["records"]

    # -- Bulk flows
    def create_job(self, obj, op, v=V, **kw):
        body = {"object": obj, "operation": op}
        body.update(kw)
        r = self.api("POST", "/jobs/ingest", body, v=v)
        self.assertEqual(r.status, 200, r.text)
        return r.json()

    def upload(self, jid, data, v=V, headers=None):
        h = {"Content-Type": "text/csv"}
        h.update(headers or {})
        return self.api("PUT", "/jobs/ingest/%s/batches" % jid, data, h, v=v)

    def close(self, jid, v=V):
        return self.api("PATCH", "/jobs/ingest/%s" % jid, {"state": "UploadComplete"}, v=v)

    def wait_job(self, jid, kind="ingest", v=V, timeout=60):
        deadline = time.time() + timeout
        while True:
            r = self.api("GET", "/jobs/%s/%s" % (kind, jid), v=v)
            self.assertEqual(r.status, 200, r.text)
            info = r.json()
            if info["state"] in ("JobComplete", "Failed", "Aborted"):
                return info
            if time.time() > deadline:
                raise AssertionError("job did not finish: %s" % info)
            time.sleep(0.02)

    def run_job(self, obj, op, data, v=V, **kw):
        job = self.create_job(obj, op, v=v, **kw)
        r = self.upload(job["id"], data, v=v)
        self.assertEqual(r.status, 201, r.text)
        r = self.close(job["id"], v=v)
        self.assertEqual(r.status, 200, r.text)
        return self.wait_job(job["id"], v=v)

    def results(self, jid, which, v=V, delimiter=","):
        r = self.api("GET", "/jobs/ingest/%s/%s" % (jid, which), v=v)
        self.assertEqual(r.status, 200, r.text)
        return r.dicts(delimiter)

    def query(self, soql, op="query", v=V, **kw):
        body = {"operation": op, "query": soql}
        body.update(kw)
        r = self.api("POST", "/jobs/query", body, v=v)
        self.assertEqual(r.status, 200, r.text)
        job = r.json()
        info = self.wait_job(job["id"], "query", v=v)
        return job, info

    def query_rows(self, soql, op="query", **kw):
        job, info = self.query(soql, op)
        self.assertEqual(info["state"], "JobComplete", info)
        r = self.api("GET", "/jobs/query/%s/results" % job["id"])
        self.assertEqual(r.status, 200, r.text)
        return r.dicts()

    def assertApiError(self, r, status, code, message=None):
        self.assertEqual(r.status, status, r.text)
        body = r.json()
        self.assertIsInstance(body, list)
        self.assertEqual(body[0]["errorCode"], code, r.text)
        if message is not None:
            self.assertEqual(body[0]["message"], message)


def b64url(b):
    return base64.urlsafe_b64encode(b).decode().rstrip("=")


def make_jwt(claims, key_path=None, header=None):
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding
    key_path = key_path or os.path.join(EMU_DIR, ORG["jwt"]["private_key"])
    with open(key_path, "rb") as fh:
        key = serialization.load_pem_private_key(fh.read(), None)
    h = b64url(json.dumps(header or {"alg": "RS256"}).encode())
    c = b64url(json.dumps(claims).encode())
    sig = key.sign((h + "." + c).encode(), padding.PKCS1v15(), hashes.SHA256())
    return h + "." + c + "." + b64url(sig)
