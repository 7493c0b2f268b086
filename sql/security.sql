-- The extension's security posture, read from the catalogs: nothing runs with elevated rights, every table is
-- behind row-level security, PUBLIC can read (own rows) but never write, and the secrets-holding options are
-- only where PostgreSQL keeps secrets (user mappings).
\set VERBOSITY terse
CREATE EXTENSION sf_bulk;

-- The extension's own objects.
CREATE TEMP VIEW member_functions AS
SELECT p.oid, p.oid::regprocedure AS fn, p.prosecdef, p.proconfig
  FROM pg_proc p
  JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'sf_bulk';
CREATE TEMP VIEW member_tables AS
SELECT c.oid, c.oid::regclass AS tbl, c.relrowsecurity, c.relforcerowsecurity
  FROM pg_class c
  JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'sf_bulk'
 WHERE c.relkind = 'r';

-- No SECURITY DEFINER function at all (writes switch to the extension owner inside C, for one statement).
SELECT fn AS security_definer_function FROM member_functions WHERE prosecdef;
-- Every SQL-language function pins its search_path (C functions qualify every name they use).
SELECT f.fn AS function_without_pinned_search_path
  FROM member_functions f JOIN pg_proc p ON p.oid = f.oid JOIN pg_language l ON l.oid = p.prolang
 WHERE l.lanname IN ('sql', 'plpgsql')
   AND NOT EXISTS (SELECT 1 FROM unnest(f.proconfig) c WHERE c LIKE 'search_path=%');
SELECT count(*) > 10 AS has_functions FROM member_functions;

-- Row-level security on every table, and PUBLIC may read but not write any of them (the describe cache: not even
-- read; only the extension's functions use it).
SELECT tbl, relrowsecurity AS rls FROM member_tables ORDER BY tbl::text;
SELECT tbl, privilege AS public_privilege
  FROM member_tables,
       unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) AS privilege
 WHERE has_table_privilege('public', oid, privilege)
 ORDER BY tbl::text, privilege;
SELECT has_sequence_privilege('public', 'sf_bulk.jobs_id_seq', 'USAGE') AS public_uses_sequence;

-- The view shows rows through the caller's rights.
SELECT c.reloptions AS view_options FROM pg_class c WHERE c.oid = 'sf_bulk_jobs'::regclass;

-- A role that can log in sees no option of a user mapping but its own (PostgreSQL's pg_user_mappings rule),
-- and the server holds no secret: secrets are refused as server options.
CREATE SERVER sec_srv FOREIGN DATA WRAPPER salesforce OPTIONS (login_url 'https://login.salesforce.com');
CREATE ROLE sfb_sec_a;
CREATE ROLE sfb_sec_b;
CREATE USER MAPPING FOR sfb_sec_a SERVER sec_srv
  OPTIONS (auth 'password', client_id 'id', client_secret 'Secret-CS-sec', username 'a@x', password 'Secret-PW-sec');
SET ROLE sfb_sec_b;
SELECT usename, umoptions FROM pg_user_mappings WHERE srvname = 'sec_srv';
RESET ROLE;
ALTER SERVER sec_srv OPTIONS (ADD password 'Secret-PW-server');

DROP USER MAPPING FOR sfb_sec_a SERVER sec_srv;
DROP SERVER sec_srv;
DROP ROLE sfb_sec_a;
DROP ROLE sfb_sec_b;
DROP VIEW member_functions, member_tables;
DROP EXTENSION sf_bulk CASCADE;
