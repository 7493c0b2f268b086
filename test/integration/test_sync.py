"""sf_bulk_sync end to end against the emulator: a mirror of Salesforce records in a PostgreSQL table, kept current
by runs that are query jobs of the worker. Every check compares the target with the emulator's record store
(GET /__emulator/records), column by column, after each run:

- a randomized workload (seed printed; SFB_SYNC_SEED replays, SFB_SYNC_ROUNDS sizes) of inserts, user and system
  updates, soft deletes, undeletes, hard deletes, merges, recycle-bin purges, formula values and clock moves on a
  frozen emulator clock, with Bulk upserts now and then, each round followed by a run: the mirror is the store;
  the kind of each run (full, incremental, formulas) is the one the state calls for;
- one object into two targets (deletes => 'mark'; a fields subset with a filter), both exact;
- a write stamped behind the watermark (clock skew) is caught within the overlap and missed without it;
- a filter Salesforce refuses fails the job with its error, the table and the watermark untouched; call-time
  refusals (an object that is not replicable, a target whose columns cannot hold the fields);
- if_running: 'skip' returns NULL while a run is unfinished, 'queue' runs after it, and a cron-style loop of
  calls converges;
- the /deleted/ window: hard deletes removed by incremental runs; a purge after the cursor and a window beyond
  the recycle bin's reach turn the run into a full one (with a NOTICE), which leaves the mirror exact;
- schema drift: a new field becomes a column (NOTICE), a removed one fails the call naming it;
- reconcile: a due full run removes what incremental runs cannot see (a record that left the filter);
- a non-superuser's mirror is its own (sf_bulk_syncs, later calls), and another role's call is refused;
- a dropped target starts the mirror again; every remaining field type (Invoice__c) into a quoted target.

The emulator's store is shared by the whole suite: every record of a test is named with its run-unique prefix
and every mirror filters on it. The module adds a formula field to Account for its tests and drops it again.
The emulator clock only moves forward during the module (the deletion log's purge marks are on it) and is put
back to real time at its end. It starts at the real time, so the tests' clock moves put Salesforce's clock
ahead of PostgreSQL's; SFB_SYNC_CLOCK_OFFSET=-864000 starts it ten days behind instead.
"""

import calendar
import os
import random
import re
import time
import uuid
from decimal import Decimal

import harness
from harness import IntegrationTest, PsqlError, log, poll, sql_literal

OBJ = "Account"
FORMULA = "Sync_Health__c"  # a calculated field this module adds to Account (the metadata has none there)
FORMULA_COL = FORMULA.lower()
NUMERIC_TYPES = ("numeric", "integer", "bigint", "smallint", "double precision", "real")
INDUSTRIES = ["Banking", "Retail", "Energy", "Media", "Agriculture"]
TEXTS = ["plain", "with, a comma", 'with "quotes"', "two\nlines", "ünïcødé ✓ 東京", "semi;colon", "tab\there",
         "back\\slash", "#N/A-ish but not"]


# ------------------------------------------------------------------------------------------------ values
def iso(epoch):
    """The emulator's stored form of a date-time: UTC, whole seconds, ".000Z"."""
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(epoch))


