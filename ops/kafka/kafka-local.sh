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

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VERSION="${TRAFFIC_HUB_KAFKA_VERSION:-4.4.0}"
PORT="${TRAFFIC_HUB_KAFKA_PORT:-19092}"
CPORT="${TRAFFIC_HUB_KAFKA_CONTROLLER_PORT:-$((PORT + 1))}"
LIBS="${TRAFFIC_HUB_KAFKA_LIBS:-${XDG_CACHE_HOME:-$HOME/.cache}/traffic-hub/kafka-$VERSION/libs}"
RUN_DIR="${TRAFFIC_HUB_KAFKA_RUN_DIR:-${TMPDIR:-/tmp}/traffic-hub-kafka-$(id -u)-$PORT}"
HEAP_OPTS="${TRAFFIC_HUB_KAFKA_HEAP_OPTS:--Xms256m -Xmx768m}"
START_TIMEOUT="${TRAFFIC_HUB_KAFKA_START_TIMEOUT:-120}"
START_MAX="${TRAFFIC_HUB_KAFKA_START_MAX:-900}"
STOP_TIMEOUT="${TRAFFIC_HUB_KAFKA_STOP_TIMEOUT:-30}"
BOOTSTRAP="127.0.0.1:$PORT"

DATA_DIR="$RUN_DIR/data"
LOG_DIR="$RUN_DIR/logs"
CONF="$RUN_DIR/server.properties"
PID_FILE="$RUN_DIR/kafka.pid"
STAMP_FILE="$RUN_DIR/storage.stamp"   # what the storage was formatted for (version + ports)
DONE_FILE="$LIBS/.complete"          # written last by fetch: version + pom checksum
JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"
JAVA_ID=""                             # first line of `java -version`, set by require_tools
PY="$(command -v python3 || true)"

log() { echo "[kafka-local] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# ---------------------------------------------------------------------------------------------- checks

require_tools() {
  [ -n "$PY" ] || die "python3 not found (used for the ApiVersions readiness probe)"
  command -v "$JAVA" >/dev/null || die "java not found (Kafka 4.x needs Java 17+; set JAVA_HOME)"
  local major
  JAVA_ID="$("$JAVA" -version 2>&1 | head -n 1)"
  major="$(sed -nE 's/.*version "([0-9]+).*/\1/p' <<< "$JAVA_ID")"
  [ "${major:-0}" -ge 17 ] || die "Kafka 4.x needs Java 17+, '$JAVA' is version '${major:-unknown}'"
}

# ApiVersions v0 request (api_key 18, correlation id 7); exit 0 iff the reply carries error_code 0.
probe() {
  "$PY" - "$1" <<'EOF'
import socket, struct, sys
client = b"kafka-local"
body = struct.pack(">hhih", 18, 0, 7, len(client)) + client
try:
    with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1) as s:
        s.settimeout(3)
        s.sendall(struct.pack(">i", len(body)) + body)
        head = b""
        while len(head) < 10:
            chunk = s.recv(10 - len(head))
            if not chunk:
                sys.exit(2)
            head += chunk
        _size, corr, err = struct.unpack(">iih", head)
        sys.exit(0 if (corr, err) == (7, 0) else 1)
except OSError:
    sys.exit(2)
EOF
}

port_taken() {
  "$PY" -c 'import socket,sys; s=socket.socket(); sys.exit(0 if s.connect_ex(("127.0.0.1", int(sys.argv[1]))) == 0 else 1)' "$1"
}

our_pid() {  # prints the broker pid iff the pid file names a live kafka.Kafka running OUR config
  local pid
  [ -f "$PID_FILE" ] || return 1
  pid="$(cat "$PID_FILE")"
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" | grep -qF "kafka.Kafka $CONF" || return 1
  echo "$pid"
}

# ---------------------------------------------------------------------------------------------- fetch

pom_sum() { sha256sum "$HERE/pom.xml" | cut -d' ' -f1; }
libs_complete() { [ -f "$DONE_FILE" ] && [ "$(cat "$DONE_FILE")" = "$VERSION $(pom_sum)" ]; }

