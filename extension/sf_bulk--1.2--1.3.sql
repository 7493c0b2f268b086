-- sf_bulk 1.2 -> 1.3: the read path's first kind of job, sf_bulk_query (a Bulk API 2.0 query job run by the
-- worker, its result pages loaded into a table), the column type of each field in sf_bulk_describe, and foreign
-- tables over Salesforce objects (the wrapper's handler). sf_bulk--1.3.sql is the same schema for a fresh install;
-- test/scenarios/upgrade.sh compares the two catalogs.
\echo Use "ALTER EXTENSION sf_bulk UPDATE TO '1.3'" to load this file. \quit

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
    ADD COLUMN load_mode text CONSTRAINT jobs_load_mode_check CHECK (load_mode IN ('append', 'replace', 'merge')),
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

-- Foreign tables over Salesforce objects (src/pg/fdw_scan.cpp, fdw_import.cpp): the wrapper gains a handler,
-- so CREATE FOREIGN TABLE ... SERVER s OPTIONS (object 'Account') and IMPORT FOREIGN SCHEMA salesforce read the
-- org in the calling backend, through the REST query API or a Bulk API 2.0 query job.
CREATE FUNCTION sf_bulk.fdw_handler()
RETURNS fdw_handler
AS 'MODULE_PATHNAME', 'sf_bulk_fdw_handler'
LANGUAGE C STRICT;
COMMENT ON FOREIGN DATA WRAPPER salesforce IS
  'Salesforce orgs: servers carry login_url, instance_url, api_version and engine; user mappings carry '
  'credentials; foreign tables read objects (options object, engine; columns: field)';
-- PostgreSQL warns that a new handler "can change behavior of existing foreign tables": until now a salesforce
-- foreign table could not be read at all, so the warning would only alarm. Last in the script, because the
-- setting lasts until the script ends (PostgreSQL restores it then).
SET client_min_messages = error;
ALTER FOREIGN DATA WRAPPER salesforce HANDLER sf_bulk.fdw_handler;
