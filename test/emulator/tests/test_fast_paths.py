"""The emulator's speed-ups must not change anything observable. Each fast path is checked here against the plain
implementation it replaces: in-process (the module is imported), no server."""

import argparse
import csv
import io
import os
import random
import sys
import time
import unittest

from emu import EMU_DIR

sys.path.insert(0, EMU_DIR)
from sf_emulator import common, ingest, jobs, state, store  # noqa: E402


def reference_make_id(prefix, n):
    """make_id as specified: n in 10 base-62 digits after prefix + "Em", then the 18-character checksum."""
    body = ""
    while n:
        n, r = divmod(n, 62)
        body = common._B62[r] + body
    return common.to18(prefix + "Em" + body.rjust(10, "0"))


class FastPathUnits(unittest.TestCase):
    def test_make_id_matches_reference(self):
        rnd = random.Random(7)
        ns = list(range(0, 5000)) + [rnd.randrange(62 ** 10) for _ in range(20000)]
        ns += [62 ** 4 - 1, 62 ** 4, 62 ** 5 - 1, 62 ** 5, 62 ** 5 + 1, 62 ** 10 - 1]
        for prefix in ("00Q", "001", "a0B"):
            for n in ns:
                self.assertEqual(common.make_id(prefix, n), reference_make_id(prefix, n), (prefix, n))

    def test_shuffle_is_random_shuffle(self):
        for n in (0, 1, 2, 3, 17, 1000, 4097):
            for seed in ("1:750Em0000000001AAA:successfulResults", "2:x:failedResults"):
                a, b = list(range(n)), list(range(n))
                random.Random(seed).shuffle(a)
                ingest.shuffle(random.Random(seed), b)
                self.assertEqual(a, b)

    def test_quote_all_lines_is_csv_writer(self):
        rnd = random.Random(3)
        pool = ["", "a", 'q"uote', '""', ",", ";", "\t", "|", "line\nbreak", "cr\r\n", "\x00", "é€", " x ", "#N/A"]
        for delim in (",", "\t", "|", ";", "^", "`"):
            rows = [[rnd.choice(pool) + rnd.choice(pool) for _ in range(rnd.randrange(1, 6))] for _ in range(500)]
            buf = io.StringIO()
            csv.writer(buf, delimiter=delim, lineterminator="\r\n", quoting=csv.QUOTE_ALL).writerows(rows)
            self.assertEqual(ingest.csv_bytes(ingest.csv_quote_all_lines(rows, delim), "\r\n"), buf.getvalue().encode())

    def test_split_plain_csv_is_csv_reader(self):
        """Texts it takes (no quotes, no NUL, one line ending) give csv.reader's non-empty rows; others None."""
        rnd = random.Random(11)
        alpha = ["a", "b", ",", ";", "\t", '"', "\n", "\r", "\r\n", "\x00", " ", "\u00e9"]
        taken = 0
        for _ in range(20000):
            text = "".join(rnd.choice(alpha) for _ in range(rnd.randrange(0, 30)))
            delim = rnd.choice([",", ";", "\t"])
            rows = ingest.split_plain_csv(text, delim)
            if rows is None:
                continue
            taken += 1
            expect = [r for r in csv.reader(io.StringIO(text, newline=""), delimiter=delim, strict=True) if r]
            self.assertEqual(rows, expect, repr(text))
        self.assertGreater(taken, 1000)

    def test_plain_predicates_only_accept_unchanged_values(self):
        """plain(column) True => conv(v) == v without error for every non-empty cell."""
        schema = store.Schema(os.path.join(EMU_DIR, "metadata.json"))
        samples = ["", "0", "7", "007", "+5", "-3", "12", "12.5", "12.50", "0.00", "1e3", "123456789", "1234567890",
                   "2147483648", "\u0663", "true", "false", "TRUE", "1", "yes", "AMER", "amer", "Bulk", "Working - Contacted",
                   "a@b.org", "a@b.org\n", "bad@", "x" * 81, "2000-02-29", "1900-02-29", "2020-04-31", "2020-12-31",
                   "1699-12-31", "4000-12-31", "4001-01-01", "2020-01-01T00:00:00.000Z", "2020-01-01T24:00:00.000Z",
                   "2020-01-01T00:00:00Z", "2020-01-01T00:00:00.000+01:00", "2020-02-30T00:00:00.000Z",
                   "2020-06-30T23:59:59.999Z", "1.005", "999.99", "100000000"]
        rnd = random.Random(5)
        checked = 0
        for obj in schema.objects.values():
            for i, f in enumerate(obj.fields.values()):
                conv = store.make_converter(f, i)
                if conv is None or conv.plain is None:
                    continue
                for _ in range(300):
                    col = tuple(rnd.choice(samples) for _ in range(rnd.randrange(1, 4)))
                    if not conv.plain(col):
                        continue
                    for v in filter(None, col):
                        checked += 1
                        try:
                            self.assertEqual(conv(v), v, (f.name, f.type, v))
                        except common.RowError as e:
                            self.fail("plain() accepted %r for %s (%s): %s" % (v, f.name, f.type, e.text))
        self.assertGreater(checked, 1000)


