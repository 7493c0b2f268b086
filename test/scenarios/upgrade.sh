#!/usr/bin/env bash
# ALTER EXTENSION sf_bulk UPDATE from 1.0 (the released script, kept as it was) to the current version (through
# every released update script: 1.0--1.1, 1.1--1.2, 1.2--1.3, 1.3--1.4) on a database with real
# jobs: an upsert with keys and refused rows, a second role's job, a job still running at the upgrade. Jobs,
# uploads, results, keys, grants and row-level security survive; the new constraints are there and enforced;
# new jobs run; the new objects work (1.3: a query job, and foreign tables through the wrapper's new handler;
# 1.4: a mirror's full and incremental runs). Then the catalog of the upgraded database, and of one updated from the
# previous release (1.3), and of one updated from 1.1, equals a fresh install's (members, privileges, and pg_dump --schema-only of the
# extension's objects). Prints `ok - …` / `not ok - …` lines.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"
trap 'sfb_cleanup' EXIT
sfb_make_workdir
sfb_start_emulator
sfb_start_cluster upgrade 'sf_bulk' "sf_bulk.allow_http_loopback = on" "sf_bulk.poll_first_interval = 50ms" \
  "sf_bulk.poll_max_interval = 500ms" "log_min_error_statement = panic"
org=$SFB_ROOT/test/emulator/default_org.json
client_id=$("$SFB_PYTHON" -c "import json; print(json.load(open('$org'))['client_id'])")
client_secret=$("$SFB_PYTHON" -c "import json; print(json.load(open('$org'))['client_secret'])")
old=1.0
new=$(sed -n "s/^default_version *= *'\([^']*\)'.*/\1/p" "$SFB_ROOT/sf_bulk.control")

q() {  # q DB SQL [psql args...]: the answer, errors included, terse
  local db=$1 sql=$2
  shift 2
  psql -X -q -At -v VERBOSITY=terse -d "$db" -c "$sql" "$@" 2>&1
}
is() {  # is NAME EXPECTED GOT
  if [ "$3" = "$2" ]; then echo "ok - $1"; else printf 'not ok - %s\n# expected: %s\n# got: %s\n' "$1" "$2" "$3"; fi
}
check() {  # check NAME EXPECTED DB SQL [psql args...]: runs SQL (then any further -c) in DB
  local name=$1 expected=$2
  shift 2
  is "$name" "$expected" "$(q "$@")"
}
same() {  # same NAME FILE_A FILE_B: identical, or the diff
  if diff -u "$2" "$3" >"$SFB_WORK/same.diff"; then echo "ok - $1"; else
    echo "not ok - $1"; sed 's/^/# /' "$SFB_WORK/same.diff" | head -80; fi
}
# sf_bulk_wait reads with fresh snapshots, but a query around it keeps its own: wait first, then read.
wait_job() {  # wait_job DB JOB [psql args...]
  local db=$1 job=$2
  shift 2
  q "$db" "SELECT state FROM sf_bulk_wait($job, '60 s')" "$@" >/dev/null
}
emulator_config() {  # emulator_config JSON: POST /__emulator/config
  "$SFB_PYTHON" -c 'import sys, urllib.request as u
u.urlopen(u.Request(sys.argv[1] + "/__emulator/config", data=sys.argv[2].encode(), method="POST",
                    headers={"Content-Type": "application/json"})).read()' "$SFB_EMULATOR_URL" "$1"
}

previous=1.3
check "the installed files offer $old, 1.1, 1.2, $previous and $new, and update paths from each to $new" \
  "$old,1.1,1.2,$previous,$new|$new|$old--1.1,$old--1.2,$old--$previous,$old--$new,1.1--1.2,1.1--$previous,1.1--$new,1.2--$previous,1.2--$new,$previous--$new" postgres \
  "SELECT (SELECT string_agg(version, ',' ORDER BY version) FROM pg_available_extension_versions
            WHERE name = 'sf_bulk') || '|' ||
          (SELECT default_version FROM pg_available_extensions WHERE name = 'sf_bulk') || '|' ||
          (SELECT string_agg(source || '--' || target, ',' ORDER BY source, target)
             FROM pg_extension_update_paths('sf_bulk') WHERE path IS NOT NULL)"

