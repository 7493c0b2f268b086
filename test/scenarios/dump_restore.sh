#!/usr/bin/env bash
# pg_dump and restore of a database that uses sf_bulk keep its jobs, uploads and results (the extension's
# tables are marked with pg_extension_config_dump), and the restored database can start new jobs whose ids
# continue after the old ones. Prints `ok - …` / `not ok - …` lines.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"
trap 'sfb_cleanup' EXIT
sfb_make_workdir
sfb_start_emulator
sfb_start_cluster dump 'sf_bulk' "sf_bulk.allow_http_loopback = on" "sf_bulk.poll_first_interval = 50ms" \
  "sf_bulk.poll_max_interval = 500ms"
org=$SFB_ROOT/test/emulator/default_org.json
client_id=$("$SFB_PYTHON" -c "import json; print(json.load(open('$org'))['client_id'])")
client_secret=$("$SFB_PYTHON" -c "import json; print(json.load(open('$org'))['client_secret'])")

check() {  # check NAME EXPECTED DB SQL
  local got
  got=$(psql -X -q -At -d "$3" -c "$4" 2>&1)
  if [ "$got" = "$2" ]; then echo "ok - $1"; else printf 'not ok - %s\n# expected: %s\n# got: %s\n' "$1" "$2" "$got"; fi
}

psql -X -q -d postgres -c "CREATE DATABASE source" -c "CREATE DATABASE restored"
psql -X -q -d source -v ON_ERROR_STOP=1 -v url="$SFB_EMULATOR_URL" -v id="$client_id" -v secret="$client_secret" \
  >/dev/null <<'SQL'
CREATE EXTENSION sf_bulk;
CREATE SERVER emulator FOREIGN DATA WRAPPER salesforce OPTIONS (login_url :'url');
CREATE USER MAPPING FOR CURRENT_USER SERVER emulator
  OPTIONS (auth 'password', client_id :'id', client_secret :'secret', username 'etl@sfbulk.emulator',
           password 'emulator-password');
CREATE TABLE leads AS SELECT g AS id, CASE WHEN g % 5 = 0 THEN NULL ELSE 'Dump ' || g END AS last_name
  FROM generate_series(1, 20) g;
SELECT sf_bulk_insert('Lead', $$SELECT id, last_name AS "LastName", 'Acme' AS "Company" FROM leads$$, key => 'id')
  AS job \gset
SELECT state FROM sf_bulk_wait(:job, '60 s');
SQL
check "the source job completed with 16 successes and 4 failures" "completed|16|4" source \
  "SELECT state || '|' || records_processed - records_failed || '|' || records_failed FROM sf_bulk_jobs"

pg_dump -Fc -d source -f "$SFB_WORK/source.dump" 2>"$SFB_WORK/dump.err" || { echo "not ok - pg_dump"; cat "$SFB_WORK/dump.err"; }
pg_restore -d restored "$SFB_WORK/source.dump" 2>"$SFB_WORK/restore.err" || {
  echo "not ok - pg_restore"; cat "$SFB_WORK/restore.err"; }

check "jobs survive the restore" "1|completed" restored "SELECT count(*) || '|' || min(state) FROM sf_bulk_jobs"
check "results survive, keys included" "16|4|20" restored \
  "SELECT (SELECT count(*) FROM sf_bulk_successful(1)) || '|' || (SELECT count(*) FROM sf_bulk_failed(1)) || '|' ||
          (SELECT count(DISTINCT key) FROM sf_bulk.results)"
new_job=$(psql -X -q -At -d restored -c \
  "SELECT sf_bulk_insert('Lead', \$\$SELECT 'After' AS \"LastName\", 'Acme' AS \"Company\"\$\$)" 2>&1)
check "the restored database starts new jobs after the old ids" "true|completed" restored \
  "SELECT (id > 1)::text || '|' || state FROM sf_bulk_wait(${new_job:-0}, '60 s')"
crashes=$(sfb_crash_lines "$SFB_PGDATA")
if [ -z "$crashes" ]; then echo "ok - no crash in the server log"; else echo "not ok - crash in the server log"; echo "$crashes"; fi
