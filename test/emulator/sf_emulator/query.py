"""Query jobs (docs/bulk-api-2.md §9): create, processing, result pages with locators, resultPages (58.0+).

Route table ROUTES: /jobs/query... below /services/data/vNN.0 (47.0+)."""

import base64
import datetime as _dt
import re
import time

from . import common, jobs
from .common import CSV_CT, DELIMITERS, LINE_ENDINGS, NOT_FOUND, TERMINAL, ApiError, Response, make_id
from .soql import QueryRunner, Soql, SoqlError


class ResultSet:
    """A finished query job's rows, rendered once: each row as its quoted values joined by '"<delimiter>"' (the
    outer quotes and line endings are added per page), so a page is a slice and one join (docs/bulk-api-2.md
    §9.3: every value quoted, embedded quotes doubled, null -> ""). Built column by column with C-level loops."""

    def __init__(self, n, cols, delim):
        self.n = n
        sep = '"' + delim + '"'
        prepared = []
        for col in cols:
            if None in col:
                col = ["" if v is None else v for v in col]
            if '"' in "".join(col):
                col = [v.replace('"', '""') for v in col]
            prepared.append(col)
        self._lines = list(map(sep.join, zip(*prepared))) if n else []

    def __len__(self):
        return self.n

    def lines(self, start, stop):
        return self._lines[start:stop]

    def size_bytes(self, le):
        """Bytes of the whole result as one file (the daily result-volume allocation counts these)."""
        return sum(map(len, self._lines)) + self.n * (2 + len(le))


class SyntheticRows:
    """A huge query result generated on demand, page by page (fault: large result sets, bounded memory)."""

    def __init__(self, n, soql, schema, delim):
        self.n = n
        self.sep = '"' + delim + '"'
        self.gens = []
        for header, chain, f in soql.columns:
            self.gens.append(self.generator(header, f, schema, soql.obj if not chain else None))

    @staticmethod
    def generator(header, f, schema, obj):
        t = f.type
        if t == "id" and obj is not None:
            return lambda i, p=obj.key_prefix: make_id(p, i + 1)
        if t in ("id", "reference"):
            target = schema.get(f.reference_to[0]) if f.reference_to else None
            prefix = target.key_prefix if target else "000"
            return lambda i, p=prefix: make_id(p, i % 1000 + 1)
        if t == "boolean":
            return lambda i: "true" if i % 2 else "false"
        if t == "int":
            return lambda i: str(i)
        if t in ("double", "currency", "percent"):
            return lambda i: "%d.%02d" % (i, i % 100)
        if t == "date":
            return lambda i: (_dt.date(2020, 1, 1) + _dt.timedelta(days=i % 3650)).isoformat()
        if t == "datetime":
            return lambda i: common.record_ts(1577836800 + i)
        if t == "picklist" and f.picklist:
            return lambda i, v=f.picklist: v[i % len(v)]
        return lambda i, h=header: "%s %d" % (h, i)

    def __len__(self):
        return self.n

    def lines(self, start, stop):
        start, stop, _ = slice(start, stop).indices(self.n)
        sep, gens = self.sep, self.gens
        return [sep.join([g(i) for g in gens]) for i in range(start, stop)]

    def size_bytes(self, le):
        if not self.n:
            return 0
        return len(self.lines(0, 1)[0]) * self.n + self.n * (2 + len(le))  # an estimate: rows are alike


QUERY_TIMEOUT_MSG = "QUERY_TIMEOUT : Your query request was running for too long."


