"""sf_bulk_query's worker side, end to end against the emulator: a query job is created, polled, its result pages
listed (resultPages, API >= 58) or chained (locators, API < 58) and downloaded as separate tasks in parallel, then
loaded into the target table with COPY in one transaction with the job's completion (append, replace, merge).
Salesforce's errors reach sf_bulk_jobs.error verbatim; a value that does not convert fails the load naming page,
line, column and value, and loads nothing; aborts stop the Salesforce job and load nothing; no file is left.
"""

import threading
import time

from harness import IntegrationTest, mapping_options, poll, sql_literal

QUERY_PATH = r"/jobs/query"


class QueryTest(IntegrationTest):
    """Base: seeding, enqueueing and reading back."""

    def table(self, ddl_columns, name=None):
        t = name or ("q_" + self.tag.replace("-", "_")).lower()
        self.pg.psql("DROP TABLE IF EXISTS %s; CREATE TABLE %s (%s);" % (t, t, ddl_columns))
        return t

    def seed(self, obj, records):
        return self.emu.admin("POST", "/records/%s" % obj, {"records": records})["ids"]

    def enqueue_query(self, soql, target, mode="append", all_rows=False, page_size=None, api=None,
                      delimiter="COMMA", user="postgres", validate=False):
        """sf_bulk_query; validate => false unless asked (the tests create their targets; the describe checks
        are sql/query.sql's). api: a server whose api_version is that (the emulator's default is 62.0)."""
        server = "emu"
        if api is not None:
            server = "emu" + api.replace(".0", "")
            if self.pg.value("SELECT count(*) FROM pg_foreign_server WHERE srvname = %s" % sql_literal(server)) == "0":
                self.pg.psql("CREATE SERVER %s FOREIGN DATA WRAPPER salesforce OPTIONS (login_url %s, api_version %s);"
                             "CREATE USER MAPPING FOR postgres SERVER %s OPTIONS (%s);"
                             % (server, sql_literal(self.emu.url), sql_literal(api), server, mapping_options()))
                # Other modules call the ingest functions without naming a server: leave only "emu".
                self.addCleanup(self.pg.psql, "DROP SERVER IF EXISTS %s CASCADE;" % server)
        return self.enqueue("SELECT sf_bulk_query(%s, %s, server => %s, mode => %s, all_rows => %s, "
                            "column_delimiter => %s, page_size => %s, validate => %s)"
                            % (sql_literal(soql), sql_literal(target), sql_literal(server), sql_literal(mode),
                               "true" if all_rows else "false", sql_literal(delimiter),
                               "NULL" if page_size is None else int(page_size), "true" if validate else "false"),
                            user=user)

    def rows(self, sql):
        return self.pg.json(sql)

    def pages(self, job):
        return self.pg.json("SELECT * FROM sf_bulk.query_pages WHERE job_id = %d ORDER BY page_no" % job)

    def query_requests(self, sub=""):
        return [r for r in self.new_requests() if QUERY_PATH in r["path"] and r["path"].endswith(sub)]

    def page_gets(self):
        return [r for r in self.new_requests() if r["method"] == "GET" and r["path"].endswith("/results")]

    def assertNoFiles(self, job):
        poll(lambda: not self.spool_for(job), 10, 0.1, "the job's page files to go")

    def seed_leads(self, n, **values):
        recs = []
        for i in range(1, n + 1):
            r = {"LastName": "%s-%04d" % (self.tag, i), "Company": "Q"}
            r.update({k: (v(i) if callable(v) else v) for k, v in values.items()})
            recs.append(r)
        return self.seed("Lead", recs)


