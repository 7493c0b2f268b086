-- The sf_bulk demo, run by scripts/demo against the project's Bulk API 2.0 emulator.
\pset footer off
\echo '--- 1. Install the extension (the server runs with shared_preload_libraries = ''sf_bulk'')'
CREATE EXTENSION sf_bulk;

\echo '--- 2. A server for the org: here the emulator on loopback (a real org: https://login.salesforce.com)'
CREATE SERVER emulator FOREIGN DATA WRAPPER salesforce OPTIONS (login_url :'emulator_url', api_version '62.0');

\echo '--- 3. Credentials in a user mapping: the emulator''s default connected app and user (test-only values)'
\set client_id `/usr/bin/python3 -c "import json; print(json.load(open('test/emulator/default_org.json'))['client_id'])"`
\set client_secret `/usr/bin/python3 -c "import json; print(json.load(open('test/emulator/default_org.json'))['client_secret'])"`
CREATE USER MAPPING FOR CURRENT_USER SERVER emulator
  OPTIONS (auth 'password', client_id :'client_id', client_secret :'client_secret',
           username 'etl@sfbulk.emulator', password 'emulator-password');

\echo '--- 4. Some leads in Postgres: two of them Salesforce will refuse'
CREATE TABLE leads (id serial PRIMARY KEY, ext_id text UNIQUE, first_name text, last_name text, company text,
                    email text, opted_out boolean, last_seen timestamptz, interests text[]);
INSERT INTO leads (ext_id, first_name, last_name, company, email, opted_out, last_seen, interests)
SELECT 'L-' || g, 'Ada' || g, 'Okafor' || g, 'Acme ' || (g % 7), 'ada' || g || '@example.org', g % 3 = 0,
       timestamptz '2025-11-04 16:20:07.123+01' + g * interval '1 hour', ARRAY['Bulk', 'Analytics']
  FROM generate_series(1, 1000) g;
UPDATE leads SET last_name = NULL WHERE id = 17;                  -- LastName is required
UPDATE leads SET email = 'not-an-email' WHERE id = 42;            -- not an email address
SELECT count(*) AS leads FROM leads;

\echo '--- 5. Upsert them into Salesforce by external id: a job id comes back at once, the worker does the rest'
SELECT sf_bulk_upsert('Lead', $$SELECT ext_id AS "External_Id__c", first_name AS "FirstName",
                                       last_name AS "LastName", company AS "Company", email AS "Email",
                                       opted_out AS "HasOptedOutOfEmail", last_seen AS "Last_Activity__c",
                                       interests AS "Interests__c"
                                  FROM leads$$,
                      external_id => 'External_Id__c') AS job \gset
\echo job :job

\echo '--- 6. Wait for it and look at the job'
\x on
SELECT id, operation, object, state, rows_spooled, bytes_spooled, uploads, sf_job_ids, records_processed,
       records_failed, api_calls, error
  FROM sf_bulk_wait(:job, '2 min');
\x off

\echo '--- 7. The rows Salesforce refused, joined back to the source table'
SELECT l.id, l.ext_id, l.last_name, l.email, f.sf_error
  FROM sf_bulk_failed(:job) f JOIN leads l ON l.ext_id = f.fields->>'External_Id__c'
 ORDER BY l.id;

\echo '--- 8. New Salesforce Ids for the rest (first five)'
SELECT l.id, l.ext_id, s.sf_id, s.sf_created
  FROM sf_bulk_successful(:job) s JOIN leads l ON l.ext_id = s.fields->>'External_Id__c'
 ORDER BY l.id LIMIT 5;

\echo '--- 9. And back: read the leads from Salesforce into a new table with a Bulk API 2.0 query job'
SELECT sf_bulk_query($$SELECT Id, External_Id__c, LastName, Email, Interests__c, Last_Activity__c, Owner.Email
                         FROM Lead WHERE External_Id__c != null$$,
                     target => 'leads_from_salesforce') AS query_job \gset
SELECT id, operation, state, records_processed, pages, rows_loaded, error
  FROM sf_bulk_wait(:query_job, '2 min');
\d leads_from_salesforce
SELECT count(*) AS pushed_and_read_back
  FROM leads l JOIN leads_from_salesforce s ON s.external_id__c = l.ext_id;
SELECT l.id, s.id AS salesforce_id, s.lastname, s.interests__c, s.last_activity__c, s.owner_email
  FROM leads l JOIN leads_from_salesforce s ON s.external_id__c = l.ext_id
 ORDER BY l.id LIMIT 5;

\echo '--- 10. Bad settings are refused with errors that name the option (and never echo a secret):'
\set ON_ERROR_STOP 0
CREATE SERVER typo FOREIGN DATA WRAPPER salesforce OPTIONS (login_url 'http://login.salesforce.com');
ALTER USER MAPPING FOR CURRENT_USER SERVER emulator OPTIONS (DROP password);