cmd_fetch() {
  if libs_complete; then log "Kafka $VERSION jars already in $LIBS"; return 0; fi
  command -v mvn >/dev/null || die "mvn not found (apt-get install -y maven)"
  local tmp t0
  tmp="$LIBS.tmp.$$"
  t0="$(now)"
  rm -rf "$tmp"
  mkdir -p "$(dirname "$LIBS")"
  log "fetching Kafka $VERSION from Maven Central into $LIBS (about 45 MB the first time) ..."
  # -q: mvn prints only warnings and errors; they go to stderr without Maven 3.8's stray colour codes.
  # TRAFFIC_HUB_KAFKA_MVN_ARGS is split on purpose (several arguments).
  local rc=0
  # shellcheck disable=SC2086
  mvn -B -ntp -q -f "$HERE/pom.xml" dependency:copy-dependencies \
    -Dkafka.version="$VERSION" -Dkafka.libs.dir="$tmp" ${TRAFFIC_HUB_KAFKA_MVN_ARGS:-} > "$tmp.log" 2>&1 || rc=$?
  sed -e 's/\x1b\[[0-9;]*m//g' -e '/^[[:space:]]*$/d' "$tmp.log" >&2
  rm -f "$tmp.log"
  if [ "$rc" -ne 0 ]; then
    rm -rf "$tmp"
    die "mvn could not fetch Kafka $VERSION (exit $rc, see the errors above)"
  fi
  [ -f "$tmp/kafka_2.13-$VERSION.jar" ] || { rm -rf "$tmp"; die "mvn ran but kafka_2.13-$VERSION.jar is missing"; }
  echo "$VERSION $(pom_sum)" > "$tmp/.complete"
  rm -rf "$LIBS"
  mv "$tmp" "$LIBS"
  log "fetched $(find "$LIBS" -name '*.jar' | wc -l) jars ($(du -sh "$LIBS" | cut -f1)) in $(since "$t0")s"
}

# ---------------------------------------------------------------------------------------------- config

write_configs() {
  cat > "$CONF" <<EOF
# Generated by ops/kafka/kafka-local.sh - single-node KRaft: this process is both broker and controller.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CPORT
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CPORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$DATA_DIR

# The app creates its own topics (aiokafka's admin client); internal topics are created by the broker.
auto.create.topics.enable=false

# One broker: replication factor 1 everywhere, or groups and transactions never become available.
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1

# Fast tests: no 3 s delay before the first group rebalance; 1 partition per internal topic (default 50).
group.initial.rebalance.delay.ms=0
offsets.topic.num.partitions=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.num.partitions=1

# Small box (2 cores, shared with the tests): fewer threads.
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
background.threads=4

# Log compaction stays ON (the app uses compacted topics). The dedupe buffer is allocated up front
# (default 128 MiB); 8 MiB is plenty for tests. Check for dirty logs every second instead of every 15 s.
log.cleaner.enable=true
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=8388608
log.cleaner.backoff.ms=1000
EOF
  local prop
  for prop in ${TRAFFIC_HUB_KAFKA_EXTRA_CONFIG:-}; do echo "$prop" >> "$CONF"; done

  # Broker log: server.log, rolled at 20 MB, 3 files kept.
  cat > "$RUN_DIR/log4j2.properties" <<'EOF'
status = warn
appender.file.type = RollingFile
appender.file.name = FILE
appender.file.fileName = ${sys:kafka.logs.dir}/server.log
appender.file.filePattern = ${sys:kafka.logs.dir}/server.log.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 20MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
EOF

  write_tools_log4j
}

write_tools_log4j() {
  cat > "$RUN_DIR/tools-log4j2.properties" <<'EOF'
status = warn
appender.console.type = Console
appender.console.name = STDERR
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.console.ref = STDERR
EOF
}

