"""What ingest and query jobs share: the job object and its JSON shapes (docs/bulk-api-2.md §5.1, §5.3), the
registry of jobs, background processing, the job-request JSON checks, state changes (PATCH), DELETE and the job
lists."""

import base64
import json
import re
import threading
import time
import traceback

from . import common
from .common import (DELIMITERS, LINE_ENDINGS, NOT_FOUND, TERMINAL, USER_ID, ApiError, ApiVersion, Response, Route,
                     make_id, normalize_id)


class Job:
    def __init__(self, jid, kind, operation, obj, api_version, delimiter, line_ending):
        self.id = jid
        self.kind = kind
        self.operation = operation
        self.object = obj
        self.api_version = api_version
        self.delimiter = delimiter
        self.line_ending = line_ending
        self.created = common.now()
        self.modstamp = self.created
        self.state = "Open" if kind == "ingest" else "UploadComplete"
        self.ext_id = None
        self.assignment_rule_id = None
        self.content = None
        self.upload_count = 0
        self.processed = 0
        self.failed = 0
        self.retries = 0
        self.total_ms = 0
        self.api_ms = 0
        self.error = None
        self.header = None
        self.rows = None
        self.next_index = 0
        self.success = []
        self.failures = []
        self.abort_requested = False
        self.killed = False
        self.thread = None
        self.result_cache = {}
        self.query = None
        self.query_columns = None
        self.result = None
        self.lock_fraction = 0.0
        self.fail_spec = None
        self.synthetic_rows = None
        self.started_epoch = None  # time.time() when processing started (admin /__emulator/jobs only)

    def touch(self):
        self.modstamp = common.now()

    def common(self, with_ext=True):
        d = {"id": self.id, "operation": self.operation, "object": self.object, "createdById": USER_ID,
             "createdDate": common.job_ts(self.created),
             "systemModstamp": common.job_ts(self.modstamp), "state": self.state}
        if with_ext and self.ext_id is not None:
            d["externalIdFieldName"] = self.ext_id
        return d

    def create_shape(self):
        d = self.common()
        if self.assignment_rule_id:
            d["assignmentRuleId"] = self.assignment_rule_id
        d.update({"concurrencyMode": "Parallel", "contentType": "CSV", "apiVersion": ApiVersion(self.api_version)})
        if self.kind == "ingest":
            d["contentUrl"] = "services/data/v%s/jobs/ingest/%s/batches" % (self.api_version, self.id)
        d.update({"lineEnding": self.line_ending, "columnDelimiter": self.delimiter})
        return d

    def reduced_shape(self):
        d = self.common()
        d.update({"concurrencyMode": "Parallel", "contentType": "CSV", "apiVersion": ApiVersion(self.api_version)})
        return d

    def info_shape(self):
        d = self.common()
        d.update({"concurrencyMode": "Parallel", "contentType": "CSV", "apiVersion": ApiVersion(self.api_version)})
        if self.kind == "ingest":
            d["jobType"] = "V2Ingest"
            if self.state == "Open":
                d["contentUrl"] = "services/data/v%s/jobs/ingest/%s/batches" % (self.api_version, self.id)
            d.update({"lineEnding": self.line_ending, "columnDelimiter": self.delimiter,
                      "numberRecordsProcessed": self.processed, "numberRecordsFailed": self.failed,
                      "retries": self.retries, "totalProcessingTime": self.total_ms,
                      "apiActiveProcessingTime": self.api_ms, "apexProcessingTime": 0})
        else:
            d["jobType"] = "V2Query"
            d.update({"lineEnding": self.line_ending, "columnDelimiter": self.delimiter,
                      "numberRecordsProcessed": self.processed, "retries": self.retries,
                      "totalProcessingTime": self.total_ms})  # no isPkChunkingSupported: optional (§9.2)
        if self.state == "Failed" and self.error:
            d["errorMessage"] = self.error
        return d

    def list_shape(self):
        d = self.common(with_ext=False)
        d.update({"concurrencyMode": "Parallel", "contentType": "CSV", "apiVersion": ApiVersion(self.api_version),
                  "jobType": "V2Ingest" if self.kind == "ingest" else "V2Query",
                  "lineEnding": self.line_ending, "columnDelimiter": self.delimiter})
        return d


def new_job_id(emu):
    emu.job_counter += 1
    return make_id("750", emu.job_counter)


def purge_old_jobs(emu):
    cutoff = common.now() - emu.config["job_retention_seconds"]
    for jid in [j.id for j in emu.jobs.values() if j.state in TERMINAL and j.modstamp < cutoff]:
        del emu.jobs[jid]


def get_job(emu, jid, kind):
    purge_old_jobs(emu)
    j = emu.jobs.get(jid) or emu.jobs.get(normalize_id(jid) or "")
    if not j or j.kind != kind:
        raise ApiError(404, *NOT_FOUND)
    return j


def start_processing(emu, job, process):
    """Run process(emu, job, t0) in a background thread (after the configured queue wait)."""
    t = threading.Thread(target=run_job, args=(emu, job, process), daemon=True, name="job-" + job.id)
    job.thread = t
    t.start()


