"""One variable moves the local broker, the hub and the tests: TRAFFIC_HUB_KAFKA_PORT.

Before, the port moved only the broker `kafka-local.sh` starts while the hub and the tests kept
connecting to 127.0.0.1:19092, silently using whatever other broker answered there.
"""

from __future__ import annotations

import pytest

from tests.conftest import kafka_bootstrap_address
from traffic_hub.cli import main
from traffic_hub.settings import KafkaSettings, Settings, bootstrap_servers, local_bootstrap


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRAFFIC_HUB_KAFKA_PORT", raising=False)
    monkeypatch.delenv("TRAFFIC_HUB_KAFKA__BOOTSTRAP_SERVERS", raising=False)


def test_contract_default_when_nothing_is_set() -> None:
    assert Settings(_env_file=None).kafka.bootstrap_servers == "127.0.0.1:19092"
    assert local_bootstrap({}) == "127.0.0.1:19092"


def test_kafka_port_moves_the_hub_the_tests_and_the_benchmarks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAFFIC_HUB_KAFKA_PORT", "29092")
    assert Settings(_env_file=None).kafka.bootstrap_servers == "127.0.0.1:29092"
    assert KafkaSettings().bootstrap_servers == "127.0.0.1:29092"
    assert kafka_bootstrap_address() == "127.0.0.1:29092"  # tests/conftest.py
    assert bootstrap_servers() == "127.0.0.1:29092"  # loadtests/broker.py uses this one


def test_other_kafka_settings_keep_the_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAFFIC_HUB_KAFKA_PORT", "29092")
    monkeypatch.setenv("TRAFFIC_HUB_KAFKA__PARTITIONS", "6")
    settings = Settings(_env_file=None)
    assert (settings.kafka.bootstrap_servers, settings.kafka.partitions) == ("127.0.0.1:29092", 6)


def test_explicit_bootstrap_servers_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAFFIC_HUB_KAFKA_PORT", "29092")
    monkeypatch.setenv("TRAFFIC_HUB_KAFKA__BOOTSTRAP_SERVERS", "kafka-1:9092,kafka-2:9092")
    assert Settings(_env_file=None).kafka.bootstrap_servers == "kafka-1:9092,kafka-2:9092"
    assert kafka_bootstrap_address() == "kafka-1:9092,kafka-2:9092"


@pytest.mark.parametrize("port", ["abc", "0", "70000", "19092x"])
def test_a_bad_port_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch, port: str) -> None:
    monkeypatch.setenv("TRAFFIC_HUB_KAFKA_PORT", port)
    with pytest.raises(ValueError, match="TRAFFIC_HUB_KAFKA_PORT"):
        local_bootstrap()
    assert main(["api"]) == 2  # refused before anything starts


def test_public_url_follows_the_http_port(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings(_env_file=None).public_url == "http://127.0.0.1:8000"
    monkeypatch.setenv("TRAFFIC_HUB_HTTP_PORT", "8001")
    assert Settings(_env_file=None).public_url == "http://127.0.0.1:8001"  # a second hub's feeds link to itself
    monkeypatch.setenv("TRAFFIC_HUB_PUBLIC_URL", "https://trafic.lillemetropole.fr")
    assert Settings(_env_file=None).public_url == "https://trafic.lillemetropole.fr"
