-- sf_bulk 1.4: the schema sf_bulk holds internal state; the foreign data wrapper `salesforce` holds connection
-- settings (servers) and credentials (user mappings).
-- Released scripts never change: a change is a new version, shipped as sf_bulk--A--B.sql for existing installs
-- and folded into a new sf_bulk--B.sql for fresh ones (test/scenarios/upgrade.sh checks both give one catalog).
-- 1.1 (sf_bulk--1.0--1.1.sql): a named CHECK constraint on every text column that holds a closed set of
-- values; each says where its set comes from. sql/catalog.sql lists the free-text columns.
-- 1.2 (sf_bulk--1.1--1.2.sql): the describe cache; sf_bulk_describe, sf_bulk_objects, sf_bulk_limits; the
-- ingest functions' `validate` (the pre-flight against the describe).
-- 1.3 (sf_bulk--1.2--1.3.sql): sf_bulk_query, a Bulk API 2.0 query job loaded into a table (sf_bulk.queries,
-- sf_bulk.query_pages, the query columns of sf_bulk.jobs and sf_bulk_jobs); sf_bulk_describe gains pg_type;
-- the wrapper gains a handler: foreign tables over Salesforce objects.
-- 1.4 (sf_bulk--1.3--1.4.sql): sf_bulk_sync, mirrors kept current (sf_bulk.syncs, sf_bulk.sync_runs, load mode
-- 'sync'), and the sf_bulk_syncs view.
\echo Use "CREATE EXTENSION sf_bulk" to load this file. \quit

-- Plain CREATE SCHEMA: the extension owns it, so nobody can pre-create it with hostile objects.
CREATE SCHEMA sf_bulk;
COMMENT ON SCHEMA sf_bulk IS 'internal state of the sf_bulk extension';
REVOKE ALL ON SCHEMA sf_bulk FROM PUBLIC;

CREATE FUNCTION sf_bulk.fdw_validator(options text[], catalog oid)
RETURNS void
AS 'MODULE_PATHNAME', 'sf_bulk_fdw_validator'
LANGUAGE C STRICT;

-- Foreign tables over Salesforce objects (src/pg/fdw_scan.cpp, fdw_import.cpp): the wrapper gains a handler,
-- so CREATE FOREIGN TABLE ... SERVER s OPTIONS (object 'Account') and IMPORT FOREIGN SCHEMA salesforce read the
-- org in the calling backend, through the REST query API or a Bulk API 2.0 query job.
CREATE FUNCTION sf_bulk.fdw_handler()
RETURNS fdw_handler
AS 'MODULE_PATHNAME', 'sf_bulk_fdw_handler'
LANGUAGE C STRICT;

CREATE FOREIGN DATA WRAPPER salesforce HANDLER sf_bulk.fdw_handler VALIDATOR sf_bulk.fdw_validator;
COMMENT ON FOREIGN DATA WRAPPER salesforce IS
  'Salesforce orgs: servers carry login_url, instance_url, api_version and engine; user mappings carry '
  'credentials; foreign tables read objects (options object, engine; columns: field)';

-- The schema is readable by everyone (row-level security limits each role to its own jobs); only the
-- extension's C functions, switching to the extension owner for the write, and the worker change rows.
GRANT USAGE ON SCHEMA sf_bulk TO PUBLIC;

-- One row per call of sf_bulk_insert/update/upsert/delete/hard_delete.
CREATE SEQUENCE sf_bulk.jobs_id_seq;
CREATE TABLE sf_bulk.jobs (
    id                 bigint PRIMARY KEY DEFAULT nextval('sf_bulk.jobs_id_seq'),
    owner              regrole NOT NULL,
    server_name        name NOT NULL,
    -- to_string(Operation) in src/core/bulk_api.cpp, for the ingest operations src/pg/enqueue.cpp starts.
    operation          text NOT NULL
                       CONSTRAINT jobs_operation_check
                       CHECK (operation IN ('insert', 'update', 'upsert', 'delete', 'hardDelete')),
    object             text NOT NULL,
    external_id        text,
    assignment_rule_id text,
    -- make_ingest_spec in src/core/ingest_spec.cpp accepts exactly these (delete and hardDelete store 'keep').
    nulls              text NOT NULL CONSTRAINT jobs_nulls_check CHECK (nulls IN ('keep', 'clear')),
    -- The caller's text as given (src/pg/enqueue.cpp); csv::parse_line_ending and csv::parse_delimiter in
    -- src/core/csv.cpp accept and read back these names in any ASCII case, which upper() under "C" mirrors.
    line_ending        text NOT NULL
                       CONSTRAINT jobs_line_ending_check
                       CHECK (pg_catalog.upper(line_ending COLLATE "C") IN ('LF', 'CRLF')),
    column_delimiter   text NOT NULL
                       CONSTRAINT jobs_column_delimiter_check
                       CHECK (pg_catalog.upper(column_delimiter COLLATE "C")
                              IN ('COMMA', 'TAB', 'SEMICOLON', 'PIPE', 'CARET', 'BACKQUOTE')),
    max_upload_bytes   bigint NOT NULL,
    columns            text[] NOT NULL,
    key_columns        text[] NOT NULL DEFAULT '{}',  -- kept in Postgres, never sent
    name               text,                          -- names a recurring push (pg_cron)
    after_job          bigint,                        -- runs only once this job has ended (if_running => 'queue')
    retry_of           bigint,                        -- sf_bulk_retry: the job whose failures this re-sends
    -- 'queued' and 'completed' (no rows) by src/pg/enqueue.cpp, 'running', 'completed', 'failed' and 'aborted'
    -- by src/pg/job_store.cpp (the start of a job, finish_jobs).
    state              text NOT NULL DEFAULT 'queued'
                       CONSTRAINT jobs_state_check
                       CHECK (state IN ('queued', 'running', 'completed', 'failed', 'aborted')),
    -- NULL, or 'spooling' (src/pg/enqueue.cpp insert_job), or phase_of(ChunkStep) in src/pg/job_store.cpp.
    phase              text
                       CONSTRAINT jobs_phase_check
                       CHECK (phase IN ('spooling', 'creating Salesforce job', 'uploading', 'closing upload',
                                        'processing', 'fetching results', 'storing results')),
    rows_spooled       bigint NOT NULL DEFAULT 0,
    bytes_spooled      bigint NOT NULL DEFAULT 0,
    uploads            integer NOT NULL DEFAULT 0,
    api_calls          bigint NOT NULL DEFAULT 0,
    org_api_usage      text,                          -- the org's last Sforce-Limit-Info: api-usage=USED/MAX
    abort_requested    boolean NOT NULL DEFAULT false,
    error              text,
    created_at         timestamptz NOT NULL DEFAULT pg_catalog.now(),
    started_at         timestamptz,
    finished_at        timestamptz
);
ALTER SEQUENCE sf_bulk.jobs_id_seq OWNED BY sf_bulk.jobs.id;
CREATE INDEX jobs_unfinished ON sf_bulk.jobs (id) WHERE state IN ('queued', 'running');

