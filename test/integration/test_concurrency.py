"""Done means 10 and 11: several jobs driven in parallel (at most sf_bulk.max_parallel_jobs), and users who
each see and control only their own jobs."""

import json
import subprocess
import time

import harness
from harness import RE_ANY_JOB, RE_TOKEN, IntegrationTest, log, mapping_options, poll, sql_literal


def max_overlap(intervals):
    events = sorted([(s, 1) for s, e in intervals] + [(e, -1) for s, e in intervals], key=lambda x: (x[0], x[1]))
    cur = best = 0
    for _, d in events:
        cur += d
        best = max(best, cur)
    return best


class Parallel(IntegrationTest):

    def test_six_jobs_in_parallel(self):
        self.emu.config(processing_delay_ms=1200)
        calls = "\n".join(
            """SELECT sf_bulk_insert('Lead', $$SELECT %s || '-' || n AS "LastName", 'Par' AS "Company"
                                               FROM generate_series(1, 10) n$$);""" % sql_literal("%s-%d" % (self.tag, i))
            for i in range(6))
        out = self.pg.psql("BEGIN;\n%s\nCOMMIT;\n" % calls)
        jobs = [int(x) for x in out.split() if x.isdigit()]
        self.assertEqual(len(jobs), 6, out)
        rows = [self.wait(j, 90) for j in jobs]
        for row in rows:
            self.assertCompleted(row)
            self.assertEqual(row["records_processed"], 10)
        self.assertEqual(len(self.store_by("LastName", self.tag + "-")), 60)

        # Each Salesforce job is "driven" from its upload to its last result download.
        reqs = self.new_requests()
        spans = {}
        for r in reqs:
            m = RE_ANY_JOB.match(r["path"])
            if m:
                s, e = spans.get(m.group(1), (r["start_epoch_ms"], r["start_epoch_ms"]))
                spans[m.group(1)] = (min(s, r["start_epoch_ms"]), max(e, r["start_epoch_ms"] + r["duration_ms"]))
        sf_ids = [row["sf_job_ids"][0] for row in rows]
        self.assertEqual(set(spans), set(sf_ids))
        overlap = max_overlap([spans[j] for j in sf_ids])
        first = min(s for s, _ in spans.values())
        log("    parallel: at most %d Salesforce jobs in flight at once; spans (ms from first request) %s"
            % (overlap, sorted((s - first, e - first) for s, e in spans.values())))
        self.assertGreaterEqual(overlap, 3, "jobs were not processed in parallel")
        self.assertLessEqual(overlap, 4, "more jobs in flight than sf_bulk.max_parallel_jobs (4)")
        tokens = [r for r in reqs if RE_TOKEN.match(r["path"])]
        self.assertLessEqual(len(tokens), 1, "the access token is shared by the jobs, not fetched per job")

    def test_slow_job_does_not_block_another(self):
        """One job's result download stalls for 6 s; a job enqueued meanwhile completes long before."""
        self.emu.fault({"path": r"/successfulResults/?$", "action": "stall", "ms": 6000, "count": 1})
        slow = self.enqueue("""SELECT sf_bulk_insert('Lead', $$SELECT %s AS "LastName", 'Slow' AS "Company"$$)"""
                            % sql_literal(self.tag + "-slow"))
        poll(lambda: any(r["fault"] is not None for r in self.emu.requests(self.mark)) or
             (self.job_row(slow) or {}).get("phase") == "fetching results", 15, 0.02, "the stalled download")
        t = time.monotonic()
        fast = self.enqueue("""SELECT sf_bulk_insert('Lead', $$SELECT %s AS "LastName", 'Fast' AS "Company"$$)"""
                            % sql_literal(self.tag + "-fast"))
        row = self.wait(fast, 30)
        elapsed = time.monotonic() - t
        log("    a job enqueued while another's download stalls completed in %.0f ms" % (elapsed * 1000))
        self.assertCompleted(row)
        self.assertLess(elapsed, 4.0, "the stalled job blocked the other")
        self.assertIn(self.job_row(slow)["state"], ("running",), "the slow job was still stalled")
        self.assertCompleted(self.wait(slow, 30))


