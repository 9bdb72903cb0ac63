#!/usr/bin/env bash
# test-all.sh - `make test`: every test on the dev broker and, at the same time, the future-clock pass
# (ops/test-future.sh, its own broker and clock) - one run's wall time instead of two in a row.
#
# Why at the same time: both passes spend much of their time waiting (brokers, child processes,
# Chromium, round trips), so on the 2-core development machine the pair finishes well before the sum of
# the two (the figures are in README "Tests"). CI's 20-minute budget was at 19 of them with the passes in
# a row. The passes share nothing: separate brokers (ports), run-scoped topic prefixes, one database per
# archive test, free ports for every server a test starts.
#
# The future-clock pass writes to a log that is printed after the main pass, so the two outputs never
# interleave. The exit status fails if either pass fails. Extra arguments go to both pytest runs.
# TRAFFIC_HUB_TEST_SERIAL=1 runs them one after the other (as before), e.g. to read a failure calmly.
set -uo pipefail
cd "$(dirname "$0")/.."

if [ "${TRAFFIC_HUB_TEST_SERIAL:-}" = "1" ]; then
  .venv/bin/pytest "$@" || exit $?
  exec bash ops/test-future.sh -q "$@"
fi

FUTURE_LOG="$(mktemp "${TMPDIR:-/tmp}/traffic-hub-test-future.XXXXXX")"
bash ops/test-future.sh -q "$@" > "$FUTURE_LOG" 2>&1 &
FUTURE_PID=$!
# Ctrl-C or a CI timeout: stop the future pass too (its own trap stops its broker).
trap 'kill "$FUTURE_PID" 2>/dev/null; wait "$FUTURE_PID" 2>/dev/null; rm -f "$FUTURE_LOG"; exit 130' INT TERM

.venv/bin/pytest "$@"
MAIN_RC=$?

wait "$FUTURE_PID"
FUTURE_RC=$?
echo
echo "=== future-clock pass (ops/test-future.sh, ran alongside) ==="
cat "$FUTURE_LOG"
rm -f "$FUTURE_LOG"
trap - INT TERM

if [ "$MAIN_RC" -ne 0 ] || [ "$FUTURE_RC" -ne 0 ]; then
  echo "make test: FAILED (main pass exit $MAIN_RC, future-clock pass exit $FUTURE_RC)" >&2
  exit 1
fi
