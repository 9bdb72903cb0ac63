#!/usr/bin/env bash
# test-future.sh - run the tests whose meaning depends on "now" with the clock moved ahead (default
# 400 days), so a test that takes a calendar date for "the future" fails today, not in a year.
#
# The pytest process moves its wall clock with `--clock-ahead` (time-machine, see tests/conftest.py):
# time keeps flowing, monotonic clocks stay real. libfaketime was tried first: its Debian 12 build
# (0.9.10) makes Python 3.11's time.sleep fail with EINVAL. Kafka 4.x refuses records stamped more than
# an hour ahead of the broker's clock (log.message.timestamp.after.max.ms), so the run gets a private
# broker that accepts future timestamps: the code under test is ours, and it is ours that lives ahead.
#
# Environment: TRAFFIC_HUB_FUTURE_DAYS (default 400), TRAFFIC_HUB_FUTURE_KAFKA_PORT (default 29092).
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

DAYS="${TRAFFIC_HUB_FUTURE_DAYS:-400}"
PORT="${TRAFFIC_HUB_FUTURE_KAFKA_PORT:-29092}"
RUN_DIR="$(mktemp -d "${TMPDIR:-/tmp}/traffic-hub-future-kafka.XXXXXX")"
export TRAFFIC_HUB_KAFKA_PORT="$PORT" TRAFFIC_HUB_KAFKA_RUN_DIR="$RUN_DIR"
export TRAFFIC_HUB_KAFKA__BOOTSTRAP_SERVERS="127.0.0.1:$PORT"
cleanup() { bash ops/kafka/kafka-local.sh down >/dev/null 2>&1 || true; rm -rf "$RUN_DIR"; }
trap cleanup EXIT
TRAFFIC_HUB_KAFKA_EXTRA_CONFIG="log.message.timestamp.after.max.ms=9223372036854775807" \
  bash ops/kafka/kafka-local.sh up >/dev/null

.venv/bin/pytest -m time_dependent -p no:cacheprovider --clock-ahead "$DAYS" "$@"
