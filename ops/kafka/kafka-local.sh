#!/usr/bin/env bash
# kafka-local.sh - a real single-node Apache Kafka 4.x broker (KRaft, combined broker + controller) on
# 127.0.0.1, assembled from Maven Central jars (pom.xml next to this file) and run with plain `java`.
#
#   kafka-local.sh fetch          copy the broker jars into the cache (skipped when already complete)
#   kafka-local.sh up             fetch if needed, format storage the first time, start, wait until the broker
#                                 answers ApiVersions; no-op when a broker already answers on the port.
#                                 The last stdout line is the bootstrap address 127.0.0.1:PORT.
#   kafka-local.sh down           SIGTERM, wait, SIGKILL fallback (no-op when not running)
#   kafka-local.sh status         exit 0 iff a broker answers ApiVersions on the port
#   kafka-local.sh perf N SIZE    Kafka's own ProducerPerformance (acks=all, idempotence on), prints its summary
#   kafka-local.sh logs [N]       last N (default 100) lines of the broker log
#   kafka-local.sh purge          down, then delete the run dir (config, data, logs)
#
# What it shares with cluster-local.sh (three nodes) lives in kafka-lib.sh.
#
# Environment (all optional):
#   TRAFFIC_HUB_KAFKA_PORT             client listener port                    (default 19092)
#   TRAFFIC_HUB_KAFKA_CONTROLLER_PORT  controller listener port                (default PORT+1)
#   TRAFFIC_HUB_KAFKA_VERSION          Kafka version fetched and run           (default 4.4.0)
#   TRAFFIC_HUB_KAFKA_LIBS             jar folder      (default ${XDG_CACHE_HOME:-$HOME/.cache}/traffic-hub/kafka-VERSION/libs)
#   TRAFFIC_HUB_KAFKA_RUN_DIR          config, data, logs, pid  (default ${TMPDIR:-/tmp}/traffic-hub-kafka-UID-PORT)
#   TRAFFIC_HUB_KAFKA_HEAP_OPTS        broker heap                             (default "-Xms256m -Xmx768m")
#   TRAFFIC_HUB_KAFKA_START_TIMEOUT    seconds the broker may stay silent while starting (default 120): the
#                                      start fails when server.log has not grown for that long
#   TRAFFIC_HUB_KAFKA_START_MAX        seconds a start may take while its log keeps growing (default 900):
#                                      recovering thousands of partitions after a crash takes minutes
#   TRAFFIC_HUB_KAFKA_STOP_TIMEOUT     seconds before SIGKILL                  (default 30)
#   TRAFFIC_HUB_KAFKA_MVN_ARGS         extra mvn arguments for fetch (e.g. "-o" or "-s settings.xml")
#   TRAFFIC_HUB_KAFKA_PERF_PROPS       extra producer properties for perf, e.g. "linger.ms=20 batch.size=65536"
#   TRAFFIC_HUB_KAFKA_EXTRA_CONFIG     extra broker properties, space-separated key=value, appended to
#                                      server.properties (ops/test-future.sh uses it)
#   JAVA_HOME                          java to use (Kafka 4.x needs Java 17+; default: `java` on PATH)
set -euo pipefail

# shellcheck source=ops/kafka/kafka-lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/kafka-lib.sh"
PORT="${TRAFFIC_HUB_KAFKA_PORT:-19092}"
use_node "${TRAFFIC_HUB_KAFKA_RUN_DIR:-${TMPDIR:-/tmp}/traffic-hub-kafka-$(id -u)-$PORT}" "$PORT" \
  "${TRAFFIC_HUB_KAFKA_CONTROLLER_PORT:-$((PORT + 1))}"
HEAP_OPTS="${TRAFFIC_HUB_KAFKA_HEAP_OPTS:--Xms256m -Xmx768m}"

# The single node's own configuration: broker and controller in one process, the only voter.
# One broker: replication factor 1 everywhere, or groups and transactions never become available.
# 1 partition per internal topic (default 50): fast tests.
node_config() {
  cat <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CPORT
EOF
  replication_config 1 1 1
}

start_broker() {
  launch_broker "$(node_config)"
  wait_ready "$LAUNCHED_PID" "$LAUNCHED_AT" "$LAUNCHED_LOG_SIZE"
}