def epoch_of(text):
    return calendar.timegm(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S")) + int(text[20:23] or 0) / 1000.0


def floor_minute(t):
    return (int(t) // 60) * 60


def norm(value, pgtype):
    """A value in the form both sides are compared in: numbers as plain decimals without trailing zeros, the rest
    as text (date-times are read from PostgreSQL in the store's form, see SyncTest.mirror)."""
    if value is None:
        return None
    if pgtype.startswith(NUMERIC_TYPES):
        return format(Decimal(value).normalize(), "f")
    if pgtype.startswith("time without"):
        return str(value).rstrip("Z").rstrip("0").rstrip(".") if "." in str(value) else str(value).rstrip("Z")
    return str(value)


def store_row(rec, cols):
    """A store record as a mirror row of the columns cols ({name: PostgreSQL type}): Salesforce field names
    lower-cased; a field the record does not hold is NULL."""
    lower = {k.lower(): v for k, v in rec.items()}
    return {c: norm(lower.get(c), t) for c, t in cols.items()}


def sqlv(v):
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return "ARRAY[%s]::text[]" % ", ".join(sql_literal(x) for x in v) if v else "'{}'::text[]"
    return sql_literal(v)


def ts_sql(col):
    return "to_char(%s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')" % col


def mirror_diff(actual, expected):
    """actual {id: row}; expected {id: [acceptable rows, None meaning absent]} (an id not in expected must be
    absent): the differences, one line each."""
    out = []
    for rid in sorted(set(actual) | set(expected)):
        options = expected.get(rid, [None])
        got = actual.get(rid)
        if got in options:
            continue
        want = next((o for o in options if o is not None), None)
        if got is None:
            out.append("%s: missing from the mirror; the store has %r" % (rid, want))
        elif want is None:
            out.append("%s: in the mirror, should not be: %r" % (rid, got))
        else:
            out.append("%s: differs (mirror, expected): %r" % (rid, {c: (got.get(c), want.get(c)) for c in
                                                                     sorted(set(got) | set(want))
                                                                     if got.get(c) != want.get(c)}))
    return out


# ------------------------------------------------------------------------------------------------ module
def setUpModule():
    emu, pg = harness.ENV.emulator, harness.ENV.cluster
    offset = float(os.environ.get("SFB_SYNC_CLOCK_OFFSET") or 0)
    if offset:
        emu.admin("POST", "/clock", {"set": iso(time.time() + offset)})
    emu.admin("POST", "/schema/%s/fields" % OBJ, {
        "name": FORMULA, "label": "Sync Health", "type": "double", "precision": 18, "scale": 2, "computed": True,
        "createable": False, "updateable": False, "calculatedFormula": "NumberOfEmployees / 10"})
    pg.psql("SELECT count(*) FROM sf_bulk_describe(%s, refresh => true);" % sql_literal(OBJ))


def tearDownModule():
    emu, pg = harness.ENV.emulator, harness.ENV.cluster
    try:
        emu.admin("DELETE", "/schema/%s/fields/%s" % (OBJ, FORMULA))
    finally:
        restore_clock()
        pg.psql("SELECT count(*) FROM sf_bulk_describe(%s, refresh => true);" % sql_literal(OBJ), check=False)


def restore_clock():
    """The emulator clock back to real time, running, without skew (later modules compare it with theirs)."""
    emu = harness.ENV.emulator
    emu.admin("POST", "/clock", {"freeze": False, "skew_seconds": 0})
    emu.admin("POST", "/clock", {"set": iso(time.time())})


# ------------------------------------------------------------------------------------------------ mirrors
class Mirror:
    """One target under test: its sf_bulk_sync options, which store records it covers, and what it held after
    its last checked run (the model the next run is checked against)."""

    def __init__(self, target, mode="delete", keep=None, **opts):
        self.target = target
        self.mode = mode
        self.keep = keep or (lambda rec: True)
        self.opts = dict(opts)
        if mode != "delete":
            self.opts["deletes"] = mode
        overlap = re.fullmatch(r"(\d+) (second|minute)s?", opts.get("overlap", "5 minutes"))
        self.overlap_s = int(overlap.group(1)) * (60 if overlap.group(2) == "minute" else 1)
        self.prev = {}          # id -> row after the last checked run
        self.watermark = None   # the sync's watermark after it (text), None before the first run
        self.kinds = []


class SyncTest(IntegrationTest):
    """Base: the emulator's admin writes, sf_bulk_sync calls, and the comparison of a target with the store."""

    obj = OBJ
    name_field = "Name"

    def setUp(self):
        super().setUp()
        self.prefix = re.sub(r"[^A-Za-z0-9-]", "", self.tag) + "-"
        self.start_clock()

    def start_clock(self):
        """A frozen clock: every write of a test has a known stamp; the tests move it forward themselves."""
        self.clock(freeze=True, skew_seconds=0)

    def tearDown(self):
        self.clock(freeze=False, skew_seconds=0)
        super().tearDown()

    # -- the emulator ---------------------------------------------------------------------------------------
    def clock(self, **kw):
        return self.emu.admin("POST", "/clock", kw)

    def now(self):
        return self.emu.admin("GET", "/clock")["now_epoch"]

    def advance(self, seconds):
        if seconds:
            self.clock(advance_seconds=seconds)

    def seed(self, records):
        return self.emu.admin("POST", "/records/%s" % self.obj, {"records": records})["ids"]

    def patch(self, records, system=False):
        return self.emu.admin("PATCH", "/records/%s" % self.obj, {"records": records, "system": system})

    def delete(self, ids, hard=False):
        return self.emu.admin("POST", "/records/%s/delete" % self.obj, {"ids": list(ids), "hard": hard})

    def undelete(self, ids):
        return self.emu.admin("POST", "/records/%s/undelete" % self.obj, {"ids": list(ids)})

    def merge(self, master, losers, values=None):
        return self.emu.admin("POST", "/records/%s/merge" % self.obj,
                              {"master": master, "losers": list(losers), "values": values or {}})

    def set_formula(self, values, field=FORMULA):
        return self.emu.admin("POST", "/records/%s/formula" % self.obj, {"field": field, "values": values})

    def purge(self, ids):
        return self.emu.admin("POST", "/recyclebin/purge", {"ids": list(ids)})

    def bin_info(self):
        return self.emu.admin("GET", "/recyclebin?object=%s" % self.obj)["objects"].get(self.obj, {})

    def store(self, keep=None):
        """This test's records (named with its prefix) in the store, bin rows included: {id: record}."""
        return {r["Id"]: r for r in self.emu.records(self.obj)
                if (r.get(self.name_field) or "").startswith(self.prefix) and (keep is None or keep(r))}

    def name(self, suffix):
        return self.prefix + suffix

    def filter(self):
        return "%s LIKE '%s%%'" % (self.name_field, self.prefix)

    # -- sf_bulk --------------------------------------------------------------------------------------------
    def target(self, suffix=""):
        return "public." + ("s_" + re.sub(r"[^a-z0-9]", "_", self.tag.lower()) + suffix)[:63]

    def sync(self, target, obj=None, fresh_describe=False, user="postgres", engine=None, **opts):
        """SELECT sf_bulk_sync(obj, target, opts...) in a session of its own: (job id or None, [NOTICE texts]).
        engine 'bulk' (sf_bulk.scan_engine) makes even a small incremental run a Bulk query job."""
        args = [sql_literal(obj or self.obj), sql_literal(target)] + ["%s => %s" % (k, sqlv(v))
                                                                      for k, v in opts.items()]
        sql = ("SET sf_bulk.describe_ttl = 0;\n" if fresh_describe else "") + \
            ("SET sf_bulk.scan_engine = %s;\n" % engine if engine else "") + \
            "SELECT sf_bulk_sync(%s);\n" % ", ".join(args)
        p = self.pg.psql(sql, user=user, check=False)
        if p.returncode != 0:
            raise PsqlError(p.returncode, p.stdout, p.stderr)
        lines = p.stdout.splitlines()
        last = lines[-1].strip() if lines else ""
        notices = [line.split("NOTICE:", 1)[1].strip() for line in p.stderr.splitlines() if "NOTICE:" in line]
        return (int(last) if last else None), notices

    def sync_fails(self, target, obj=None, fresh_describe=False, user="postgres", **opts):
        """A call that must fail: the PsqlError (stderr with the message)."""
        try:
            job, notices = self.sync(target, obj=obj, fresh_describe=fresh_describe, user=user, **opts)
        except PsqlError as e:
            return e
        self.fail("sf_bulk_sync succeeded (job %r, notices %r)" % (job, notices))

    def sync_run(self, job):
        rows = self.pg.json(
            "SELECT job_id, sync_id, kind, reason, %s AS since, deleted_ids, %s AS deleted_until, calculated, "
            "rows_inserted, rows_updated, rows_deleted, %s AS watermark, applied_at "
            "FROM sf_bulk.sync_runs WHERE job_id = %d" % (ts_sql("since"), ts_sql("deleted_until"),
                                                          ts_sql("watermark"), job))
        return rows[0] if rows else None

    def state(self, target):
        rows = self.pg.json(
            "SELECT v.*, %s AS watermark_text, %s AS cursor_text FROM sf_bulk_syncs v JOIN sf_bulk.syncs s "
            "USING (id) WHERE v.target = %s" % (ts_sql("v.watermark"), ts_sql("s.deleted_cursor"),
                                                sql_literal(target)))
        return rows[0] if rows else None

    def columns(self, target):
        return {r["attname"]: r["type"] for r in self.pg.json(
            "SELECT attname, format_type(atttypid, atttypmod) AS type FROM pg_attribute WHERE attrelid = "
            "%s::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum" % sql_literal(target))}

    def mirror(self, target):
        """The target's rows {id: row} (values as norm() gives them) and its columns {name: type}."""
        cols = self.columns(target)
        exprs = []
        for c, t in cols.items():
            q = '"%s"' % c
            if t.startswith("timestamp"):
                e = ts_sql(q)
            elif t.endswith("[]"):
                e = "array_to_string(%s, ';')" % q
            else:
                e = "%s::text" % q
            exprs.append("%s AS %s" % (e, q))
        rows = self.pg.json("SELECT %s FROM %s" % (", ".join(exprs), target))
        out = {r["id"]: {c: norm(r[c], t) for c, t in cols.items()} for r in rows}
        self.assertEqual(len(out), len(rows), "ids repeat in %s" % target)
        return out, cols

    def run_sync(self, target, expect_kind=None, **opts):
        """A call and its job: (job id, sync_runs row, notices); the job must complete."""
        job, notices = self.sync(target, **opts)
        self.assertIsNotNone(job, "sf_bulk_sync returned NULL: %r" % notices)
        row = self.wait(job, 90)
        self.assertCompleted(row)
        run = self.sync_run(job)
        self.assertIsNotNone(run, "no sync_runs row for job %d" % job)
        if expect_kind:
            self.assertEqual(run["kind"], expect_kind, run["reason"])
        return job, run, notices

    def assertExact(self, target, mode="delete", keep=None, gone_marked=()):
        """The target holds exactly the store (every column): the live records of this test (and keep), with
        deletes => 'mark' also the bin rows, and the ids gone_marked with isdeleted true."""
        actual, cols = self.mirror(target)
        expected = {}
        for rid, rec in self.store(keep).items():
            if rec["IsDeleted"] == "true" and mode == "delete":
                continue
            expected[rid] = [store_row(rec, cols)]
        for rid in gone_marked:
            self.assertIn(rid, actual, "a record gone from Salesforce left the 'mark' mirror")
            self.assertEqual(actual[rid]["isdeleted"], "true", rid)
            expected[rid] = [actual[rid]]
        problems = mirror_diff(actual, expected)
        self.assertEqual(problems, [], "%s differs from the store:\n  %s" % (target, "\n  ".join(problems)))
        return actual

    # -- a checked run of a Mirror: its kind predicted, its rows, counts, watermark and state verified -------
    def window_covered(self, m, st):
        """Whether the /deleted/ window of an incremental run can serve it: Salesforce's deletion log complete
        (earliestDateAvailable) from the minute of the sync's cursor (where the last window ended), and the
        window's start, the cursor less the overlap, within the recycle bin's reach (else Salesforce refuses
        the window)."""
        now = self.now()
        cursor = epoch_of(st["cursor_text"] or st["watermark_text"])
        earliest = epoch_of(self.bin_info().get("earliestDateAvailable") or iso(0))
        reach = floor_minute(now) - float(self.emu.admin("GET", "/config")["recycle_bin_days"]) * 86400
        return earliest <= floor_minute(cursor) and floor_minute(cursor - m.overlap_s) >= reach

    def predict(self, m, st, formulas_due=False):
        if st is None or st["watermark"] is None:
            return "full"
        if formulas_due:
            return "formulas"
        return "incremental" if self.window_covered(m, st) else "full"

    def checked_run(self, m, formulas_due=False, what=""):
        """One run of mirror m, checked against the store and the model of what m held before it."""
        st0 = self.state(m.target)
        want_kind = self.predict(m, st0, formulas_due)
        sf_minute = iso(floor_minute(self.now()))  # Salesforce's current minute at the call
        job, run, notices = self.run_sync(m.target, **m.opts)
        kind = run["kind"]
        m.kinds.append(kind)
        ctx = "%s run %d (job %d, %s: %s)%s" % (m.target, len(m.kinds), job, kind, run["reason"], what)
        self.assertEqual(kind, want_kind, "unexpected kind of " + ctx)
        if kind == "full" and st0 is not None and st0["watermark"] is not None and not m.opts.get("reconcile"):
            self.assertTrue(any("a full run reconciles the mirror instead" in n for n in notices),
                            "no NOTICE says why the run is full: %r; %s" % (notices, ctx))
        scope = self.store(m.keep)
        actual, cols = self.mirror(m.target)
        expected, fetched, deferred = self.expected_rows(m, run, scope, cols, sf_minute)
        problems = mirror_diff(actual, expected)
        self.assertEqual(problems, [], "%s: the mirror is not the store:\n  %s" % (ctx, "\n  ".join(problems)))
        if kind != "formulas":
            # Independently of the model: every data column (formulas aside) is the store's.
            calculated = self.calculated(cols)
            for rid, got in actual.items():
                rec = scope.get(rid)
                if rec is None:
                    continue
                want = store_row(rec, cols)
                diff = {c: (got[c], want[c]) for c in cols if c not in calculated and got[c] != want[c]}
                self.assertEqual(diff, {}, "%s: %s (mirror, store)" % (ctx, rid))
            live = {rid for rid, rec in scope.items() if rec["IsDeleted"] == "false"}
            present = set(actual) - deferred
            if m.mode == "delete":
                self.assertEqual(present, live, ctx)
            else:
                self.assertEqual({rid for rid in present if actual[rid]["isdeleted"] == "false"}, live, ctx)
                self.assertEqual({rid for rid in set(scope) - live if rid in actual}, set(scope) - live, ctx)
        # What the run says it did.
        inserted, removed = set(actual) - set(m.prev), set(m.prev) - set(actual)
        changed = {rid for rid in set(actual) & set(m.prev) if actual[rid] != m.prev[rid]}
        # Each row counts once, and only when it changed (an overlap read again counts nothing); under 'mark' a
        # row marked deleted without coming back from the query counts as deleted, one that came back as updated.
        self.assertEqual(run["rows_inserted"], len(inserted), ctx)
        if m.mode == "delete":
            self.assertEqual((run["rows_updated"], run["rows_deleted"]), (len(changed), len(removed)), ctx)
        else:
            self.assertEqual(removed, set(), ctx)
            self.assertEqual(run["rows_updated"] + run["rows_deleted"], len(changed), ctx)
        if kind == "formulas":
            self.assertEqual((run["rows_inserted"], run["rows_deleted"]), (0, 0), ctx)
        # The watermark: the largest SystemModstamp of the rows read, never older than before (formulas: as it was).
        stamps = [scope[rid]["SystemModstamp"] for rid in fetched]
        if kind == "formulas":
            want_wm = {m.watermark}
        elif kind == "incremental":
            want_wm = {max(stamps + [m.watermark])}
        else:
            want_wm = {max(stamps)} if stamps else {m.watermark}
            if m.watermark is not None:
                want_wm.add(max(stamps + [m.watermark]))
        st = self.state(m.target)
        self.assertIn(st["watermark_text"], want_wm, ctx)
        self.assertEqual(run["watermark"], st["watermark_text"], ctx)
        if kind == "incremental":
            self.assertEqual(run["since"], iso(epoch_of(m.watermark) - m.overlap_s), ctx)
        self.assertEqual((st["last_job"], st["last_kind"], st["last_state"], st["last_error"],
                          st["last_applied_job"]), (job, kind, "completed", None, job), ctx)
        self.assertEqual((st["rows_inserted"], st["rows_updated"], st["rows_deleted"]),
                         (run["rows_inserted"], run["rows_updated"], run["rows_deleted"]), ctx)
        self.assertIsNotNone(st["lag"], ctx)
        created = self.pg.value("SELECT created_at FROM sf_bulk.jobs WHERE id = %d" % job)
        stamps_of = self.pg.json("SELECT last_full_at::text = %s AS full, last_formulas_at::text = %s AS formulas "
                                 "FROM sf_bulk_syncs WHERE last_job = %d"
                                 % (sql_literal(created), sql_literal(created), job))[0]
        self.assertEqual(stamps_of["full"], kind == "full", "last_full_at; " + ctx)
        self.assertEqual(stamps_of["formulas"], kind in ("full", "formulas"), "last_formulas_at; " + ctx)
        m.prev = actual
        m.watermark = st["watermark_text"]
        return job, run, notices

    def calculated(self, cols):
        """The target's columns of calculated (formula) fields, from describe."""
        return {r["name"].lower() for r in self.pg.json("SELECT name FROM sf_bulk_describe(%s) WHERE calculated"
                                                       % sql_literal(self.obj))} & set(cols)

    def expected_rows(self, m, run, scope, cols, sf_minute):
        """What m must hold after run: {id: [acceptable rows]}; also the ids the run read and those whose removal
        may wait for the next run: hard deletes in Salesforce's current minute, which /deleted/ (whole minutes)
        cannot list yet."""
        kind, prev = run["kind"], m.prev
        calculated = self.calculated(cols)
        expected, fetched, deferred = {}, set(), set()
        if kind == "formulas":
            # Id and the calculated fields of the live rows (query, not queryAll): only those columns change,
            # and no row comes or goes.
            for rid, row in prev.items():
                rec = scope.get(rid)
                if rec is None or not calculated:
                    expected[rid] = [row]
                    continue
                if rec["IsDeleted"] == "false":
                    fetched.add(rid)
                    fresh = store_row(rec, cols)
                    expected[rid] = [dict(row, **{c: fresh[c] for c in calculated})]
                else:
                    expected[rid] = [row]
            return expected, fetched, deferred
        for rid, rec in scope.items():
            if kind == "full" or rec["SystemModstamp"] >= run["since"]:
                fetched.add(rid)
                if rec["IsDeleted"] == "false" or m.mode == "mark":
                    expected[rid] = [store_row(rec, cols)]
            elif rid in prev:
                expected[rid] = [prev[rid]]  # not read: as it was (a formula changed since stays stale)
        if kind == "incremental":
            late = {d["id"] for d in self.bin_info().get("deletions", [])
                    if not d["inBin"] and d["deletedDate"] >= sf_minute}
        else:
            late = set()
        for rid, row in prev.items():
            if rid in scope:
                continue
            done = None if m.mode == "delete" else dict(row, isdeleted="true")
            if rid in late:
                deferred.add(rid)
                expected[rid] = [done, row]
            else:
                expected[rid] = [done]
        return expected, fetched, deferred


# ------------------------------------------------------------------------------------------------ workload
class Workload:
    """Random writes on a test's own records through the emulator's admin API (and now and then a Bulk upsert
    through sf_bulk), on the frozen emulator clock moved forward by random amounts between them."""

    def __init__(self, test, rng, types=("Customer", "Partner")):
        self.t, self.rng, self.types = test, rng, types
        self.n = 0
        self.created = set()
        self.log = []
        self.history = []
        self.refresh()

    def refresh(self):
        recs = {r["Id"]: r for r in self.t.emu.records(OBJ)
                if r["Id"] in self.created or (r.get("Name") or "").startswith(self.t.prefix)}
        self.created |= set(recs)
        self.live = sorted(rid for rid, r in recs.items() if r["IsDeleted"] == "false")
        self.bin = sorted(rid for rid, r in recs.items() if r["IsDeleted"] == "true")
        self.logged = sorted(d["id"] for d in self.t.bin_info().get("deletions", [])
                             if not d["inBin"] and d["id"] in self.created)

    def values(self, new=False):
        rng = self.rng
        v = {}
        choices = {
            "AccountNumber": lambda: "AN-%d" % rng.randrange(10 ** 6),
            "Industry": lambda: rng.choice(INDUSTRIES + [None]),
            "AnnualRevenue": lambda: rng.choice([None, 0, rng.randrange(10 ** 9), -rng.randrange(1000)]),
            "NumberOfEmployees": lambda: rng.choice([None, rng.randrange(100000)]),
            "Phone": lambda: rng.choice([None, "+1 555 %04d" % rng.randrange(10000)]),
            "Description": lambda: rng.choice(TEXTS + [None]),
            "Active__c": lambda: rng.choice([True, False]),
            "Customer_Since__c": lambda: rng.choice([None, "%04d-%02d-%02d" % (rng.randrange(1950, 2030),
                                                                              rng.randrange(1, 13),
                                                                              rng.randrange(1, 29))]),
            "BillingCity": lambda: rng.choice([None, "Zürich", "Lyon", "Ōsaka"]),
            "Rating": lambda: rng.choice([None, "Hot", "Warm", "Cold"]),
        }
        keys = list(choices) if new else rng.sample(list(choices), rng.randrange(1, 4))
        for k in keys:
            if new and rng.random() < 0.3:
                continue
            v[k] = choices[k]()
        if self.live and rng.random() < 0.25:
            v["ParentId"] = rng.choice(self.live)
        return v

    def new_record(self):
        self.n += 1
        v = {"Name": "%s%04d %s" % (self.t.prefix, self.n, self.rng.choice(["a", "b, c", 'd "e"'])),
             "External_Id__c": "%sx%04d" % (self.t.prefix, self.n), "Type": self.rng.choice(self.types)}
        v.update(self.values(new=True))
        return v

    def pick(self, pool, k):
        return self.rng.sample(pool, min(k, len(pool)))

    def tick(self):
        """A clock move: none (writes share a stamp), seconds, minutes or hours."""
        r = self.rng.random()
        s = 0 if r < 0.35 else self.rng.randrange(1, 60) if r < 0.65 else \
            self.rng.randrange(60, 1200) if r < 0.9 else self.rng.randrange(3600, 4 * 3600)
        self.t.advance(s)
        if s:
            self.log.append("clock +%ds" % s)

    def op(self, name):
        rng, t = self.rng, self.t
        k = rng.randrange(1, 4)
        if name == "insert":
            ids = t.seed([self.new_record() for _ in range(k)])
            self.created |= set(ids)
            return "insert %s" % ids
        if name == "update" and self.live:
            ids = self.pick(self.live, k)
            system = rng.random() < 0.3
            updates = []
            for rid in ids:
                v = dict(self.values(), Id=rid)
                if v.get("ParentId") == rid:
                    del v["ParentId"]
                updates.append(v)
            t.patch(updates, system=system)
            return "%s update %s" % ("system" if system else "user", ids)
        if name == "delete" and self.live:
            ids = self.pick(self.live, k)
            t.delete(ids)
            return "delete %s" % ids
        if name == "undelete" and self.bin:
            ids = self.pick(self.bin, k)
            t.undelete(ids)
            return "undelete %s" % ids
        if name == "hard" and (self.live or self.bin):
            ids = self.pick(self.live + self.bin, k)
            t.delete(ids, hard=True)
            return "hard delete %s" % ids
        if name == "merge" and len(self.live) >= 2:
            master, *losers = self.pick(self.live, rng.randrange(2, 4))
            values = {"Description": rng.choice(TEXTS)}
            if rng.random() < 0.5:
                values["NumberOfEmployees"] = rng.randrange(1000)
            t.merge(master, losers, values)
            return "merge %s <- %s" % (master, losers)
        if name == "purge" and (self.bin or self.logged):
            ids = self.pick(self.bin + self.logged, k)
            t.purge(ids)
            return "purge %s" % ids
        if name == "formula" and (self.live or self.bin):
            ids = self.pick(self.live + self.bin, k)
            t.set_formula({rid: rng.choice([None, "%d.%02d" % (rng.randrange(1000), rng.randrange(100))])
                           for rid in ids})
            return "formula %s" % ids
        if name == "upsert" and self.live:
            # A Bulk upsert by external id through sf_bulk: some rows new, some updating live records.
            recs = {r["Id"]: r for r in t.emu.records(OBJ) if r["Id"] in set(self.live)}
            rows = []
            for rid in self.pick(self.live, 2):
                rows.append((recs[rid]["External_Id__c"], recs[rid]["Name"] + " u", rng.randrange(5000)))
            for _ in range(rng.randrange(1, 3)):
                self.n += 1
                rows.append(("%sx%04d" % (t.prefix, self.n), "%s%04d bulk" % (t.prefix, self.n),
                             rng.randrange(5000)))
            values = ", ".join("(%s, %s, %d)" % (sql_literal(e), sql_literal(nm), n) for e, nm, n in rows)
            job = t.enqueue("SELECT sf_bulk_upsert('Account', $$SELECT * FROM (VALUES %s) v(\"External_Id__c\", "
                            "\"Name\", \"NumberOfEmployees\")$$, external_id => 'External_Id__c')" % values)
            row = t.wait(job)
            t.assertCompleted(row)
            t.assertEqual(row["records_failed"], 0, row)
            return "bulk upsert %s" % [e for e, _, _ in rows]
        return None

    OPS = ["insert"] * 4 + ["update"] * 5 + ["delete"] * 2 + ["undelete", "hard", "merge", "purge", "formula",
                                                            "formula"]
    # Each of these once in the first rounds, whatever the dice say (then at random): every kind of write is
    # in every run of the test.
    FORCED = ["insert", "update", "delete", "undelete", "hard", "merge", "purge", "formula", "upsert"]

    def ensure(self, name):
        """Makes name possible (a record in the bin to undelete or purge, two live ones to merge) and does it."""
        self.refresh()
        if len(self.live) < 3:
            self.op("insert")
            self.refresh()
        if name in ("undelete", "purge") and not self.bin:
            self.t.delete([self.rng.choice(self.live)])
            self.refresh()
        return self.op(name)

    def round(self, forced=None, upsert=False):
        """A random mix of writes (and clock moves between them), with forced among them: their description."""
        self.log = []
        n = self.rng.randrange(1, 7)
        at = self.rng.randrange(n)
        for i in range(n):
            self.refresh()
            did = self.op(self.rng.choice(self.OPS))
            if did:
                self.log.append(did)
            if forced and i == at:
                did = self.ensure(forced)
                if did:
                    self.log.append(did)
            self.tick()
        if upsert:
            self.refresh()
            did = self.op("upsert")
            if did:
                self.log.append(did)
        self.refresh()
        self.history.extend(self.log)
        return self.log

    def forced_purge(self):
        """A record deleted now and purged at once: its deletion leaves the log after the cursor (the deletion
        log's earliestDateAvailable moves past it), so the next run cannot be incremental."""
        self.refresh()
        if not self.live:
            self.op("insert")
            self.refresh()
        rid = self.rng.choice(self.live)
        self.t.delete([rid])
        self.t.purge([rid])
        self.log.append("delete + purge %s" % rid)
        self.refresh()


# ------------------------------------------------------------------------------------------------ tests
class SyncMirror(SyncTest):

    def seed_rng(self):
        seed = int(os.environ.get("SFB_SYNC_SEED") or random.randrange(1, 10 ** 9))
        log("    %s: seed %d (SFB_SYNC_SEED=%d replays it)" % (self._testMethodName, seed, seed))
        return random.Random(seed), seed

    def mirror_rounds(self, mirrors, rounds, rng, seed, formulas_every=5, purge_at=None):
        w = Workload(self, rng)
        for r in range(rounds):
            if r == 0:
                for _ in range(rng.randrange(4, 9)):
                    w.op("insert")
                w.refresh()
                did = ["insert %d records" % len(w.live)]
            else:
                did = w.round(forced=w.FORCED[r - 1] if r <= len(w.FORCED) else None, upsert=rng.random() < 0.12)
                if purge_at is not None and r == purge_at:
                    w.forced_purge()
                    did = w.log
            due = r > 0 and r % formulas_every == formulas_every - 1
            for m in mirrors:
                if due:
                    self.make_formulas_due(m)
                what = "; seed %d round %d after: %s" % (seed, r, "; ".join(did))
                _, run, _ = self.checked_run(m, formulas_due=due, what=what)
                if run["kind"] == "formulas":
                    # The changes of the round are the next run's.
                    self.checked_run(m, what=what + " (after the formulas run)")
            if r % 7 == 3:
                self.advance(rng.randrange(0, 3) * 60)
        done = {entry.split()[0] for entry in w.history} | {entry.split()[1] for entry in w.history}
        for name, said in (("insert", "insert"), ("update", "update"), ("delete", "delete"),
                           ("undelete", "undelete"), ("hard", "hard"), ("merge", "merge"), ("purge", "purge"),
                           ("formula", "formula"), ("upsert", "upsert")):
            if w.FORCED.index(name) < rounds - 1:
                self.assertIn(said, done, "no %s in the workload: %s" % (name, w.history))
        return w

    def make_formulas_due(self, m):
        """refresh_formulas falls due: the last formulas run (or full run) is put back beyond the interval."""
        self.pg.psql("UPDATE sf_bulk.syncs SET last_formulas_at = last_formulas_at - interval '2 days' "
                     "WHERE id = (SELECT id FROM sf_bulk_syncs WHERE target = %s);" % sql_literal(m.target))

    def test_randomized_mirror_is_the_store_every_round(self):
        rng, seed = self.seed_rng()
        rounds = max(20, int(os.environ.get("SFB_SYNC_ROUNDS") or 20))
        m = Mirror(self.target(), filter=self.filter(), refresh_formulas="1 day")
        self.mirror_rounds([m], rounds, rng, seed, purge_at=rounds // 2)
        # The target as created from describe: every field but compound and base64 ones, lower-cased, key id.
        described = self.pg.json("SELECT name, type FROM sf_bulk_describe(%s)" % sql_literal(OBJ))
        want_cols = [d["name"].lower() for d in described if d["type"] not in ("address", "location", "base64")]
        self.assertEqual(sorted(self.columns(m.target)), sorted(want_cols))
        self.assertEqual(self.pg.value("SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = "
                                       "i.indrelid AND a.attnum = ANY(i.indkey) WHERE i.indrelid = %s::regclass "
                                       "AND i.indisprimary" % sql_literal(m.target)), "id")
        letters = " ".join({"full": "F", "formulas": "c"}.get(k, "i") for k in m.kinds)
        log("    %s: kinds %s (F full, i incremental, c formulas)" % (self._testMethodName, letters))
        self.assertEqual(m.kinds[0], "full")
        self.assertGreaterEqual(m.kinds.count("full"), 2, "no full run forced by a purge: %s" % m.kinds)
        self.assertGreaterEqual(m.kinds.count("formulas"), 3, m.kinds)
        self.assertGreaterEqual(m.kinds.count("incremental"), rounds // 2, m.kinds)

    def test_one_object_into_two_targets(self):
        """deletes => 'mark' (bin rows and rows gone from Salesforce kept with isdeleted true) and a subset of
        fields with a filter of its own, side by side over random rounds: both exact."""
        rng, seed = self.seed_rng()
        marked = Mirror(self.target("_mark"), mode="mark", filter=self.filter(), refresh_formulas="1 day")
        subset = Mirror(self.target("_sub"), keep=lambda r: r.get("Type") == "Customer",
                        fields=["Name", "AnnualRevenue", "Customer_Since__c", FORMULA],
                        filter="%s AND Type = 'Customer'" % self.filter(), refresh_formulas="1 day")
        self.mirror_rounds([marked, subset], 7, rng, seed, formulas_every=4, purge_at=5)
        self.assertEqual(sorted(self.columns(subset.target)),
                         sorted(["id", "systemmodstamp", "isdeleted", "name", "annualrevenue", "customer_since__c",
                                 FORMULA_COL]))
        self.assertIn("true", {r["isdeleted"] for r in marked.prev.values()}, "no deleted row was kept")
        for m in (marked, subset):
            self.assertGreaterEqual(m.kinds.count("incremental"), 3, "%s: %s" % (m.target, m.kinds))
        syncs = self.pg.json("SELECT target, deletes, fields, filter FROM sf_bulk_syncs WHERE target IN (%s, %s) "
                             "ORDER BY target" % (sql_literal(marked.target), sql_literal(subset.target)))
        self.assertEqual([s["deletes"] for s in syncs], ["mark", "delete"])
        self.assertEqual(syncs[1]["fields"], ["Id", "SystemModstamp", "IsDeleted", "Name", "AnnualRevenue",
                                              "Customer_Since__c", FORMULA])
        self.assertEqual(syncs[1]["filter"], subset.opts["filter"])


class SyncClockSkew(SyncTest):

    def test_overlap_catches_a_write_stamped_behind_the_watermark(self):
        """A write stamped 60 s behind the largest SystemModstamp already applied (a late commit): the default
        5-minute overlap re-reads it; with overlap => '0 seconds' the same write is missed."""
        t0 = int(self.now())
        self.clock(set=iso(t0))
        back = iso(t0 - 3600)
        old = self.seed([{"Name": self.name("old"), "CreatedDate": back, "LastModifiedDate": back,
                          "SystemModstamp": back}])[0]
        main = self.seed([{"Name": self.name("main")}])[0]
        with_overlap = Mirror(self.target("_ov"), filter=self.filter())
        without = Mirror(self.target("_no"), filter=self.filter(), overlap="0 seconds")
        for m in (with_overlap, without):
            self.checked_run(m)
            self.assertEqual(m.watermark, iso(t0))
        self.advance(30)
        self.clock(skew_seconds=90, skew_writes=2)  # the next two writes are stamped at t0 - 60
        self.patch([{"Id": old, "Phone": "late"}])
        late = self.seed([{"Name": self.name("late")}])[0]
        recs = self.store()
        self.assertEqual((recs[old]["SystemModstamp"], recs[late]["SystemModstamp"]), (iso(t0 - 60),) * 2)
        self.assertEqual(recs[main]["SystemModstamp"], iso(t0))
        job, run, _ = self.checked_run(with_overlap)
        self.assertEqual((run["kind"], run["since"], run["rows_inserted"]), ("incremental", iso(t0 - 300), 1))
        soql = self.job_row(job)["soql"]
        self.assertTrue(soql.startswith("SELECT Id, SystemModstamp, IsDeleted, "), soql)
        self.assertTrue(soql.endswith(" FROM Account WHERE (%s) AND SystemModstamp >= %s"
                                      % (self.filter(), iso(t0 - 300).replace(".000Z", "Z"))), soql)
        self.assertExact(with_overlap.target)
        self.assertEqual(with_overlap.watermark, iso(t0), "the watermark is the largest stamp, not the latest read")
        # Without overlap: SystemModstamp >= the watermark itself; both writes stay unseen.
        _, run, _ = self.run_sync(without.target, expect_kind="incremental", **without.opts)
        self.assertEqual(run["since"], iso(t0))
        actual, cols = self.mirror(without.target)
        self.assertNotIn(late, actual)
        self.assertIsNone(actual[old]["phone"])
        self.assertEqual(sorted(actual), sorted([old, main]))
        self.assertEqual(self.state(without.target)["watermark_text"], iso(t0))


class SyncBadInput(SyncTest):

    def test_filter_salesforce_refuses_fails_the_job_and_changes_nothing(self):
        ids = self.seed([{"Name": self.name("a%d" % i), "NumberOfEmployees": i} for i in range(3)])
        m = Mirror(self.target(), filter=self.filter())
        self.checked_run(m)
        st0 = self.state(m.target)
        self.advance(30)
        self.patch([{"Id": ids[0], "NumberOfEmployees": 99}])
        # A condition on an id field with something that is no id: Salesforce refuses the query.
        bad = "%s AND Id = 'not-an-id'" % self.filter()
        job, _ = self.sync(m.target, filter=bad)
        row = self.wait(job)
        self.assertEqual(row["state"], "failed", row)
        self.assertIn("INVALID_QUERY_FILTER_OPERATOR", row["error"])
        self.assertIn("invalid ID field: not-an-id", row["error"])
        actual, _ = self.mirror(m.target)
        self.assertEqual(actual, m.prev, "the table was changed by a failed run")
        st = self.state(m.target)
        self.assertEqual(st["watermark_text"], st0["watermark_text"])
        self.assertEqual((st["last_job"], st["last_state"], st["last_applied_job"]), (job, "failed", st0["last_job"]))
        self.assertIn("invalid ID field: not-an-id", st["last_error"])
        self.assertIsNone(self.sync_run(job)["applied_at"])

    def test_call_time_refusals(self):
        """Refused by the call itself, naming the problem: an object Salesforce does not replicate, and a
        target whose existing columns cannot hold the fields."""
        self.seed([{"Name": self.name("a")}])
        self.emu.admin("PATCH", "/schema/%s" % OBJ, {"replicateable": False})
        try:
            e = self.sync_fails(self.target(), fresh_describe=True, filter=self.filter())
        finally:
            self.emu.admin("PATCH", "/schema/%s" % OBJ, {"replicateable": True})
            self.pg.psql("SELECT count(*) FROM sf_bulk_describe(%s, refresh => true);" % sql_literal(OBJ))
        self.assertIn(OBJ, e.stderr)
        self.assertIn("replicat", e.stderr)
        self.assertEqual(self.pg.value("SELECT to_regclass(%s) IS NULL" % sql_literal(self.target())), "t")
        t = self.target("_shape")
        self.pg.psql("CREATE TABLE %s (id text PRIMARY KEY, name date, systemmodstamp timestamptz, "
                     "isdeleted boolean);" % t)
        e = self.sync_fails(t, fields=["Name"], filter=self.filter())
        self.assertIn("name", e.stderr.lower())
        self.assertEqual(self.pg.value("SELECT count(*) FROM %s" % t), "0")


class SyncIfRunning(SyncTest):

    def hold_pages(self, ms, count=1):
        """The next result page downloads of the emulator answer late: a run stays unfinished meanwhile."""
        self.emu.fault({"method": "GET", "path": r"/jobs/query/[^/]+/results$", "action": "delay", "ms": ms,
                        "count": count})

    def test_skip_and_queue_while_a_run_is_unfinished(self):
        self.seed([{"Name": self.name("a%d" % i)} for i in range(3)])
        m = Mirror(self.target(), filter=self.filter())
        self.checked_run(m)
        self.advance(5)
        self.seed([{"Name": self.name("b%d" % i)} for i in range(2)])
        self.hold_pages(2500)
        # A Bulk query job (a run this small would otherwise be read by the call itself, over REST).
        first, _ = self.sync(m.target, filter=self.filter(), engine="bulk")
        self.assertIsNotNone(first)
        skipped, notices = self.sync(m.target, filter=self.filter(), if_running="skip")
        self.assertIsNone(skipped)
        self.assertTrue(any(str(first) in n for n in notices), "the NOTICE names the unfinished job: %r" % notices)
        self.assertIn(self.job_row(first)["state"], ("queued", "running"))
        e = self.sync_fails(m.target, filter=self.filter(), if_running="error")
        self.assertIn("run %d of the mirror of Account into %s is still unfinished" % (first, m.target), e.stderr)
        self.assertCompleted(self.wait(first))
        m.kinds.append("incremental")
        self.assertExact(m.target)
        # 'queue' (the default): a job of its own that starts after the unfinished one has finished.
        self.advance(5)
        self.seed([{"Name": self.name("c")}])
        self.hold_pages(1500)
        a, _ = self.sync(m.target, filter=self.filter(), engine="bulk")
        self.advance(5)
        self.seed([{"Name": self.name("d")}])
        b, _ = self.sync(m.target, filter=self.filter())
        self.assertNotEqual(a, b)
        ra, rb = self.wait(a), self.wait(b)
        self.assertCompleted(ra)
        self.assertCompleted(rb)
        self.assertGreaterEqual(self.pg.value("SELECT (SELECT started_at FROM sf_bulk_jobs WHERE id = %d) >= "
                                              "(SELECT finished_at FROM sf_bulk_jobs WHERE id = %d)" % (b, a)), "t")
        self.assertEqual([self.sync_run(j)["kind"] for j in (a, b)], ["incremental", "incremental"])
        self.assertExact(m.target)

    def test_a_run_queued_behind_another_never_undoes_its_newer_rows(self):
        """Run b is read (over REST) by its call while run a, called first, waits for Salesforce: b's snapshot is
        older than a's, yet b is applied after a. A record deleted before b's read and undeleted before a's
        snapshot must stay in the mirror: b's deletion of it is older than the copy a applied."""
        ids = self.seed([{"Name": self.name("a%d" % i)} for i in range(3)])
        m = Mirror(self.target(), filter=self.filter())
        self.checked_run(m)
        self.advance(400)
        self.delete([ids[0]])
        self.advance(90)  # past the deletion's minute: b's /deleted/ window lists it too
        # a's create answers 2.5 s late (and Salesforce takes its snapshot then).
        self.emu.fault({"method": "POST", "path": r"/jobs/query/?$", "action": "delay", "ms": 2500, "count": 1})
        a, _ = self.sync(m.target, filter=self.filter(), engine="bulk")
        poll(lambda: any(r["method"] == "POST" and re.search(r"/jobs/query/?$", r["path"])
                         for r in self.emu.requests(self.mark)) or self.job_row(a)["phase"] == "querying",
             10, 0.02, "run a's create to be sent")
        b, _ = self.sync(m.target, filter=self.filter())
        self.advance(5)
        self.undelete([ids[0]])
        self.assertCompleted(self.wait(a))
        self.assertCompleted(self.wait(b))
        self.assertEqual(self.pg.value("SELECT (SELECT sf_job_id IS NULL FROM sf_bulk.queries WHERE job_id = %d) "
                                       "AND (SELECT after_job FROM sf_bulk.jobs WHERE id = %d) = %d" % (b, b, a)),
                         "t", "b was read by its call and queued behind a")
        self.assertIn(ids[0], self.sync_run(b)["deleted_ids"] or [])
        self.assertIn(ids[0], self.mirror(m.target)[0], "b undid a's newer copy of the undeleted record")
        self.assertExact(m.target)

    def test_cron_style_calls_with_skip_converge(self):
        """A call every 0.2 s with if_running => 'skip' (what a pg_cron schedule does) while records keep
        changing, each run held a little: runs never overlap, some calls are skipped, and once the writes stop
        the mirror is the store."""
        ids = self.seed([{"Name": self.name("a%d" % i), "NumberOfEmployees": i} for i in range(5)])
        target = self.target()
        self.emu.fault({"method": "GET", "path": r"/jobs/query/[^/]+/results$", "action": "delay", "ms": 600,
                        "count": -1})
        jobs, skipped = [], 0
        for tick in range(14):
            if tick % 2 == 0:
                self.advance(7)
                self.patch([{"Id": ids[tick % 5], "NumberOfEmployees": 100 + tick}])
                if tick % 4 == 0:
                    self.seed([{"Name": self.name("t%d" % tick)}])
                if tick == 6:
                    self.delete([ids[4]])
            job, _ = self.sync(target, filter=self.filter(), if_running="skip")
            if job is None:
                skipped += 1
            else:
                jobs.append(job)
            time.sleep(0.2)
        self.assertGreater(skipped, 0, "no call was skipped")
        self.assertGreater(len(jobs), 1)

        def settled():
            job, _ = self.sync(target, filter=self.filter(), if_running="skip")
            if job is None:
                return False
            jobs.append(job)
            self.assertCompleted(self.wait(job))
            return True
        poll(settled, 30, 0.2, "a run after the last write")
        spans = self.pg.json("SELECT id, state, started_at >= lag(finished_at) OVER (ORDER BY id) AS after_previous "
                             "FROM sf_bulk_jobs WHERE id IN (%s) ORDER BY id" % ", ".join(map(str, jobs)))
        self.assertEqual({s["state"] for s in spans}, {"completed"})
        self.assertEqual({s["after_previous"] for s in spans[1:]}, {True}, "two runs of one mirror overlapped")
        self.assertExact(target)


class SyncDeletedWindow(SyncTest):

    def test_hard_deletes_are_removed_by_incremental_runs(self):
        """Rows hard-deleted (never in queryAll again, only in /deleted/), live ones and one from the recycle
        bin, are removed by the next incremental run; a soft delete comes through queryAll."""
        ids = self.seed([{"Name": self.name("a%d" % i)} for i in range(6)])
        m = Mirror(self.target(), filter=self.filter())
        self.checked_run(m)
        self.advance(40)
        self.delete(ids[:2], hard=True)
        self.delete([ids[2]])
        self.advance(90)  # past the minute of the deletions: /deleted/ answers for whole minutes
        _, run, _ = self.checked_run(m)
        self.assertEqual(run["kind"], "incremental")
        self.assertLessEqual(set(ids[:3]), set(run["deleted_ids"] or []))
        self.assertEqual(run["rows_deleted"], 3)
        self.advance(10)
        self.delete([ids[2], ids[3]], hard=True)  # a bin row (already gone from the mirror) and a live one
        self.advance(90)
        _, run, _ = self.checked_run(m)
        self.assertEqual((run["kind"], run["rows_deleted"]), ("incremental", 1))
        self.assertIn(ids[3], run["deleted_ids"])
        self.assertEqual(sorted(m.prev), sorted(ids[4:]))

    def test_a_purge_after_the_cursor_forces_a_full_run(self):
        ids = self.seed([{"Name": self.name("a%d" % i)} for i in range(5)])
        m = Mirror(self.target(), filter=self.filter())
        self.checked_run(m)
        self.advance(120)
        self.delete([ids[0]])
        self.purge([ids[0]])  # gone from queryAll and from /deleted/: only a full run can see it is gone
        self.advance(120)
        _, run, notices = self.checked_run(m)
        self.assertEqual(run["kind"], "full")
        self.assertTrue(any("full" in n for n in notices), notices)
        self.assertNotIn(ids[0], m.prev)
        self.assertEqual(run["rows_deleted"], 1)
        self.advance(120)
        self.checked_run(m)
        self.assertEqual(m.kinds, ["full", "full", "incremental"])

    def test_a_window_beyond_the_recycle_bins_reach_forces_a_full_run(self):
        """The recycle bin keeps 0.01 days (14.4 minutes) here: 20 minutes after the last run its /deleted/
        window reaches no longer (and a row deleted then has expired from the bin meanwhile)."""
        self.emu.config(recycle_bin_days=0.01)
        ids = self.seed([{"Name": self.name("a%d" % i)} for i in range(4)])
        m = Mirror(self.target(), filter=self.filter())
        self.checked_run(m)
        self.advance(60)
        self.delete([ids[0]])
        self.advance(20 * 60)
        self.delete([ids[1]], hard=True)
        self.patch([{"Id": ids[2], "Phone": "1"}])
        self.advance(90)
        self.assertNotIn(ids[0], self.store(), "the bin kept the row beyond its reach")
        _, run, notices = self.checked_run(m)
        self.assertEqual(run["kind"], "full")
        self.assertTrue(any("full" in n for n in notices), notices)
        self.assertEqual(sorted(m.prev), sorted(ids[2:]))


class SyncSchemaDrift(SyncTest):

    def test_new_fields_become_columns_and_a_removed_field_fails_the_call(self):
        tag = uuid.uuid4().hex[:6]
        text_field, flag_field = "Sync_Note_%s__c" % tag, "Sync_Flag_%s__c" % tag
        ids = self.seed([{"Name": self.name("a%d" % i)} for i in range(3)])
        m = Mirror(self.target(), filter=self.filter(), fresh_describe=True)
        self.checked_run(m)
        self.addCleanup(self.drop_field, flag_field)
        self.addCleanup(self.drop_field, text_field)
        self.emu.admin("POST", "/schema/%s/fields" % OBJ, {"name": text_field, "type": "string", "length": 40})
        # A new checkbox is false on every existing record, and no SystemModstamp moves.
        self.emu.admin("POST", "/schema/%s/fields" % OBJ, {"name": flag_field, "type": "boolean",
                                                          "defaultValue": "false"})
        self.advance(20)
        self.patch([{"Id": ids[0], text_field: "noted"}])
        job, run, notices = self.run_sync(m.target, **m.opts)
        for f in (text_field, flag_field):
            self.assertTrue(any(f in n for n in notices), "no NOTICE names %s: %r" % (f, notices))
        cols = self.columns(m.target)
        self.assertEqual((cols.get(text_field.lower()), cols.get(flag_field.lower())), ("text", "boolean"))
        self.assertExact(m.target)
        self.assertIn(flag_field, self.state(m.target)["fields"])
        # A field that is synced and no longer described: the call fails naming it; nothing changes.
        before, _ = self.mirror(m.target)
        st0 = self.state(m.target)
        self.drop_field(text_field)
        self.advance(20)
        self.patch([{"Id": ids[1], "Phone": "2"}])
        e = self.sync_fails(m.target, **m.opts)
        self.assertIn(text_field, e.stderr)
        self.assertEqual(self.columns(m.target), cols)
        self.assertEqual(self.mirror(m.target)[0], before)
        st = self.state(m.target)
        self.assertEqual((st["watermark_text"], st["last_job"]), (st0["watermark_text"], st0["last_job"]))

    def drop_field(self, field):
        try:
            self.emu.admin("DELETE", "/schema/%s/fields/%s" % (OBJ, field))
        except RuntimeError as e:
            if "404" not in str(e):
                raise
        self.pg.psql("SELECT count(*) FROM sf_bulk_describe(%s, refresh => true);" % sql_literal(OBJ))


class SyncReconcile(SyncTest):

    def make_due(self, target, column):
        """The last full (or formulas) run put back two days: the interval is due by PostgreSQL's clock, which
        schedules them (moving the emulator's cannot)."""
        self.pg.psql("UPDATE sf_bulk.syncs SET %s = %s - interval '2 days' WHERE id = (SELECT id FROM "
                     "sf_bulk_syncs WHERE target = %s);" % (column, column, sql_literal(target)))

    def test_reconcile_removes_what_incremental_runs_cannot_see(self):
        """A record renamed out of the filter: incremental runs read only what matches it, so it stays until
        the reconcile interval is due; that run is a full one and removes it."""
        ids = self.seed([{"Name": self.name("a%d" % i)} for i in range(4)])
        m = Mirror(self.target(), filter=self.filter(), reconcile="1 day")
        self.checked_run(m)
        self.advance(30)
        self.patch([{"Id": ids[0], "Name": "elsewhere-" + self.prefix}, {"Id": ids[1], "Phone": "1"}])
        _, run, _ = self.run_sync(m.target, expect_kind="incremental", **m.opts)
        self.assertEqual(run["rows_updated"], 1)
        self.make_due(m.target, "last_full_at")
        self.advance(30)
        _, run, notices = self.run_sync(m.target, expect_kind="full", **m.opts)
        self.assertIn("reconcile every", run["reason"])
        self.assertEqual(run["rows_deleted"], 1)
        self.assertEqual(sorted(self.assertExact(m.target)), sorted(ids[1:]))
        st = self.state(m.target)
        self.assertEqual(st["last_kind"], "full")
        # Not due again for a day.
        self.advance(30)
        self.run_sync(m.target, expect_kind="incremental", **m.opts)


class SyncTargetReplaced(SyncTest):

    def test_a_dropped_target_starts_the_mirror_again(self):
        """The target dropped (and made again by the call, from describe): the mirror forgets its state and
        runs full, into the new table."""
        ids = self.seed([{"Name": self.name("a%d" % i)} for i in range(3)])
        m = Mirror(self.target(), filter=self.filter())
        self.checked_run(m)
        self.advance(30)
        self.checked_run(m)
        self.assertEqual(m.kinds, ["full", "incremental"])
        self.pg.psql("DROP TABLE %s;" % m.target)
        self.advance(30)
        self.patch([{"Id": ids[0], "Phone": "9"}])
        _, run, _ = self.run_sync(m.target, expect_kind="full", **m.opts)
        self.assertEqual(run["rows_inserted"], 3)
        self.assertExact(m.target)
        self.assertEqual(self.state(m.target)["watermark_text"], iso(self.now()))


class SyncRoles(SyncTest):

    def test_each_role_sees_and_runs_only_its_own_mirrors(self):
        """sf_bulk_syncs shows a role its own mirrors (superusers all); a mirror is its owner's: another role's
        call on the same target is refused."""
        roles = []
        for n in (1, 2):
            role = ("sr%d_" % n + re.sub(r"[^a-z0-9]", "_", self.tag.lower()))[:60]
            self.pg.psql("CREATE ROLE %s LOGIN; GRANT USAGE ON FOREIGN SERVER emu TO %s; "
                         "CREATE USER MAPPING FOR %s SERVER emu OPTIONS (%s); CREATE SCHEMA %s AUTHORIZATION %s;"
                         % (role, role, role, harness.mapping_options(), role, role))
            roles.append(role)
        self.seed([{"Name": self.name("a%d" % i)} for i in range(2)])
        target = "%s.mirror" % roles[0]
        job, _ = self.sync(target, user=roles[0], filter=self.filter())
        self.assertCompleted(self.wait(job, user=roles[0]))
        self.assertEqual(self.pg.value("SELECT count(*) FROM %s" % target, user=roles[0]), "2")
        self.assertEqual(self.pg.value("SELECT owner::text FROM sf_bulk.syncs s JOIN sf_bulk.sync_runs r ON "
                                       "r.sync_id = s.id WHERE r.job_id = %d" % job), roles[0])
        # The schedule's next call, by the owner: an incremental run.
        self.advance(5)
        self.seed([{"Name": self.name("b")}])
        again, _ = self.sync(target, user=roles[0], filter=self.filter())
        self.assertCompleted(self.wait(again, user=roles[0]))
        self.assertEqual(self.sync_run(again)["kind"], "incremental")
        self.assertEqual(self.pg.value("SELECT count(*) FROM %s" % target, user=roles[0]), "3")
        mine = self.pg.json("SELECT target, owner::text, last_state FROM sf_bulk_syncs", user=roles[0])
        self.assertEqual(mine, [{"target": target, "owner": roles[0], "last_state": "completed"}])
        self.assertEqual(self.pg.json("SELECT target FROM sf_bulk_syncs", user=roles[1]), [])
        self.assertEqual(self.pg.value("SELECT count(*) FROM sf_bulk_syncs WHERE target = %s" % sql_literal(target)),
                         "1")
        self.pg.psql("GRANT USAGE ON SCHEMA %s TO %s; GRANT ALL ON %s TO %s;" % (roles[0], roles[1], target, roles[1]))
        e = self.sync_fails(target, user=roles[1], filter=self.filter())
        self.assertIn("is kept by role %s" % roles[0], e.stderr)


class SyncEngines(SyncTest):
    """A small incremental run is read by the call over REST queryAll, page by page (no Bulk query job, none of
    the org's daily ones spent); one larger than sf_bulk.rest_max_rows, or with sf_bulk.scan_engine = 'bulk', is a
    Bulk query job. Both leave the mirror exact."""

    REST = re.compile(r"^/services/data/v[\d.]+/(queryAll|query/)")
    BULK_CREATE = re.compile(r"^/services/data/v[\d.]+/jobs/query/?$")

    def changes(self, ids, n):
        self.advance(400)  # past the overlap: only the changes below are read
        new = self.seed([{"Name": self.name("n%d" % i)} for i in range(n)])
        self.patch([{"Id": ids[0], "Phone": "555-0100"}])
        self.delete([ids[1]])
        self.advance(5)
        return new

    def requests_since(self, mark):
        rest = [r for r in self.emu.requests(mark) if r["method"] == "GET" and self.REST.search(r["path"])]
        bulk = [r for r in self.emu.requests(mark) if r["method"] == "POST" and self.BULK_CREATE.search(r["path"])]
        return rest, bulk

    def test_a_small_run_is_read_over_rest_page_by_page(self):
        ids = self.seed([{"Name": self.name("a%d" % i)} for i in range(4)])
        m = Mirror(self.target(), filter=self.filter())
        self.checked_run(m)
        self.changes(ids, 8)
        self.emu.config(rest_query_batch_size=3)  # 9 changed records: 3 pages (tearDown restores the config)
        mark = self.emu.log_seq()
        _, run, _ = self.checked_run(m)
        self.assertEqual(run["kind"], "incremental")
        self.assertEqual((run["rows_inserted"], run["rows_updated"], run["rows_deleted"]), (8, 1, 1))
        rest, bulk = self.requests_since(mark)
        self.assertEqual(bulk, [], "a small run creates no Bulk query job")
        self.assertEqual(len(rest), 4, "queryAll and its nextRecordsUrl pages: %r" % [r["path"] for r in rest])
        self.assertEqual(self.pg.value("SELECT sf_job_ids IS NULL AND pages = 1 AND api_calls = 4 FROM sf_bulk_jobs "
                                       "WHERE id = %d" % run["job_id"]), "t", "no Salesforce job; 4 query pages")
        self.assertExact(m.target)

    def test_a_run_above_rest_max_rows_or_forced_is_a_bulk_job(self):
        ids = self.seed([{"Name": self.name("a%d" % i)} for i in range(6)])
        m = Mirror(self.target(), filter=self.filter())
        self.checked_run(m)
        for setting in ("SET sf_bulk.rest_max_rows = 3", "SET sf_bulk.scan_engine = bulk"):
            self.changes(ids[2:] if setting.endswith("bulk") else ids, 4)
            mark = self.emu.log_seq()
            p = self.pg.psql("%s; SELECT sf_bulk_sync(%s, %s, filter => %s);" % (
                setting, sql_literal(self.obj), sql_literal(m.target), sql_literal(self.filter())))
            job = int(p.split()[-1])
            self.assertCompleted(self.wait(job, 90))
            rest, bulk = self.requests_since(mark)
            self.assertEqual(len(bulk), 1, "%s: one Bulk query job" % setting)
            # Above rest_max_rows the first REST page told the size (then a Bulk job); forced: no REST at all.
            self.assertEqual(len(rest), 0 if setting.endswith("bulk") else 1, setting)
            self.assertEqual(self.sync_run(job)["kind"], "incremental")
            self.assertExact(m.target)


class SyncTypes(SyncTest):
    """Invoice__c holds a field of every remaining type: each lands in its column, and a target with a quoted,
    mixed-case schema and name works like any other."""
    obj = "Invoice__c"
    name_field = "Invoice_Key__c"

    def invoice(self, n, **values):
        v = {"Invoice_Key__c": self.name("K%02d" % n), "Status__c": ["Draft", "Sent", "Paid"][n % 3],
             "Channels__c": ["Email;Portal", "Post", None][n % 3], "Amount__c": "%d.%02d" % (n * 100, n),
             "Tax_Rate__c": "%d.5" % n, "Quantity__c": str(n * 3), "Due_Date__c": "2026-0%d-1%d" % (1 + n % 9, n % 10),
             "Sent_At__c": "2025-11-0%dT2%d:15:0%d.000Z" % (1 + n % 9, n % 4, n % 10),
             "Cutoff_Time__c": "1%d:30:00.000Z" % (n % 10), "Notes__c": "line 1\nline 2, \"%d\"" % n,
             "Memo__c": "memo;%d" % n, "Portal_Url__c": "https://example.org/%d" % n}
        v.update(values)
        return v

    def test_every_type_into_its_column(self):
        schema = "Sync Types %s" % self.tag[-6:]
        self.pg.psql('CREATE SCHEMA "%s";' % schema)
        target = '"%s"."Inv %s"' % (schema, self.tag[-8:])
        ids = self.seed([self.invoice(n) for n in range(5)])
        self.set_formula({ids[0]: "123.45", ids[1]: "0.10"}, field="Total_With_Tax__c")
        m = Mirror(target, filter="Invoice_Key__c LIKE '%s%%'" % self.prefix, refresh_formulas="1 day")
        self.checked_run(m)
        cols = self.columns(target)
        self.assertNotIn("scan__c", cols)   # base64
        self.assertNotIn("site__c", cols)   # location (compound)
        self.assertEqual((cols["channels__c"], cols["cutoff_time__c"], cols["due_date__c"], cols["sent_at__c"],
                          cols["amount__c"]),
                         ("text[]", "time without time zone", "date", "timestamp with time zone", "numeric(18,2)"))
        self.assertEqual(self.pg.value("SELECT channels__c[2] FROM %s WHERE id = %s" % (target, sql_literal(ids[0]))),
                         "Portal")
        self.assertTrue(all(r["name"].startswith("INV-") for r in m.prev.values()), "auto-numbers mirrored")
        self.advance(30)
        self.patch([{"Id": ids[1], "Channels__c": "Email;Post;Portal", "Cutoff_Time__c": "23:59:59.000Z",
                     "Notes__c": None}, {"Id": ids[2], "Amount__c": "0.01", "Status__c": "Void"}])
        self.delete([ids[3]])
        self.set_formula({ids[4]: "9.99"}, field="Total_With_Tax__c")
        _, run, _ = self.checked_run(m)
        # Two records changed, and the formula of a third re-read within the overlap (all rows share the
        # first run's stamp, the watermark).
        self.assertEqual((run["kind"], run["rows_updated"], run["rows_deleted"]), ("incremental", 3, 1))
        self.set_formula({ids[0]: "1.00"}, field="Total_With_Tax__c")
        self.make_formulas_due(m)
        _, run, _ = self.checked_run(m, formulas_due=True)
        self.assertEqual((run["kind"], run["calculated"], run["rows_updated"]),
                         ("formulas", ["Total_With_Tax__c"], 1))
        self.assertExact(target)

    make_formulas_due = SyncMirror.make_formulas_due


# Purges move the deletion log's earliestDateAvailable of every mirror of the object (and with it the kind of
# their next run when a cursor lies before it): the tests that purge run last.
ORDER = ["SyncEngines", "SyncBadInput", "SyncClockSkew", "SyncIfRunning", "SyncReconcile", "SyncRoles", "SyncSchemaDrift",
         "SyncTargetReplaced", "SyncTypes", "SyncMirror", "SyncDeletedWindow"]


def load_tests(loader, tests, pattern):
    classes = [c for c in globals().values() if isinstance(c, type) and issubclass(c, SyncTest)
               and c is not SyncTest and c.__module__ == __name__]
    assert sorted(c.__name__ for c in classes) == sorted(ORDER), "add the class to ORDER"
    suite = harness.unittest.TestSuite()
    for name in ORDER:
        suite.addTests(loader.loadTestsFromTestCase(globals()[name]))
    return suite
