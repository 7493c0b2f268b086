"""TLS: verification is always on. An https endpoint whose certificate is not trusted, or is issued for another
host name, fails the job with curl's reason and the endpoint, after no HTTP request at all; the same endpoint
works once sf_bulk.ca_file trusts its certificate (so verification, and nothing else, made the difference). An
unreachable host ends in a clear error naming it.

The https endpoint is a small TLS-terminating proxy in front of the emulator (Python ssl, a certificate made
here with python3-cryptography), on 127.0.0.1.
"""

import datetime
import http.client
import http.server
import ipaddress
import os
import shutil
import ssl
import threading
import time
import urllib.parse

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from harness import ENV, IntegrationTest, free_port, log, mapping_options, poll, sql_literal

HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


def make_certificate(directory, name, san):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(san), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path = os.path.join(directory, name + ".crt")
    key_path = os.path.join(directory, name + ".key")
    with open(cert_path, "wb") as fh:
        fh.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as fh:
        fh.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()))
    os.chmod(cert_path, 0o644)
    if os.getuid() == 0:
        shutil.chown(cert_path, "postgres", "postgres")
    return cert_path, key_path


class TlsProxy:
    """https://127.0.0.1:port -> the emulator, request by request. Counts the HTTP requests it forwarded."""

    def __init__(self, upstream, cert_path, key_path):
        self.upstream = urllib.parse.urlsplit(upstream)
        self.requests = 0
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):
                pass

            def forward(self):
                proxy.requests += 1
                if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                    body = b""
                    while True:
                        size = int(self.rfile.readline().split(b";")[0], 16)
                        if size == 0:
                            self.rfile.readline()
                            break
                        body += self.rfile.read(size)
                        self.rfile.readline()
                else:
                    body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                conn = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS | {"host"}}
                headers["Content-Length"] = str(len(body))
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in HOP_HEADERS | {"content-length"}:
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                conn.close()

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = forward

        self.port = free_port()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_path, key_path)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = "https://127.0.0.1:%d" % self.port

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class Tls(IntegrationTest):

    @classmethod
    def setUpClass(cls):
        directory = os.path.join(ENV.workdir, "tls")
        os.makedirs(directory, exist_ok=True)
        os.chmod(directory, 0o755)
        cls.ip_cert = make_certificate(directory, "emulator-ip", [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
        cls.name_cert = make_certificate(directory, "emulator-otherhost", [x509.DNSName("sf.example.test")])

    def setUp(self):
        super().setUp()
        self.proxies = []
        self.servers = []

    def tearDown(self):
        for proxy in self.proxies:
            proxy.stop()
        super().tearDown()
        for server in self.servers:
            self.pg.psql("DROP SERVER IF EXISTS %s CASCADE;" % server)
        self.pg.psql("ALTER SYSTEM RESET sf_bulk.ca_file; ALTER SYSTEM RESET sf_bulk.max_retries; "
                     "SELECT pg_reload_conf();")

    def https_server(self, name, cert):
        proxy = TlsProxy(ENV.emulator.url, *cert)
        self.proxies.append(proxy)
        self.servers.append(name)
        self.pg.psql("""CREATE SERVER %s FOREIGN DATA WRAPPER salesforce OPTIONS (login_url %s, instance_url %s);
                        CREATE USER MAPPING FOR postgres SERVER %s OPTIONS (%s);"""
                     % (name, sql_literal(proxy.url), sql_literal(proxy.url), name, mapping_options()))
        return proxy

    def set_ca_file(self, path):
        # Applied by the running worker on reload (its HTTP client is rebuilt once no transfer runs).
        self.pg.psql("ALTER SYSTEM SET sf_bulk.ca_file = %s; SELECT pg_reload_conf();" % sql_literal(path))
        poll(lambda: self.pg.value("SHOW sf_bulk.ca_file") == path, 10, 0.05, "the setting")
        time.sleep(0.3)

    def enqueue_to(self, server, n=5, validate=True):
        """validate=False where the worker's failure is under test: the call-time check (a backend call over the
        same TLS settings) would refuse the call before a job exists."""
        return self.enqueue("""SELECT sf_bulk_insert('Lead', $$SELECT %s || '-' || n AS "LastName", 'TLS' AS "Company"
                                  FROM generate_series(1, %d) n$$, server => %s, validate => %s)"""
                            % (sql_literal(self.tag), n, sql_literal(server), "true" if validate else "false"))

    def test_untrusted_certificate_fails_verification(self):
        proxy = self.https_server("tls_untrusted", self.ip_cert)
        # The call-time check meets the same certificate first, and says so.
        err = self.pg.psql_fail("""SELECT sf_bulk_insert('Lead', $$SELECT 'x' AS "LastName", 'y' AS "Company"$$,
                                                        server => 'tls_untrusted')""")
        self.assertIn("sf_bulk_insert: could not log in to Salesforce: TOKEN_ENDPOINT_UNREACHABLE", err.stderr)
        self.assertIn("SSL certificate problem", err.stderr)
        self.assertIn("validate => false skips the check", err.stderr)
        job = self.enqueue_to("tls_untrusted", validate=False)
        row = self.wait(job, 60)
        self.assertEqual(row["state"], "failed", "job row: %r" % (row,))
        self.assertIn("SSL certificate problem", row["error"])
        self.assertIn(proxy.url, row["error"])
        self.assertEqual(proxy.requests, 0, "an HTTP request went over a connection that failed verification")
        self.assertEqual(self.pg.value("SELECT count(*) FROM sf_bulk_unprocessed(%d)" % job), "5")
        log("    untrusted certificate: %s" % row["error"])

    def test_trusted_with_ca_file_completes(self):
        proxy = self.https_server("tls_trusted", self.ip_cert)
        self.set_ca_file(self.ip_cert[0])
        job = self.enqueue_to("tls_trusted")
        row = self.wait(job, 60)
        self.assertCompleted(row)
        self.assertEqual(len(self.store_by("LastName", self.tag + "-")), 5)
        self.assertGreaterEqual(proxy.requests, 6, "token, create, upload, close, poll, results: all over TLS")

    def test_certificate_for_another_host_fails(self):
        proxy = self.https_server("tls_wrong_host", self.name_cert)
        self.set_ca_file(self.name_cert[0])
        job = self.enqueue_to("tls_wrong_host", validate=False)
        row = self.wait(job, 60)
        self.assertEqual(row["state"], "failed", "job row: %r" % (row,))
        self.assertIn("127.0.0.1", row["error"])
        self.assertRegex(row["error"], r"(?i)subject|host ?name|certificate")
        self.assertEqual(proxy.requests, 0)
        log("    certificate for another host: %s" % row["error"])

    def test_unreachable_host_fails_with_its_address(self):
        port = free_port()  # nothing listens there
        self.servers.append("nowhere")
        self.pg.psql("""CREATE SERVER nowhere FOREIGN DATA WRAPPER salesforce OPTIONS (login_url 'https://127.0.0.1:%d');
                        CREATE USER MAPPING FOR postgres SERVER nowhere OPTIONS (%s);
                        ALTER SYSTEM SET sf_bulk.max_retries = 2; SELECT pg_reload_conf();"""
                     % (port, mapping_options()))
        poll(lambda: self.pg.value("SHOW sf_bulk.max_retries") == "2", 10, 0.05, "the setting")
        job = self.enqueue_to("nowhere", validate=False)
        row = self.wait(job, 60)
        self.assertEqual(row["state"], "failed", "job row: %r" % (row,))
        self.assertIn("127.0.0.1:%d" % port, row["error"])
        self.assertEqual(self.pg.value("SELECT count(*) FROM sf_bulk_unprocessed(%d)" % job), "5")
        log("    unreachable host: %s" % row["error"])
