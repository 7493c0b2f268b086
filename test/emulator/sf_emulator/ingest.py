"""Ingest jobs (docs/bulk-api-2.md §6-§8, §10): create, the one upload, processing against the record store,
results.

Route table ROUTES: /jobs/ingest... below /services/data/vNN.0 (41.0+)."""

import csv
import gc
import gzip
import io
import itertools
import random
import re
import time
import zlib

from . import common, jobs
from .common import (CSV_CT, DELIMITERS, LINE_ENDINGS, TERMINAL, USER_ID, ApiError, JobFailure, Response, RowError,
                     normalize_id)
from .store import apply_values, make_converter

csv.field_size_limit(64 * 1024 * 1024)
INGEST_OPS = ("insert", "update", "upsert", "delete", "hardDelete")


class Oversize(bytes):
    """Stands for a request body that was read and thrown away because it exceeded the upload cap."""
    size = 0


class BadRow:
    __slots__ = ("msg",)

    def __init__(self, msg):
        self.msg = msg


def process_ingest(emu, job, t0):
    """The background part of an ingest job: parse, resolve the header, apply internal batches (§10)."""
    obj = emu.schema.get(job.object)
    if job.upload_count == 0:
        return jobs.fail_job(emu, job, "InvalidBatch : No data was uploaded for this job (upload the CSV with PUT "
                             "before setting the state to UploadComplete)", t0)
    content = job.content or b""
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        parse_rows_lenient(job, content)
        return jobs.fail_job(emu, job, "InvalidBatch : Failed to parse CSV: the data is not valid UTF-8", t0)
    delim = DELIMITERS[job.delimiter]
    if not check_line_endings(text, job.line_ending):
        parse_rows(job, text, delim)
        return jobs.fail_job(emu, job, "ClientInputError : LineEnding is invalid on user data. Current LineEnding "
                             "setting is %s" % job.line_ending, t0)
    parse_rows(job, text, delim)
    if not job.header or job.header == [""]:
        return jobs.fail_job(emu, job, "InvalidBatch : Field name not found : ", t0)
    try:
        plan = IngestPlan(emu, job, obj)
    except JobFailure as e:
        return jobs.fail_job(emu, job, str(e), t0)
    if not jobs.set_state(emu, job, "InProgress"):
        return
    fail_spec = job.fail_spec
    bsize = max(1, int(emu.config["batch_size"]))
    nrows = len(job.rows)
    batch_no = 0
    rng = random.Random("%s:%s:lock" % (emu.config["seed"], job.id))
    while job.next_index < nrows:
        if job.abort_requested:
            return
        if fail_spec is not None and batch_no >= fail_spec.get("after_batches", 0):
            if not fail_spec.get("message"):
                job.retries = 10  # the internal batch was retried until the limit
            default = "InvalidBatch : Failed to process query: the job was retried more than 10 times"
            return jobs.fail_job(emu, job, jobs.fail_message(fail_spec, default, default), t0)
        with emu.lock:
            if emu.batches_used >= emu.config["daily_batches_limit"]:
                fail = "ExceededQuota : Maximum number of batches per rolling 24 hour period exceeded"
            elif emu.records_used >= emu.config["daily_records_limit"]:
                fail = "ExceededQuota : Maximum number of records per rolling 24 hour period exceeded"
            else:
                fail = None
                emu.batches_used += 1
        if fail:
            return jobs.fail_job(emu, job, fail, t0)
        bt = time.time()
        end = min(nrows, job.next_index + bsize)
        frac = emu.config["lock_failure_fraction"]
        if batch_no % 10 == 9:
            gc.freeze()
        # An internal batch that has started is finished even when the job is aborted meanwhile (abort takes
        # effect at the batch boundary); only a reset of the emulator stops it at once.
        for sub in range(job.next_index, end, 1000):
            with emu.lock:  # short critical sections: other requests interleave with processing
                if job.killed:
                    return
                plan.run_batch(sub, min(end, sub + 1000), rng if frac else None, frac, job.next_index, end)
            # Locks are not fair: without a real pause this thread would take the lock straight back and
            # starve the request threads waiting for it.
            time.sleep(0.0002)
        with emu.lock:
            if job.killed:
                return
            emu.records_used += end - job.next_index
            job.next_index = end
            job.processed = len(job.success) + len(job.failures)
            job.failed = len(job.failures)
            job.api_ms += int((time.time() - bt) * 1000)
            job.total_ms = int((time.time() - t0) * 1000)
            if job.state not in TERMINAL:
                job.touch()
        batch_no += 1
        if job.state in TERMINAL:
            return
        if emu.config["batch_delay_ms"] and job.next_index < nrows:
            if not jobs.wait_interruptible(job, emu.config["batch_delay_ms"]):
                return
    with emu.lock:
        if job.state in TERMINAL:
            return
        job.total_ms = int((time.time() - t0) * 1000)
        job.state = "JobComplete"
        job.touch()
    gc.freeze()


