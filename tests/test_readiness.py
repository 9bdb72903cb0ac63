"""`/readyz` gates on rendered feeds, not a running feed task: a load balancer that sends partner polls to a
replica still in its first render (minutes at 1 M events) would only get 503s back."""

from __future__ import annotations

from types import SimpleNamespace
from typing import cast

import pytest

from traffic_hub.runtime import Hub, readiness


def hub(*, running: bool, rendered: bool) -> Hub:
    ready = SimpleNamespace(is_set=lambda: True)
    return cast(Hub, SimpleNamespace(
        probe=SimpleNamespace(up=True), topics_ready=ready, publisher=SimpleNamespace(ready=True),
        live=SimpleNamespace(ready=True), feeds=SimpleNamespace(alive=running, rendered=rendered),
    ))


@pytest.mark.parametrize(
    ("running", "rendered", "ready"), [(True, False, False), (True, True, True), (False, True, False)]
)
def test_feeds_are_ready_once_running_and_rendered(running: bool, rendered: bool, ready: bool) -> None:
    checks = readiness(hub(running=running, rendered=rendered))
    assert checks["feeds"] is ready
    assert all(value for name, value in checks.items() if name != "feeds")
