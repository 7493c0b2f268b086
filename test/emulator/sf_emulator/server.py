"""The HTTP layer: one threading server, request bodies (chunked, capped, faulted), the request log, the
top-level routing through the modules' route tables, and sending (gzip, faults: drop, trickle)."""

import gc
import gzip
import re
import ipaddress
import socket
import sys
import struct
import threading
import time
import traceback
import urllib.parse
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from . import admin, auth, common, ingest, query, rest
from .common import JSON_CT, NOT_FOUND, ApiError, OAuthError, Request, Response, dumps
from .faults import fault_response
from .ingest import Oversize

VERSION_RE = re.compile(r"^/services/data/v(\d+)\.(\d)(/.*)?$")
UNVERSIONED = auth.ROUTES + rest.UNVERSIONED
VERSIONED = rest.ROUTES + ingest.ROUTES + query.ROUTES


class Dropped(Exception):
    pass


def route(req):
    """The answer to one request: admin API, unversioned OAuth/REST paths, then /services/data/vNN.0/...
    (authenticated, limited, counted) through the route tables."""
    emu, path = req.emu, req.path
    if path.startswith("/__emulator"):
        return admin.handle(req)
    m = VERSION_RE.match(path)
    if not m:
        return common.dispatch(UNVERSIONED, req, path)
    major, minor, rest_path = int(m.group(1)), m.group(2), m.group(3) or ""
    if minor != "0" or major < 20 or major > emu.config["max_api_version"]:
        raise ApiError(404, *NOT_FOUND)
    req.ver, req.major = "%d.0" % major, major
    auth.authenticate(req)
    max_conc = emu.config["max_concurrent_requests"]
    if max_conc and emu.inflight > max_conc:
        raise ApiError(403, "REQUEST_LIMIT_EXCEEDED", "ConcurrentRequests (Concurrent API Requests) Limit "
                       "exceeded.", core=True)
    req.counted = True
    emu.count_call()
    if rest_path.endswith("/") and len(rest_path) > 1:
        rest_path = rest_path[:-1]
    return common.dispatch(VERSIONED, req, rest_path)


# http.server refuses a request line over 64 KiB itself (a 414 of its own, unlogged, connection closed); the
# emulator reads lines up to this and answers Salesforce's smaller limit itself (edge_limit)
MAX_REQUEST_LINE = 1 << 20


