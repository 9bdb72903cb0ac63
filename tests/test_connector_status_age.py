"""What an API replica says of a source polled by the shared runners: the last status they saved, unless no
runner has polled it for far longer than its interval (all runners stopped, or the source was removed from
the connectors file): then `stale`, so the control room sees that ingestion stopped rather than an old "ok"."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson

from connectors.handover import STALE_GRACE_S, statuses

NOW = datetime.now(UTC)


def saved(name: str, status: str, due_in_s: float, interval_s: float = 60.0) -> dict[str, bytes]:
    value = {"name": name, "status": status, "interval_s": interval_s,
             "next_run_at": (NOW + timedelta(seconds=due_in_s)).isoformat()}
    return {f"{name}#status": orjson.dumps(value)}


def status_of(values: dict[str, bytes], now: datetime | None = NOW) -> str:
    (only,) = statuses(values, now)
    return str(only["status"])


def test_a_recently_polled_source_keeps_its_status() -> None:
    assert status_of(saved("waze", "ok", due_in_s=30)) == "ok"
    assert status_of(saved("waze", "failing", due_in_s=-100)) == "failing"  # within 2 intervals + grace


def test_a_source_nobody_polls_any_more_is_stale() -> None:
    overdue = 2 * 60 + STALE_GRACE_S + 1
    (only,) = statuses(saved("waze", "ok", due_in_s=-overdue), NOW)
    assert only["status"] == "stale"
    assert only["stale_for_s"] >= overdue - 1


def test_disabled_malformed_or_unaged_statuses_are_left_as_saved() -> None:
    assert status_of(saved("off", "disabled", due_in_s=-10_000)) == "disabled"
    assert status_of({"x#status": orjson.dumps({"status": "ok", "next_run_at": "soon", "interval_s": 5})}) == "ok"
    assert status_of(saved("waze", "ok", due_in_s=-10_000), now=None) == "ok"