class Users(IntegrationTest):

    def setUp(self):
        super().setUp()
        if self.pg.value("SELECT count(*) FROM pg_roles WHERE rolname IN ('it_alice', 'it_bob')") == "0":
            for role in ("it_alice", "it_bob"):
                self.pg.psql("""CREATE ROLE %(r)s LOGIN;
                                GRANT USAGE ON FOREIGN SERVER emu TO %(r)s;
                                CREATE USER MAPPING FOR %(r)s SERVER emu OPTIONS (%(o)s);""" % {"r": role,
                                                                                            "o": mapping_options()})

    def test_users_see_only_their_jobs(self):
        # Both enqueue at the same time, from their own sessions.
        procs = {}
        for role in ("it_alice", "it_bob"):
            sql = """SELECT sf_bulk_insert('Lead', $$SELECT %s || '-' || n AS "LastName", 'Users' AS "Company"
                                                    FROM generate_series(1, 5) n$$);""" % sql_literal(
                "%s-%s" % (self.tag, role))
            procs[role] = subprocess.Popen(self.pg.psql_argv(role) + ["-c", sql], stdout=subprocess.PIPE,
                                           stderr=subprocess.PIPE, text=True)
        jobs = {}
        for role, p in procs.items():
            out, err = p.communicate(timeout=60)
            self.assertEqual(p.returncode, 0, err)
            jobs[role] = int(out.strip())
        alice, bob = jobs["it_alice"], jobs["it_bob"]
        for role, mine, other in (("it_alice", alice, bob), ("it_bob", bob, alice)):
            row = self.wait(mine, 60, user=role)
            self.assertCompleted(row)
            self.assertEqual(row["owner"], role)

        for role, mine, other in (("it_alice", alice, bob), ("it_bob", bob, alice)):
            seen = [r["id"] for r in self.pg.json("SELECT id FROM sf_bulk_jobs", user=role)]
            self.assertEqual(seen, [mine], "%s sees exactly its own job" % role)
            seen = [r["id"] for r in self.pg.json("SELECT id FROM sf_bulk.jobs", user=role)]
            self.assertEqual(seen, [mine], "%s reads only its own row of sf_bulk.jobs" % role)
            err = self.pg.psql_fail("SELECT * FROM sf_bulk_wait(%d, '1 s');" % other, user=role)
            self.assertIn("does not exist or is not yours", err.stderr)
            err = self.pg.psql_fail("SELECT * FROM sf_bulk_abort(%d);" % other, user=role)
            self.assertIn("does not exist or is not yours", err.stderr)
            err = self.pg.psql_fail("SELECT sf_bulk_retry(%d);" % other, user=role)
            self.assertIn("does not exist or is not yours", err.stderr)
            # Purging everything purges only one's own jobs.
            self.assertEqual(self.pg.value("SELECT sf_bulk.delete_jobs(ARRAY[%d]::bigint[])" % other, user=role), "0")
            self.assertEqual(self.pg.value("SELECT count(*) FROM sf_bulk.jobs WHERE id = %d" % other), "1",
                             "%s deleted another role's job" % role)
            for fn in ("sf_bulk_successful", "sf_bulk_failed", "sf_bulk_unprocessed"):
                self.assertEqual(self.pg.value("SELECT count(*) FROM %s(%d)" % (fn, other), user=role), "0",
                                 "%s reads %s of another role's job" % (role, fn))
            self.assertEqual(self.pg.value("SELECT count(*) FROM %s(%d)" % ("sf_bulk_successful", mine), user=role),
                             "5", "%s reads its own results" % role)
            self.assertEqual(self.pg.value("SELECT count(*) FROM sf_bulk.results WHERE job_id = %d" % other,
                                           user=role), "0")
            self.assertEqual(self.pg.value("SELECT count(*) FROM sf_bulk.chunks WHERE job_id = %d" % other,
                                           user=role), "0")
            # Nor can the other role's rows be changed directly.
            err = self.pg.psql_fail("UPDATE sf_bulk.jobs SET abort_requested = true WHERE id = %d;" % other,
                                    user=role)
            self.assertIn("permission denied", err.stderr)

        # The superuser sees both, with their results.
        both = self.pg.json("SELECT id, owner::text AS owner FROM sf_bulk_jobs WHERE id IN (%d, %d) ORDER BY id"
                            % (alice, bob))
        self.assertEqual({(r["id"], r["owner"]) for r in both}, {(alice, "it_alice"), (bob, "it_bob")})
        for j in (alice, bob):
            self.assertEqual(self.pg.value("SELECT count(*) FROM sf_bulk_successful(%d)" % j), "5")
        self.assertEqual(len(self.store_by("LastName", self.tag + "-")), 10)


class Databases(IntegrationTest):

    def test_two_databases_each_get_a_worker(self):
        """Jobs in two databases run at the same time, each database with its own worker; dropping the second
        database afterwards is not blocked by its worker."""
        other = "integration_b"
        self.pg.psql("CREATE DATABASE %s;" % other, db="postgres")
        try:
            self.pg.psql("""CREATE EXTENSION sf_bulk;
                            CREATE SERVER emu FOREIGN DATA WRAPPER salesforce OPTIONS (login_url %s);
                            CREATE USER MAPPING FOR postgres SERVER emu OPTIONS (%s);"""
                         % (sql_literal(harness.ENV.emulator.url), mapping_options()), db=other)
            self.emu.config(processing_delay_ms=1500)
            sql = """SELECT sf_bulk_insert('Lead', $$SELECT %s || '-' || n AS "LastName", 'Db' AS "Company"
                                                    FROM generate_series(1, 5) n$$);"""
            job_a = self.enqueue(sql % sql_literal(self.tag + "-a"))
            job_b = int(self.pg.psql(sql % sql_literal(self.tag + "-b"), db=other).strip())
            workers = poll(lambda: (lambda rows: rows if len(rows) == 2 else None)(self.pg.json(
                "SELECT datname FROM pg_stat_activity WHERE backend_type = 'sf_bulk worker' ORDER BY 1")),
                10, 0.05, "a worker in each database")
            self.assertEqual([w["datname"] for w in workers], [harness.DB, other])
            self.assertCompleted(self.wait(job_a))
            row_b = json_row(self.pg.psql("SELECT row_to_json(w) FROM sf_bulk_wait(%d, '60 s') w;" % job_b, db=other))
            self.assertCompleted(row_b)
            self.assertEqual(len(self.store_by("LastName", self.tag + "-a-")), 5)
            self.assertEqual(len(self.store_by("LastName", self.tag + "-b-")), 5)
        finally:
            t = time.monotonic()
            p = self.pg.psql("DROP DATABASE %s;" % other, db="postgres", check=False, verbose=True)
            elapsed = time.monotonic() - t
            if p.returncode != 0:
                self.pg.psql("DROP DATABASE IF EXISTS %s WITH (FORCE);" % other, db="postgres", check=False)
        self.assertEqual(p.returncode, 0, "DROP DATABASE was blocked: %s" % p.stderr.strip())
        self.assertLess(elapsed, 4.0, "DROP DATABASE waited %.1f s for the worker" % elapsed)


def json_row(out):
    return json.loads(out.strip().splitlines()[-1])
