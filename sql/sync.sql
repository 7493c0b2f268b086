-- sf_bulk_sync's refusals: every call that cannot keep the mirror asked for is refused before a Salesforce
-- job exists, with a message naming the problem (checked against the emulator's describe, as scripts/test
-- starts it). None of them leaves a job, a mirror or a table; the counts after them show it. Then what an
-- accepted first call records, rolled back.
\set VERBOSITY terse
\set mapping_for PUBLIC
\i sql/include/emulator_org.sql
CREATE SCHEMA mirror;

-- Arguments.
SELECT sf_bulk_sync(NULL, 'mirror.account');
SELECT sf_bulk_sync('Account', NULL);
SELECT sf_bulk_sync('Account', 'mirror.account', deletes => 'remove');
SELECT sf_bulk_sync('Account', 'mirror.account', deletes => 'Mark');
SELECT sf_bulk_sync('Account', 'mirror.account', deletes => NULL);
SELECT sf_bulk_sync('Account', 'mirror.account', overlap => '-1 minute');
SELECT sf_bulk_sync('Account', 'mirror.account', overlap => NULL);
SELECT sf_bulk_sync('Account', 'mirror.account', refresh_formulas => '0 seconds');
SELECT sf_bulk_sync('Account', 'mirror.account', reconcile => '-1 day');
SELECT sf_bulk_sync('Account', 'mirror.account', fields => '{}');
SELECT sf_bulk_sync('Account', 'mirror.account', fields => ARRAY['Name', NULL]);
SELECT sf_bulk_sync('Account', 'mirror.account', filter => '  ');
SELECT sf_bulk_sync('Account', 'mirror.account', if_running => 'wait');
SELECT sf_bulk_sync('Account', 'mirror.account', server => 'nosuchserver');

-- The object and its fields, against Salesforce's describe.
SELECT sf_bulk_sync('Acount', 'mirror.account');
SELECT sf_bulk_sync('Account', 'mirror.account', fields => ARRAY['Name', 'Nmae']);
SELECT sf_bulk_sync('Account', 'mirror.account', fields => ARRAY['Name', 'BillingAddress']);
SELECT sf_bulk_sync('Account', 'mirror.account', fields => ARRAY['Name', 'Owner.Email']);
SELECT sf_bulk_sync('Invoice__c', 'mirror.invoice', fields => ARRAY['Name', 'Scan__c']);
-- An object Salesforce keeps no change log of (the emulator's describe flag, set and restored through its admin
-- API with Python: the Debian 13 test root has no curl).
\! /usr/bin/python3 -c 'import os, urllib.request as u; u.urlopen(u.Request(os.environ["SFB_EMULATOR_URL"] + "/__emulator/schema/Group", data=b"{\"replicateable\": false}", method="PATCH", headers={"Content-Type": "application/json"}))'
SELECT sf_bulk_sync('Group', 'mirror.group');
\! /usr/bin/python3 -c 'import os, urllib.request as u; u.urlopen(u.Request(os.environ["SFB_EMULATOR_URL"] + "/__emulator/schema/Group", data=b"{\"replicateable\": true}", method="PATCH", headers={"Content-Type": "application/json"}))'

-- The filter: a SOQL condition, checked as sf_bulk_query checks a statement (Salesforce judges the rest).
SELECT sf_bulk_sync('Account', 'mirror.account', filter => 'Industry = ''Banking''; DELETE');
SELECT sf_bulk_sync('Account', 'mirror.account', filter => 'Industry = ''Banking'' -- banks');
SELECT sf_bulk_sync('Account', 'mirror.account', filter => 'Industry = ''Banking');
SELECT sf_bulk_sync('Account', 'mirror.account', filter => 'Industry = "Banking"');
SELECT sf_bulk_sync('Account', 'mirror.account', filter => 'Id IN (SELECT AccountId FROM Contact) GROUP BY Name');
SELECT sf_bulk_sync('Account', 'mirror.account', filter => 'Industry = ''Banking'') OR (Name != null');

