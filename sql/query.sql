-- sf_bulk_query's refusals: every call that cannot give the user what they asked for is refused before a
-- Salesforce job exists, with a message naming the problem (the emulator's describe, as scripts/test starts
-- it, is what the fields are checked against). None of them leaves a job row; the last lines count them.
\set VERBOSITY terse
\set mapping_for PUBLIC
\i sql/include/emulator_org.sql
CREATE SCHEMA crm;

-- Arguments.
SELECT sf_bulk_query(NULL, 'crm.a');
SELECT sf_bulk_query('SELECT Id FROM Account', NULL);
SELECT sf_bulk_query('SELECT Id FROM Account', 'crm.a', mode => 'upsert');
SELECT sf_bulk_query('SELECT Id FROM Account', 'crm.a', mode => 'Append');
SELECT sf_bulk_query('SELECT Id FROM Account', 'crm.a', if_running => 'wait');
SELECT sf_bulk_query('SELECT Id FROM Account', 'crm.a', column_delimiter => 'SPACE');
SELECT sf_bulk_query('SELECT Id FROM Account', 'crm.a', page_size => 0);
SELECT sf_bulk_query('SELECT Id FROM Account', 'crm.a', all_rows => NULL);
SELECT sf_bulk_query('SELECT Id FROM Account', 'crm.a', server => 'nosuchserver');

-- The SOQL: one SELECT ... FROM Object that Bulk API 2.0 query jobs run.
SELECT sf_bulk_query('', 'crm.a');
SELECT sf_bulk_query('   ', 'crm.a');
SELECT sf_bulk_query('DELETE FROM Account', 'crm.a');
SELECT sf_bulk_query('SELECT Id FROM Account; SELECT Id FROM Lead', 'crm.a');
SELECT sf_bulk_query('SELECT Id FROM Account;', 'crm.a');
SELECT sf_bulk_query('SELECT Id FROM Account -- every account', 'crm.a');
SELECT sf_bulk_query('SELECT Id FROM Account /* all */', 'crm.a');
SELECT sf_bulk_query('SELECT Id, Name FROM Account WHERE Name = "Acme"', 'crm.a');
SELECT sf_bulk_query('SELECT Id FROM Account WHERE Name = ''Acme', 'crm.a');
SELECT sf_bulk_query('SELECT COUNT() FROM Account', 'crm.a');
SELECT sf_bulk_query('SELECT Industry, COUNT(Id) FROM Account GROUP BY Industry', 'crm.a');
SELECT sf_bulk_query('SELECT Id, (SELECT Id FROM Contacts) FROM Account', 'crm.a');
SELECT sf_bulk_query('SELECT FIELDS(ALL) FROM Account', 'crm.a');
SELECT sf_bulk_query('SELECT Id FROM Account OFFSET 10', 'crm.a');
SELECT sf_bulk_query('SELECT Id, Name, id FROM Account', 'crm.a');
SELECT sf_bulk_query('SELECT Id FROM Account a', 'crm.a');

-- The fields, against Salesforce's describe.
SELECT sf_bulk_query('SELECT Id FROM Acount', 'crm.a');
SELECT sf_bulk_query('SELECT Id, Nmae FROM Account', 'crm.a');
SELECT sf_bulk_query('SELECT Id, Ownr.Email FROM Account', 'crm.a');
SELECT sf_bulk_query('SELECT Id, Owner.Emial FROM Account', 'crm.a');
SELECT sf_bulk_query('SELECT Id, Owner FROM Account', 'crm.a');
SELECT sf_bulk_query('SELECT Id, BillingAddress FROM Account', 'crm.a');
SELECT sf_bulk_query('SELECT Id, Scan__c FROM Invoice__c', 'crm.a');

-- The target: a table the caller may load, with a column for every selected field.
CREATE VIEW crm.v AS SELECT 1 AS id;
SELECT sf_bulk_query('SELECT Id FROM Account', 'crm.v');
CREATE MATERIALIZED VIEW crm.mv AS SELECT 1 AS id;
SELECT sf_bulk_query('SELECT Id FROM Account', 'crm.mv');
CREATE FOREIGN TABLE crm.ft (id text) SERVER emulator;
SELECT sf_bulk_query('SELECT Id FROM Account', 'crm.ft');
CREATE SEQUENCE crm.s;
SELECT sf_bulk_query('SELECT Id FROM Account', 'crm.s');
CREATE TEMP TABLE tmp_accounts (id text);
SELECT sf_bulk_query('SELECT Id FROM Account', 'tmp_accounts');
SELECT sf_bulk_query('SELECT Id FROM Account', 'pg_temp.new_accounts');
CREATE TABLE crm.secured (id text);
ALTER TABLE crm.secured ENABLE ROW LEVEL SECURITY;
SELECT sf_bulk_query('SELECT Id FROM Account', 'crm.secured');
CREATE TABLE crm.accounts (id text PRIMARY KEY, name integer, industry text,
                           employees_total integer GENERATED ALWAYS AS (1) STORED,
                           numberofemployees integer GENERATED ALWAYS AS IDENTITY);