def parse_rows(job, text, delim):
    """job.header and job.rows from the upload's text (a malformed row becomes a BadRow)."""
    rows = split_plain_csv(text, delim)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delim, strict=True)
    before = -1 if rows is None else len(rows)
    rows = rows or []
    while len(rows) != before:
        before = len(rows)
        try:
            # slices, so that the parse of a big file gives other threads the GIL in between
            rows.extend(itertools.islice(reader, 2000))
        except csv.Error as e:
            rows.append(BadRow(str(e)))
            before = -1
    rows = [r for r in rows if not (isinstance(r, list) and len(r) == 0)]
    if not rows:
        job.header, job.rows = [], []
        return
    hdr = rows[0]
    job.header = hdr if isinstance(hdr, list) else [""]
    job.rows = rows[1:]
    # Parsed rows and store records are acyclic; keep the cyclic GC from rescanning millions of them.
    gc.freeze()


def parse_rows_lenient(job, content):
    parse_rows(job, content.decode("utf-8", "replace"), DELIMITERS[job.delimiter])


def split_plain_csv(text, delim):
    """csv.reader's rows for a text it would only split: no quotes, no NUL, one kind of line ending, no value
    over the field size limit (str.split is twice as fast). None for any other text."""
    if '"' in text or "\0" in text:
        return None
    if "\r" not in text:
        lines = text.split("\n")
    elif text.count("\r\n") == text.count("\r") == text.count("\n"):
        lines = text.split("\r\n")
    else:
        return None
    if len(text) > csv.field_size_limit() and max(map(len, lines)) > csv.field_size_limit():
        return None
    rows = []
    for i in range(0, len(lines), 2000):  # slices, so that other threads get the GIL in between
        rows.extend([line.split(delim) for line in lines[i:i + 2000] if line])  # empty line: no record
    return rows


def check_line_endings(text, le):
    """True when every record separator outside quotes matches the declared line ending."""
    if le == "LF":
        if "\r" not in text:
            return True
        parts = text.split('"')
        return not any("\r" in parts[i] for i in range(0, len(parts), 2))
    if "\n" not in text and "\r" not in text:
        return True
    parts = text.split('"')
    for i in range(0, len(parts), 2):
        p = parts[i]
        if p.count("\n") != p.count("\r\n") or p.count("\r") != p.count("\r\n"):
            return False
    return True


