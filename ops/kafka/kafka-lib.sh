# kafka-lib.sh - what the local Kafka scripts share; sourced by kafka-local.sh (one node) and
# cluster-local.sh (three nodes). One place fetches the jars, writes a node's configuration, formats its
# storage, starts it, waits until it serves and stops it, so the single broker and the cluster cannot drift.
#
# A "node" is one kafka.Kafka process with its own run dir and ports: `use_node RUN_DIR PORT CONTROLLER_PORT`
# points every function below at it (the cluster script switches between its nodes with it). ROLES (default
# broker,controller) picks its listeners: see listener_config.
# The caller sets HEAP_OPTS (JVM heap of a node) and LOG_TAG (prefix of the messages) after sourcing.
# Environment: see the header of kafka-local.sh (TRAFFIC_HUB_KAFKA_VERSION, _LIBS, _START_TIMEOUT, _START_MAX,
# _STOP_TIMEOUT, _MVN_ARGS, _EXTRA_CONFIG, JAVA_HOME).
# shellcheck shell=bash

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VERSION="${TRAFFIC_HUB_KAFKA_VERSION:-4.4.0}"
LIBS="${TRAFFIC_HUB_KAFKA_LIBS:-${XDG_CACHE_HOME:-$HOME/.cache}/traffic-hub/kafka-$VERSION/libs}"
START_TIMEOUT="${TRAFFIC_HUB_KAFKA_START_TIMEOUT:-120}"
START_MAX="${TRAFFIC_HUB_KAFKA_START_MAX:-900}"
STOP_TIMEOUT="${TRAFFIC_HUB_KAFKA_STOP_TIMEOUT:-30}"
DONE_FILE="$LIBS/.complete"          # written last by fetch: version + pom checksum
JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"
JAVA_ID=""                             # first line of `java -version`, set by require_tools
PY="$(command -v python3 || true)"
LOG_TAG="kafka-local"

log() { echo "[$LOG_TAG] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# Point the functions below at one node: its run dir (config, data, logs, pid) and its two ports.
use_node() {  # $1 = run dir, $2 = client port, $3 = controller port
  RUN_DIR="$1" PORT="$2" CPORT="$3"
  BOOTSTRAP="127.0.0.1:$PORT"
  DATA_DIR="$RUN_DIR/data"
  LOG_DIR="$RUN_DIR/logs"
  CONF="$RUN_DIR/server.properties"
  PID_FILE="$RUN_DIR/kafka.pid"
  STAMP_FILE="$RUN_DIR/storage.stamp"   # what the storage was formatted for (version, ports, quorum)
}

# ---------------------------------------------------------------------------------------------- checks

require_tools() {
  [ -n "$PY" ] || die "python3 not found (used for the ApiVersions readiness probe)"
  command -v "$JAVA" >/dev/null || die "java not found (Kafka 4.x needs Java 17+; set JAVA_HOME)"
  local major
  JAVA_ID="$("$JAVA" -version 2>&1 | head -n 1)"
  major="$(sed -nE 's/.*version "([0-9]+).*/\1/p' <<< "$JAVA_ID")"
  [ "${major:-0}" -ge 17 ] || die "Kafka 4.x needs Java 17+, '$JAVA' is version '${major:-unknown}'"
}

# ApiVersions v0 request; exit 0 iff the broker on port $1 answers with error_code 0 (kafka_probe.py).
probe() { "$PY" "$HERE/kafka_probe.py" apiversions "$1"; }

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

# The replication block of server.properties: internal topics (offsets, transactions, share state) and the
# defaults of other topics get this replication factor, min ISR and partition count.
replication_config() {  # $1 = replication factor, $2 = min in-sync replicas, $3 = partitions per internal topic
  cat <<EOF
num.partitions=1
default.replication.factor=$1
min.insync.replicas=$2
offsets.topic.replication.factor=$1
transaction.state.log.replication.factor=$1
transaction.state.log.min.isr=$2
share.coordinator.state.topic.replication.factor=$1
share.coordinator.state.topic.min.isr=$2
offsets.topic.num.partitions=$3
transaction.state.log.num.partitions=$3
share.coordinator.state.topic.num.partitions=$3
EOF
}

# The listeners of the current node, by its ROLES: a combined node (the default, and the single broker) has
# both; a broker-only node serves clients and replication on PORT and reaches the controllers through
# controller.quorum.voters; a controller-only node must listen and advertise its CONTROLLER listener only
# (Kafka refuses a PLAINTEXT listener on process.roles=controller), on CPORT.
listener_config() {
  case "${ROLES:-broker,controller}" in
    broker,controller) cat <<EOF
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CPORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
inter.broker.listener.name=PLAINTEXT
EOF
    ;;
    broker) cat <<EOF