SELECT sf_bulk_query('SELECT Id, Name FROM Account', 'crm.accounts');
SELECT sf_bulk_query('SELECT Id, Industry, Website FROM Account', 'crm.accounts');
SELECT sf_bulk_query('SELECT Id, NumberOfEmployees FROM Account', 'crm.accounts');
SELECT sf_bulk_query('SELECT Id, Website, Phone, Name FROM Account', 'crm.accounts');
SELECT sf_bulk_query('SELECT Industry FROM Account', 'crm.accounts', mode => 'merge');
CREATE TABLE crm.no_key (id text, industry text);
SELECT sf_bulk_query('SELECT Id, Industry FROM Account', 'crm.no_key', mode => 'merge');
SELECT sf_bulk_query('SELECT Industry FROM Account', 'crm.new_table', mode => 'merge');
SELECT sf_bulk_query('SELECT Id FROM Account', 'crm.not_there', validate => false);
SELECT sf_bulk_query('SELECT Id FROM Account', 'nosuchschema.accounts');
SELECT sf_bulk_query('SELECT Id FROM Account', 'a.b.c.d');
SELECT sf_bulk_query('SELECT Id FROM Account', 'otherdb.crm.accounts');

-- Another role's table: the caller's privileges decide, for every mode.
CREATE ROLE sfbq_alice;
GRANT USAGE ON FOREIGN SERVER emulator TO sfbq_alice;
GRANT USAGE ON SCHEMA crm TO sfbq_alice;
CREATE TABLE crm.owned_by_other (id text PRIMARY KEY, industry text);
SET ROLE sfbq_alice;
SELECT sf_bulk_query('SELECT Id, Industry FROM Account', 'crm.owned_by_other');
RESET ROLE;
GRANT INSERT ON crm.owned_by_other TO sfbq_alice;
SET ROLE sfbq_alice;
SELECT sf_bulk_query('SELECT Id, Industry FROM Account', 'crm.owned_by_other', mode => 'replace');
SELECT sf_bulk_query('SELECT Id, Industry FROM Account', 'crm.owned_by_other', mode => 'merge');
-- Creating a table needs CREATE on the schema, as for any CREATE TABLE.
SELECT sf_bulk_query('SELECT Id, Industry FROM Account', 'crm.alice_new');
RESET ROLE;

-- Not from inside another sf_bulk call's query.
CREATE TABLE leads_src (name text);
INSERT INTO leads_src VALUES ('x');
SELECT sf_bulk_insert('Lead', $$SELECT sf_bulk_query('SELECT Id FROM Account', 'crm.x')::text AS "LastName",
                                       name AS "Company" FROM leads_src$$, validate => false);

-- Nothing above left a job or a table.
SELECT count(*) AS jobs FROM sf_bulk.jobs;
SELECT count(*) AS queries FROM sf_bulk.queries;
SELECT relname FROM pg_class WHERE relnamespace = 'crm'::regnamespace AND relkind = 'r' ORDER BY 1;

-- Accepted: a string literal holding FROM, a semicolon and what looks like a comment is part of the SOQL.
SELECT sf_bulk_query($$SELECT Id, Name, Owner.Email FROM Account WHERE Name = 'x FROM Lead; -- /* y */'$$,
                     'crm.created') > 0 AS queued;
SELECT attname, format_type(atttypid, atttypmod), attcollation::regcollation
  FROM pg_attribute WHERE attrelid = 'crm.created'::regclass AND attnum > 0 ORDER BY attnum;
SELECT operation, object, columns, target_schema, target_table, load_mode, page_size FROM sf_bulk.jobs;
-- Every type of the map, created from the describe (the README's table); sf_bulk_describe shows the same.
SELECT name, type, pg_type FROM sf_bulk_describe('Invoice__c') ORDER BY name COLLATE "C";
SELECT sf_bulk_query('SELECT Id, Name, Invoice_Key__c, Status__c, Channels__c, Account__c, Account__r.Name,
                             Amount__c, Tax_Rate__c, Quantity__c, Due_Date__c, Sent_At__c, Cutoff_Time__c,
                             Notes__c, Portal_Url__c, Owner.Email FROM Invoice__c', 'crm.invoices',
                     all_rows => true, page_size => 5000) > 0 AS queued;
SELECT attname, format_type(atttypid, atttypmod), attcollation::regcollation
  FROM pg_attribute WHERE attrelid = 'crm.invoices'::regclass AND attnum > 0 ORDER BY attnum;
SELECT operation, page_size FROM sf_bulk.jobs WHERE target_table = 'invoices';
-- An existing table whose columns fit; extra columns keep their defaults; named jobs follow each other.
CREATE TABLE crm.fits (id varchar(18) PRIMARY KEY, name text, annualrevenue numeric,
                       loaded_at timestamptz DEFAULT now());
BEGIN;
SELECT sf_bulk_query('SELECT Id, Name, AnnualRevenue FROM Account', 'crm.fits', mode => 'merge',
                     name => 'fits') > 0 AS queued;
SELECT sf_bulk_query('SELECT Id, Name FROM Account', 'crm.fits', name => 'fits', if_running => 'error');
ROLLBACK;
BEGIN;
SELECT sf_bulk_query('SELECT Id, Name FROM Account', 'crm.fits', name => 'fits') > 0 AS queued;
SELECT sf_bulk_query('SELECT Id, Name FROM Account', 'crm.fits', name => 'fits', if_running => 'skip');
SELECT sf_bulk_query('SELECT Id, Name FROM Account', 'crm.fits', name => 'fits') > 0 AS queued_after;
SELECT name, after_job IS NOT NULL AS follows FROM sf_bulk.jobs WHERE name = 'fits' ORDER BY id;
COMMIT;

DROP SCHEMA crm CASCADE;
DROP TABLE leads_src;
DROP EXTENSION sf_bulk CASCADE;
DROP OWNED BY sfbq_alice;
DROP ROLE sfbq_alice;