class IngestPlan:
    """Header resolution (job-level failures) and per-row application against the store."""

    def __init__(self, emu, job, obj):
        self.emu, self.job, self.obj = emu, job, obj
        self.store = emu.store
        self.op = job.operation
        self.ncols = len(job.header)
        self.id_col = None
        self.cols = []  # (index, field, converter, kind, extra)
        for i, h in enumerate(job.header):
            if "." in h:
                self.cols.append(self.relationship_column(i, h))
                continue
            f = obj.fields_lower.get(h.lower())
            if not f:
                raise JobFailure("InvalidBatch : Field name not found : %s" % h)
            if f.name == "Id":
                self.id_col = i
                continue
            self.cols.append((i, f, make_converter(f, i), "ref" if f.type == "reference" else "val", None))
        self.ext_field = None
        self.ext_col = None
        if self.op == "upsert":
            self.ext_field = obj.fields_lower.get(job.ext_id.lower())
            if self.ext_field.name == "Id":
                self.ext_col = self.id_col
            else:
                for c in self.cols:
                    if c[3] == "val" and c[1] is self.ext_field:
                        self.ext_col = c[0]
        self.required = [f for f in obj.fields.values() if f.required and f.createable]
        self.required_defaults = [(f.name, f.default) for f in self.required]
        # hot path: column lists specialised once per job
        self.fast = {}
        for creating in (True, False):
            blocked = [(i, f) for i, f, c, k, e in self.cols
                       if not (f.createable if creating else f.updateable)]
            simple = [(i, f.name, c) for i, f, c, k, e in self.cols
                      if k == "val" and (f.createable if creating else f.updateable)]
            other = [(i, f, c, k, e) for i, f, c, k, e in self.cols
                     if k != "val" and (f.createable if creating else f.updateable)]
            self.fast[creating] = (blocked, simple, other)
        # column-at-a-time conversion (convert_columns): the value columns in header order
        self.val_convs = [(i, c) for i, f, c, k, e in self.cols if k == "val"]
        self.val_names = tuple(f.name for i, f, c, k, e in self.cols if k == "val")
        self.blank_row = [""] * self.ncols
        # the clock skew of this write operation (POST /__emulator/clock skew_seconds): every row of the job is
        # stamped that far behind the clock, a late commit (docs/soql-and-rest.md §6 "Change tracking")
        with emu.lock:
            self.skew = common.take_skew()

    def relationship_column(self, i, h):
        obj = self.obj
        typ = None
        spec = h
        if ":" in spec:
            a, spec = spec.split(":", 1)
            rel_part, fld = spec.split(".", 1)
            if obj.rel_lower.get(a.lower()) is not None and obj.rel_lower.get(rel_part.lower()) is None:
                typ, rel_part = rel_part, a       # Rel:Type.Field
            else:
                typ = a                           # Type:Rel.Field
        else:
            rel_part, fld = spec.split(".", 1)
        rf = obj.rel_lower.get(rel_part.lower())
        if rf is None or "." in fld:
            raise JobFailure("InvalidBatch : Unable to find relationship: %s" % rel_part)
        if typ is not None and not rf.polymorphic:
            raise JobFailure("InvalidBatch : type is not needed for non polymorphic foreign key references: %s"
                             % rf.relationship_name)
        if typ is None:
            target = self.emu.schema.get(rf.reference_to[-1] if rf.polymorphic else rf.reference_to[0])
        else:
            target = self.emu.schema.get(typ)
            if target is None or target.name not in rf.reference_to:
                raise JobFailure("InvalidBatch : Unable to find relationship: %s" % h)
        if target is None:
            raise JobFailure("InvalidBatch : Unable to find relationship: %s" % rel_part)
        tf = target.fields_lower.get(fld.lower())
        if tf is None:
            raise JobFailure("InvalidBatch : Field name not found : %s" % h)
        if not (tf.id_lookup or tf.external_id):
            raise JobFailure("InvalidBatch : Invalid field for upsert, must be an External Id custom or standard "
                             "indexed field: %s (%s)" % (tf.name, target.name))
        if rf.createable is False and rf.updateable is False:
            raise JobFailure("InvalidBatch : Field name not found : %s" % h)
        return (i, rf, None, "rel", (target, tf))

    def run_batch(self, start, end, rng, frac, bstart=None, bend=None):
        """Apply rows [start, end) of the internal batch [bstart, bend)."""
        if bstart is None:
            bstart, bend = start, end
        if getattr(self, "dup_range", None) != (bstart, bend):
            self.dup = self.duplicates(bstart, bend)
            self.dup_range = (bstart, bend)
        self.apply_rows(start, end, rng, frac, self.dup)

    def duplicates(self, bstart, bend):
        """Rows of an upsert batch whose external id occurs more than once in the same internal batch."""
        dup = set()
        rows, ncols, op = self.job.rows, self.ncols, self.op
        if op == "upsert" and self.ext_col is not None:
            ec = self.ext_col
            f = self.ext_field
            fold = not (f.case_sensitive or f.name == "Id")
            keys = [r[ec] for r in rows[bstart:bend] if isinstance(r, list) and len(r) == ncols]
            keys = [k.lower() if fold else k for k in keys if k != "" and k != "#N/A"]
            if len(set(keys)) == len(keys):
                return dup  # the usual case: every key is distinct
            seen = {}
            for k in range(bstart, bend):
                r = rows[k]
                if isinstance(r, list) and len(r) == ncols and r[ec] not in ("", "#N/A"):
                    key = r[ec] if (f.case_sensitive or f.name == "Id") else r[ec].lower()
                    if key in seen:
                        dup.add(seen[key])
                        dup.add(k)
                    else:
                        seen[key] = k
        return dup

    def convert_columns(self, start, end):
        """The value cells of rows [start, end) converted a column at a time: one tuple per row, in the order of
        val_names, "" for an empty cell; None for a row that must take the exact per-row path of values() (a cell
        is #N/A or fails conversion, so that path reports the row's first error). Whole clean columns are
        accepted by their converter's plain() predicate without a call per cell."""
        ncols, blank = self.ncols, self.blank_row
        # malformed rows (reported before any conversion) stand in as blanks so that the columns line up
        batch = [r if isinstance(r, list) and len(r) == ncols else blank for r in self.job.rows[start:end]]
        columns = list(zip(*batch))
        converted, irregular = [], set()
        for i, conv in self.val_convs:
            col = columns[i]
            if conv.plain is not None and "#N/A" not in col and conv.plain(col):
                converted.append(col)
                continue
            out = []
            for n, v in enumerate(col):
                if v == "":
                    out.append(v)
                elif v == "#N/A":
                    irregular.add(n)
                    out.append(None)
                else:
                    try:
                        out.append(conv(v))
                    except RowError:
                        irregular.add(n)
                        out.append(None)
            converted.append(out)
        pre = list(zip(*converted)) if converted else [()] * len(batch)
        for n in irregular:
            pre[n] = None
        return pre

    def apply_rows(self, start, end, rng, frac, dup):
        job = self.job
        rows = job.rows
        success, failures = job.success, job.failures
        ncols = self.ncols
        op = self.op
        ts = common.write_ts(self.skew)
        pre = self.convert_columns(start, end) if op in ("insert", "update", "upsert") else None
        for k in range(start, end):
            r = rows[k]
            if isinstance(r, BadRow):
                failures.append((k, "", "INVALID_FIELD:Failed to parse CSV row: %s:--" % r.msg))
                continue
            if len(r) != ncols:
                failures.append((k, "", "INVALID_FIELD:Row has %d columns but the header has %d:--"
                                 % (len(r), ncols)))
                continue
            if rng is not None and rng.random() < frac:
                rid = normalize_id(r[self.id_col]) if self.id_col is not None else None
                failures.append((k, rid or "", "UNABLE_TO_LOCK_ROW:unable to obtain exclusive access to this "
                                               "record:--"))
                continue
            if k in dup:
                v = r[self.ext_col]
                failures.append((k, "", "DUPLICATE_EXTERNAL_ID:Duplicate external id specified: %s:%s --"
                                 % (v, self.ext_field.name)))
                continue
            try:
                if op == "insert":
                    rid = self.do_insert(r, ts, pre[k - start])
                    success.append((k, rid, True))
                elif op == "update":
                    rid = self.target_id(r)
                    self.do_update(rid, r, ts, pre[k - start])
                    success.append((k, rid, False))
                elif op == "upsert":
                    rid, created = self.do_upsert(r, ts, pre[k - start])
                    success.append((k, rid, created))
                else:
                    rid = self.target_id(r)
                    self.do_delete(rid, op == "hardDelete", ts)
                    success.append((k, rid, False))
            except RowError as e:
                failures.append((k, getattr(e, "rid", "") or "", e.text))

    # -- row helpers
    def values(self, r, creating, rid=None, pre=None):
        """Convert the row's cells. Returns dict field->value (None = clear). pre: the row's value cells as
        convert_columns returned them (None: convert them here, one by one)."""
        blocked, simple, other = self.fast[creating]
        if pre is not None and not blocked:  # every value column is in `simple`, in header order
            if "" in pre:
                out = {name: v for name, v in zip(self.val_names, pre) if v != ""}
            else:
                out = dict(zip(self.val_names, pre))
        else:
            for i, f in blocked:
                if r[i] != "":
                    e = RowError("INVALID_FIELD_FOR_INSERT_UPDATE", "Unable to create/update fields: %s. Please "
                                 "check the security settings of this field and verify that it is read/write for "
                                 "your profile or permission set." % f.name, [f.name])
                    e.rid = rid
                    raise e
            out = {}
            for i, name, conv in simple:
                v = r[i]
                if v == "":
                    continue
                out[name] = None if v == "#N/A" else conv(v)
        for i, f, conv, kind, extra in other:
            v = r[i]
            if v == "":
                continue
            if v == "#N/A":
                out[f.name] = None
                continue
            if kind == "ref":
                out[f.name] = self.check_reference(f, v)
            else:
                target, tf = extra
                ids = self.store.find_by(target, tf, v)
                if not ids:
                    raise RowError("INVALID_FIELD", "Foreign key external ID: %s not found for field %s in entity %s"
                                   % (v, tf.name, target.name))
                if len(ids) > 1:
                    raise RowError("INVALID_FIELD", "More than 1 record found for External ID field: %s"
                                   % tf.name)
                out[f.name] = ids[0]
        return out

    def check_reference(self, f, v):
        rid = normalize_id(v)
        if rid is None:
            raise RowError("MALFORMED_ID", "%s: id value of incorrect type: %s" % (f.label, v), [f.name])
        target = self.emu.schema.by_prefix.get(rid[:3])
        if target is None or target.name not in f.reference_to:
            raise RowError("FIELD_INTEGRITY_EXCEPTION", "%s: id value of incorrect type: %s" % (f.label, v),
                           [f.name])
        rec = self.store.records[target.name].get(rid)
        if rec is None:
            raise RowError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
        if rec.get("IsDeleted") == "true":
            raise RowError("ENTITY_IS_DELETED", "entity is deleted")
        return rid

    def check_unique(self, vals, self_id):
        for fname, idx, case_sensitive in self.store.index_list[self.obj.name]:
            v = vals.get(fname)
            if v is None:
                continue
            other = idx.get(v if case_sensitive else v.lower())
            if other and other != self_id:
                raise RowError("DUPLICATE_VALUE", "duplicate value found: %s duplicates value on record with id: %s"
                               % (fname, other))

    def check_required(self, rec, rid=None):
        missing = [f.name for f in self.required if rec.get(f.name) in (None, "")]
        if missing:
            e = RowError("REQUIRED_FIELD_MISSING", "Required fields are missing: [%s]" % ", ".join(missing), missing)
            e.rid = rid
            raise e

    def do_insert(self, r, ts, pre=None):
        if self.id_col is not None and r[self.id_col] != "":
            raise RowError("INVALID_FIELD_FOR_INSERT_UPDATE", "cannot specify Id in an insert call", ["Id"])
        vals = self.values(r, True, None, pre)
        return self.create(vals, ts)

    def create(self, vals, ts):
        obj = self.obj
        for name, default in self.required_defaults:
            v = vals[name] if name in vals else default
            if v is None or v == "":
                self.check_required(dict(obj.defaults, **vals))
        self.check_unique(vals, None)
        rec = self.store.insert_raw(obj, vals, ts)
        return rec["Id"]

    def target_id(self, r):
        if self.id_col is None or r[self.id_col] == "":
            if self.op == "update":
                raise RowError("MISSING_ARGUMENT", "Id not specified in an update call")
            raise RowError("MISSING_ARGUMENT", "Id not specified in a delete call")
        v = r[self.id_col]
        rid = normalize_id(v)
        if rid is None or rid[:3] != self.obj.key_prefix:
            raise RowError("MALFORMED_ID", "%s ID: id value of incorrect type: %s" % (self.obj.label, v), ["Id"])
        rec = self.store.records[self.obj.name].get(rid)
        if rec is None:
            e = RowError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
            e.rid = rid
            raise e
        if rec.get("IsDeleted") == "true":
            e = RowError("ENTITY_IS_DELETED", "entity is deleted")
            e.rid = rid
            raise e
        return rid

    def do_update(self, rid, r, ts, pre=None):
        vals = self.values(r, False, rid, pre)
        self.apply_update(rid, vals, ts)

    def apply_update(self, rid, vals, ts):
        obj = self.obj
        rec = self.store.records[obj.name][rid]
        try:
            for name, default in self.required_defaults:  # the record as it would be after the update
                v = vals[name] if name in vals else rec.get(name)
                if v is None or v == "":
                    merged = dict(rec)
                    merged.update(vals)
                    self.check_required(merged, rid)
            self.check_unique(vals, rid)
        except RowError as e:
            e.rid = rid
            raise
        self.store.index_remove(obj, rec)
        apply_values(rec, vals)
        rec["LastModifiedDate"] = ts
        rec["SystemModstamp"] = ts
        rec["LastModifiedById"] = USER_ID
        self.store.compute_name(obj, rec)
        self.store.index_add(obj, rec)

    def do_upsert(self, r, ts, pre=None):
        f = self.ext_field
        key = r[self.ext_col] if self.ext_col is not None else ""
        if key in ("", "#N/A"):
            if f.name == "Id":
                vals = self.values(r, True, None, pre)
                return self.create(vals, ts), True
            raise RowError("MISSING_ARGUMENT", "%s not specified" % f.name)
        if f.name == "Id":
            rid = normalize_id(key)
            if rid is None or rid[:3] != self.obj.key_prefix:
                raise RowError("MALFORMED_ID", "%s ID: id value of incorrect type: %s" % (self.obj.label, key),
                               ["Id"])
            rec = self.store.records[self.obj.name].get(rid)
            if rec is None:
                raise RowError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
            if rec.get("IsDeleted") == "true":
                e = RowError("ENTITY_IS_DELETED", "entity is deleted")
                e.rid = rid
                raise e
            self.apply_update(rid, self.values(r, False, rid, pre), ts)
            return rid, False
        ids = self.store.find_by(self.obj, f, key)
        if ids:
            rid = ids[0]
            vals = self.values(r, False, rid, pre)
            self.apply_update(rid, vals, ts)
            return rid, False
        vals = self.values(r, True, None, pre)
        return self.create(vals, ts), True

    def do_delete(self, rid, hard, ts):
        """delete: into the recycle bin; hardDelete: gone from the store, still in the deletion log (§4.2)."""
        rec = self.store.records[self.obj.name][rid]
        if hard:
            self.store.hard_delete(self.obj, rec, ts)
        else:
            self.store.soft_delete(self.obj, rec, ts)


