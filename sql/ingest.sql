-- Ingest end to end against the Bulk API 2.0 emulator (scripts/test starts it and sets SFB_EMULATOR_URL):
-- every operation, mixed good and bad rows, both nulls modes, the type table, waiting and aborting.
\set VERBOSITY terse
\set mapping_for CURRENT_USER
\i sql/include/emulator_org.sql

-- A run-unique prefix keeps these rows apart from any other test's in the same emulator.
SELECT 'rg' || pg_catalog.to_hex((extract(epoch FROM clock_timestamp()) * 1000)::bigint) AS run \gset

CREATE TABLE leads (id int PRIMARY KEY, ext text, last_name text, company text, email text, score float8,
                    revenue numeric, employees int, opted_out boolean, birthday date, last_activity timestamptz,
                    interests text[]);
INSERT INTO leads VALUES
  (1, :'run' || '-1', 'Okafor', 'Acme', 'ada@example.org', 0.1, 1234567.89, 12, true, '1990-02-28',
   '2025-11-04 16:20:07.123456+01', '{Bulk,Analytics}'),
  (2, :'run' || '-2', 'Lindqvist', 'Acme', NULL, 1e20, NULL, NULL, false, NULL, NULL, NULL),
  (3, :'run' || '-3', NULL, 'Acme', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),          -- no LastName
  (4, :'run' || '-4', 'Tanaka', 'Tanaka & "Söhne"', 'not-an-email', -2.5e-7, 0, 1, NULL, NULL, NULL, NULL),
  (5, :'run' || '-5', E'Multi\nLine, "quoted"', 'Acme', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);

-- Insert with mixed rows: two fail with Salesforce's own codes.
SELECT sf_bulk_insert('Lead', $$
  SELECT ext AS "External_Id__c", last_name AS "LastName", company AS "Company", email AS "Email",
         score AS "Score__c", revenue AS "AnnualRevenue", employees AS "NumberOfEmployees",
         opted_out AS "HasOptedOutOfEmail", birthday AS "Birthdate__c", last_activity AS "Last_Activity__c",
         interests AS "Interests__c"
    FROM leads ORDER BY id$$) AS insert_job \gset
SELECT state, rows_spooled, uploads, records_processed, records_failed, error
  FROM sf_bulk_wait(:insert_job, '60 s');
-- What was sent, as Salesforce echoed it: the type table in action.
SELECT fields->>'LastName' AS last_name, fields->>'Score__c' AS score, fields->>'AnnualRevenue' AS revenue,
       fields->>'HasOptedOutOfEmail' AS opted_out, fields->>'Birthdate__c' AS birthday,
       fields->>'Last_Activity__c' AS last_activity, fields->>'Interests__c' AS interests,
       sf_created, length(sf_id) AS id_length, left(sf_id, 3) AS key_prefix
  FROM sf_bulk_successful(:insert_job) ORDER BY fields->>'External_Id__c';
SELECT replace(fields->>'External_Id__c', :'run', 'RUN') AS ext, sf_id, sf_error
  FROM sf_bulk_failed(:insert_job) ORDER BY 1;
SELECT count(*) AS unprocessed FROM sf_bulk_unprocessed(:insert_job);

-- Upsert by external id: existing rows are updated (sf_created false), new ones created.
INSERT INTO leads (id, ext, last_name, company) VALUES (6, :'run' || '-6', 'Newcomer', 'Initech');
SELECT sf_bulk_upsert('Lead', $$SELECT ext AS "External_Id__c", last_name AS "LastName", company AS "Company"
                                  FROM leads WHERE id IN (1, 2, 6)$$,
                      external_id => 'External_Id__c') AS upsert_job \gset
SELECT state, records_processed, records_failed FROM sf_bulk_wait(:upsert_job, '60 s');
SELECT fields->>'LastName' AS last_name, sf_created FROM sf_bulk_successful(:upsert_job) ORDER BY 1;