class QueryHappyPath(QueryTest):

    def test_types_and_relationship_fields(self):
        """Every type Salesforce sends lands in its PostgreSQL type: text, multipicklist -> text[], date,
        datetime -> timestamptz (UTC), numeric, integer, boolean, nulls; Owner.Email -> owner_email."""
        user_id = self.seed("User", [{"Username": self.tag + "@example.org", "LastName": "Owner",
                                      "Email": self.tag + "@owner.example.org", "Alias": "own"}])[0]
        ids = self.seed("Lead", [
            {"LastName": self.tag + '-1 "quoted", comma', "Company": "Acme\nsecond line", "OwnerId": user_id,
             "Interests__c": "Bulk;Analytics", "Birthdate__c": "1990-02-28",
             "Last_Activity__c": "2025-11-04T15:20:07.123Z", "Score__c": "12.5", "NumberOfEmployees": "42",
             "HasOptedOutOfEmail": "true", "AnnualRevenue": "1234567"},
            {"LastName": self.tag + "-2", "Company": "Nulls", "OwnerId": user_id},
        ])
        t = self.table("id text PRIMARY KEY, lastname text, company text, interests__c text[], birthdate__c date, "
                       "last_activity__c timestamptz, score__c numeric, numberofemployees integer, "
                       "hasoptedoutofemail boolean, annualrevenue numeric, owner_email text")
        soql = ("SELECT Id, LastName, Company, Interests__c, Birthdate__c, Last_Activity__c, Score__c, "
                "NumberOfEmployees, HasOptedOutOfEmail, AnnualRevenue, Owner.Email FROM Lead "
                "WHERE LastName LIKE '%s%%'" % self.tag)
        job = self.enqueue_query(soql, t)
        row = self.wait(job)
        self.assertCompleted(row)
        self.assertEqual(row["rows_loaded"], 2)
        self.assertIsNone(row["phase"])
        got = {r["id"]: r for r in self.rows(
            "SELECT id, lastname, company, interests__c, birthdate__c::text AS birthdate, "
            "to_char(last_activity__c AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.MS') AS last_activity, "
            "score__c::text AS score, numberofemployees, hasoptedoutofemail, annualrevenue::text AS revenue, "
            "owner_email FROM %s" % t)}
        self.assertEqual(sorted(got), sorted(ids))
        a, b = got[ids[0]], got[ids[1]]
        self.assertEqual(a["lastname"], self.tag + '-1 "quoted", comma')
        self.assertEqual(a["company"], "Acme\nsecond line")
        self.assertEqual(a["interests__c"], ["Bulk", "Analytics"])
        self.assertEqual(a["birthdate"], "1990-02-28")
        self.assertEqual(a["last_activity"], "2025-11-04 15:20:07.123")
        self.assertEqual(a["score"], "12.5")
        self.assertEqual(a["numberofemployees"], 42)
        self.assertIs(a["hasoptedoutofemail"], True)
        self.assertEqual(a["revenue"], "1234567")
        self.assertEqual(a["owner_email"], self.tag + "@owner.example.org")
        # Salesforce writes null as "": every empty value is NULL (multipicklist included)
        for col in ("interests__c", "birthdate", "last_activity", "score", "numberofemployees", "revenue"):
            self.assertIsNone(b[col], col)
        self.assertIs(b["hasoptedoutofemail"], False)  # booleans are never null in Salesforce
        q = self.pg.json("SELECT * FROM sf_bulk.queries WHERE job_id = %d" % job)[0]
        self.assertEqual((q["step"], q["sf_state"]), ("done", "JobComplete"))
        self.assertGreaterEqual(row["api_calls"], 4)  # create, poll(s), resultPages, one page
        self.assertTrue(row["org_api_usage"].startswith("api-usage="))
        self.assertNoFiles(job)

    def test_query_all_includes_deleted_rows(self):
        self.seed_leads(3)
        self.seed("Lead", [{"LastName": "%s-del" % self.tag, "Company": "Q", "IsDeleted": "true"}])
        soql = "SELECT Id, LastName, IsDeleted FROM Lead WHERE LastName LIKE '%s%%'" % self.tag
        t1 = self.table("id text, lastname text, isdeleted boolean", "q_live_" + self.tag.replace("-", "_").lower())
        t2 = self.table("id text, lastname text, isdeleted boolean", "q_all_" + self.tag.replace("-", "_").lower())
        j1 = self.enqueue_query(soql, t1)
        j2 = self.enqueue_query(soql, t2, all_rows=True)
        self.assertCompleted(self.wait(j1))
        self.assertCompleted(self.wait(j2))
        self.assertEqual(self.pg.value("SELECT count(*) FROM %s" % t1), "3")
        self.assertEqual(self.pg.value("SELECT count(*) FROM %s WHERE NOT isdeleted" % t2), "3")
        self.assertEqual(self.pg.value("SELECT lastname FROM %s WHERE isdeleted" % t2), "%s-del" % self.tag)
        jobs = self.emu.jobs()
        ops = {r["operation"] for r in (jobs[q["sf_job_id"]] for q in self.pg.json(
            "SELECT sf_job_id FROM sf_bulk.queries WHERE job_id IN (%d, %d)" % (j1, j2)))}
        self.assertEqual(ops, {"query", "queryAll"})

    def test_result_pages_downloaded_in_parallel(self):
        """API 62: resultPages lists every page; several page GETs are in flight at once (emulator log)."""
        self.seed_leads(40)
        self.emu.config(query_page_size=5, result_pages_per_call=3)
        # Each page answer is held a little, so that the downloads overlap if they run in parallel.
        self.emu.fault({"method": "GET", "path": r"/results$", "action": "delay", "ms": 400, "count": -1})
        t = self.table("id text PRIMARY KEY, lastname text")
        job = self.enqueue_query("SELECT Id, LastName FROM Lead WHERE LastName LIKE '%s%%'" % self.tag, t)
        row = self.wait(job)
        self.assertCompleted(row)
        self.assertEqual(row["rows_loaded"], 40)
        self.assertEqual((row["pages"], row["pages_downloaded"]), (8, 8))
        self.assertEqual(self.pg.value("SELECT count(DISTINCT id) FROM %s" % t), "40")
        gets = self.page_gets()
        self.assertEqual(len(gets), 8, "each page fetched once")
        spans = sorted((g["start_epoch_ms"], g["start_epoch_ms"] + g["duration_ms"]) for g in gets)
        overlap = max(sum(1 for s, e in spans if s <= start < e) for start, _ in spans)
        self.assertGreater(overlap, 1, "no two page downloads overlapped: %r" % spans)
        self.assertLessEqual(overlap, 4, "more downloads at once than sf_bulk.max_parallel_jobs")
        lists = [r for r in self.new_requests() if r["path"].endswith("/resultPages")]
        self.assertEqual(len(lists), 3, "8 pages at 3 per resultPages set")
        self.assertNoFiles(job)

    def test_locator_paging_with_page_size(self):
        """API 57: no resultPages; each page's Sforce-Locator reveals the next; maxRecords = page_size."""
        self.seed_leads(23)
        t = self.table("id text PRIMARY KEY, lastname text")
        job = self.enqueue_query("SELECT Id, LastName FROM Lead WHERE LastName LIKE '%s%%'" % self.tag, t,
                                 page_size=10, api="57.0")
        row = self.wait(job)
        self.assertCompleted(row)
        self.assertEqual(row["rows_loaded"], 23)
        pages = self.pages(job)
        self.assertEqual([p["records"] for p in pages], [10, 10, 3])
        self.assertIsNone(pages[-1]["next_locator"])
        gets = self.page_gets()
        self.assertEqual(len(gets), 3)
        self.assertTrue(all("maxRecords=10" in g["query"] for g in gets), gets)
        self.assertFalse(any(r["path"].endswith("/resultPages") for r in self.new_requests()))
        self.assertTrue(all("/v57.0/" in r["path"] for r in self.query_requests()))
        self.assertEqual(self.pg.value("SELECT count(DISTINCT id) FROM %s" % t), "23")

    def test_tab_delimiter(self):
        self.seed("Lead", [{"LastName": self.tag + "-a\tb", "Company": "Tab\tCo"}])
        t = self.table("id text, lastname text, company text")
        job = self.enqueue_query("SELECT Id, LastName, Company FROM Lead WHERE LastName LIKE '%s%%'" % self.tag, t,
                                 delimiter="TAB")
        self.assertCompleted(self.wait(job))
        self.assertEqual(self.rows("SELECT lastname, company FROM %s" % t),
                         [{"lastname": self.tag + "-a\tb", "company": "Tab\tCo"}])