_NUMERIC_RE = re.compile(r"^-?\d+(\.\d+)?$")


def csv_quote_all(rows, delim, le):
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delim, lineterminator=le, quoting=csv.QUOTE_ALL)
    for i in range(0, len(rows), 5000):  # slices: let other threads have the GIL in between
        w.writerows(rows[i:i + 5000])
    return buf.getvalue()


def csv_quote_all_lines(rows, delim, heads=None):
    """Each row as one CSV line (without line ending), every value quoted, exactly as csv.writer(quoting=QUOTE_ALL)
    writes it (quotes doubled), built with one join per row instead of the writer's work per value.
    heads (optional, one per row): leading values already quoted and followed by the delimiter."""
    sep = '"' + delim + '"'
    lines = []
    for n, row in enumerate(rows):
        body = sep.join(row)
        if body.count('"') != 2 * len(row) - 2:  # some value has quotes of its own: double them
            body = sep.join([v.replace('"', '""') for v in row])
        lines.append('"' + body + '"' if heads is None else heads[n] + '"' + body + '"')
    return lines


def csv_bytes(lines, le):
    """lines joined as UTF-8 with a line ending after each, encoded a slice at a time: bounded extra memory, and
    other threads get the GIL in between."""
    step = 5000
    return b"".join((le.join(lines[i:i + step]) + le).encode("utf-8") for i in range(0, len(lines), step))


