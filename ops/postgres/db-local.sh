#!/usr/bin/env bash
# db-local.sh - a local PostgreSQL + PostGIS cluster for the history archive (issue 19), in a run dir on a
# loopback port, from the Debian packages (postgresql-NN, postgresql-NN-postgis-3; ops/system-packages.sh).
#
#   db-local.sh up      initdb the first time, start, wait until it answers, create the database
#                       `traffic_hub` with the postgis extension; no-op when ours already runs.
#                       The last stdout line is the connection URL postgresql://…
#   db-local.sh down    fast shutdown (pg_ctl -m fast), SIGKILL fallback; no-op when not running
#   db-local.sh status  exit 0 iff our cluster answers; prints the URL
#   db-local.sh url     the connection URL (whether or not it runs)
#   db-local.sh logs [N] last N (default 100) lines of the server log
#   db-local.sh purge   down, then delete the run dir (data, logs, password)
#
# PostgreSQL refuses to run as root: as root the cluster runs as TRAFFIC_HUB_DB_USER (default `postgres`,
# the system user the Debian package creates; `nobody` works too) and the run dir belongs to it.
# Clients authenticate on 127.0.0.1 with a password generated at initdb (scram-sha-256), kept in the run
# dir (mode 600) and carried in the URL; nothing listens beyond loopback.
#
# Environment (all optional):
#   TRAFFIC_HUB_DB_PORT      loopback port                                   (default 15432)
#   TRAFFIC_HUB_DB_RUN_DIR   data, logs, socket, password (default ${TMPDIR:-/tmp}/traffic-hub-pg-UID-PORT)
#   TRAFFIC_HUB_DB_USER      system user the server runs as when started by root (default postgres)
#   TRAFFIC_HUB_PG_BIN       PostgreSQL binaries (default: the newest /usr/lib/postgresql/*/bin)
#   TRAFFIC_HUB_DB_START_TIMEOUT  seconds to wait for the server to answer (default 60)
set -euo pipefail

PORT="${TRAFFIC_HUB_DB_PORT:-15432}"
RUN_DIR="${TRAFFIC_HUB_DB_RUN_DIR:-${TMPDIR:-/tmp}/traffic-hub-pg-$(id -u)-$PORT}"
RUN_AS="${TRAFFIC_HUB_DB_USER:-postgres}"
START_TIMEOUT="${TRAFFIC_HUB_DB_START_TIMEOUT:-60}"
DB_NAME="traffic_hub"
DB_ROLE="postgres"
DATA_DIR="$RUN_DIR/data"
LOG_FILE="$RUN_DIR/postgres.log"
PW_FILE="$RUN_DIR/password"

log() { echo "[db-local] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

pg_bin() {
  if [ -n "${TRAFFIC_HUB_PG_BIN:-}" ]; then echo "$TRAFFIC_HUB_PG_BIN"; return; fi
  local v
  v="$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | sort -n | tail -n 1)"
  [ -n "$v" ] && [ -x "/usr/lib/postgresql/$v/bin/postgres" ] || \
    die "PostgreSQL not found under /usr/lib/postgresql (make system-packages installs it)"
  echo "/usr/lib/postgresql/$v/bin"
}
BIN="$(pg_bin)"

as_owner() {  # run a PostgreSQL binary as the cluster's owner (root cannot)
  if [ "$(id -u)" -eq 0 ]; then runuser -u "$RUN_AS" -- "$@"; else "$@"; fi
}

url() { echo "postgresql://$DB_ROLE:$(cat "$PW_FILE")@127.0.0.1:$PORT/$DB_NAME"; }

answers() { "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" -d postgres >/dev/null 2>&1; }

ours_running() {  # our data dir has a live postmaster
  [ -f "$DATA_DIR/postmaster.pid" ] || return 1
  local pid
  pid="$(head -n 1 "$DATA_DIR/postmaster.pid")"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

psql_local() {  # psql over the run dir's unix socket (trust: the socket dir is the owner's only)
  as_owner "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$RUN_DIR" -p "$PORT" -U "$DB_ROLE" "$@"
}

init_cluster() {
  [ -f "$DATA_DIR/PG_VERSION" ] && return 0
  log "initdb in $DATA_DIR ($("$BIN/postgres" --version))"
  mkdir -p "$RUN_DIR"
  chmod 700 "$RUN_DIR"
  umask 077
  [ -f "$PW_FILE" ] || head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$PW_FILE"
  if [ "$(id -u)" -eq 0 ]; then
    id -u "$RUN_AS" >/dev/null 2>&1 || die "user $RUN_AS does not exist (set TRAFFIC_HUB_DB_USER)"
    chown -R "$RUN_AS" "$RUN_DIR"
  fi
  as_owner "$BIN/initdb" -D "$DATA_DIR" -U "$DB_ROLE" --pwfile="$PW_FILE" -E UTF8 --locale=C.UTF-8 \
    --auth-local=trust --auth-host=scram-sha-256 >"$RUN_DIR/initdb.log" 2>&1 || {
    cat "$RUN_DIR/initdb.log" >&2; die "initdb failed"; }
  cat >> "$DATA_DIR/postgresql.conf" <<CONF
# ops/postgres/db-local.sh
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$RUN_DIR'
shared_buffers = 128MB
max_connections = 100
logging_collector = off
CONF
}

cmd_up() {
  if ours_running && answers; then
    log "PostgreSQL already running on 127.0.0.1:$PORT ($RUN_DIR)"
  else
    answers && die "port $PORT answers but it is not our cluster in $RUN_DIR (set TRAFFIC_HUB_DB_PORT)"
    init_cluster
    log "starting PostgreSQL on 127.0.0.1:$PORT"
    as_owner "$BIN/pg_ctl" -D "$DATA_DIR" -l "$LOG_FILE" -w -t "$START_TIMEOUT" start >/dev/null || {
      tail -n 30 "$LOG_FILE" >&2 || true; die "PostgreSQL did not start"; }
  fi
  if [ -z "$(psql_local -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'")" ]; then
    psql_local -d postgres -c "CREATE DATABASE $DB_NAME"
  fi
  psql_local -d "$DB_NAME" -c "CREATE EXTENSION IF NOT EXISTS postgis" 2>&1 | grep -v 'already exists' >&2 || true
  url
}

cmd_down() {
  if ! ours_running; then log "PostgreSQL not running ($RUN_DIR)"; return 0; fi
  local pid
  pid="$(head -n 1 "$DATA_DIR/postmaster.pid")"
  as_owner "$BIN/pg_ctl" -D "$DATA_DIR" -m fast -w -t 30 stop >/dev/null || { log "SIGKILL $pid"; kill -9 "$pid" || true; }
  log "PostgreSQL stopped"
}

cmd_status() {
  if ours_running && answers; then url; return 0; fi
  log "PostgreSQL not running on 127.0.0.1:$PORT ($RUN_DIR)"
  return 1
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  url) url ;;
  logs) tail -n "${2:-100}" "$LOG_FILE" ;;
  purge) cmd_down; rm -rf "$RUN_DIR"; log "removed $RUN_DIR" ;;
  *) echo "usage: $0 up|down|status|url|logs [N]|purge" >&2; exit 2 ;;
esac
