-- The pre-flight: ingest calls checked against Salesforce's describe (the emulator's, as scripts/test starts
-- it) before a row is spooled. Every refusal names the field or column and what would fit; none leaves a job
-- or a spool file. Lossy columns pass with a WARNING; validate => false skips the check.
\set VERBOSITY terse
\set mapping_for CURRENT_USER
\i sql/include/emulator_org.sql
-- No rows: an accepted call makes an empty (completed) job and sends nothing to Salesforce's ingest API.
CREATE TABLE t (id int, name text, n numeric(12,4), f float8, b boolean, d date, ts timestamp,
                tz timestamptz, tm time, tags text[], big bigint);

-- Unknown fields, with the closest names offered.
SELECT sf_bulk_insert('Lead', $$SELECT name AS "LastName", name AS "Company", name AS "Emial" FROM t$$);
SELECT sf_bulk_insert('Lead', $$SELECT name AS "LastNme", name AS "Company" FROM t$$);
SELECT sf_bulk_insert('Lead', $$SELECT name AS "LastName", name AS "Company", name AS "Zzzzzzzzzzzz__c" FROM t$$);
SELECT sf_bulk_update('Contact', $$SELECT name AS "Id", name AS "Titel" FROM t$$);
-- An object Salesforce does not have (its 404, in the caller's words).
SELECT sf_bulk_insert('Leed', $$SELECT name AS "LastName" FROM t$$);
-- Id: assigned by Salesforce on insert.
SELECT sf_bulk_insert('Lead', $$SELECT name AS "Id", name AS "LastName", name AS "Company" FROM t$$);
-- Required fields that insert does not send (defaulted ones such as OwnerId and Status are not required).
SELECT sf_bulk_insert('Lead', $$SELECT name AS "LastName" FROM t$$);
SELECT sf_bulk_insert('Lead', $$SELECT name AS "Email" FROM t$$);
SELECT sf_bulk_insert('Account', $$SELECT name AS "Website" FROM t$$);
-- Read-only fields: formula, auto-number, compound, system.
SELECT sf_bulk_insert('Lead', $$SELECT name AS "LastName", name AS "Company", name AS "Name" FROM t$$);
SELECT sf_bulk_update('Lead', $$SELECT name AS "Id", b AS "IsConverted" FROM t$$);
SELECT sf_bulk_insert('Invoice__c', $$SELECT name AS "Name" FROM t$$);
SELECT sf_bulk_update('Invoice__c', $$SELECT name AS "Id", n AS "Total_With_Tax__c" FROM t$$);
SELECT sf_bulk_insert('Account', $$SELECT name AS "Name", name AS "BillingAddress" FROM t$$);
SELECT sf_bulk_insert('Invoice__c', $$SELECT name AS "Site__c" FROM t$$);
-- upsert's external_id must be an external id (or idLookup) field.
SELECT sf_bulk_upsert('Lead', $$SELECT name AS "Title", name AS "LastName" FROM t$$, external_id => 'Title');
SELECT sf_bulk_upsert('Lead', $$SELECT name AS "External_Id_c", name AS "LastName" FROM t$$,
                      external_id => 'External_Id_c');
-- Relationship columns: the relationship exists, points where it says, and the field finds the record.
SELECT sf_bulk_insert('Contact', $$SELECT name AS "LastName", name AS "Acount.External_Id__c" FROM t$$);
SELECT sf_bulk_insert('Contact', $$SELECT name AS "LastName", name AS "Account.Description" FROM t$$);
SELECT sf_bulk_insert('Contact', $$SELECT name AS "LastName", name AS "Account.Externl_Id__c" FROM t$$);
SELECT sf_bulk_insert('Lead', $$SELECT name AS "LastName", name AS "Company", name AS "Owner.Username" FROM t$$);
SELECT sf_bulk_insert('Lead', $$SELECT name AS "LastName", name AS "Company", name AS "Account:Owner.Name" FROM t$$);
SELECT sf_bulk_insert('Invoice__c', $$SELECT name AS "Account__r.Website" FROM t$$);
-- Column types that cannot hold the field's values.
SELECT sf_bulk_insert('Lead', $$SELECT name AS "LastName", name AS "Company", b AS "Birthdate__c" FROM t$$);
SELECT sf_bulk_insert('Lead', $$SELECT name AS "LastName", name AS "Company", id AS "HasOptedOutOfEmail" FROM t$$);
SELECT sf_bulk_insert('Lead', $$SELECT name AS "LastName", name AS "Company", tz AS "Birthdate__c" FROM t$$);
SELECT sf_bulk_insert('Lead', $$SELECT name AS "LastName", name AS "Company", d AS "NumberOfEmployees" FROM t$$);
SELECT sf_bulk_insert('Lead', $$SELECT name AS "LastName", name AS "Company", tags AS "Industry" FROM t$$);
SELECT sf_bulk_insert('Lead', $$SELECT name AS "LastName", name AS "Company", big AS "Last_Activity__c" FROM t$$);
SELECT sf_bulk_insert('Invoice__c', $$SELECT d AS "Cutoff_Time__c" FROM t$$);
SELECT sf_bulk_insert('Contact', $$SELECT name AS "LastName", big AS "AccountId" FROM t$$);
-- Several problems at once: the first is the error, the others its DETAIL.
\set VERBOSITY default
SELECT sf_bulk_insert('Lead', $$SELECT name AS "Id", name AS "Nope", b AS "Birthdate__c" FROM t$$);
\set VERBOSITY terse

-- Fits, with a WARNING where Salesforce rounds or reads the value differently.
SELECT sf_bulk_insert('Lead', $$SELECT name AS "LastName", name AS "Company", n AS "Score__c",
                                       f AS "NumberOfEmployees", ts AS "Last_Activity__c" FROM t$$) > 0 AS accepted;
-- Fits, silently: the type table of the README.
SELECT sf_bulk_insert('Lead', $$SELECT name AS "lastname", name AS "COMPANY", tags AS "Interests__c",
                                       id AS "AnnualRevenue", id AS "NumberOfEmployees", b AS "HasOptedOutOfEmail",
                                       d AS "Birthdate__c", tz AS "Last_Activity__c", f AS "Score__c"
                                  FROM t$$) > 0 AS accepted;
SELECT sf_bulk_insert('Contact', $$SELECT name AS "LastName", name AS "Account.External_Id__c",
                                          name AS "ReportsTo.Email" FROM t$$) > 0 AS accepted;
SELECT sf_bulk_upsert('Lead', $$SELECT name AS "External_Id__c", name AS "Title" FROM t$$,
                      external_id => 'External_Id__c') > 0 AS accepted;
SELECT sf_bulk_upsert('Lead', $$SELECT name AS "Email", name AS "Title" FROM t$$, external_id => 'Email') > 0 AS accepted;
SELECT sf_bulk_delete('Lead', $$SELECT name AS "Id" FROM t$$) > 0 AS accepted;
-- validate => false: what Salesforce will refuse is sent anyway (an empty job here).
SELECT sf_bulk_insert('Lead', $$SELECT name AS "Nope__c" FROM t$$, validate => false) > 0 AS accepted;
SELECT sf_bulk_insert('Lead', $$SELECT name AS "Nope__c" FROM t$$, validate => NULL);

-- Salesforce cannot be asked (wrong credentials): the call fails at once with the OAuth error, never the secret,
-- and says how to skip the check.
CREATE SERVER emu_wrong FOREIGN DATA WRAPPER salesforce OPTIONS (login_url :'emulator_url');
CREATE USER MAPPING FOR CURRENT_USER SERVER emu_wrong
  OPTIONS (auth 'password', client_id :'key', client_secret :'secret', username 'etl@sfbulk.emulator',
           password 'Secret-wrong-password');
\set VERBOSITY default
SELECT sf_bulk_insert('Lead', $$SELECT name AS "LastName", name AS "Company" FROM t$$, server => 'emu_wrong');
\set VERBOSITY terse

-- The cache table keeps what accepted calls read: a refused call's transaction takes its row with it (the
-- session keeps its own copy, so fixing a typo call after call does not ask Salesforce each time).
SELECT object FROM sf_bulk.describe ORDER BY object;
-- Not one refusal left a job or a spool file; the accepted empty jobs completed.
SELECT state, rows_spooled, count(*) FROM sf_bulk_jobs GROUP BY 1, 2;
SELECT count(*) AS spool_files FROM pg_ls_dir('sf_bulk_spool') f WHERE f LIKE 'db%';

DROP TABLE t;
DROP EXTENSION sf_bulk CASCADE;