-- nulls => 'keep' leaves a field alone; nulls => 'clear' empties it (#N/A).
SELECT sf_bulk_upsert('Lead', $$SELECT ext AS "External_Id__c", NULL::text AS "Email" FROM leads WHERE id = 1$$,
                      external_id => 'External_Id__c') AS keep_job \gset
SELECT state FROM sf_bulk_wait(:keep_job, '60 s');
SELECT fields->>'Email' AS sent_for_keep FROM sf_bulk_successful(:keep_job);
SELECT sf_bulk_upsert('Lead', $$SELECT ext AS "External_Id__c", NULL::text AS "Email" FROM leads WHERE id = 1$$,
                      external_id => 'External_Id__c', nulls => 'clear') AS clear_job \gset
SELECT state FROM sf_bulk_wait(:clear_job, '60 s');
SELECT fields->>'Email' AS sent_for_clear FROM sf_bulk_successful(:clear_job);

-- A timestamp without time zone is read in the session's TimeZone and sent as UTC.
SET TimeZone = 'America/New_York';
SELECT sf_bulk_upsert('Lead', $$SELECT ext AS "External_Id__c",
                                       CASE id WHEN 1 THEN '2025-07-01 12:00:00'::timestamp
                                               ELSE '2025-01-15 08:30:00.5'::timestamp END AS "Last_Activity__c"
                                  FROM leads WHERE id IN (1, 2)$$,
                      external_id => 'External_Id__c') AS local_time_job \gset
RESET TimeZone;
SELECT state FROM sf_bulk_wait(:local_time_job, '60 s');
SELECT fields->>'Last_Activity__c' AS sent_as_utc FROM sf_bulk_successful(:local_time_job) ORDER BY 1;

-- Update by Id, using the Ids Salesforce gave the inserted rows; one Id does not exist.
CREATE TABLE created AS SELECT sf_id, fields->>'External_Id__c' AS ext FROM sf_bulk_successful(:insert_job);
SELECT sf_bulk_update('Lead', $$SELECT sf_id AS "Id", 'Updated ' || ext AS "Title" FROM created
                                UNION ALL SELECT '00Q000000000000AAA', 'nobody'$$) AS update_job \gset
SELECT state, records_processed, records_failed FROM sf_bulk_wait(:update_job, '60 s');
SELECT count(*) AS updated FROM sf_bulk_successful(:update_job) WHERE NOT sf_created;
SELECT split_part(sf_error, ':', 1) AS code FROM sf_bulk_failed(:update_job);

-- Delete, then hard delete what is left.
SELECT sf_bulk_delete('Lead', $$SELECT sf_id AS "Id" FROM created ORDER BY ext LIMIT 1$$) AS delete_job \gset
SELECT state, records_processed, records_failed FROM sf_bulk_wait(:delete_job, '60 s');
SELECT sf_bulk_hard_delete('Lead', $$SELECT sf_id AS "Id" FROM created ORDER BY ext OFFSET 1$$) AS hard_job \gset
SELECT state, records_processed, records_failed FROM sf_bulk_wait(:hard_job, '60 s');
-- Deleting the deleted record again fails the row, not the job.
SELECT sf_bulk_delete('Lead', $$SELECT sf_id AS "Id" FROM created ORDER BY ext LIMIT 1$$) AS again_job \gset
SELECT state, records_failed FROM sf_bulk_wait(:again_job, '60 s');
SELECT split_part(sf_error, ':', 1) AS code FROM sf_bulk_failed(:again_job);

-- Every auth flow gets a token from the user mapping (the password flow did above).
CREATE SERVER emu_cc FOREIGN DATA WRAPPER salesforce OPTIONS (login_url :'emulator_url');
CREATE SERVER emu_jwt FOREIGN DATA WRAPPER salesforce OPTIONS (login_url :'emulator_url');
CREATE SERVER emu_refresh FOREIGN DATA WRAPPER salesforce OPTIONS (login_url :'emulator_url');
CREATE SERVER emu_token FOREIGN DATA WRAPPER salesforce OPTIONS (login_url :'emulator_url');
\set jwt_key `cat test/emulator/keys/jwt_private.pem`
\set refresh_token `/usr/bin/python3 -c "import json; print(json.load(open('test/emulator/default_org.json'))['refresh_token'])"`
\set access_token `/usr/bin/python3 -c "import json; print(json.load(open('test/emulator/default_org.json'))['access_token'])"`
CREATE USER MAPPING FOR CURRENT_USER SERVER emu_cc
  OPTIONS (auth 'client_credentials', client_id :'key', client_secret :'secret');
CREATE USER MAPPING FOR CURRENT_USER SERVER emu_jwt
  OPTIONS (auth 'jwt', client_id :'key', username 'etl@sfbulk.emulator', private_key :'jwt_key');
CREATE USER MAPPING FOR CURRENT_USER SERVER emu_refresh
  OPTIONS (auth 'refresh_token', client_id :'key', client_secret :'secret', refresh_token :'refresh_token');
CREATE USER MAPPING FOR CURRENT_USER SERVER emu_token OPTIONS (auth 'access_token', access_token :'access_token');
CREATE TABLE flow_jobs (flow text, job bigint);
INSERT INTO flow_jobs
SELECT flow, sf_bulk_insert('Lead', format($q$SELECT 'Flow %s' AS "LastName", 'Acme' AS "Company"$q$, flow),
                            server => ('emu_' || flow)::name)
  FROM unnest(ARRAY['cc', 'jwt', 'refresh', 'token']) AS flow;
SELECT f.flow, w.state, w.records_processed, w.records_failed, w.error
  FROM flow_jobs f, LATERAL sf_bulk_wait(f.job, '60 s') w ORDER BY 1;
-- Wrong credentials fail the job with the OAuth error, never with the secret (validate => false: the worker's
-- login is what is tested here; the call-time check refuses the same, see sql/preflight.sql).
CREATE SERVER emu_wrong FOREIGN DATA WRAPPER salesforce OPTIONS (login_url :'emulator_url');
CREATE USER MAPPING FOR CURRENT_USER SERVER emu_wrong
  OPTIONS (auth 'password', client_id :'key', client_secret :'secret', username 'etl@sfbulk.emulator',
           password 'Secret-wrong-password');
SELECT sf_bulk_insert('Lead', $$SELECT 'x' AS "LastName", 'y' AS "Company"$$, server => 'emu_wrong',
                      validate => false) AS wrong_job \gset
SELECT state, error, error LIKE '%Secret-%' AS leaks_secret FROM sf_bulk_wait(:wrong_job, '60 s');

-- A query without rows: the job is complete at once, and nothing is sent.
SELECT sf_bulk_insert('Lead', $$SELECT last_name AS "LastName", company AS "Company" FROM leads WHERE false$$,
                      server => 'emulator') AS empty_job \gset
SELECT state, rows_spooled, uploads, sf_job_ids, finished_at IS NOT NULL AS finished FROM sf_bulk_jobs WHERE id = :empty_job;

-- A header Salesforce does not know fails the whole Salesforce job, with its message (validate => false: the
-- call-time check would refuse it, see sql/preflight.sql).
SELECT sf_bulk_insert('Lead', $$SELECT last_name AS "LastName", company AS "Company", 1 AS "Shoe_Size__c"
                                FROM leads WHERE id = 1$$, server => 'emulator', validate => false) AS bad_header_job \gset
SELECT state, error FROM sf_bulk_wait(:bad_header_job, '60 s');

-- ROLLBACK leaves no job behind.
BEGIN;
SELECT sf_bulk_insert('Lead', $$SELECT last_name AS "LastName", company AS "Company" FROM leads$$, server => 'emulator') AS rolled_back \gset
ROLLBACK;
SELECT count(*) AS rolled_back_jobs FROM sf_bulk_jobs WHERE id = :rolled_back;

-- Waiting inside the creating transaction could never end: refused.
BEGIN;
SELECT sf_bulk_insert('Lead', $$SELECT 'x' AS "LastName", 'y' AS "Company"$$, server => 'emulator') AS same_tx \gset
SELECT * FROM sf_bulk_wait(:same_tx, '1 s');
ROLLBACK;
-- So is waiting in REPEATABLE READ, and waiting for a job that does not exist.
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT * FROM sf_bulk_wait(:insert_job);
ROLLBACK;
SELECT * FROM sf_bulk_wait(-1);

-- The jobs view: one row per job, all terminal.
SELECT operation, state, count(*) FROM sf_bulk_jobs GROUP BY 1, 2 ORDER BY 1, 2;
-- Spool files are gone once the jobs are done.
SELECT count(*) AS spool_files_left FROM pg_ls_dir('sf_bulk_spool') f WHERE f LIKE 'db%';

DROP EXTENSION sf_bulk CASCADE;
DROP TABLE leads, created, flow_jobs;
