"""Item 4: result files: exact headers, quoting, line endings, unprocessed rewrite, deterministic shuffling."""

import unittest

from emu import EmuTestCase


class Results(EmuTestCase):
    def test_exact_bytes_unshuffled(self):
        self.config(shuffle_results=False)
        data = 'LastName,Email,Title\nOkafor,ada@example.org,"Says ""hi"", loudly"\nLindqvist,bad,\n'
        info = self.run_job("Contact", "insert", data)
        ok = self.api("GET", "/jobs/ingest/%s/successfulResults" % info["id"])
        self.assertEqual(ok.headers["Content-Type"], "text/csv")
        rid = ok.csv()[1][0]
        self.assertEqual(ok.text, '"sf__Id","sf__Created","LastName","Email","Title"\n'
                                  '"%s","true","Okafor","ada@example.org","Says ""hi"", loudly"\n' % rid)
        bad = self.api("GET", "/jobs/ingest/%s/failedResults" % info["id"])
        self.assertEqual(bad.text, '"sf__Id","sf__Error","LastName","Email","Title"\n'
                                   '"","INVALID_EMAIL_ADDRESS:Email: invalid email address: bad:Email --",'
                                   '"Lindqvist","bad",""\n')
        un = self.api("GET", "/jobs/ingest/%s/unprocessedrecords" % info["id"])
        self.assertEqual(un.text, '"LastName","Email","Title"')  # header only, no final newline

    def test_headers_present_when_empty(self):
        info = self.run_job("Account", "insert", "Name,Industry\n")
        self.assertEqual(info["numberRecordsProcessed"], 0)
        for which, hdr in (("successfulResults", '"sf__Id","sf__Created","Name","Industry"\n'),
                           ("failedResults", '"sf__Id","sf__Error","Name","Industry"\n')):
            self.assertEqual(self.api("GET", "/jobs/ingest/%s/%s" % (info["id"], which)).text, hdr)

    def test_crlf_and_delimiter_in_results(self):
        self.config(shuffle_results=False)
        info = self.run_job("Account", "insert", "Name;NumberOfEmployees\r\nA;1\r\nB;x\r\n", columnDelimiter="SEMICOLON",
                            lineEnding="CRLF")
        ok = self.api("GET", "/jobs/ingest/%s/successfulResults" % info["id"]).text
        self.assertTrue(ok.startswith('"sf__Id";"sf__Created";"Name";"NumberOfEmployees"\r\n'))
        self.assertTrue(ok.endswith('"A";"1"\r\n'))

    def test_unprocessed_rewrite_text_quoted_numbers_bare(self):
        self.config(next_job_fails={"after_batches": 0, "message": "InvalidBatch : simulated failure"})
        info = self.run_job("Account", "insert", "Name,NumberOfEmployees\nFoo,12\nBar,-3.5\n")
        self.assertEqual(info["state"], "Failed")
        self.assertEqual(info["errorMessage"], "InvalidBatch : simulated failure")
        un = self.api("GET", "/jobs/ingest/%s/unprocessedrecords" % info["id"]).text
        lines = un.split("\n")
        self.assertEqual(lines[0], '"Name","NumberOfEmployees"')
        self.assertEqual(sorted(lines[1:]), ['"Bar",-3.5', '"Foo",12'])
        self.assertFalse(un.endswith("\n"))
        self.config(unprocessed_final_newline=True, next_job_fails=True)
        info = self.run_job("Account", "insert", "Name\nFoo\n")
        self.assertTrue(self.api("GET", "/jobs/ingest/%s/unprocessedrecords" % info["id"]).text.endswith('"Foo"\n'))

    def test_shuffle_is_deterministic_and_switchable(self):
        data = "Name\n" + "".join("N%03d\n" % i for i in range(200))
        info = self.run_job("Account", "insert", data)
        a = self.api("GET", "/jobs/ingest/%s/successfulResults" % info["id"]).text
        b = self.api("GET", "/jobs/ingest/%s/successfulResults" % info["id"]).text
        self.assertEqual(a, b)  # repeatable
        names = [r[2] for r in self.api("GET", "/jobs/ingest/%s/successfulResults" % info["id"]).csv()[1:]]
        self.assertEqual(sorted(names), ["N%03d" % i for i in range(200)])
        self.assertNotEqual(names, sorted(names))  # not in upload order
        # same seed, fresh state -> same order
        self.admin("POST", "/reset")
        info2 = self.run_job("Account", "insert", data)
        names2 = [r[2] for r in self.api("GET", "/jobs/ingest/%s/successfulResults" % info2["id"]).csv()[1:]]
        self.assertEqual(names, names2)
        # another seed -> another order
        self.admin("POST", "/reset")
        self.config(seed=99)
        info3 = self.run_job("Account", "insert", data)
        names3 = [r[2] for r in self.api("GET", "/jobs/ingest/%s/successfulResults" % info3["id"]).csv()[1:]]
        self.assertNotEqual(names, names3)
        # keep order
        self.admin("POST", "/reset")
        self.config(shuffle_results=False)
        info4 = self.run_job("Account", "insert", data)
        names4 = [r[2] for r in self.api("GET", "/jobs/ingest/%s/successfulResults" % info4["id"]).csv()[1:]]
        self.assertEqual(names4, sorted(names4))

    def test_sf_id_in_failed_results_only_from_53(self):
        info = self.run_job("Account", "insert", "Name\nA\n")
        rid = self.results(info["id"], "successfulResults")[0]["sf__Id"]
        self.run_job("Account", "delete", "Id\n%s\n" % rid)
        info = self.run_job("Account", "update", "Id,Name\n%s,B\n" % rid)
        self.assertEqual(self.results(info["id"], "failedResults")[0]["sf__Id"], rid)
        info = self.run_job("Account", "update", "Id,Name\n%s,B\n" % rid, v="52.0")
        self.assertEqual(self.results(info["id"], "failedResults", v="52.0")[0]["sf__Id"], "")

    def test_failed_job_midway_partial_results(self):
        self.config(batch_size=10, next_job_fails={"after_batches": 2}, shuffle_results=False)
        data = "Name\n" + "".join("A%d\n" % i for i in range(35))
        info = self.run_job("Account", "insert", data)
        self.assertEqual(info["state"], "Failed")
        self.assertIn("retried more than", info["errorMessage"])
        self.assertEqual(info["retries"], 10)
        self.assertEqual(info["numberRecordsProcessed"], 20)
        self.assertEqual(len(self.results(info["id"], "successfulResults")), 20)
        un = self.api("GET", "/jobs/ingest/%s/unprocessedrecords" % info["id"]).text.split("\n")
        self.assertEqual(len(un) - 1, 15)
        self.assertEqual(un[1], '"A20"')

    def test_unprocessed_rows_keep_upload_order_when_results_are_shuffled(self):
        self.config(batch_size=10, next_job_fails={"after_batches": 1}, shuffle_results=True)
        data = "Name\n" + "".join("A%d\n" % i for i in range(40))
        info = self.run_job("Account", "insert", data)
        self.assertEqual(info["state"], "Failed")
        un = self.api("GET", "/jobs/ingest/%s/unprocessedrecords" % info["id"]).text.split("\n")
        self.assertEqual(un, ['"Name"'] + ['"A%d"' % i for i in range(10, 40)])
        ok = [r["Name"] for r in self.results(info["id"], "successfulResults")]
        self.assertEqual(sorted(ok), sorted("A%d" % i for i in range(10)))
        self.assertNotEqual(ok, ["A%d" % i for i in range(10)])  # the processed rows are shuffled


if __name__ == "__main__":
    unittest.main()
