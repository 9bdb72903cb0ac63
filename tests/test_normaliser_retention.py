"""Finished events leave the events topic after the retention window; current ones never do."""

from __future__ import annotations

from datetime import timedelta

from tests.feeds import events as ev
from traffic_hub.model import Lifecycle
from traffic_hub.normaliser.service import expired, finished_at


def test_only_events_finished_before_the_window_expire() -> None:
    now = ev.WINTER_NOW
    current = ev.make_event("current", now, segments=[])
    ended_long_ago = ev.make_event(
        "old", now, segments=[], starts_at=now - timedelta(days=30), ends_at=now - timedelta(days=20)
    )
    ended_yesterday = ev.make_event(
        "recent", now, segments=[], starts_at=now - timedelta(days=3), ends_at=now - timedelta(days=1)
    )
    cancelled = ev.make_event("cancelled", now, segments=[], lifecycle=Lifecycle.CANCELLED).model_copy(
        update={"updated_at": now - timedelta(days=8)}
    )
    events = [current, ended_long_ago, ended_yesterday, cancelled]
    assert expired(events, now, timedelta(days=7)) == ["old", "cancelled"]
    assert finished_at(ended_yesterday) == now - timedelta(days=1)
    assert expired(events, now, timedelta(days=365)) == []
