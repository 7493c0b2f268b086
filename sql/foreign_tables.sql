-- salesforce foreign tables: options the validator refuses, IMPORT FOREIGN SCHEMA's tables, what each kind of
-- WHERE / ORDER BY / LIMIT becomes in SOQL (EXPLAIN shows the statement and the engine; a Filter line is the
-- local recheck or evaluation), hand-written tables that do not fit the org, and writes refused. The rows
-- themselves are read back from Leads this test inserts through the Bulk API.
\set VERBOSITY terse
\set mapping_for PUBLIC
\i sql/include/emulator_org.sql
CREATE SCHEMA sf;

-- Options: the validator names what is wrong.
CREATE FOREIGN TABLE sf.bad (id text) SERVER emulator OPTIONS (objekt 'Account');
CREATE FOREIGN TABLE sf.bad (id text) SERVER emulator OPTIONS (object 'Account; DELETE');
CREATE FOREIGN TABLE sf.bad (id text) SERVER emulator OPTIONS (engine 'fast');
CREATE FOREIGN TABLE sf.bad (id text OPTIONS (fieldname 'Id')) SERVER emulator;
CREATE FOREIGN TABLE sf.bad (id text OPTIONS (field 'Owner.Email')) SERVER emulator;
ALTER SERVER emulator OPTIONS (ADD engine 'sometimes');
SELECT count(*) AS bad_tables FROM pg_class WHERE relname = 'bad';

-- IMPORT FOREIGN SCHEMA: remote schema "salesforce", objects by API name in any case.
IMPORT FOREIGN SCHEMA public FROM SERVER emulator INTO sf;
IMPORT FOREIGN SCHEMA salesforce LIMIT TO (Acount) FROM SERVER emulator INTO sf;
IMPORT FOREIGN SCHEMA salesforce LIMIT TO (Account) FROM SERVER emulator INTO sf OPTIONS (engine 'turbo');
IMPORT FOREIGN SCHEMA salesforce LIMIT TO (Account) FROM SERVER emulator INTO sf OPTIONS (compound 'no');
IMPORT FOREIGN SCHEMA salesforce LIMIT TO (Account, LEAD, invoice__c) FROM SERVER emulator INTO sf
  OPTIONS (skip_compound 'true');
SELECT c.relname, ft.ftoptions FROM pg_foreign_table ft JOIN pg_class c ON c.oid = ft.ftrelid ORDER BY 1;
-- One column per field but base64 (and here compound ones), typed by the one type map (sf_bulk_describe's
-- pg_type), named by the lower-cased API name, the API name in the field option.
SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attcollation::regcollation, a.attfdwoptions
  FROM pg_attribute a WHERE a.attrelid = 'sf.invoice__c'::regclass AND a.attnum > 0 ORDER BY a.attnum;
SELECT d.name, d.pg_type FROM sf_bulk_describe('Invoice__c') d
 WHERE d.pg_type IS DISTINCT FROM (SELECT format_type(a.atttypid, a.atttypmod) ||
                                          CASE WHEN a.attcollation = '"C"'::regcollation THEN ' COLLATE "C"' ELSE '' END
                                     FROM pg_attribute a
                                    WHERE a.attrelid = 'sf.invoice__c'::regclass AND a.attname = lower(d.name));

