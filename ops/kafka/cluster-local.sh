#!/usr/bin/env bash
# cluster-local.sh - a real three-node Apache Kafka 4.x cluster on 127.0.0.1 (KRaft, every node both broker
# and controller, a 3-voter quorum), from the same Maven jars as kafka-local.sh, for the tests and demos that
# must lose a machine: replication factor 3 and min.insync.replicas 2 for the internal topics and by default.
#
#   cluster-local.sh up           fetch if needed, format each node the first time, start the nodes that are not
#                                 running, wait until all three serve and a Metadata request sees 3 brokers.
#                                 Idempotent. The last stdout line is the bootstrap list 127.0.0.1:P1,…,127.0.0.1:P3.
#   cluster-local.sh down         SIGTERM to every node at once, wait, SIGKILL fallback (no-op when not running)
#   cluster-local.sh kill N       SIGKILL node N (1-3): a machine lost, no orderly shutdown
#   cluster-local.sh start N      start node N again and wait until it has rejoined (3 brokers registered)
#   cluster-local.sh status       each node's state and the brokers the cluster sees; exit 0 iff all 3 are in
#   cluster-local.sh controller   the node id (1-3) of the active controller (the KRaft quorum leader)
#   cluster-local.sh bootstrap    print the bootstrap list
#   cluster-local.sh logs N [L]   last L (default 100) lines of node N's server.log
#   cluster-local.sh purge        down, then delete the cluster dir (configs, data, logs)
#
# Ports, from TRAFFIC_HUB_KAFKA_PORT = P (default 19092; the single dev broker keeps P and P+1):
#   node N listens for clients on P+198+2N and for the controller quorum on P+199+2N, that is
#   19292/19293, 19294/19295, 19296/19297. (P+100… is taken by the fault tests' private broker, 19192/19193.)
#   Node N has node.id N, so a broker id in metadata is the N of `kill N`.
#
# Environment (all optional; the single broker's TRAFFIC_HUB_KAFKA_RUN_DIR / _CONTROLLER_PORT / _HEAP_OPTS do
# not apply here):
#   TRAFFIC_HUB_KAFKA_CLUSTER_DIR        run dirs node1/ node2/ node3/, cluster.id, the shared CDS archive
#                                        (default ${TMPDIR:-/tmp}/traffic-hub-kafka-cluster-UID-P)
#   TRAFFIC_HUB_KAFKA_CLUSTER_HEAP_OPTS  heap of each node (default "-Xms128m -Xmx384m")
#   TRAFFIC_HUB_KAFKA_SESSION_TIMEOUT_MS a killed broker is fenced (its partitions get new leaders) after this
#                                        (default 1500; Kafka's own default is 9000)
#   TRAFFIC_HUB_KAFKA_HEARTBEAT_MS       a broker heartbeats the controller this often (default 250; Kafka's 2000)
#   and those of kafka-lib.sh: TRAFFIC_HUB_KAFKA_VERSION, _LIBS, _START_TIMEOUT, _START_MAX, _STOP_TIMEOUT,
#   _MVN_ARGS, _EXTRA_CONFIG (appended to every node's server.properties), JAVA_HOME.
set -euo pipefail

# shellcheck source=ops/kafka/kafka-lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/kafka-lib.sh"
BASE_PORT="${TRAFFIC_HUB_KAFKA_PORT:-19092}"
CLUSTER_DIR="${TRAFFIC_HUB_KAFKA_CLUSTER_DIR:-${TMPDIR:-/tmp}/traffic-hub-kafka-cluster-$(id -u)-$BASE_PORT}"
HEAP_OPTS="${TRAFFIC_HUB_KAFKA_CLUSTER_HEAP_OPTS:--Xms128m -Xmx384m}"
SESSION_TIMEOUT_MS="${TRAFFIC_HUB_KAFKA_SESSION_TIMEOUT_MS:-1500}"
HEARTBEAT_MS="${TRAFFIC_HUB_KAFKA_HEARTBEAT_MS:-250}"
NODES=(1 2 3)
CDS_ARCHIVE="$CLUSTER_DIR/kafka.jsa"   # one archive for the three nodes, written by node 1 only
LOG_TAG="kafka-cluster"

