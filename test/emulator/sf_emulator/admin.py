"""The admin API under /__emulator/ (README "Admin API"): JSON, no auth, never counted, never faulted.

Route table ROUTES: paths below /__emulator."""

import base64
import json
import os
import re

from . import auth, common, jobs, store
from .common import ApiError, Route, normalize_id
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
        emu.store.expire_bin([obj.name])
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


_AUDIT_FIELDS = ("CreatedDate", "LastModifiedDate", "SystemModstamp")


def audit_stamps(values):
    """values with CreatedDate, LastModifiedDate, SystemModstamp in the store's canonical form (a seed may give
    them, back-dated as "Set Audit Fields upon Record Creation" allows, docs/soql-and-rest.md §4.1); one left out
    or null takes the emulator clock's stamp."""
    for k in _AUDIT_FIELDS:
        if k in values:
            if values[k] is None:
                del values[k]
            else:
                values[k] = canonical_datetime(values[k], k)
    return values


def canonical_datetime(v, what):
    text = store.parse_datetime(v) if isinstance(v, str) else None
    if text is None:
        raise ApiError(400, "INVALID_DATE", "%s: not an ISO 8601 date-time: %r" % (what, v))
    return text


def seed_records(req, m, _):
    """POST /__emulator/records/{object}: a list of records, {"records": [...]}, or {"generate": {...}}. Records
    are stamped from the emulator clock (less a clock skew) unless they give their own stamps."""
    emu, obj = req.emu, _object(req, m)
    data = jbody(req)
    if isinstance(data, dict) and "generate" in data:
        fixed, numbered, cycled, start, count = generate_spec(data["generate"])
        unknown = [k for k in list(fixed) + [k for k, _, _ in numbered] + [k for k, _ in cycled]
                   if k not in obj.fields]
        if unknown:
            raise ApiError(400, "INVALID_FIELD", "unknown fields on %s: %s" % (obj.name, ", ".join(unknown)))
        fixed = audit_stamps(fixed)
        cycled = [(k, [None if v is None else canonical_datetime(v, k) for v in values] if k in _AUDIT_FIELDS
                   else values) for k, values in cycled]
        with emu.lock:
            ts = common.write_ts(common.take_skew())
            n, first, last = emu.store.insert_generated(obj, fixed, numbered, start, count, ts, cycled=cycled)
        return req.json({"count": n, "first_id": first, "last_id": last})
    items = [audit_stamps({k: seed_value(v) for k, v in it.items()})
             for it in (data if isinstance(data, list) else data.get("records", []))]
    with emu.lock:
        ids = emu.store.insert_many(obj, items, common.write_ts(common.take_skew()))
    return req.json({"ids": ids})


# -- writes after seeding: updates, deletes, undelete, merge, formula values (docs/soql-and-rest.md §4, §6) ------
_SYSTEM_WRITE_FIELDS = {f["name"] for f in store.SYSTEM_FIELDS} | {"MasterRecordId"}


def _record(emu, obj, rid, live=None):
    """The stored record of rid (15 or 18 characters); 404 when the store has none; live True: 400
    ENTITY_IS_DELETED for a row in the recycle bin."""
    nid = normalize_id(rid) if isinstance(rid, str) else None
    rec = emu.store.records[obj.name].get(nid) if nid else None
    if rec is None:
        raise ApiError(404, "NOT_FOUND", "no %s record %s" % (obj.name, rid))
    if live and rec.get("IsDeleted") == "true":
        raise ApiError(400, "ENTITY_IS_DELETED", "entity is deleted: %s" % rec["Id"])
    return rec


def _values(obj, d, what="records"):
    """A write's field values in canonical text: known, non-system fields only."""
    if not isinstance(d, dict):
        raise ApiError(400, "INVALID_FIELD", "%s: each entry is an object of field values" % what)
    out = {}
    for k, v in d.items():
        f = obj.fields_lower.get(k.lower())
        if f is None:
            raise ApiError(400, "INVALID_FIELD", "unknown field %s.%s" % (obj.name, k))
        if f.name in _SYSTEM_WRITE_FIELDS:
            raise ApiError(400, "INVALID_FIELD", "%s is a system field; the emulator stamps it" % f.name)
        out[f.name] = seed_value(v)
    return out