class QueryLoadModes(QueryTest):

    def soql(self):
        return "SELECT Id, LastName, Company FROM Lead WHERE LastName LIKE '%s%%'" % self.tag

    def test_append_adds_rows(self):
        self.seed_leads(3)
        t = self.table("id text, lastname text, company text")
        self.pg.psql("INSERT INTO %s VALUES ('old', 'old', 'old');" % t)
        self.assertCompleted(self.wait(self.enqueue_query(self.soql(), t)))
        self.assertEqual(self.pg.value("SELECT count(*) FROM %s" % t), "4")

    def test_replace_readers_see_old_or_new_never_a_mix(self):
        """replace = DELETE + COPY in one transaction: a reader polling the count during the whole job sees
        only the old count or the new one."""
        self.seed_leads(300)
        t = self.table("id text, lastname text, company text")
        self.pg.psql("INSERT INTO %s SELECT 'old' || n, 'old', 'old' FROM generate_series(1, 50) n;" % t)
        seen, stop = set(), threading.Event()

        def reader():
            while not stop.is_set():
                seen.add(int(self.pg.value("SELECT count(*) FROM %s" % t)))
        th = threading.Thread(target=reader)
        th.start()
        try:
            job = self.enqueue_query(self.soql(), t, mode="replace")
            row = self.wait(job)
        finally:
            time.sleep(0.2)
            stop.set()
            th.join()
        self.assertCompleted(row)
        self.assertEqual(row["rows_loaded"], 300)
        self.assertEqual(self.pg.value("SELECT count(*) FROM %s" % t), "300")
        self.assertEqual(self.pg.value("SELECT count(*) FROM %s WHERE lastname = 'old'" % t), "0")
        self.assertTrue(seen <= {50, 300} and 50 in seen, "a reader saw %r" % sorted(seen))

    def test_merge_updates_and_inserts_by_id(self):
        ids = self.seed_leads(3)
        t = self.table("id text PRIMARY KEY, lastname text, company text, kept text DEFAULT 'local'")
        self.pg.psql("INSERT INTO %s VALUES (%s, 'stale', 'stale', 'mine'), ('other', 'other', 'other', 'x');"
                     % (t, sql_literal(ids[0])))
        row = self.wait(self.enqueue_query(self.soql(), t, mode="merge"))
        self.assertCompleted(row)
        self.assertEqual(row["rows_loaded"], 3)
        got = {r["id"]: r for r in self.rows("SELECT * FROM %s" % t)}
        self.assertEqual(sorted(got), sorted(ids + ["other"]))
        self.assertEqual(got[ids[0]]["lastname"], "%s-0001" % self.tag)   # updated
        self.assertEqual(got[ids[0]]["kept"], "mine")                      # columns not selected stay
        self.assertEqual(got[ids[1]]["kept"], "local")                     # inserted with the default
        self.assertEqual(got["other"]["lastname"], "other")                # rows not in the result stay


