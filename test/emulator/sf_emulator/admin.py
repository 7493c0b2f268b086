"""The admin API under /__emulator/ (README "Admin API"): JSON, no auth, never counted, never faulted.

Route table ROUTES: paths below /__emulator."""

import base64
import json
import os
import re

from . import auth, common, jobs, store
from .common import ApiError, Route
from .state import DEFAULT_CONFIG


def jbody(req):
    if not req.body:
        return {}
    try:
        return json.loads(req.body.decode("utf-8"))
    except ValueError:
        raise ApiError(400, "JSON_PARSER_ERROR", "admin: body is not JSON")


def reset(req, m, _):
    req.emu.reset()
    return req.json({"ok": True})


def health(req, m, _):
    return req.json({"ok": True, "base_url": req.emu.base_url})


def requests_log(req, m, _):
    emu, q = req.emu, req.params()
    since = int(q.get("since", 0))
    incl_admin = q.get("admin") in ("1", "true")
    with emu.log_lock:
        entries = [e for e in emu.log if e.get("seq", 0) > since and (incl_admin or not e["admin"])]
        last = emu.log_seq
    return req.json({"last_seq": last, "requests": entries})


def clear_requests(req, m, _):
    with req.emu.log_lock:
        req.emu.log = []
    return req.json({"ok": True})


def _object(req, m):
    obj = req.emu.schema.get(m.group("obj"))
    if not obj:
        raise ApiError(404, "NOT_FOUND", "Unknown object %s" % m.group("obj"))
    return obj


def records(req, m, _):
    emu, obj = req.emu, _object(req, m)
    with emu.lock:
        recs = []
        for r in emu.store.records[obj.name].values():
            d = dict(r)
            d["deleted"] = r.get("IsDeleted") == "true"
            recs.append(d)
    return req.json({"object": obj.name, "totalSize": len(recs), "records": recs})


def seed_value(v):
    """JSON value -> the store's canonical text: null stays null, booleans true/false, numbers as written. An empty
    string is null: Salesforce keeps no empty strings (docs/soql-and-rest.md §1.2, trap 23)."""
    if v is None or v == "":
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def generate_spec(spec):
    """{"count": N, "values": {"Name": "Account {n}", "Industry": {"cycle": ["Banking", null]}, ...}, "start": 1}
    -> (fixed values, [(field, prefix, suffix)], [(field, values)], start, count); {n} stands for start,
    start+1, ... (its first occurrence in a value); a cycle gives record k (from 0) its values[k % len], so
    millions of records can carry mixed values and nulls without a JSON list of millions."""
    if not isinstance(spec, dict):
        raise ApiError(400, "INVALID_SEED", "generate must be an object")
    count, start = int(spec.get("count", 0)), int(spec.get("start", 1))
    fixed, numbered, cycled = {}, [], []
    for k, v in (spec.get("values") or {}).items():
        if isinstance(v, dict):
            values = v.get("cycle")
            if set(v) != {"cycle"} or not isinstance(values, list) or not values:
                raise ApiError(400, "INVALID_SEED", "%s: a generated value is a value or {\"cycle\": [values]}" % k)
            cycled.append((k, [seed_value(x) for x in values]))
            continue
        v = seed_value(v)
        if v is not None and "{n}" in v:
            pre, _, post = v.partition("{n}")
            numbered.append((k, pre, post))
        else:
            fixed[k] = v
    return fixed, numbered, cycled, start, count


def seed_records(req, m, _):
    """POST /__emulator/records/{object}: a list of records, {"records": [...]}, or {"generate": {...}}."""
    emu, obj = req.emu, _object(req, m)
    data = jbody(req)
    if isinstance(data, dict) and "generate" in data:
        fixed, numbered, cycled, start, count = generate_spec(data["generate"])
        unknown = [k for k in list(fixed) + [k for k, _, _ in numbered] + [k for k, _ in cycled]
                   if k not in obj.fields]
        if unknown:
            raise ApiError(400, "INVALID_FIELD", "unknown fields on %s: %s" % (obj.name, ", ".join(unknown)))
        with emu.lock:
            n, first, last = emu.store.insert_generated(obj, fixed, numbered, start, count, cycled=cycled)
        return req.json({"count": n, "first_id": first, "last_id": last})
    items = ({k: seed_value(v) for k, v in it.items()}
             for it in (data if isinstance(data, list) else data.get("records", [])))
    with emu.lock:
        ids = emu.store.insert_many(obj, items)
    return req.json({"ids": ids})


def list_faults(req, m, _):
    return req.json({"faults": req.emu.faults.list()})


def add_faults(req, m, _):
    data = jbody(req)
    try:
        added = [req.emu.faults.add(s) for s in (data if isinstance(data, list) else [data])]
    except (ValueError, re.error) as e:
        raise ApiError(400, "INVALID_FAULT", str(e))
    return req.json({"faults": added})


def clear_faults(req, m, _):
    req.emu.faults.clear()
    return req.json({"ok": True})