def _check_unique(emu, obj, rec, values):
    after = dict(rec)
    store.apply_values(after, values)
    clash = emu.store.unique_conflict(obj, after)
    if clash:
        raise ApiError(400, "DUPLICATE_VALUE", "duplicate value found: %s duplicates value on record with id: %s"
                       % clash)


def _ids(data):
    ids = data.get("ids") if isinstance(data, dict) else None
    if not isinstance(ids, list) or not ids:
        raise ApiError(400, "MISSING_ARGUMENT", "give the records as {\"ids\": [...]}")
    return ids


def update_records(req, m, _):
    """PATCH /__emulator/records/{object} {"records": [{"Id": ..., field: value, ...}], "system": false}: writes
    values into live records, all or none. A user's write (default) moves LastModifiedDate and SystemModstamp; with
    "system": true it is an automated one (workflow, roll-up, a system job) that moves only SystemModstamp, with or
    without field values (docs/soql-and-rest.md §4.1, §6 "Change tracking", trap 14)."""
    emu, obj, data = req.emu, _object(req, m), jbody(req)
    items = data.get("records") if isinstance(data, dict) else data
    if not isinstance(items, list) or not items:
        raise ApiError(400, "MISSING_ARGUMENT", "give the records as {\"records\": [{\"Id\": ..., ...}]}")
    user = not (isinstance(data, dict) and data.get("system"))
    with emu.lock:
        plan = []
        for it in items:
            if not isinstance(it, dict) or "Id" not in it:
                raise ApiError(400, "MISSING_ARGUMENT", "each record needs its Id")
            rec = _record(emu, obj, it["Id"], live=True)
            values = _values(obj, {k: v for k, v in it.items() if k != "Id"})
            _check_unique(emu, obj, rec, values)
            plan.append((rec, values))
        ts = common.write_ts(common.take_skew())
        for rec, values in plan:
            emu.store.update(obj, rec, values, ts, user)
        return req.json({"ids": [rec["Id"] for rec, _ in plan], "SystemModstamp": ts,
                         "LastModifiedDate": ts if user else None})


def delete_records(req, m, _):
    """POST /__emulator/records/{object}/delete {"ids": [...], "hard": false}: a user's delete into the recycle
    bin (IsDeleted, deletion log), or with "hard": true a hard delete, as Bulk API hardDelete (docs/soql-and-rest.md
    §4.2): the row is gone at once, its deletion listed by /deleted/ until purged."""
    emu, obj, data = req.emu, _object(req, m), jbody(req)
    hard = bool(data.get("hard"))
    with emu.lock:
        recs = [_record(emu, obj, rid, live=not hard) for rid in _ids(data)]
        ts = common.write_ts(common.take_skew())
        for rec in recs:
            if hard:
                emu.store.hard_delete(obj, rec, ts)
            else:
                emu.store.soft_delete(obj, rec, ts)
        return req.json({"ids": [r["Id"] for r in recs], "hard": hard, "deletedDate": ts})


def undelete_records(req, m, _):
    """POST /__emulator/records/{object}/undelete {"ids": [...]}: restores rows from the recycle bin (REST has no
    undelete resource; Salesforce does it in the UI, Apex and SOAP undelete()). 400 UNDELETE_FAILED for a row not in
    the bin (live, hard-deleted, purged or expired); 400 DUPLICATE_VALUE when a live row took a unique value
    meanwhile; undeletable false in describe refuses."""
    emu, obj, data = req.emu, _object(req, m), jbody(req)
    if not obj.global_flags["undeletable"]:
        raise ApiError(400, "INVALID_OPERATION", "%s is not undeletable" % obj.name)
    with emu.lock:
        emu.store.expire_bin([obj.name])
        recs = []
        for rid in _ids(data):
            nid = normalize_id(rid) if isinstance(rid, str) else None
            rec = emu.store.records[obj.name].get(nid) if nid else None
            if rec is None or rec.get("IsDeleted") != "true":
                raise ApiError(400, "UNDELETE_FAILED", "Entity is not in the recycle bin: %s" % rid)
            _check_unique(emu, obj, rec, {})
            recs.append(rec)
        ts = common.write_ts(common.take_skew())
        for rec in recs:
            emu.store.undelete(obj, rec, ts)
        return req.json({"ids": [r["Id"] for r in recs], "SystemModstamp": ts})


