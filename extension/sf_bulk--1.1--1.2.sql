-- sf_bulk 1.1 -> 1.2: the describe cache and the functions that ask the org something now: sf_bulk_describe,
-- sf_bulk_objects, sf_bulk_limits; the ingest functions gain `validate`. Nothing else changes. sf_bulk--1.2.sql is the same schema for a fresh
-- install; test/scenarios/upgrade.sh compares the two catalogs.
\echo Use "ALTER EXTENSION sf_bulk UPDATE TO '1.2'" to load this file. \quit

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

-- The ingest functions gain `validate` (default true): the columns are checked against Salesforce's describe
-- before a row is spooled (src/pg/preflight.cpp). A new argument is a new signature: the old one goes.
DROP FUNCTION sf_bulk_insert(text, text, name, text, integer, text, text, text, text, text, text);
DROP FUNCTION sf_bulk_update(text, text, name, text, integer, text, text, text, text, text, text);
DROP FUNCTION sf_bulk_upsert(text, text, text, name, text, integer, text, text, text, text, text, text);
DROP FUNCTION sf_bulk_delete(text, text, name, integer, text, text, text, text, text);
DROP FUNCTION sf_bulk_hard_delete(text, text, name, integer, text, text, text, text, text);

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
