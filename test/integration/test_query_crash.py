"""Crash-safe query jobs, proven: the worker is SIGKILLed, or the cluster stopped in immediate mode, at every step
boundary of a query job (reached with the test-only sf_bulk.test_pause_at: the worker logs "sf_bulk test pause
at ..." right after committing the step and holds still), then everything starts again. Each time the job must
complete with every row in the target exactly once (count and distinct ids), no result page fetched twice except
the one whose download the crash put in doubt (emulator request log), and no file left behind.
"""

import collections
import re
import time

from harness import PausedWorker, poll
from test_query import QueryTest

ROWS = 12
PAGE = 5  # three result pages: 5, 5, 2
PAUSE_RE = r'sf_bulk test pause at "%s": job %d upload (\d+), worker pid (\d+)'

# (boundary = the step just committed, the page whose GET is in doubt after the crash)
BOUNDARIES = [
    ("query:creating", False),     # intent to create recorded, POST not sent
    ("query:polling", False),      # the Salesforce job exists
    ("query:listing", False),      # JobComplete; no resultPages set read yet
    ("query:downloading", False),  # every page listed, none downloaded
    ("page:downloading", True),    # a page's GET is about to go out: in doubt after the crash
    ("page:downloaded", False),    # a page is in its file
    ("query:loading", False),      # every page downloaded, nothing loaded
    ("query:done", False),         # loaded and completed in one transaction; the page files still there
]


class QueryCrashResume(PausedWorker, QueryTest):
    outcomes = []

    @classmethod
    def tearDownClass(cls):
        if cls.outcomes:
            print("    query crash point x outcome:", file=__import__("sys").stderr)
            for boundary, mode, summary in cls.outcomes:
                print("      %-20s %-10s %s" % (boundary, mode, summary), file=__import__("sys").stderr)

    def crash_at(self, boundary, in_doubt, mode):
        self.seed_leads(ROWS)
        self.emu.config(query_page_size=PAGE)
        t = self.table("id text PRIMARY KEY, lastname text")
        self.set_pause(boundary)
        job = self.enqueue_query("SELECT Id, LastName FROM Lead WHERE LastName LIKE '%s%%'" % self.tag, t)
        found = poll(lambda: re.search(PAUSE_RE % (re.escape(boundary), job), self.pg.server_log()), 30, 0.05,
                     "the worker to pause at %s" % boundary)
        worker_pid = int(found.group(2))
        # The processes after the crash must start without the setting (the paused worker never reads it again).
        self.pg.psql("ALTER SYSTEM RESET sf_bulk.test_pause_at; SELECT pg_reload_conf();")
        poll(lambda: self.pg.value("SHOW sf_bulk.test_pause_at") == "", 10, 0.05, "the setting to clear")
        if boundary != "query:done":
            self.assertEqual(self.job_row(job)["state"], "running")
        # The worker holds still: the committed page steps are what the next one resumes from. Pages in step
        # downloading (the paused one, and with parallel downloads any other whose answer was not committed)
        # are in doubt and fetched again; a downloaded page never is.
        in_doubt_pages = {p["path_or_locator"].partition("?")[2] for p in self.pages(job)
                          if p["step"] == "downloading"}
        if in_doubt:
            self.assertTrue(in_doubt_pages, "no page in doubt at the pause")

        if mode == "SIGKILL":
            self.pg.kill(worker_pid)
            time.sleep(0.3)
            self.pg.wait_ready()
        else:
            self.pg.restart("immediate")

        row = self.wait(job, 90)
        self.assertCompleted(row)
        self.assertEqual(row["rows_loaded"], ROWS)
        self.assertEqual(self.pg.value("SELECT count(*) || '/' || count(DISTINCT id) FROM %s" % t),
                         "%d/%d" % (ROWS, ROWS), "every row exactly once")
        self.assertEqual((row["pages"], row["pages_downloaded"]), (3, 3))

        gets = collections.Counter((r["query"] or "") for r in self.page_gets() if r.get("status") == 200)
        self.assertEqual(len(gets), 3, gets)
        twice = {q: n for q, n in gets.items() if n > 1}
        self.assertLessEqual(set(twice), in_doubt_pages, "a page downloaded before the crash was fetched again")
        self.assertTrue(all(n == 2 for n in twice.values()), gets)
        poll(lambda: not self.spool_for(job), 20, 0.1, "the job's page files to go")
        sf_jobs = [r for r in self.new_requests() if r["method"] == "POST" and r["path"].endswith("/jobs/query")]
        summary = "completed; %d create(s), %d page GET(s), %d page(s) in doubt" % (
            len(sf_jobs), sum(gets.values()), len(in_doubt_pages))
        self.outcomes.append((boundary, mode, summary))


def _make(boundary, in_doubt, mode):
    def test(self):
        self.crash_at(boundary, in_doubt, mode)
    test.__doc__ = "%s at '%s'" % (mode, boundary)
    return test


for _index, (_boundary, _in_doubt) in enumerate(BOUNDARIES):
    for _mode in ("SIGKILL", "immediate"):
        _name = "test_%02d_%s_%s" % (_index, _mode.lower(), re.sub(r"\W+", "_", _boundary))
        setattr(QueryCrashResume, _name, _make(_boundary, _in_doubt, _mode))