# ---- 1.0, with jobs of two roles ------------------------------------------------------------------------
psql -X -q -d postgres -c "CREATE DATABASE upgraded" -c "CREATE DATABASE fresh" -c "CREATE DATABASE refused" \
  -c "CREATE DATABASE from_previous" -c "CREATE DATABASE from_1_1" \
  -c "CREATE ROLE sfb_other LOGIN"
psql -X -q -d upgraded -v ON_ERROR_STOP=1 -v url="$SFB_EMULATOR_URL" -v id="$client_id" -v secret="$client_secret" \
  -v old="$old" >/dev/null <<'SQL'
CREATE EXTENSION sf_bulk VERSION :'old';
CREATE SERVER emulator FOREIGN DATA WRAPPER salesforce OPTIONS (login_url :'url');
CREATE USER MAPPING FOR CURRENT_USER SERVER emulator
  OPTIONS (auth 'password', client_id :'id', client_secret :'secret', username 'etl@sfbulk.emulator',
           password 'emulator-password');
CREATE USER MAPPING FOR sfb_other SERVER emulator
  OPTIONS (auth 'password', client_id :'id', client_secret :'secret', username 'etl@sfbulk.emulator',
           password 'emulator-password');
GRANT USAGE ON FOREIGN SERVER emulator TO sfb_other;
-- Every fourth lead has no last name: Salesforce refuses it (REQUIRED_FIELD_MISSING).
CREATE TABLE leads AS SELECT g AS id, 'UPG-' || g AS ext_id,
                             CASE WHEN g % 4 = 0 THEN NULL ELSE 'Upgrade ' || g END AS last_name
                        FROM generate_series(1, 12) g;
GRANT SELECT ON leads TO sfb_other;
SQL
job_a=$(q upgraded "SELECT sf_bulk_upsert('Lead', \$\$SELECT id, ext_id AS \"External_Id__c\", last_name AS \"LastName\",
                                                    'Acme' AS \"Company\" FROM leads\$\$,
                                       external_id => 'External_Id__c', key => 'id')")
job_b=$(q upgraded "SELECT sf_bulk_insert('Lead', \$\$SELECT 'Tabbed ' || g AS \"LastName\", 'Acme' AS \"Company\"
                                                    FROM generate_series(1, 3) g\$\$, column_delimiter => 'tab')")
job_c=$(q upgraded "SELECT sf_bulk_insert('Lead', \$\$SELECT id, 'Other ' || id AS \"LastName\", 'Acme' AS \"Company\"
                                                    FROM leads WHERE id <= 5\$\$, key => 'id')" -U sfb_other)
check "1.0: the upsert ends with 9 successes and 3 refusals" "completed|12|3" upgraded \
  "SELECT state || '|' || records_processed || '|' || records_failed FROM sf_bulk_wait(${job_a:-0}, '60 s')"
check "1.0: the tab-delimited insert (stored as 'tab') completes" "completed|tab" upgraded \
  "SELECT w.state || '|' || j.column_delimiter FROM sf_bulk_wait(${job_b:-0}, '60 s') w JOIN sf_bulk.jobs j USING (id)"
check "1.0: the other role's job completes" "completed|5|0" upgraded \
  "SELECT state || '|' || records_processed || '|' || records_failed FROM sf_bulk_wait(${job_c:-0}, '60 s')" \
  -U sfb_other
check "1.0 refuses line_ending => 'crlf' although its parser accepts it (the bug 1.1 fixes)" \
  'ERROR:  new row for relation "jobs" violates check constraint "jobs_line_ending_check"' upgraded \
  "SELECT sf_bulk_insert('Lead', \$\$SELECT 'x' AS \"LastName\"\$\$, line_ending => 'crlf')"