# -- differential: the column-at-a-time path against the exact per-row path -----------------------------------
POOL = {
    "External_Id__c": ["", "#N/A", "A1", "a1", "B%d", "B%d", "x" * 256, "q\"uote%d"],
    "FirstName": ["", "#N/A", "Ann", "Bob %d", "x" * 41, "Jo,e", "li\nne"],
    "LastName": ["", "#N/A", "Smith", "O'Neil \"Jr\", %d", "y" * 81, "L%d"],
    "Company": ["", "#N/A", "Acme", "Co %d", "z" * 256],
    "Email": ["", "#N/A", "a@b.org", "bad", "x%d@example.org", ("e" * 75) + "@x.org"],
    "Status": ["", "#N/A", "Working - Contacted", "Bogus"],
    "Region__c": ["", "#N/A", "AMER", "amer"],
    "Interests__c": ["", "Bulk;Streaming", "Bulk;Nope"],
    "NumberOfEmployees": ["", "#N/A", "0", "%d", "007", "+5", "-3", "12.5", "100000000", "abc"],
    "AnnualRevenue": ["", "#N/A", "0", "%d", "0100", "12.5", "-7", "1234567890123456789", ".5"],
    "Score__c": ["", "#N/A", "%d.25", "1.5", "1.555", "0.00", "1e5", "12345678901234567.00"],
    "HasOptedOutOfEmail": ["", "#N/A", "true", "false", "TRUE", "1", "yes"],
    "Birthdate__c": ["", "#N/A", "1950-0%d-12", "2000-02-29", "1900-02-29", "1699-12-31", "2020-04-31"],
    "Last_Activity__c": ["", "#N/A", "2020-01-01T00:00:01.237Z", "2020-01-01T00:00:01Z", "2020-01-01T24:00:00.000Z",
                         "2020-01-01T23:59:59.999+01:00"],
    "OwnerId": ["", "005Em0000000001IAA", "005Em0000000002IAA", "bad"],
    "IsConverted": ["", "true"],
}


class ColumnPathMatchesRowPath(unittest.TestCase):
    def emulator(self):
        args = argparse.Namespace(metadata=os.path.join(EMU_DIR, "metadata.json"), data_dir=None,
                                  processing_delay_ms=0, token_ttl_seconds=7200, seed=1, jwt_cert=None)
        return state.Emulator(args)

    def run_job(self, emu, op, content, ext=None):
        emu.job_counter += 1
        job = jobs.Job(common.make_id("750", emu.job_counter), "ingest", op, "Lead", "62.0", "COMMA", "LF")
        job.ext_id = ext
        job.content, job.upload_count, job.state = content.encode(), 1, "UploadComplete"
        emu.jobs[job.id] = job
        ingest.process_ingest(emu, job, time.time())
        return (job.state, job.error, job.success, job.failures,
                [ingest.results_body(emu, job, s) for s in ("successfulResults", "failedResults")])

    def test_random_jobs(self):
        real = ingest.IngestPlan.convert_columns
        clock = common.now
        try:
            common.now = lambda: 1700000000.0  # same timestamps in both runs
            for case in range(40):
                rnd = random.Random(case)
                dirt = rnd.choice([0.0, 0.05, 0.4])
                cols = rnd.sample(sorted(POOL), rnd.randrange(1, 8))
                for c in ("External_Id__c", "LastName", "Company"):
                    if c not in cols and rnd.random() < 0.8:
                        cols.append(c)
                op = rnd.choice(["insert", "upsert", "update"])
                if op == "update" or rnd.random() < 0.05:
                    cols.append("Id")
                lines = [",".join(cols)]
                for i in range(rnd.choice([5, 300, 2500])):
                    row = []
                    for c in cols:
                        if c == "Id":
                            v = common.make_id("00Q", rnd.randrange(1, 400))
                        else:
                            pool = POOL[c]
                            v = rnd.choice(pool) if rnd.random() < dirt else pool[min(3, len(pool) - 1)]
                            v = v.replace("%d", str(i * 7 + rnd.randrange(3)))
                        row.append('"%s"' % v.replace('"', '""') if any(x in v for x in ',"\n') else v)
                    lines.append(",".join(row))
                content = "\n".join(lines) + "\n"
                seed = "External_Id__c,LastName,Company\n" + "".join("B%d,L,C\n" % i for i in range(0, 3000, 7))
                batch_size = rnd.choice([50, 10000])
                outcomes = []
                for fast in (True, False):
                    ingest.IngestPlan.convert_columns = real if fast else (lambda self, s, e: [None] * (e - s))
                    emu = self.emulator()
                    emu.config["batch_size"] = batch_size
                    self.run_job(emu, "insert", seed)
                    outcome = self.run_job(emu, op, content, "External_Id__c" if op == "upsert" else None)
                    outcomes.append((outcome, emu.store.records["Lead"], emu.store.index["Lead"]))
                self.assertEqual(outcomes[0], outcomes[1], "case %d: %s %s" % (case, op, cols))
        finally:
            ingest.IngestPlan.convert_columns = real
            common.now = clock


if __name__ == "__main__":
    unittest.main()
