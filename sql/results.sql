-- Results that join back to the source rows (key => …), the README's recipes exactly as printed there,
-- retries of failures, named (recurring) jobs and purging. Runs against the emulator, which returns result
-- rows in shuffled order, like Salesforce.
\set VERBOSITY terse
\getenv emulator_url SFB_EMULATOR_URL
CREATE EXTENSION sf_bulk;
CREATE SERVER emulator FOREIGN DATA WRAPPER salesforce OPTIONS (login_url :'emulator_url');
\set client_id `/usr/bin/python3 -c "import json; print(json.load(open('test/emulator/default_org.json'))['client_id'])"`
\set client_secret `/usr/bin/python3 -c "import json; print(json.load(open('test/emulator/default_org.json'))['client_secret'])"`
CREATE USER MAPPING FOR CURRENT_USER SERVER emulator
  OPTIONS (auth 'password', client_id :'client_id', client_secret :'client_secret', username 'etl@sfbulk.emulator',
           password 'emulator-password');
SELECT 'rs' || pg_catalog.to_hex((extract(epoch FROM clock_timestamp()) * 1000)::bigint) AS run \gset

-- 40 leads: ten look exactly alike to Salesforce (same values sent), three will be refused.
CREATE TABLE leads (id int PRIMARY KEY, ext_id text, last_name text, company text, email text, sf_id text);
INSERT INTO leads
SELECT g, :'run' || '-' || g,
       CASE WHEN g <= 10 THEN 'Twin' WHEN g IN (21, 22) THEN NULL ELSE 'Last' || g END,
       'Acme', CASE WHEN g = 23 THEN 'not-an-email' WHEN g <= 10 THEN NULL ELSE 'l' || g || '@example.org' END, NULL
  FROM generate_series(1, 40) g;

-- Recipe 1 (README): insert the new leads, keep `id` in Postgres, write the new Salesforce Ids back.
SELECT sf_bulk_insert('Lead', $$SELECT id, last_name AS "LastName", company AS "Company", email AS "Email"
                                FROM leads WHERE sf_id IS NULL$$,
                      key => 'id') AS job \gset
SELECT state, records_processed, records_failed, unmatched_results FROM sf_bulk_wait(:job);
UPDATE leads l SET sf_id = s.sf_id FROM sf_bulk_successful(:job) s WHERE l.id = s.key::int;
-- Every result found its own row: one key per result, every source row answered exactly once, and the
-- values Salesforce echoed are the row's own (twins included: they get distinct keys).
SELECT count(*) AS results, count(DISTINCT key) AS distinct_keys,
       bool_and(key::int BETWEEN 1 AND 40) AS keys_are_ids
  FROM (SELECT key FROM sf_bulk_successful(:job) UNION ALL SELECT key FROM sf_bulk_failed(:job)) r;
SELECT count(*) AS wrong_rows
  FROM sf_bulk_successful(:job) s JOIN leads l ON l.id = s.key::int
 WHERE s.fields->>'LastName' IS DISTINCT FROM l.last_name OR s.sf_id IS DISTINCT FROM l.sf_id;
SELECT count(*) FILTER (WHERE sf_id IS NOT NULL) AS with_sf_id, count(*) FILTER (WHERE sf_id IS NULL) AS without
  FROM leads;

-- Recipe 2 (README): the source rows Salesforce refused, with its errors.
SELECT l.id, l.last_name, l.email, f.error_code, f.error_message, f.error_fields
  FROM sf_bulk_failed(:job) f JOIN leads l ON l.id = f.key::int
 ORDER BY l.id;

-- sf_bulk_retry re-sends exactly the chosen failures, as they were sent, with their keys.
SELECT sf_bulk_retry(:job, '{INVALID_EMAIL_ADDRESS}') AS retry_job \gset
SELECT state, rows_spooled, records_failed, retry_of = :job AS linked FROM sf_bulk_wait(:retry_job);
SELECT key, error_code FROM sf_bulk_failed(:retry_job);
SELECT sf_bulk_retry(:job, '{UNABLE_TO_LOCK_ROW}') AS nothing_to_retry;

-- Recipe 3 (README): fix the refused rows, then push again what still has no Salesforce Id.
UPDATE leads SET last_name = 'Unknown' WHERE last_name IS NULL;
UPDATE leads SET email = NULL WHERE email = 'not-an-email';
SELECT sf_bulk_insert('Lead', $$SELECT id, last_name AS "LastName", company AS "Company", email AS "Email"
                                FROM leads WHERE sf_id IS NULL$$,
                      key => 'id') AS job \gset
SELECT state, records_processed, records_failed FROM sf_bulk_wait(:job);
UPDATE leads l SET sf_id = s.sf_id FROM sf_bulk_successful(:job) s WHERE l.id = s.key::int;
SELECT count(*) FILTER (WHERE sf_id IS NULL) AS still_without_sf_id FROM leads;

