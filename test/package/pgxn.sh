#!/usr/bin/env bash
# The PGXN release archive: `make dist` gives sf_bulk-<version>.zip with one top directory holding exactly the
# tracked tree; its META.json validates against the PGXN Meta Spec 1.0.0 (validate_meta.py, which first proves
# on broken documents that it refuses them), its provides version follows sf_bulk.control, it holds every file
# META.json names, and the unpacked archive is a buildable PGXS tree (`make check-version` for real, `make -n`
# compiles every source it ships; the package suite really builds the Debian packages from the same archive).
# Prints `ok - …` / `not ok - …` lines; scripts/test counts them as the suite "pgxn".
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"
cd "$SFB_ROOT"
trap 'sfb_cleanup' EXIT
SFB_PACKAGES=(unzip)
sfb_install_deps >/dev/null 2>&1 || { echo "not ok - install unzip"; exit 1; }
sfb_make_workdir
VALIDATOR=$SFB_ROOT/test/package/validate_meta.py

"$SFB_PYTHON" "$VALIDATOR" --self-test

# The working tree's tracked files (what the next commit releases); HEAD when nothing is modified.
ref=$(git stash create)
ref=${ref:-HEAD}
version=$("$SFB_PYTHON" -c 'import json; print(json.load(open("META.json"))["version"])')
zip=sf_bulk-$version.zip
if make -s dist DIST_REF="$ref" PG_CONFIG="$PG_CONFIG" >"$SFB_WORK/dist.log" 2>&1 && [ -f "$zip" ]; then
  mv "$zip" "$SFB_WORK/"
  echo "ok - make dist gives $zip"
else
  sed 's/^/# /' "$SFB_WORK/dist.log"
  echo "not ok - make dist gives $zip"
  exit 1
fi
zip=$SFB_WORK/$zip
top=sf_bulk-$version

# Exactly the tracked files, nothing built, nothing missing.
diff_out=$(diff <(git ls-tree -r --name-only "$ref" | sort) \
  <(unzip -Z1 "$zip" | grep -v '/$' | sed "s|^$top/||" | sort))
if [ -z "$diff_out" ]; then echo "ok - the archive holds the tracked tree, file for file"; else
  echo "$diff_out" | head -20 | sed 's/^/# /'
  echo "not ok - the archive holds the tracked tree, file for file"
fi

unzip -q "$zip" -d "$SFB_WORK/unpacked" || echo "not ok - unzip $zip"
src=$SFB_WORK/unpacked/$top
"$SFB_PYTHON" "$VALIDATOR" "$src/META.json" --control "$src/sf_bulk.control" --zip "$zip"

# A PGXS tree: the version check really runs; the dry run plans a compile of every shipped source.
if out=$(make -C "$src" -s check-version PG_CONFIG="$PG_CONFIG" 2>&1); then
  echo "ok - make check-version passes in the unpacked archive"
else
  echo "$out" | sed 's/^/# /'
  echo "not ok - make check-version passes in the unpacked archive"
fi
if plan=$(make -C "$src" -n PG_CONFIG="$PG_CONFIG" 2>&1); then
  missing=
  for f in $(cd "$src" && ls src/core/*.cpp src/pg/*.cpp); do
    grep -qE -- "-c -o ${f%.cpp}\.o $f( |$)" <<<"$plan" || missing="$missing $f"
  done
  grep -qE -- "-o sf_bulk\.so " <<<"$plan" || missing="$missing sf_bulk.so"
  if [ -z "$missing" ]; then echo "ok - make -n in the unpacked archive compiles every source and links sf_bulk.so"; else
    echo "# not planned:$missing"
    echo "not ok - make -n in the unpacked archive compiles every source and links sf_bulk.so"
  fi
else
  echo "$plan" | tail -20 | sed 's/^/# /'
  echo "not ok - make -n in the unpacked archive compiles every source and links sf_bulk.so"
fi