def shuffle(rnd, x):
    """rnd.shuffle(x), the same permutation from the same generator state, ~2x faster: random.shuffle pays a
    Python call to _randbelow per element; this inlines it (getrandbits with rejection, as Random does)."""
    getrandbits = rnd.getrandbits
    for i in reversed(range(1, len(x))):
        n = i + 1
        k = n.bit_length()
        j = getrandbits(k)
        while j >= n:
            j = getrandbits(k)
        x[i], x[j] = x[j], x[i]


def csv_unprocessed(header, rows, delim, le, final_newline):
    def q(v):
        if _NUMERIC_RE.match(v):
            return v
        return '"' + v.replace('"', '""') + '"'
    lines = [delim.join(q(h) for h in header)]
    for r in rows:
        lines.append(delim.join(q(v) for v in r))
    out = le.join(lines)
    if final_newline:
        out += le
    return out


# ----------------------------------------------------------------------------------------------------------


def multipart_parts(req, body):
    import email.parser
    import email.policy
    ct = req.headers.get("Content-Type") or ""
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + ct.encode("latin-1") + b"\r\n\r\n" + body)
    parts = {}
    if msg.is_multipart():
        for part in msg.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if name:
                parts[name] = part.get_payload(decode=True) or b""
    if "job" not in parts:
        raise ApiError(400, "API_ERROR", "Multipart request must contain a 'job' part")
    return parts


