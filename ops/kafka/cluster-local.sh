#!/usr/bin/env bash
# cluster-local.sh - a real three-broker Apache Kafka 4.x cluster on 127.0.0.1 (KRaft), from the same Maven jars
# as kafka-local.sh, for the tests and demos that must lose a machine: replication factor 3 and
# min.insync.replicas 2 for the internal topics and by default.
#
# Topology (TRAFFIC_HUB_KAFKA_CONTROLLERS):
#   dedicated (default)  three broker-only processes (node ids 1-3) and three controller-only processes
#                        c1-c3 (node ids 101-103) forming the 3-voter KRaft quorum: Kafka's layout for
#                        production ("Combined mode is not recommended in critical deployment environments",
#                        kafka.apache.org/documentation/#kraft_role). Losing the active controller fences no
#                        broker; a lost broker is fenced by a live controller one session after its last
#                        heartbeat (docs/cluster.md).
#   combined             three processes, each broker and controller (node ids 1-3 are the voters), as before:
#                        kept to measure the difference; a lost active controller takes its broker with it.
#
#   cluster-local.sh up           fetch if needed, format each node the first time (in parallel), start the nodes
#                                 that are not running (in parallel), wait until every node serves and a
#                                 Metadata request sees 3 brokers. Idempotent. The last stdout line is the
#                                 bootstrap list 127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3 (brokers only).
#   cluster-local.sh down         SIGTERM to every node at once, wait, SIGKILL fallback (no-op when not running)
#   cluster-local.sh kill N       SIGKILL node N: broker 1-3, or controller c1-c3 (dedicated): a machine lost
#   cluster-local.sh start N      start node N again and wait until it is in (a broker registered and unfenced, a
#                                 controller answering); a concurrent `start` of another node is not held up
#   cluster-local.sh status       each node's state and the brokers the cluster sees; exit 0 iff all are in
#   cluster-local.sh controller   the node (the N of kill N) leading the KRaft quorum: the active controller,
#                                 c1-c3 when dedicated, 1-3 when combined
#   cluster-local.sh pid N        node N's process id (exit 1 if it is not running): the chaos run kills several
#                                 victims of one fault at the same moment with it
#   cluster-local.sh bootstrap    print the bootstrap list
#   cluster-local.sh logs N [L]   last L (default 100) lines of node N's server.log
#   cluster-local.sh purge        down, then delete the cluster dir (configs, data, logs)
#
# Ports, from TRAFFIC_HUB_KAFKA_PORT = P (default 19092; the single dev broker keeps P and P+1):
#   broker N listens for clients on P+198+2N (19292, 19294, 19296), the quorum listener of voter N
#   (controller cN, or combined node N) is P+199+2N (19293, 19295, 19297).
#   (P+100… is taken by the fault tests' private broker, 19192/19193.) Broker N has node.id N, so a broker id in
#   metadata is the N of `kill N`; controller cN has node.id 100+N.
#
# Environment (all optional; the single broker's TRAFFIC_HUB_KAFKA_RUN_DIR / _CONTROLLER_PORT / _HEAP_OPTS do
# not apply here):
#   TRAFFIC_HUB_KAFKA_CONTROLLERS        dedicated (default) or combined, see above; switching re-formats the nodes
#   TRAFFIC_HUB_KAFKA_CLUSTER_DIR        run dirs node1-3/ (brokers or combined nodes), controller1-3/, cluster.id,
#                                        the shared CDS archive (default ${TMPDIR:-/tmp}/traffic-hub-kafka-cluster-UID-P)
#   TRAFFIC_HUB_KAFKA_CLUSTER_HEAP_OPTS  heap of each broker or combined node (default "-Xms128m -Xmx384m")
#   TRAFFIC_HUB_KAFKA_CONTROLLER_HEAP_OPTS  heap of each dedicated controller (default "-Xms64m -Xmx192m": it
#                                        holds the cluster's metadata only, a few hundred records here)
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
BROKER_HEAP_OPTS="$HEAP_OPTS"
CONTROLLER_HEAP_OPTS="${TRAFFIC_HUB_KAFKA_CONTROLLER_HEAP_OPTS:--Xms64m -Xmx192m}"
SESSION_TIMEOUT_MS="${TRAFFIC_HUB_KAFKA_SESSION_TIMEOUT_MS:-1500}"
HEARTBEAT_MS="${TRAFFIC_HUB_KAFKA_HEARTBEAT_MS:-250}"
MODE="${TRAFFIC_HUB_KAFKA_CONTROLLERS:-dedicated}"
LOG_TAG="kafka-cluster"
BROKERS=(1 2 3)
case "$MODE" in
  dedicated) CONTROLLERS=(c1 c2 c3) ;;
  combined)  CONTROLLERS=() ;;
  *) die "TRAFFIC_HUB_KAFKA_CONTROLLERS must be dedicated or combined, not '$MODE'" ;;