# A job still running while the extension is updated: Salesforce takes its time over this one.
emulator_config '{"processing_delay_ms": 4000}'
job_d=$(q upgraded "SELECT sf_bulk_insert('Lead', \$\$SELECT 'Inflight ' || g AS \"LastName\", 'Acme' AS \"Company\"
                                                    FROM generate_series(1, 2) g\$\$)")
for _ in $(seq 1 100); do
  [ "$(q upgraded "SELECT phase FROM sf_bulk.jobs WHERE id = ${job_d:-0}")" = processing ] && break
  sleep 0.1
done
check "a job is running (processing in Salesforce) when the update starts" "running|processing" upgraded \
  "SELECT state || '|' || phase FROM sf_bulk.jobs WHERE id = ${job_d:-0}"

# What must survive, as the superuser (all rows) and as the other role (its rows only).
snapshot() {  # snapshot FILE: every row of the ended jobs, and the privileges and policies
  {
    q upgraded "SELECT j.id, j.owner, j.operation, j.object, j.external_id, j.nulls, j.line_ending,
                       j.column_delimiter, j.columns, j.key_columns, j.state, j.phase, j.rows_spooled, j.uploads,
                       j.api_calls, j.error, j.created_at, j.finished_at
                  FROM sf_bulk.jobs j WHERE j.id <> ${job_d:-0} ORDER BY j.id"
    q upgraded "SELECT c.job_id, c.chunk_no, c.step, c.sf_job_id, c.sf_state, c.records_processed,
                       c.records_failed, c.error, c.unmatched_results
                  FROM sf_bulk.chunks c WHERE c.job_id <> ${job_d:-0} ORDER BY 1, 2"
    q upgraded "SELECT r.job_id, r.kind, r.key, r.sf_id, r.sf_created, r.error_code, r.error_message,
                       r.error_fields, r.row_hash, r.fields
                  FROM sf_bulk.results r WHERE r.job_id <> ${job_d:-0} ORDER BY 1, 2, 3, 4"
    q upgraded "SELECT s.job_id, s.row_no, s.row_hash, s.key FROM sf_bulk.sent s ORDER BY 1, 2"
    q upgraded "SELECT c.oid::regclass, c.relacl, c.relrowsecurity FROM pg_class c
                 WHERE c.relnamespace = 'sf_bulk'::regnamespace AND c.relkind IN ('r', 'S')
                   AND c.relname NOT IN ('describe', 'queries', 'query_pages', 'syncs', 'sync_runs', 'syncs_id_seq')
                 ORDER BY 1"  # new in 1.2, 1.3, 1.4
    q upgraded "SELECT schemaname, tablename, policyname, cmd, roles, qual FROM pg_policies
                 WHERE schemaname = 'sf_bulk' AND tablename NOT IN ('queries', 'query_pages', 'syncs', 'sync_runs')
                 ORDER BY 1, 2, 3"
    q upgraded "SELECT srvname, srvacl FROM pg_foreign_server"
    echo "-- as sfb_other"
    q upgraded "SELECT id, owner, state, records_processed FROM sf_bulk_jobs ORDER BY id" -U sfb_other
    q upgraded "SELECT job_id, key, sf_id FROM sf_bulk.results ORDER BY 1, 2" -U sfb_other
  } >"$1"
}
snapshot "$SFB_WORK/before.txt"

# ---- the update -------------------------------------------------------------------------------------------
check "ALTER EXTENSION sf_bulk UPDATE succeeds" "" upgraded "ALTER EXTENSION sf_bulk UPDATE"
check "the extension is now $new" "$new" upgraded "SELECT extversion FROM pg_extension WHERE extname = 'sf_bulk'"
snapshot "$SFB_WORK/after.txt"
same "jobs, uploads, results, keys, privileges and policies are unchanged by the update" \
  "$SFB_WORK/before.txt" "$SFB_WORK/after.txt"