cmd_up() {
  if probe "$PORT"; then log "a broker already answers on $BOOTSTRAP"; echo "$BOOTSTRAP"; return 0; fi
  require_tools
  lock_dir "$RUN_DIR"                # serialise concurrent `up`/`down` on the same run dir
  local pid p
  if pid="$(our_pid)"; then          # started by a concurrent `up`, or still starting
    wait_ready "$pid" "$(now)"
  else
    for p in "$PORT" "$CPORT"; do
      port_taken "$p" && die "port $p on 127.0.0.1 is taken by a process that is not this broker"
    done
    cmd_fetch
    start_broker
  fi
  echo "$BOOTSTRAP"
}

cmd_down() {
  [ -d "$RUN_DIR" ] || { log "not running (no $RUN_DIR)"; return 0; }
  lock_dir "$RUN_DIR"
  local pid t0
  if pid="$(our_pid)"; then
    t0="$(now)"
    stop_pid "$pid"
    log "stopped pid $pid in $(since "$t0")s"
  else
    log "not running"
  fi
  rm -f "$PID_FILE"
}

cmd_purge() {
  cmd_down
  remove_dir "$RUN_DIR"
}

cmd_status() {
  if probe "$PORT"; then
    local pid
    if pid="$(our_pid)"; then log "Kafka answers on $BOOTSTRAP (pid $pid)"; else log "a broker answers on $BOOTSTRAP"; fi
    return 0
  fi
  log "no broker answers on $BOOTSTRAP"
  return 1
}

# ---------------------------------------------------------------------------------------------- perf / logs

cmd_perf() {
  local n="${1:-200000}" size="${2:-200}" topic out
  [[ "$n" =~ ^[0-9]+$ && "$size" =~ ^[0-9]+$ ]] || die "usage: perf NUM_RECORDS RECORD_SIZE"
  case "$VERSION" in 4.0.*|4.1.*) die "perf uses --bootstrap-server/--command-property (Kafka 4.2+)";; esac
  probe "$PORT" || die "no broker answers on $BOOTSTRAP (run: $0 up)"
  require_tools
  libs_complete || die "no complete jar folder in $LIBS (run: $0 fetch)"
  mkdir -p "$RUN_DIR"
  write_tools_log4j
  topic="perf-$(date +%s)-$$"
  tool_java org.apache.kafka.tools.TopicCommand --bootstrap-server "$BOOTSTRAP" --create \
    --topic "$topic" --partitions 1 --replication-factor 1 >/dev/null
  out="$(mktemp)"
  # == bin/kafka-producer-perf-test.sh (KAFKA_HEAP_OPTS=-Xmx512M, org.apache.kafka.tools.ProducerPerformance)
  # Client defaults otherwise (Kafka 4.x: linger.ms=5, batch.size=16384, no compression).
  # shellcheck disable=SC2086
  "$JAVA" -Xmx512m -Dlog4j2.configurationFile="$RUN_DIR/tools-log4j2.properties" -cp "$LIBS/*" \
    org.apache.kafka.tools.ProducerPerformance --bootstrap-server "$BOOTSTRAP" --topic "$topic" \
    --num-records "$n" --record-size "$size" --throughput -1 \
    --command-property acks=all enable.idempotence=true ${TRAFFIC_HUB_KAFKA_PERF_PROPS:-} \
    > "$out" || { cat "$out" >&2; rm -f "$out"; die "ProducerPerformance failed"; }
  head -n -1 "$out" >&2                      # progress lines
  awk 'END { print }' "$out"                 # the summary line (the tool prints it without a newline)
  rm -f "$out"
  tool_java org.apache.kafka.tools.TopicCommand --bootstrap-server "$BOOTSTRAP" --delete --topic "$topic" \
    >/dev/null 2>&1 || log "could not delete topic $topic"
}

main() {
  local cmd="${1:-}"
  [ $# -gt 0 ] && shift
  case "$cmd" in
    fetch)  cmd_fetch ;;
    up)     cmd_up ;;
    down)   cmd_down ;;
    status) cmd_status ;;
    perf)   cmd_perf "$@" ;;
    logs)   cmd_logs "$@" ;;
    purge)  cmd_purge ;;
    *)      usage ;;
  esac
}

main "$@"