def wait_interruptible(job, ms):
    end = time.time() + ms / 1000.0
    while time.time() < end:
        if job.abort_requested:
            return False
        time.sleep(min(0.01, max(0.0, end - time.time())))
    return not job.abort_requested


def run_job(emu, job, process):
    t0 = time.time()
    job.started_epoch = t0
    try:
        if not wait_interruptible(job, emu.config["processing_delay_ms"]):
            return
        while emu.config["stuck_jobs"] and not job.abort_requested:
            time.sleep(0.02)
        if job.abort_requested:
            return
        process(emu, job, t0)
    except Exception as e:  # keep the server alive, fail the job visibly
        with emu.lock:
            if job.state not in TERMINAL:
                job.state = "Failed"
                job.error = "Unknown : emulator internal error: %r" % (e,)
                job.touch()
        traceback.print_exc()


def set_state(emu, job, state, error=None):
    with emu.lock:
        if job.state in TERMINAL:
            return False
        job.state = state
        if error:
            job.error = error
        job.touch()
        return True


def fail_job(emu, job, msg, t0):
    with emu.lock:
        if job.state in TERMINAL:
            return
        job.state = "Failed"
        job.error = msg
        job.total_ms = int((time.time() - t0) * 1000)
        job.touch()


def job_request(req):
    """The JSON object of a create/PATCH request, members type-checked (§6.1)."""
    body = req.body
    check_json_ct(req)
    d = parse_json(body)
    if not isinstance(d, dict):
        raise ApiError(400, "JSON_PARSER_ERROR", "Cannot deserialize instance of job request from non-object "
                       "value")
    for k, v in d.items():
        if v is not None and not isinstance(v, str):
            line, col = value_position(body.decode("utf-8", "replace"), k)
            raise ApiError(400, "API_ERROR", "Value does not match expected type at [line:%d, column:%d]"
                           % (line, col))
    return d


_WS = re.compile(r"[ \t\n\r]*")


def value_position(text, member):
    """(line, column), 1-based, where the value of a top-level member starts, as a JSON parser reports a type
    mismatch (whitespace around ':' counted)."""
    found, pos = 0, _WS.match(text, 0).end() + 1  # after "{"
    decoder = json.JSONDecoder()
    try:
        while True:
            pos = _WS.match(text, pos).end()
            key, pos = json.decoder.scanstring(text, pos + 1)
            pos = _WS.match(text, _WS.match(text, pos).end() + 1).end()  # past ":"
            if key == member:
                found = pos
            pos = _WS.match(text, decoder.raw_decode(text, pos)[1]).end()
            if text[pos:pos + 1] != ",":
                break
            pos += 1
    except (ValueError, IndexError):
        pass
    return text.count("\n", 0, found) + 1, found - (text.rfind("\n", 0, found) + 1) + 1


def check_json_ct(req):
    ct = (req.headers.get("Content-Type") or "").lower()
    if ct and "json" not in ct and "multipart" not in ct and "octet-stream" not in ct:
        raise ApiError(415, "UNSUPPORTED_MEDIA_TYPE", "Content type '%s' is not supported for this resource"
                       % ct)


def common_options(d):
    delim = d.get("columnDelimiter") or "COMMA"
    if delim not in DELIMITERS:
        raise ApiError(400, "API_ERROR", "Invalid value: '%s' supplied for property: 'columnDelimiter'" % delim)
    le = d.get("lineEnding") or "LF"
    if le not in LINE_ENDINGS:
        raise ApiError(400, "API_ERROR", "Invalid value: '%s' supplied for property: 'lineEnding'" % le)
    ct = d.get("contentType") or "CSV"
    if ct != "CSV":
        raise ApiError(400, "API_ERROR", "Invalid value: '%s' supplied for property: 'contentType'" % ct)
    return delim, le


def parse_json(body):
    try:
        return json.loads(body.decode("utf-8") or "null")
    except (ValueError, UnicodeDecodeError) as e:
        line, col = 1, 1
        if isinstance(e, json.JSONDecodeError):
            line, col = e.lineno, e.colno
        raise ApiError(400, "JSON_PARSER_ERROR", "Unexpected character at [line:%d, column:%d]" % (line, col))


def patch_job(req, job, process):
    """PATCH {\"state\": ...}: UploadComplete (ingest, from Open) or Aborted (§5.2, §6.3, §9.5)."""
    emu = req.emu
    d = job_request(req)
    st = d.get("state")
    if st not in ("UploadComplete", "Aborted", "Open", "JobComplete", "Failed", "InProgress"):
        raise ApiError(400, "API_ERROR", "Invalid value: '%s' supplied for property: 'state'" % st)
    with emu.lock:
        if st == "Aborted":
            if job.state in TERMINAL:
                raise ApiError(400, "INVALIDJOBSTATE", "InvalidJobState : Cannot abort a job in state %s"
                               % job.state)
            job.abort_requested = True
            job.state = "Aborted"
            job.touch()
            return req.json(job.reduced_shape())
        if st == "UploadComplete" and job.kind == "ingest":
            if job.state != "Open":
                raise ApiError(400, "INVALIDJOBSTATE", "InvalidJobState : Cannot change state from %s to "
                               "UploadComplete" % job.state)
            if job.upload_count > 1:
                raise ApiError(400, "INVALIDJOB", multiple_contents_msg(job))
            job.state = "UploadComplete"
            job.touch()
            resp = req.json(job.reduced_shape())
            start_processing(emu, job, process)
            return resp
        raise ApiError(400, "INVALIDJOBSTATE", "InvalidJobState : Cannot change state from %s to %s"
                       % (job.state, st))