def create_ingest(req, m, _):
    """POST /jobs/ingest (§6.1), also the optional multipart form with the data."""
    emu, body, ver = req.emu, req.body, req.ver
    content = None
    if (req.headers.get("Content-Type") or "").lower().startswith("multipart/form-data"):
        parts = multipart_parts(req, body)
        body = parts["job"]
        content = parts.get("content")
        if content is None:
            raise ApiError(400, "API_ERROR", "Multipart request must contain a 'content' part")
        if len(content.decode("utf-8", "replace")) > emu.config["multipart_max_chars"]:
            raise ApiError(400, "INVALIDJOB", "InvalidJob : The content of a multipart request may not exceed "
                           "%d characters" % emu.config["multipart_max_chars"])
    req.body = body
    d = jobs.job_request(req)
    op = d.get("operation")
    if op not in INGEST_OPS:
        raise ApiError(400, "API_ERROR", "Invalid value: '%s' supplied for property: 'operation'" % op)
    delim, le = jobs.common_options(d)
    obj = emu.schema.get(d.get("object"))
    if not obj or not obj.bulk_ingest:
        raise ApiError(400, "INVALIDJOB", "InvalidJob : Unable to find object: %s" % (d.get("object") or ""))
    ext = None
    if op == "upsert":
        ext = d.get("externalIdFieldName")
        if ext is None:  # absent (or null); "" is a provided name that matches no external id (§6.1)
            raise ApiError(400, "INVALIDJOB", "InvalidJob : External ID was blank for %s. An External ID must be "
                           "specified for upsert." % obj.name)
        f = obj.fields_lower.get(ext.lower())
        if not f or not (f.external_id or f.name == "Id"):
            raise ApiError(400, "INVALIDJOB", "InvalidJob : Field name provided, %s does not match an External "
                           "ID for %s" % (ext, obj.name))
        ext = f.name
    if op == "hardDelete" and not emu.config["hard_delete_allowed"]:
        raise ApiError(400, "FEATURENOTENABLED", "FeatureNotEnabled : hardDelete operation requires special "
                       "user profile permission, please contact your system administrator")
    arid = d.get("assignmentRuleId")
    with emu.lock:
        job = jobs.Job(jobs.new_job_id(emu), "ingest", op, obj.name, ver, delim, le)
        job.ext_id = ext
        if arid:
            job.assignment_rule_id = arid
        jobs.take_fail_spec(emu, job, "ingest")
        emu.jobs[job.id] = job
        if content is not None:
            job.content = content
            job.upload_count = 1
            job.state = "UploadComplete"
            shape = job.create_shape()
            del shape["contentUrl"]
            resp = req.json(shape)
            jobs.start_processing(emu, job, process_ingest)
            return resp
        return req.json(job.create_shape())


