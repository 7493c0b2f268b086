"""Conformance with bulk-api-2.md, the protocol reference the project was given, outside the repository, checked
only when present: every request/response example of it, transcribed in conformance/bulk_api_2.json (in the
repository), replayed against a running emulator.

Compared: the status, the headers the example lists (null: must be absent) and the body byte for byte after the
case's normalisations (ids, timestamps, processing times, locators, OAuth secrets). Every answer of a
/services/data call must also carry the common headers (docs/bulk-api-2.md §2.3: Sforce-Limit-Info, the JSON/CSV
Content-Type).

When that outside reference is reachable (../shared/docs/ beside the clone, or SFB_SHARED_DOCS),
test_fixture_covers_the_reference checks that each of its examples is in the fixture and that the fixture holds no
stale one; it is skipped when the reference is absent, so the project's suite stands on its own."""

import base64
import csv
import http.client
import io
import json
import os
import re
import tempfile
import time
import unittest
import urllib.parse

from emu import EMU_DIR, ORG, Emulator, make_jwt

FIXTURE = os.path.join(EMU_DIR, "conformance", "bulk_api_2.json")
ROOT = os.path.dirname(os.path.dirname(EMU_DIR))
JSON_CT = "application/json;charset=UTF-8"


def reference_path():
    cands = [os.path.join(os.environ["SFB_SHARED_DOCS"], "bulk-api-2.md")] if os.environ.get("SFB_SHARED_DOCS") else []
    cands += [os.path.join(os.path.dirname(ROOT), "shared", "docs", "bulk-api-2.md"),
              "/work/shared/docs/bulk-api-2.md"]
    return next((p for p in cands if os.path.isfile(p)), None)


# -- the examples of the reference ------------------------------------------------------------------------------
def reference_examples(md):
    """(section, kind, text) of every example: fenced blocks, inline JSON bodies, the rows of the tables of
    observed bodies/messages, and the sf__Error bullets."""
    out, lines, section, table, i = [], md.split("\n"), "", None, 0
    while i < len(lines):
        line = lines[i]
        m = re.match(r"#{2,3} (\d+(?:\.\d+)?)", line)
        if m:
            section = m.group(1)
        if line.startswith("```"):
            j = i + 1
            while not lines[j].startswith("```"):
                j += 1
            out.append((section, "block", "\n".join(lines[i + 1:j])))
            i = j + 1
            continue
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if re.fullmatch(r"[-: ]+", cells[0]):
                pass
            elif table is None:
                table = "observed" if any(re.search(r"error_description|\(observed\)", c) for c in cells) else "other"
            elif table == "observed":
                out.append((section, "row", line.strip()))
        else:
            table = None
        if table != "observed":
            for span in re.findall(r"`([^`]+)`", line):
                if span.startswith('[{"') or span.startswith('{"'):
                    out.append((section, "inline", span))
        if re.match(r"^- `[A-Z_]+:", line):
            out.append((section, "bullet", line[2:].strip()))
        i += 1
    return out


# -- normalisation ----------------------------------------------------------------------------------------------
_ID18 = re.compile(r"(?<![0-9A-Za-z])([0-9][0-9A-Za-z]{2})[0-9A-Za-z]{12}[A-Z0-5]{3}(?![0-9A-Za-z])")
_ID15 = re.compile(r"<([0-9][0-9A-Za-z]{2})[0-9A-Za-z]{12}>")
_TS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}(\+0000|Z)")


def normalize(text, kinds, base_url):
    if "oauth" in kinds:
        text = re.sub(r'"(access_token|signature|issued_at)":"[^"]*"', r'"\1":"<\1>"', text)
        for host in (base_url, "https://login.salesforce.com", "https://acme.my.salesforce.com"):
            text = text.replace(host, "<base>")
    if "ids" in kinds:
        seen = {}

        def name(m):
            key = m.group(0).strip("<>")[:15]
            if key not in seen:
                seen[key] = "<id:%s#%d>" % (m.group(1), 1 + sum(1 for k in seen if k[:3] == m.group(1)))
            return seen[key]
        text = _ID15.sub(name, _ID18.sub(name, text))
    if "timestamps" in kinds:
        text = _TS.sub(lambda m: "<ts%s>" % m.group(1), text)
    if "timings" in kinds:
        text = re.sub(r'"(totalProcessingTime|apiActiveProcessingTime)":\d+', r'"\1":<ms>', text)
    if "locators" in kinds:
        text = re.sub(r"(queryLocator|locator)=[^&\"]+", r"\1=<loc>", text)
    return text


def compact_json(text):
    return json.dumps(json.loads(text), ensure_ascii=False, separators=(",", ":"))


def parse_http(text):
    """(start line, [(header, value)], body) of an HTTP message as the reference writes it."""
    lines = text.split("\n")
    headers, i = [], 1
    while i < len(lines) and re.match(r"^[A-Za-z][A-Za-z0-9-]*: ", lines[i]):
        k, v = lines[i].split(": ", 1)
        headers.append((k, v))
        i += 1
    if i < len(lines) and lines[i] == "":
        i += 1
    return lines[0], headers, "\n".join(lines[i:])


