# Shared shell functions for scripts/demo, scripts/test and the scenario tests. Source it; don't run it.
# Everything here is idempotent and cleans up after itself through sfb_cleanup (call it from a trap).

SFB_ROOT=${SFB_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
# The PostgreSQL major version to build and test against: 15 on the host (Debian 12), 17 inside the Debian 13
# root (see sfb_trixie_root below).
SFB_PG_MAJOR=${SFB_PG_MAJOR:-15}
export PG_BIN=${PG_BIN:-/usr/lib/postgresql/$SFB_PG_MAJOR/bin}   # the integration harness reads it too
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
  sfb_trixie_leave
}
SFB_CLUSTERS=()
SFB_MOUNTS=()

# ---- PostgreSQL 17, in a Debian 13 (trixie) root ---------------------------------------------------------
# Debian 12 carries only PostgreSQL 15. PostgreSQL 17 comes from Debian 13's packages, installed into a
# separate root made with debootstrap (never into the host: mixing releases would upgrade libc under the
# host's packages). The root is built once per machine and cached outside the source tree; the stamp file
# records the package list it was built with, so a changed list rebuilds it.
SFB_TRIXIE_ROOT=${SFB_TRIXIE_ROOT:-/var/cache/sf_bulk/trixie-root}
# ca-certificates: libcurl's default CA bundle (test_tls expects curl's own "SSL certificate problem", not a missing
# bundle file); apt installs it as a recommendation on a real machine, the root is built without recommendations.
SFB_TRIXIE_PACKAGES=(build-essential postgresql-17 postgresql-server-dev-17 postgresql-17-cron libcurl4-openssl-dev
  nlohmann-json3-dev libssl-dev ca-certificates python3 python3-cryptography procps)