esac
NODES=("${BROKERS[@]}" "${CONTROLLERS[@]}")
CDS_ARCHIVE="$CLUSTER_DIR/kafka.jsa"   # one archive for every node, written by node 1 only

client_port() { echo $(( BASE_PORT + 198 + 2 * $1 )); }
quorum_port() { echo $(( BASE_PORT + 199 + 2 * $1 )); }
voter_id() { if [ "$MODE" = dedicated ]; then echo $(( 100 + $1 )); else echo "$1"; fi; }
VOTERS=""
ALL_BOOTSTRAP=""
for n in "${BROKERS[@]}"; do
  VOTERS+="${VOTERS:+,}$(voter_id "$n")@127.0.0.1:$(quorum_port "$n")"
  ALL_BOOTSTRAP+="${ALL_BOOTSTRAP:+,}127.0.0.1:$(client_port "$n")"
done

node() {  # point kafka-lib.sh at node $1: a broker (or combined node) 1-3, or a dedicated controller c1-c3
  NODE="${1:-}"
  case "$MODE:$NODE" in
    combined:[1-3])
      ROLES=broker,controller NODE_ID="$NODE" HEAP_OPTS="$BROKER_HEAP_OPTS" LOG_TAG="kafka-cluster node $NODE"
      use_node "$CLUSTER_DIR/node$NODE" "$(client_port "$NODE")" "$(quorum_port "$NODE")"
      NODE_PORTS=("$PORT" "$CPORT") ;;
    dedicated:[1-3])
      ROLES=broker NODE_ID="$NODE" HEAP_OPTS="$BROKER_HEAP_OPTS" LOG_TAG="kafka-cluster broker $NODE"
      use_node "$CLUSTER_DIR/node$NODE" "$(client_port "$NODE")" ""
      NODE_PORTS=("$PORT") ;;
    dedicated:c[1-3])
      # PORT = CPORT: a controller answers ApiVersions on its quorum listener, which is what wait_ready probes.
      ROLES=controller NODE_ID="$(voter_id "${NODE#c}")" HEAP_OPTS="$CONTROLLER_HEAP_OPTS"
      LOG_TAG="kafka-cluster controller $NODE"
      use_node "$CLUSTER_DIR/controller${NODE#c}" "$(quorum_port "${NODE#c}")" "$(quorum_port "${NODE#c}")"
      NODE_PORTS=("$PORT") ;;
    *)
      if [ "$MODE" = dedicated ]; then die "node must be a broker 1-3 or a controller c1-c3, not '$NODE'"; fi
      die "node must be 1, 2 or 3 (combined mode: no dedicated controllers), not '$NODE'" ;;
  esac
  if [ "$NODE" = 1 ]; then CDS_DUMP=yes; else CDS_DUMP=no; fi
}

# Node $NODE's own configuration: its roles, its id, the 3-voter quorum, RF 3 / min ISR 2, fail-over timing.
# The replication defaults go to the controllers too: in KRaft they create the topics (default replication
# factor and partition count of a CreateTopics that names none).
node_config() {
  cat <<EOF
process.roles=$ROLES
node.id=$NODE_ID
controller.quorum.voters=$VOTERS
# Three brokers: internal topics and default topics get 3 replicas, and an acks=all write needs 2 of them,
# so any one broker may be lost without losing or refusing acknowledged writes. 3 partitions per internal
# topic spread the group and transaction coordinators over the brokers.
EOF
  replication_config 3 2 3
  cat <<EOF
unclean.leader.election.enable=false
# Fail-over: a broker that stops heartbeating is fenced by the active controller after the session timeout,
# then its partitions get new leaders and it leaves every ISR (writes with acks=all wait for it until then,
# so every write of the hub pauses that long). 1.5 s with a heartbeat every 250 ms: six heartbeats missed
# before a fence, which a loaded machine (load average 15-25) did not cause in the chaos runs; 3 s made
# processing resume only 5-6 s after a broker loss (issue 16's goal: 3 s).
broker.heartbeat.interval.ms=$HEARTBEAT_MS
broker.session.timeout.ms=$SESSION_TIMEOUT_MS
# A killed active controller: the other voters notice after the fetch timeout (default 2 s) and elect a new
# one (election timeout, default 1 s). The new one gives every registered broker a fresh session when it
# activates (it has no record of their last heartbeats: BrokerHeartbeatManager), so with dedicated
# controllers nothing else happens; a combined node's broker half, lost with it, is fenced one session later.
controller.quorum.fetch.timeout.ms=1000
controller.quorum.election.timeout.ms=500
# Only \`down\` sends SIGTERM, and it stops every node: moving leaderships away first is pointless, and the
# last broker would wait minutes for a controller quorum that has gone (measured: 30 s, then SIGKILL).
controlled.shutdown.enable=false
# A restarted broker leads nothing until the preferred-leader check gives its partitions back (Kafka's
# default: every 300 s); meanwhile the two others lead everything, and losing one of them then cost
# 4.4-5.1 s against 2.3-2.9 s for the first loss of a chaos run (8 December). Checked every 5 s here.
leader.imbalance.check.interval.seconds=5
EOF
}

