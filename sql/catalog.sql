-- sf_bulk's tables as the catalogs describe them: every text column that holds a closed set of values has a
-- named CHECK constraint, and a value outside the set is refused when it is written, by the constraint's name
-- (the worker never reads back a value it does not know). The rest is free text, listed below with the reason.
\set VERBOSITY terse
CREATE EXTENSION sf_bulk;
SELECT extversion FROM pg_extension WHERE extname = 'sf_bulk';

CREATE TEMP VIEW member_tables AS
SELECT c.oid, c.oid::regclass::text AS tbl
  FROM pg_class c
  JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'sf_bulk'
 WHERE c.relkind IN ('r', 'p');
-- Their string columns: text, varchar, char, name, "char", and arrays of these.
CREATE TEMP VIEW string_columns AS
SELECT m.oid AS relid, m.tbl, a.attnum, a.attname::text AS col, format_type(a.atttypid, a.atttypmod) AS type
  FROM member_tables m
  JOIN pg_attribute a ON a.attrelid = m.oid AND a.attnum > 0 AND NOT a.attisdropped
  JOIN pg_type t ON t.oid = a.atttypid
  LEFT JOIN pg_type e ON e.oid = t.typelem AND t.typcategory = 'A'
 WHERE t.typcategory = 'S' OR t.oid = '"char"'::regtype OR e.typcategory = 'S' OR e.oid = '"char"'::regtype;

