#!/usr/bin/env bash
# The README's recipes are the ones the tests run: every ```sql block under a "**Recipe" heading must appear
# verbatim in sql/results.sql (pg_regress runs that file). Prints `ok - …` / `not ok - …` lines.
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
/usr/bin/python3 - <<'PY'
import re
readme = open("README.md").read()
tests = open("sql/results.sql").read()
blocks = re.findall(r"\*\*Recipe [^*]*\*\*\s*\n\s*```sql\n(.*?)```", readme, re.S)
if not blocks:
    print("not ok - no recipe found in the README")
for i, block in enumerate(blocks, 1):
    status = "ok" if block.strip() in tests else "not ok"
    print(f"{status} - README recipe {i} is run verbatim by sql/results.sql")
PY