emulator_config '{"processing_delay_ms": 0}'
check "the job that was running during the update completes" "completed|2|0" upgraded \
  "SELECT state || '|' || records_processed || '|' || records_failed FROM sf_bulk_wait(${job_d:-0}, '60 s')"

check "sf_bulk_successful gives the upsert's 9 successes with their keys" "1,2,3,5,6,7,9,10,11|9" upgraded \
  "SELECT string_agg(key, ',' ORDER BY key::int) || '|' || count(sf_id) FROM sf_bulk_successful(${job_a:-0})"
check "sf_bulk_failed gives the 3 refusals with their keys and Salesforce's code" \
  "4|REQUIRED_FIELD_MISSING|{LastName}
8|REQUIRED_FIELD_MISSING|{LastName}
12|REQUIRED_FIELD_MISSING|{LastName}" upgraded \
  "SELECT key || '|' || error_code || '|' || error_fields::text FROM sf_bulk_failed(${job_a:-0}) ORDER BY key::int"
check "row-level security: the other role sees only its own job and results" "1|sfb_other|5|0|0" upgraded \
  "SELECT count(*) || '|' || min(owner::text) || '|' || (SELECT count(*) FROM sf_bulk.results) || '|' ||
          (SELECT count(*) FROM sf_bulk_failed(${job_a:-0})) || '|' ||
          (SELECT count(*) FROM sf_bulk.chunks WHERE job_id = ${job_a:-0})
     FROM sf_bulk_jobs" -U sfb_other
check "the other role still may not write sf_bulk's tables" "ERROR:  permission denied for table jobs" upgraded \
  "UPDATE sf_bulk.jobs SET state = 'failed'" -U sfb_other

check "the 1.1, 1.3 and 1.4 constraints are there, by name" \
  "chunks_step_check,jobs_column_delimiter_check,jobs_line_ending_check,jobs_load_mode_check,jobs_nulls_check,jobs_operation_check,jobs_page_size_check,jobs_phase_check,jobs_query_check,jobs_state_check,queries_step_check,query_pages_page_no_check,query_pages_step_check,results_kind_check,sync_runs_kind_check,syncs_deletes_check,syncs_overlap_check,syncs_reconcile_check,syncs_refresh_formulas_check" \
  upgraded "SELECT string_agg(conname, ',' ORDER BY conname) FROM pg_constraint
             WHERE contype = 'c' AND connamespace = 'sf_bulk'::regnamespace"
check "an unknown step is refused by chunks_step_check" \
  'ERROR:  new row for relation "chunks" violates check constraint "chunks_step_check"' upgraded \
  "UPDATE sf_bulk.chunks SET step = 'resuming' WHERE job_id = ${job_a:-0}"
check "an unknown phase is refused by jobs_phase_check" \
  'ERROR:  new row for relation "jobs" violates check constraint "jobs_phase_check"' upgraded \
  "UPDATE sf_bulk.jobs SET phase = 'thinking' WHERE id = ${job_a:-0}"
check "an unknown column delimiter is refused by jobs_column_delimiter_check" \
  'ERROR:  new row for relation "jobs" violates check constraint "jobs_column_delimiter_check"' upgraded \
  "UPDATE sf_bulk.jobs SET column_delimiter = 'COLON' WHERE id = ${job_b:-0}"

# New jobs after the update: sf_bulk_retry over 1.0's rows (refused again: the last names are still empty), the
# upsert again with every last name filled in (the 3 refused leads are created now, the 9 others updated) and
# line_ending => 'crlf', a job of the other role.
job_f=$(q upgraded "SELECT sf_bulk_retry(${job_a:-0})")
wait_job upgraded "${job_f:-0}"
check "sf_bulk_retry re-sends 1.0's refused rows with their keys" "completed|${job_a:-0}|4,8,12" upgraded \
  "SELECT j.state || '|' || j.retry_of || '|' ||
          (SELECT string_agg(key, ',' ORDER BY key::int) FROM sf_bulk_failed(j.id))
     FROM sf_bulk_jobs j WHERE j.id = ${job_f:-0}"