class QueryFailures(QueryTest):

    def test_malformed_query_at_create(self):
        t = self.table("id text")
        job = self.enqueue_query("SELECT Id FROM Lead WHERE (", t)
        row = self.wait(job)
        self.assertEqual(row["state"], "failed")
        self.assertIn("MALFORMED_QUERY", row["error"])
        self.assertIsNone(row["phase"])

    def test_invalid_field_at_create(self):
        t = self.table("id text, nosuch__c text")
        row = self.wait(self.enqueue_query("SELECT Id, NoSuch__c FROM Lead", t))
        self.assertEqual(row["state"], "failed")
        self.assertIn("INVALID_FIELD", row["error"])
        self.assertIn("NoSuch__c", row["error"])

    def test_salesforce_job_failed(self):
        self.emu.config(next_job_fails={"message": "QUERY_TIMEOUT : the query ran too long (%s)" % self.tag})
        t = self.table("id text")
        row = self.wait(self.enqueue_query("SELECT Id FROM Lead", t))
        self.assertEqual(row["state"], "failed")
        self.assertEqual(row["error"], "QUERY_TIMEOUT : the query ran too long (%s)" % self.tag)
        self.assertEqual(self.pg.value("SELECT count(*) FROM %s" % t), "0")

    def test_page_failing_for_good(self):
        self.seed_leads(12)
        self.emu.config(query_page_size=5)
        self.emu.fault({"method": "GET", "path": r"/results$", "query": "locator=NQ", "status": 400,
                        "error_code": "INVALIDLOCATOR", "message": "locator gone " + self.tag, "count": -1})
        t = self.table("id text, lastname text")
        job = self.enqueue_query("SELECT Id, LastName FROM Lead WHERE LastName LIKE '%s%%'" % self.tag, t)
        row = self.wait(job)
        self.assertEqual(row["state"], "failed")
        self.assertIn("result page 2", row["error"])
        self.assertIn("INVALIDLOCATOR", row["error"])
        self.assertIn("locator gone " + self.tag, row["error"])
        self.assertEqual(self.pg.value("SELECT count(*) FROM %s" % t), "0")
        self.assertNoFiles(job)

    def test_faults_between_pages_recovered(self):
        """A 503 burst and a connection dropped mid-body on page downloads, a 500 on resultPages and on a poll:
        all retried; every row loaded once."""
        self.seed_leads(30)
        self.emu.config(query_page_size=5)
        self.emu.fault([
            {"method": "GET", "path": r"/results$", "query": "locator=MTA", "status": 503, "count": 2},
            {"method": "GET", "path": r"/results$", "query": "locator=MTU", "action": "drop", "when": "response"},
            {"method": "GET", "path": r"/resultPages$", "status": 500, "count": 1},
            {"method": "GET", "path": r"/jobs/query/[^/]+$", "status": 503, "count": 1},
        ])
        t = self.table("id text PRIMARY KEY, lastname text")
        job = self.enqueue_query("SELECT Id, LastName FROM Lead WHERE LastName LIKE '%s%%'" % self.tag, t)
        row = self.wait(job, 90)
        self.assertCompleted(row)
        self.assertEqual(row["rows_loaded"], 30)
        self.assertEqual(self.pg.value("SELECT count(DISTINCT id) FROM %s" % t), "30")
        faulted = [r for r in self.new_requests() if r.get("fault")]
        self.assertGreaterEqual(len(faulted), 5)

    def test_bad_value_fails_load_naming_page_line_column_value(self):
        """A value that does not convert: the job fails at once (no retry loop) naming the page, the line, the
        column and the value, and nothing of any page is loaded."""
        self.seed_leads(7, Score__c=lambda i: "oops-%d" % i if i == 7 else str(i))
        self.emu.config(query_page_size=3)
        t = self.table("id text, lastname text, score__c numeric")
        job = self.enqueue_query("SELECT Id, LastName, Score__c FROM Lead WHERE LastName LIKE '%s%%' "
                                 "ORDER BY LastName" % self.tag, t)
        row = self.wait(job)
        self.assertEqual(row["state"], "failed", row)
        err = row["error"]
        self.assertIn('invalid input syntax for type numeric: "oops-7"', err)
        self.assertIn("result page 3 of 3", err)
        self.assertIn("line 2", err)
        self.assertIn("column score__c", err)
        self.assertEqual(self.pg.value("SELECT count(*) FROM %s" % t), "0")
        self.assertIsNone(row["rows_loaded"])
        loads = self.pg.server_log().count("sf_bulk: loading query results: invalid input syntax for type "
                                           "numeric: \"oops-7\"")
        self.assertEqual(loads, 1, "the load was tried more than once")
        self.assertNoFiles(job)

    def test_target_dropped_before_load(self):
        self.seed_leads(2)
        self.emu.config(batch_delay_ms=300, batch_size=1)  # the Salesforce job runs a while
        t = self.table("id text, lastname text")
        job = self.enqueue_query("SELECT Id, LastName FROM Lead WHERE LastName LIKE '%s%%'" % self.tag, t)
        self.pg.psql("DROP TABLE %s;" % t)
        row = self.wait(job)
        self.assertEqual(row["state"], "failed")
        self.assertIn("the target table public.%s of sf_bulk query job %d no longer exists" % (t, job), row["error"])

    def test_owner_without_insert_privilege_loads_nothing(self):
        """The load runs with the owner's rights: INSERT revoked after the call (which checked it) fails it."""
        role = "qrole_" + self.tag.replace("-", "_").lower()
        self.pg.psql("CREATE ROLE %s LOGIN; GRANT USAGE ON FOREIGN SERVER emu TO %s; "
                     "CREATE USER MAPPING FOR %s SERVER emu OPTIONS (%s);" % (role, role, role, mapping_options()))
        self.seed_leads(2)
        self.emu.config(batch_delay_ms=300, batch_size=1)
        t = self.table("id text, lastname text")
        self.pg.psql("GRANT SELECT, INSERT ON %s TO %s;" % (t, role))
        job = self.enqueue_query("SELECT Id, LastName FROM Lead WHERE LastName LIKE '%s%%'" % self.tag, t,
                                 user=role)
        self.pg.psql("REVOKE INSERT ON %s FROM %s;" % (t, role))
        row = self.wait(job, user=role)
        self.assertEqual(row["state"], "failed")
        self.assertEqual(row["error"], 'permission denied: role "%s", the owner of sf_bulk query job %d, may not '
                         'INSERT into public.%s' % (role, job, t))
        self.assertEqual(self.pg.value("SELECT count(*) FROM %s" % t), "0")

    def test_call_creates_the_target_from_describe(self):
        """validate => true: sf_bulk_query creates the table (multipicklist -> text[]); the worker fills it."""
        self.seed_leads(2, Interests__c="Bulk;Streaming", Score__c="7.25")
        t = ("q_new_" + self.tag.replace("-", "_")).lower()
        job = self.enqueue_query("SELECT Id, LastName, Interests__c, Score__c FROM Lead WHERE LastName LIKE '%s%%'"
                                 % self.tag, t, validate=True)
        self.assertCompleted(self.wait(job))
        self.assertEqual(self.rows("SELECT interests__c, score__c::float8 AS score FROM %s" % t),
                         [{"interests__c": ["Bulk", "Streaming"], "score": 7.25}] * 2)

    def test_header_mismatch_names_both(self):
        """A page whose columns are not the job's (the stored columns say Name, Salesforce sends LastName)."""
        self.seed_leads(1)
        self.emu.config(batch_delay_ms=300, batch_size=1)  # time to change the stored columns
        t = self.table("id text, lastname text, name text")
        job = self.enqueue_query("SELECT Id, LastName FROM Lead WHERE LastName LIKE '%s%%'" % self.tag, t)
        self.pg.psql("UPDATE sf_bulk.jobs SET columns = '{Id,Name}' WHERE id = %d;" % job)
        row = self.wait(job)
        self.assertEqual(row["state"], "failed")
        self.assertIn("result page 1 has the columns Id, LastName, but the query job selected Id, Name", row["error"])