-- One row per upload: a spool file of at most max_upload_bytes, sent as one Salesforce ingest job.
-- `step` is written before each remote side effect and after its outcome, so a restarted worker knows
-- what was done (see src/core/ingest_machine.h).
CREATE TABLE sf_bulk.chunks (
    job_id            bigint NOT NULL REFERENCES sf_bulk.jobs (id) ON DELETE CASCADE,
    chunk_no          integer NOT NULL,
    spool_file        text NOT NULL,
    rows              bigint NOT NULL,
    bytes             bigint NOT NULL,
    -- to_string(ChunkStep): kStepNames in src/core/ingest_machine.cpp (written by src/pg/job_store.cpp).
    step              text NOT NULL DEFAULT 'spooled'
                      CONSTRAINT chunks_step_check
                      CHECK (step IN ('spooled', 'creating', 'created', 'uploading', 'uploaded', 'closing',
                                      'processing', 'fetching', 'done', 'failed', 'aborted')),
    sf_job_id         text,
    sf_state          text,           -- Salesforce's job state verbatim (even one parse_job_state does not know)
    records_processed bigint NOT NULL DEFAULT 0,
    records_failed    bigint NOT NULL DEFAULT 0,
    attempts          integer NOT NULL DEFAULT 0,
    not_before        timestamptz,
    error             text,
    replaced_sf_job_ids text[] NOT NULL DEFAULT '{}',
    unmatched_results integer NOT NULL DEFAULT 0,    -- results whose row could not be told (key recovery)
    updated_at        timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (job_id, chunk_no)
);

-- The source key of every row sent by a job with key columns, and the fingerprint of the values sent for it.
-- Salesforce echoes the values in its results (in no order), so results find their row by fingerprint.
-- No foreign key on sent and results: a referential check per row would cost more than storing the row
-- (millions per job); rows go with their job through sf_bulk.delete_jobs and the worker's purge.
CREATE TABLE sf_bulk.sent (
    job_id     bigint NOT NULL,
    chunk_no   integer NOT NULL,
    row_no     bigint NOT NULL,
    row_hash   bigint NOT NULL,
    key        text
);
CREATE INDEX sent_by_chunk ON sf_bulk.sent (job_id, chunk_no);

-- Salesforce's per-row results, stored in bulk when a chunk's Salesforce job has ended.
CREATE TABLE sf_bulk.results (
    job_id        bigint NOT NULL,
    chunk_no      integer NOT NULL,
    -- successful, failed, unprocessed: the IngestResult of the result file (src/pg/result_store.cpp).
    kind          "char" NOT NULL CONSTRAINT results_kind_check CHECK (kind IN ('s', 'f', 'u')),
    key           text,            -- the source row's key (jobs with key columns)
    sf_id         text,
    sf_created    boolean,
    sf_error      text,
    error_code    text,            -- the first error of sf_error, split: REQUIRED_FIELD_MISSING
    error_message text,            -- Required fields are missing: [LastName]
    error_fields  text[],          -- {LastName}
    row_hash      bigint NOT NULL,
    fields        jsonb NOT NULL
);
CREATE INDEX results_by_job ON sf_bulk.results (job_id, kind);