client_port() { echo $(( BASE_PORT + 198 + 2 * $1 )); }
VOTERS=""
ALL_BOOTSTRAP=""
for n in "${NODES[@]}"; do
  VOTERS+="${VOTERS:+,}$n@127.0.0.1:$(( $(client_port "$n") + 1 ))"
  ALL_BOOTSTRAP+="${ALL_BOOTSTRAP:+,}127.0.0.1:$(client_port "$n")"
done

node() {  # point kafka-lib.sh at node $1
  [[ "${1:-}" =~ ^[1-3]$ ]] || die "node number must be 1, 2 or 3, not '${1:-}'"
  NODE="$1"
  use_node "$CLUSTER_DIR/node$1" "$(client_port "$1")" "$(( $(client_port "$1") + 1 ))"
  LOG_TAG="kafka-cluster node $1"
  if [ "$1" = 1 ]; then CDS_DUMP=yes; else CDS_DUMP=no; fi
}

# Node $NODE's own configuration: one of three combined broker+controller voters, RF 3 / min ISR 2.
node_config() {
  cat <<EOF
process.roles=broker,controller
node.id=$NODE
controller.quorum.voters=$VOTERS
# Three brokers: internal topics and default topics get 3 replicas, and an acks=all write needs 2 of them,
# so any one node may be lost without losing or refusing acknowledged writes. 3 partitions per internal
# topic spread the group and transaction coordinators over the nodes.
EOF
  replication_config 3 2 3
  cat <<EOF
unclean.leader.election.enable=false
# Fail-over: a node that stops heartbeating is fenced after the session timeout, then its partitions get
# new leaders and it leaves every ISR (writes with acks=all wait for it until then, so every write of the
# hub pauses that long). 1.5 s with a heartbeat every 250 ms: six heartbeats missed before a fence, which
# a loaded machine (load average 15-25) did not cause in the chaos runs; 3 s made processing resume only
# 5-6 s after a broker loss (issue 16's goal: 3 s).
broker.heartbeat.interval.ms=$HEARTBEAT_MS
broker.session.timeout.ms=$SESSION_TIMEOUT_MS
# A killed active controller: the others notice after the fetch timeout (default 2 s), elect a new one
# (election timeout, default 1 s), which then fences the dead node after the session timeout.
controller.quorum.fetch.timeout.ms=1000
controller.quorum.election.timeout.ms=500
# Only \`down\` sends SIGTERM, and it stops every node: moving leaderships away first is pointless, and the
# last node would wait minutes for a controller quorum that has gone (measured: 30 s, then SIGKILL).
controlled.shutdown.enable=false
EOF
}

cluster_id() {  # one id for the three nodes, made once
  [ -s "$CLUSTER_DIR/cluster.id" ] || new_cluster_id > "$CLUSTER_DIR/cluster.id"
  cat "$CLUSTER_DIR/cluster.id"
}

# The brokers a Metadata request to any live node sees (registered and unfenced), space-separated.
seen_brokers() {
  local n out
  for n in "${NODES[@]}"; do
    if out="$("$PY" "$HERE/kafka_probe.py" brokers "$(client_port "$n")")"; then echo "$out"; return 0; fi
  done
  return 1
}

healthy() { [ "$(seen_brokers 2>/dev/null)" = "${NODES[*]}" ]; }

wait_all_brokers() {  # a node answering ApiVersions may not be registered (unfenced) with the controller yet
  local t0 deadline
  t0="$(now)"
  deadline=$(( $(date +%s) + START_TIMEOUT ))
  until healthy; do
    [ "$(date +%s)" -lt "$deadline" ] || die "after ${START_TIMEOUT}s the cluster sees brokers [$(seen_brokers || true)], not [${NODES[*]}]"
    sleep 0.3
  done
  LOG_TAG="kafka-cluster"
  log "3 brokers registered ($(since "$t0")s after the last node answered)"
}

