"""A bounded randomized soak: dozens of jobs of random sizes, some rows Salesforce refuses, some jobs aborted,
while waves of random faults hit every kind of call. Every job must reach a terminal state before the deadline,
and the ledger must agree with the emulator's store: each row at most once in Salesforce (exactly once when its
job completed), the stored successes are exactly the rows in the store, every row sent is accounted for
(successful + failed + unprocessed), and no Salesforce job received two uploads.

The size is bounded for the test command (SFB_SOAK_JOBS, default 40); the seed is printed and can be replayed
with SFB_SOAK_SEED. A long soak: SFB_SOAK_JOBS=300 test/integration/run_tests soak
"""

import collections
import os
import random
import time

from harness import RE_PUT, IntegrationTest, log, poll, sql_literal

FAULT_KINDS = [
    {"method": "PUT", "path": r"/batches/?$", "status": 503},
    {"method": "PUT", "path": r"/batches/?$", "action": "drop", "when": "request", "after_bytes": 100},
    {"method": "POST", "path": r"/jobs/ingest/?$", "status": 500, "after_processing": True},
    {"method": "POST", "path": r"/jobs/ingest/?$", "status": 429, "headers": {"Retry-After": "1"}},
    {"method": "GET", "path": r"/jobs/ingest/[0-9A-Za-z]+/?$", "status": 503},
    {"method": "PATCH", "path": r"/jobs/ingest/[0-9A-Za-z]+/?$", "status": 502},
    {"method": "PATCH", "path": r"/jobs/ingest/[0-9A-Za-z]+/?$", "action": "reset"},
    {"method": "GET", "path": r"/(successful|failed)Results/?$", "action": "drop", "when": "response"},
    {"method": "GET", "path": r"/unprocessedrecords/?$", "status": 503},
    {"method": "POST", "path": r"/services/oauth2/token/?$", "status": 503},
    "expire_tokens",
]