class Conformance(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(FIXTURE, encoding="utf-8") as fh:
            cls.fx = json.load(fh)
        with open(os.path.join(EMU_DIR, "metadata.json"), encoding="utf-8") as fh:
            meta = json.load(fh)
        for obj, fields in cls.fx["metadata"]["add_fields"].items():
            meta["objects"][obj]["fields"].extend(fields)
        meta["objects"].update(cls.fx["metadata"]["add_objects"])
        cls.tmp = tempfile.mkdtemp(prefix="sfemu-conformance-")
        path = os.path.join(cls.tmp, "metadata.json")
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(meta, fh)
        cls.emu = Emulator("--metadata", path)

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop()

    # -- variables and requests
    def variables(self):
        q = urllib.parse.quote
        u = urllib.parse.urlsplit(self.emu.url)
        return {"token": ORG["access_token"], "client_id_q": q(ORG["client_id"], safe=""),
                "client_secret_q": q(ORG["client_secret"], safe=""), "username_q": q(ORG["username"], safe=""),
                "password_q": q(ORG["password"] + ORG["security_token"], safe=""), "hostport": u.netloc,
                "basic": base64.b64encode(("%s:%s" % (ORG["client_id"], ORG["client_secret"])).encode()).decode()}

    def subst(self, s, var):
        def one(m):
            k = m.group(1)
            if k.startswith("jwt:"):
                claims = {"iss": ORG["client_id"], "sub": ORG["username"], "aud": "https://login.salesforce.com",
                          "exp": int(time.time()) + 120}
                if k == "jwt:unknown_user":
                    claims["sub"] = "nobody@example.org"
                if k == "jwt:bad_audience":
                    claims["aud"] = "https://example.org"
                return make_jwt(claims)
            self.assertIn(k, var, "fixture uses an unknown variable {{%s}}" % k)
            return str(var[k])
        return re.sub(r"\{\{([a-z0-9_:]+)\}\}", one, s)

    def send(self, method, path, headers, body):
        c = self.emu.conn()
        try:
            c.putrequest(method, path, skip_host="Host" in headers, skip_accept_encoding=True)
            for k, v in headers.items():
                c.putheader(k, v)
            if body is not None or method in ("POST", "PUT", "PATCH"):
                c.putheader("Content-Length", str(len(body or b"")))
            c.endheaders(body or None)
            r = c.getresponse()
            return r.status, r.headers, r.read()
        finally:
            c.close()

    def step_request(self, step, var):
        if "request_from_doc" in step:
            text = step["request_from_doc"]
            for old, new in step.get("replace", []):
                self.assertIn(old, text)
                text = text.replace(old, new)
            text = self.subst(text, var)
            start, hdrs, body = parse_http(text)
            method, path, _ = start.split(" ")
            headers = dict(hdrs)
            headers.update({k: self.subst(v, var) for k, v in step.get("add_headers", {}).items()})
            return method, path, headers, body.encode("utf-8") if body else None
        headers = {k: self.subst(v, var) for k, v in step.get("headers", {}).items()}
        body = None
        if "json" in step:
            body = self.subst(json.dumps(step["json"], ensure_ascii=False), var).encode("utf-8")
            headers.setdefault("Content-Type", "application/json")
        if "text" in step:
            body = self.subst(step["text"], var).encode("utf-8")
        return step["method"], self.subst(step["path"], var), headers, body

    # -- one case
    def run_case(self, case):
        self.send("POST", "/__emulator/reset", {}, b"")
        var = self.variables()
        for n, step in enumerate(case["steps"]):
            where = "%s, step %d" % (case["name"], n + 1)
            method, path, headers, body = self.step_request(step, var)
            deadline = time.time() + 30
            while True:
                status, rh, raw = self.send(method, path, headers, body)
                if "wait_state" not in step or status != 200:
                    break
                state = json.loads(raw)["state"]
                if state in ("JobComplete", "Failed", "Aborted"):
                    self.assertEqual(state, step["wait_state"], "%s: %s" % (where, raw))
                    break
                self.assertLess(time.time(), deadline, where)
                time.sleep(0.02)
            text = raw.decode("utf-8")
            if step.get("admin"):
                self.assertEqual(status, 200, "%s: %s" % (where, text))
            if path.startswith("/services/data"):
                self.check_common_headers(rh, raw, where)
            if "expect" in step:
                self.check(step["expect"], status, rh, text, where)
            for k, p in step.get("capture", {}).items():
                v = json.loads(text)
                for part in p.split("."):
                    v = v[int(part)] if part.isdigit() else v[part]
                var[k] = v

    def check_common_headers(self, rh, raw, where):
        self.assertRegex(rh.get("Sforce-Limit-Info") or "", r"^api-usage=\d+/\d+$", "%s: Sforce-Limit-Info" % where)
        if raw:
            ct = rh.get("Content-Type")
            self.assertIn(ct, (JSON_CT, "text/csv"), where)
            self.assertEqual(ct == JSON_CT, raw[:1] in (b"{", b"["), "%s: Content-Type %s" % (where, ct))

    def check(self, exp, status, rh, text, where):
        norm = exp.get("normalize", [])
        want_headers, body = dict(exp.get("headers", {})), exp.get("body")
        want_status = exp.get("status")
        if "from_doc" in exp:
            doc = exp["from_doc"]
            if doc.startswith("HTTP/1.1 "):
                start, hdrs, doc_body = parse_http(doc)
                want_status = int(start.split(" ")[1])
                for k, v in hdrs:
                    want_headers.setdefault(k, v)
            else:
                doc_body = doc
            if body is None:
                body = doc_body
                if body[:1] in ("{", "["):
                    body = compact_json(body)
                elif exp.get("final_newline") and body:
                    body += "\n"
        self.assertEqual(status, want_status, "%s: %s" % (where, text))
        for k, v in want_headers.items():
            got = rh.get(k)
            if v is None:
                self.assertIsNone(got, "%s: header %s must be absent" % (where, k))
            elif k == "Sforce-Limit-Info":
                if "limit_info" in norm:
                    v = re.sub(r"api-usage=\d+/", "api-usage=<n>/", v)
                self.assertRegex(got or "", "^" + re.escape(v).replace(re.escape("<n>"), r"\d+") + "$",
                                 "%s: %s" % (where, k))
            else:
                self.assertEqual(got, v, "%s: header %s" % (where, k))
        base = self.emu.url
        if body is not None:
            self.assertEqual(normalize(text, norm, base), normalize(body, norm, base), where)
        if "error_code" in exp:
            self.assertEqual(json.loads(text)[0]["errorCode"], exp["error_code"], where)
        if "csv_column" in exp:
            rows = list(csv.DictReader(io.StringIO(text, newline="")))
            for col, values in exp["csv_column"].items():
                got = [r[col] for r in rows]
                if exp.get("prefix"):
                    self.assertEqual(len(got), len(values), where)
                    for g, v in zip(got, values):
                        self.assertTrue(g.startswith(v), "%s: %r does not start with %r" % (where, g, v))
                else:
                    self.assertEqual(got, values, where)
        d = json.loads(text) if any(k in exp for k in ("json_member", "json_contains", "json_keys",
                                                        "json_element")) else None
        for k, v in exp.get("json_member", {}).items():
            self.assertEqual(d.get(k), v, where)
        for k, v in exp.get("json_contains", {}).items():
            self.assertIn(v, d.get(k) or "", where)
        for k, members in exp.get("json_keys", {}).items():
            self.assertEqual(list(d[k]), members, "%s: %s" % (where, k))
            self.assertTrue(all(isinstance(d[k][m], int) for m in members), where)
        if "json_element" in exp:
            self.assertIn(exp["json_element"], [json.dumps(e, ensure_ascii=False, separators=(",", ":")) for e in d],
                          where)

    # -- the reference itself
    def test_fixture_covers_the_reference(self):
        path = reference_path()
        if path is None:
            self.skipTest("bulk-api-2.md not found (shared docs absent): coverage of the reference not checked")
        with open(path, encoding="utf-8") as fh:
            examples = {(s, k, t) for s, k, t in reference_examples(fh.read())}
        covered = {(d["section"], d["kind"], d["text"]) for c in self.fx["cases"] for d in c["doc"]}
        covered |= {(d["section"], d["kind"], d["text"]) for d in self.fx["not_replayed"]}
        missing = sorted(examples - covered)
        stale = sorted(covered - examples)
        self.assertEqual(missing, [], "examples of %s that the fixture does not cover" % path)
        self.assertEqual(stale, [], "fixture examples no longer in %s" % path)

    def test_fixture_replays_the_blocks_it_claims(self):
        """Every fenced example a case claims is replayed verbatim by one of its steps (as the request sent or
        as the expected answer), so coverage cannot be claimed by a bare mention."""
        for c in self.fx["cases"]:
            texts = [v for st in c["steps"] for v in (st.get("request_from_doc"), st.get("expect", {}).get("from_doc"))
                     if v]
            for d in c["doc"]:
                if d["kind"] == "block":
                    self.assertIn(d["text"], texts, "%s: %r" % (c["name"], d["text"][:80]))


def _case_test(case):
    def test(self):
        self.run_case(case)
    test.__doc__ = case["name"]
    return test


with open(FIXTURE, encoding="utf-8") as _fh:
    for _i, _case in enumerate(json.load(_fh)["cases"]):
        setattr(Conformance, "test_case_%02d_%s" % (_i + 1, re.sub(r"\W+", "_", _case["name"])[:50].strip("_")),
                _case_test(_case))


if __name__ == "__main__":
    unittest.main()
