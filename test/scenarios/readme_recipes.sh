#!/usr/bin/env bash
# The README's recipes are the ones the tests run: every ```sql block under a "**Recipe" heading must appear
# verbatim in sql/results.sql (pg_regress runs that file), or for a "**Recipe N (pg_cron)" heading in
# test/scenarios/pg_cron.sh (which runs it with pg_cron). Prints `ok - …` / `not ok - …` lines.
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
/usr/bin/python3 - <<'PY'
import re
readme = open("README.md").read()
files = {"sql/results.sql": open("sql/results.sql").read(),
         "test/scenarios/pg_cron.sh": open("test/scenarios/pg_cron.sh").read()}
blocks = re.findall(r"\*\*Recipe ([^*]*)\*\*\s*\n\s*```sql\n(.*?)```", readme, re.S)
if not blocks:
    print("not ok - no recipe found in the README")
for heading, block in blocks:
    where = "test/scenarios/pg_cron.sh" if "(pg_cron)" in heading else "sql/results.sql"
    status = "ok" if block.strip() in files[where] else "not ok"
    print(f"{status} - README recipe {heading.split(':')[0]} is run verbatim by {where}")
PY