-- Columns that hold text the C++ never interprets as one of a fixed set of values. A new string column must
-- either get a CHECK constraint (through an upgrade script) or be added here with its reason.
CREATE TEMP TABLE free_text (tbl text, col text, why text);
INSERT INTO free_text VALUES
  ('sf_bulk.jobs', 'server_name', 'a foreign server''s name'),
  ('sf_bulk.jobs', 'object', 'the Salesforce object the caller named'),
  ('sf_bulk.jobs', 'external_id', 'a Salesforce field name (upsert)'),
  ('sf_bulk.jobs', 'assignment_rule_id', 'a Salesforce record id'),
  ('sf_bulk.jobs', 'columns', 'the Salesforce field names sent'),
  ('sf_bulk.jobs', 'key_columns', 'the caller''s key column names'),
  ('sf_bulk.jobs', 'name', 'the caller''s name for a recurring push'),
  ('sf_bulk.jobs', 'org_api_usage', 'Salesforce''s Sforce-Limit-Info header, verbatim'),
  ('sf_bulk.jobs', 'error', 'a message'),
  ('sf_bulk.chunks', 'spool_file', 'a path'),
  ('sf_bulk.chunks', 'sf_job_id', 'a Salesforce job id'),
  -- Salesforce's job state as sent: parse_job_state (src/core/bulk_api.cpp) maps what it does not know to
  -- Unknown and the upload keeps polling, with the text kept for the messages. Refusing it would fail the write.
  ('sf_bulk.chunks', 'sf_state', 'Salesforce''s job state, verbatim'),
  ('sf_bulk.chunks', 'error', 'a message'),
  ('sf_bulk.chunks', 'replaced_sf_job_ids', 'Salesforce job ids'),
  ('sf_bulk.sent', 'key', 'the source row''s key'),
  ('sf_bulk.results', 'key', 'the source row''s key'),
  ('sf_bulk.results', 'sf_id', 'a Salesforce record id'),
  ('sf_bulk.results', 'sf_error', 'Salesforce''s error text'),
  ('sf_bulk.results', 'error_code', 'a Salesforce status code (an open set, defined by Salesforce)'),
  ('sf_bulk.results', 'error_message', 'a message'),
  ('sf_bulk.results', 'error_fields', 'Salesforce field names'),
  ('sf_bulk.describe', 'server_name', 'a foreign server''s name'),
  ('sf_bulk.describe', 'object', 'a Salesforce object name in lower case, '''' for describeGlobal'),
  ('sf_bulk.describe', 'api_version', 'the server''s api_version, validated when it was read'),
  ('sf_bulk.describe', 'validator', 'Salesforce''s Date header, verbatim (If-Modified-Since)'),
  ('sf_bulk.jobs', 'soql', 'the caller''s SOQL, sent as written'),
  ('sf_bulk.jobs', 'target_schema', 'the schema of the table a query loads into'),
  ('sf_bulk.jobs', 'target_table', 'the table a query loads into'),
  ('sf_bulk.queries', 'api_version', 'the server''s api_version when the job was queued, validated then'),
  ('sf_bulk.queries', 'sf_job_id', 'a Salesforce job id'),
  ('sf_bulk.queries', 'sf_state', 'Salesforce''s job state, verbatim'),
  ('sf_bulk.queries', 'error', 'a message'),
  ('sf_bulk.queries', 'page_list_url', 'a resultPages URL Salesforce sent (checked against the job before use)'),
  ('sf_bulk.query_pages', 'path_or_locator', 'a resultUrl or a locator Salesforce sent (opaque)'),
  ('sf_bulk.query_pages', 'spool_file', 'a path'),
  ('sf_bulk.query_pages', 'next_locator', 'the Sforce-Locator header, verbatim (opaque)'),
  ('sf_bulk.query_pages', 'error', 'a message'),
  ('sf_bulk.syncs', 'server_name', 'a foreign server''s name'),
  ('sf_bulk.syncs', 'object', 'a Salesforce object name, as its describe spells it'),
  ('sf_bulk.syncs', 'target_schema', 'the schema of the mirror table'),
  ('sf_bulk.syncs', 'target_table', 'the mirror table'),
  ('sf_bulk.syncs', 'fields', 'Salesforce field names'),
  ('sf_bulk.syncs', 'filter', 'the caller''s SOQL condition, sent as written'),
  ('sf_bulk.sync_runs', 'reason', 'a message'),
  ('sf_bulk.sync_runs', 'deleted_ids', 'Salesforce record ids'),
  ('sf_bulk.sync_runs', 'calculated', 'Salesforce field names');

-- String columns with no CHECK constraint that are not free text: none.
SELECT s.tbl, s.col, s.type AS unconstrained_column
  FROM string_columns s
 WHERE NOT EXISTS (SELECT 1 FROM pg_constraint k
                    WHERE k.conrelid = s.relid AND k.contype = 'c' AND s.attnum = ANY (k.conkey))
   AND NOT EXISTS (SELECT 1 FROM free_text f WHERE f.tbl = s.tbl AND f.col = s.col)
 ORDER BY 1, 2;
-- Free-text entries that name no string column, or a column that has a CHECK after all: none (the list is
-- kept exact).
SELECT f.tbl, f.col AS stale_free_text_entry
  FROM free_text f
 WHERE NOT EXISTS (SELECT 1 FROM string_columns s WHERE s.tbl = f.tbl AND s.col = f.col)
    OR EXISTS (SELECT 1 FROM string_columns s JOIN pg_constraint k ON k.conrelid = s.relid AND k.contype = 'c'
                WHERE s.tbl = f.tbl AND s.col = f.col AND s.attnum = ANY (k.conkey))
 ORDER BY 1, 2;

-- The CHECK constraints on string columns, by name: the value sets each one allows.
SELECT s.tbl, k.conname, pg_get_constraintdef(k.oid) AS definition
  FROM pg_constraint k JOIN string_columns s ON s.relid = k.conrelid AND s.attnum = ANY (k.conkey)
 WHERE k.contype = 'c'
 ORDER BY 1, 2;

-- Writes as the extension's owner (the only role that may write these tables): every known value is accepted,
-- an unknown one is refused by the constraint's name.
INSERT INTO sf_bulk.jobs (owner, server_name, operation, object, nulls, line_ending, column_delimiter,
                          max_upload_bytes, columns)
VALUES (current_user::regrole, 's', 'insert', 'Lead', 'keep', 'LF', 'COMMA', 1000000, '{LastName}')
RETURNING id AS job \gset
INSERT INTO sf_bulk.chunks (job_id, chunk_no, spool_file, rows, bytes) VALUES (:job, 1, 'x.csv', 1, 9);
INSERT INTO sf_bulk.results (job_id, chunk_no, kind, row_hash, fields) VALUES (:job, 1, 's', 0, '{}');
SELECT step FROM sf_bulk.chunks WHERE job_id = :job;
-- Every value of each closed set is accepted.
DO $$
DECLARE v text;
BEGIN
  FOREACH v IN ARRAY ARRAY['spooled', 'creating', 'created', 'uploading', 'uploaded', 'closing', 'processing',
                           'fetching', 'done', 'failed', 'aborted'] LOOP
    UPDATE sf_bulk.chunks SET step = v;
  END LOOP;
  FOREACH v IN ARRAY ARRAY['queued', 'running', 'completed', 'failed', 'aborted'] LOOP
    UPDATE sf_bulk.jobs SET state = v;
  END LOOP;
  FOREACH v IN ARRAY ARRAY['insert', 'update', 'upsert', 'delete', 'hardDelete'] LOOP
    UPDATE sf_bulk.jobs SET operation = v;
  END LOOP;
  FOREACH v IN ARRAY ARRAY['spooling', 'creating Salesforce job', 'uploading', 'closing upload', 'processing',
                           'fetching results', 'storing results', NULL] LOOP
    UPDATE sf_bulk.jobs SET phase = v;
  END LOOP;
  -- csv::parse_delimiter and csv::parse_line_ending ignore ASCII case, and so do their constraints.
  FOREACH v IN ARRAY ARRAY['COMMA', 'TAB', 'SEMICOLON', 'PIPE', 'CARET', 'BACKQUOTE', 'tab', 'Semicolon'] LOOP
    UPDATE sf_bulk.jobs SET column_delimiter = v;
  END LOOP;
  FOREACH v IN ARRAY ARRAY['LF', 'CRLF', 'lf', 'crlf'] LOOP
    UPDATE sf_bulk.jobs SET line_ending = v;
  END LOOP;
  FOREACH v IN ARRAY ARRAY['keep', 'clear'] LOOP
    UPDATE sf_bulk.jobs SET nulls = v;
  END LOOP;
  FOREACH v IN ARRAY ARRAY['s', 'f', 'u'] LOOP
    UPDATE sf_bulk.results SET kind = v::"char";
  END LOOP;
END
$$;
-- Unknown values: each refused, by name.
UPDATE sf_bulk.chunks SET step = 'paused' WHERE job_id = :job;
UPDATE sf_bulk.chunks SET step = 'Done' WHERE job_id = :job;
INSERT INTO sf_bulk.chunks (job_id, chunk_no, spool_file, rows, bytes, step) VALUES (:job, 2, 'y.csv', 1, 9, '');
UPDATE sf_bulk.jobs SET state = 'paused' WHERE id = :job;
INSERT INTO sf_bulk.jobs (owner, server_name, operation, object, nulls, line_ending, column_delimiter,
                          max_upload_bytes, columns, state)
VALUES (current_user::regrole, 's', 'insert', 'Lead', 'keep', 'LF', 'COMMA', 1000000, '{LastName}', 'Running');
-- A query job is more than its operation: an ingest job cannot become one.
UPDATE sf_bulk.jobs SET operation = 'query' WHERE id = :job;
UPDATE sf_bulk.jobs SET phase = 'thinking' WHERE id = :job;
UPDATE sf_bulk.jobs SET phase = '' WHERE id = :job;
UPDATE sf_bulk.jobs SET column_delimiter = 'COLON' WHERE id = :job;
UPDATE sf_bulk.jobs SET column_delimiter = ',' WHERE id = :job;
UPDATE sf_bulk.jobs SET line_ending = 'CR' WHERE id = :job;
UPDATE sf_bulk.jobs SET nulls = 'Keep' WHERE id = :job;
UPDATE sf_bulk.results SET kind = 'x' WHERE job_id = :job;
DELETE FROM sf_bulk.jobs WHERE id = :job;
DELETE FROM sf_bulk.results WHERE job_id = :job;

-- Through the functions: line ending and delimiter names in any case, as their parsers take them (1.0's
-- constraint refused line_ending => 'crlf' after the parser had accepted it).
CREATE SERVER cat_srv FOREIGN DATA WRAPPER salesforce OPTIONS (login_url 'http://127.0.0.1:9');
CREATE USER MAPPING FOR CURRENT_USER SERVER cat_srv
  OPTIONS (auth 'access_token', access_token '00D000000000001!Secret-Cat');
SELECT sf_bulk_insert('Lead', $$SELECT 'x' AS "LastName" WHERE false$$, line_ending => 'crlf',
                      column_delimiter => 'tab', validate => false) AS empty_job \gset
SELECT state, line_ending, column_delimiter FROM sf_bulk.jobs WHERE id = :empty_job;

DROP USER MAPPING FOR CURRENT_USER SERVER cat_srv;
DROP SERVER cat_srv;
DROP TABLE free_text;
DROP VIEW string_columns, member_tables;
DROP EXTENSION sf_bulk CASCADE;
