"""Crash-safe mirror runs: an incremental sf_bulk_sync run with inserts, updates, soft and hard deletes pending is
interrupted by a SIGKILL of the worker at every step boundary of its query job (reached with the test-only
sf_bulk.test_pause_at, as test_query_crash does), then the cluster restarts. Each time the job completes, the
mirror is exactly the store, the run's counts say what one application of it did, and the watermark moved once,
to the largest SystemModstamp read, in the same transaction as the rows (a run after it reads from there and
changes nothing).

The records are Contacts (their own deletion log: the purges of test_sync's Accounts do not reach them).
"""

import re
import time

from harness import PausedWorker, poll
from test_query_crash import BOUNDARIES, PAUSE_RE
from test_sync import Mirror, SyncTest, epoch_of, iso

ROWS = 10
PAGE = 4  # the incremental run reads 12 rows (the overlap reads the unchanged ones again): three result pages


class SyncCrashResume(PausedWorker, SyncTest):
    obj = "Contact"
    name_field = "LastName"
    outcomes = []

    @classmethod
    def tearDownClass(cls):
        if cls.outcomes:
            print("    sync crash point x outcome:", file=__import__("sys").stderr)
            for boundary, summary in cls.outcomes:
                print("      %-20s %s" % (boundary, summary), file=__import__("sys").stderr)
        from test_sync import restore_clock
        restore_clock()

    def start_clock(self):
        """Frozen an hour behind the real time, so that Salesforce's clock never runs ahead of PostgreSQL's in
        these tests (test_sync has the cases where it does)."""
        self.clock(set=iso(time.time() - 3600), freeze=True, skew_seconds=0)

    def contact(self, n, **values):
        v = {"LastName": self.name("%02d" % n), "FirstName": "F%d" % n, "Score__c": "%d.25" % n,
             "Birthdate": "19%02d-03-%02d" % (50 + n, 1 + n), "Last_Contacted__c": "2025-11-0%dT10:00:0%d.000Z"
             % (1 + n % 9, n % 10), "Department": 'Dept, "%d"' % n}
        v.update(values)
        return v

    def crash_at(self, boundary, engine="bulk"):
        """engine 'bulk': the run is a Bulk query job (every boundary); None: the call reads the small run over
        REST and the job comes to the worker downloaded (the load's boundaries only)."""
        self.emu.config(query_page_size=PAGE)
        ids = self.seed([self.contact(n) for n in range(ROWS)])
        m = Mirror(self.target(), filter=self.filter())
        self.checked_run(m)
        w0 = m.watermark
        # Pending: 3 inserts, 3 updates (one by automation, which moves only SystemModstamp), 2 soft deletes,
        # 1 hard delete. The rows read again unchanged (within the overlap) count nothing.
        self.advance(400)
        new = self.seed([self.contact(n) for n in range(ROWS, ROWS + 3)])
        self.advance(5)
        self.patch([{"Id": ids[0], "Title": "CEO"}, {"Id": ids[1], "Score__c": None}])
        self.patch([{"Id": ids[2], "Department": "Automation"}], system=True)
        self.delete(ids[3:5])
        self.delete([ids[5]], hard=True)
        self.advance(90)  # the deletions in a past minute of the emulator's clock
        w1 = max(r["SystemModstamp"] for r in self.store().values())
        self.assertGreater(w1, w0)

        self.set_pause(boundary)
        job, _ = self.sync(m.target, filter=self.filter(), engine=engine)
        found = poll(lambda: re.search(PAUSE_RE % (re.escape(boundary), job), self.pg.server_log()), 30, 0.05,
                     "the worker to pause at %s" % boundary)
        worker_pid = int(found.group(2))
        self.pg.psql("ALTER SYSTEM RESET sf_bulk.test_pause_at; SELECT pg_reload_conf();")
        poll(lambda: self.pg.value("SHOW sf_bulk.test_pause_at") == "", 10, 0.05, "the setting to clear")
        before = self.state(m.target)
        if boundary != "query:done":
            self.assertEqual(self.job_row(job)["state"], "running")
            self.assertEqual(before["watermark_text"], w0, "the watermark moved before the load")
            self.assertEqual(self.mirror(m.target)[0], m.prev, "the target changed before the load")
        self.pg.kill(worker_pid)
        time.sleep(0.3)
        self.pg.wait_ready()

        row = self.wait(job, 90)
        self.assertCompleted(row)
        self.assertEqual(self.pg.value("SELECT sf_job_id IS NULL FROM sf_bulk.queries WHERE job_id = %d" % job),
                         "f" if engine == "bulk" else "t", "a Salesforce job only for a Bulk run")
        _, run, _ = self.checked_run_after(m, job)
        self.assertEqual((run["rows_inserted"], run["rows_updated"], run["rows_deleted"]), (3, 3, 3))
        self.assertEqual(row["rows_loaded"], ROWS + 3 - 1)
        self.assertEqual(m.watermark, w1)
        self.assertEqual(sorted(m.prev), sorted(ids[:3] + ids[6:] + new))
        self.assertEqual(self.pg.value("SELECT count(*) FROM sf_bulk.sync_runs WHERE job_id = %d AND applied_at "
                                       "IS NOT NULL" % job), "1")
        poll(lambda: not self.spool_for(job), 20, 0.1, "the job's page files to go")
        # The watermark moved once, to w1: the next run reads from w1 less the overlap and changes nothing.
        self.advance(5)
        _, again, _ = self.checked_run(m)
        self.assertEqual((again["kind"], again["since"]), ("incremental", iso(epoch_of(w1) - 300)))
        self.assertEqual((again["rows_inserted"], again["rows_updated"], again["rows_deleted"]), (0, 0, 0))
        pages = self.pg.value("SELECT pages || ' pages, ' || rows_loaded || ' rows' FROM sf_bulk_jobs WHERE id = %d"
                              % job)
        self.outcomes.append(("%s (%s)" % (boundary, engine or "rest"),
                              "completed; %s; 3/3/3 applied once; watermark %s" % (pages, w1)))

    def checked_run_after(self, m, job):
        """checked_run for a run already started (and finished): the same checks on its result."""
        run = self.sync_run(job)
        self.assertEqual(run["kind"], "incremental", run["reason"])
        self.assertEqual(run["since"], iso(epoch_of(m.watermark) - m.overlap_s))
        self.assertIsNotNone(run["applied_at"])
        scope = self.store()
        actual, cols = self.mirror(m.target)
        expected, _, _ = self.expected_rows(m, run, scope, cols, "9999-12-31T00:00:00.000Z")
        from test_sync import mirror_diff
        problems = mirror_diff(actual, expected)
        self.assertEqual(problems, [], "after the crash the mirror is not the store:\n  " + "\n  ".join(problems))
        self.assertExact(m.target)
        st = self.state(m.target)
        self.assertEqual((st["last_job"], st["last_kind"], st["last_state"], st["last_applied_job"]),
                         (job, "incremental", "completed", job))
        self.assertEqual((st["rows_inserted"], st["rows_updated"], st["rows_deleted"]),
                         (run["rows_inserted"], run["rows_updated"], run["rows_deleted"]))
        self.assertEqual(run["watermark"], st["watermark_text"])
        m.prev, m.watermark = actual, st["watermark_text"]
        return job, run, None


def _make(boundary, engine):
    def test(self):
        self.crash_at(boundary, engine)
    test.__doc__ = "SIGKILL of the worker at '%s' during an incremental run (%s)" % (boundary, engine or "rest")
    return test


for _index, (_boundary, _in_doubt) in enumerate(BOUNDARIES):
    setattr(SyncCrashResume, "test_%02d_%s" % (_index, re.sub(r"\W+", "_", _boundary)), _make(_boundary, "bulk"))
# A small run read over REST by the call reaches the worker downloaded: only the load's boundaries are left.
for _index, _boundary in enumerate(["query:loading", "query:done"], len(BOUNDARIES)):
    setattr(SyncCrashResume, "test_%02d_rest_%s" % (_index, re.sub(r"\W+", "_", _boundary)),
            _make(_boundary, None))