# Start the given nodes (those not already running) and wait for each in parallel: a combined node serves
# only once a quorum (2 of the 3 voters) has elected a leader, so none can be awaited alone.
start_nodes() {
  local n pid p waits=() failed=0
  declare -A pids=() starts=() sizes=()
  for n in "$@"; do
    node "$n"
    if pid="$(our_pid)"; then
      pids[$n]="$pid" starts[$n]="$(now)" sizes[$n]="$(stat -c %s "$LOG_DIR/server.log" 2>/dev/null || echo 0)"
      continue
    fi
    for p in "$PORT" "$CPORT"; do
      port_taken "$p" && die "port $p on 127.0.0.1 is taken by a process that is not node $n of this cluster"
    done
    launch_broker "$(node_config)" "$(cluster_id)" "quorum=$VOTERS"
    pids[$n]="$LAUNCHED_PID" starts[$n]="$LAUNCHED_AT" sizes[$n]="$LAUNCHED_LOG_SIZE"
  done
  for n in "$@"; do
    ( node "$n"; wait_ready "${pids[$n]}" "${starts[$n]}" "${sizes[$n]}" ) &
    waits+=($!)
  done
  for pid in "${waits[@]}"; do wait "$pid" || failed=1; done
  if [ "$failed" = 1 ]; then
    stop_nodes "${NODES[@]}"
    die "the cluster did not start (see above); every node stopped"
  fi
  wait_all_brokers
}

stop_nodes() {  # SIGTERM to all at once: one by one, the last nodes would wait for a quorum that is gone
  local n pid stops=()
  for n in "$@"; do
    node "$n"
    if pid="$(our_pid)"; then
      ( stop_pid "$pid"; rm -f "$PID_FILE" ) &
      stops+=($!)
    fi
  done
  for pid in "${stops[@]}"; do wait "$pid" || true; done
  LOG_TAG="kafka-cluster"
}

cmd_up() {
  if healthy; then log "the cluster already serves: brokers ${NODES[*]}"; echo "$ALL_BOOTSTRAP"; return 0; fi
  local t0
  t0="$(now)"
  require_tools
  lock_dir "$CLUSTER_DIR"
  cmd_fetch
  start_nodes "${NODES[@]}"
  log "cluster up in $(since "$t0")s"
  echo "$ALL_BOOTSTRAP"
}

cmd_down() {
  [ -d "$CLUSTER_DIR" ] || { log "not running (no $CLUSTER_DIR)"; return 0; }
  lock_dir "$CLUSTER_DIR"
  local t0
  t0="$(now)"
  stop_nodes "${NODES[@]}"
  log "stopped in $(since "$t0")s"
}

cmd_kill() {
  node "${1:-}"
  local pid
  if ! pid="$(our_pid)"; then log "not running"; return 0; fi
  kill -KILL "$pid"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  rm -f "$PID_FILE"
  log "killed pid $pid (SIGKILL)"
}

cmd_start() {
  node "${1:-}"
  require_tools
  lock_dir "$CLUSTER_DIR"
  libs_complete || cmd_fetch
  local t0
  t0="$(now)"
  start_nodes "$1"
  log "node $1 rejoined in $(since "$t0")s"
}

cmd_status() {
  local n pid brokers
  for n in "${NODES[@]}"; do
    node "$n"
    if pid="$(our_pid)"; then
      if probe "$PORT"; then log "serves on $BOOTSTRAP (pid $pid)"; else log "running, not serving on $BOOTSTRAP (pid $pid)"; fi
    else
      log "not running"
    fi
  done
  LOG_TAG="kafka-cluster"
  if brokers="$(seen_brokers)"; then log "brokers registered: [$brokers]"; else log "no node answers"; fi
  healthy
}

cmd_controller() {
  local n files=()
  for n in "${NODES[@]}"; do
    node "$n"
    our_pid > /dev/null && files+=("$DATA_DIR/__cluster_metadata-0/quorum-state")
  done
  LOG_TAG="kafka-cluster"
  [ "${#files[@]}" -gt 0 ] || die "no node is running"
  "$PY" "$HERE/kafka_probe.py" controller "${files[@]}" || die "no controller elected yet"
}

cmd_purge() {
  cmd_down
  remove_dir "$CLUSTER_DIR"
}

main() {
  local cmd="${1:-}"
  [ $# -gt 0 ] && shift
  case "$cmd" in
    up)         cmd_up ;;
    down)       cmd_down ;;
    kill)       cmd_kill "$@" ;;
    start)      cmd_start "$@" ;;
    status)     cmd_status ;;
    controller) cmd_controller ;;
    bootstrap)  echo "$ALL_BOOTSTRAP" ;;
    logs)       node "${1:-}"; cmd_logs "${2:-100}" ;;
    purge)      cmd_purge ;;
    fetch)      cmd_fetch ;;
    *)          usage ;;
  esac
}

main "$@"