-- The target: a table the caller may merge into and delete from, shaped as a mirror of the fields.
CREATE VIEW mirror.v AS SELECT 1 AS id;
SELECT sf_bulk_sync('Account', 'mirror.v');
CREATE FOREIGN TABLE mirror.ft (id text) SERVER emulator OPTIONS (object 'Account');
SELECT sf_bulk_sync('Account', 'mirror.ft');
CREATE TEMP TABLE tmp_accounts (id text PRIMARY KEY);
SELECT sf_bulk_sync('Account', 'tmp_accounts');
SELECT sf_bulk_sync('Account', 'pg_temp.new_accounts');
CREATE TABLE mirror.secured (id text PRIMARY KEY);
ALTER TABLE mirror.secured ENABLE ROW LEVEL SECURITY;
SELECT sf_bulk_sync('Account', 'mirror.secured', fields => ARRAY['Id']);
CREATE TABLE mirror.wrong_type (id text PRIMARY KEY, systemmodstamp timestamptz, isdeleted boolean, name integer);
SELECT sf_bulk_sync('Account', 'mirror.wrong_type', fields => ARRAY['Name']);
CREATE TABLE mirror.no_key (id text, systemmodstamp timestamptz, isdeleted boolean, name text);
SELECT sf_bulk_sync('Account', 'mirror.no_key', fields => ARRAY['Name']);
CREATE TABLE mirror.missing (id text PRIMARY KEY, systemmodstamp timestamptz, isdeleted boolean);
SELECT sf_bulk_sync('Account', 'mirror.missing', fields => ARRAY['Name', 'Industry']);
SELECT sf_bulk_sync('Account', 'nosuchschema.account');
SELECT sf_bulk_sync('Account', 'otherdb.mirror.account');

-- Another role's table: the caller's privileges decide.
CREATE ROLE sfbs_alice;
GRANT USAGE ON FOREIGN SERVER emulator TO sfbs_alice;
GRANT USAGE ON SCHEMA mirror TO sfbs_alice;
CREATE TABLE mirror.others (id text PRIMARY KEY, systemmodstamp timestamptz, isdeleted boolean, name text);
SET ROLE sfbs_alice;
SELECT sf_bulk_sync('Account', 'mirror.others', fields => ARRAY['Name']);
RESET ROLE;
GRANT SELECT, INSERT, UPDATE ON mirror.others TO sfbs_alice;
SET ROLE sfbs_alice;
SELECT sf_bulk_sync('Account', 'mirror.others', fields => ARRAY['Name']);
-- Creating a table needs CREATE on the schema, as for any CREATE TABLE.
SELECT sf_bulk_sync('Account', 'mirror.alice_new', fields => ARRAY['Name']);
RESET ROLE;

-- Not from inside another sf_bulk call's query.
CREATE TABLE leads_src (name text);
INSERT INTO leads_src VALUES ('x');
SELECT sf_bulk_insert('Lead', $$SELECT sf_bulk_sync('Account', 'mirror.x')::text AS "LastName",
                                       name AS "Company" FROM leads_src$$, validate => false);

-- Nothing above left a job, a mirror or a new table.
SELECT count(*) AS jobs FROM sf_bulk.jobs;
SELECT count(*) AS mirrors FROM sf_bulk.syncs;
SELECT relname FROM pg_class WHERE relnamespace = 'mirror'::regnamespace AND relkind = 'r' ORDER BY 1;

-- Accepted, rolled back: the first call creates the table from the describe (primary key id), records the
-- mirror and queues a full run: a queryAll of the fields.
BEGIN;
SELECT sf_bulk_sync('Account', 'mirror.account', fields => ARRAY['Name', 'AnnualRevenue', 'Industry'],
                    filter => 'Industry = ''Banking''', deletes => 'mark', reconcile => '1 day') > 0 AS queued;
SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
 WHERE attrelid = 'mirror.account'::regclass AND attnum > 0 ORDER BY attnum;
SELECT operation, object, columns, load_mode, soql FROM sf_bulk.jobs;
SELECT object, target, fields, filter, deletes, overlap, reconcile, watermark, last_kind, last_reason, last_state
  FROM sf_bulk_syncs;
-- A second call queues behind the unfinished first one; 'skip' starts nothing, 'error' refuses.
SELECT sf_bulk_sync('Account', 'mirror.account', fields => ARRAY['Name', 'AnnualRevenue', 'Industry'],
                    if_running => 'skip');
SELECT sf_bulk_sync('Account', 'mirror.account', fields => ARRAY['Name', 'AnnualRevenue', 'Industry'],
                    if_running => 'error');
ROLLBACK;
BEGIN;
SELECT sf_bulk_sync('Account', 'mirror.others', fields => ARRAY['Name']) > 0 AS queued;
SELECT sf_bulk_sync('Account', 'mirror.others', fields => ARRAY['Name']) > 0 AS queued_after;
SELECT count(*) AS runs, count(*) FILTER (WHERE after_job IS NOT NULL) AS waiting FROM sf_bulk.jobs;
-- One mirror per (server, object, target), kept by one role.
GRANT SELECT, INSERT, UPDATE, DELETE ON mirror.others TO sfbs_alice;
SET ROLE sfbs_alice;
SELECT count(*) AS visible_to_alice FROM sf_bulk_syncs;
SELECT sf_bulk_sync('Account', 'mirror.others', fields => ARRAY['Name']);
ROLLBACK;
RESET ROLE;

DROP SCHEMA mirror CASCADE;
DROP TABLE leads_src;
DROP EXTENSION sf_bulk CASCADE;
DROP OWNED BY sfbs_alice;
DROP ROLE sfbs_alice;