-- What is pushed. Numbers, dates and datetimes: exactly (no Filter); <> keeps out nulls as SQL does.
EXPLAIN (COSTS OFF) SELECT name FROM sf.lead WHERE annualrevenue >= 1000 AND numberofemployees <> 5;
EXPLAIN (COSTS OFF) SELECT name FROM sf.lead WHERE numberofemployees IN (1, 2, 3) OR annualrevenue < -2.5;
EXPLAIN (COSTS OFF) SELECT name FROM sf.lead WHERE numberofemployees NOT IN (1, 2);
-- x <> ALL('{1,NULL}') and x = ANY('{}') are never true: no row, and no empty IN list (SOQL refuses one).
EXPLAIN (COSTS OFF) SELECT name FROM sf.lead WHERE numberofemployees NOT IN (1, NULL);
EXPLAIN (COSTS OFF) SELECT name FROM sf.lead WHERE numberofemployees = ANY ('{}'::int[]);
-- x <> ALL('{}') is true for every row, nulls included.
EXPLAIN (COSTS OFF) SELECT name FROM sf.lead WHERE numberofemployees <> ALL ('{}'::int[]);
EXPLAIN (COSTS OFF) SELECT name FROM sf.lead WHERE email IS NULL AND birthdate__c IS NOT NULL;
-- Checkboxes are never null: a bare column, NOT, and = false; IS NULL stays local (SOQL's = null is false).
EXPLAIN (COSTS OFF) SELECT name FROM sf.lead WHERE isconverted AND NOT hasoptedoutofemail;
EXPLAIN (COSTS OFF) SELECT name FROM sf.lead WHERE isconverted IS NULL;
-- Datetimes are written in UTC whatever the session's zone; a fraction rounds the bound (Salesforce keeps
-- seconds), and equality with a fraction matches nothing.
SET TimeZone = 'America/Los_Angeles';
EXPLAIN (COSTS OFF) SELECT name FROM sf.lead
 WHERE last_activity__c >= '2025-03-01 00:00' AND last_activity__c < '2025-03-02' AND birthdate__c = '1990-01-31';
EXPLAIN (COSTS OFF) SELECT name FROM sf.lead
 WHERE last_activity__c > '2025-03-01 10:00:00.25' AND last_activity__c <= '2025-03-01 11:00:00.75';
EXPLAIN (COSTS OFF) SELECT name FROM sf.lead WHERE last_activity__c = '2025-03-01 10:00:00.25';
RESET TimeZone;
-- Text: SOQL folds case, so = and LIKE are sent and rechecked (Filter); <>, ranges and NOT stay local.
EXPLAIN (COSTS OFF) SELECT name FROM sf.lead WHERE lastname = 'O''Brien' AND company ILIKE 'acme\_%';
EXPLAIN (COSTS OFF) SELECT name FROM sf.lead WHERE lastname IN ('Smith', 'Ärger') AND email LIKE '%@x.org';
EXPLAIN (COSTS OFF) SELECT name FROM sf.lead WHERE lastname <> 'Smith' OR lastname > 'M';
EXPLAIN (COSTS OFF) SELECT name FROM sf.lead WHERE NOT (numberofemployees = 5);
-- Salesforce has no empty strings (it stores null): = '' matches no row.
EXPLAIN (COSTS OFF) SELECT name FROM sf.lead WHERE lastname = '';
-- A field that is not filterable (a long text area) and an expression over a column stay local.
EXPLAIN (COSTS OFF) SELECT name FROM sf.lead WHERE description = 'x' AND numberofemployees + 1 = 3;
-- ORDER BY: numbers, dates and datetimes with the nulls spelled out; text sorts stay local.
EXPLAIN (COSTS OFF) SELECT name FROM sf.lead ORDER BY annualrevenue DESC NULLS LAST, birthdate__c;
EXPLAIN (COSTS OFF) SELECT name FROM sf.lead ORDER BY lastname;
-- LIMIT: only when every condition went to Salesforce exactly.
EXPLAIN (COSTS OFF) SELECT name FROM sf.lead WHERE numberofemployees > 10 ORDER BY annualrevenue LIMIT 5;
EXPLAIN (COSTS OFF) SELECT name FROM sf.lead WHERE numberofemployees > 10 LIMIT 5 OFFSET 2;
EXPLAIN (COSTS OFF) SELECT name FROM sf.lead WHERE lastname = 'Smith' LIMIT 5;
EXPLAIN (COSTS OFF) SELECT name FROM sf.lead ORDER BY lastname LIMIT 5;
EXPLAIN (COSTS OFF) SELECT count(*) FROM sf.lead;
-- Parameters and stable expressions are written when the scan starts.
PREPARE by_id(text) AS SELECT name FROM sf.lead WHERE id = $1;
SET plan_cache_mode = force_generic_plan;
EXPLAIN (COSTS OFF) EXECUTE by_id('00QEm0000000001MAA');
RESET plan_cache_mode;
-- The engine: REST for small results, a Bulk query job when forced (or for large ones).
SET sf_bulk.scan_engine = 'bulk';
EXPLAIN (COSTS OFF) SELECT name FROM sf.lead WHERE numberofemployees > 10 ORDER BY annualrevenue LIMIT 5;
RESET sf_bulk.scan_engine;
ALTER FOREIGN TABLE sf.lead OPTIONS (ADD engine 'bulk');
EXPLAIN (COSTS OFF) SELECT name FROM sf.lead WHERE numberofemployees > 10;
ALTER FOREIGN TABLE sf.lead OPTIONS (DROP engine);