def edge_page(status):
    """The body of a 414/431: not JSON (docs/soql-and-rest.md §1.5, the shape is unverified), like a front end's."""
    title = "%d %s" % (status, HTTPStatus(status).phrase)
    return Response(status, ("<html><head><title>%s</title></head><body><center><h1>%s</h1></center></body>"
                             "</html>\n" % (title, title)).encode(), "text/html")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        BaseHTTPRequestHandler.setup(self)
        # The status line and headers leave in one write and the body in another: with Nagle's algorithm the
        # body waits for the client's delayed ACK of the headers (40 ms on Linux), a stall Salesforce's front
        # ends do not have and that would swamp every latency a client measures against the emulator.
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
    server_version = "SalesforceEmulator/1.0"
    sys_version = ""
    rbufsize = 256 * 1024

    def log_message(self, fmt, *args):
        pass

    def handle_one_request(self):
        """BaseHTTPRequestHandler.handle_one_request with a larger request-line cap (MAX_REQUEST_LINE instead of
        65536), so that the emulator's own 16 KiB limit answers long statements (edge_limit)."""
        try:
            self.raw_requestline = self.rfile.readline(MAX_REQUEST_LINE + 1)
            if len(self.raw_requestline) > MAX_REQUEST_LINE:
                self.requestline = ""
                self.request_version = ""
                self.command = ""
                self.send_error(HTTPStatus.REQUEST_URI_TOO_LONG)
                return
            if not self.raw_requestline:
                self.close_connection = True
                return
            if not self.parse_request():
                return
            mname = "do_" + self.command
            if not hasattr(self, mname):
                self.send_error(HTTPStatus.NOT_IMPLEMENTED, "Unsupported method (%r)" % self.command)
                return
            getattr(self, mname)()
            self.wfile.flush()
        except TimeoutError:
            self.close_connection = True

    def edge_limit(self):
        """Salesforce's limit on a request's size (docs/soql-and-rest.md §1.5, §1.6): a request target over
        max_request_head_bytes (16,384) answers 414, the target plus the header lines over it 431, before anything
        else looks at the request (no auth, not counted, no faults, no Sforce-Limit-Info). None: within limits."""
        cap = self.server.emu.config["max_request_head_bytes"]
        if not cap:
            return None
        uri = len(self.path)  # the request target as sent (decoded as ISO-8859-1: one character per byte)
        if uri > cap:
            return edge_page(414)
        if uri + sum(len(k) + len(v) + 4 for k, v in self.headers.items()) > cap:
            return edge_page(431)
        return None

    def version_string(self):
        return self.server_version

    def date_time_string(self, timestamp=None):
        """The Date header on the emulator's clock: a client that needs the server's "now" (an incremental sync's
        upper bound, docs/soql-and-rest.md §4.4 step 1) reads it here, so it must agree with the record stamps."""
        return common.http_date(common.now() if timestamp is None else timestamp)

    def do_GET(self):
        self.dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    # -- body -------------------------------------------------------------------------------------------------
    def read_body(self, fault):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        drop_at = None
        if fault and fault["action"] == "drop" and fault.get("when", "response") == "request":
            drop_at = fault.get("after_bytes")
        if "chunked" in te:
            out = bytearray()
            oversize, total, cap = False, 0, None
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise Dropped()
                try:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise ApiError(400, "INVALID_REQUEST", "Malformed chunked body")
                if size == 0:
                    while True:
                        t = self.rfile.readline(65537)
                        if t in (b"\r\n", b"\n", b""):
                            break
                    break
                data = self.rfile.read(size)
                if len(data) < size:
                    raise Dropped()
                if oversize:
                    total += len(data)
                else:
                    out += data
                    cap = self.body_cap() if cap is None else cap
                    if cap is not None and len(out) > cap:
                        oversize, total = True, len(out)
                        out = bytearray()
                self.rfile.readline()
                if drop_at is not None and len(out) >= drop_at:
                    raise Dropped()
            if drop_at is not None:
                raise Dropped()
            if oversize:
                o = Oversize()
                o.size = total
                return o
            return bytes(out)
        n = int(self.headers.get("Content-Length") or 0)
        cap = self.body_cap()
        if cap is not None and n > cap and not (fault and fault["action"] == "drop"):
            left = n
            while left > 0:
                got = self.rfile.read(min(left, 1 << 20))
                if not got:
                    raise Dropped()
                left -= len(got)
            o = Oversize()
            o.size = n
            return o
        if drop_at is not None or (fault and fault["action"] == "drop" and fault.get("when") == "request"):
            part = fault.get("after_bytes", n // 2)
            if part:
                self.rfile.read(min(part, n))
            raise Dropped()
        if n <= 0:
            return b""
        data = self.rfile.read(n)
        if len(data) < n:
            raise Dropped()
        return data

    def body_cap(self):
        """Raw-byte limit for an upload body (PUT .../batches); None for other requests."""
        if self.command != "PUT" or not self.path.split("?", 1)[0].rstrip("/").endswith("/batches"):
            return None
        if (self.headers.get("Content-Encoding") or "").strip().lower() not in ("", "identity"):
            return None
        return self.server.emu.config["max_upload_bytes"] * 3 // 4 + 3

    # -- dispatch ---------------------------------------------------------------------------------------------
    def dispatch(self):
        emu = self.server.emu
        t0 = self._t0 = time.time()
        url = urllib.parse.urlsplit(self.path)
        path, query = url.path, url.query
        is_admin = path.startswith("/__emulator/") or path == "/__emulator"
        method = self.command
        edge = None if is_admin else self.edge_limit()
        fault = None if is_admin or edge else emu.faults.match(method, path, query)
        entry = {"method": method, "path": path, "query": query, "status": None, "request_bytes": 0,
                 "response_bytes": 0, "start": common.log_ts(t0), "start_epoch_ms": int(t0 * 1000),
                 "duration_ms": 0, "admin": is_admin, "fault": fault["id"] if fault else None,
                 "chunked": "chunked" in (self.headers.get("Transfer-Encoding") or "").lower(),
                 "client": call_options_client(self.headers.get("Sforce-Call-Options"))}
        counted = [False]
        with emu.lock:
            emu.inflight += 1
        try:
            try:
                body = self.read_body(fault)
            except Dropped:
                entry["status"] = None
                entry["dropped"] = "request"
                self.abort_connection()
                return
            entry["request_bytes"] = len(body)
            if fault and fault["action"] in ("stall", "delay"):
                time.sleep(float(fault.get("ms", 30000)) / 1000.0)
            if fault and fault["action"] == "reset":
                entry["dropped"] = "request"
                self.abort_connection()
                return
            resp = edge
            if fault and fault["action"] == "status" and not fault.get("after_processing"):
                resp = fault_response(fault)
            if resp is None:
                req = Request(emu, method, path, query, self.headers, body)
                try:
                    resp = route(req)
                except ApiError as e:
                    resp = Response(e.status, e.body(req.subsystem), JSON_CT, list(e.headers.items()))
                except OAuthError as e:
                    resp = Response(e.status, dumps({"error": e.error, "error_description": e.desc}), JSON_CT)
                except Exception as e:  # pragma: no cover - keep serving
                    traceback.print_exc()
                    resp = Response(500, dumps([{"errorCode": "UNKNOWN_EXCEPTION",
                                                 "message": "emulator error: %r" % (e,)}]), JSON_CT)
                if fault and fault["action"] == "status" and fault.get("after_processing"):
                    resp = fault_response(fault)
                # docs/bulk-api-2.md §2.3: every REST response carries Sforce-Limit-Info, also 401/404 and the
                # uncounted version list
                counted[0] = req.counted or path.startswith("/services/data")
            if counted[0] and not is_admin:
                resp.headers.append(("Sforce-Limit-Info", emu.limit_header()))
            entry["status"] = resp.status
            self.send(resp, fault, entry)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, socket.timeout):
            self.close_connection = True
        finally:
            with emu.lock:
                emu.inflight -= 1
            self.commit_log(entry)

    def commit_log(self, entry):
        """Append the request-log entry once; called just before the response goes out, so a client that has
        seen a response always finds its entry in the log."""
        if "seq" in entry:
            return
        emu = self.server.emu
        entry["duration_ms"] = round((time.time() - self._t0) * 1000.0, 3)
        with emu.log_lock:
            emu.log_seq += 1
            entry["seq"] = emu.log_seq
            emu.log.append(entry)
            if len(emu.log) > 200000:
                del emu.log[:50000]

    def abort_connection(self):
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass

    def send(self, resp, fault, entry):
        body = resp.body
        ae = (self.headers.get("Accept-Encoding") or "").lower()
        emu = self.server.emu
        if (body and len(body) >= 512 and "gzip" in ae and emu.config["gzip_responses"] and self.command != "HEAD"):
            body = gzip.compress(body, 1)
            resp.headers.append(("Content-Encoding", "gzip"))
            resp.headers.append(("Vary", "Accept-Encoding"))
        chunked = bool(fault and fault["action"] == "drop" and fault.get("chunked"))
        self.send_response(resp.status)
        for k, v in resp.headers:
            self.send_header(k, v)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        elif resp.status not in (204, 304) and not (resp.status == 201 and not body):
            self.send_header("Content-Length", str(len(body)))
        elif resp.status == 201:
            self.send_header("Content-Length", "0")
        if self.close_connection:
            self.send_header("Connection", "close")
        dropping = bool(fault and fault["action"] == "drop" and fault.get("when", "response") == "response")
        cut = int(fault.get("after_bytes", len(body) // 2)) if dropping else len(body)
        entry["response_bytes"] = 0 if self.command == "HEAD" else cut
        if dropping:
            entry["dropped"] = "response"
        self.commit_log(entry)
        self.end_headers()
        if self.command == "HEAD":
            return
        if dropping:
            if chunked:
                part = body[:cut]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part) if part else b"")
            else:
                self.wfile.write(body[:cut])
            self.wfile.flush()
            self.abort_connection()
            return
        if fault and fault["action"] == "trickle" and body:
            bps = max(1, int(fault.get("bytes_per_second", 1024)))
            step = max(1, bps // 10)
            for i in range(0, len(body), step):
                self.wfile.write(body[i:i + step])
                self.wfile.flush()
                time.sleep(0.1)
        elif chunked:
            self.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body) if body else b"0\r\n\r\n")
        else:
            self.wfile.write(body)

    # -- helpers ----------------------------------------------------------------------------------------------


def call_options_client(h):
    if not h:
        return None
    for part in h.split(","):
        k, _, v = part.strip().partition("=")
        if k.strip() == "client":
            return v.strip()
    return None


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        """A client that vanished while a kept-alive connection waited for its next request (a worker SIGKILLed
        with unread answers in its sockets resets them) is no emulator error: no traceback for it."""
        if isinstance(sys.exc_info()[1], ConnectionResetError):
            return
        super().handle_error(request, client_address)


class Server6(Server):
    address_family = socket.AF_INET6


def start_gc_thread():
    """Automatic cyclic GC rescans millions of parsed rows/records over and over during big jobs (quadratic
    slow-down). Collect on a timer instead: the young generations often (linear in new objects), everything
    rarely. Nearly all emulator data is acyclic and freed by reference counting anyway."""
    gc.disable()

    def loop():
        n = 0
        while True:
            time.sleep(2.0)
            n += 1
            gc.collect(2 if n % 30 == 0 else 1)
    threading.Thread(target=loop, daemon=True, name="gc").start()


def loopback_only(host):
    try:
        infos = socket.getaddrinfo(host, None)
    except socket.gaierror:
        return False
    addrs = {i[4][0] for i in infos}
    return bool(addrs) and all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addrs)