class Soak(IntegrationTest):

    def test_random_faults_every_job_terminal_and_ledger_consistent(self):
        jobs_n = int(os.environ.get("SFB_SOAK_JOBS", "40"))
        seed = int(os.environ.get("SFB_SOAK_SEED", str(int(time.time()) % 100000)))
        rnd = random.Random(seed)
        log("    soak: %d jobs, seed %d (replay with SFB_SOAK_SEED=%d)" % (jobs_n, seed, seed))
        self.emu.config(processing_delay_ms=100, batch_size=50)

        jobs = {}  # job id -> (prefix, rows, failing rows)
        aborted = set()
        faults_added = 0
        t0 = time.monotonic()
        for i in range(jobs_n):
            if rnd.random() < 0.5:
                kind = rnd.choice(FAULT_KINDS)
                if kind == "expire_tokens":
                    self.emu.admin("POST", "/tokens/expire", {})
                    faults_added += 1
                elif not any(f["method"] == kind["method"] and f["path"] == kind["path"] and
                             f.get("hits", 0) < f.get("count", 1)
                             for f in self.emu.admin("GET", "/faults")["faults"]):
                    # At most one live fault per call kind: one burst stays shorter than the retry budget of a
                    # call (successive bursts on one upload can still spend it; see the check below).
                    self.emu.fault(dict(kind, count=rnd.randint(1, 3)))
                    faults_added += 1
            rows = rnd.choice([1, 3, 20, 75, 200])
            prefix = "%s-j%d-" % (self.tag, i)
            job = self.enqueue("""SELECT sf_bulk_insert('Lead', $$SELECT n AS id, %s || n AS "LastName",
                                      CASE WHEN n %% 9 = 4 THEN NULL ELSE 'Soak' END AS "Company"
                                      FROM generate_series(1, %d) n$$, key => 'id')""" % (sql_literal(prefix), rows))
            jobs[job] = (prefix, rows, {n for n in range(1, rows + 1) if n % 9 == 4})
            if rnd.random() < 0.1:
                time.sleep(rnd.random() * 0.5)
                self.pg.psql("SELECT 1 FROM sf_bulk_abort(%d);" % job)
                aborted.add(job)
            time.sleep(rnd.random() * 0.2)

        ids = ",".join(str(j) for j in jobs)

        def all_terminal():
            return self.pg.value("SELECT count(*) FROM sf_bulk.jobs WHERE id IN (%s) AND state IN ('queued', 'running')"
                                 % ids) == "0"
        poll(all_terminal, 300, 0.25, "every soak job to reach a terminal state")
        elapsed = time.monotonic() - t0

        states = collections.Counter()
        gave_up = 0
        store = self.store_by("LastName", self.tag + "-j")
        self.assertEqual({k for k, v in store.items() if len(v) > 1}, set(), "rows stored twice in Salesforce")
        for job, (prefix, rows, failing) in jobs.items():
            row = self.job_row(job)
            states[row["state"]] += 1
            if job not in aborted and row["state"] != "completed":
                # Only transient faults are injected, but waves can follow each other onto the same upload:
                # the one other legitimate end is a retry budget spent, said as such.
                self.assertEqual(row["state"], "failed", "job %d: %r" % (job, row))
                self.assertTrue((row["error"] or "").startswith("gave up after"), "job %d: %r" % (job, row))
            counts = self.pg.json("""SELECT (SELECT count(*) FROM sf_bulk_successful(%(j)d)) AS ok,
                                            (SELECT count(*) FROM sf_bulk_failed(%(j)d)) AS failed,
                                            (SELECT count(*) FROM sf_bulk_unprocessed(%(j)d)) AS unprocessed,
                                            (SELECT count(DISTINCT key) FROM sf_bulk.results WHERE job_id = %(j)d)
                                              AS keys""" % {"j": job})[0]
            if row["state"] == "failed":
                gave_up += 1
            in_store = {k for k in store if k.startswith(prefix) and k[len(prefix):].isdigit()}
            self.assertEqual(counts["ok"] + counts["failed"] + counts["unprocessed"], rows,
                             "job %d: rows unaccounted for: %r" % (job, counts))
            self.assertEqual(counts["keys"], rows, "job %d: a result without its own key" % job)
            ok_keys = {r["key"] for r in self.pg.json("SELECT key FROM sf_bulk_successful(%d)" % job)}
            self.assertEqual({prefix + k for k in ok_keys}, in_store,
                             "job %d: successful results and the store disagree" % job)
            if row["state"] == "completed":
                self.assertEqual(counts["failed"], len(failing))
                self.assertEqual(counts["ok"], rows - len(failing))

        # A PUT answered 401 (session expired) was refused before Salesforce looked at it: the worker gets a new
        # token and sends it again, once. Every other PUT may have delivered the rows, so only one per job.
        puts = collections.Counter(RE_PUT.match(r["path"]).group(1) for r in self.new_requests()
                                   if r["method"] == "PUT" and RE_PUT.match(r["path"]) and r["status"] != 401)
        accepted = {j: info["uploadCount"] for j, info in self.emu.jobs().items() if info.get("uploadCount", 0) > 1}
        self.assertEqual(accepted, {}, "the emulator accepted two uploads into one Salesforce job")
        twice = {j: n for j, n in puts.items() if n > 1}
        detail = [(r["seq"], r["method"], r["path"].rsplit("/", 2)[-2:], r["status"], r.get("fault"), r.get("dropped"))
                  for r in self.new_requests() if any(j in r["path"] for j in twice)]
        self.assertEqual(twice, {}, "a Salesforce job got two uploads: %r" % (detail,))
        faulted = sum(1 for r in self.new_requests() if r.get("fault"))
        log("    soak: %d jobs in %.1f s: %s (%d of them a spent retry budget); %d fault waves, %d requests hit by a "
            "fault, %d uploads" % (jobs_n, elapsed, dict(states), gave_up, faults_added, faulted, sum(puts.values())))
