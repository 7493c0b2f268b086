"""Done means 1: every row of the type table reaches the emulator's record store as Salesforce parses it."""

from harness import IntegrationTest, sql_literal


class TypeTable(IntegrationTest):

    def make_table(self):
        t = "types_" + self.tag.replace("-", "_")
        self.pg.psql("""
            CREATE TABLE %(t)s (n int PRIMARY KEY, ext text, last_name text, company text, opted_out boolean,
                                birthday date, last_activity timestamptz, revenue numeric, score float8,
                                employees int, rate numeric, exact numeric, interests text[], doc jsonb, js json,
                                email text, phone text, tod time, r real, u uuid, big int8);
            INSERT INTO %(t)s VALUES
              (1, %(p)s || '-1', E'O''Brien, "Bob"\\nsecond line \u2014 \u00fcn\u00efc\u00f8d\u00e9 \u65e5\u672c \U0001F680',
               'Acme; "Quoted", Inc.', true, '1990-02-28', '2025-11-04 16:20:07.123456+01', 1234567, 1e15,
               42, 12.34, 1234567.8900, '{Bulk,Analytics}', '{"b": [1, 2], "a": "x,\\"y\\"\\n"}',
               '{"k" : "v",  "n": 1.5e3}', 'ada@example.org', '555-0100', '16:20:07.123456', 1e20,
               'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 9007199254740993),
              (2, %(p)s || '-2', 'Lindqvist', E'Tab\\there, semi;colon', false, '2000-01-01',
               '1999-12-31 23:59:59.999+00', 0, 1.5e-7, 0, 0.5, -0.000001, '{Integration}', '[]', 'null',
               NULL, NULL, '00:00:00', 1.5e-7, '00000000-0000-0000-0000-000000000000', -1),
              (3, %(p)s || '-3', 'Nulls', 'Acme', NULL, NULL, NULL, NULL, -2.5, -1, NULL, NULL, NULL, NULL, NULL,
               NULL, NULL, NULL, NULL, NULL, NULL),
              (4, %(p)s || '-4', 'Edge', 'Acme', NULL, '4000-12-31', '2025-12-31 23:59:59.9999+00', NULL, -0.0, NULL,
               NULL, NULL, NULL, NULL, NULL, NULL, NULL, '23:59:59.999999', NULL, NULL, NULL);
            """ % {"t": t, "p": sql_literal(self.tag)})
        return t

    def test_type_table_in_store(self):
        t = self.make_table()
        # timestamptz is sent in UTC whatever the session's TimeZone is.
        job = self.enqueue("""
            SET TimeZone = 'Asia/Tokyo';
            SELECT sf_bulk_upsert('Lead', $$
              SELECT ext AS "External_Id__c", last_name AS "LastName", company AS "Company",
                     opted_out AS "HasOptedOutOfEmail", birthday AS "Birthdate__c", last_activity AS "Last_Activity__c",
                     revenue AS "AnnualRevenue", score AS "Score__c", score AS "City", employees AS "NumberOfEmployees",
                     rate AS "Conversion_Rate__c", exact AS "State", interests AS "Interests__c",
                     doc AS "Description", js AS "Title", email AS "Email", phone AS "Phone",
                     tod AS "PostalCode", r AS "Country", u AS "Website", big AS "FirstName"
                FROM %s ORDER BY n$$, external_id => 'External_Id__c')""" % t)
        row = self.wait(job)
        self.assertCompleted(row)
        self.assertEqual((row["records_processed"], row["records_failed"]), (4, 0),
                         self.pg.json("SELECT sf_error, fields FROM sf_bulk_failed(%d)" % job))

        src = {r["ext"]: r for r in self.pg.json(
            "SELECT ext, last_name, company, exact::text AS exact, doc::text AS doc, js::text AS js FROM %s" % t)}
        store = self.store_by("External_Id__c", self.tag)
        self.assertEqual(sorted(store), sorted(src), "exactly the four rows reach the store")
        for ext, recs in store.items():
            self.assertEqual(len(recs), 1, "one record per external id")
        r1, r2, r3, r4 = (store[self.tag + s][0] for s in ("-1", "-2", "-3", "-4"))

        # text with quotes, commas, a newline and non-ASCII characters, byte for byte
        self.assertEqual(r1["LastName"], src[self.tag + "-1"]["last_name"])
        self.assertEqual(r1["Company"], src[self.tag + "-1"]["company"])
        self.assertEqual(r2["Company"], "Tab\there, semi;colon")
        # boolean
        self.assertEqual(r1["HasOptedOutOfEmail"], "true")
        self.assertEqual(r2["HasOptedOutOfEmail"], "false")
        # date
        self.assertEqual(r1["Birthdate__c"], "1990-02-28")
        self.assertEqual(r2["Birthdate__c"], "2000-01-01")
        # timestamptz -> UTC, milliseconds
        self.assertEqual(r1["Last_Activity__c"], "2025-11-04T15:20:07.123Z")
        self.assertEqual(r2["Last_Activity__c"], "1999-12-31T23:59:59.999Z")
        # sub-millisecond digits are cut, never rounded into the next second (or year)
        self.assertEqual(r4["Last_Activity__c"], "2025-12-31T23:59:59.999Z")
        self.assertEqual(r4["Birthdate__c"], "4000-12-31")
        # time of day: HH:mm:ss.SSSZ (into a string field, which keeps the text sent)
        self.assertEqual(r1["PostalCode"], "16:20:07.123Z")
        self.assertEqual(r2["PostalCode"], "00:00:00.000Z")
        self.assertEqual(r4["PostalCode"], "23:59:59.999Z")
        # real: no exponent either; uuid: its text form; bigint beyond 2^53: every digit
        self.assertEqual(r1["Country"], "100000000000000000000")
        self.assertEqual(r2["Country"], "0.00000015")
        self.assertEqual(r1["Website"], "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
        self.assertEqual(r1["FirstName"], "9007199254740993")
        self.assertEqual(r2["FirstName"], "-1")
        self.assertIn(r4["Score__c"], ("0.00", "-0.00"))
        # numeric into a currency (scale 0), a percent (scale 2), and as exact text into a string field
        self.assertEqual(r1["AnnualRevenue"], "1234567")
        self.assertEqual(r2["AnnualRevenue"], "0")
        self.assertEqual(r1["Conversion_Rate__c"], "12.34")
        self.assertEqual(r2["Conversion_Rate__c"], "0.50")
        self.assertEqual(r1["State"], src[self.tag + "-1"]["exact"])
        self.assertEqual(r2["State"], "-0.000001")
        # float8: no exponent ever (the string field City keeps the exact text sent), value in a double field
        self.assertEqual(r1["City"], "1000000000000000")
        self.assertEqual(r2["City"], "0.00000015")
        self.assertEqual(r3["City"], "-2.5")
        self.assertEqual(r1["Score__c"], "1000000000000000.00")
        self.assertEqual(r2["Score__c"], "0.00")
        self.assertEqual(r3["Score__c"], "-2.50")
        # integer
        self.assertEqual(r1["NumberOfEmployees"], "42")
        self.assertEqual(r2["NumberOfEmployees"], "0")
        self.assertEqual(r3["NumberOfEmployees"], "-1")
        # text[] -> multi-select picklist
        self.assertEqual(r1["Interests__c"], "Bulk;Analytics")
        self.assertEqual(r2["Interests__c"], "Integration")
        # json / jsonb: their own text form
        self.assertEqual(r1["Description"], src[self.tag + "-1"]["doc"])
        self.assertEqual(r1["Title"], src[self.tag + "-1"]["js"])
        self.assertEqual(r1["Title"], '{"k" : "v",  "n": 1.5e3}')
        self.assertEqual(r2["Description"], "[]")
        self.assertEqual(r2["Title"], "null")
        # NULLs with the default nulls => 'keep': empty cells, nothing set on create
        for f in ("Birthdate__c", "Last_Activity__c", "AnnualRevenue", "Interests__c", "Description", "Email"):
            self.assertIsNone(r3.get(f), "NULL %s left the field empty" % f)
        self.assertEqual(r3["HasOptedOutOfEmail"], "false", "the field default applies to a kept NULL")

        # timestamp without time zone: read in the session's TimeZone, sent as UTC (DST and standard time)
        job2 = self.enqueue("""
            SET TimeZone = 'America/New_York';
            SELECT sf_bulk_upsert('Lead', $$
              SELECT ext AS "External_Id__c",
                     CASE n WHEN 1 THEN '2025-07-01 12:00:00'::timestamp ELSE '2025-01-15 08:30:00.5'::timestamp END
                       AS "Last_Activity__c"
                FROM %s WHERE n IN (1, 2)$$, external_id => 'External_Id__c')""" % t)
        row = self.wait(job2)
        self.assertCompleted(row)
        self.assertEqual(row["records_failed"], 0)
        store = self.store_by("External_Id__c", self.tag)
        self.assertEqual(store[self.tag + "-1"][0]["Last_Activity__c"], "2025-07-01T16:00:00.000Z")
        self.assertEqual(store[self.tag + "-2"][0]["Last_Activity__c"], "2025-01-15T13:30:00.500Z")
        self.assertEqual(store[self.tag + "-1"][0]["LastName"], src[self.tag + "-1"]["last_name"],
                         "fields not in the query stay as they were")

    def test_nulls_keep_vs_clear(self):
        t = self.make_table()
        job = self.enqueue("""SELECT sf_bulk_upsert('Lead', $$SELECT ext AS "External_Id__c", last_name AS "LastName",
                                company AS "Company", email AS "Email", phone AS "Phone" FROM %s WHERE n = 1$$,
                                external_id => 'External_Id__c')""" % t)
        self.assertCompleted(self.wait(job))
        rec = self.store_by("External_Id__c", self.tag)[self.tag + "-1"][0]
        self.assertEqual((rec.get("Email"), rec.get("Phone")), ("ada@example.org", "555-0100"))

        # keep (the default): the NULL Email is an empty cell, Salesforce leaves the field alone.
        job = self.enqueue("""SELECT sf_bulk_upsert('Lead', $$SELECT ext AS "External_Id__c", NULL::text AS "Email",
                                '555-0199' AS "Phone" FROM %s WHERE n = 1$$, external_id => 'External_Id__c',
                                nulls => 'keep')""" % t)
        row = self.wait(job)
        self.assertCompleted(row)
        self.assertEqual(row["records_failed"], 0)
        rec = self.store_by("External_Id__c", self.tag)[self.tag + "-1"][0]
        self.assertEqual(rec.get("Phone"), "555-0199", "the keep job was applied")
        self.assertEqual(rec.get("Email"), "ada@example.org", "nulls => 'keep' left Email untouched")

        # clear: #N/A, Salesforce sets the field null; fields not in the query stay.
        job = self.enqueue("""SELECT sf_bulk_upsert('Lead', $$SELECT ext AS "External_Id__c", NULL::text AS "Email",
                                NULL::text AS "Phone" FROM %s WHERE n = 1$$, external_id => 'External_Id__c',
                                nulls => 'clear')""" % t)
        row = self.wait(job)
        self.assertCompleted(row)
        self.assertEqual(row["records_failed"], 0)
        rec = self.store_by("External_Id__c", self.tag)[self.tag + "-1"][0]
        self.assertIsNone(rec.get("Email"), "nulls => 'clear' emptied Email")
        self.assertIsNone(rec.get("Phone"), "nulls => 'clear' emptied Phone")
        self.assertEqual(rec.get("Company"), 'Acme; "Quoted", Inc.', "a field not sent stays")
        # what was sent, as recorded: #N/A for clear
        sent = self.pg.json("SELECT fields FROM sf_bulk_successful(%d)" % job)
        self.assertEqual(len(sent), 1)
        self.assertIn(sent[0]["fields"].get("Email"), (None, "#N/A"))


class Operations(IntegrationTest):

    def test_operations_change_the_store(self):
        """update, delete, hardDelete and a relationship column, checked in the record store."""
        p = self.tag
        job = self.enqueue("""SELECT sf_bulk_insert('Lead', $$SELECT %s || '-' || n AS "LastName", 'Ops' AS "Company"
                                FROM generate_series(1, 4) n$$)""" % sql_literal(p))
        self.assertCompleted(self.wait(job))
        self.pg.psql("CREATE TABLE ops_%s AS SELECT sf_id, fields->>'LastName' AS name FROM sf_bulk_successful(%d);"
                     % (p.replace("-", "_"), job))
        t = "ops_" + p.replace("-", "_")
        ids = {r["name"]: r["sf_id"] for r in self.pg.json("SELECT name, sf_id FROM %s" % t)}
        self.assertEqual(len(ids), 4)

        job = self.enqueue("""SELECT sf_bulk_update('Lead', $$SELECT sf_id AS "Id", 'Updated ' || name AS "Title"
                                FROM %s WHERE name = %s$$)""" % (t, sql_literal(p + "-1")))
        self.assertCompleted(self.wait(job))
        job = self.enqueue("""SELECT sf_bulk_delete('Lead', $$SELECT sf_id AS "Id" FROM %s WHERE name = %s$$)"""
                           % (t, sql_literal(p + "-2")))
        self.assertCompleted(self.wait(job))
        job = self.enqueue("""SELECT sf_bulk_hard_delete('Lead', $$SELECT sf_id AS "Id" FROM %s WHERE name = %s$$)"""
                           % (t, sql_literal(p + "-3")))
        self.assertCompleted(self.wait(job))

        recs = {r["Id"]: r for r in self.emu.records("Lead")}
        self.assertEqual(recs[ids[p + "-1"]].get("Title"), "Updated " + p + "-1")
        self.assertFalse(recs[ids[p + "-1"]]["deleted"])
        self.assertTrue(recs[ids[p + "-2"]]["deleted"], "delete is a soft delete")
        self.assertNotIn(ids[p + "-3"], recs, "hardDelete removes the record")
        self.assertIsNone(recs[ids[p + "-4"]].get("Title"), "other rows untouched")
        self.assertFalse(recs[ids[p + "-4"]]["deleted"])

        # A relationship column resolves the parent by its external id.
        job = self.enqueue("""SELECT sf_bulk_upsert('Account', $$SELECT %s AS "External_Id__c", 'Parent Co' AS "Name"$$,
                                external_id => 'External_Id__c')""" % sql_literal(p + "-acct"))
        self.assertCompleted(self.wait(job))
        account_id = self.pg.value("SELECT sf_id FROM sf_bulk_successful(%d)" % job)
        job = self.enqueue("""SELECT sf_bulk_insert('Contact', $$SELECT %s AS "LastName",
                                %s AS "Account.External_Id__c"$$)""" % (sql_literal(p + "-contact"),
                                                                        sql_literal(p + "-acct")))
        row = self.wait(job)
        self.assertCompleted(row)
        self.assertEqual(row["records_failed"], 0)
        contact = self.store_by("LastName", p + "-contact", obj="Contact")[p + "-contact"][0]
        self.assertEqual(contact.get("AccountId"), account_id)