# The Debian mirror the host's own apt sources name (deb822 .sources first, then a one-line sources.list).
sfb_debian_mirror() {
  local uri
  uri=$(awk '/^URIs:/ {u=$2} /^Suites:/ && u != "" && $0 !~ /security/ {print u; exit}' \
    /etc/apt/sources.list.d/*.sources 2>/dev/null)
  [ -n "$uri" ] || uri=$(awk '$1 == "deb" && $0 !~ /security/ && $2 ~ /^https?:/ {print $2; exit}' \
    /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null)
  echo "${uri:-http://deb.debian.org/debian}"
}

# Builds $SFB_TRIXIE_ROOT unless a complete one with the same package list is there. Takes a lock, so two
# runs on one machine do not build it at once. A half-built root (a failed run) is never used: the root is
# built under another name and renamed when complete.
sfb_trixie_root() {
  local root=$SFB_TRIXIE_ROOT want="trixie ${SFB_TRIXIE_PACKAGES[*]}"
  sfb_sudo mkdir -p "$(dirname "$root")"
  (
    flock 9
    if [ -f "$root/.sf_bulk-root" ] && [ "$(cat "$root/.sf_bulk-root")" = "$want" ]; then
      sfb_log "PostgreSQL 17: reusing the Debian 13 root $root"
      exit 0
    fi
    local t0=$SECONDS mirror new=$root.new
    mirror=$(sfb_debian_mirror)
    sfb_log "PostgreSQL 17: building a Debian 13 root in $root from $mirror (a few minutes, once per machine)"
    if ! command -v debootstrap >/dev/null; then
      sfb_sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null ||
        { sfb_sudo apt-get update -qq && sfb_sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            --no-install-recommends debootstrap >/dev/null; } || exit 1
    fi
    sfb_root_mounted "$new" && { echo "$new has mounts; not touching it" >&2; exit 1; }
    sfb_sudo rm -rf --one-file-system "$new"
    sfb_sudo debootstrap --variant=minbase trixie "$new" "$mirror" >"$root.log" 2>&1 ||
      { tail -20 "$root.log" >&2; exit 1; }
    # No service may start inside the root while packages install (postgresql-17 would start its cluster).
    printf '#!/bin/sh\nexit 101\n' | sfb_sudo tee "$new/usr/sbin/policy-rc.d" >/dev/null
    sfb_sudo chmod 755 "$new/usr/sbin/policy-rc.d"
    sfb_sudo chroot "$new" apt-get update -qq >>"$root.log" 2>&1 &&
      sfb_sudo chroot "$new" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${SFB_TRIXIE_PACKAGES[@]}" >>"$root.log" 2>&1 || { tail -20 "$root.log" >&2; exit 1; }
    sfb_sudo chroot "$new" apt-get clean
    echo "$want" | sfb_sudo tee "$new/.sf_bulk-root" >/dev/null
    sfb_root_mounted "$root" && { echo "$root is in use (mounts); not replacing it" >&2; exit 1; }
    sfb_sudo rm -rf --one-file-system "$root"
    sfb_sudo mv "$new" "$root"
    sfb_log "PostgreSQL 17: root built in $((SECONDS - t0)) s"
  ) 9>"$root.lock"
}

# True when something is mounted at or under DIR.
sfb_root_mounted() {
  awk -v d="$1" '$2 == d || index($2, d "/") == 1 {found=1} END {exit !found}' /proc/mounts
}

# Mounts what a test run needs inside the root (/proc, /dev, /dev/pts, /dev/shm, where PostgreSQL keeps its
# dynamic shared memory) and copies the source into the root's /tmp (the build inside must not overwrite the
# host build's objects). Sets SFB_TRIXIE_SRC, the copy's path as seen inside the root. sfb_trixie_leave
# (called by sfb_cleanup) unmounts and removes the copy, also after a failure.
sfb_trixie_enter() {
  local root=$SFB_TRIXIE_ROOT
  sfb_trixie_mount proc -t proc proc || return 1
  sfb_trixie_mount dev --bind /dev || return 1
  sfb_trixie_mount dev/pts --bind /dev/pts || return 1
  sfb_trixie_mount dev/shm --bind /dev/shm || return 1
  SFB_TRIXIE_COPY=$(sfb_sudo mktemp -d "$root/tmp/sf_bulk-src.XXXXXX") || return 1
  sfb_sudo chmod 755 "$SFB_TRIXIE_COPY"
  if git -C "$SFB_ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    (cd "$SFB_ROOT" && git ls-files -co --exclude-standard -z | tar --null --ignore-failed-read -T - -cf -)
  else
    tar -C "$SFB_ROOT" --exclude=./build --exclude='*.o' --exclude='*.so' --exclude='*.d' --exclude=./results -cf - .
  fi | sfb_sudo tar -C "$SFB_TRIXIE_COPY" -xf - || return 1
  SFB_TRIXIE_SRC=${SFB_TRIXIE_COPY#"$root"}
}

sfb_trixie_mount() {  # sfb_trixie_mount DIR MOUNT-ARGS...: mounts at $SFB_TRIXIE_ROOT/DIR, remembered for unmounting
  local dir=$SFB_TRIXIE_ROOT/$1
  shift
  sfb_sudo mount "$@" "$dir" || return 1
  SFB_MOUNTS+=("$dir")
  # Nothing mounted below it may propagate back to the host's mount.
  sfb_sudo mount --make-private "$dir"
}

sfb_trixie_leave() {
  local i
  for ((i = ${#SFB_MOUNTS[@]} - 1; i >= 0; i--)); do
    sfb_sudo umount "${SFB_MOUNTS[i]}" 2>/dev/null || sfb_sudo umount -l "${SFB_MOUNTS[i]}"
  done
  SFB_MOUNTS=()
  if [ -n "${SFB_TRIXIE_COPY:-}" ] && [ -z "${SFB_KEEP:-}" ]; then sfb_sudo rm -rf --one-file-system "$SFB_TRIXIE_COPY"; fi
  SFB_TRIXIE_COPY=
}

# sfb_trixie_run CMD...: runs CMD as root inside the root, with a clean environment.
sfb_trixie_run() {
  sfb_sudo chroot "$SFB_TRIXIE_ROOT" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LANG=C.UTF-8 TERM=dumb "$@"
}

# ---- Clean roots, for installing the Debian package where no build tree and no build tools are --------------
# A minimal Debian root (debootstrap --variant=minbase, apt sources as the host's: SUITE, SUITE-updates and
# SUITE-security from the host's mirrors) is built once per machine and cached like the trixie root. A test never
# uses it directly: sfb_root_instance lays a throwaway overlay over it, so every run starts from the same
# untouched root and nothing has to be copied. Downloaded .debs are kept in /var/cache/sf_bulk/apt-archives/SUITE
# (bind-mounted into each instance): apt still resolves every dependency from the package's own control file,
# only the download is saved on the next run.
SFB_CACHE=${SFB_CACHE:-/var/cache/sf_bulk}

sfb_debian_security_mirror() {
  local uri
  uri=$(awk '/^URIs:/ {u=$2} /^Suites:/ && u != "" && $0 ~ /security/ {print u; exit}' \
    /etc/apt/sources.list.d/*.sources 2>/dev/null)
  echo "${uri:-http://deb.debian.org/debian-security}"
}

# sfb_minbase_root SUITE: builds $SFB_CACHE/SUITE-minbase unless a complete one is there; prints its path.
sfb_minbase_root() {
  local suite=$1 root=$SFB_CACHE/$1-minbase mirror security want
  mirror=$(sfb_debian_mirror)
  security=$(sfb_debian_security_mirror)
  want="$suite minbase $mirror $security"
  sfb_sudo mkdir -p "$SFB_CACHE"
  (
    flock 9
    if [ -f "$root/.sf_bulk-root" ] && [ "$(cat "$root/.sf_bulk-root")" = "$want" ]; then exit 0; fi
    local t0=$SECONDS new=$root.new
    sfb_log "building a minimal Debian $suite root in $root from $mirror (once per machine)"
    command -v debootstrap >/dev/null || sfb_sudo env DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -qq --no-install-recommends debootstrap >/dev/null || exit 1
    sfb_root_mounted "$new" && { echo "$new has mounts; not touching it" >&2; exit 1; }
    sfb_sudo rm -rf --one-file-system "$new"
    sfb_sudo debootstrap --variant=minbase "$suite" "$new" "$mirror" >"$root.log" 2>&1 ||
      { tail -20 "$root.log" >&2; exit 1; }
    # No service may start inside the root while packages install (postgresql-NN would start its cluster).
    printf '#!/bin/sh\nexit 101\n' | sfb_sudo tee "$new/usr/sbin/policy-rc.d" >/dev/null
    sfb_sudo chmod 755 "$new/usr/sbin/policy-rc.d"
    # The point releases and security updates too: the package is built on the host against those headers.
    sfb_sudo rm -f "$new/etc/apt/sources.list"
    printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\nSigned-By: %s\n\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\nSigned-By: %s\n' \
      "$mirror" "$suite" "$suite" /usr/share/keyrings/debian-archive-keyring.gpg \
      "$security" "$suite" /usr/share/keyrings/debian-archive-keyring.gpg |
      sfb_sudo tee "$new/etc/apt/sources.list.d/debian.sources" >/dev/null
    sfb_sudo chroot "$new" apt-get update -qq >>"$root.log" 2>&1 || { tail -20 "$root.log" >&2; exit 1; }
    echo "$want" | sfb_sudo tee "$new/.sf_bulk-root" >/dev/null
    sfb_root_mounted "$root" && { echo "$root is in use (mounts); not replacing it" >&2; exit 1; }
    sfb_sudo rm -rf --one-file-system "$root"
    sfb_sudo mv "$new" "$root"
    sfb_log "minimal $suite root built in $((SECONDS - t0)) s"
  ) 9>"$root.lock" || return 1
  echo "$root"
}

# sfb_root_instance LOWER SUITE: a throwaway writable root over the cached root LOWER (an overlay; a copy where
# overlayfs is not available), with /proc, /dev, /dev/pts, /dev/shm and the suite's apt archive cache mounted.
# Sets SFB_INSTANCE to its path; call it directly, not in $(…): the mounts are recorded in SFB_MOUNTS
# (sfb_trixie_leave unmounts them) and the directory in SFB_INSTANCES (sfb_instances_remove deletes it), which a
# subshell would forget, leaving both behind.
sfb_root_instance() {
  local lower=$1 suite=$2 dir merged
  SFB_INSTANCE=
  dir=$(sfb_sudo mktemp -d /var/tmp/sf_bulk-root.XXXXXX) || return 1
  SFB_INSTANCES+=("$dir")
  merged=$dir/merged
  sfb_sudo mkdir -p "$dir/upper" "$dir/work" "$merged" "$SFB_CACHE/apt-archives/$suite/partial"
  if sfb_sudo mount -t overlay overlay -o "lowerdir=$lower,upperdir=$dir/upper,workdir=$dir/work" "$merged" 2>/dev/null; then
    SFB_MOUNTS+=("$merged")
  else
    sfb_sudo cp -a "$lower/." "$merged/" || return 1
  fi
  sfb_mount_at "$merged/proc" -t proc proc || return 1
  sfb_mount_at "$merged/dev" --bind /dev || return 1
  sfb_mount_at "$merged/dev/pts" --bind /dev/pts || return 1
  sfb_mount_at "$merged/dev/shm" --bind /dev/shm || return 1
  sfb_mount_at "$merged/var/cache/apt/archives" --bind "$SFB_CACHE/apt-archives/$suite" || return 1
  SFB_INSTANCE=$merged
}

sfb_mount_at() {  # sfb_mount_at DIR MOUNT-ARGS...: mounts at DIR, remembered in SFB_MOUNTS for unmounting
  local dir=$1
  shift
  sfb_sudo mount "$@" "$dir" || return 1
  SFB_MOUNTS+=("$dir")
  sfb_sudo mount --make-private "$dir"
}

# Deletes the instances made by sfb_root_instance once nothing is mounted in them (call after sfb_trixie_leave).
sfb_instances_remove() {
  local dir
  for dir in "${SFB_INSTANCES[@]}"; do
    if sfb_root_mounted "$dir"; then echo "$dir still has mounts; left in place" >&2; continue; fi
    sfb_sudo rm -rf --one-file-system "$dir"
  done
  SFB_INSTANCES=()
}
SFB_INSTANCES=()

# sfb_root_run ROOT CMD...: runs CMD as root inside ROOT, with a clean environment.
sfb_root_run() {
  local root=$1
  shift
  sfb_sudo chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LANG=C.UTF-8 TERM=dumb DEBIAN_FRONTEND=noninteractive "$@"
}