q upgraded "UPDATE leads SET last_name = 'Fixed ' || id WHERE last_name IS NULL" >/dev/null
job_e=$(q upgraded "SELECT sf_bulk_upsert('Lead', \$\$SELECT id, ext_id AS \"External_Id__c\", last_name AS \"LastName\",
                                                    'Acme' AS \"Company\" FROM leads\$\$,
                                       external_id => 'External_Id__c', key => 'id', line_ending => 'crlf')")
wait_job upgraded "${job_e:-0}"
check "a new upsert after the update completes: 12 successes, the 3 once refused now created" \
  "completed|12|0|4,8,12" upgraded \
  "SELECT j.state || '|' || j.records_processed || '|' || j.records_failed || '|' ||
          (SELECT string_agg(key, ',' ORDER BY key::int) FROM sf_bulk_successful(j.id) WHERE sf_created)
     FROM sf_bulk_jobs j WHERE j.id = ${job_e:-0}"
job_g=$(q upgraded "SELECT sf_bulk_insert('Lead', \$\$SELECT 7 AS id, 'Later' AS \"LastName\", 'Acme' AS \"Company\"\$\$,
                                       key => 'id')" -U sfb_other)
wait_job upgraded "${job_g:-0}" -U sfb_other
check "the other role's new job completes, and it sees its two jobs only" "completed|7|2" upgraded \
  "SELECT j.state || '|' || (SELECT string_agg(key, ',') FROM sf_bulk_successful(j.id)) || '|' ||
          (SELECT count(*) FROM sf_bulk_jobs)
     FROM sf_bulk_jobs j WHERE j.id = ${job_g:-0}" -U sfb_other

# The 1.2 objects: describe (and its cache) and limits, asked of the emulator as the updated database's roles.
check "1.2: sf_bulk_describe lists Lead's fields as Salesforce describes them" "Id|id|t|f|LastName|string|f|f" upgraded \
  "SELECT string_agg(concat_ws('|', name, type, id_lookup, nillable), '|' ORDER BY name)
     FROM sf_bulk_describe('Lead') WHERE name IN ('Id', 'LastName')"
# Both roles' 1.2 jobs above were checked against Lead's describe, each through its own user mapping.
check "1.2: the describe is cached once per user mapping, unreadable to the roles" \
  "2|2
ERROR:  permission denied for table describe" upgraded \
  "SELECT count(*) || '|' || count(DISTINCT mapping) FROM sf_bulk.describe WHERE object = 'lead'" \
  -c "SET ROLE sfb_other" -c "SELECT count(*) FROM sf_bulk.describe"
check "1.2: ingest calls are checked against the describe before a row is spooled" \
  'ERROR:  sf_bulk_insert: Lead has no field "Emial" (did you mean Email?)' upgraded \
  "SELECT sf_bulk_insert('Lead', \$\$SELECT 'x' AS \"LastName\", 'y' AS \"Company\", 'z' AS \"Emial\"\$\$)"
check "1.2: sf_bulk_limits has the daily API allocation" "t" upgraded \
  "SELECT max > 0 AND remaining <= max FROM sf_bulk_limits() WHERE name = 'DailyApiRequests' AND app IS NULL"

# The 1.3 objects: a query job, its rows loaded into a table created from the describe, and pg_type.
query_job=$(q upgraded "SELECT sf_bulk_query('SELECT Id, LastName FROM Lead', 'public.leads_read_back')" | tail -1)
wait_job upgraded "${query_job:-0}"
check "1.3: sf_bulk_query creates a table and the worker loads the query's rows into it" "completed|t|t" upgraded \
  "SELECT state || '|' || (rows_loaded > 0)::text::char || '|' ||
          (rows_loaded = (SELECT count(*) FROM public.leads_read_back))::text::char
     FROM sf_bulk_jobs WHERE id = ${query_job:-0}" \
  -c "DROP TABLE public.leads_read_back"
