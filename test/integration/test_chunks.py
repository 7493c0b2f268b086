"""Done means 2: a job larger than max_upload_mb is cut into uploads of at most that size, one Salesforce job
each, and every row reaches Salesforce exactly once."""

import collections
import hashlib

from harness import RE_CREATE, RE_PUT, IntegrationTest, log, sql_literal

ROWS = 1250
UNIT = 35  # md5 (32) + ',"' + LF: a value that must be quoted, cut nowhere but between rows
REPEAT = 57  # about 2,000 characters per row, about 2.6 MB in all


class MultiChunk(IntegrationTest):

    def test_multi_chunk_upload(self):
        t = "chunks_" + self.tag.replace("-", "_")
        self.pg.psql("""
            CREATE TABLE %(t)s AS
              SELECT n, %(p)s || '-' || n AS key, repeat(md5(n::text) || E',"\\n', %(r)d) AS description
                FROM generate_series(1, %(rows)d) n;""" % {"t": t, "p": sql_literal(self.tag), "r": REPEAT,
                                                           "rows": ROWS})
        # Insert, not upsert: a row uploaded twice would show up as two records with the same LastName.
        job = self.enqueue("""SELECT sf_bulk_insert('Lead', $$SELECT key AS "LastName", 'Chunky' AS "Company",
                                description AS "Description" FROM %s ORDER BY n$$, max_upload_mb => 1)""" % t)
        row = self.wait(job, 120)
        self.assertCompleted(row)
        self.assertEqual(row["rows_spooled"], ROWS)
        self.assertGreater(row["bytes_spooled"], 2_400_000)

        reqs = self.new_requests()
        puts = [r for r in reqs if r["method"] == "PUT" and RE_PUT.match(r["path"])]
        creates = [r for r in reqs if r["method"] == "POST" and RE_CREATE.match(r["path"])]
        sizes = [r["request_bytes"] for r in puts]
        log("    multi-chunk: %d bytes spooled, %d uploads of %s bytes" % (row["bytes_spooled"], len(puts), sizes))
        self.assertGreaterEqual(len(puts), 3, "at least three uploads")
        for r in puts:
            self.assertLessEqual(r["request_bytes"], 1_000_000, "an upload exceeds max_upload_mb => 1")
            self.assertEqual(r["status"], 201, "upload answered %s" % r["status"])
        self.assertEqual(sum(sizes), row["bytes_spooled"], "the uploads carry exactly the spooled bytes")

        per_job = collections.Counter(RE_PUT.match(r["path"]).group(1) for r in puts)
        self.assertTrue(all(n == 1 for n in per_job.values()), "one PUT per Salesforce job: %r" % per_job)
        sf_ids = row["sf_job_ids"] or []
        self.assertEqual(len(sf_ids), len(set(sf_ids)))
        self.assertEqual(set(sf_ids), set(per_job), "sf_bulk_jobs lists exactly the Salesforce jobs uploaded to")
        self.assertEqual(row["uploads"], len(sf_ids), "uploads equals the number of Salesforce jobs")
        self.assertEqual(len(creates), len(sf_ids), "one job created per upload")
        chunks = self.chunks(job)
        self.assertEqual(len(chunks), len(sf_ids))
        self.assertEqual(sum(c["rows"] for c in chunks), ROWS)
        self.assertTrue(all(c["step"] == "done" for c in chunks), [c["step"] for c in chunks])

        # Every row reached the store exactly once.
        store = self.store_by("LastName", self.tag + "-")
        self.assertEqual(len(store), ROWS, "rows lost: %d of %d in the store" % (len(store), ROWS))
        dups = {k: len(v) for k, v in store.items() if len(v) != 1}
        self.assertEqual(dups, {}, "rows inserted more than once")
        for key, recs in store.items():
            n = key.rsplit("-", 1)[1]
            expected = (hashlib.md5(n.encode()).hexdigest() + ',"\n') * REPEAT
            self.assertEqual(recs[0]["Description"], expected, "Description of %s arrived intact" % key)

        # Result rows = input rows, each key once.
        counts = self.pg.json("""SELECT count(*) AS n, count(DISTINCT fields->>'LastName') AS keys,
                                        count(DISTINCT sf_id) AS ids FROM sf_bulk_successful(%d)""" % job)[0]
        self.assertEqual(counts, {"n": ROWS, "keys": ROWS, "ids": ROWS})
        other = self.pg.value("SELECT (SELECT count(*) FROM sf_bulk_failed(%d)) + (SELECT count(*) FROM "
                              "sf_bulk_unprocessed(%d))" % (job, job))
        self.assertEqual(other, "0")
        self.assertEqual(row["records_processed"], ROWS)
        self.assertEqual(row["records_failed"], 0)
        # The spool files are gone once the job is done.
        self.assertEqual(self.spool_for(job), [])

    def test_one_upload_fails_others_complete(self):
        """Three uploads; Salesforce fails the first job created. The job ends 'failed' naming that upload, the
        other uploads complete, and their result rows are stored (none of the failed one's rows are lost)."""
        t = "chunkfail_" + self.tag.replace("-", "_")
        rows = 1200
        self.pg.psql("""CREATE TABLE %s AS SELECT n, %s || '-' || n AS key, repeat('x', 2000) AS description
                          FROM generate_series(1, %d) n;""" % (t, sql_literal(self.tag), rows))
        self.emu.config(next_job_fails={"after_batches": 0, "message": "InvalidBatch : emulated failure"})
        job = self.enqueue("""SELECT sf_bulk_insert('Lead', $$SELECT key AS "LastName", 'Chunky' AS "Company",
                                description AS "Description" FROM %s ORDER BY n$$, max_upload_mb => 1)""" % t)
        row = self.wait(job, 120)
        self.assertEqual(row["state"], "failed", "job row: %r" % (row,))
        self.assertIn("InvalidBatch : emulated failure", row["error"] or "")
        chunks = self.chunks(job)
        self.assertGreaterEqual(len(chunks), 3)
        steps = sorted(c["step"] for c in chunks)
        self.assertEqual(steps.count("failed"), 1, steps)
        self.assertEqual(steps.count("done"), len(chunks) - 1, steps)
        failed_chunk = [c for c in chunks if c["step"] == "failed"][0]
        done_rows = sum(c["rows"] for c in chunks if c["step"] == "done")
        ok = int(self.pg.value("SELECT count(*) FROM sf_bulk_successful(%d)" % job))
        unprocessed = int(self.pg.value("SELECT count(*) FROM sf_bulk_unprocessed(%d)" % job))
        self.assertEqual(ok, done_rows, "the completed uploads' rows are stored")
        self.assertEqual(unprocessed, failed_chunk["rows"], "the failed upload's rows come back as unprocessed")
        self.assertEqual(len(self.store_by("LastName", self.tag + "-")), done_rows)
        self.assertEqual(self.spool_for(job), [])
