#!/usr/bin/env bash
# sf_bulk pushes scheduled with pg_cron, in both of pg_cron's modes: jobs over libpq (the default) and jobs
# in background workers (cron.use_background_workers). pg_cron 1.4 schedules by the minute, so this waits
# for the next minute boundary (bounded at 150 s). Prints `ok - …` / `not ok - …` lines.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"
trap 'sfb_cleanup' EXIT
sfb_make_workdir
sfb_start_emulator
common=("sf_bulk.allow_http_loopback = on" "sf_bulk.poll_first_interval = 50ms" "sf_bulk.poll_max_interval = 500ms"
  "cron.database_name = 'postgres'")
sfb_start_cluster libpq 'sf_bulk,pg_cron' "${common[@]}"
libpq_port=$PGPORT
sfb_start_cluster bgw 'sf_bulk,pg_cron' "${common[@]}" "cron.use_background_workers = on"
bgw_port=$PGPORT

client_id=$("$SFB_PYTHON" -c "import json; print(json.load(open('$SFB_ROOT/test/emulator/default_org.json'))['client_id'])")
client_secret=$("$SFB_PYTHON" -c "import json; print(json.load(open('$SFB_ROOT/test/emulator/default_org.json'))['client_secret'])")

setup() {  # setup PORT MODE
  psql -X -q -p "$1" -d postgres -v ON_ERROR_STOP=1 -v url="$SFB_EMULATOR_URL" -v id="$client_id" -v secret="$client_secret" \
    -v mode="$2" <<'SQL'
CREATE EXTENSION pg_cron;
CREATE EXTENSION sf_bulk;
CREATE SERVER emulator FOREIGN DATA WRAPPER salesforce OPTIONS (login_url :'url');
CREATE USER MAPPING FOR CURRENT_USER SERVER emulator
  OPTIONS (auth 'password', client_id :'id', client_secret :'secret', username 'etl@sfbulk.emulator',
           password 'emulator-password');
CREATE TABLE leads AS SELECT g AS id, 'Cron ' || g AS last_name FROM generate_series(1, 25) g;
SELECT cron.schedule('leads-sync', '* * * * *',
  format($cmd$SELECT sf_bulk_insert('Lead', $q$SELECT id, last_name AS "LastName", %L AS "Company" FROM leads$q$,
                                    key => 'id', name => 'leads-sync', if_running => 'skip')$cmd$, :'mode'));
SQL
}
setup "$libpq_port" libpq >/dev/null || echo "not ok - set up pg_cron (libpq mode)"
setup "$bgw_port" bgw >/dev/null || echo "not ok - set up pg_cron (background-worker mode)"

# Wait (bounded) until each cluster has a finished sf_bulk job started by pg_cron.
check_mode() {  # check_mode PORT MODE
  local deadline=$((SECONDS + 150)) state=""
  while [ $SECONDS -lt $deadline ]; do
    state=$(psql -X -At -p "$1" -d postgres -c \
      "SELECT state || ':' || records_processed || ':' || (SELECT count(*) FROM sf_bulk_successful(j.id) s WHERE s.key IS NOT NULL)
         FROM sf_bulk_jobs j WHERE name = 'leads-sync' AND state IN ('completed', 'failed', 'aborted') ORDER BY id LIMIT 1" 2>&1)
    [ -n "$state" ] && break
    sleep 1
  done
  if [ "$state" = "completed:25:25" ]; then
    echo "ok - pg_cron ($2 mode) ran sf_bulk_insert and its 25 results landed with their keys"
  else
    echo "not ok - pg_cron ($2 mode): expected a completed job with 25 results, got '${state}'"
    psql -X -At -p "$1" -d postgres -c "SELECT status, return_message FROM cron.job_run_details ORDER BY runid DESC LIMIT 3"
  fi
  local runs
  runs=$(psql -X -At -p "$1" -d postgres -c "SELECT count(*) FROM cron.job_run_details WHERE status = 'succeeded'")
  if [ "${runs:-0}" -ge 1 ]; then echo "ok - pg_cron ($2 mode) recorded the run as succeeded"; else
    echo "not ok - pg_cron ($2 mode) recorded no succeeded run"; fi
}
check_mode "$libpq_port" libpq
check_mode "$bgw_port" bgw

for dir in "${SFB_CLUSTERS[@]}"; do
  crashes=$(sfb_crash_lines "$dir")
  if [ -z "$crashes" ]; then echo "ok - no crash in $(basename "$dir")'s server log"; else
    echo "not ok - crash in $(basename "$dir")'s server log"; echo "$crashes"; fi
done