check "1.3: sf_bulk_describe shows the column type of each field" "Id|text COLLATE \"C\"" upgraded \
  "SELECT name || '|' || pg_type FROM sf_bulk_describe('Lead') WHERE name = 'Id'"
check "1.3: the wrapper reads: IMPORT FOREIGN SCHEMA and a scan agree with the emulator's Leads" "t" upgraded \
  "CREATE SCHEMA sf_read; IMPORT FOREIGN SCHEMA salesforce LIMIT TO (Lead) FROM SERVER emulator INTO sf_read;
   SELECT (SELECT count(*) FROM sf_read.lead) = (SELECT count(*) FROM sf_read.lead WHERE id IS NOT NULL)
          AND (SELECT count(*) FROM sf_read.lead) > 0" \
  -c "SET client_min_messages = warning" -c "DROP SCHEMA sf_read CASCADE"

# The 1.4 objects: a mirror of Lead, its full first run and an incremental second one, in sf_bulk_syncs.
sync_job=$(q upgraded "SELECT sf_bulk_sync('Lead', 'public.lead_mirror', fields => ARRAY['LastName'])" | tail -1)
wait_job upgraded "${sync_job:-0}"
sync_job2=$(q upgraded "SELECT sf_bulk_sync('Lead', 'public.lead_mirror', fields => ARRAY['LastName'])" | tail -1)
wait_job upgraded "${sync_job2:-0}"
check "1.4: sf_bulk_sync mirrors Lead: a full run, then an incremental one, every live Lead in the table" \
  "full,incremental|completed|t|t" upgraded \
  "CREATE SCHEMA sf_count; IMPORT FOREIGN SCHEMA salesforce LIMIT TO (Lead) FROM SERVER emulator INTO sf_count;
   SELECT (SELECT string_agg(kind, ',' ORDER BY job_id) FROM sf_bulk.sync_runs) || '|' || s.last_state || '|' ||
          (s.watermark IS NOT NULL)::text::char || '|' ||
          ((SELECT count(*) FROM public.lead_mirror) = (SELECT count(*) FROM sf_count.lead))::text::char
     FROM sf_bulk_syncs s" \
  -c "SET client_min_messages = warning" \
  -c "DROP SCHEMA sf_count CASCADE" -c "DROP TABLE public.lead_mirror"

# ---- updating again, or down, is what PostgreSQL makes of it ----------------------------------------------
check "a second ALTER EXTENSION UPDATE is a no-op with PostgreSQL's notice" \
  "NOTICE:  version \"$new\" of extension \"sf_bulk\" is already installed
$new" upgraded "ALTER EXTENSION sf_bulk UPDATE; SELECT extversion FROM pg_extension WHERE extname = 'sf_bulk'"
check "there is no way back to $old" \
  "ERROR:  extension \"sf_bulk\" has no update path from version \"$new\" to version \"$old\"" upgraded \
  "ALTER EXTENSION sf_bulk UPDATE TO '$old'"

# ---- a 1.0 database holding a value 1.1 does not know: the update is refused, nothing changes -------------
check "the update refuses a 1.0 database with an unknown step, naming the constraint, and stays at $old" \
  "ERROR:  check constraint \"chunks_step_check\" of relation \"chunks\" is violated by some row
$old|1" refused \
  "CREATE EXTENSION sf_bulk VERSION '$old';
   INSERT INTO sf_bulk.jobs (id, owner, server_name, operation, object, nulls, line_ending, column_delimiter,
                             max_upload_bytes, columns, state)
   VALUES (1, current_user::regrole, 's', 'insert', 'Lead', 'keep', 'LF', 'COMMA', 1, '{LastName}', 'failed');
   INSERT INTO sf_bulk.chunks (job_id, chunk_no, spool_file, rows, bytes, step) VALUES (1, 1, 'x.csv', 1, 1, 'resuming');" \
  -c "ALTER EXTENSION sf_bulk UPDATE" \
  -c "SELECT extversion || '|' || (SELECT count(*) FROM pg_constraint WHERE conname = 'jobs_state_check')
        FROM pg_extension WHERE extname = 'sf_bulk'"

