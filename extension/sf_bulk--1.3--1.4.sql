-- sf_bulk 1.3 -> 1.4: mirrors kept current, sf_bulk_sync (a query job of the worker whose load merges the rows
-- into the target and moves the sync's watermark in the same transaction) and the sf_bulk_syncs view.
-- sf_bulk--1.4.sql is the same schema for a fresh install; test/scenarios/upgrade.sh compares the two catalogs.
\echo Use "ALTER EXTENSION sf_bulk UPDATE TO '1.4'" to load this file. \quit

-- A sync run is a query job (operation queryAll, or query for a formula refresh) whose load mode is 'sync'.
ALTER TABLE sf_bulk.jobs DROP CONSTRAINT jobs_load_mode_check;
ALTER TABLE sf_bulk.jobs ADD CONSTRAINT jobs_load_mode_check
    CHECK (load_mode IN ('append', 'replace', 'merge', 'sync'));

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