def delete_job(req, job):
    emu = req.emu
    with emu.lock:
        if job.kind == "ingest" and job.state in ("Open", "InProgress"):
            raise ApiError(400, "API_ERROR", "Error encountered when deleting the job because the job is not "
                           "terminated")
        if job.kind == "query" and job.state not in TERMINAL:
            raise ApiError(400, "API_ERROR", "Error encountered when deleting the job because the job is not "
                           "terminated")
        job.abort_requested = True
        del emu.jobs[job.id]
    return Response(204, b"")


def list_jobs(req, kind):
    """GET /jobs/ingest or /jobs/query: one page of the job list (§6.6)."""
    emu, ver = req.emu, req.ver
    q = req.params()
    jt = q.get("jobType")
    want = "V2Ingest" if kind == "ingest" else "V2Query"
    if jt and jt not in ("V2Ingest", "V2Query", "Classic", "BigObjectIngest"):
        raise ApiError(400, "API_ERROR", "Invalid value: '%s' supplied for property: 'jobType'" % jt)
    start = 0
    if q.get("queryLocator"):
        try:
            start = int(base64.urlsafe_b64decode(q["queryLocator"] + "=" * (-len(q["queryLocator"]) % 4)))
        except ValueError:
            raise ApiError(400, "API_ERROR", "Invalid queryLocator: %s" % q["queryLocator"])
    with emu.lock:
        purge_old_jobs(emu)
        jobs = [j for j in emu.jobs.values() if j.kind == kind and (not jt or jt == want)]
        if q.get("concurrencyMode") and q["concurrencyMode"] != "Parallel":
            jobs = []
        jobs.sort(key=lambda j: j.id)
        size = emu.config["list_page_size"]
        page = jobs[start:start + size]
        out = {"done": start + size >= len(jobs), "records": [j.list_shape() for j in page]}
        if not out["done"]:
            loc = base64.urlsafe_b64encode(str(start + size).encode()).decode().rstrip("=")
            out["nextRecordsUrl"] = "/services/data/v%s/jobs/%s?queryLocator=%s%s" % (
                ver, kind, loc, ("&jobType=" + jt) if jt else "")
        else:
            out["nextRecordsUrl"] = None
    return req.json(out)


def multiple_contents_msg(job):
    return ("Found multipe contents for job: <%s>, please 'Close' / 'Abort' / 'Delete' the current Job then create "
            "a new Job and make sure you only do 'PUT' once on a given Job." % job.id[:15])


def take_fail_spec(emu, job, kind):
    """config next_job_fails applies once, to the next job created (of its "kind" when the spec names one)."""
    nj = emu.config["next_job_fails"]
    if nj:
        spec = nj if isinstance(nj, dict) else {}
        if spec.get("kind", kind) != kind:
            return
        job.fail_spec = spec
        emu.config["next_job_fails"] = None


def fail_message(spec, timeout_msg, default):
    """The errorMessage a next_job_fails spec asks for: its "message"; none at all when "message" is null (a
    Failed job may carry no errorMessage, docs/bulk-api-2.md §9.2); the kind's timeout text for
    "error": "QUERY_TIMEOUT"; else the kind's retry-limit text."""
    if "message" in spec:
        return spec["message"]
    if spec.get("error") == "QUERY_TIMEOUT":
        return timeout_msg
    return default


def job_routes(kind, min_version, create, patch, subresources):
    """The route table of one job kind (docs/bulk-api-2.md §1): the collection (list, create), one job (info,
    PATCH, DELETE), its subresources [(pattern, {method: handler})] and a 404 for anything else below
    /jobs/<kind>. Every job route resolves the job first, so an unknown id is a 404 before a wrong method is a
    405; all answer in the jobs framework's error member order."""
    base = r"/jobs/%s" % kind
    job = base + r"/(?P<id>[0-9A-Za-z]{15,18})"

    def lookup(req, m):
        with req.emu.lock:
            return get_job(req.emu, m.group("id"), kind)

    def job_info(req, m, j):
        with req.emu.lock:
            return req.json(j.info_shape())

    def not_found(req, m):
        raise ApiError(404, *NOT_FOUND)

    return ([Route(base + r"/?", {"GET": lambda req, m, _: list_jobs(req, kind), "POST": create},
                   min_version=min_version, subsystem="jobs"),
             Route(job + r"/?", {"GET": job_info, "PATCH": patch, "DELETE": lambda req, m, j: delete_job(req, j)},
                   lookup, min_version, "jobs")]
            + [Route(job + pattern, methods, lookup, min_version, "jobs") for pattern, methods in subresources]
            + [Route(base + r".*", {}, not_found, min_version, "jobs")])
