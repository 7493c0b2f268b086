"""Done means 1, continued: every column delimiter and line ending Salesforce offers, with values that contain all
of them (quotes, CR, LF, CRLF, every delimiter, spaces at both ends), reach the store unchanged, and the result
rows echo them unchanged."""

from harness import IntegrationTest, sql_literal

# (column_delimiter, line_ending)
COMBOS = [("COMMA", "CRLF"), ("PIPE", "LF"), ("SEMICOLON", "CRLF"), ("TAB", "LF"), ("CARET", "LF"),
          ("BACKQUOTE", "CRLF")]

VALUES = [
    "plain",
    ' spaces at both ends ',
    'all delimiters: , | ; \t ^ ` and "quotes" ""doubled""',
    "LF\nCRLF\r\nlone CR\rend",
    '"starts and ends with a quote"',
    "\u00e9\u00e8 \u4e2d\u6587 \U0001F600 \u00a0nbsp",
]


# Results whose stored `fields` differ, byte for byte, from what jsonb_in makes of their text (the worker writes
# the binary jsonb itself). The relabelling cast exposes the bytes; it lives only inside the rolled-back
# transaction.
BYTES_DIFFER = """BEGIN;
CREATE CAST (jsonb AS bytea) WITHOUT FUNCTION;
SELECT 'differ=' || count(*) FROM sf_bulk.results r
 WHERE r.job_id = %d AND r.fields::bytea IS DISTINCT FROM r.fields::text::jsonb::bytea;
ROLLBACK;"""


class Formats(IntegrationTest):

    def test_delimiters_and_line_endings(self):
        t = "formats_" + self.tag.replace("-", "_")
        rows = ",\n".join("(%d, %s)" % (i, sql_literal(v).replace("\r", "' || chr(13) || '"))
                          for i, v in enumerate(VALUES))
        self.pg.psql("CREATE TABLE %s (i int PRIMARY KEY, v text); INSERT INTO %s VALUES %s;" % (t, t, rows))
        src = {r["i"]: r["v"] for r in self.pg.json("SELECT i, v FROM %s" % t)}
        self.assertEqual([src[i] for i in range(len(VALUES))], VALUES, "the table holds the intended values")

        jobs = {}
        for delim, le in COMBOS:
            prefix = "%s-%s-%s-" % (self.tag, delim, le)
            jobs[(delim, le)] = (prefix, self.enqueue("""
                SELECT sf_bulk_insert('Lead', $$SELECT %s || i AS "LastName", v AS "Company", v AS "Description"
                                                FROM %s ORDER BY i$$, column_delimiter => %s, line_ending => %s)"""
                                                      % (sql_literal(prefix), t, sql_literal(delim), sql_literal(le))))
        for (delim, le), (prefix, job) in jobs.items():
            with self.subTest(delimiter=delim, line_ending=le):
                row = self.wait(job)
                self.assertCompleted(row)
                self.assertEqual((row["records_processed"], row["records_failed"]), (len(VALUES), 0),
                                 "failures: %r" % self.pg.json("SELECT sf_error FROM sf_bulk_failed(%d)" % job))
                store = self.store_by("LastName", prefix)
                self.assertEqual(len(store), len(VALUES))
                for i, v in enumerate(VALUES):
                    rec = store[prefix + str(i)][0]
                    self.assertEqual(rec["Company"], v, "value %d in the store" % i)
                    self.assertEqual(rec["Description"], v, "value %d in the store" % i)
                echoed = {r["k"]: r["v"] for r in self.pg.json(
                    "SELECT fields->>'LastName' AS k, fields->>'Description' AS v FROM sf_bulk_successful(%d)" % job)}
                self.assertEqual(echoed, {prefix + str(i): v for i, v in enumerate(VALUES)},
                                 "result rows echo the fields as sent")
                # The worker builds `fields` as binary jsonb itself: it must be what jsonb_in makes of its own
                # text (same keys, same order for lookups) and every key must be found by a lookup.
                self.assertEqual(self.pg.value("""
                    SELECT count(*) FROM sf_bulk.results r
                     WHERE r.job_id = %d AND (r.fields IS DISTINCT FROM r.fields::text::jsonb
                        OR EXISTS (SELECT 1 FROM jsonb_object_keys(r.fields) k WHERE NOT r.fields ? k)
                        OR r.fields <> jsonb_build_object('LastName', r.fields->>'LastName',
                                                          'Company', r.fields->>'Company',
                                                          'Description', r.fields->>'Description'))""" % job),
                                 "0", "stored jsonb equals its parsed text")
                self.assertIn("differ=0", self.pg.psql(BYTES_DIFFER % job), "stored jsonb bytes as jsonb_in's")

    def test_wide_rows(self):
        """Twenty fields: the stored jsonb has 40 keys and values, past jsonb's offset stride of 32 entries, and
        must still be what jsonb_in makes of its text, with every key found by a lookup."""
        prefix = self.tag + "-"
        job = self.enqueue("""
            SELECT sf_bulk_insert('Lead', $$SELECT 'F' || g AS "FirstName", %s || g AS "LastName",
                'Company ' || g AS "Company", 'Title \u00e9 ' || g AS "Title", 'w' || g || '@example.com' AS "Email",
                '+1 555 010' || g AS "Phone", 'https://example.com/' || g AS "Website", 1000 * g AS "AnnualRevenue",
                g AS "NumberOfEmployees", 'City' AS "City", 'ST' AS "State", '1000' || g AS "PostalCode",
                'Country \u4e2d' AS "Country", 'Line one' || chr(10) || 'line "two"' AS "Description",
                g %% 2 = 0 AS "HasOptedOutOfEmail", date '2000-01-01' + g AS "Birthdate__c",
                timestamptz '2024-05-06 07:08:09.123+00' AS "Last_Activity__c", g / 4.0 AS "Score__c",
                g AS "Conversion_Rate__c", 'X-' || g AS "External_Id__c"
              FROM generate_series(1, 5) g$$)""" % sql_literal(prefix))
        row = self.wait(job)
        self.assertCompleted(row)
        self.assertEqual((row["records_processed"], row["records_failed"]), (5, 0))
        checks = self.pg.json("""
            SELECT count(*) AS n,
                   count(*) FILTER (WHERE r.fields IS DISTINCT FROM r.fields::text::jsonb) AS differ,
                   count(*) FILTER (WHERE EXISTS (SELECT 1 FROM jsonb_object_keys(r.fields) k
                                                   WHERE NOT r.fields ? k)) AS lost_keys,
                   min((SELECT count(*) FROM jsonb_object_keys(r.fields))) AS keys,
                   string_agg(r.fields->>'Country' || '|' || (r.fields->>'Title') || '|' ||
                              (r.fields->>'Description'), ';' ORDER BY r.fields->>'LastName') AS sample
              FROM sf_bulk.results r WHERE r.job_id = %d""" % job)[0]
        self.assertEqual((checks["n"], checks["differ"], checks["lost_keys"], checks["keys"]), (5, 0, 0, 20), checks)
        self.assertIn("differ=0", self.pg.psql(BYTES_DIFFER % job), "stored jsonb bytes as jsonb_in's")
        self.assertEqual(checks["sample"].split(";")[0],
                         "Country \u4e2d|Title \u00e9 1|Line one\nline \"two\"", checks)