check "a $previous install updates to $new" "$new" from_previous \
  "CREATE EXTENSION sf_bulk VERSION '$previous'" -c "ALTER EXTENSION sf_bulk UPDATE" \
  -c "SELECT extversion FROM pg_extension WHERE extname = 'sf_bulk'"
check "a 1.1 install updates to $new" "$new" from_1_1 \
  "CREATE EXTENSION sf_bulk VERSION '1.1'" -c "ALTER EXTENSION sf_bulk UPDATE" \
  -c "SELECT extversion FROM pg_extension WHERE extname = 'sf_bulk'"

# ---- the catalog of the updated database is a fresh install's ---------------------------------------------
check "a fresh install is $new" "$new" fresh \
  "CREATE EXTENSION sf_bulk; SELECT extversion FROM pg_extension WHERE extname = 'sf_bulk'"
members() {  # members DB: the extension's member objects with their privileges, its config tables, the wrapper
  q "$1" "SELECT pg_describe_object(d.classid, d.objid, d.objsubid) || ' | ' || coalesce(CASE d.classid
                   WHEN 'pg_class'::regclass THEN (SELECT relacl::text FROM pg_class WHERE oid = d.objid)
                   WHEN 'pg_proc'::regclass THEN (SELECT proacl::text FROM pg_proc WHERE oid = d.objid)
                   WHEN 'pg_namespace'::regclass THEN (SELECT nspacl::text FROM pg_namespace WHERE oid = d.objid)
                   WHEN 'pg_foreign_data_wrapper'::regclass THEN
                     (SELECT concat_ws(' ', fdwacl, fdwvalidator::regproc, fdwhandler::regproc, fdwoptions,
                                       fdwowner::regrole)
                        FROM pg_foreign_data_wrapper WHERE oid = d.objid)
                   END, '-') || ' | init ' || coalesce((SELECT i.initprivs::text FROM pg_init_privs i
                     WHERE i.classoid = d.classid AND i.objoid = d.objid AND i.objsubid = d.objsubid), '-')
            FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'sf_bulk'
           WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
           ORDER BY 1"
  q "$1" "SELECT extowner::regrole, extnamespace::regnamespace, extrelocatable, extconfig::regclass[], extcondition
            FROM pg_extension WHERE extname = 'sf_bulk'"
}
members fresh >"$SFB_WORK/members.fresh"
members upgraded >"$SFB_WORK/members.upgraded"
same "fresh and updated: the same member objects, privileges and config tables" \
  "$SFB_WORK/members.fresh" "$SFB_WORK/members.upgraded"
members from_previous >"$SFB_WORK/members.from_previous"
same "fresh and updated from $previous: the same member objects, privileges and config tables" \
  "$SFB_WORK/members.fresh" "$SFB_WORK/members.from_previous"
members from_1_1 >"$SFB_WORK/members.from_1_1"
same "fresh and updated from 1.1: the same member objects, privileges and config tables" \
  "$SFB_WORK/members.fresh" "$SFB_WORK/members.from_1_1"
grep -q 'table sf_bulk.chunks' "$SFB_WORK/members.fresh" || echo "not ok - the member list is empty"

