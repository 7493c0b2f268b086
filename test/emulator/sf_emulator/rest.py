"""REST core resources beside Bulk API 2.0: the version list, the resource root, limits, describe, record
reads and the REST /query, /queryAll and /tooling/query the Salesforce CLI uses at login (docs/bulk-api-2.md
§10-§12, docs/platform.md §8).

Route tables: UNVERSIONED (/services/data) and ROUTES (below /services/data/vNN.0)."""

import functools
import itertools
import json
import re
import urllib.parse
from decimal import Decimal

from . import common
from .common import ApiError, Response, Route, make_id, normalize_id, parse_http_date, raw_json
from .soql import QueryRunner, Soql, SoqlError
from .store import COMPOUND_KEYS, parse_datetime


def _release_label(v):
    k = v - 41
    return "%s '%02d" % (("Winter", "Spring", "Summer")[k % 3], 18 + k // 3)


def describe_body(schema, obj, ver):
    """docs/soql-and-rest.md §3.2: the describeGlobal entry plus fields, childRelationships, recordTypeInfos."""
    g = _global(obj, ver)
    g.update({"fields": [f.describe() for f in obj.fields.values()],
              "childRelationships": schema.child_relationships(obj), "recordTypeInfos": []})
    return g


def unless_modified(req, modified):
    """Conditional describes (docs/soql-and-rest.md §3.4): 304 without a body when the metadata is not newer than
    If-Modified-Since; 412 when it is newer than If-Unmodified-Since, which is evaluated first (RFC 9110 §13.2.2).
    None: answer normally; an unparsable date is ignored. modified is in whole seconds, like the dates."""
    since = parse_http_date(req.header("If-Unmodified-Since"))
    if since is not None and modified > since:
        raise ApiError(412, "PRECONDITION_FAILED", "The requested resource has been modified since %s"
                       % req.header("If-Unmodified-Since"))
    since = parse_http_date(req.header("If-Modified-Since"))
    if since is not None and modified <= since:
        return Response(304, b"")
    return None


APP_LABEL = "sf_bulk Emulator"  # the default org's connected app, as /limits nests per-app entries


def limits_body(emu, major):
    """GET /limits (docs/soql-and-rest.md §5.2, docs/bulk-api-2.md §10): {"Max", "Remaining"} per key, from the
    same counters the API enforces. With limits_per_app, DailyApiRequests and the batch key nest a per-app entry
    as soql-and-rest §5.2 records (an app without a limit of its own shows Max 0; off by default: bulk-api-2 §10
    shows plain {"Max", "Remaining"} members); the batch key is DailyBulkApiRequests up to 48.0; the Bulk 2.0
    query keys exist from 47.0."""
    c = emu.config

    def lim(mx, used, app=False):
        d = {"Max": mx, "Remaining": max(0, mx - used)}
        if app and c["limits_per_app"]:
            d[APP_LABEL] = {"Max": 0, "Remaining": 0}
        return d
    kb_max = c["daily_query_result_kb_limit"]
    out = {"ConcurrentAsyncGetReportInstances": lim(200, 0),
           "DailyApiRequests": lim(c["daily_api_limit"], emu.api_used, True),
           "DailyAsyncApexExecutions": lim(250000, 0),
           ("DailyBulkApiBatches" if major >= 49 else "DailyBulkApiRequests"):
               lim(c["daily_batches_limit"], emu.batches_used, True)}
    if major >= 47:
        out["DailyBulkV2QueryFileStorageMB"] = {"Max": kb_max // 1024,
                                                "Remaining": max(0, kb_max - emu.query_storage_kb) // 1024}
        out["DailyBulkV2QueryJobs"] = lim(c["daily_query_jobs_limit"], emu.query_jobs_used)
    out.update({"DataStorageMB": lim(1024, 0), "FileStorageMB": lim(1024, 0)})
    return out


# objects recordCount never reports (docs/soql-and-rest.md §5.1), standard (AccountHistory) or custom (X__Share)
_UNCOUNTED_RE = re.compile(r".*(?:ChangeEvent|Feed|History|Share)|OwnerSharingRule")


def record_count(req, m, _):
    """GET /limits/recordCount[?sObjects=A,B] (docs/soql-and-rest.md §5.1): {"sObjects": [{"count", "name"}]} by
    name, never in the request's order; unknown names (any case, blanks around them ignored), objects without
    records and ChangeEvent/Feed/History/Share/OwnerSharingRule objects are left out, as Salesforce omits them.
    Counts are live unless the admin API froze or set a snapshot (Salesforce's lags)."""
    emu = req.emu
    wanted = req.params().get("sObjects")
    with emu.lock:
        counts = emu.record_counts if emu.record_counts is not None else emu.store.live_counts()
        if wanted is None:
            names = list(emu.schema.objects)
        else:
            names = [o.name for o in map(emu.schema.get, (w.strip() for w in wanted.split(","))) if o is not None]
    return req.json({"sObjects": [{"count": counts[n], "name": n} for n in sorted(set(names))
                                  if counts.get(n) and not _UNCOUNTED_RE.fullmatch(n)]})


def record_json(obj, rec, ver, query=""):
    fields = None
    q = urllib.parse.parse_qs(query)
    if q.get("fields"):
        fields = [x.strip() for x in q["fields"][0].split(",")]
    out = {"attributes": {"type": obj.name, "url": "/services/data/v%s/sobjects/%s/%s" % (ver, obj.name,
                                                                                         rec["Id"])}}
    for f in obj.fields.values():
        if fields and f.name not in fields:
            continue
        out[f.name] = json_value(f, rec if f.compound else rec.get(f.name))
    return out


# ----------------------------------------------------------------------------------------------------------
# REST /query and /queryAll: a result snapshotted at the first request, served in pages through cursors
# (docs/soql-and-rest.md §1.1-§1.3)
# ----------------------------------------------------------------------------------------------------------
class _IdPath:
    """The Id at the end of a parent path, as QueryRunner.column takes paths (only name and compound are read)."""
    name, compound = "Id", False


class RestResult:
    """A REST query's whole result, taken when the statement is first asked: the id of every row and of every
    parent it reaches, and every selected column (canonical text; compound values already as their JSON
    objects), so later store writes do not change the pages of an open cursor (§1.3). Pages are rendered from
    these columns on request. A queryAll snapshot keeps its deleted rows, whatever path asks for a page."""

    def __init__(self, soql, runner, schema):
        recs = runner.records()
        self.n = len(recs)
        self.type = soql.obj.name
        self.ids = list(map(dict.get, recs, itertools.repeat("Id")))
        self.types = {p: o.name for p, o in schema.by_prefix.items()}  # a parent's type from its id (polymorphic)
        # layout: SELECT order; ("field", name, Field, values) or ("parent", relationship, ids, layout) where a
        # relationship appears first referenced and nests the fields read through it
        self.layout = []
        for header, chain, f in soql.columns:
            node = self.layout
            for k, rf in enumerate(chain):
                sub = next((it for it in node if it[0] == "parent" and it[1] == rf.relationship_name), None)
                if sub is None:
                    sub = ("parent", rf.relationship_name, runner.column(recs, (None, chain[:k + 1], _IdPath)), [])
                    node.append(sub)
                node = sub[3]
            vals = runner.column(recs, (header, chain, f))
            if f.compound:
                vals = [None if r is None else compound_json(f, r) for r in vals]
            node.append(("field", f.name, f, vals))

    def page(self, start, stop, ver):
        """Rows start..stop as REST records, built a column at a time (each column's values encoded with one
        map, each record filled from a zip), so a page costs little Python per value."""
        stop = min(stop, self.n)
        return self.records(self.layout, start, stop, self.ids[start:stop], self.type,
                            "/services/data/v%s/sobjects/" % ver)

    def records(self, layout, start, stop, ids, typ, base):
        """Records for the rows start..stop: attributes {type, url}, then the fields in SELECT order; a parent as a
        nested record of its actual type (typ None: by the id's key prefix), null when the row has none (§1.2,
        §1.4). ids: the rows' (or their parents') ids, None where there is no parent."""
        names, cols = [], []
        for kind, name, a, b in layout:
            names.append(name)
            if kind == "field":
                vals = b[start:stop]
                enc = None if a.compound else _ENCODERS.get(a.type)
                cols.append(vals if enc is None else [None if v is None else enc(v) for v in vals])
            else:
                cols.append(self.records(b, start, stop, a[start:stop], None, base))
        types = self.types
        out = []
        for rid, row in zip(ids, zip(*cols) if cols else itertools.repeat(())):
            if rid is None and typ is None:
                out.append(None)
                continue
            t = typ or types.get(rid[:3], "Name")
            rec = {"attributes": {"type": t, "url": base + t + "/" + rid}}
            rec.update(zip(names, row))
            out.append(rec)
        return out


class Cursor:
    __slots__ = ("locator", "result", "size", "created")

    def __init__(self, locator, result, size, created):
        self.locator, self.result, self.size, self.created = locator, result, size, created


def page_size(req, soql):
    """Rows per page (§1.1): Sforce-Query-Options: batchSize=N asks for N, clamped to the documented 200..2,000
    (rest_query_min_batch_size lowers the floor for tests), default rest_query_batch_size (2,000); with two or
    more long text areas selected a page holds at most 200 rows. The size chosen at the first request holds for
    every page of the cursor (whether Salesforce re-reads the header on later pages is unverified)."""
    c = req.emu.config
    size = int(c["rest_query_batch_size"])
    m = re.search(r"(?:^|[,;\s])batchSize\s*=\s*(\d+)", req.header("Sforce-Query-Options"), re.I)
    if m:
        size = max(int(c["rest_query_min_batch_size"]), min(2000, int(m.group(1))))
    if sum(1 for _, _, f in soql.columns if f.long_text) >= 2:
        size = min(size, 200)
    return max(1, size)


def answer_page(req, cursor_or_result, start, size):
    """One page in the recorded member order totalSize, done, nextRecordsUrl, records (§1.2): totalSize is the
    whole result; nextRecordsUrl (.../query/<locator>-<next row>, also for queryAll) only while rows remain."""
    result = cursor_or_result.result if isinstance(cursor_or_result, Cursor) else cursor_or_result
    stop = start + size
    body = {"totalSize": result.n, "done": stop >= result.n}
    if stop < result.n:
        body["nextRecordsUrl"] = "/services/data/v%s/query/%s-%d" % (req.ver, cursor_or_result.locator, stop)
    body["records"] = result.page(start, stop, req.ver)
    return req.json(body, raw=True)


def open_cursor(emu, result, size):
    """Keeps a result that has more than one page: a locator id with key prefix 01g (§1.3). At most
    max_query_cursors stay open, the oldest evicted first; expired ones go first (query_cursor_ttl_seconds,
    counted from the first request: two days, as since API 56.0). Locators are never reused, not even across
    a reset, so an old nextRecordsUrl answers INVALID_QUERY_LOCATOR."""
    with emu.lock:
        emu.cursor_counter += 1
        cur = Cursor(make_id("01g", emu.cursor_counter), result, size, common.now())
        purge_cursors(emu)
        emu.cursors[cur.locator] = cur
        while len(emu.cursors) > max(1, int(emu.config["max_query_cursors"])):
            emu.cursors.popitem(last=False)
    return cur


def purge_cursors(emu):
    ttl = emu.config["query_cursor_ttl_seconds"]
    if ttl is None:
        return
    limit = common.now() - float(ttl)
    while emu.cursors:
        first = next(iter(emu.cursors.values()))
        if first.created > limit:
            break
        emu.cursors.popitem(last=False)


INVALID_LOCATOR = ("INVALID_QUERY_LOCATOR", "invalid query locator")  # text unverified (§1.5)


def query_more(req, m, _):
    """GET /query/01g...-N (or /queryAll/...): the page from row N of an open cursor; an unknown, evicted or
    expired cursor, or a position outside its result, answers 400 INVALID_QUERY_LOCATOR (§1.3, §1.5)."""
    emu = req.emu
    mm = re.fullmatch(r"(01g[0-9A-Za-z]{15})-(\d{1,10})", m.group("cursor"))
    with emu.lock:
        purge_cursors(emu)
        cur = emu.cursors.get(mm.group(1)) if mm else None
    if cur is None or not 0 <= int(mm.group(2)) < cur.result.n:
        raise ApiError(400, *INVALID_LOCATOR)
    return answer_page(req, cur, int(mm.group(2)), cur.size)


def rest_query(req, all_rows):
    emu, query = req.emu, req.query
    try:
        q = urllib.parse.parse_qs(query, errors="strict").get("q")
    except UnicodeDecodeError:  # percent-encoded bytes that are not UTF-8: a bad encoding (soql-and-rest §1.5)
        raise ApiError(400, "MALFORMED_QUERY", "The query string is not valid UTF-8")
    if not q:
        raise ApiError(400, "MALFORMED_QUERY", "A query string has to be specified")
    try:
        soql = Soql(q[0], emu.schema, compound_select=True)
    except SoqlError as e:
        if e.code == "API_ERROR":
            pass
        else:
            raise ApiError(400, e.code, e.message)
        raise ApiError(400, "MALFORMED_QUERY", e.message)
    size = page_size(req, soql)
    with emu.lock:  # the snapshot: no write lands in the middle of it
        result = RestResult(soql, QueryRunner(soql, emu.store, all_rows, emu.config["soql_not_equal_keeps_nulls"]),
                            emu.schema)
    return answer_page(req, open_cursor(emu, result, size) if result.n > size else result, 0, size)


def java_double(x):
    """A double as Salesforce (Java's Double.toString) writes it (§1.4): at least one decimal ("543210.0"), and
    E notation from 10^7 on ("1.2345678E7") and below 10^-3, with the shortest digits that round-trip."""
    a = abs(x)
    if a == 0 or 1e-3 <= a < 1e7:
        return float.__repr__(x)  # Python's shortest repr is plain with ".0" in this range, as Java's
    d = Decimal(float.__repr__(x))
    digits = "".join(map(str, d.as_tuple().digits)).rstrip("0") or "0"
    return ("-" if x < 0 else "") + digits[0] + "." + (digits[1:] or "0") + "E" + str(d.adjusted())


_TIME_RE = re.compile(r"(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?Z?")


def _time(v):
    """A time as HH:mm:ss.SSSZ (§1.4), whatever precision it was stored with."""
    m = _TIME_RE.fullmatch(v)
    if not m:
        return v
    return "%s:%s:%s.%sZ" % (m.group(1), m.group(2), m.group(3) or "00", (m.group(4) or "").ljust(3, "0"))


def json_value(f, v):
    """A stored value as REST JSON (docs/soql-and-rest.md §1.4); for a compound field v is the record holding its
    components. Numbers of double/currency/percent fields are raw_json in Java's spelling; date-times UTC with
    milliseconds and +0000; times HH:mm:ss.SSSZ; a multi-select picklist one ';'-joined string as stored."""
    if v is None:
        return None
    if f.compound:
        return compound_json(f, v)
    enc = _ENCODERS.get(f.type)
    return v if enc is None else enc(v)


# per type: stored text -> REST JSON value (types absent here are sent as they are stored)
_ENCODERS = {"boolean": "true".__eq__, "int": int,
             "double": functools.lru_cache(maxsize=1 << 16)(lambda v: raw_json(java_double(float(v)))),
             "datetime": lambda v: v[:-1] + "+0000" if v.endswith("Z") else v,
             "time": _time}
_ENCODERS["currency"] = _ENCODERS["percent"] = _ENCODERS["double"]


def compound_json(f, rec):
    """An address: an object of all its members, alphabetical, null when every part is null (§1.4); a location
    likewise {latitude, longitude} (its null shape is unverified)."""
    d = dict.fromkeys(COMPOUND_KEYS[f.type])
    for key, c in f.parts:
        d[key] = json_value(c, rec.get(c.name))
    return d if any(v is not None for v in d.values()) else None


def versions(req, m, _):
    return req.json([{"label": _release_label(v), "url": "/services/data/v%d.0" % v, "version": "%d.0" % v}
                     for v in range(41, req.emu.config["max_api_version"] + 1)])


def resources(req, m, _):
    return req.json({k: "/services/data/v%s/%s" % (req.ver, k) for k in
                     ("limits", "sobjects", "query", "queryAll", "jobs")})


def limits(req, m, _):
    with req.emu.lock:
        return req.json(limits_body(req.emu, req.major))


def _global(obj, ver):
    return json.loads(json.dumps(obj.describe_global()).replace("{v}", ver))


def sobjects(req, m, _):
    unchanged = unless_modified(req, req.emu.schema.modified())
    if unchanged:
        return unchanged
    return req.json({"encoding": "UTF-8", "maxBatchSize": 200,
                     "sobjects": [_global(o, req.ver) for o in req.emu.schema.objects.values()]})


def sobject_lookup(req, m):
    obj = req.emu.schema.get(m.group("obj"))
    if not obj:
        raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
    return obj


def sobject(req, m, obj):
    return req.json({"objectDescribe": _global(obj, req.ver), "recentItems": []})


def describe(req, m, obj):
    unchanged = unless_modified(req, obj.modified)
    if unchanged:
        return unchanged
    with req.emu.lock:
        return req.json(describe_body(req.emu.schema, obj, req.ver))


def record(req, m, obj):
    emu = req.emu
    rid = normalize_id(m.group("rid"))
    with emu.lock:
        rec = emu.store.records[obj.name].get(rid) if rid else None
        rec = dict(rec) if rec and rec.get("IsDeleted") != "true" else None
    if not rec:
        raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
    return req.json(record_json(obj, rec, req.ver, req.query), raw=True)


# ----------------------------------------------------------------------------------------------------------
# Change tracking: /sobjects/{Object}/updated/ and /deleted/ (docs/soql-and-rest.md §4.3)
# ----------------------------------------------------------------------------------------------------------
def stamp_field(obj):
    """The date an object's changes are tracked by: SystemModstamp, else LastModifiedDate (§4.3 "Date used")."""
    return next((n for n in ("SystemModstamp", "LastModifiedDate") if n in obj.fields), None)


def _minute(t):
    return (t // 60) * 60


def replication_window(req, obj, reach_days, t):
    """(start, end, latestDateCovered) in epoch seconds for a /updated/ or /deleted/ call at time t, or the error
    Salesforce answers (§4.3): a non-replicable object first (the logged text; its errorCode is unverified, so
    configurable); start and end ISO 8601 with their seconds dropped; end at least one minute after start (the
    logged, inverted text); not before the org's replication enabled date (logged text); not beyond the reach of
    reach_days (30 for /updated/, the recycle bin's 15 for /deleted/; that text is unverified).
    latestDateCovered is end, or the current minute when end lies ahead (less replication_settle_seconds: commits
    still in flight), so the next window can start there."""
    c = req.emu.config
    if not obj.global_flags.get("replicateable") or stamp_field(obj) is None:
        raise ApiError(400, c["not_replicable_error_code"], "sObject type %s is not replicable" % obj.name)
    p = req.params()
    bounds = []
    for name in ("start", "end"):
        v = p.get(name)
        if not v:
            raise ApiError(400, "MISSING_ARGUMENT", "The '%s' parameter is required" % name)
        text = parse_datetime(v)
        if text is None:
            raise ApiError(400, "MALFORMED_QUERY", "'%s' is not a valid value for the type xsd:dateTime of "
                           "parameter %s (ISO 8601, e.g. 2025-11-01T00:00:00+00:00, URL-encoded)" % (v, name))
        bounds.append(_minute(common.ts_epoch(text)))
    start, end = bounds
    if end - start < 60:
        raise ApiError(400, "INVALID_REPLICATION_DATE", "startDate must be at least one minute greater than endDate")
    enabled = c["replication_enabled_date"]
    if enabled is not None and start < common.ts_epoch(parse_datetime(enabled)):
        raise ApiError(400, "INVALID_REPLICATION_DATE", "startDate before org replication enabled date")
    if start < _minute(t) - float(reach_days) * 86400:
        raise ApiError(400, "INVALID_REPLICATION_DATE", "startDate cannot be more than %g days before the current "
                       "date" % float(reach_days))
    return start, end, min(end, _minute(t - float(c["replication_settle_seconds"] or 0)))


def _id_cap(req, n):
    cap = int(req.emu.config["replication_id_limit"])
    if n > cap:
        raise ApiError(400, "EXCEEDED_ID_LIMIT", "The number of ids (%d) exceeds the limit of %d; choose start and "
                       "end dates closer together" % (n, cap))


def updated(req, m, obj):
    """GET /sobjects/{Object}/updated/?start=&end= (§4.3): {"ids": [...], "latestDateCovered"}: the live records
    whose SystemModstamp lies in [start, end) (both on whole minutes, so consecutive windows neither overlap nor
    leave gaps), ordered by that stamp and id; rows in the recycle bin are /deleted/'s. Inserts, user and system
    updates, undeletes, merges all move it; formula changes do not (§4.5)."""
    emu = req.emu
    with emu.lock:
        start, end, latest = replication_window(req, obj, emu.config["updated_reach_days"], common.now())
        recs = list(emu.store.records[obj.name].values())
    field = stamp_field(obj)
    lo, hi = common.record_ts(start), common.record_ts(end)
    hits = sorted((st, r["Id"]) for r, st in zip(recs, map(dict.get, recs, itertools.repeat(field)))
                  if st is not None and lo <= st < hi and r.get("IsDeleted") != "true")
    _id_cap(req, len(hits))
    return req.json({"ids": [rid for _, rid in hits], "latestDateCovered": common.rest_ts(latest)})


def deleted(req, m, obj):
    """GET /sobjects/{Object}/deleted/?start=&end= (§4.3): {"deletedRecords": [{"id", "deletedDate"}],
    "earliestDateAvailable", "latestDateCovered"}: the deletion log's entries (rows in the recycle bin, merge losers,
    hard-deleted rows not yet purged) whose deletedDate lies in [start, end), oldest first. The reach is the bin's
    (recycle_bin_days); earliestDateAvailable is where the log is complete from (§4.2: the bin's reach, the latest
    purge, the replication enabled date): later than a client's last start means it lost deletions. With
    deleted_before_earliest_fails a start before it is refused instead (the SOAP guide's wording allows that
    reading)."""
    emu = req.emu
    c = emu.config
    with emu.lock:
        t = common.now()
        emu.store.expire_bin([obj.name], t)
        start, end, latest = replication_window(req, obj, c["recycle_bin_days"], t)
        enabled = c["replication_enabled_date"]
        earliest = emu.store.earliest_available(obj.name, t, enabled and common.ts_epoch(parse_datetime(enabled)))
        if c["deleted_before_earliest_fails"] and start < earliest:
            raise ApiError(400, "INVALID_REPLICATION_DATE", "startDate before earliestDateAvailable")
        hits = sorted((e, rid, ts) for rid, (e, ts) in emu.store.deleted_log[obj.name].items() if start <= e < end)
    _id_cap(req, len(hits))
    return req.json({"deletedRecords": [{"id": rid, "deletedDate": ts[:-1] + "+0000"} for _, rid, ts in hits],
                     "earliestDateAvailable": common.rest_ts(earliest), "latestDateCovered": common.rest_ts(latest)})


def query(req, m, _):
    return rest_query(req, False)


def query_all(req, m, _):
    return rest_query(req, True)


def tooling_query(req, m, _):
    """The CLI's login probes SandboxProcess here; a production org has none."""
    q = req.params().get("q") or ""
    mm = re.search(r"\bfrom\s+([A-Za-z0-9_]+)", q, re.I)
    ent = mm.group(1) if mm else ""
    if req.emu.schema.get(ent):
        return rest_query(req, False)
    return req.json({"size": 0, "totalSize": 0, "done": True, "queryLocator": None, "entityTypeName": ent,
                     "records": []})


UNVERSIONED = [Route(r"/services/data/?", {"GET": versions})]
_OBJ = r"/sobjects/(?P<obj>[A-Za-z0-9_]+)"
ROUTES = [
    Route(r"/?", {"GET": resources}),
    Route(r"/limits", {"GET": limits}, min_version=29),
    Route(r"/limits/recordCount", {"GET": record_count}, min_version=40),
    Route(r"/sobjects", {"GET": sobjects}),
    Route(_OBJ, {"GET": sobject}, sobject_lookup),
    Route(_OBJ + r"/describe", {"GET": describe}, sobject_lookup),
    Route(_OBJ + r"/updated/?", {"GET": updated}, sobject_lookup, min_version=29),
    Route(_OBJ + r"/deleted/?", {"GET": deleted}, sobject_lookup, min_version=29),
    Route(_OBJ + r"/(?P<rid>[0-9A-Za-z]{15}|[0-9A-Za-z]{18})", {"GET": record}, sobject_lookup),
    Route(r"/query", {"GET": query}),
    Route(r"/queryAll", {"GET": query_all}),
    Route(r"/query(?:All)?/(?P<cursor>[^/]+)", {"GET": query_more}),
    Route(r"/tooling/query", {"GET": tooling_query}),
]