# Short-lived tool JVM (format, topics): small heap, C1 only, serial GC -> faster start.
tool_java() {
  "$JAVA" -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
    -Dlog4j2.configurationFile="$RUN_DIR/tools-log4j2.properties" -cp "$LIBS/*" "$@"
}

ensure_storage() {
  local stamp="kafka=$VERSION port=$PORT controller=$CPORT"
  if [ -f "$DATA_DIR/meta.properties" ] && [ "$(cat "$STAMP_FILE" 2>/dev/null)" = "$stamp" ]; then
    log "reusing formatted storage in $DATA_DIR"
    return 0
  fi
  [ -d "$DATA_DIR" ] && log "storage in $DATA_DIR was formatted for another version or ports: wiping it"
  rm -rf "$DATA_DIR" "$STAMP_FILE"
  mkdir -p "$DATA_DIR"
  local cluster_id
  cluster_id="$("$PY" -c 'import base64,os; print(base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode())')"
  # == bin/kafka-storage.sh format -t <cluster id> -c <server.properties>
  tool_java kafka.tools.StorageTool format -t "$cluster_id" -c "$CONF" > "$LOG_DIR/format.out" 2>&1 \
    || { cat "$LOG_DIR/format.out" >&2; die "storage format failed"; }
  echo "$stamp" > "$STAMP_FILE"
  log "formatted storage in $DATA_DIR (cluster id $cluster_id)"
}

# ---------------------------------------------------------------------------------------------- up / down

show_log_tail() {  # $1 = size of server.log before this start
  log "errors and warnings in $LOG_DIR/server.log since this start (last 20), then kafka.out:"
  tail -c "+$(( ${1:-0} + 1 ))" "$LOG_DIR/server.log" 2>/dev/null | grep -E '^\[[^]]*\] (ERROR|FATAL|WARN) ' \
    | tail -n 20 >&2 || true
  tail -n 20 "$LOG_DIR/kafka.out" >&2 2>/dev/null || true
}

# The log lines written since byte offset $1 of server.log tell of a failed start (the JVM may hang on).
start_failed() {
  tail -c "+$(( $1 + 1 ))" "$LOG_DIR/server.log" 2>/dev/null \
    | grep -qE 'Exiting Kafka due to fatal exception|Fatal error during (broker|controller) startup'
}

log_bytes() { { stat -c %s "$LOG_DIR"/server.log* 2>/dev/null || true; } | awk '{ s += $1 } END { print s + 0 }'; }

# Ready when the broker answers ApiVersions. A start that keeps logging (loading and recovering partition
# logs) may take up to START_MAX seconds; one that logs nothing for START_TIMEOUT seconds has failed.
wait_ready() {  # $1 = pid, $2 = start time, $3 = size of server.log before the start
  local now_s last_size size last_note
  now_s="$(date +%s)"
  local deadline=$(( now_s + START_MAX )) quiet_until=$(( now_s + START_TIMEOUT ))
  last_size="$(log_bytes)"
  last_note="$now_s"
  while ! probe "$PORT"; do
    now_s="$(date +%s)"
    size="$(log_bytes)"
    if [ "$size" != "$last_size" ]; then
      last_size="$size"
      quiet_until=$(( now_s + START_TIMEOUT ))
    fi
    if [ $(( now_s - last_note )) -ge 30 ]; then
      last_note="$now_s"
      log "still starting after $(since "$2")s, $(find "$DATA_DIR" -mindepth 1 -maxdepth 1 -type d | wc -l) partitions to load; last log line: $(tail -n 1 "$LOG_DIR/server.log" 2>/dev/null | cut -c1-160)"
    fi
    if ! kill -0 "$1" 2>/dev/null; then
      show_log_tail "${3:-0}"
      die "the broker process (pid $1) died during start"
    fi
    if start_failed "${3:-0}"; then
      show_log_tail "${3:-0}"
      stop_pid "$1"
      die "the broker failed to start (pid $1 stopped)"
    fi
    if [ "$now_s" -ge "$quiet_until" ] || [ "$now_s" -ge "$deadline" ]; then
      show_log_tail "${3:-0}"
      stop_pid "$1"
      die "the broker did not answer on $BOOTSTRAP (silent for ${START_TIMEOUT}s or over ${START_MAX}s)"
    fi
    sleep 0.5
  done
  log "Kafka $VERSION ready on $BOOTSTRAP (pid $1, $(since "$2")s)"
}