# pg_dump leaves extension members out, so both databases first release them (ALTER EXTENSION … DROP: the
# objects stay, as plain objects); then the schema sf_bulk and what the extension put in public are dumped,
# the user's table left out (servers and user mappings are outside the dump: -n leaves them out).
# PostgreSQL 17 also records a member table's row type and array type (sf_bulk.jobs, sf_bulk.jobs[]) as
# members, and releases them with the table: those types are left out of the list (on 15 they are not members).
release_members() {
  q "$1" "SELECT format('ALTER EXTENSION sf_bulk DROP %s %s;',
                        CASE o.type WHEN 'foreign-data wrapper' THEN 'FOREIGN DATA WRAPPER' ELSE upper(o.type) END,
                        o.identity)
            FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'sf_bulk',
                 pg_identify_object(d.classid, d.objid, d.objsubid) o
           WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
             AND NOT EXISTS (SELECT FROM pg_type t LEFT JOIN pg_class c ON c.oid = t.typrelid
                              WHERE d.classid = 'pg_type'::regclass AND t.oid = d.objid
                                AND (t.typcategory = 'A' OR c.relkind <> 'c'))" >"$SFB_WORK/release.sql"
  psql -X -q -v ON_ERROR_STOP=1 -d "$1" -f "$SFB_WORK/release.sql" 2>&1
  q "$1" "SELECT count(*) FROM pg_depend WHERE refobjid = (SELECT oid FROM pg_extension WHERE extname = 'sf_bulk')
                                          AND deptype = 'e'"
}
catalog_dump() {  # catalog_dump DB FILE
  "$PG_BIN/pg_dump" --schema-only -d "$1" -n sf_bulk -n public -T public.leads 2>&1 |
    grep -vE '^(--|SET |SELECT pg_catalog\.set_config|\\restrict |\\unrestrict |$)' >"$2"
  { echo "-- the wrapper"; q "$1" "SELECT fdwname, fdwvalidator::regprocedure, fdwhandler::regprocedure, fdwoptions, fdwacl,
                                          obj_description(oid, 'pg_foreign_data_wrapper')
                                     FROM pg_foreign_data_wrapper ORDER BY 1"; } >>"$2"
}
is "the fresh install's members are released for the dump" "0" "$(release_members fresh)"
is "the updated database's members are released for the dump" "0" "$(release_members upgraded)"
is "the database updated from $previous has its members released for the dump" "0" "$(release_members from_previous)"
is "the database updated from 1.1 has its members released for the dump" "0" "$(release_members from_1_1)"
catalog_dump fresh "$SFB_WORK/dump.fresh"
catalog_dump upgraded "$SFB_WORK/dump.upgraded"
if grep -q 'CREATE TABLE sf_bulk.chunks' "$SFB_WORK/dump.fresh" && grep -q 'jobs_phase_check' "$SFB_WORK/dump.fresh" &&
   grep -q 'CREATE FUNCTION public.sf_bulk_wait' "$SFB_WORK/dump.fresh" && ! grep -q 'leads' "$SFB_WORK/dump.upgraded"; then
  echo "ok - the dumps hold the extension's tables, constraints and functions, and nothing of the user's"
else
  echo "not ok - the dumps hold the extension's tables, constraints and functions, and nothing of the user's"
  head -20 "$SFB_WORK/dump.fresh" | sed 's/^/# /'
fi
same "fresh and updated: pg_dump --schema-only of the extension's objects is identical" \
  "$SFB_WORK/dump.fresh" "$SFB_WORK/dump.upgraded"
catalog_dump from_previous "$SFB_WORK/dump.from_previous"
same "fresh and updated from $previous: pg_dump --schema-only of the extension's objects is identical" \
  "$SFB_WORK/dump.fresh" "$SFB_WORK/dump.from_previous"
catalog_dump from_1_1 "$SFB_WORK/dump.from_1_1"
same "fresh and updated from 1.1: pg_dump --schema-only of the extension's objects is identical" \
  "$SFB_WORK/dump.fresh" "$SFB_WORK/dump.from_1_1"

crashes=$(sfb_crash_lines "$SFB_PGDATA")
if [ -z "$crashes" ]; then echo "ok - no crash in the server log"; else echo "not ok - crash in the server log"; echo "$crashes"; fi