def expire_tokens(req, m, _):
    emu, data = req.emu, jbody(req)
    if data.get("after_calls"):
        with emu.lock:
            emu.calls_until_expiry = int(data["after_calls"])
        return req.json({"expire_after_calls": emu.calls_until_expiry})
    n = auth.expire_tokens(emu, data.get("access_token"), data.get("refresh_token"))
    return req.json({"expired": n})


def issue_token(req, m, _):
    emu, data = req.emu, jbody(req)
    u = emu.org["user"]["username"]
    ttl = data.get("ttl_seconds")
    tok = auth.new_token(emu, u, emu.org["client_id"])
    with emu.lock:
        if ttl is not None:
            emu.tokens[tok]["expires"] = common.now() + float(ttl) if ttl else None
        rt = "5Aep" + base64.urlsafe_b64encode(os.urandom(36)).decode().rstrip("=").replace("-", ".")
        emu.refresh_tokens[rt] = {"username": u, "client_id": emu.org["client_id"], "revoked": False}
    return req.json({"access_token": tok, "refresh_token": rt, "instance_url": emu.base_url})


def get_config(req, m, _):
    return req.json(req.emu.config)


def set_config(req, m, _):
    emu, data = req.emu, jbody(req)
    bad = [k for k in data if k not in DEFAULT_CONFIG]
    if bad:
        raise ApiError(400, "INVALID_CONFIG", "unknown config keys: %s" % ", ".join(bad))
    with emu.lock:
        emu.config.update(data)
        if "tokens_expire_after_calls" in data:
            emu.calls_until_expiry = data["tokens_expire_after_calls"]
        if "daily_api_limit" in data and data.get("reset_usage"):
            emu.api_used = 0
    return req.json(emu.config)


def usage(req, m, _):
    emu, data = req.emu, jbody(req)
    with emu.lock:
        for k, attr in (("api", "api_used"), ("records", "records_used"), ("batches", "batches_used"),
                        ("query_jobs", "query_jobs_used"), ("query_storage_kb", "query_storage_kb")):
            if k in data:
                setattr(emu, attr, int(data[k]))
        if "query_storage_mb" in data:
            emu.query_storage_kb = int(data["query_storage_mb"]) * 1024
        return req.json(usage_body(emu))