listeners=PLAINTEXT://127.0.0.1:$PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
inter.broker.listener.name=PLAINTEXT
EOF
    ;;
    controller) echo "listeners=CONTROLLER://127.0.0.1:$CPORT" ;;
    *) die "unknown process roles '$ROLES'" ;;
  esac
}

# server.properties of the current node: its own lines ($1: roles, id, quorum, replication), then the
# listeners and the settings every local node shares, then TRAFFIC_HUB_KAFKA_EXTRA_CONFIG.
write_configs() {  # $1 = the node's own lines
  {
    echo "# Generated by ops/kafka/$(basename "$0") - do not edit: rewritten at every start."
    echo "$1"
    listener_config
    cat <<EOF
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$DATA_DIR

# The app creates its own topics (aiokafka's admin client); internal topics are created by the broker.
auto.create.topics.enable=false

# Fast tests: no 3 s delay before the first group rebalance.
group.initial.rebalance.delay.ms=0

# Consumer groups may ask for a 1 s session (Kafka's default minimum is 6 s): the normalisers' groups use
# 1.5 s, so the decision partition and a killed process's placement partitions move to a live normaliser at
# once, instead of idling until the killed process is restarted (traffic_hub/normaliser/group.py). On every
# local node, single broker included: a broker that refuses it makes the normaliser fall back to 10 s with a
# WARNING (and aiokafka's own ERROR line), which a clean start must not log (tests/integration/test_quiet_start.py).
group.min.session.timeout.ms=1000

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
  } > "$CONF"
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

# A random cluster id as Kafka's Uuid.randomUuid makes it: never starting with "-" (format would take it for
# an option: "argument --cluster-id/-t: expected one argument", 1 start in 64 before this check).
new_cluster_id() {
  "$PY" -c 'import base64,os
while (i := base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode()).startswith("-"): pass
print(i)'
}

# Format the node's storage the first time, or again when what it was formatted for changed.
ensure_storage() {  # $1 = cluster id (default: a new one), $2 = more of the stamp (e.g. the quorum)
  local stamp="kafka=$VERSION port=$PORT controller=$CPORT${2:+ $2}"
  if [ -f "$DATA_DIR/meta.properties" ] && [ "$(cat "$STAMP_FILE" 2>/dev/null)" = "$stamp" ]; then
    log "reusing formatted storage in $DATA_DIR"
    return 0
  fi
  [ -d "$DATA_DIR" ] && log "storage in $DATA_DIR was formatted for another version or ports: wiping it"
  rm -rf "$DATA_DIR" "$STAMP_FILE"
  mkdir -p "$DATA_DIR"
  local cluster_id="${1:-$(new_cluster_id)}"
  # == bin/kafka-storage.sh format -t <cluster id> -c <server.properties>
  tool_java kafka.tools.StorageTool format -t "$cluster_id" -c "$CONF" > "$LOG_DIR/format.out" 2>&1 \
    || { cat "$LOG_DIR/format.out" >&2; die "storage format failed"; }
  echo "$stamp" > "$STAMP_FILE"
  log "formatted storage in $DATA_DIR (cluster id $cluster_id)"
}

# ---------------------------------------------------------------------------------------------- start / stop

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
# CDS_ARCHIVE (default: the node's run dir) lets several nodes share one archive; a node with CDS_DUMP=no
# maps it when it exists but never writes it (one writer: nodes of a cluster must not dump at once).
CDS_ARCHIVE=""
CDS_DUMP=yes
cds_flags() {
  local jsa="${CDS_ARCHIVE:-$RUN_DIR/kafka.jsa}" id
  id="$JAVA_ID|$LIBS|$(cat "$DONE_FILE")"
  if [ -s "$jsa" ] && [ "$(cat "$jsa.id" 2>/dev/null)" = "$id" ]; then
    echo "-XX:SharedArchiveFile=$jsa -Xlog:cds=off -Xlog:cds+dynamic=off"
  elif [ "$CDS_DUMP" = yes ]; then
    rm -f "$jsa"
    echo "$id" > "$jsa.id"
    echo "-XX:ArchiveClassesAtExit=$jsa -Xlog:cds=off -Xlog:cds+dynamic=off"
  fi
}

# Write the node's config, format its storage if needed and start it in the background; sets LAUNCHED_PID,
# LAUNCHED_AT and LAUNCHED_LOG_SIZE for wait_ready. $1 = the node's own config lines, $2/$3 = ensure_storage's.
launch_broker() {
  local cds
  LAUNCHED_AT="$(now)"
  mkdir -p "$RUN_DIR" "$LOG_DIR"
  write_configs "$1"
  ensure_storage "${2:-}" "${3:-}"
  cds="$(cds_flags)"
  : > "$LOG_DIR/kafka.out"
  LAUNCHED_LOG_SIZE="$(stat -c %s "$LOG_DIR/server.log" 2>/dev/null || echo 0)"
  # == bin/kafka-server-start.sh (kafka-run-class.sh ... kafka.Kafka) minus JMX and GC-log flags.
  # setsid: own session, so a Ctrl-C in the calling make/pytest does not reach the broker.
  # 9>&-: the broker must not inherit (and so hold forever) the lock of this script.
  # HEAP_OPTS and cds are split on purpose (several JVM flags).
  # shellcheck disable=SC2086
  setsid "$JAVA" $HEAP_OPTS $cds -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
    -XX:+ExplicitGCInvokesConcurrent -XX:MaxInlineLevel=15 -Djava.awt.headless=true \
    -Dkafka.logs.dir="$LOG_DIR" -Dlog4j2.configurationFile="$RUN_DIR/log4j2.properties" \
    -cp "$LIBS/*" kafka.Kafka "$CONF" > "$LOG_DIR/kafka.out" 2>&1 < /dev/null 9>&- &
  LAUNCHED_PID=$!
  disown "$LAUNCHED_PID"               # no "Killed" job notice from bash if it has to be SIGKILLed
  echo "$LAUNCHED_PID" > "$PID_FILE"
}

# Take the lock of a run dir (fd 9) so that concurrent up/down/start on it are serialised.
lock_dir() {  # $1 = directory
  mkdir -p "$1"
  exec 9> "$1/.lock"
  flock -w "$START_MAX" 9 || die "could not lock $1/.lock"
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
  [ "$CDS_DUMP" = yes ] && rm -f "${CDS_ARCHIVE:-$RUN_DIR/kafka.jsa}"   # may be half written
  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
}

cmd_logs() { tail -n "${1:-100}" "$LOG_DIR/server.log"; }

remove_dir() {  # $1 = a run dir to delete with everything in it
  case "$1" in /|"") die "refusing to delete '$1'";; esac
  rm -rf "$1"
  log "deleted $1"
}

# The comment block at the top of the calling script is its usage text.
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2; exit 2; }
