-- Everything sf_bulk_insert/update/upsert/delete/hard_delete refuse at call time, before a row is sent.
-- Each refusal names the problem, and none leaves a job or a spool file behind. The servers here cannot be
-- reached: calls that must get as far as reading values pass validate => false (the pre-flight against
-- Salesforce's describe has its own file, sql/preflight.sql).
\set VERBOSITY terse
CREATE EXTENSION sf_bulk;
CREATE TABLE t (id int, name text, n numeric, d date, tags text[]);
INSERT INTO t VALUES (1, 'a', 1, '2020-01-01', '{x,y}');

-- No server at all, then two servers and no choice made.
SELECT sf_bulk_insert('Lead', 'SELECT name AS "LastName" FROM t');
CREATE SERVER one FOREIGN DATA WRAPPER salesforce OPTIONS (login_url 'http://127.0.0.1:9');
CREATE SERVER two FOREIGN DATA WRAPPER salesforce OPTIONS (login_url 'http://127.0.0.1:9');
SELECT sf_bulk_insert('Lead', 'SELECT name AS "LastName" FROM t');
SELECT sf_bulk_insert('Lead', 'SELECT name AS "LastName" FROM t', server => 'three');
CREATE FOREIGN DATA WRAPPER other_fdw;
CREATE SERVER not_salesforce FOREIGN DATA WRAPPER other_fdw;
SELECT sf_bulk_insert('Lead', 'SELECT name AS "LastName" FROM t', server => 'not_salesforce');
-- No user mapping for the caller.
SELECT sf_bulk_insert('Lead', 'SELECT name AS "LastName" FROM t', server => 'one');
CREATE USER MAPPING FOR CURRENT_USER SERVER one OPTIONS (auth 'access_token', access_token '00D000000000001!Secret-T');
DROP SERVER two;

-- A role without USAGE on the server cannot start jobs, even with a mapping.
CREATE ROLE sfb_nousage;
GRANT SELECT ON t TO sfb_nousage;
CREATE USER MAPPING FOR sfb_nousage SERVER one OPTIONS (auth 'access_token', access_token '00D000000000001!Secret-U');
SET ROLE sfb_nousage;
SELECT sf_bulk_insert('Lead', 'SELECT name AS "LastName" FROM t');
RESET ROLE;
-- The query runs with the caller's privileges.
CREATE ROLE sfb_noselect;
GRANT USAGE ON FOREIGN SERVER one TO sfb_noselect;
CREATE USER MAPPING FOR sfb_noselect SERVER one OPTIONS (auth 'access_token', access_token '00D000000000001!Secret-V');
SET ROLE sfb_noselect;
SELECT sf_bulk_insert('Lead', 'SELECT name AS "LastName" FROM t');
RESET ROLE;

-- NULL arguments.
SELECT sf_bulk_insert(NULL, 'SELECT 1');
SELECT sf_bulk_insert('Lead', NULL);
SELECT sf_bulk_upsert('Lead', 'SELECT name AS "LastName" FROM t', NULL);
SELECT sf_bulk_insert('Lead', 'SELECT name AS "LastName" FROM t', nulls => NULL);
SELECT sf_bulk_insert('Lead', 'SELECT name AS "LastName" FROM t', max_upload_mb => NULL);

-- Object names that are not Salesforce identifiers.
SELECT sf_bulk_insert('Lead; DROP TABLE t', 'SELECT name AS "LastName" FROM t');
SELECT sf_bulk_insert('Le"ad', 'SELECT name AS "LastName" FROM t');
SELECT sf_bulk_insert('', 'SELECT name AS "LastName" FROM t');
SELECT sf_bulk_insert('Leаd', 'SELECT name AS "LastName" FROM t');   -- Cyrillic а
SELECT sf_bulk_insert('My__Obj__c__x__y', 'SELECT name AS "LastName" FROM t');

-- Queries that fail, modify data, or return nothing to send.
SELECT sf_bulk_insert('Lead', 'SELECT nope FROM t');
SELECT sf_bulk_insert('Lead', 'SELEC name FROM t');
SELECT sf_bulk_insert('Lead', 'DELETE FROM t');
SELECT sf_bulk_insert('Lead', 'DELETE FROM t RETURNING name AS "LastName"');
SELECT sf_bulk_insert('Lead', 'WITH d AS (DELETE FROM t RETURNING name) SELECT name AS "LastName" FROM d');
SELECT sf_bulk_insert('Lead', 'SELECT name AS "LastName" FROM t FOR UPDATE');
SELECT sf_bulk_insert('Lead', 'SELECT 1 AS "LastName"; SELECT 2 AS "LastName"');
SELECT sf_bulk_insert('Lead', 'SELECT FROM t');
SELECT sf_bulk_insert('Lead', 'SELECT 1/0 AS "LastName" FROM t');
SELECT count(*) AS rows_still_there FROM t;
-- An error after thousands of rows were spooled (the files written so far go with the statement).
SELECT sf_bulk_insert('Lead', $$SELECT 'n' || g AS "LastName", 10 / (20000 - g) AS "NumberOfEmployees"
                               FROM generate_series(1, 30000) g$$, validate => false);
-- The query itself starting another job.
SELECT sf_bulk_insert('Lead', $$SELECT sf_bulk_insert('Lead', 'SELECT 1 AS "LastName"')::text AS "LastName"$$, validate => false);

-- Column names that are not Salesforce field names, and duplicates.
SELECT sf_bulk_insert('Lead', 'SELECT name, name AS "Name" FROM t');
SELECT sf_bulk_insert('Lead', 'SELECT name AS "LastName", 1 FROM t');
SELECT sf_bulk_insert('Lead', 'SELECT name AS "Last Name" FROM t');
SELECT sf_bulk_insert('Lead', 'SELECT name AS "Last,Name" FROM t');
SELECT sf_bulk_insert('Lead', 'SELECT name AS "Account.Parent.Name" FROM t');
SELECT sf_bulk_insert('Contact', 'SELECT name AS "Account__c.Name" FROM t');
-- Relationship columns are fine.
SELECT sf_bulk_insert('Contact', 'SELECT name AS "LastName", name AS "Account.External_Id__c" FROM t WHERE false', validate => false) > 0 AS accepted;

-- Operation-specific columns.
SELECT sf_bulk_upsert('Lead', 'SELECT name AS "LastName" FROM t', external_id => 'External_Id__c');
SELECT sf_bulk_upsert('Lead', 'SELECT name AS "LastName" FROM t', external_id => 'Ext Id');
SELECT sf_bulk_update('Lead', 'SELECT name AS "LastName" FROM t');
SELECT sf_bulk_delete('Lead', 'SELECT name AS "Id", name AS "LastName" FROM t');
SELECT sf_bulk_hard_delete('Lead', 'SELECT name AS "Name" FROM t');

-- Option values.
SELECT sf_bulk_insert('Lead', 'SELECT name AS "LastName" FROM t', nulls => 'null');
SELECT sf_bulk_insert('Lead', 'SELECT name AS "LastName" FROM t', max_upload_mb => 0);
SELECT sf_bulk_insert('Lead', 'SELECT name AS "LastName" FROM t', max_upload_mb => 150);
SELECT sf_bulk_insert('Lead', 'SELECT name AS "LastName" FROM t', line_ending => 'CR');
SELECT sf_bulk_insert('Lead', 'SELECT name AS "LastName" FROM t', column_delimiter => 'COLON');
SELECT sf_bulk_insert('Lead', 'SELECT name AS "LastName" FROM t', assignment_rule_id => 'rule-1');

-- Values Salesforce has no spelling for stop the call, naming the column.
SELECT sf_bulk_insert('Lead', $$SELECT 'NaN'::numeric AS "AnnualRevenue" FROM t$$, validate => false);
SELECT sf_bulk_insert('Lead', $$SELECT 'Infinity'::float8 AS "Score__c" FROM t$$, validate => false);
SELECT sf_bulk_insert('Lead', $$SELECT 'infinity'::date AS "Birthdate__c" FROM t$$, validate => false);
SELECT sf_bulk_insert('Lead', $$SELECT '-infinity'::timestamptz AS "Last_Activity__c" FROM t$$, validate => false);
SELECT sf_bulk_insert('Lead', $$SELECT '10000-01-01'::date AS "Birthdate__c" FROM t$$, validate => false);
SELECT sf_bulk_insert('Lead', $$SELECT '{"a;b",c}'::text[] AS "Interests__c" FROM t$$, validate => false);
SELECT sf_bulk_insert('Lead', $$SELECT '{a,NULL}'::text[] AS "Interests__c" FROM t$$, validate => false);
-- One row larger than an upload may be.
SELECT sf_bulk_insert('Lead', $$SELECT repeat('x', 1100000) AS "Description" FROM t$$, max_upload_mb => 1, validate => false);

-- Job ids that do not exist (or are not the caller's: the same answer, by design).
SELECT * FROM sf_bulk_wait(987654321, '1 s');
SELECT sf_bulk_abort(987654321);
SELECT sf_bulk_retry(987654321);
SELECT count(*) AS no_results FROM sf_bulk_successful(987654321);
SELECT sf_bulk_wait(NULL);

-- Not one of the refusals above left a job or a spool file; the accepted empty job did complete.
SELECT state, rows_spooled, count(*) FROM sf_bulk_jobs GROUP BY 1, 2;
SELECT count(*) AS spool_files FROM pg_ls_dir('sf_bulk_spool') f WHERE f LIKE 'db%';

DROP EXTENSION sf_bulk CASCADE;
DROP FOREIGN DATA WRAPPER other_fdw CASCADE;
DROP TABLE t;
DROP OWNED BY sfb_nousage, sfb_noselect;
DROP ROLE sfb_nousage, sfb_noselect;
