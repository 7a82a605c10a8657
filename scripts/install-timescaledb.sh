#!/usr/bin/env bash
# Builds the Apache-2 edition of TimescaleDB from Debian trixie's source package against the
# machine's PostgreSQL (Debian 12 ships no TimescaleDB package), installs it, preloads it and restarts
# the cluster. Idempotent: does nothing when the extension is already available and preloaded.
# The machine's own apt sources are left untouched (private apt configuration under $WORK).
set -euo pipefail

PGVER="${PGVER:-$(ls /etc/postgresql | sort -V | tail -n1)}"
PG_CONFIG="/usr/lib/postgresql/${PGVER}/bin/pg_config"
CONF="/etc/postgresql/${PGVER}/main/postgresql.conf"
SHAREDIR="$("$PG_CONFIG" --sharedir 2>/dev/null || echo /usr/share/postgresql/${PGVER})"

log() { echo "[timescaledb] $*"; }

restart_cluster() {
  pg_ctlcluster --skip-systemctl-redirect "$PGVER" main restart || pg_ctlcluster --skip-systemctl-redirect "$PGVER" main start
  for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && return 0; sleep 1; done
  log "PostgreSQL did not come back"; return 1
}

preload() {
  if psql -h 127.0.0.1 -U postgres -Atc "show shared_preload_libraries" | grep -q timescaledb; then
    return 0
  fi
  log "adding timescaledb to shared_preload_libraries in $CONF"
  if grep -qE "^\s*shared_preload_libraries" "$CONF"; then
    sed -i -E "s/^\s*shared_preload_libraries\s*=\s*'([^']*)'/shared_preload_libraries = 'timescaledb,\1'/; s/'timescaledb,'/'timescaledb'/" "$CONF"
  else
    echo "shared_preload_libraries = 'timescaledb'" >> "$CONF"
  fi
  grep -q "^timescaledb.telemetry_level" "$CONF" || echo "timescaledb.telemetry_level = off" >> "$CONF"
  restart_cluster
}

# Memory and WAL settings for an ingestion database, in the spirit of timescaledb-tune (which the
# timescale/timescaledb image of docker-compose.yml runs on first start): shared_buffers at 1/8 of RAM
# (capped at 4 GB: the machine runs other services), a WAL large enough that checkpoints are driven by time,
# not by the ingest rate. Durability settings (fsync, synchronous_commit, full_page_writes) are not touched:
# an acknowledged reading must survive a crash. Written to conf.d; the cluster restarts only when it changes.
tune() {
  local dir="/etc/postgresql/${PGVER}/main/conf.d" file mem_mb sb_mb
  [ -d "$dir" ] || return 0
  file="$dir/95-smbg-tune.conf"
  mem_mb=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 ))
  sb_mb=$(( mem_mb / 8 )); [ "$sb_mb" -gt 4096 ] && sb_mb=4096; [ "$sb_mb" -lt 128 ] && sb_mb=128
  local want
  want="# written by scripts/install-timescaledb.sh (smart-meter billing gateway)
shared_buffers = ${sb_mb}MB
effective_cache_size = $(( mem_mb / 2 ))MB
maintenance_work_mem = 512MB
work_mem = 16MB
wal_buffers = 16MB
min_wal_size = 512MB
max_wal_size = 4GB
checkpoint_timeout = 15min
checkpoint_completion_target = 0.9
wal_compression = on"
  if [ "$(cat "$file" 2>/dev/null)" != "$want" ]; then
    log "tuning PostgreSQL memory and WAL settings ($file)"
    printf '%s\n' "$want" > "$file"
    restart_cluster
  fi
}

if ls "$SHAREDIR"/extension/timescaledb.control >/dev/null 2>&1; then
  log "extension files present"
  preload
  [ "${SKIP_PG_TUNE:-}" = 1 ] || tune
  log "ready: $(psql -h 127.0.0.1 -U postgres -Atc "select default_version from pg_available_extensions where name='timescaledb'")"
  exit 0
fi

WORK="${TSDB_BUILD_DIR:-/tmp/tsdb-build}"
mkdir -p "$WORK/lists/partial" "$WORK/sources.d" "$WORK/src"
export DEBIAN_FRONTEND=noninteractive

log "installing build dependencies"
apt-get update -qq >/dev/null || true
apt-get install -y -qq "postgresql-server-dev-${PGVER}" cmake dpkg-dev build-essential libssl-dev >/dev/null

# The machine's own Debian mirror (first non-security URI of its apt sources).
MIRROR="$( { grep -hE '^\s*URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}';
            grep -hE '^\s*deb\s' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' || true; } \
          | grep -v security | head -n1 | sed 's#/$##' || true)"
[ -n "$MIRROR" ] || { log "no Debian mirror found in the apt sources"; exit 1; }
echo "deb-src ${MIRROR} trixie main" > "$WORK/sources.list"
APTOPTS=(-o "Dir::Etc::SourceList=$WORK/sources.list" -o "Dir::Etc::SourceParts=$WORK/sources.d" -o "Dir::State::Lists=$WORK/lists")

log "fetching the trixie source package"
apt-get "${APTOPTS[@]}" update -qq >/dev/null
cd "$WORK/src"
apt-get "${APTOPTS[@]}" source --download-only timescaledb >/dev/null
DSC="$(ls timescaledb_*.dsc | head -n1)"
rm -rf build-tree && dpkg-source -x "$DSC" build-tree >/dev/null
cd build-tree

log "building ($(ls ../timescaledb_*.dsc))"
./bootstrap -DAPACHE_ONLY=1 -DREGRESS_CHECKS=OFF -DTAP_CHECKS=OFF -DWARNINGS_AS_ERRORS=OFF \
  -DPG_CONFIG="$PG_CONFIG" >/dev/null
cd build
make -j"$(nproc)" >/dev/null
make install >/dev/null

preload
[ "${SKIP_PG_TUNE:-}" = 1 ] || tune
log "ready: $(psql -h 127.0.0.1 -U postgres -Atc "select default_version from pg_available_extensions where name='timescaledb'")"
