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

emulator_post() {  # emulator_post PATH JSON: an admin call to the emulator
  "$SFB_PYTHON" -c 'import sys, urllib.request as u
print(u.urlopen(u.Request(sys.argv[1] + sys.argv[2], data=sys.argv[3].encode(), method="POST",
                          headers={"Content-Type": "application/json"})).read().decode())' "$SFB_EMULATOR_URL" "$1" "$2"
}
emulator_post /__emulator/records/Account '{"generate": {"count": 30, "start": 1, "values": {"Name": "Cron Account {n}"}}}' >/dev/null

# The README's mirror recipe, verbatim (test/scenarios/readme_recipes.sh checks it is the README's), in the
# libpq cluster; then its schedule moved to every minute, so that the test need not wait five.
psql -X -q -p "$libpq_port" -d postgres -v ON_ERROR_STOP=1 >/dev/null <<'SQL' || echo "not ok - the README's mirror recipe runs"
SET client_min_messages = warning;
CREATE SCHEMA mirror;
SELECT sf_bulk_sync('Account', target => 'mirror.account');
SELECT cron.schedule('account-mirror', '*/5 * * * *',
  $$SELECT sf_bulk_sync('Account', target => 'mirror.account', if_running => 'skip')$$);
SELECT object, target, watermark, last_kind, last_state, rows_inserted, rows_updated, rows_deleted, lag
  FROM sf_bulk_syncs;
SELECT cron.alter_job(jobid, schedule => '* * * * *') FROM cron.job WHERE jobname = 'account-mirror';
SQL
# A change for pg_cron's run to find: one more Account (the emulator's clock moved on, so it is stamped later).
emulator_post /__emulator/clock '{"advance_seconds": 2}' >/dev/null
emulator_post /__emulator/records/Account '[{"Name": "Cron Account added"}]' >/dev/null

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

# The mirror: its first run (the recipe's call) was full; pg_cron's runs are incremental and complete, and the
# table holds every live Account (a foreign table counts them in the emulator).
deadline=$((SECONDS + 150)) mirror=""
while [ $SECONDS -lt $deadline ]; do
  mirror=$(psql -X -At -p "$libpq_port" -d postgres -c \
    "SELECT string_agg(r.kind || ':' || j.state, ',' ORDER BY r.job_id) FROM sf_bulk.sync_runs r
       JOIN sf_bulk.jobs j ON j.id = r.job_id" 2>&1)
  case "$mirror" in full:completed,incremental:completed*) break ;; esac
  sleep 1
done
case "$mirror" in
  full:completed,incremental:completed*) echo "ok - pg_cron ran the README's mirror recipe: a full run, then incremental runs ($mirror)" ;;
  *) echo "not ok - pg_cron ran the README's mirror recipe: expected a full then an incremental completed run, got '$mirror'"
     psql -X -At -p "$libpq_port" -d postgres -c "SELECT status, return_message FROM cron.job_run_details ORDER BY runid DESC LIMIT 3" ;;
esac
same_count=$(psql -X -q -At -p "$libpq_port" -d postgres -c "CREATE SCHEMA sf_count" \
  -c "IMPORT FOREIGN SCHEMA salesforce LIMIT TO (Account) FROM SERVER emulator INTO sf_count" \
  -c "SELECT (SELECT count(*) FROM mirror.account) = (SELECT count(*) FROM sf_count.account)
             AND EXISTS (SELECT 1 FROM mirror.account WHERE name = 'Cron Account added')" 2>&1)
if [ "$same_count" = "t" ]; then echo "ok - the mirror holds every live Account"; else
  echo "not ok - the mirror holds every live Account: got '$same_count'"; fi

for dir in "${SFB_CLUSTERS[@]}"; do
  crashes=$(sfb_crash_lines "$dir")
  if [ -z "$crashes" ]; then echo "ok - no crash in $(basename "$dir")'s server log"; else
    echo "not ok - crash in $(basename "$dir")'s server log"; echo "$crashes"; fi
done
