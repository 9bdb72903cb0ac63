"""A clean start logs nothing at WARNING or ERROR: expected start-up states are INFO.

The hub is started as `make run` starts it (every role, the demo sources and closures) against the
real broker, with fresh topics; the test waits until it is ready, every connector has published and
the demo closures are in, then looks at every log record of the start.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from geo.communes import Communes
from tests.integration.hubs import auth, wait_until
from traffic_hub.auth import Principals
from traffic_hub.demo.sources import replay_configs
from traffic_hub.keys import demo_keys
from traffic_hub.runtime import Role, create_app
from traffic_hub.settings import KafkaSettings, Settings

pytestmark = pytest.mark.kafka


def test_a_clean_start_logs_no_warning_or_error(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    auth_file, keys = demo_keys(tmp_path / "run", {c.insee for c in Communes.load()})
    settings = Settings(
        kafka=KafkaSettings(bootstrap_servers=kafka_bootstrap),
        topic_prefix=topic_prefix,
        instance=topic_prefix,
        demo=True,
        auth_file=auth_file,
        run_dir=tmp_path / "run",
    )
    connectors = replay_configs(datetime.now(UTC), tmp_path)
    app = create_app(settings, Principals.load(auth_file), set(Role), keys, connectors)
    admin = next(k.key for k in keys if k.principal.name == "demo-admin")
    with TestClient(app) as client:
        wait_until(lambda: client.get("/readyz").status_code == 200, timeout=60)

        def connectors_published() -> bool:
            states = client.get("/api/v1/connectors", headers=auth(admin)).json()
            rows = states if isinstance(states, list) else states.get("connectors", [])
            return len(rows) == len(connectors) and all(row.get("last_success") for row in rows)

        def demo_closures_in() -> bool:
            body = client.get("/api/v1/closures", headers=auth(admin)).json()
            items = body if isinstance(body, list) else body.get("items", body.get("closures", []))
            return len(items) >= 4

        wait_until(connectors_published, timeout=60, interval=0.2)
        wait_until(demo_closures_in, timeout=60, interval=0.2)
    noisy = [f"{r.levelname} {r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.WARNING]
    assert noisy == []
