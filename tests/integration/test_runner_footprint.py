"""A connector runner (`traffic-hub connectors`) fetches and publishes: it must not load the road network
(hundreds of MiB at MEL scale) nor read the event view (GiBs and minutes at 1 M events) that only the API
and the normaliser use. The real broker; roles wired by the one composition root."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hostile.kafkalog import wait_for
from tests.integration.hubs import settings_for, write_principals
from tests.kafkarun import run_name
from traffic_hub.auth import Principals
from traffic_hub.runtime import Role, open_hub

pytestmark = pytest.mark.kafka


async def test_a_connector_runner_loads_no_network_and_reads_no_view(kafka_bootstrap: str, tmp_path: Path) -> None:
    prefix = run_name("runner-footprint")
    settings = settings_for(kafka_bootstrap, prefix, write_principals(tmp_path))
    async with open_hub(settings, Principals.load(write_principals(tmp_path)), {Role.CONNECTORS}, connectors=[]) as hub:
        await wait_for(lambda: hub.ready, within=30)  # Kafka, topics and producer: what a runner needs
        assert hub.network is None
        assert hub.closures is None
        assert not hub.viewing
        assert not hub.live.ready  # the view was never started
        assert len(hub.live.events) == 0


async def test_an_api_hub_loads_the_network_and_reads_the_view(kafka_bootstrap: str, tmp_path: Path) -> None:
    prefix = run_name("api-footprint")
    settings = settings_for(kafka_bootstrap, prefix, write_principals(tmp_path))
    async with open_hub(settings, Principals.load(write_principals(tmp_path)), {Role.API}) as hub:
        await wait_for(lambda: hub.ready, within=30)
        assert hub.network is not None
        assert hub.network.n_edges > 1000
        assert hub.closures is not None
        assert hub.viewing
        assert hub.live.ready
