"""compose.yaml, the production template, cannot be run here (no Docker engine): check its invariants.

Three `apache/kafka` brokers and three dedicated controllers forming one KRaft quorum (same cluster id,
every controller a voter and no broker one, each broker advertising its own name), replication factor 3 and
min ISR 2 for every topic, and every hub role pointed at the three brokers with the hub's own replication
settings. Every Kafka setting is one the local cluster
(ops/kafka/*.sh, run by the cluster tests against a real broker) also sets, so none is misspelt.
"""

from __future__ import annotations

import base64
import re
import socket
from pathlib import Path
from typing import Any

import pytest

from traffic_hub.normaliser.group import FAST_SESSION_TIMEOUT_MS
from traffic_hub.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
yaml = pytest.importorskip("yaml")


def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def kafka_nodes() -> dict[str, dict[str, Any]]:
    return {name: s for name, s in compose()["services"].items() if str(s.get("image", "")).startswith("apache/kafka:")}


def brokers() -> dict[str, dict[str, Any]]:
    return {name: s for name, s in kafka_nodes().items() if env(s)["KAFKA_PROCESS_ROLES"] == "broker"}


def controllers() -> dict[str, dict[str, Any]]:
    return {name: s for name, s in kafka_nodes().items() if env(s)["KAFKA_PROCESS_ROLES"] == "controller"}


def hub_services() -> dict[str, dict[str, Any]]:
    return {name: s for name, s in compose()["services"].items() if "build" in s}


def env(service: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in service["environment"].items()}


def property_name(variable: str) -> str:
    """The image's rule (apache/kafka docker/examples/README.md): `.` → `_`, `_` → `__`, `-` → `___`."""
    name = variable.removeprefix("KAFKA_").lower()
    return name.replace("___", "\0").replace("__", "\1").replace("_", ".").replace("\0", "-").replace("\1", "_")