def merge_records(req, m, _):
    """POST /__emulator/records/{object}/merge {"master": id, "losers": [id, id], "values": {...}}: Salesforce's
    merge of up to three records of an object describe calls mergeable (Account, Contact, Lead): the master takes
    values, the losers go to the recycle bin with MasterRecordId = master, and what pointed at a loser points at
    the master (docs/soql-and-rest.md §4.2)."""
    emu, obj, data = req.emu, _object(req, m), jbody(req)
    if not obj.global_flags["mergeable"]:
        raise ApiError(400, "INVALID_OPERATION", "%s does not support merge" % obj.name)
    losers = data.get("losers")
    if not isinstance(losers, list) or not 1 <= len(losers) <= 2:
        raise ApiError(400, "MISSING_ARGUMENT", "merge takes a master and one or two losers")
    with emu.lock:
        master = _record(emu, obj, data.get("master"), live=True)
        recs = [_record(emu, obj, rid, live=True) for rid in losers]
        if len({master["Id"]} | {r["Id"] for r in recs}) != len(recs) + 1:
            raise ApiError(400, "INVALID_ID_FIELD", "merge needs distinct records")
        values = _values(obj, data.get("values") or {}, "values")
        _check_unique(emu, obj, master, values)
        ts = common.write_ts(common.take_skew())
        moved = emu.store.merge(obj, master, recs, values, ts)
        return req.json({"master": master["Id"], "merged": [r["Id"] for r in recs], "reparented": moved,
                         "SystemModstamp": ts})


def formula_values(req, m, _):
    """POST /__emulator/records/{object}/formula {"field": F, "value": v} (every row, and rows inserted later) or
    {"field": F, "values": {id: v}}: a formula field's value changes and no stamp moves, as a formula recomputes
    on read (docs/soql-and-rest.md §4.5, trap 17). F must be described calculated; values are checked and
    canonicalised as its type's CSV cells are."""
    emu, obj, data = req.emu, _object(req, m), jbody(req)
    f = obj.fields_lower.get(str(data.get("field", "")).lower())
    if f is None:
        raise ApiError(404, "NOT_FOUND", "unknown field %s.%s" % (obj.name, data.get("field")))
    if not f.computed or (obj.name_fields and f.name == "Name") or f.compound:
        raise ApiError(400, "INVALID_FIELD", "%s.%s is not a formula (calculated) field" % (obj.name, f.name))
    conv = store.make_converter(f, 1)

    def value(v):
        v = seed_value(v)
        if v is None or conv is None:
            return v
        try:
            return conv(v)
        except common.RowError as e:
            raise ApiError(400, "INVALID_FIELD", e.text)
    with emu.lock:
        if "values" in data:
            if not isinstance(data["values"], dict):
                raise ApiError(400, "INVALID_FIELD", "values: {id: value, ...}")
            per_row = {_record(emu, obj, rid)["Id"]: value(v) for rid, v in data["values"].items()}
            n = emu.store.set_formula(obj, f, per_row=per_row)
        elif "value" in data:
            n = emu.store.set_formula(obj, f, value(data["value"]))
        else:
            raise ApiError(400, "MISSING_ARGUMENT", "give \"value\" (every row) or \"values\" ({id: value})")
        return req.json({"object": obj.name, "field": f.name, "updated": n})


def _bin_objects(emu, data):
    names = data.get("object")
    if names is None:
        return list(emu.schema.objects.values())
    out = []
    for n in names if isinstance(names, list) else [names]:
        o = emu.schema.get(n)
        if o is None:
            raise ApiError(404, "NOT_FOUND", "Unknown object %s" % n)
        out.append(o)
    return out