-- Keys work for every operation. Upsert by external id (matched and created rows):
INSERT INTO leads VALUES (41, :'run' || '-41', 'Late', 'Acme', NULL, NULL);
SELECT sf_bulk_upsert('Lead', $$SELECT id, ext_id AS "External_Id__c", last_name AS "LastName", company AS "Company"
                                FROM leads WHERE id > 30$$, external_id => 'External_Id__c', key => 'id') AS upsert_job \gset
SELECT state, records_processed, records_failed FROM sf_bulk_wait(:upsert_job);
SELECT count(*) AS wrong_keys FROM sf_bulk_successful(:upsert_job) s JOIN leads l ON l.id = s.key::int
 WHERE s.fields->>'External_Id__c' <> l.ext_id;
SELECT sf_created, count(*) FROM sf_bulk_successful(:upsert_job) GROUP BY 1 ORDER BY 1;
-- Update by Id, the twins included (their Ids differ, so Salesforce tells them apart):
SELECT sf_bulk_update('Lead', $$SELECT id, sf_id AS "Id", 'Checked' AS "Title" FROM leads WHERE id <= 15$$,
                      key => 'id') AS update_job \gset
SELECT state, records_processed, records_failed FROM sf_bulk_wait(:update_job);
SELECT count(*) AS right_keys FROM sf_bulk_successful(:update_job) s JOIN leads l ON l.id = s.key::int
 WHERE s.sf_id = l.sf_id;
-- A composite key joins back through the row's text form:
SELECT sf_bulk_update('Lead', $$SELECT id, company, sf_id AS "Id", 'Rechecked' AS "Title" FROM leads
                                WHERE id BETWEEN 16 AND 18$$, key => 'id, company') AS pair_job \gset
SELECT state FROM sf_bulk_wait(:pair_job);
SELECT l.id, s.key FROM sf_bulk_successful(:pair_job) s JOIN leads l ON (l.id, l.company)::text = s.key ORDER BY 1;
-- Delete, with a failure for a record that is not there:
SELECT sf_bulk_delete('Lead', $$SELECT id, sf_id AS "Id" FROM leads WHERE id IN (1, 2)
                                UNION ALL SELECT 999, '00Q000000000000AAA'$$, key => 'id') AS delete_job \gset
SELECT state, records_processed, records_failed FROM sf_bulk_wait(:delete_job);
SELECT key, sf_id IS NOT NULL AS has_id FROM sf_bulk_successful(:delete_job) ORDER BY key;
SELECT key, error_code FROM sf_bulk_failed(:delete_job);

-- The key must name query columns; key columns are never sent.
SELECT sf_bulk_insert('Lead', $$SELECT id, last_name AS "LastName" FROM leads$$, key => 'nope');
SELECT sf_bulk_insert('Lead', $$SELECT id, last_name AS "LastName" FROM leads$$, key => 'id, id');
SELECT sf_bulk_insert('Lead', $$SELECT id FROM leads$$, key => 'id');
SELECT columns, key_columns FROM sf_bulk.jobs WHERE id = :update_job;

-- Named jobs: while one named job is unfinished, 'skip' starts nothing, 'error' refuses, 'queue' waits for it.
BEGIN;
SELECT sf_bulk_insert('Lead', $$SELECT 'Nightly' AS "LastName", 'Acme' AS "Company"$$, name => 'nightly') AS first_job \gset
SELECT sf_bulk_insert('Lead', $$SELECT 'Nightly' AS "LastName", 'Acme' AS "Company"$$, name => 'nightly',
                      if_running => 'skip') IS NULL AS skipped;
SELECT sf_bulk_insert('Lead', $$SELECT 'Nightly' AS "LastName", 'Acme' AS "Company"$$, name => 'nightly',
                      if_running => 'error');
ROLLBACK;
BEGIN;
SELECT sf_bulk_insert('Lead', $$SELECT 'Nightly' AS "LastName", 'Acme' AS "Company"$$, name => 'nightly') AS first_job \gset
SELECT sf_bulk_insert('Lead', $$SELECT 'Nightly' AS "LastName", 'Acme' AS "Company"$$, name => 'nightly') AS second_job \gset
COMMIT;
SELECT w.state, j.after_job = :first_job AS queued_behind_first
  FROM sf_bulk_wait(:second_job) w JOIN sf_bulk.jobs j USING (id);
SELECT (SELECT started_at FROM sf_bulk_jobs WHERE id = :second_job) >=
       (SELECT finished_at FROM sf_bulk_jobs WHERE id = :first_job) AS started_after_first_ended;
SELECT sf_bulk_insert('Lead', $$SELECT 1 AS "LastName"$$, name => 'x', if_running => 'later');

-- The jobs view reports the org's API usage Salesforce sent back.
SELECT org_api_usage LIKE 'api-usage=%/%' AS has_api_usage FROM sf_bulk_jobs WHERE id = :job;

-- Purge: ended jobs older than the interval go, with their results.
SELECT sf_bulk_purge('1 hour') AS purged_none;
SELECT sf_bulk_purge('0 seconds') > 0 AS purged_all;
SELECT count(*) AS jobs_left FROM sf_bulk_jobs;
SELECT count(*) AS results_left FROM sf_bulk.results;

DROP EXTENSION sf_bulk CASCADE;
DROP TABLE leads;