class QueryAbort(QueryTest):

    def test_abort_while_polling(self):
        self.seed_leads(5)
        self.emu.config(batch_delay_ms=400, batch_size=1)  # the Salesforce job stays InProgress a while
        t = self.table("id text, lastname text")
        job = self.enqueue_query("SELECT Id, LastName FROM Lead WHERE LastName LIKE '%s%%'" % self.tag, t)
        poll(lambda: self.pg.value("SELECT step FROM sf_bulk.queries WHERE job_id = %d" % job) == "polling", 20,
             0.02, "polling")
        self.pg.psql("SELECT sf_bulk_abort(%d);" % job)
        row = self.wait(job)
        self.assertEqual(row["state"], "aborted")
        sf = self.pg.value("SELECT sf_job_id FROM sf_bulk.queries WHERE job_id = %d" % job)
        self.assertEqual(self.emu.jobs()[sf]["state"], "Aborted")
        self.assertTrue(any(r["method"] == "PATCH" for r in self.query_requests()))
        self.assertEqual(self.pg.value("SELECT count(*) FROM %s" % t), "0")
        self.assertNoFiles(job)

    def test_abort_while_downloading(self):
        self.seed_leads(20)
        self.emu.config(query_page_size=5)
        self.emu.fault({"method": "GET", "path": r"/results$", "action": "trickle", "bytes_per_second": 40,
                        "count": -1})
        t = self.table("id text, lastname text")
        job = self.enqueue_query("SELECT Id, LastName FROM Lead WHERE LastName LIKE '%s%%'" % self.tag, t)
        poll(lambda: self.pg.value("SELECT count(*) FROM sf_bulk.query_pages WHERE job_id = %d AND step = "
                                   "'downloading'" % job) not in ("", "0"), 20, 0.02, "a page downloading")
        self.assertTrue(self.spool_for(job), "no page file while downloading")
        self.pg.psql("SELECT sf_bulk_abort(%d);" % job)
        row = self.wait(job)
        self.assertEqual(row["state"], "aborted")
        self.assertIn("no rows were loaded", row["error"])
        self.assertEqual(self.pg.value("SELECT count(*) FROM %s" % t), "0")
        self.assertNoFiles(job)