-- pg_dump keeps the rows of these tables (jobs survive a dump and restore). No credentials live here.
SELECT pg_catalog.pg_extension_config_dump('sf_bulk.jobs', '');
SELECT pg_catalog.pg_extension_config_dump('sf_bulk.jobs_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('sf_bulk.chunks', '');
SELECT pg_catalog.pg_extension_config_dump('sf_bulk.results', '');
SELECT pg_catalog.pg_extension_config_dump('sf_bulk.sent', '');

-- Each role sees only its own jobs and their rows; superusers (and the worker) see all.
ALTER TABLE sf_bulk.jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE sf_bulk.chunks ENABLE ROW LEVEL SECURITY;
ALTER TABLE sf_bulk.results ENABLE ROW LEVEL SECURITY;
ALTER TABLE sf_bulk.sent ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_jobs ON sf_bulk.jobs FOR SELECT
    USING (owner OPERATOR(pg_catalog.=) pg_catalog.current_user()::pg_catalog.regrole);
CREATE POLICY own_chunks ON sf_bulk.chunks FOR SELECT
    USING (EXISTS (SELECT 1 FROM sf_bulk.jobs j WHERE j.id OPERATOR(pg_catalog.=) chunks.job_id));
CREATE POLICY own_results ON sf_bulk.results FOR SELECT
    USING (EXISTS (SELECT 1 FROM sf_bulk.jobs j WHERE j.id OPERATOR(pg_catalog.=) results.job_id));
CREATE POLICY own_sent ON sf_bulk.sent FOR SELECT
    USING (EXISTS (SELECT 1 FROM sf_bulk.jobs j WHERE j.id OPERATOR(pg_catalog.=) sent.job_id));
REVOKE ALL ON sf_bulk.jobs, sf_bulk.chunks, sf_bulk.results, sf_bulk.sent, sf_bulk.jobs_id_seq FROM PUBLIC;
GRANT SELECT ON sf_bulk.jobs, sf_bulk.chunks, sf_bulk.results, sf_bulk.sent TO PUBLIC;

-- What users look at: one row per job of theirs (superusers: all), progress summed over its uploads.
CREATE VIEW sf_bulk_jobs WITH (security_invoker = true) AS
SELECT j.id,
       j.owner,
       j.server_name AS server,
       j.operation,
       j.object,
       j.external_id,
       j.state,
       j.phase,
       j.rows_spooled,
       j.bytes_spooled,
       j.uploads,
       c.sf_job_ids,
       coalesce(c.records_processed, 0) AS records_processed,
       coalesce(c.records_failed, 0) AS records_failed,
       j.api_calls,
       j.org_api_usage,
       j.key_columns,
       coalesce(c.unmatched_results, 0) AS unmatched_results,
       j.name,
       j.retry_of,
       coalesce(j.error, c.live_problem) AS error,
       j.created_at,
       j.started_at,
       j.finished_at
  FROM sf_bulk.jobs j
  LEFT JOIN LATERAL (
        SELECT pg_catalog.array_agg(ch.sf_job_id ORDER BY ch.chunk_no)
                   FILTER (WHERE ch.sf_job_id IS NOT NULL) AS sf_job_ids,
               pg_catalog.sum(ch.records_processed)::bigint AS records_processed,
               pg_catalog.sum(ch.records_failed)::bigint AS records_failed,
               pg_catalog.sum(ch.unmatched_results)::bigint AS unmatched_results,
               -- While a job runs: why an upload waits (a retry after a 503, the daily API limit, …).
               pg_catalog.string_agg(ch.error, '; ' ORDER BY ch.chunk_no)
                   FILTER (WHERE ch.error IS NOT NULL AND ch.step NOT IN ('done', 'failed', 'aborted'))
                   AS live_problem
          FROM sf_bulk.chunks ch
         WHERE ch.job_id OPERATOR(pg_catalog.=) j.id) c ON true;
GRANT SELECT ON sf_bulk_jobs TO PUBLIC;

-- Enqueue functions: run `query` now, in the caller's snapshot and privileges, spool its rows as
-- Salesforce CSV, and queue the job for the background worker, which starts once the caller commits.
CREATE FUNCTION sf_bulk_insert(object text, query text, server name DEFAULT NULL, nulls text DEFAULT 'keep',
                               max_upload_mb integer DEFAULT 100, assignment_rule_id text DEFAULT NULL,
                               line_ending text DEFAULT 'LF', column_delimiter text DEFAULT 'COMMA',
                               key text DEFAULT NULL, name text DEFAULT NULL, if_running text DEFAULT 'queue',
                               validate boolean DEFAULT true)
RETURNS bigint AS 'MODULE_PATHNAME', 'sf_bulk_insert' LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION sf_bulk_update(object text, query text, server name DEFAULT NULL, nulls text DEFAULT 'keep',
                               max_upload_mb integer DEFAULT 100, assignment_rule_id text DEFAULT NULL,
                               line_ending text DEFAULT 'LF', column_delimiter text DEFAULT 'COMMA',
                               key text DEFAULT NULL, name text DEFAULT NULL, if_running text DEFAULT 'queue',
                               validate boolean DEFAULT true)
RETURNS bigint AS 'MODULE_PATHNAME', 'sf_bulk_update' LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION sf_bulk_upsert(object text, query text, external_id text, server name DEFAULT NULL,
                               nulls text DEFAULT 'keep', max_upload_mb integer DEFAULT 100,
                               assignment_rule_id text DEFAULT NULL, line_ending text DEFAULT 'LF',
                               column_delimiter text DEFAULT 'COMMA', key text DEFAULT NULL, name text DEFAULT NULL,
                               if_running text DEFAULT 'queue',
                               validate boolean DEFAULT true)
RETURNS bigint AS 'MODULE_PATHNAME', 'sf_bulk_upsert' LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION sf_bulk_delete(object text, query text, server name DEFAULT NULL,
                               max_upload_mb integer DEFAULT 100, line_ending text DEFAULT 'LF',
                               column_delimiter text DEFAULT 'COMMA', key text DEFAULT NULL, name text DEFAULT NULL,
                               if_running text DEFAULT 'queue',
                               validate boolean DEFAULT true)
RETURNS bigint AS 'MODULE_PATHNAME', 'sf_bulk_delete' LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION sf_bulk_hard_delete(object text, query text, server name DEFAULT NULL,
                                    max_upload_mb integer DEFAULT 100, line_ending text DEFAULT 'LF',
                                    column_delimiter text DEFAULT 'COMMA', key text DEFAULT NULL,
                                    name text DEFAULT NULL, if_running text DEFAULT 'queue',
                                    validate boolean DEFAULT true)
RETURNS bigint AS 'MODULE_PATHNAME', 'sf_bulk_hard_delete' LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- True when `transaction` is the current transaction or one of its subtransactions.
CREATE FUNCTION sf_bulk.is_current_transaction(transaction xid)
RETURNS boolean AS 'MODULE_PATHNAME', 'sf_bulk_is_current_transaction' LANGUAGE C STABLE STRICT;

-- Marks the job for abort (if it is the caller's and not finished) and wakes the worker at commit.
CREATE FUNCTION sf_bulk.request_abort(job bigint)
RETURNS void AS 'MODULE_PATHNAME', 'sf_bulk_request_abort' LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;

-- sf_bulk_retry links the job it creates to the original; sf_bulk_purge deletes ended jobs.
CREATE FUNCTION sf_bulk.link_retry(job bigint, original bigint)
RETURNS void AS 'MODULE_PATHNAME', 'sf_bulk_link_retry' LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
CREATE FUNCTION sf_bulk.delete_jobs(ids bigint[])
RETURNS bigint AS 'MODULE_PATHNAME', 'sf_bulk_delete_jobs' LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;

-- Asks the worker to abort the job's Salesforce jobs that are still open or in progress; returns the
-- job's row (its state becomes 'aborted' once the worker has done so: see sf_bulk_wait).
CREATE FUNCTION sf_bulk_abort(job bigint)
RETURNS sf_bulk_jobs
LANGUAGE sql VOLATILE STRICT PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT sf_bulk.request_abort(job);
    SELECT * FROM @extschema@.sf_bulk_jobs WHERE id = job;
$$;

-- Blocks until the job is completed, failed or aborted, and returns its row. Interruptible (Ctrl-C,
-- statement_timeout). Each round reads the job with a fresh snapshot, which is why it refuses to run
-- where it could never see the worker's progress.
CREATE FUNCTION sf_bulk_wait(job bigint, timeout interval DEFAULT NULL)
RETURNS sf_bulk_jobs
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    result @extschema@.sf_bulk_jobs;
    deadline timestamptz := CASE WHEN timeout IS NULL THEN NULL ELSE clock_timestamp() + timeout END;
    nap double precision := 0.01;
    next_notice timestamptz := clock_timestamp() + interval '5 seconds';
BEGIN
    IF job IS NULL THEN
        RAISE EXCEPTION 'sf_bulk_wait: job must not be NULL';
    END IF;
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'sf_bulk_wait cannot wait inside a % transaction', current_setting('transaction_isolation')
              USING HINT = 'Its snapshot would never show the job finishing; call it in READ COMMITTED.';
    END IF;
    LOOP
        SELECT * INTO result FROM @extschema@.sf_bulk_jobs WHERE id = job;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'sf_bulk job % does not exist or is not yours', job USING ERRCODE = 'no_data_found';
        END IF;
        IF result.state IN ('completed', 'failed', 'aborted') THEN
            RETURN result;
        END IF;
        IF (SELECT sf_bulk.is_current_transaction(j.xmin) FROM sf_bulk.jobs j WHERE j.id = job) THEN
            RAISE EXCEPTION 'sf_bulk_wait cannot wait for job % created in the same transaction', job
                  USING HINT = 'The worker starts the job when this transaction commits; COMMIT first, then wait.';
        END IF;
        IF deadline IS NOT NULL AND clock_timestamp() >= deadline THEN
            RAISE EXCEPTION 'sf_bulk job % is still % after waiting %', job,
                  coalesce(result.state || ' (' || result.phase || ')', result.state), timeout
                  USING ERRCODE = 'query_canceled',
                        HINT = 'The job keeps running; wait again or watch it in sf_bulk_jobs.';
        END IF;
        -- A progress line every few seconds (psql shows NOTICEs; client_min_messages = warning hides them).
        IF clock_timestamp() >= next_notice THEN
            RAISE NOTICE 'sf_bulk job %: % (%), % of % rows processed by Salesforce, % failed', job, result.state,
                  coalesce(result.phase, 'waiting'), result.records_processed, result.rows_spooled,
                  result.records_failed;
            next_notice := clock_timestamp() + interval '5 seconds';
        END IF;
        PERFORM pg_sleep(CASE WHEN deadline IS NULL THEN nap
                              ELSE least(nap, greatest(0, extract(epoch FROM deadline - clock_timestamp()))) END);
        nap := least(nap * 2, 0.2);
    END LOOP;
END
$$;

-- Result readers. Each row carries the Salesforce columns and the fields exactly as sent, as jsonb
-- keyed by the Salesforce field names (join back with fields->>'External_Id__c' and the like).
CREATE FUNCTION sf_bulk_successful(job bigint)
RETURNS TABLE (job_id bigint, key text, sf_job_id text, sf_id text, sf_created boolean, fields jsonb)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT r.job_id, r.key, c.sf_job_id, r.sf_id, r.sf_created, r.fields
      FROM sf_bulk.results r
      JOIN sf_bulk.chunks c ON c.job_id = r.job_id AND c.chunk_no = r.chunk_no
     WHERE r.job_id = job AND r.kind = 's'
$$;

CREATE FUNCTION sf_bulk_failed(job bigint)
RETURNS TABLE (job_id bigint, key text, sf_job_id text, sf_id text, sf_error text, error_code text,
               error_message text, error_fields text[], fields jsonb)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT r.job_id, r.key, c.sf_job_id, r.sf_id, r.sf_error, r.error_code, r.error_message, r.error_fields,
           r.fields
      FROM sf_bulk.results r
      JOIN sf_bulk.chunks c ON c.job_id = r.job_id AND c.chunk_no = r.chunk_no
     WHERE r.job_id = job AND r.kind = 'f'
$$;

CREATE FUNCTION sf_bulk_unprocessed(job bigint)
RETURNS TABLE (job_id bigint, key text, sf_job_id text, fields jsonb)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT r.job_id, r.key, c.sf_job_id, r.fields
      FROM sf_bulk.results r
      JOIN sf_bulk.chunks c ON c.job_id = r.job_id AND c.chunk_no = r.chunk_no
     WHERE r.job_id = job AND r.kind = 'u'
$$;

-- A new job that re-sends the rows of `job` that Salesforce refused: all of them, or only those whose error
-- code is in `error_codes` (e.g. '{UNABLE_TO_LOCK_ROW}'). The values are re-sent exactly as they were sent,
-- with the same source keys; the new job's retry_of names the original. NULL (with a notice) when there is
-- nothing to re-send.
CREATE FUNCTION sf_bulk_retry(job bigint, error_codes text[] DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    original sf_bulk.jobs;
    select_list text;
    query text;
    failures bigint;
    retry bigint;
    has_key boolean;
BEGIN
    IF job IS NULL THEN
        RAISE EXCEPTION 'sf_bulk_retry: job must not be NULL';
    END IF;
    SELECT * INTO original FROM sf_bulk.jobs j WHERE j.id = job;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'sf_bulk job % does not exist or is not yours', job USING ERRCODE = 'no_data_found';
    END IF;
    IF original.state NOT IN ('completed', 'failed', 'aborted') THEN
        RAISE EXCEPTION 'sf_bulk job % is still %', job, original.state
              USING HINT = 'Retry its failures once it has ended (sf_bulk_wait).';
    END IF;
    SELECT count(*) INTO failures FROM sf_bulk.results r
     WHERE r.job_id = job AND r.kind = 'f' AND (error_codes IS NULL OR r.error_code = ANY (error_codes));
    IF failures = 0 THEN
        RAISE NOTICE 'sf_bulk job % has no failed rows%; nothing to retry', job,
              CASE WHEN error_codes IS NULL THEN '' ELSE ' with error codes ' || error_codes::text END;
        RETURN NULL;
    END IF;
    has_key := cardinality(original.key_columns) > 0;
    SELECT string_agg(format('r.fields ->> %L AS %I', c, c), ', ' ORDER BY o) INTO select_list
      FROM unnest(original.columns) WITH ORDINALITY AS u(c, o);
    query := format('SELECT %s%s FROM sf_bulk.results r WHERE r.job_id = %s AND r.kind = %L',
                    select_list, CASE WHEN has_key THEN ', r.key AS sf_bulk_key' ELSE '' END, job, 'f');
    IF error_codes IS NOT NULL THEN
        query := query || format(' AND r.error_code = ANY (%L::text[])', error_codes);
    END IF;
    -- The stored values are already Salesforce text (NULLs became '' or #N/A when first sent): keep them.
    retry := CASE original.operation
        WHEN 'insert' THEN @extschema@.sf_bulk_insert(original.object, query, server => original.server_name,
            max_upload_mb => (original.max_upload_bytes / 1000000)::int, assignment_rule_id => original.assignment_rule_id,
            line_ending => original.line_ending, column_delimiter => original.column_delimiter,
            key => CASE WHEN has_key THEN 'sf_bulk_key' END)
        WHEN 'update' THEN @extschema@.sf_bulk_update(original.object, query, server => original.server_name,
            max_upload_mb => (original.max_upload_bytes / 1000000)::int, assignment_rule_id => original.assignment_rule_id,
            line_ending => original.line_ending, column_delimiter => original.column_delimiter,
            key => CASE WHEN has_key THEN 'sf_bulk_key' END)
        WHEN 'upsert' THEN @extschema@.sf_bulk_upsert(original.object, query, original.external_id,
            server => original.server_name, max_upload_mb => (original.max_upload_bytes / 1000000)::int,
            assignment_rule_id => original.assignment_rule_id, line_ending => original.line_ending,
            column_delimiter => original.column_delimiter, key => CASE WHEN has_key THEN 'sf_bulk_key' END)
        WHEN 'delete' THEN @extschema@.sf_bulk_delete(original.object, query, server => original.server_name,
            max_upload_mb => (original.max_upload_bytes / 1000000)::int, line_ending => original.line_ending,
            column_delimiter => original.column_delimiter, key => CASE WHEN has_key THEN 'sf_bulk_key' END)
        ELSE @extschema@.sf_bulk_hard_delete(original.object, query, server => original.server_name,
            max_upload_mb => (original.max_upload_bytes / 1000000)::int, line_ending => original.line_ending,
            column_delimiter => original.column_delimiter, key => CASE WHEN has_key THEN 'sf_bulk_key' END)
    END;
    PERFORM sf_bulk.link_retry(retry, job);
    RETURN retry;
END
$$;

-- Deletes the caller's jobs (superusers: all) that ended before now() - older_than, with their results.
-- The worker does the same on its own after sf_bulk.retention.
CREATE FUNCTION sf_bulk_purge(older_than interval)
RETURNS bigint
LANGUAGE sql VOLATILE STRICT PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT sf_bulk.delete_jobs(ARRAY(SELECT j.id FROM sf_bulk.jobs j
                                      WHERE j.state IN ('completed', 'failed', 'aborted')
                                        AND j.finished_at < now() - older_than));
$$;

-- ---- 1.2: asking the org before sending (sf_bulk--1.1--1.2.sql) ----

-- What Salesforce said an org's objects look like (src/pg/describe_cache.cpp), per user mapping: field-level
-- security makes the describe of one Salesforce user differ from another's. `object` is the API name in lower
-- case, '' for describeGlobal (the list of objects). A row younger than sf_bulk.describe_ttl is used as it is;
-- an older one is revalidated with If-Modified-Since: `validator`, the Date of the answer it came from.
-- Only the extension's functions read and write it (as the extension owner); no credentials live here.
CREATE TABLE sf_bulk.describe (
    server_name  name NOT NULL,
    mapping      oid NOT NULL,            -- pg_user_mapping.oid: the caller's own mapping, or PUBLIC's
    object       text NOT NULL,
    api_version  text NOT NULL,
    body         jsonb NOT NULL,
    validator    text,
    fetched_at   timestamptz NOT NULL,
    PRIMARY KEY (mapping, object, api_version)
);
-- Row-level security without a policy: like every sf_bulk table it is behind RLS, and nobody but its owner
-- (the extension's functions) sees a row.
ALTER TABLE sf_bulk.describe ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON sf_bulk.describe FROM PUBLIC;

CREATE FUNCTION sf_bulk.describe_object(object text, server name, refresh boolean)
RETURNS jsonb AS 'MODULE_PATHNAME', 'sf_bulk_describe_object' LANGUAGE C VOLATILE PARALLEL UNSAFE;
CREATE FUNCTION sf_bulk.describe_global(server name, refresh boolean)
RETURNS jsonb AS 'MODULE_PATHNAME', 'sf_bulk_describe_global' LANGUAGE C VOLATILE PARALLEL UNSAFE;
CREATE FUNCTION sf_bulk.org_limits(server name)
RETURNS jsonb AS 'MODULE_PATHNAME', 'sf_bulk_org_limits' LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- One row per field of the object, in Salesforce's order, as the server's user sees it.
CREATE FUNCTION sf_bulk_describe(object text, server name DEFAULT NULL, refresh boolean DEFAULT false)
RETURNS TABLE (name text, label text, type text, length integer, "precision" integer, scale integer,
               nillable boolean, createable boolean, updateable boolean, defaulted_on_create boolean,
               external_id boolean, id_lookup boolean, is_unique boolean, calculated boolean,
               reference_to text[], relationship_name text, picklist_values text[], restricted_picklist boolean)
LANGUAGE sql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT f->>'name', f->>'label', f->>'type', (f->>'length')::integer, (f->>'precision')::integer,
           (f->>'scale')::integer, (f->>'nillable')::boolean, (f->>'createable')::boolean,
           (f->>'updateable')::boolean, (f->>'defaultedOnCreate')::boolean, (f->>'externalId')::boolean,
           (f->>'idLookup')::boolean, (f->>'unique')::boolean, (f->>'calculated')::boolean,
           CASE WHEN jsonb_typeof(f->'referenceTo') = 'array'
                THEN ARRAY(SELECT jsonb_array_elements_text(f->'referenceTo')) END,
           f->>'relationshipName',
           CASE WHEN jsonb_typeof(f->'picklistValues') = 'array'
                     AND jsonb_array_length(f->'picklistValues') > 0
                THEN ARRAY(SELECT p->>'value' FROM jsonb_array_elements(f->'picklistValues') p
                            WHERE coalesce((p->>'active')::boolean, true)) END,
           (f->>'restrictedPicklist')::boolean
      FROM jsonb_array_elements(sf_bulk.describe_object(object, server, refresh)->'fields')
           WITH ORDINALITY AS d(f, n)
     ORDER BY n
$$;

-- One row per object of the org (describeGlobal), as the server's user sees it.
CREATE FUNCTION sf_bulk_objects(server name DEFAULT NULL, refresh boolean DEFAULT false)
RETURNS TABLE (name text, label text, custom boolean, queryable boolean, createable boolean,
               updateable boolean, deletable boolean, replicateable boolean, key_prefix text)
LANGUAGE sql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT o->>'name', o->>'label', (o->>'custom')::boolean, (o->>'queryable')::boolean,
           (o->>'createable')::boolean, (o->>'updateable')::boolean, (o->>'deletable')::boolean,
           (o->>'replicateable')::boolean, o->>'keyPrefix'
      FROM jsonb_array_elements(sf_bulk.describe_global(server, refresh)->'sobjects') AS g(o)
     ORDER BY 1
$$;

-- The org's limits now (GET /limits, never cached): one row per limit, and one per connected app where
-- Salesforce breaks a limit down by app (`app` names it; NULL for the org's total).
CREATE FUNCTION sf_bulk_limits(server name DEFAULT NULL)
RETURNS TABLE (name text, app text, max bigint, remaining bigint)
LANGUAGE sql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH l(body) AS (SELECT sf_bulk.org_limits(server))
    SELECT k, NULL::text, (v->>'Max')::bigint, (v->>'Remaining')::bigint
      FROM l, jsonb_each(l.body) AS e(k, v)
     WHERE jsonb_typeof(v) = 'object'
    UNION ALL
    SELECT k, a, (av->>'Max')::bigint, (av->>'Remaining')::bigint
      FROM l, jsonb_each(l.body) AS e(k, v), jsonb_each(v) AS s(a, av)
     WHERE jsonb_typeof(v) = 'object' AND jsonb_typeof(av) = 'object'
     ORDER BY 1, 2 NULLS FIRST
$$;

-- ---- 1.3: sf_bulk_query (sf_bulk--1.2--1.3.sql) ----


-- A query job is a row of sf_bulk.jobs like an ingest job (same ledger, same view, wait and abort): operation
-- 'query' or 'queryAll' (Operation in src/core/bulk_api.cpp), object = the SOQL's FROM object, columns = the
-- selected field paths as written (Owner.Email), and the load's target and mode. Ingest-only columns keep
-- their defaults (nulls 'keep', line ending 'LF', max_upload_bytes 0).
ALTER TABLE sf_bulk.jobs DROP CONSTRAINT jobs_operation_check;
ALTER TABLE sf_bulk.jobs ADD CONSTRAINT jobs_operation_check
    CHECK (operation IN ('insert', 'update', 'upsert', 'delete', 'hardDelete', 'query', 'queryAll'));
-- The query phases: phase_of(QueryJobStep) in src/pg/query_store.cpp.
ALTER TABLE sf_bulk.jobs DROP CONSTRAINT jobs_phase_check;
ALTER TABLE sf_bulk.jobs ADD CONSTRAINT jobs_phase_check
    CHECK (phase IN ('spooling', 'creating Salesforce job', 'uploading', 'closing upload', 'processing',
                     'fetching results', 'storing results', 'querying', 'listing result pages', 'downloading',
                     'loading'));
ALTER TABLE sf_bulk.jobs
    ADD COLUMN soql text,
    -- The table the rows go to: its name, resolved again when the rows are loaded, and the table it named
    -- at the call. A table renamed, dropped or replaced by another of the same name meanwhile fails the load
    -- with its name instead of filling another one.
    ADD COLUMN target_schema name,
    ADD COLUMN target_table name,
    ADD COLUMN target_relid oid,
    -- parse_load_mode in src/pg/query_enqueue.cpp.
    ADD COLUMN load_mode text CONSTRAINT jobs_load_mode_check CHECK (load_mode IN ('append', 'replace', 'merge', 'sync')),
    ADD COLUMN page_size bigint CONSTRAINT jobs_page_size_check CHECK (page_size > 0),
    ADD COLUMN rows_loaded bigint;
-- A query job has a load mode and an ingest job none (src/pg/query_enqueue.cpp also sets soql and the target).
ALTER TABLE sf_bulk.jobs ADD CONSTRAINT jobs_query_check
    CHECK ((operation IN ('query', 'queryAll')) = (load_mode IS NOT NULL));

-- The query job's durable state: QueryJobRecord of src/core/query_machine.h, written before each remote
-- effect and after its outcome, so a restarted worker knows what was done. api_version is fixed when the
-- job is queued: every call about one Salesforce query job must use the version that created it (409).
CREATE TABLE sf_bulk.queries (
    job_id            bigint PRIMARY KEY REFERENCES sf_bulk.jobs (id) ON DELETE CASCADE,
    api_version       text NOT NULL,
    -- to_string(QueryJobStep) in src/core/query_machine.cpp.
    step              text NOT NULL DEFAULT 'pending'
                      CONSTRAINT queries_step_check
                      CHECK (step IN ('pending', 'creating', 'polling', 'listing', 'downloading', 'loading',
                                      'done', 'failed', 'aborted')),
    sf_job_id         text,
    sf_state          text,           -- Salesforce's job state verbatim
    records_processed bigint NOT NULL DEFAULT 0,
    attempts          integer NOT NULL DEFAULT 0,
    not_before        timestamptz,
    error             text,
    page_list_url     text,           -- the resultPages set to GET next (NULL: the first)
    page_list_done    boolean NOT NULL DEFAULT false,
    updated_at        timestamptz NOT NULL DEFAULT pg_catalog.now()
);

-- One row per result page: QueryPageRecord. Inserted by the worker with the job record that revealed it.
CREATE TABLE sf_bulk.query_pages (
    job_id          bigint NOT NULL REFERENCES sf_bulk.queries (job_id) ON DELETE CASCADE,
    page_no         integer NOT NULL CONSTRAINT query_pages_page_no_check CHECK (page_no > 0),
    path_or_locator text NOT NULL,    -- a resultUrl, or a locator ('' = the first page)
    spool_file      text NOT NULL,
    -- to_string(QueryPageStep) in src/core/query_machine.cpp.
    step            text NOT NULL DEFAULT 'pending'
                    CONSTRAINT query_pages_step_check
                    CHECK (step IN ('pending', 'downloading', 'downloaded', 'failed')),
    records         bigint NOT NULL DEFAULT 0,
    bytes           bigint NOT NULL DEFAULT 0,
    next_locator    text,
    attempts        integer NOT NULL DEFAULT 0,
    not_before      timestamptz,
    error           text,
    updated_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (job_id, page_no)
);

SELECT pg_catalog.pg_extension_config_dump('sf_bulk.queries', '');
SELECT pg_catalog.pg_extension_config_dump('sf_bulk.query_pages', '');
ALTER TABLE sf_bulk.queries ENABLE ROW LEVEL SECURITY;
ALTER TABLE sf_bulk.query_pages ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_queries ON sf_bulk.queries FOR SELECT
    USING (EXISTS (SELECT 1 FROM sf_bulk.jobs j WHERE j.id OPERATOR(pg_catalog.=) queries.job_id));
CREATE POLICY own_query_pages ON sf_bulk.query_pages FOR SELECT
    USING (EXISTS (SELECT 1 FROM sf_bulk.jobs j WHERE j.id OPERATOR(pg_catalog.=) query_pages.job_id));
REVOKE ALL ON sf_bulk.queries, sf_bulk.query_pages FROM PUBLIC;
GRANT SELECT ON sf_bulk.queries, sf_bulk.query_pages TO PUBLIC;

-- The view gains the query jobs' progress: their Salesforce job, records, pages and the rows loaded. New
-- columns come last (CREATE OR REPLACE VIEW keeps the existing ones as they are).
CREATE OR REPLACE VIEW sf_bulk_jobs WITH (security_invoker = true) AS
SELECT j.id,
       j.owner,
       j.server_name AS server,
       j.operation,
       j.object,
       j.external_id,
       j.state,
       CASE WHEN j.phase OPERATOR(pg_catalog.=) 'downloading'
            THEN pg_catalog.format('downloading %s of %s pages', q.pages_downloaded, q.pages)
            ELSE j.phase END AS phase,
       j.rows_spooled,
       j.bytes_spooled,
       j.uploads,
       coalesce(c.sf_job_ids, CASE WHEN q.sf_job_id IS NOT NULL THEN ARRAY[q.sf_job_id] END) AS sf_job_ids,
       coalesce(c.records_processed, q.records_processed, 0) AS records_processed,
       coalesce(c.records_failed, 0) AS records_failed,
       j.api_calls,
       j.org_api_usage,
       j.key_columns,
       coalesce(c.unmatched_results, 0) AS unmatched_results,
       j.name,
       j.retry_of,
       coalesce(j.error, c.live_problem, q.live_problem) AS error,
       j.created_at,
       j.started_at,
       j.finished_at,
       CASE WHEN j.target_table IS NOT NULL
            THEN pg_catalog.quote_ident(j.target_schema) OPERATOR(pg_catalog.||) '.'
                 OPERATOR(pg_catalog.||) pg_catalog.quote_ident(j.target_table) END AS target,
       j.load_mode,
       j.soql,
       q.pages,
       q.pages_downloaded,
       q.bytes_downloaded,
       j.rows_loaded
  FROM sf_bulk.jobs j
  LEFT JOIN LATERAL (
        SELECT pg_catalog.array_agg(ch.sf_job_id ORDER BY ch.chunk_no)
                   FILTER (WHERE ch.sf_job_id IS NOT NULL) AS sf_job_ids,
               pg_catalog.sum(ch.records_processed)::bigint AS records_processed,
               pg_catalog.sum(ch.records_failed)::bigint AS records_failed,
               pg_catalog.sum(ch.unmatched_results)::bigint AS unmatched_results,
               -- While a job runs: why an upload waits (a retry after a 503, the daily API limit, …).
               pg_catalog.string_agg(ch.error, '; ' ORDER BY ch.chunk_no)
                   FILTER (WHERE ch.error IS NOT NULL AND ch.step NOT IN ('done', 'failed', 'aborted'))
                   AS live_problem
          FROM sf_bulk.chunks ch
         WHERE ch.job_id OPERATOR(pg_catalog.=) j.id) c ON true
  LEFT JOIN LATERAL (
        SELECT qu.sf_job_id,
               qu.records_processed,
               (SELECT pg_catalog.count(*) FROM sf_bulk.query_pages p
                 WHERE p.job_id OPERATOR(pg_catalog.=) qu.job_id) AS pages,
               (SELECT pg_catalog.count(*) FROM sf_bulk.query_pages p
                 WHERE p.job_id OPERATOR(pg_catalog.=) qu.job_id AND p.step = 'downloaded') AS pages_downloaded,
               (SELECT pg_catalog.sum(p.bytes)::bigint FROM sf_bulk.query_pages p
                 WHERE p.job_id OPERATOR(pg_catalog.=) qu.job_id) AS bytes_downloaded,
               -- While the job runs: why it or a page waits (a retry after a 503, a page fetched again, …).
               CASE WHEN qu.step NOT IN ('done', 'failed', 'aborted') THEN
                   coalesce(qu.error, (SELECT pg_catalog.string_agg('page ' OPERATOR(pg_catalog.||) p.page_no
                                                                    OPERATOR(pg_catalog.||) ': '
                                                                    OPERATOR(pg_catalog.||) p.error,
                                                                    '; ' ORDER BY p.page_no)
                                         FROM sf_bulk.query_pages p
                                        WHERE p.job_id OPERATOR(pg_catalog.=) qu.job_id
                                          AND p.error IS NOT NULL AND p.step <> 'downloaded'))
               END AS live_problem
          FROM sf_bulk.queries qu
         WHERE qu.job_id OPERATOR(pg_catalog.=) j.id) q ON true;

-- Runs `soql` as a Bulk API 2.0 query job in the worker and loads its rows into `target` (created from the
-- object's describe when it does not exist). Returns the job id at once, like the ingest functions. `target`
-- and not `into`: INTO is a reserved word, which PostgreSQL does not accept as a parameter name in a call.
CREATE FUNCTION sf_bulk_query(soql text, target text, server name DEFAULT NULL, mode text DEFAULT 'append',
                              all_rows boolean DEFAULT false, name text DEFAULT NULL,
                              if_running text DEFAULT 'queue', column_delimiter text DEFAULT 'COMMA',
                              page_size bigint DEFAULT NULL, validate boolean DEFAULT true)
RETURNS bigint AS 'MODULE_PATHNAME', 'sf_bulk_query' LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- The wait's progress line speaks of pages and rows loaded for a query job.
CREATE OR REPLACE FUNCTION sf_bulk_wait(job bigint, timeout interval DEFAULT NULL)
RETURNS sf_bulk_jobs
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    result @extschema@.sf_bulk_jobs;
    deadline timestamptz := CASE WHEN timeout IS NULL THEN NULL ELSE clock_timestamp() + timeout END;
    nap double precision := 0.01;
    next_notice timestamptz := clock_timestamp() + interval '5 seconds';
BEGIN
    IF job IS NULL THEN
        RAISE EXCEPTION 'sf_bulk_wait: job must not be NULL';
    END IF;
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'sf_bulk_wait cannot wait inside a % transaction', current_setting('transaction_isolation')
              USING HINT = 'Its snapshot would never show the job finishing; call it in READ COMMITTED.';
    END IF;
    LOOP
        SELECT * INTO result FROM @extschema@.sf_bulk_jobs WHERE id = job;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'sf_bulk job % does not exist or is not yours', job USING ERRCODE = 'no_data_found';
        END IF;
        IF result.state IN ('completed', 'failed', 'aborted') THEN
            RETURN result;
        END IF;
        IF (SELECT sf_bulk.is_current_transaction(j.xmin) FROM sf_bulk.jobs j WHERE j.id = job) THEN
            RAISE EXCEPTION 'sf_bulk_wait cannot wait for job % created in the same transaction', job
                  USING HINT = 'The worker starts the job when this transaction commits; COMMIT first, then wait.';
        END IF;
        IF deadline IS NOT NULL AND clock_timestamp() >= deadline THEN
            RAISE EXCEPTION 'sf_bulk job % is still % after waiting %', job,
                  coalesce(result.state || ' (' || result.phase || ')', result.state), timeout
                  USING ERRCODE = 'query_canceled',
                        HINT = 'The job keeps running; wait again or watch it in sf_bulk_jobs.';
        END IF;
        -- A progress line every few seconds (psql shows NOTICEs; client_min_messages = warning hides them).
        IF clock_timestamp() >= next_notice THEN
            IF result.operation IN ('query', 'queryAll') THEN
                RAISE NOTICE 'sf_bulk job %: % (%), % records found by Salesforce, % of % pages downloaded', job,
                      result.state, coalesce(result.phase, 'waiting'), result.records_processed,
                      coalesce(result.pages_downloaded, 0), coalesce(result.pages, 0);
            ELSE
                RAISE NOTICE 'sf_bulk job %: % (%), % of % rows processed by Salesforce, % failed', job, result.state,
                      coalesce(result.phase, 'waiting'), result.records_processed, result.rows_spooled,
                      result.records_failed;
            END IF;
            next_notice := clock_timestamp() + interval '5 seconds';
        END IF;
        PERFORM pg_sleep(CASE WHEN deadline IS NULL THEN nap
                              ELSE least(nap, greatest(0, extract(epoch FROM deadline - clock_timestamp()))) END);
        nap := least(nap * 2, 0.2);
    END LOOP;
END
$$;

-- sf_bulk_describe gains pg_type: the column type sf_bulk_query creates for the field (NULL: Bulk API 2.0
-- query jobs do not return it). A new result column changes the return type, hence DROP and CREATE.
CREATE FUNCTION sf_bulk.column_types(describe jsonb)
RETURNS text[] AS 'MODULE_PATHNAME', 'sf_bulk_column_types' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
DROP FUNCTION sf_bulk_describe(text, name, boolean);
CREATE FUNCTION sf_bulk_describe(object text, server name DEFAULT NULL, refresh boolean DEFAULT false)
RETURNS TABLE (name text, label text, type text, length integer, "precision" integer, scale integer,
               nillable boolean, createable boolean, updateable boolean, defaulted_on_create boolean,
               external_id boolean, id_lookup boolean, is_unique boolean, calculated boolean,
               reference_to text[], relationship_name text, picklist_values text[], restricted_picklist boolean,
               pg_type text)
LANGUAGE sql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT f->>'name', f->>'label', f->>'type', (f->>'length')::integer, (f->>'precision')::integer,
           (f->>'scale')::integer, (f->>'nillable')::boolean, (f->>'createable')::boolean,
           (f->>'updateable')::boolean, (f->>'defaultedOnCreate')::boolean, (f->>'externalId')::boolean,
           (f->>'idLookup')::boolean, (f->>'unique')::boolean, (f->>'calculated')::boolean,
           CASE WHEN jsonb_typeof(f->'referenceTo') = 'array'
                THEN ARRAY(SELECT jsonb_array_elements_text(f->'referenceTo')) END,
           f->>'relationshipName',
           CASE WHEN jsonb_typeof(f->'picklistValues') = 'array'
                     AND jsonb_array_length(f->'picklistValues') > 0
                THEN ARRAY(SELECT p->>'value' FROM jsonb_array_elements(f->'picklistValues') p
                            WHERE coalesce((p->>'active')::boolean, true)) END,
           (f->>'restrictedPicklist')::boolean,
           t.types[n]
      FROM (SELECT sf_bulk.describe_object(object, server, refresh) AS body) x
     CROSS JOIN LATERAL (SELECT sf_bulk.column_types(x.body) AS types) t
     CROSS JOIN LATERAL jsonb_array_elements(x.body->'fields') WITH ORDINALITY AS d(f, n)
     ORDER BY n
$$;

-- One row per mirror: (server, object, target). Its watermark is the largest SystemModstamp applied to the
-- target, and it moves only in the transaction that applies the rows it covers (src/pg/sync_load.cpp).
CREATE SEQUENCE sf_bulk.syncs_id_seq;
CREATE TABLE sf_bulk.syncs (
    id                bigint PRIMARY KEY DEFAULT nextval('sf_bulk.syncs_id_seq'),
    owner             regrole NOT NULL,
    server_name       name NOT NULL,
    object            text NOT NULL,      -- the describe's spelling
    target_schema     name NOT NULL,
    target_table      name NOT NULL,
    target_relid      oid NOT NULL,
    fields            text[] NOT NULL,    -- the fields of the latest run, in describe order
    fields_default    boolean NOT NULL,   -- fields => NULL: new fields of the object become columns
    filter            text,               -- a SOQL condition ANDed into every run
    deletes           text NOT NULL CONSTRAINT syncs_deletes_check CHECK (deletes IN ('delete', 'mark')),
    overlap           interval NOT NULL CONSTRAINT syncs_overlap_check CHECK (overlap >= interval '0'),
    refresh_formulas  interval CONSTRAINT syncs_refresh_formulas_check CHECK (refresh_formulas > interval '0'),
    reconcile         interval CONSTRAINT syncs_reconcile_check CHECK (reconcile > interval '0'),
    watermark         timestamptz,        -- NULL until a run that reads SystemModstamp is applied
    -- Where the next /deleted/ window starts from: latestDateCovered of the last window applied.
    deleted_cursor    timestamptz,
    last_full_at      timestamptz,        -- when the last applied full run's query job was created
    last_formulas_at  timestamptz,        -- ... and the last run that read every calculated field
    created_at        timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT syncs_target_key UNIQUE (server_name, object, target_schema, target_table)
);

-- One row per run: the job, what kind of run it is and why, what the call found in /deleted/, and what the
-- load applied (NULL until then).
CREATE TABLE sf_bulk.sync_runs (
    job_id          bigint PRIMARY KEY REFERENCES sf_bulk.jobs (id) ON DELETE CASCADE,
    sync_id         bigint NOT NULL REFERENCES sf_bulk.syncs (id) ON DELETE CASCADE,
    -- to_string(SyncRunKind) in src/core/sync_plan.cpp.
    kind            text NOT NULL CONSTRAINT sync_runs_kind_check CHECK (kind IN ('full', 'incremental', 'formulas')),
    reason          text NOT NULL,
    since           timestamptz,        -- incremental: SystemModstamp >= since
    deleted_ids     text[],             -- the /deleted/ window's ids (an incremental run applies them)
    deleted_until   timestamptz,        -- its latestDateCovered: the next window starts there
    calculated      text[],             -- formulas: the calculated fields read
    rows_inserted   bigint,
    rows_updated    bigint,
    rows_deleted    bigint,
    watermark       timestamptz,        -- the sync's watermark after the load
    applied_at      timestamptz
);
CREATE INDEX sync_runs_sync_idx ON sf_bulk.sync_runs (sync_id, job_id);

SELECT pg_catalog.pg_extension_config_dump('sf_bulk.syncs', '');
SELECT pg_catalog.pg_extension_config_dump('sf_bulk.syncs_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('sf_bulk.sync_runs', '');
ALTER TABLE sf_bulk.syncs ENABLE ROW LEVEL SECURITY;
ALTER TABLE sf_bulk.sync_runs ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_syncs ON sf_bulk.syncs FOR SELECT
    USING (owner OPERATOR(pg_catalog.=) pg_catalog.current_user()::pg_catalog.regrole);
CREATE POLICY own_sync_runs ON sf_bulk.sync_runs FOR SELECT
    USING (EXISTS (SELECT 1 FROM sf_bulk.syncs s WHERE s.id OPERATOR(pg_catalog.=) sync_runs.sync_id));
REVOKE ALL ON sf_bulk.syncs, sf_bulk.sync_runs, sf_bulk.syncs_id_seq FROM PUBLIC;
GRANT SELECT ON sf_bulk.syncs, sf_bulk.sync_runs TO PUBLIC;

-- One row per mirror of the caller's (superusers: all): its state, the latest run, and what the latest applied
-- run did. lag: how long ago the latest applied run's query job was created; changes made in Salesforce before
-- that are in the table.
CREATE VIEW sf_bulk_syncs WITH (security_invoker = true) AS
SELECT s.id,
       s.owner,
       s.server_name AS server,
       s.object,
       pg_catalog.quote_ident(s.target_schema) OPERATOR(pg_catalog.||) '.'
           OPERATOR(pg_catalog.||) pg_catalog.quote_ident(s.target_table) AS target,
       s.fields,
       s.filter,
       s.deletes,
       s.overlap,
       s.refresh_formulas,
       s.reconcile,
       s.watermark,
       l.job_id AS last_job,
       l.kind AS last_kind,
       l.reason AS last_reason,
       lj.state AS last_state,
       lj.error AS last_error,
       a.job_id AS last_applied_job,
       a.applied_at AS last_applied_at,
       a.rows_inserted,
       a.rows_updated,
       a.rows_deleted,
       pg_catalog.now() OPERATOR(pg_catalog.-) aj.created_at AS lag,
       s.last_full_at,
       s.last_formulas_at,
       s.created_at
  FROM sf_bulk.syncs s
  LEFT JOIN LATERAL (
        SELECT r.job_id, r.kind, r.reason FROM sf_bulk.sync_runs r
         WHERE r.sync_id OPERATOR(pg_catalog.=) s.id ORDER BY r.job_id DESC LIMIT 1) l ON true
  LEFT JOIN sf_bulk.jobs lj ON lj.id OPERATOR(pg_catalog.=) l.job_id
  LEFT JOIN LATERAL (
        SELECT r.job_id, r.applied_at, r.rows_inserted, r.rows_updated, r.rows_deleted FROM sf_bulk.sync_runs r
         WHERE r.sync_id OPERATOR(pg_catalog.=) s.id AND r.applied_at IS NOT NULL
         ORDER BY r.job_id DESC LIMIT 1) a ON true
  LEFT JOIN sf_bulk.jobs aj ON aj.id OPERATOR(pg_catalog.=) a.job_id;
GRANT SELECT ON sf_bulk_syncs TO PUBLIC;

-- Mirrors `object` into `target` and keeps it current: each call is one run (a job id, like sf_bulk_query):
-- full the first time, then incremental by SystemModstamp. `filter` and not `where`, `target` and not `into`:
-- both are reserved words, which PostgreSQL does not accept as parameter names in a call.
CREATE FUNCTION sf_bulk_sync(object text, target text, server name DEFAULT NULL, fields text[] DEFAULT NULL,
                             filter text DEFAULT NULL, deletes text DEFAULT 'delete',
                             overlap interval DEFAULT '5 minutes', refresh_formulas interval DEFAULT NULL,
                             reconcile interval DEFAULT NULL, name text DEFAULT NULL,
                             if_running text DEFAULT 'queue')
RETURNS bigint AS 'MODULE_PATHNAME', 'sf_bulk_sync' LANGUAGE C VOLATILE PARALLEL UNSAFE;
