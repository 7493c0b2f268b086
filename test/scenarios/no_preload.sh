#!/usr/bin/env bash
# Loaded without shared_preload_libraries, sf_bulk still installs and its catalogs work.
# Prints TAP-style `ok - …` / `not ok - …` lines; scripts/test counts them.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"
trap 'sfb_cleanup' EXIT
sfb_make_workdir
sfb_start_cluster nopreload ''

check() {  # check NAME EXPECTED SQL
  local got
  got=$(psql -X -q -At -d postgres -c "$3" 2>&1)
  if [ "$got" = "$2" ]; then echo "ok - $1"; else printf 'not ok - %s\n# expected: %s\n# got: %s\n' "$1" "$2" "$got"; fi
}

check "CREATE EXTENSION works without preloading" "" "CREATE EXTENSION sf_bulk"
check "the salesforce wrapper exists" "salesforce" "SELECT fdwname FROM pg_foreign_data_wrapper"
check "the validator runs in a backend that loaded the module on demand" \
  'ERROR:  invalid value for option "api_version": invalid API version "6"; expected a version such as 62.0 (47.0 or later for Bulk API 2.0 query)' \
  "CREATE SERVER s FOREIGN DATA WRAPPER salesforce OPTIONS (api_version '6')"
check "a valid server is accepted" "" "CREATE SERVER s FOREIGN DATA WRAPPER salesforce OPTIONS (login_url 'http://127.0.0.1:1')"
check "functions that need the worker refuse with a hint naming shared_preload_libraries" \
  "ERROR:  sf_bulk_insert needs the sf_bulk background worker, which is not running
DETAIL:  sf_bulk was loaded into this session only, not at server start.
HINT:  Add sf_bulk to shared_preload_libraries in postgresql.conf (e.g. shared_preload_libraries = 'sf_bulk') and restart the server." \
  "SELECT sf_bulk_insert('Lead', 'SELECT 1 AS \"LastName\"')"
check "sf_bulk_abort refuses the same way" \
  "ERROR:  sf_bulk_abort needs the sf_bulk background worker, which is not running
DETAIL:  sf_bulk was loaded into this session only, not at server start.
HINT:  Add sf_bulk to shared_preload_libraries in postgresql.conf (e.g. shared_preload_libraries = 'sf_bulk') and restart the server.
CONTEXT:  SQL function \"sf_bulk_abort\" statement 1" \
  "SELECT sf_bulk_abort(1)"
check "no sf_bulk process runs" "0" \
  "SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'sf_bulk%'"
crashes=$(sfb_crash_lines "$SFB_PGDATA")
if [ -z "$crashes" ]; then echo "ok - no crash in the server log"; else echo "not ok - crash in the server log"; echo "$crashes"; fi