def process_query(emu, job, t0):
    """UploadComplete -> InProgress -> JobComplete/Failed (docs/bulk-api-2.md §4.2, §9.2). With batch_delay_ms,
    numberRecordsProcessed grows in steps of batch_size rows, one delay each (slow processing)."""
    if not jobs.set_state(emu, job, "InProgress"):
        return
    if isinstance(job.query, SoqlError):
        return jobs.fail_job(emu, job, "%s : %s" % (job.query.code, job.query.message.strip()), t0)
    delim = DELIMITERS[job.delimiter]
    if job.synthetic_rows is not None:
        rows = SyntheticRows(job.synthetic_rows, job.query, emu.schema, delim)
    else:
        n, cols = QueryRunner(job.query, emu.store, job.operation == "queryAll",
                              emu.config["soql_not_equal_keeps_nulls"]).columns(emu.lock)
        rows = ResultSet(n, cols, delim)
    delay, bsize = emu.config["batch_delay_ms"], max(1, int(emu.config["batch_size"]))
    fail_spec = job.fail_spec
    done = 0
    while True:
        if fail_spec is not None and done >= fail_spec.get("after_batches", 0) * bsize:
            job.retries = int(fail_spec.get("retries", 15))  # query jobs are retried up to 15 times (§8)
            return jobs.fail_job(emu, job, jobs.fail_message(
                fail_spec, QUERY_TIMEOUT_MSG, "InvalidBatch : Failed to process query: the job was retried more "
                "than 15 times"), t0)
        if done >= len(rows) or (not delay and fail_spec is None):
            break
        if delay and not jobs.wait_interruptible(job, delay):
            return
        with emu.lock:
            if job.state in TERMINAL:
                return
            done = min(len(rows), done + bsize)
            job.processed = done
            job.touch()
    with emu.lock:
        if job.state in TERMINAL:
            return
        job.result = rows
        job.processed = len(rows)
        job.total_ms = int((time.time() - t0) * 1000)
        emu.query_storage_kb += -(-rows.size_bytes(LINE_ENDINGS[job.line_ending]) // 1024)
        job.state = "JobComplete"
        job.touch()


def create_query(req, m, _):
    """POST /jobs/query (§9.1)."""
    emu, ver = req.emu, req.ver
    d = jobs.job_request(req)
    op = d.get("operation")
    if op not in ("query", "queryAll"):
        raise ApiError(400, "API_ERROR", "Invalid value: '%s' supplied for property: 'operation'" % op)
    delim, le = jobs.common_options(d)
    text = d.get("query")
    if not text:
        raise ApiError(400, "API_ERROR", "Query is required for a query job")
    try:
        soql = Soql(text, emu.schema)
        obj_name = soql.obj.name
    except SoqlError as e:
        if emu.config["query_errors_at"] != "job" or e.code == "MALFORMED_QUERY":
            raise ApiError(400, e.code, e.message)
        soql = e
        m = re.search(r"\bfrom\s+([A-Za-z0-9_]+)", text, re.I)
        obj_name = m.group(1) if m else ""
    with emu.lock:
        if emu.query_jobs_used >= emu.config["daily_query_jobs_limit"]:
            raise ApiError(400, "LIMIT_EXCEEDED", "ExceededQuota : Maximum number of Bulk API 2.0 query jobs "
                           "per rolling 24 hour period exceeded")
        if emu.query_storage_kb >= emu.config["daily_query_result_kb_limit"]:  # §9.1
            raise ApiError(400, "LIMIT_EXCEEDED", "Max bulk v2 query result size stored (%d) kb per 24 hrs has "
                           "been exceeded" % emu.config["daily_query_result_kb_limit"])
        emu.query_jobs_used += 1
        job = jobs.Job(jobs.new_job_id(emu), "query", op, obj_name, ver, delim, le)
        job.query = soql
        if not isinstance(soql, SoqlError):
            cols = [c[0] for c in soql.columns]
            job.query_columns = sorted(cols, key=str.lower) if float(ver) < 50 else cols
            if float(ver) < 50:
                order = sorted(range(len(cols)), key=lambda i: cols[i].lower())
                soql.columns = [soql.columns[i] for i in order]
        jobs.take_fail_spec(emu, job, "query")
        if emu.config["synthetic_query_rows"] and not isinstance(soql, SoqlError):
            job.synthetic_rows = int(emu.config["synthetic_query_rows"])
        emu.jobs[job.id] = job
        resp = req.json(job.create_shape())
        jobs.start_processing(emu, job, process_query)
        return resp


def results(req, m, job):
    """GET .../results (§9.3) and .../resultPages (§9.4): only for JobComplete jobs, with the job's API version."""
    emu, ver, sub = req.emu, req.ver, m.group("sub")
    if job.api_version != ver:
        raise ApiError(409, "API_ERROR", "The API version of the request (%s) does not match the API version "
                       "of the job (%s)" % (ver, job.api_version))
    if sub == "resultPages" and float(ver) < 58:
        raise ApiError(404, *NOT_FOUND)
    if job.state != "JobComplete":
        raise ApiError(400, "JOB_NOT_COMPLETE", "Job is not complete. Current state: %s" % job.state)
    q = req.params()
    page = emu.config["query_page_size"]
    if "maxRecords" in q:
        try:
            page = int(q["maxRecords"])
            if page <= 0:
                raise ValueError
        except ValueError:
            raise ApiError(400, "INVALIDPARAMETER", "Invalid value for maxRecords: %s" % q["maxRecords"])
    start = 0
    rows = job.result
    if q.get("locator"):
        start = decode_locator(q["locator"])
        if start is None or start > len(rows):
            raise ApiError(400, "INVALIDPARAMETER", "Invalid locator: %s" % q["locator"])
    if sub == "resultPages":
        # §9.4: each link and the continuation carry a locator (the first page's too); maxRecords only when the
        # caller asked for a page size; members in the reference's order
        base = "/services/data/v%s/jobs/query/%s/" % (ver, job.id)
        size = "&maxRecords=%d" % page if "maxRecords" in q else ""
        urls, pos = [], start
        per_call = max(1, int(emu.config["result_pages_per_call"]))
        while len(urls) < per_call and (pos < len(rows) or (not urls and not len(rows))):
            urls.append({"resultUrl": base + "results?locator=%s%s" % (encode_locator(pos), size)})
            pos += page
        done = pos >= len(rows)
        return req.json({"resultPages": urls,
                         "nextRecordsUrl": None if done else base + "resultPages?locator=%s%s" % (
                             encode_locator(pos), size),
                         "done": done})
    lines = rows.lines(start, start + page)
    nxt = start + page
    le = LINE_ENDINGS[job.line_ending]
    sep = '"' + DELIMITERS[job.delimiter] + '"'
    head = '"' + sep.join(c.replace('"', '""') for c in job.query_columns) + '"' + le
    body = head + ('"' + ('"' + le + '"').join(lines) + '"' + le if lines else "")
    return Response(200, body.encode("utf-8"), CSV_CT,
                    [("Sforce-Locator", encode_locator(nxt) if nxt < len(rows) else "null"),
                     ("Sforce-NumberOfRecords", str(len(lines)))])


def encode_locator(n):
    return base64.urlsafe_b64encode(str(n).encode()).decode().rstrip("=")


def decode_locator(s):
    try:
        return int(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)).decode())
    except (ValueError, UnicodeDecodeError):
        return None


def patch(req, m, job):
    d = jobs.job_request(req)
    if d.get("state") != "Aborted":
        raise ApiError(400, "INVALIDJOBSTATE", "InvalidJobState : Cannot change state from %s to %s"
                       % (job.state, d.get("state")))
    return jobs.patch_job(req, job, process_query)


ROUTES = jobs.job_routes("query", 47, create_query, patch, [
    (r"/(?P<sub>results|resultPages)/?", {"GET": results}),
])