def usage_body(emu):
    return {"api": emu.api_used, "records": emu.records_used, "batches": emu.batches_used,
            "query_jobs": emu.query_jobs_used, "query_storage_kb": emu.query_storage_kb,
            "query_storage_mb": emu.query_storage_kb // 1024}


def record_count_snapshot(req, m, _):
    """POST /__emulator/recordcount: what /limits/recordCount serves. {"snapshot": true} freezes the live counts
    (later writes do not show: the lag of Salesforce's cached snapshot), {"counts": {"Account": N}} sets counts on
    top of the frozen ones (planner estimates without seeding millions), {"snapshot": false} goes back to live
    counts. GET shows the state: {"live": bool, "counts": {object: N}}."""
    emu, data = req.emu, jbody(req) if req.method == "POST" else {}
    with emu.lock:
        given = {}
        for name, n in (data.get("counts") or {}).items():
            obj = emu.schema.get(name)
            if obj is None:
                raise ApiError(404, "NOT_FOUND", "Unknown object %s" % name)
            if not isinstance(n, int) or isinstance(n, bool) or n < 0:
                raise ApiError(400, "INVALID_COUNT", "count of %s must be a whole number >= 0" % name)
            given[obj.name] = n
        if data.get("snapshot") is False:
            emu.record_counts = None
        elif data.get("snapshot") or given:
            keep = emu.record_counts is not None and not data.get("snapshot")
            emu.record_counts = dict(emu.record_counts if keep else emu.store.live_counts(), **given)
        live = emu.record_counts is None
        return req.json({"live": live, "counts": emu.store.live_counts() if live else dict(emu.record_counts)})


def clock(req, m, _):
    offset = common.advance_clock(float(jbody(req).get("advance_seconds", 0)))
    return req.json({"offset_seconds": offset, "now": common.record_ts(common.now())})


def all_jobs(req, m, _):
    emu = req.emu
    with emu.lock:
        jobs.purge_old_jobs(emu)
        out = []
        for j in emu.jobs.values():
            d = j.info_shape()
            d["kind"] = j.kind
            d["uploadCount"] = j.upload_count
            d["uploadBytes"] = len(j.content) if j.content is not None else 0
            # On the request log's clock, in ms: with totalProcessingTime, when the job was being processed
            # (a benchmark splits a client's wall time into the server's and its own); the public shapes
            # carry whole seconds only, as Salesforce's do.
            d["processingStartedEpochMs"] = int(j.started_epoch * 1000) if j.started_epoch else None
            out.append(d)
    return req.json({"jobs": out})


def stamp(t):
    """A describe time stamp in the admin answers: ISO, and as the HTTP date that a client's If-Modified-Since
    must reach for a 304."""
    return {"modified": common.log_ts(t), "modified_http_date": common.http_date(t)}


def schema_body(emu):
    """GET /__emulator/schema: describeGlobal's time stamp, every object's field names and describe time stamp."""
    out = stamp(emu.schema.modified())
    out["objects"] = {o.name: dict(stamp(o.modified), fields=list(o.fields)) for o in emu.schema.objects.values()}
    return out


_FIELD_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_SYSTEM_FIELD_NAMES = {f["name"].lower() for f in store.SYSTEM_FIELDS}


def put_field(req, m, _):
    """POST /__emulator/schema/{object}/fields with a field in metadata.json's format: adds the field, or replaces
    the field of that name (a retype, see Store.put_field), so tests can play an org whose schema changes between
    calls (docs/soql-and-rest.md §6 "Describe"). The object's describe time stamp moves, and that of every object
    a reference field (old or new) points at, whose childRelationships change."""
    emu, obj = req.emu, _object(req, m)
    d = jbody(req)
    name = d.get("name") if isinstance(d, dict) else None
    if not isinstance(name, str) or not _FIELD_NAME_RE.fullmatch(name):
        raise ApiError(400, "INVALID_FIELD", "a field needs a name of letters, digits and _")
    if name.lower() in _SYSTEM_FIELD_NAMES:
        raise ApiError(400, "INVALID_FIELD", "%s is a system field" % name)
    typ = d.get("type", "string")
    if typ not in store.FIELD_TYPES or typ == "id":
        raise ApiError(400, "INVALID_FIELD", "unknown field type %s" % typ)
    refs = d.get("referenceTo") or []
    if typ == "reference" and (not refs or any(emu.schema.get(r) is None for r in refs)):
        raise ApiError(400, "INVALID_FIELD", "referenceTo must name objects of the schema")
    try:
        f = store.Field(d)
    except (TypeError, ValueError) as e:
        raise ApiError(400, "INVALID_FIELD", "bad field definition: %s" % e)
    with emu.lock:
        old = obj.fields_lower.get(name.lower())
        created = emu.store.put_field(obj, f)
        emu.schema.touch(touched_by(emu.schema, obj, [old, f]))
        return req.json(dict({"object": obj.name, "created": created, "field": f.describe()}, **stamp(obj.modified)))


def drop_field(req, m, _):
    """DELETE /__emulator/schema/{object}/fields/{field}: the field and its values are gone from describe, SOQL,
    ingest and results."""
    emu, obj = req.emu, _object(req, m)
    with emu.lock:
        f = obj.fields_lower.get(m.group("field").lower())
        if f is None:
            raise ApiError(404, "NOT_FOUND", "Unknown field %s.%s" % (obj.name, m.group("field")))
        if f.name.lower() in _SYSTEM_FIELD_NAMES:
            raise ApiError(400, "INVALID_FIELD", "%s is a system field" % f.name)
        emu.store.drop_field(obj, f)
        emu.schema.touch(touched_by(emu.schema, obj, [f]))
        return req.json(dict({"object": obj.name, "dropped": f.name}, **stamp(obj.modified)))


def touched_by(schema, obj, fields):
    """obj and the objects that fields (None skipped) reference: their describes change with obj's fields."""
    out = {obj.name: obj}
    for f in fields:
        if f is not None and f.type == "reference":
            out.update((o.name, o) for o in map(schema.get, f.reference_to) if o is not None)
    return out.values()


def save(req, m, _):
    req.emu.persist()
    return req.json({"ok": True})


_ANY = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
ROUTES = [
    Route(r"/reset", {"POST": reset}),
    Route(r"/health", {m: health for m in _ANY}),
    Route(r"/requests", {"GET": requests_log, "DELETE": clear_requests}),
    Route(r"/records/(?P<obj>[A-Za-z0-9_]+)", {"GET": records, "POST": seed_records}),
    Route(r"/faults", {"GET": list_faults, "POST": add_faults, "DELETE": clear_faults}),
    Route(r"/tokens/expire", {"POST": expire_tokens}),
    Route(r"/tokens", {"POST": issue_token}),
    Route(r"/config", {"GET": get_config, "POST": set_config, "PUT": get_config, "PATCH": get_config,
                       "DELETE": get_config, "HEAD": get_config, "OPTIONS": get_config}),
    Route(r"/usage", {"GET": lambda req, m, _: req.json(usage_body(req.emu)), "POST": usage}),
    Route(r"/clock", {"POST": clock}),
    Route(r"/recordcount", {"GET": record_count_snapshot, "POST": record_count_snapshot}),
    Route(r"/jobs", {"GET": all_jobs}),
    Route(r"/save", {"POST": save}),
    Route(r"/schema", {"GET": lambda req, m, _: req.json(schema_body(req.emu))}),
    Route(r"/schema/(?P<obj>[A-Za-z0-9_]+)/fields", {"POST": put_field}),
    Route(r"/schema/(?P<obj>[A-Za-z0-9_]+)/fields/(?P<field>[A-Za-z0-9_]+)", {"DELETE": drop_field}),
]


def handle(req):
    """Admin answers keep the errorCode-first order; an unknown resource or method is a 404."""
    req.subsystem = "admin"
    sub = req.path[len("/__emulator"):].rstrip("/")
    for r in ROUTES:
        m = r.regex.fullmatch(sub)
        if m is not None and req.method in r.methods:
            return r.methods[req.method](req, m, None)
    raise ApiError(404, "NOT_FOUND", "Unknown admin resource")