def upload(req, m, job):
    """PUT .../batches: the job's one CSV upload (§6.2)."""
    emu, body = req.emu, req.body
    ct = (req.headers.get("Content-Type") or "").lower()
    if ct and not ct.startswith("text/csv"):
        raise ApiError(400, "API_ERROR", "Unsupported content type: %s; use text/csv" % ct)
    ce = (req.headers.get("Content-Encoding") or "").lower().strip()
    if ce in ("gzip", "x-gzip"):
        try:
            body = gzip.decompress(body)
        except (OSError, EOFError, zlib.error):
            raise ApiError(400, "API_ERROR", "Unable to decompress the request body")
    elif ce not in ("", "identity"):
        raise ApiError(415, "UNSUPPORTED_MEDIA_TYPE", "Unsupported Content-Encoding: %s" % ce)
    raw_len = body.size if isinstance(body, Oversize) else len(body)
    b64len = 4 * ((raw_len + 2) // 3)
    with emu.lock:
        if job.state != "Open":
            raise ApiError(400, "INVALIDJOBSTATE", "InvalidJobState : Job state %s does not allow data upload; "
                           "the job must be Open" % job.state)
        if b64len > emu.config["max_upload_bytes"]:
            raise ApiError(400, "INVALIDBATCH", "InvalidBatch : Exceeded max size limit of %d bytes with "
                           "request size %d (base64-encoded)" % (emu.config["max_upload_bytes"], b64len))
        if job.upload_count >= 1 and emu.config["second_upload_mode"] == "put":
            raise ApiError(400, "BULK_API_ERROR", jobs.multiple_contents_msg(job))
        job.upload_count += 1
        if job.upload_count > 1:
            job.content = None
        else:
            job.content = body
        job.touch()
    return Response(201, b"")


def results_body(emu, job, sub):
    """The bytes of successfulResults, failedResults or unprocessedrecords (§7)."""
    delim = DELIMITERS[job.delimiter]
    le = LINE_ENDINGS[job.line_ending]
    with emu.lock:  # snapshot under the lock; the (possibly large) file is built outside it
        # cache only once nothing can change any more (an aborted job finishes its current internal batch)
        cache_ok = job.state in TERMINAL and (job.thread is None or not job.thread.is_alive())
        if cache_ok and sub in job.result_cache:
            return job.result_cache[sub]
        if job.rows is None and job.content is not None and job.state in ("Aborted", "Failed"):
            parse_rows(job, job.content.decode("utf-8", "replace"), delim)
        header = list(job.header or [])
        rows = job.rows or []
        shuffle_results = emu.config["shuffle_results"]
        seed = emu.config["seed"]
        final_nl = emu.config["unprocessed_final_newline"]
        if sub == "successfulResults":
            entries = list(job.success)
        elif sub == "failedResults":
            entries = list(job.failures)
        else:
            entries = list(range(job.next_index, len(rows))) if job.state in ("Failed", "Aborted") else []
    rnd = random.Random("%s:%s:%s" % (seed, job.id, sub))
    blank = [""] * len(header)
    if sub in ("successfulResults", "failedResults"):
        # Lines are built in upload order (memory order: fast) and then shuffled: the same permutation as
        # shuffling the entries first, as it depends only on the generator and the number of lines.
        if sub == "successfulResults":
            head = ["sf__Id", "sf__Created"] + header
            created = {True: '"%s"' + delim + '"true"' + delim, False: '"%s"' + delim + '"false"' + delim}
            lines = csv_quote_all_lines([rows[k] for k, rid, c in entries], delim,
                                        [created[c] % rid for k, rid, c in entries])
        else:
            head = ["sf__Id", "sf__Error"] + header
            api53 = float(job.api_version) >= 53.0
            lines = csv_quote_all_lines([[rid if api53 else "", err] + (rows[k] if isinstance(rows[k], list)
                                                                        else blank)
                                         for k, rid, err in entries], delim)
        if shuffle_results:
            shuffle(rnd, lines)
        blob = csv_bytes(csv_quote_all_lines([head], delim) + lines, le)
    else:  # unprocessed rows keep the upload order (docs/bulk-api-2.md §7.3); only the processed ones are unordered
        pending = [rows[k] if isinstance(rows[k], list) else blank for k in entries]
        blob = csv_unprocessed(header, pending, delim, le, final_nl).encode("utf-8")
    if cache_ok:
        with emu.lock:
            job.result_cache[sub] = blob
    return blob


def results(req, m, job):
    return Response(200, results_body(req.emu, job, m.group("sub")), CSV_CT)


def patch(req, m, job):
    return jobs.patch_job(req, job, process_ingest)


ROUTES = jobs.job_routes("ingest", 41, create_ingest, patch, [
    (r"/batches/?", {"PUT": upload}),
    (r"/(?P<sub>successfulResults|failedResults|unprocessedrecords)/?", {"GET": results}),
])
