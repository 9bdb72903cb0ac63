#!/usr/bin/env bash
# system-packages.sh - the Debian packages traffic-hub needs beyond Python, installed when missing.
#
# `make install` runs it first, so `make run` and `make test` work on a bare Debian/Ubuntu machine.
# As root with apt-get it installs what is missing; otherwise it stops at once and prints the exact
# command to run. Nothing is installed when everything is there (no apt-get update, no network).
#
#   java + maven  the real Kafka broker, assembled from Maven Central jars (ops/kafka)
#   chromium      the map's browser tests (Playwright drives Debian's Chromium; nothing downloaded)
#   node + npm    the map's and the API docs' JavaScript, from the npm registry (package-lock.json)
#   nginx, wrk    `make bench` loads the feeds with wrk, and serves the same bytes with nginx as its reference
#   python3-venv  `make install` creates .venv
#   postgresql + postgresql-NN-postgis-3  the history archive (ops/postgres/db-local.sh, issue 19); NN is the
#                 installed PostgreSQL major, else Debian bookworm's 15
set -euo pipefail

need() {  # need COMMAND PACKAGE...: the packages when COMMAND is missing
  command -v "$1" >/dev/null 2>&1 || echo "${@:2}"
}
missing=(
  $(need java default-jre-headless)
  $(need mvn maven)
  $(need chromium chromium)
  $(need node nodejs)
  $(need npm npm)
  $(need nginx nginx-light)
  $(need wrk wrk)
)
pg_major="$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | sort -n | tail -n 1)"
[ -n "$pg_major" ] && [ -x "/usr/lib/postgresql/$pg_major/bin/postgres" ] || missing+=(postgresql)
[ -f "/usr/share/postgresql/${pg_major:-15}/extension/postgis.control" ] || missing+=("postgresql-${pg_major:-15}-postgis-3")
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
[ "${#missing[@]}" -eq 0 ] && exit 0

command="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "traffic-hub needs system packages that are missing: ${missing[*]}" >&2
  echo "Install them, then run make again:" >&2
  echo "  sudo apt-get update && sudo $command" >&2
  exit 1
fi
echo "[install] installing system packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
$command -qq >/dev/null
