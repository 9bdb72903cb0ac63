"""Helpers to run a hub against the real broker with its own topics and known keys."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from connectors.config import ConnectorConfig
from tests.clock import paris_iso
from traffic_hub.auth import Principals, hash_key
from traffic_hub.runtime import Role, create_app
from traffic_hub.settings import KafkaSettings, MetricsSettings, Settings


@dataclass(frozen=True)
class Keys:
    lille: str = "key-voirie-lille"
    roubaix: str = "key-voirie-roubaix"
    villeneuve: str = "key-voirie-villeneuve"
    mel: str = "key-mel-voirie"
    partner: str = "key-waze"
    operator: str = "key-operator"
    admin: str = "key-admin"


KEYS = Keys()


def principals_toml() -> str:
    rows = [
        ("voirie-lille", "roadworks", ["59350"], KEYS.lille),
        ("voirie-roubaix", "roadworks", ["59512"], KEYS.roubaix),
        ("voirie-villeneuve", "roadworks", ["59009"], KEYS.villeneuve),
        ("mel-voirie", "roadworks", ["59350", "59512", "59360", "59009"], KEYS.mel),
        ("waze", "partner", [], KEYS.partner),
        ("salle-trafic", "operator", [], KEYS.operator),
        ("admin", "admin", [], KEYS.admin),
    ]
    out = []
    for name, role, communes, key in rows:
        out.append(
            f'[[principals]]\nname = "{name}"\nrole = "{role}"\ncommunes = {communes!r}\n'
            f'key_sha256 = "{hash_key(key)}"\n'
        )
    return "\n".join(out).replace("'", '"')


def write_principals(directory: Path) -> Path:
    path = directory / "principals.toml"
    path.write_text(principals_toml(), encoding="utf-8")
    return path


def settings_for(bootstrap: str, prefix: str, auth_file: Path, **extra: Any) -> Settings:
    return Settings(
        kafka=KafkaSettings(bootstrap_servers=bootstrap),
        topic_prefix=prefix,
        auth_file=auth_file,
        instance=prefix,
        **({"metrics": MetricsSettings(port=0)} | extra),  # no loopback metrics listener unless a test asks
    )


@contextmanager
def running_hub(
    settings: Settings, roles: set[Role] | None = None, connectors: list[ConnectorConfig] | None = None
) -> Iterator[TestClient]:
    assert settings.auth_file is not None
    roles = roles or ({Role.API, Role.NORMALISER, Role.CONNECTORS} if connectors else {Role.API, Role.NORMALISER})
    app = create_app(settings, Principals.load(settings.auth_file), roles, connectors=connectors)
    with TestClient(app) as client:
        wait_until(lambda: client.get("/readyz").status_code == 200, timeout=30)
        yield client


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0, interval: float = 0.05) -> float:
    """Wait for `predicate`; returns the seconds it took. Fails the test on timeout."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)
    return time.monotonic() - started


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def closure_body(reference: str = "LILLE-2026-0042", **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "reference": reference,
        "description": "Travaux de voirie",
        "street": "Rue Nationale",
        # Rue Nationale, Lille (OpenStreetMap way geometry)
        "geometry": {"type": "LineString", "coordinates": [[3.052176, 50.632626], [3.053887, 50.633345]]},
        "direction": "BOTH_DIRECTIONS",
        # from the clock: tomorrow 08:00 to four weeks later, Lille time (see tests/clock.py)
        "starts_at": paris_iso(1, "08:00"),
        "ends_at": paris_iso(29, "18:00"),
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}