-- Hand-written tables are checked against the describe when used.
CREATE FOREIGN TABLE sf.typo (id text, lastnme text) SERVER emulator OPTIONS (object 'Lead');
SELECT * FROM sf.typo;
CREATE FOREIGN TABLE sf.nosuch (id text) SERVER emulator OPTIONS (object 'NoSuchObject__c');
SELECT * FROM sf.nosuch;
CREATE FOREIGN TABLE sf.wrongtype (id text, lastname boolean) SERVER emulator OPTIONS (object 'Lead');
SELECT * FROM sf.wrongtype;
CREATE FOREIGN TABLE sf.leads_by_hand (lead_id text OPTIONS (field 'Id'), surname varchar(80) OPTIONS (field 'LastName'),
                                       employees bigint OPTIONS (field 'NumberOfEmployees'))
  SERVER emulator OPTIONS (object 'Lead');
EXPLAIN (COSTS OFF) SELECT surname FROM sf.leads_by_hand WHERE employees BETWEEN 5 AND 9 AND surname = 'x';

-- Writes go through the Bulk API functions.
INSERT INTO sf.lead (lastname) VALUES ('x');
UPDATE sf.lead SET lastname = 'y';
DELETE FROM sf.lead;

-- Rows: Leads inserted through the Bulk API come back through both engines, with their types. The company
-- is this run's own (the emulator may hold the Leads of an earlier run).
SELECT 'FdwTest-' || md5(random()::text) AS company \gset
SELECT sf_bulk_insert('Lead', $$SELECT $$ || quote_literal(:'company') || $$ AS "Company", v.last AS "LastName", v.n AS "NumberOfEmployees",
                                        v.b AS "Birthdate__c", v.opt AS "HasOptedOutOfEmail"
                                   FROM (VALUES ('Alpha', 3, date '1990-01-31', true), ('beta', 7, NULL, false),
                                                ('ALPHA', NULL, date '2001-12-01', false)) v(last, n, b, opt)$$,
                      validate => false) AS job \gset
SELECT state, records_processed, records_failed FROM sf_bulk_wait(:job, '60 s');
SELECT lastname, numberofemployees, birthdate__c, hasoptedoutofemail
  FROM sf.lead WHERE company = :'company' ORDER BY numberofemployees NULLS FIRST;
SELECT lastname FROM sf.lead WHERE company = :'company' AND lastname = 'alpha';
SELECT lastname FROM sf.lead WHERE company = :'company' AND lastname ILIKE 'alpha' ORDER BY 1;
SELECT lastname FROM sf.lead WHERE company = :'company' AND numberofemployees <> 3;
SET sf_bulk.scan_engine = 'bulk';
SELECT lastname, numberofemployees, birthdate__c, hasoptedoutofemail
  FROM sf.lead WHERE company = :'company' ORDER BY numberofemployees NULLS FIRST;
RESET sf_bulk.scan_engine;
-- A read-only transaction (or a standby) reads Salesforce too: the describe it fetches is kept in the session.
DELETE FROM sf_bulk.describe;
\c
\set VERBOSITY terse
BEGIN READ ONLY;
SELECT count(*) AS leads FROM sf.lead WHERE company = :'company';
COMMIT;
SELECT count(*) AS cached_describes FROM sf_bulk.describe;
-- A join with a local table.
CREATE TEMP TABLE wanted (name text);
INSERT INTO wanted VALUES ('ALPHA'), ('gamma');
SELECT w.name, l.numberofemployees FROM wanted w JOIN sf.lead l ON l.lastname = w.name AND l.company = :'company';
-- A correlated subquery: each outer row's value is written into the SOQL of its rescan.
SELECT t.n, (SELECT count(*) FROM sf.lead l WHERE l.company = :'company' AND l.numberofemployees = t.n) AS leads
  FROM (VALUES (3), (7), (9)) t(n);

DROP SCHEMA sf CASCADE;
DROP EXTENSION sf_bulk CASCADE;
