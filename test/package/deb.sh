#!/usr/bin/env bash
# The Debian package, built and installed the way a user gets it: `make dist`'s zip is unpacked (so the build
# also proves that the PGXN archive builds), postgresql-15-sf-bulk is built on this Debian 12 host and
# postgresql-17-sf-bulk inside (an overlay of) the cached Debian 13 root; each .deb is installed with apt into a
# clean minimal root of its own distribution (no build tree, no compiler, no PostgreSQL until apt resolves the
# package's Depends), where the package's autopkgtest (debian/tests/preload) runs, a cluster preloads sf_bulk,
# CREATE EXTENSION runs and one insert job goes to the emulator, which runs on the host from this tree (a chroot
# shares the host's network) and whose store must then hold the rows. Prints `ok - …` /
# `not ok - …` lines; scripts/test counts them as the suite "package".
#
# SFB_PG17=0 skips the PostgreSQL 17 half (scripts/test --no-pg17).
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"
cd "$SFB_ROOT"

SFB_PG17=${SFB_PG17:-1}
# What building the PostgreSQL 15 package on the host needs beyond scripts/test's own list: Debian 12's own build
# tools (pg_buildext and its dh add-on come with postgresql-server-dev-all); nothing from Debian 13 comes here.
SFB_PACKAGES=(debhelper postgresql-server-dev-all dpkg-dev unzip debootstrap)
sfb_install_deps >/dev/null 2>&1 || { echo "not ok - install the packaging tools: ${SFB_PACKAGES[*]}"; exit 1; }
ROOT_CLUSTERS=()   # "ROOT PGDATA VERSION" of every cluster started inside a root