def test_three_dedicated_controllers_form_the_quorum_and_three_brokers_use_it() -> None:
    """Kafka: "Combined mode is not recommended in critical deployment environments" (documentation, #kraft_role);
    losing a combined node that leads the quorum also fences its broker only a session after the election."""
    nodes = kafka_nodes()
    assert len(nodes) == 6
    assert {env(s)["KAFKA_PROCESS_ROLES"] for s in nodes.values()} == {"broker", "controller"}  # none combined
    voter_ids = {env(s)["KAFKA_NODE_ID"]: name for name, s in controllers().items()}
    broker_ids = {env(s)["KAFKA_NODE_ID"]: name for name, s in brokers().items()}
    assert sorted(broker_ids) == ["1", "2", "3"]  # a broker id in metadata names the service kafka-N
    assert len(voter_ids) == 3
    assert not set(voter_ids) & set(broker_ids)
    voters = ",".join(f"{node_id}@{voter_ids[node_id]}:9093" for node_id in sorted(voter_ids, key=int))
    for name, service in nodes.items():
        variables = env(service)
        assert variables["KAFKA_CONTROLLER_QUORUM_VOTERS"] == voters, name
        assert variables["KAFKA_CONTROLLER_LISTENER_NAMES"] == "CONTROLLER", name
        assert "CONTROLLER:PLAINTEXT" in variables["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","), name
        (volume,) = service["volumes"]
        assert volume.split(":")[1] == variables["KAFKA_LOG_DIRS"]  # the data survives the container
        assert service["restart"] == "unless-stopped", name
    for name, service in controllers().items():
        variables = env(service)
        # the image refuses an advertised (or any non-controller) listener on a controller-only node
        assert variables["KAFKA_LISTENERS"] == "CONTROLLER://:9093", name
        assert "KAFKA_ADVERTISED_LISTENERS" not in variables, name
        assert "--bootstrap-controller localhost:9093" in " ".join(service["healthcheck"]["test"]), name
    for name, service in brokers().items():
        variables = env(service)
        assert variables["KAFKA_LISTENERS"] == "PLAINTEXT://:9092", name
        assert variables["KAFKA_ADVERTISED_LISTENERS"] == f"PLAINTEXT://{name}:9092"
        assert variables["KAFKA_INTER_BROKER_LISTENER_NAME"] == "PLAINTEXT", name
        assert set(service["depends_on"]) == set(controllers()), name  # brokers start after the quorum's voters
    assert len({env(s)["CLUSTER_ID"] for s in nodes.values()}) == 1
    cluster_id = env(next(iter(nodes.values())))["CLUSTER_ID"]
    assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16  # a Kafka Uuid
    assert len({v.split(":")[0] for s in nodes.values() for v in s["volumes"]}) == 6  # one data volume each


def test_the_controllers_heap_is_smaller_than_a_brokers() -> None:
    for name, service in controllers().items():
        heap = env(service)["KAFKA_HEAP_OPTS"]
        assert re.fullmatch(r"-Xms\d+[mg] -Xmx\d+[mg]", heap), name


def test_every_topic_is_replicated_three_times_with_min_isr_2() -> None:
    for service in kafka_nodes().values():
        variables = env(service)
        for name in ("DEFAULT_REPLICATION_FACTOR", "OFFSETS_TOPIC_REPLICATION_FACTOR",
                     "TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR"):
            assert variables[f"KAFKA_{name}"] == "3", name
        for name in ("MIN_INSYNC_REPLICAS", "TRANSACTION_STATE_LOG_MIN_ISR", "SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR"):
            assert variables[f"KAFKA_{name}"] == "2", name
        assert variables["KAFKA_UNCLEAN_LEADER_ELECTION_ENABLE"] == "false"
        assert variables["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


def test_every_hub_role_uses_the_three_brokers_and_replication_3_2() -> None:
    nodes = brokers()
    roles = hub_services()
    assert {s["command"][0] for s in roles.values()} >= {"api", "normaliser", "connectors"}
    for name, service in roles.items():
        variables = env(service)
        servers = variables["TRAFFIC_HUB_KAFKA__BOOTSTRAP_SERVERS"].split(",")
        assert sorted(servers) == sorted(f"{node}:9092" for node in nodes), name
        assert variables["TRAFFIC_HUB_KAFKA__REPLICATION_FACTOR"] == "3", name
        assert variables["TRAFFIC_HUB_KAFKA__MIN_INSYNC_REPLICAS"] == "2", name
        assert {node: {"condition": "service_healthy"} for node in nodes} == service["depends_on"], name


def test_every_kafka_setting_is_one_the_local_cluster_runs_with() -> None:
    scripts = "".join(p.read_text(encoding="utf-8") for p in (ROOT / "ops" / "kafka").glob("*.sh"))
    known = set(re.findall(r"^([a-z][a-z.]+)=", scripts, flags=re.MULTILINE))
    for service in kafka_nodes().values():
        for variable in env(service):
            if variable.startswith("KAFKA_") and variable != "KAFKA_HEAP_OPTS":  # the JVM's, not a property
                assert property_name(variable) in known, variable


def test_the_brokers_allow_the_normalisers_fast_group_session_and_fence_a_lost_node_as_the_local_cluster() -> None:
    """A broker refusing the normalisers' 1.5 s session would make them fall back to 10 s (slow take-overs);
    the fail-over values are the ones measured on the local cluster (docs/cluster.md)."""
    script = (ROOT / "ops" / "kafka" / "cluster-local.sh").read_text(encoding="utf-8")
    shared = (ROOT / "ops" / "kafka" / "kafka-lib.sh").read_text(encoding="utf-8")  # every local node's lines
    local_min = int(re.findall(r"^group\.min\.session\.timeout\.ms=(\d+)$", shared, flags=re.MULTILINE)[0])
    local_session = int(re.findall(r"SESSION_TIMEOUT_MS:-(\d+)", script)[0])
    local_heartbeat = int(re.findall(r"HEARTBEAT_MS:-(\d+)", script)[0])
    assert local_min <= FAST_SESSION_TIMEOUT_MS
    for name, service in brokers().items():  # the group coordinators are on the brokers
        assert int(env(service)["KAFKA_GROUP_MIN_SESSION_TIMEOUT_MS"]) <= FAST_SESSION_TIMEOUT_MS, name
    for name, service in kafka_nodes().items():  # the session is the controllers' setting, the heartbeat the brokers'
        variables = env(service)
        assert int(variables["KAFKA_BROKER_SESSION_TIMEOUT_MS"]) == local_session, name
        assert int(variables["KAFKA_BROKER_HEARTBEAT_INTERVAL_MS"]) == local_heartbeat, name


# --- the roles scaled out behind one address -------------------------------------------------------------

NGINX_CONF = ROOT / "ops" / "nginx" / "traffic-hub.conf"


def role(command: str) -> dict[str, Any]:
    (service,) = [s for s in hub_services().values() if s["command"] == [command]]
    return service


def test_every_role_is_scaled_out_and_restarted_by_its_supervisor() -> None:
    replicas = {command: role(command).get("deploy", {}).get("replicas", 1) for command in
                ("api", "normaliser", "connectors")}
    assert replicas["api"] >= 2
    assert replicas["normaliser"] == 3
    assert replicas["connectors"] == 2
    for command in replicas:
        assert role(command)["restart"] == "unless-stopped", command


def test_replicated_processes_get_unique_instance_names_and_one_public_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # deploy.replicas gives every container the same environment: an explicit TRAFFIC_HUB_INSTANCE would be
    # shared by all (static group members fencing each other); the default, the host name, is per container
    for command in ("api", "normaliser", "connectors"):
        assert "TRAFFIC_HUB_INSTANCE" not in env(role(command)), command
    monkeypatch.delenv("TRAFFIC_HUB_INSTANCE", raising=False)
    assert Settings().instance == socket.gethostname()
    public = {env(role(command))["TRAFFIC_HUB_PUBLIC_URL"] for command in ("api", "normaliser", "connectors")}
    assert public == {"http://localhost:8000"}  # the balancer's published address, below


def test_nginx_balances_the_api_replicas_from_its_documented_config_dir() -> None:
    services = compose()["services"]
    (name,) = [n for n, s in services.items() if str(s.get("image", "")).startswith("nginx:")]
    lb = services[name]
    major, minor = (int(x) for x in lb["image"].split(":")[1].split("-")[0].split(".")[:2])
    assert (major, minor) >= (1, 27)  # `resolve` on an upstream server: open-source nginx since 1.27.3
    assert lb["ports"] == ["8000:80"]
    assert "ports" not in role("api")  # only the balancer is published: replicas would clash on one port
    (mount,) = lb["volumes"]
    source, target, mode = mount.split(":")
    assert (ROOT / source).resolve() == NGINX_CONF
    assert (target, mode) == ("/etc/nginx/conf.d/default.conf", "ro")  # the image's http{} includes conf.d/*.conf
    assert lb["depends_on"] == {"api": {"condition": "service_healthy"}}


def test_the_nginx_config_round_robins_over_every_replica_and_does_not_buffer_the_stream() -> None:
    conf = re.sub(r"#.*", "", NGINX_CONF.read_text(encoding="utf-8"))
    upstream = re.search(r"upstream (\w+) \{(.*?)\}", conf, flags=re.DOTALL)
    assert upstream is not None
    name, body = upstream.groups()
    assert re.search(r"server api:8000 resolve\b", body)  # every replica Docker's DNS knows, kept up to date
    assert re.search(r"\bzone \w+ \d+k;", body)  # `resolve` needs the shared zone
    assert "resolver 127.0.0.11" in conf  # Docker's embedded DNS
    assert conf.count(f"proxy_pass http://{name};") == 2
    assert re.search(r"proxy_next_upstream error timeout[^;]*non_idempotent;", conf)
    stream = conf.split("location = /api/v1/events/stream", 1)[1]
    assert "proxy_buffering off;" in stream
    assert "gzip off;" in conf  # feeds are compressed (and their ETags computed) by the hub
