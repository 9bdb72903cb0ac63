"""The replication settings, and what a hub says about its topics' durability (no cluster needed).

A hub whose topics are below replication factor 3 says so at start (a WARNING naming the settings) and
in /readyz, unless a single broker is a conscious choice (demo mode or TRAFFIC_HUB_KAFKA__SINGLE_BROKER_OK).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from pydantic import ValidationError

from tests.integration.hubs import running_hub, settings_for, wait_until, write_principals
from tests.kafkarun import run_name
from traffic_hub.kafka.admin import Replication, topic_specs
from traffic_hub.settings import KafkaSettings, Settings
from traffic_hub.topics import Topics


def test_replication_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAFFIC_HUB_KAFKA__REPLICATION_FACTOR", "3")
    assert (Settings().kafka.replication_factor, Settings().kafka.min_insync_replicas) == (3, 2)
    monkeypatch.setenv("TRAFFIC_HUB_KAFKA__MIN_INSYNC_REPLICAS", "3")
    assert Settings().kafka.min_insync_replicas == 3
    monkeypatch.setenv("TRAFFIC_HUB_KAFKA__SINGLE_BROKER_OK", "true")
    assert Settings().kafka.single_broker_ok


def test_one_broker_keeps_min_isr_1_by_default() -> None:
    assert (KafkaSettings().replication_factor, KafkaSettings().min_insync_replicas) == (1, 1)


def test_a_min_isr_above_the_replication_factor_is_refused_naming_both() -> None:
    with pytest.raises(ValidationError, match=r"min_insync_replicas.*replication_factor"):
        KafkaSettings(replication_factor=1, min_insync_replicas=2)


def test_every_hub_topic_is_created_with_the_min_isr() -> None:
    specs = topic_specs(Topics("t"), partitions=3, replication=3, min_insync=2)
    assert {(s.replication_factor, s.topic_configs["min.insync.replicas"]) for s in specs} == {(3, "2")}


def test_low_replication_warns_naming_the_settings(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    found = Replication(factor=1, min_insync=1)
    found.report(["traffic.reports"])
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    message = warning.getMessage()
    for setting in ("REPLICATION_FACTOR=3", "MIN_INSYNC_REPLICAS=2", "SINGLE_BROKER_OK=true", "traffic.reports"):
        assert setting in message
    assert "a broker loss can lose acknowledged writes" in found.detail


@pytest.mark.parametrize(("factor", "min_insync"), [(1, 1), (3, 1), (2, 2)])
def test_a_chosen_single_broker_is_reported_without_a_warning(
    factor: int, min_insync: int, caplog: pytest.LogCaptureFixture
) -> None:
    found = Replication(conscious=True, factor=factor, min_insync=min_insync)
    found.report(["traffic.reports"])
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert found.detail.endswith("(single broker by choice)")


def test_three_replicas_and_min_isr_2_are_safe(caplog: pytest.LogCaptureFixture) -> None:
    found = Replication(factor=3, min_insync=2)
    found.report(["traffic.reports"])
    assert found.safe
    assert found.detail == "replication factor 3, min.insync.replicas 2"
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert Replication().detail == "unknown"


@pytest.mark.kafka
@pytest.mark.parametrize("single_broker_ok", [False, True])
def test_readyz_tells_the_replication_of_a_hub_on_one_broker(
    kafka_bootstrap: str, tmp_path: Path, single_broker_ok: bool, caplog: pytest.LogCaptureFixture
) -> None:
    prefix = run_name("replication")
    settings = settings_for(kafka_bootstrap, prefix, write_principals(tmp_path))
    settings.kafka.single_broker_ok = single_broker_ok
    with running_hub(settings) as client:
        wait_until(lambda: client.get("/readyz").json()["kafka.replication"] != "unknown", timeout=30)
        answer = client.get("/readyz")
    assert answer.status_code == 200  # a report, not a gate
    detail = answer.json()["kafka.replication"]
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "DURABILITY" in r.getMessage()]
    if single_broker_ok:
        assert detail == "replication factor 1, min.insync.replicas 1 (single broker by choice)"
        assert warned == []
    else:
        assert detail.startswith("replication factor 1, min.insync.replicas 1: below 3/2")
        assert len(warned) == 1
        assert "TRAFFIC_HUB_KAFKA__REPLICATION_FACTOR=3" in warned[0]
