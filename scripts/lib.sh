# Shared shell functions for scripts/demo, scripts/test and the scenario tests. Source it; don't run it.
# Everything here is idempotent and cleans up after itself through sfb_cleanup (call it from a trap).

SFB_ROOT=${SFB_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PG_CONFIG=${PG_CONFIG:-$PG_BIN/pg_config}
SFB_PYTHON=/usr/bin/python3   # Debian's python: the one that sees apt-installed modules

SFB_PACKAGES=(build-essential postgresql-15 postgresql-server-dev-15 postgresql-15-cron libcurl4-openssl-dev
  nlohmann-json3-dev libssl-dev libgtest-dev cmake python3 python3-cryptography libipc-run-perl clang-format
  nodejs procps)

sfb_log() { printf '\n==> %s\n' "$*" >&2; }

sfb_sudo() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Installs the Debian packages the project needs. Cheap when they are present already.
sfb_install_deps() {
  local missing=()
  local pkg
  for pkg in "${SFB_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    sfb_log "dependencies present"
    return 0
  fi
  sfb_log "installing: ${missing[*]}"
  sfb_sudo apt-get update -qq
  sfb_sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Builds and installs the extension with PGXS (warnings are errors).
sfb_build_extension() {
  sfb_log "building the extension (PGXS)"
  make -C "$SFB_ROOT" -s -j2 PG_CONFIG="$PG_CONFIG" WERROR=1 >/dev/null
  sfb_sudo make -C "$SFB_ROOT" -s PG_CONFIG="$PG_CONFIG" install >/dev/null
}

# A private scratch directory the postgres account can write, removed by sfb_cleanup.
sfb_make_workdir() {
  SFB_WORK=$(mktemp -d /tmp/sf_bulk.XXXXXX)
  chmod 755 "$SFB_WORK"
  if [ "$(id -u)" -eq 0 ]; then chown postgres: "$SFB_WORK"; fi
}

sfb_free_port() {
  "$SFB_PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Runs a server binary as the postgres account when we are root (the server refuses to run as root).
sfb_as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# sfb_start_cluster NAME PRELOAD [extra postgresql.conf lines...]
# Starts a throwaway cluster in $SFB_WORK/NAME on a free port, TCP on 127.0.0.1 only, unix socket in the
# work dir, trust auth. Sets PGHOST, PGPORT, PGUSER and SFB_PGDATA.
sfb_start_cluster() {
  local name=$1 preload=$2
  shift 2
  SFB_PGDATA=$SFB_WORK/$name
  PGPORT=$(sfb_free_port)
  sfb_as_pg "$PG_BIN/initdb" -D "$SFB_PGDATA" -A trust -U postgres -E UTF8 --locale=C.UTF-8 >/dev/null
  {
    echo "port = $PGPORT"
    echo "listen_addresses = '127.0.0.1'"
    echo "unix_socket_directories = '$SFB_WORK'"
    echo "shared_preload_libraries = '$preload'"
    echo "max_worker_processes = 32"
    echo "fsync = off"
    echo "log_line_prefix = '%m [%p] %b '"
    local line
    for line in "$@"; do echo "$line"; done
  } | sfb_as_pg tee -a "$SFB_PGDATA/postgresql.conf" >/dev/null
  sfb_as_pg "$PG_BIN/pg_ctl" -D "$SFB_PGDATA" -l "$SFB_PGDATA/server.log" -w -t 60 start >/dev/null
  SFB_CLUSTERS+=("$SFB_PGDATA")
  export PGHOST=$SFB_WORK PGPORT PGUSER=postgres
}

# Prints the server log lines that betray a crash hidden by an automatic restart.
sfb_crash_lines() {
  grep -E 'terminated by signal|terminating any other active server processes|was terminated by exception' \
    "$1/server.log" 2>/dev/null || true
}

# Starts the Bulk API 2.0 emulator on a free loopback port. Sets SFB_EMULATOR_URL.
sfb_start_emulator() {
  local url_file=$SFB_WORK/emulator.url
  "$SFB_PYTHON" "$SFB_ROOT/test/emulator/sf_emulator" --host 127.0.0.1 --port 0 --url-file "$url_file" "$@" \
    >"$SFB_WORK/emulator.log" 2>&1 &
  SFB_EMULATOR_PID=$!
  local i
  for i in $(seq 1 100); do
    [ -s "$url_file" ] && break
    kill -0 "$SFB_EMULATOR_PID" 2>/dev/null || { cat "$SFB_WORK/emulator.log" >&2; return 1; }
    sleep 0.1
  done
  SFB_EMULATOR_URL=$(cat "$url_file")
  export SFB_EMULATOR_URL
}

# Stops every cluster and the emulator started here and removes the work dir. Safe to call twice.
sfb_cleanup() {
  local dir
  for dir in "${SFB_CLUSTERS[@]}"; do
    [ -f "$dir/postmaster.pid" ] && sfb_as_pg "$PG_BIN/pg_ctl" -D "$dir" -m immediate -w stop >/dev/null 2>&1
  done
  SFB_CLUSTERS=()
  if [ -n "${SFB_EMULATOR_PID:-}" ]; then
    kill "$SFB_EMULATOR_PID" 2>/dev/null && wait "$SFB_EMULATOR_PID" 2>/dev/null
    SFB_EMULATOR_PID=
  fi
  if [ -n "${SFB_WORK:-}" ] && [ -z "${SFB_KEEP:-}" ]; then rm -rf "$SFB_WORK"; fi
}
SFB_CLUSTERS=()
