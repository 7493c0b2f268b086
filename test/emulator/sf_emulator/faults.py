"""Fault injection: specs added through POST /__emulator/faults, matched per request, and the canned answers of
the "status" action (README "Fault specs"). The HTTP-level actions (drop, stall, trickle, reset) are carried out
by server.Handler."""

import re
import threading

from .common import JSON_CT, Response, dumps


class Faults:
    def __init__(self):
        self.lock = threading.Lock()
        self.specs = []
        self.next_id = 1

    def add(self, spec):
        if not isinstance(spec, dict):
            raise ValueError("fault spec must be a JSON object")
        action = spec.get("action", "status")
        if action not in ("status", "drop", "stall", "delay", "trickle", "reset"):
            raise ValueError("unknown action: %s" % action)
        s = dict(spec)
        s["action"] = action
        s["id"] = self.next_id
        s["hits"] = 0
        s["seen"] = 0
        s["_method"] = re.compile("^(?:%s)$" % spec.get("method", ".*"), re.I)
        s["_path"] = re.compile(spec.get("path", ".*"))
        s["_query"] = re.compile(spec["query"]) if spec.get("query") else None
        if action == "status" and "status" not in s:
            s["status"] = 503
        s.setdefault("count", 1)
        s.setdefault("skip", 0)
        self.next_id += 1
        with self.lock:
            self.specs.append(s)
        return self.public(s)

    @staticmethod
    def public(s):
        return {k: v for k, v in s.items() if not k.startswith("_")}

    def clear(self):
        with self.lock:
            self.specs = []

    def list(self):
        with self.lock:
            return [self.public(s) for s in self.specs]

    def match(self, method, path, query):
        with self.lock:
            for s in self.specs:
                if not s["_method"].match(method) or not s["_path"].search(path):
                    continue
                if s["_query"] is not None and not s["_query"].search(query):
                    continue
                if s["count"] is not None and s["count"] >= 0 and s["hits"] >= s["count"]:
                    continue
                s["seen"] += 1
                if s["seen"] <= s["skip"]:
                    continue
                s["hits"] += 1
                return s
        return None


def fault_response(fault):
    """The answer of a "status" fault: JSON error array, HTML page, empty body or a literal text."""
    status = int(fault.get("status", 503))
    kind = fault.get("body")
    headers = list((fault.get("headers") or {}).items())
    if kind is None:
        kind = "empty" if status in (406, 420) else "html" if status == 502 else "json"
    if kind == "empty":
        return Response(status, b"", None, headers)
    if kind == "html":
        html = ("<html><head><title>%d</title></head><body><h1>%d Error</h1><p>The server encountered an "
                "error.</p></body></html>" % (status, status)).encode()
        return Response(status, html, "text/html;charset=UTF-8", headers)
    if kind == "json":
        code = {500: "UNKNOWN_EXCEPTION", 503: "SERVER_UNAVAILABLE", 429: "REQUEST_LIMIT_EXCEEDED",
                403: "REQUEST_LIMIT_EXCEEDED", 401: "INVALID_SESSION_ID"}.get(status, "UNKNOWN_EXCEPTION")
        msg = fault.get("message") or {
            500: "An unexpected error occurred. Please include this ErrorId if you contact support: "
                 "1234567890-12345 (-1234567890)",
            503: "Server temporarily unavailable", 429: "Too Many Requests",
            401: "Session expired or invalid"}.get(status, "Error %d" % status)
        # platform-level answers (session, limits, server errors) come from REST core: message first
        return Response(status, dumps([{"message": msg, "errorCode": fault.get("error_code", code)}]), JSON_CT,
                        headers)
    return Response(status, str(kind).encode("utf-8"), fault.get("content_type", "text/plain"), headers)