cleanup() {
  local c root data v
  for c in "${ROOT_CLUSTERS[@]}"; do
    read -r root data v <<<"$c"
    sfb_root_run "$root" runuser -u postgres -- /usr/lib/postgresql/"$v"/bin/pg_ctl -D "$data" -m immediate -w stop \
      >/dev/null 2>&1
  done
  ROOT_CLUSTERS=()
  sfb_cleanup            # the emulator, the work dir, and every mount (sfb_trixie_leave)
  sfb_instances_remove   # the overlays, once unmounted
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ok() { echo "ok - $*"; }
not_ok() { echo "not ok - $*"; }
check() {  # check NAME COMMAND...: ok when COMMAND succeeds
  local name=$1
  shift
  if "$@"; then ok "$name"; else not_ok "$name"; fi
}

sfb_make_workdir
CONTROL_VERSION=$(sed -n "s/^default_version *= *'\([^']*\)'.*/\1/p" sf_bulk.control)
META_VERSION=$("$SFB_PYTHON" -c 'import json; print(json.load(open("META.json"))["version"])')
RUN_TAG="pkg$(date +%s)"

# ---- the source: `make dist`, unpacked ----------------------------------------------------------------------
# Tracked files as they are in the working tree (what the next commit releases); untracked files are not in it.
ref=$(git stash create)
if make -s dist DIST_REF="${ref:-HEAD}" PG_CONFIG="$PG_CONFIG" >"$SFB_WORK/dist.log" 2>&1 &&
  unzip -q "sf_bulk-$META_VERSION.zip" -d "$SFB_WORK/src"; then
  ok "make dist gives sf_bulk-$META_VERSION.zip"
else
  cat "$SFB_WORK/dist.log" >&2
  not_ok "make dist gives sf_bulk-$META_VERSION.zip"
  exit 1
fi
rm -f "sf_bulk-$META_VERSION.zip"
SRC=$SFB_WORK/src/sf_bulk-$META_VERSION
check "debian/changelog's upstream version is META.json's ($META_VERSION)" \
  test "$(cd "$SRC" && dpkg-parsechangelog -S Version | sed 's/-[^-]*$//')" = "$META_VERSION"

# Parallel make (debian/rules passes it on), no pg_buildext installcheck (see debian/rules), no -dbgsym package.
BUILD_OPTIONS="parallel=2 nocheck noautodbgsym"

# ---- checks on one built .deb and on its install into a clean root -------------------------------------------
deb_contents() {  # deb_contents DEB VERSION: the package holds the module, the control file and every script
  local deb=$1 v=$2 listing want f bad=
  listing=$(dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|')
  want="/usr/lib/postgresql/$v/lib/sf_bulk.so /usr/share/postgresql/$v/extension/sf_bulk.control"
  for f in extension/sf_bulk--*.sql; do want="$want /usr/share/postgresql/$v/extension/$(basename "$f")"; done
  for f in $want; do grep -qxF "$f" <<<"$listing" || { echo "# missing from the package: $f"; bad=1; }; done
  # Nothing else under the extension directory: an old or stray script would be installable too.
  extra=$(grep "^/usr/share/postgresql/$v/extension/." <<<"$listing" | grep -vxF -f <(tr ' ' '\n' <<<"$want"))
  [ -z "$extra" ] || { echo "# unexpected in the package: $extra"; bad=1; }
  [ -z "$bad" ]
}

deb_scripts_identical() {  # deb_scripts_identical DEB VERSION: shipped SQL and control are the tree's, byte for byte
  local deb=$1 v=$2 x=$SFB_WORK/x$2 f bad=
  rm -rf "$x" && dpkg-deb -x "$deb" "$x" || return 1
  for f in sf_bulk.control extension/sf_bulk--*.sql; do
    cmp -s "$f" "$x/usr/share/postgresql/$v/extension/$(basename "$f")" || { echo "# differs: $f"; bad=1; }
  done
  [ -z "$bad" ]
}

deb_depends() {  # deb_depends DEB PATTERN...: every pattern names a package in Depends
  local deb=$1 dep p
  shift
  dep=$(dpkg-deb -f "$deb" Depends)
  echo "# Depends: $dep"
  for p in "$@"; do grep -qE "(^|, )$p( |,|$)" <<<"$dep" || { echo "# no $p in Depends"; return 1; }; done
}

# root_install_and_run VERSION SUITE DEB: installs DEB into a clean SUITE root and runs a job there.
root_install_and_run() {
  local v=$1 suite=$2 deb=$3 lower root out rc
  if ! lower=$(sfb_minbase_root "$suite"); then not_ok "$v: a clean $suite root"; return; fi
  if ! sfb_root_instance "$lower" "$suite"; then not_ok "$v: a clean $suite root"; return; fi
  root=$SFB_INSTANCE
  # Clean: no PostgreSQL, no compiler, no sf_bulk file, nothing of this tree.
  if ! sfb_root_run "$root" dpkg-query -W "postgresql-$v" >/dev/null 2>&1 &&
    ! sfb_root_run "$root" sh -c 'command -v cc || command -v g++ || command -v make' >/dev/null &&
    [ -z "$(find "$root/usr" "$root/tmp" -name 'sf_bulk*' -print -quit)" ]; then
    ok "$v: the $suite root has no PostgreSQL, no compiler and no sf_bulk file before the install"
  else
    not_ok "$v: the $suite root has no PostgreSQL, no compiler and no sf_bulk file before the install"
  fi
  sfb_sudo cp "$deb" "$root/tmp/" || return
  local inroot=/tmp/$(basename "$deb")
  # apt resolves the Depends from the mirror; stale lists in the cached root get one refresh.
  out=$(sfb_root_run "$root" apt-get install -y -qq --no-install-recommends "$inroot" 2>&1)
  rc=$?
  if [ $rc -ne 0 ]; then
    out=$(sfb_root_run "$root" sh -c "apt-get update -qq && apt-get install -y -qq --no-install-recommends $inroot" 2>&1)
    rc=$?
  fi
  if [ $rc -eq 0 ] && sfb_root_run "$root" dpkg-query -W -f='${Status}' "postgresql-$v-sf-bulk" | grep -q 'install ok installed'; then
    ok "$v: apt installs $(basename "$deb") and what it depends on into the clean root"
  else
    echo "$out" | tail -20 | sed 's/^/# /'
    not_ok "$v: apt installs $(basename "$deb") and what it depends on into the clean root"
    return
  fi
  local missing
  missing=$(sfb_root_run "$root" ldd "/usr/lib/postgresql/$v/lib/sf_bulk.so" 2>&1 | grep 'not found')
  if [ -z "$missing" ]; then ok "$v: every library sf_bulk.so needs is installed in the root"; else
    echo "$missing" | sed 's/^/# /'
    not_ok "$v: every library sf_bulk.so needs is installed in the root"
  fi

  # The package's own autopkgtest (debian/tests/preload): pg_virtualenv's cluster preloads it, CREATE EXTENSION.
  sfb_sudo cp "$SRC/debian/tests/preload" "$root/tmp/preload"
  if out=$(sfb_root_run "$root" sh /tmp/preload 2>&1); then ok "$v: debian/tests/preload passes in the root"; else
    echo "$out" | tail -15 | sed 's/^/# /'; not_ok "$v: debian/tests/preload passes in the root"; fi

  # A cluster of our own (the package's 15/main or 17/main is not started: policy-rc.d), preloading sf_bulk.
  local port data=/var/tmp/sfb-pkg/data bin=/usr/lib/postgresql/$v/bin
  port=$(sfb_free_port)
  sfb_root_run "$root" sh -c "mkdir -p /var/tmp/sfb-pkg && chown postgres: /var/tmp/sfb-pkg" &&
    sfb_root_run "$root" runuser -u postgres -- "$bin/initdb" -D "$data" -A trust -U postgres -E UTF8 \
      --locale=C.UTF-8 >/dev/null &&
    printf '%s\n' "port = $port" "listen_addresses = '127.0.0.1'" "unix_socket_directories = '/var/tmp/sfb-pkg'" \
      "shared_preload_libraries = 'sf_bulk'" "sf_bulk.allow_http_loopback = on" \
      "sf_bulk.poll_first_interval = 50ms" "sf_bulk.poll_max_interval = 500ms" |
    sfb_sudo tee -a "$root$data/postgresql.conf" >/dev/null &&
    ROOT_CLUSTERS+=("$root $data $v") &&
    sfb_root_run "$root" runuser -u postgres -- "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 start >/dev/null
  rc=$?
  psql_root() { sfb_root_run "$root" "$bin/psql" -X -q -At -v ON_ERROR_STOP=1 -h /var/tmp/sfb-pkg -p "$port" -U postgres -d postgres "$@"; }
  if [ $rc -eq 0 ] && [ "$(psql_root -c "SHOW shared_preload_libraries")" = sf_bulk ]; then
    ok "$v: a cluster starts with shared_preload_libraries = 'sf_bulk'"
  else
    sfb_sudo tail -20 "$root$data/server.log" 2>/dev/null | sed 's/^/# /'
    not_ok "$v: a cluster starts with shared_preload_libraries = 'sf_bulk'"
    return
  fi
  out=$(psql_root -c "CREATE EXTENSION sf_bulk" -c "SELECT extversion FROM pg_extension WHERE extname = 'sf_bulk'" 2>&1)
  if [ "$out" = "$CONTROL_VERSION" ]; then ok "$v: CREATE EXTENSION sf_bulk installs $CONTROL_VERSION"; else
    echo "# got: $out"; not_ok "$v: CREATE EXTENSION sf_bulk installs $CONTROL_VERSION"; fi
  # The shipped update scripts make a path from the first release to the current one.
  out=$(psql_root -c "SELECT path FROM pg_extension_update_paths('sf_bulk') WHERE source = '1.0' AND target = '$CONTROL_VERSION'" 2>&1)
  if [ -n "$out" ]; then ok "$v: the package's update scripts lead from 1.0 to $CONTROL_VERSION ($out)"; else
    not_ok "$v: the package's update scripts lead from 1.0 to $CONTROL_VERSION"; fi
  # One real ingest job against the emulator on the host.
  local tag=$RUN_TAG-$v rows=25 job state
  out=$(psql_root <<SQL 2>&1
CREATE SERVER emu FOREIGN DATA WRAPPER salesforce OPTIONS (login_url '$SFB_EMULATOR_URL');
CREATE USER MAPPING FOR postgres SERVER emu OPTIONS ($MAPPING);
SELECT sf_bulk_insert('Lead', \$q\$SELECT '$tag-' || g AS "LastName", 'Pkg Co' AS "Company"
                                  FROM generate_series(1, $rows) g\$q\$);
SQL
  )
  job=$(tail -1 <<<"$out")
  if [[ $job =~ ^[0-9]+$ ]]; then
    state=$(psql_root -c "SELECT state || ' ' || records_processed || ' ' || records_failed || ' ' || coalesce(error, '')
                            FROM sf_bulk_wait($job, '90 s')" 2>&1)
  else
    state="no job: $out"
  fi
  if [ "$state" = "completed $rows 0 " ]; then ok "$v: the insert job completes, $rows rows processed, none failed"; else
    echo "# got: $state"; not_ok "$v: the insert job completes, $rows rows processed, none failed"; fi
  local stored
  stored=$(SFB_TAG=$tag "$SFB_PYTHON" - <<'PY'
import json, os, urllib.request
url = os.environ["SFB_EMULATOR_URL"] + "/__emulator/records/Lead"
recs = json.load(urllib.request.urlopen(url, timeout=30))["records"]
tag = os.environ["SFB_TAG"] + "-"
mine = [r for r in recs if str(r.get("LastName", "")).startswith(tag) and not r.get("deleted")]
print(len(mine), len({r["LastName"] for r in mine}), sorted({r.get("Company") for r in mine}))
PY
  )
  if [ "$stored" = "$rows $rows ['Pkg Co']" ]; then ok "$v: the emulator's store holds the $rows rows the job sent"; else
    echo "# emulator store: $stored"; not_ok "$v: the emulator's store holds the $rows rows the job sent"; fi
  local crashes
  crashes=$(sfb_crash_lines "$root$data")
  if [ -z "$crashes" ]; then ok "$v: no crash in the server log"; else
    echo "$crashes" | sed 's/^/# /'; not_ok "$v: no crash in the server log"; fi
}

sfb_start_emulator || { not_ok "the emulator starts"; exit 1; }
MAPPING=$("$SFB_PYTHON" - <<'PY'
import json
org = json.load(open("test/emulator/default_org.json"))
q = lambda s: "'" + s.replace("'", "''") + "'"
print("auth 'password', client_id %s, client_secret %s, username %s, password %s"
      % (q(org["client_id"]), q(org["client_secret"]), q(org["user"]["username"]), q(org["user"]["password"])))
PY
)

# ---- PostgreSQL 15: built on this Debian 12 host ----------------------------------------------------------------
# The build runs as an ordinary dpkg-buildpackage in the work dir: it installs nothing into the host's PostgreSQL
# (dh_auto_install writes into debian/postgresql-15-sf-bulk/), so it cannot disturb a server running here.
t0=$SECONDS
if (cd "$SRC" && pg_buildext updatecontrol && DEB_BUILD_OPTIONS=$BUILD_OPTIONS dpkg-buildpackage -us -uc -b) \
  >"$SFB_WORK/build15.log" 2>&1; then
  ok "15: dpkg-buildpackage builds postgresql-15-sf-bulk from the unpacked zip on Debian 12 ($((SECONDS - t0)) s)"
else
  tail -30 "$SFB_WORK/build15.log" | sed 's/^/# /'
  not_ok "15: dpkg-buildpackage builds postgresql-15-sf-bulk from the unpacked zip on Debian 12"
fi
deb15=$(ls "$SFB_WORK"/src/postgresql-15-sf-bulk_*.deb 2>/dev/null | head -1)
if [ -n "$deb15" ]; then
  check "15: the package holds sf_bulk.so, sf_bulk.control and every extension/sf_bulk--*.sql" deb_contents "$deb15" 15
  check "15: the shipped control file and scripts are the tree's" deb_scripts_identical "$deb15" 15
  check "15: Depends names postgresql-15, libcurl4 and libssl3" deb_depends "$deb15" postgresql-15 libcurl4 libssl3
  root_install_and_run 15 bookworm "$deb15"
fi

# ---- PostgreSQL 17: built in the Debian 13 root -----------------------------------------------------------------
if [ "$SFB_PG17" = 0 ]; then
  echo "# PostgreSQL 17 half skipped (SFB_PG17=0)"
  exit 0
fi
t0=$SECONDS
# The cached root carries postgresql-server-dev-17 and the libraries already; the overlay adds what the package's
# Build-Depends name beyond them (debhelper, postgresql-server-dev-all) and is thrown away afterwards.
broot=
if sfb_trixie_root >/dev/null 2>&1 && sfb_root_instance "$SFB_TRIXIE_ROOT" trixie && broot=$SFB_INSTANCE &&
  sfb_sudo mkdir -p "$broot/tmp/build" && sfb_sudo cp -a "$SRC" "$broot/tmp/build/" &&
  sfb_root_run "$broot" sh -c "cd /tmp/build/sf_bulk-$META_VERSION &&
    { apt-get build-dep -y -qq --no-install-recommends ./ || { apt-get update -qq && apt-get build-dep -y -qq --no-install-recommends ./; }; } &&
    pg_buildext updatecontrol && DEB_BUILD_OPTIONS='$BUILD_OPTIONS' dpkg-buildpackage -us -uc -b" \
    >"$SFB_WORK/build17.log" 2>&1; then
  ok "17: dpkg-buildpackage builds postgresql-17-sf-bulk from the unpacked zip on Debian 13 ($((SECONDS - t0)) s)"
else
  tail -30 "$SFB_WORK/build17.log" | sed 's/^/# /'
  not_ok "17: dpkg-buildpackage builds postgresql-17-sf-bulk from the unpacked zip on Debian 13"
fi
deb17=$(ls "${broot:-/nonexistent}"/tmp/build/postgresql-17-sf-bulk_*.deb 2>/dev/null | head -1)
if [ -n "$deb17" ]; then
  cp "$deb17" "$SFB_WORK/" && deb17=$SFB_WORK/$(basename "$deb17")
  check "17: the package holds sf_bulk.so, sf_bulk.control and every extension/sf_bulk--*.sql" deb_contents "$deb17" 17
  check "17: the shipped control file and scripts are the tree's" deb_scripts_identical "$deb17" 17
  # Debian 13's libraries carry the 64-bit time_t transition's names.
  check "17: Depends names postgresql-17, libcurl4t64 and libssl3t64" deb_depends "$deb17" postgresql-17 libcurl4t64 libssl3t64
  root_install_and_run 17 trixie "$deb17"
fi