def _enabled(emu):
    v = emu.config["replication_enabled_date"]
    return None if v is None else admin_time(v, "replication_enabled_date")


def recycle_bin(req, m, _):
    """GET /__emulator/recyclebin[?object=X]: per object with anything deleted: the rows in the bin, every logged
    deletion (hard ones too) and the earliestDateAvailable /deleted/ would answer now."""
    emu = req.emu
    q = req.params()
    with emu.lock:
        objs = _bin_objects(emu, {"object": q["object"]} if "object" in q else {})
        emu.store.expire_bin([o.name for o in objs])
        t, enabled = common.now(), _enabled(emu)
        out = {}
        for o in objs:
            log = emu.store.deleted_log[o.name]
            recs = emu.store.records[o.name]
            in_bin = [rid for rid, r in recs.items() if r.get("IsDeleted") == "true"]
            if not in_bin and not log and "object" not in q:
                continue
            out[o.name] = {"inBin": in_bin,
                           "deletions": [{"id": rid, "deletedDate": ts, "inBin": rid in recs}
                                         for rid, (e, ts) in sorted(log.items(), key=lambda kv: (kv[1][0], kv[0]))],
                           "earliestDateAvailable": common.record_ts(emu.store.earliest_available(o.name, t,
                                                                                                   enabled))}
        return req.json({"objects": out, "recycle_bin_days": emu.config["recycle_bin_days"]})


def purge_bin(req, m, _):
    """POST /__emulator/recyclebin/purge: empties the recycle bin, {} of every object, {"object": X or [X, ...]}
    of some, {"ids": [...]} of those rows, {"before": ISO} only of deletions older than that (Salesforce's periodic
    trim of a large delete log works so). Purged rows vanish from queryAll and their deletions, hard ones too, from
    /deleted/; earliestDateAvailable moves past them (docs/soql-and-rest.md §4.2, §4.3, trap 16)."""
    emu, data = req.emu, jbody(req)
    with emu.lock:
        purged = {}
        if data.get("ids") is not None:
            by_obj = {}
            for rid in _ids(data):
                nid = normalize_id(rid) if isinstance(rid, str) else None
                o = emu.schema.by_prefix.get(nid[:3]) if nid else None
                if o is None or (nid not in emu.store.deleted_log[o.name] and
                                 (emu.store.records[o.name].get(nid) or {}).get("IsDeleted") != "true"):
                    raise ApiError(400, "NOT_FOUND", "not in the recycle bin or the deletion log: %s" % rid)
                by_obj.setdefault(o.name, []).append(nid)
            for name, rids in by_obj.items():
                purged[name] = emu.store.purge(name, rids)
        else:
            before = admin_time(data["before"], "before") if data.get("before") is not None else None
            named = data.get("object") is not None
            for o in _bin_objects(emu, data):
                logged = bool(emu.store.deleted_log[o.name])
                n = emu.store.empty_bin(o.name, before)
                if n or logged or named:
                    purged[o.name] = n
        t, enabled = common.now(), _enabled(emu)
        return req.json({"purged": purged, "earliestDateAvailable": {
            n: common.record_ts(emu.store.earliest_available(n, t, enabled)) for n in purged}})


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
    if data.get("replication_enabled_date") is not None:
        admin_time(data["replication_enabled_date"], "replication_enabled_date")
    with emu.lock:
        emu.config.update(data)
        emu.store.bin_days = emu.config["recycle_bin_days"]
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


_CLOCK_KEYS = {"set", "advance_seconds", "freeze", "skew_seconds", "skew_writes"}


