"""REST core resources beside Bulk API 2.0: the version list, the resource root, limits, describe, record
reads and the REST /query, /queryAll and /tooling/query the Salesforce CLI uses at login (docs/bulk-api-2.md
§10-§12, docs/platform.md §8).

Route tables: UNVERSIONED (/services/data) and ROUTES (below /services/data/vNN.0)."""

import json
import re
import urllib.parse

from .common import ApiError, Response, Route, normalize_id, parse_http_date
from .soql import QueryRunner, Soql, SoqlError
from .store import COMPOUND_KEYS


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


def record_count(req, m, _):
    """GET /limits/recordCount[?sObjects=A,B] (docs/soql-and-rest.md §5.1): {"sObjects": [{"count", "name"}]} by
    name, never in the request's order; unknown names and objects without records are left out, as Salesforce
    omits them. Counts are live unless the admin API froze or set a snapshot (Salesforce's lags)."""
    emu = req.emu
    wanted = req.params().get("sObjects")
    with emu.lock:
        counts = emu.record_counts if emu.record_counts is not None else emu.store.live_counts()
        if wanted is None:
            names = list(emu.schema.objects)
        else:
            names = [o.name for o in map(emu.schema.get, wanted.split(",")) if o is not None]
    return req.json({"sObjects": [{"count": counts[n], "name": n} for n in sorted(set(names))
                                  if counts.get(n)]})


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
    with emu.lock:
        rows = QueryRunner(soql, emu.store, all_rows, emu.config["soql_not_equal_keeps_nulls"]).run()
    records = []
    for r in rows:
        rec = {"attributes": {"type": soql.obj.name}}
        for (hdr, chain, f), v in zip(soql.columns, r):
            if chain:
                cur = rec
                for rf in chain:
                    cur = cur.setdefault(rf.relationship_name, {"attributes": {"type": rf.reference_to[0]}})
                cur[f.name] = json_value(f, v)
            else:
                rec[f.name] = json_value(f, v)
        records.append(rec)
    return req.json({"totalSize": len(records), "done": True, "records": records})


def json_value(f, v):
    """A stored value as REST JSON (docs/soql-and-rest.md §1.4); for a compound field v is the record holding its
    components."""
    if v is None:
        return None
    if f.compound:
        return compound_json(f, v)
    if f.type == "boolean":
        return v == "true"
    if f.type == "int":
        return int(v)
    if f.type in ("double", "currency", "percent"):
        return float(v)
    if f.type == "datetime":
        return v[:-1] + "+0000" if v.endswith("Z") else v
    return v


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
    return req.json(record_json(obj, rec, req.ver, req.query))


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
    Route(_OBJ + r"/(?P<rid>[0-9A-Za-z]{15}|[0-9A-Za-z]{18})", {"GET": record}, sobject_lookup),
    Route(r"/query", {"GET": query}),
    Route(r"/queryAll", {"GET": query_all}),
    Route(r"/tooling/query", {"GET": tooling_query}),
]