class QueryOwnerCode(QueryTest):
    """The target's triggers are the owner's code: the worker (a superuser session) runs them with the owner's
    rights in a security-restricted operation with search_path pinned; nothing they set or create outlives the
    load, and a deferred trigger (which would fire at the commit, as the worker) fails the load."""

    def owned_target(self, triggers_sql):
        role = "qown_" + self.tag.replace("-", "_").lower()
        self.pg.psql("CREATE ROLE %s LOGIN; GRANT USAGE ON FOREIGN SERVER emu TO %s; "
                     "CREATE USER MAPPING FOR %s SERVER emu OPTIONS (%s);" % (role, role, role, mapping_options()))
        self.seed_leads(3)
        t = self.table("id text, lastname text")
        audit = t + "_audit"
        self.pg.psql("""
            CREATE TABLE {audit} (what text, who text, superuser text, search_path text);
            ALTER TABLE {t} OWNER TO {role};
            ALTER TABLE {audit} OWNER TO {role};
            CREATE FUNCTION {t}_audit() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                INSERT INTO public.{audit} VALUES (TG_ARGV[0], current_user,
                    (SELECT rolsuper::text FROM pg_catalog.pg_roles WHERE rolname = current_user),
                    current_setting('search_path'));
                -- What a hostile owner would try: settings and objects that outlive the load.
                PERFORM pg_catalog.set_config('search_path', 'public, pg_catalog', false);
                BEGIN
                    CREATE TEMP TABLE IF NOT EXISTS {t}_left (x int);
                EXCEPTION WHEN OTHERS THEN
                    INSERT INTO public.{audit} VALUES ('temp refused: ' || SQLERRM, current_user, NULL, NULL);
                END;
                RETURN NULL;
            END $$;
            ALTER FUNCTION {t}_audit() OWNER TO {role};
        """.format(t=t, audit=audit, role=role) + triggers_sql.format(t=t))
        self.addCleanup(self.pg.psql, "DROP TABLE IF EXISTS %s, %s; DROP FUNCTION IF EXISTS %s_audit();"
                        % (t, audit, t))
        return role, t, audit

    def test_triggers_run_restricted_as_the_owner_and_leave_nothing_behind(self):
        role, t, audit = self.owned_target(
            "CREATE TRIGGER row_audit AFTER INSERT ON {t} FOR EACH ROW EXECUTE FUNCTION {t}_audit('row');")
        job = self.enqueue_query("SELECT Id, LastName FROM Lead WHERE LastName LIKE '%s%%'" % self.tag, t,
                                 user=role)
        self.assertCompleted(self.wait(job, user=role))
        self.assertEqual(self.pg.value("SELECT count(*) FROM %s" % t), "3")
        audit_rows = self.rows("SELECT what, who, superuser, search_path FROM %s WHERE what = 'row'" % audit)
        self.assertEqual([(r["who"], r["superuser"]) for r in audit_rows], [(role, "false")] * 3)
        # The first row saw the load's search_path (the trigger changes it for the rows after it).
        self.assertIn("pg_catalog, pg_temp", [r["search_path"] for r in audit_rows])
        self.assertEqual(self.pg.value("SELECT DISTINCT what FROM %s WHERE what LIKE 'temp%%'" % audit),
                         "temp refused: cannot create temporary table within security-restricted operation")
        # The worker's next statements and the next load run as before: the search_path the trigger set did
        # not outlive the load.
        t2 = self.table("id text, lastname text", name=t + "_next")
        self.addCleanup(self.pg.psql, "DROP TABLE IF EXISTS %s;" % t2)
        self.assertCompleted(self.wait(self.enqueue_query(
            "SELECT Id, LastName FROM Lead WHERE LastName LIKE '%s%%'" % self.tag, t2)))
        self.assertEqual(self.pg.value("SELECT count(*) FROM %s" % t2), "3")

    def test_a_deferred_trigger_fails_the_load_instead_of_firing_as_the_worker(self):
        role, t, audit = self.owned_target(
            "CREATE CONSTRAINT TRIGGER deferred_audit AFTER INSERT ON {t} DEFERRABLE INITIALLY DEFERRED "
            "FOR EACH ROW EXECUTE FUNCTION {t}_audit('deferred');")
        job = self.enqueue_query("SELECT Id, LastName FROM Lead WHERE LastName LIKE '%s%%'" % self.tag, t,
                                 user=role)
        row = self.wait(job, user=role)
        self.assertEqual(row["state"], "failed")
        self.assertIn("cannot fire deferred trigger within security-restricted operation", row["error"])
        self.assertEqual(self.pg.value("SELECT count(*) FROM %s" % t), "0")
        self.assertEqual(self.pg.value("SELECT count(*) FROM %s" % audit), "0")