cluster_id() {  # one id for every node, made once
  [ -s "$CLUSTER_DIR/cluster.id" ] || new_cluster_id > "$CLUSTER_DIR/cluster.id"
  cat "$CLUSTER_DIR/cluster.id"
}

# The brokers a Metadata request to any live broker sees (registered and unfenced), space-separated.
seen_brokers() {
  local n out
  for n in "${BROKERS[@]}"; do
    if out="$("$PY" "$HERE/kafka_probe.py" brokers "$(client_port "$n")")"; then echo "$out"; return 0; fi
  done
  return 1
}

controllers_serve() {  # every dedicated controller answers ApiVersions on its quorum listener
  local c
  for c in "${CONTROLLERS[@]}"; do probe "$(quorum_port "${c#c}")" 2>/dev/null || return 1; done
}

healthy() { [ "$(seen_brokers 2>/dev/null)" = "${BROKERS[*]}" ] && controllers_serve; }

# Are the given nodes in: each broker among them registered and unfenced (listed by a Metadata request), each
# controller answering on its quorum listener.
nodes_in() {
  local n seen
  seen=" $(seen_brokers 2>/dev/null || true) "
  for n in "$@"; do
    case "$n" in
      c*) probe "$(quorum_port "${n#c}")" 2>/dev/null || return 1 ;;
      *) [[ "$seen" == *" $n "* ]] || return 1 ;;
    esac
  done
}

wait_in() {  # a broker answering ApiVersions may not be registered (unfenced) with the controller yet
  local t0 deadline
  t0="$(now)"
  deadline=$(( $(date +%s) + START_TIMEOUT ))
  until nodes_in "$@"; do
    [ "$(date +%s)" -lt "$deadline" ] || die "after ${START_TIMEOUT}s the cluster sees brokers [$(seen_brokers || true)]; not all of [$*] are in"
    sleep 0.3
  done
  LOG_TAG="kafka-cluster"
  log "in: $* ($(since "$t0")s after the last node answered)"
}

# Format, in parallel, the storage of the given nodes that need it (a format is a JVM start: seconds each).
format_nodes() {
  local n pid fmts=() failed=0 id
  id="$(cluster_id)"
  for n in "$@"; do
    node "$n"
    our_pid > /dev/null && continue
    ( mkdir -p "$RUN_DIR" "$LOG_DIR"; write_configs "$(node_config)"; ensure_storage "$id" "quorum=$VOTERS roles=$ROLES" ) &
    fmts+=($!)
  done
  for pid in "${fmts[@]}"; do wait "$pid" || failed=1; done
  LOG_TAG="kafka-cluster"
  [ "$failed" = 0 ] || die "formatting the storage failed (see above)"
}