def clock(req, m, _):
    """POST /__emulator/clock: {"set": ISO date-time} puts the emulator's clock there, {"advance_seconds": S}
    moves it, {"freeze": true|false} stops it (every write then gets the same stamp) or lets it run on,
    {"skew_seconds": S[, "skew_writes": N]} stamps the next N write operations (all, without N; 0 clears) S
    seconds behind it: a late commit or a lagging app server (docs/soql-and-rest.md §6 "Change tracking"). Keys
    combine, applied in that order. The clock drives record stamps, the Date header, tokens, cursors and job
    retention. GET shows the state."""
    data = jbody(req) if req.method == "POST" else {}
    bad = sorted(set(data) - _CLOCK_KEYS)
    if bad:
        raise ApiError(400, "INVALID_CLOCK", "unknown clock keys: %s" % ", ".join(bad))
    with req.emu.lock:
        if data.get("set") is not None:
            common.set_clock(admin_time(data["set"], "set"))
        if data.get("advance_seconds"):
            common.advance_clock(float(data["advance_seconds"]))
        if "freeze" in data:
            common.freeze_clock(bool(data["freeze"]))
        if "skew_seconds" in data:
            common.set_skew(float(data["skew_seconds"] or 0), data.get("skew_writes"))
        return req.json(common.clock_state())


def admin_time(v, what):
    """An ISO date-time of an admin body ("2025-11-01T00:00:00Z", an offset, no zone = UTC) as epoch seconds."""
    text = store.parse_datetime(v) if isinstance(v, str) else None
    if text is None:
        raise ApiError(400, "INVALID_DATE", "%s: not an ISO 8601 date-time: %r" % (what, v))
    return common.ts_epoch(text)


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


_OBJECT_FLAGS = {k for k, v in store.GLOBAL_FLAGS.items() if isinstance(v, bool)}


def object_flags(req, m, _):
    """PATCH /__emulator/schema/{object} {"replicateable": false, ...}: describeGlobal flags of an object (any
    boolean one); replicateable false makes /updated/ and /deleted/ refuse it, mergeable and undeletable false the
    admin merge and undelete (docs/soql-and-rest.md §3.1, §4.5). Reset restores the metadata file's flags."""
    emu, obj, data = req.emu, _object(req, m), jbody(req)
    bad = sorted(k for k in data if k not in _OBJECT_FLAGS or not isinstance(data[k], bool))
    if bad or not data:
        raise ApiError(400, "INVALID_FIELD", "boolean describeGlobal flags only: %s" % ", ".join(bad))
    with emu.lock:
        obj.global_flags.update(data)
        emu.schema.touch([obj])
        return req.json(dict({"object": obj.name, "flags": {k: obj.global_flags[k] for k in sorted(_OBJECT_FLAGS)}},
                             **stamp(obj.modified)))


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
    Route(r"/records/(?P<obj>[A-Za-z0-9_]+)", {"GET": records, "POST": seed_records, "PATCH": update_records}),
    Route(r"/records/(?P<obj>[A-Za-z0-9_]+)/delete", {"POST": delete_records}),
    Route(r"/records/(?P<obj>[A-Za-z0-9_]+)/undelete", {"POST": undelete_records}),
    Route(r"/records/(?P<obj>[A-Za-z0-9_]+)/merge", {"POST": merge_records}),
    Route(r"/records/(?P<obj>[A-Za-z0-9_]+)/formula", {"POST": formula_values}),
    Route(r"/recyclebin", {"GET": recycle_bin}),
    Route(r"/recyclebin/purge", {"POST": purge_bin}),
    Route(r"/faults", {"GET": list_faults, "POST": add_faults, "DELETE": clear_faults}),
    Route(r"/tokens/expire", {"POST": expire_tokens}),
    Route(r"/tokens", {"POST": issue_token}),
    Route(r"/config", {"GET": get_config, "POST": set_config, "PUT": get_config, "PATCH": get_config,
                       "DELETE": get_config, "HEAD": get_config, "OPTIONS": get_config}),
    Route(r"/usage", {"GET": lambda req, m, _: req.json(usage_body(req.emu)), "POST": usage}),
    Route(r"/clock", {"GET": clock, "POST": clock}),
    Route(r"/recordcount", {"GET": record_count_snapshot, "POST": record_count_snapshot}),
    Route(r"/jobs", {"GET": all_jobs}),
    Route(r"/save", {"POST": save}),
    Route(r"/schema", {"GET": lambda req, m, _: req.json(schema_body(req.emu))}),
    Route(r"/schema/(?P<obj>[A-Za-z0-9_]+)", {"PATCH": object_flags}),
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