# AppCDS: the first run dumps the classes it loaded into an archive when it exits (at `down`); later starts
# map that archive instead of loading and verifying ~10k classes again (measured: about 35% faster start).
# The archive is tied to the JVM build and to the jar folder, so it is dropped when either changes.
cds_flags() {
  local jsa="$RUN_DIR/kafka.jsa" id
  id="$JAVA_ID|$LIBS|$(cat "$DONE_FILE")"
  if [ -s "$jsa" ] && [ "$(cat "$jsa.id" 2>/dev/null)" = "$id" ]; then
    echo "-XX:SharedArchiveFile=$jsa -Xlog:cds=off -Xlog:cds+dynamic=off"
  else
    rm -f "$jsa"
    echo "$id" > "$jsa.id"
    echo "-XX:ArchiveClassesAtExit=$jsa -Xlog:cds=off -Xlog:cds+dynamic=off"
  fi
}

start_broker() {
  local t0 pid cds log_size
  t0="$(now)"
  write_configs
  ensure_storage
  cds="$(cds_flags)"
  : > "$LOG_DIR/kafka.out"
  log_size="$(stat -c %s "$LOG_DIR/server.log" 2>/dev/null || echo 0)"
  # == bin/kafka-server-start.sh (kafka-run-class.sh ... kafka.Kafka) minus JMX and GC-log flags.
  # setsid: own session, so a Ctrl-C in the calling make/pytest does not reach the broker.
  # 9>&-: the broker must not inherit (and so hold forever) the lock of this script.
  # HEAP_OPTS and cds are split on purpose (several JVM flags).
  # shellcheck disable=SC2086
  setsid "$JAVA" $HEAP_OPTS $cds -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
    -XX:+ExplicitGCInvokesConcurrent -XX:MaxInlineLevel=15 -Djava.awt.headless=true \
    -Dkafka.logs.dir="$LOG_DIR" -Dlog4j2.configurationFile="$RUN_DIR/log4j2.properties" \
    -cp "$LIBS/*" kafka.Kafka "$CONF" > "$LOG_DIR/kafka.out" 2>&1 < /dev/null 9>&- &
  pid=$!
  disown "$pid"                        # no "Killed" job notice from bash if it has to be SIGKILLed
  echo "$pid" > "$PID_FILE"
  wait_ready "$pid" "$t0" "$log_size"
}

cmd_up() {
  if probe "$PORT"; then log "a broker already answers on $BOOTSTRAP"; echo "$BOOTSTRAP"; return 0; fi
  require_tools
  mkdir -p "$RUN_DIR" "$LOG_DIR"
  exec 9> "$RUN_DIR/.lock"          # serialise concurrent `up`/`down` on the same run dir
  flock -w "$START_MAX" 9 || die "could not lock $RUN_DIR/.lock"
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

stop_pid() {
  local pid="$1" i
  kill -TERM "$pid" 2>/dev/null || return 0     # kafka.Kafka's shutdown hook: orderly shutdown
  for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  log "still alive after ${STOP_TIMEOUT}s: SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$RUN_DIR/kafka.jsa"                     # may be half written
  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
}

cmd_down() {
  [ -d "$RUN_DIR" ] || { log "not running (no $RUN_DIR)"; return 0; }
  exec 9> "$RUN_DIR/.lock"
  flock -w "$START_MAX" 9 || die "could not lock $RUN_DIR/.lock"
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
  case "$RUN_DIR" in /|"") die "refusing to delete '$RUN_DIR'";; esac
  rm -rf "$RUN_DIR"
  log "deleted $RUN_DIR"
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

cmd_logs() { tail -n "${1:-100}" "$LOG_DIR/server.log"; }

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2; exit 2; }

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