# Start the given nodes (those not already running) at once and wait for each in parallel: a node serves only
# once a quorum (2 of the 3 voters) has elected a leader, so none can be awaited alone.
start_nodes() {
  local n pid p waits=() failed=0
  declare -A pids=() starts=() sizes=()
  format_nodes "$@"
  for n in "$@"; do
    node "$n"
    if pid="$(our_pid)"; then
      pids[$n]="$pid" starts[$n]="$(now)" sizes[$n]="$(stat -c %s "$LOG_DIR/server.log" 2>/dev/null || echo 0)"
      continue
    fi
    for p in "${NODE_PORTS[@]}"; do
      port_taken "$p" && die "port $p on 127.0.0.1 is taken by a process that is not node $n of this cluster"
    done
    launch_broker "$(node_config)" "$(cluster_id)" "quorum=$VOTERS roles=$ROLES"
    pids[$n]="$LAUNCHED_PID" starts[$n]="$LAUNCHED_AT" sizes[$n]="$LAUNCHED_LOG_SIZE"
  done
  # Launched: the lock is released, so that a concurrent `start` of another node (a broker and a controller
  # lost together, restarted at once) launches its node now instead of waiting for ours to be in.
  exec 9>&-
  for n in "$@"; do
    ( node "$n"; wait_ready "${pids[$n]}" "${starts[$n]}" "${sizes[$n]}" ) &
    waits+=($!)
  done
  for pid in "${waits[@]}"; do wait "$pid" || failed=1; done
  if [ "$failed" = 1 ]; then
    if [ $# -eq "${#NODES[@]}" ]; then
      stop_nodes "${NODES[@]}"
      die "the cluster did not start (see above); every node stopped"
    fi
    die "node(s) $* did not start (see above)"
  fi
  wait_in "$@"
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

running_in() {  # $1 = a run dir of this cluster dir: a node runs there (with that dir's config)
  use_node "$1" 0 0
  our_pid > /dev/null
}

# Nodes of the other topology still running in this cluster dir (say, combined nodes when starting dedicated).
other_mode_running() {
  local d want=broker
  [ "$MODE" = dedicated ] || want=broker,controller
  for d in "$CLUSTER_DIR"/node? "$CLUSTER_DIR"/controller?; do
    { [ -d "$d" ] && running_in "$d"; } || continue
    case "$d" in
      */controller?) [ "$MODE" = dedicated ] || echo "$d" ;;
      *) grep -qx "process.roles=$want" "$d/server.properties" || echo "$d" ;;
    esac
  done
}

cmd_up() {
  if healthy; then log "the cluster already serves ($MODE controllers): brokers ${BROKERS[*]}"; echo "$ALL_BOOTSTRAP"; return 0; fi
  local t0 others
  t0="$(now)"
  require_tools
  lock_dir "$CLUSTER_DIR"
  others="$(other_mode_running)"
  [ -z "$others" ] || die "nodes of the other topology run in $CLUSTER_DIR ($others): \`cluster-local.sh down\` with the TRAFFIC_HUB_KAFKA_CONTROLLERS they were started with first"
  cmd_fetch
  start_nodes "${NODES[@]}"
  log "cluster up in $(since "$t0")s ($MODE controllers)"
  echo "$ALL_BOOTSTRAP"
}

cmd_down() {
  [ -d "$CLUSTER_DIR" ] || { log "not running (no $CLUSTER_DIR)"; return 0; }
  lock_dir "$CLUSTER_DIR"
  local t0
  t0="$(now)"
  # every node dir, whatever the topology: a cluster started with the other TRAFFIC_HUB_KAFKA_CONTROLLERS stops too
  local d pid stops=()
  for d in "$CLUSTER_DIR"/node? "$CLUSTER_DIR"/controller?; do
    [ -d "$d" ] || continue
    if [ "$d" = "$CLUSTER_DIR/node1" ]; then CDS_DUMP=yes; else CDS_DUMP=no; fi
    if running_in "$d" && pid="$(our_pid)"; then
      ( stop_pid "$pid"; rm -f "$PID_FILE" ) &
      stops+=($!)
    fi
  done
  for pid in "${stops[@]}"; do wait "$pid" || true; done
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
  if brokers="$(seen_brokers)"; then log "brokers registered: [$brokers]"; else log "no broker answers"; fi
  healthy
}

# The voters' quorum-state files (the running ones'): the newest leader epoch names the active controller.
cmd_controller() {
  local n files=() id
  for n in "${CONTROLLERS[@]:-${BROKERS[@]}}"; do
    node "$n"
    our_pid > /dev/null && files+=("$DATA_DIR/__cluster_metadata-0/quorum-state")
  done
  LOG_TAG="kafka-cluster"
  [ "${#files[@]}" -gt 0 ] || die "no controller is running"
  id="$("$PY" "$HERE/kafka_probe.py" controller "${files[@]}")" || die "no controller elected yet"
  if [ "$MODE" = dedicated ]; then echo "c$(( id - 100 ))"; else echo "$id"; fi
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
    pid)        node "${1:-}"; our_pid || die "node ${1:-} is not running" ;;
    bootstrap)  echo "$ALL_BOOTSTRAP" ;;
    logs)       node "${1:-}"; cmd_logs "${2:-100}" ;;
    purge)      cmd_purge ;;
    fetch)      cmd_fetch ;;
    *)          usage ;;
  esac
}

main "$@"
