"""Feed snapshots: a restart takes back what still holds and gives the bytes of a full render.

Every comparison is against `render_all` of the same events at the same instant: the bodies, their
hashes (the ETag's input), item counts and sources must be identical, whatever changed in between
(edits, removals, new events, validity boundaries passed) and however the snapshot travelled (disk).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from traffic_hub.feeds import rebuild
from traffic_hub.feeds.base import FeedContext, Renderer
from traffic_hub.feeds.engine import FeedBook
from traffic_hub.feeds.snapshot import Snapshot, event_hash, fingerprint, read, write
from traffic_hub.feeds.timeline import Timeline
from traffic_hub.model import Event
from traffic_hub.runtime import FEEDS
from traffic_hub.settings import FeedSettings
from traffic_hub.view import EventView

from . import events as ev

NOW = ev.WINTER_NOW
TZ = ZoneInfo("Europe/Paris")
BLOCK = 4


def _renderers() -> dict[str, Renderer]:
    return {path: cls() for path, cls in FEEDS.items()}


def _many(now: datetime, copies: int = 12) -> list[Event]:
    """The partner scenarios many times over (other ids), sorted by id: enough events for many blocks."""
    base = ev.partner_scenarios(now)
    events = [e.model_copy(update={"id": f"{e.id}-{n:02d}"}) for n in range(copies) for e in base]
    return sorted(events, key=lambda e: e.id)


def _pairs(events: Sequence[Event]) -> list[tuple[str, bytes]]:
    return [(e.id, e.model_dump_json().encode()) for e in sorted(events, key=lambda e: e.id)]


def _snapshot(renderers: dict[str, Renderer], pairs: list[tuple[str, bytes]], now: datetime) -> Snapshot:
    """What an engine that rendered `pairs` at `now` saves."""
    ctx = FeedContext(now=now)
    built = rebuild.render_all(renderers, [raw for _, raw in pairs], ctx, BLOCK, 6)
    timeline = Timeline(TZ)
    timeline.load(built.moments)
    hashes = {event_id: event_hash(raw) for event_id, raw in pairs}
    key = fingerprint(renderers, ctx, BLOCK, 6)
    return Snapshot.capture(key, now, hashes, timeline.moments(), built.bodies)


def _assert_same_as_full_render(
    renderers: dict[str, Renderer], pairs: list[tuple[str, bytes]], now: datetime, snapshot: Snapshot
) -> int:
    ctx = FeedContext(now=now)
    reused, taken = rebuild.render_reusing(renderers, pairs, ctx, BLOCK, 6, snapshot)
    full = rebuild.render_all(renderers, [raw for _, raw in pairs], ctx, BLOCK, 6)
    assert reused.moments == full.moments
    for key, body in full.bodies.items():
        other = reused.bodies[key]
        assert b"".join(other.texts()) == b"".join(body.texts()), key
        assert [b.ids for b in other.blocks] == [b.ids for b in body.blocks], key
        assert (other.hash, other.items, other.sources) == (body.hash, body.items, body.sources), key
        assert other.crc() == body.crc(), key
        assert [b.piece.deflated for b in other.blocks] == [b.piece.deflated for b in body.blocks], key
    return taken


def test_an_unchanged_view_is_taken_back_whole() -> None:
    renderers, pairs = _renderers(), _pairs(_many(NOW))
    snapshot = _snapshot(renderers, pairs, NOW)
    later = NOW + timedelta(seconds=30)
    current = [(i, raw) for i, raw in pairs if snapshot.holds(i, event_hash(raw), later)]
    assert len(current) > len(pairs) // 2  # most scenarios stay as they are over 30 s
    assert _assert_same_as_full_render(renderers, pairs, later, snapshot) == len(current)


def test_edits_removals_and_new_events_are_rendered_and_the_rest_taken_back() -> None:
    renderers, events = _renderers(), _many(NOW)
    snapshot = _snapshot(renderers, _pairs(events), NOW)
    edited = [e.model_copy(update={"description": "Changé pendant l'arrêt"}) if n % 7 == 0 else e
              for n, e in enumerate(events)]
    kept = [e for n, e in enumerate(edited) if n % 11 != 3]  # some removed
    added = [e.model_copy(update={"id": f"{e.id}-new"}) for e in ev.partner_scenarios(NOW)]
    taken = _assert_same_as_full_render(renderers, _pairs(kept + added), NOW, snapshot)
    assert 0 < taken < len(kept)


def test_a_validity_boundary_passed_since_the_snapshot_renders_the_event_again() -> None:
    renderers, events = _renderers(), _many(NOW, copies=4)
    snapshot = _snapshot(renderers, _pairs(events), NOW)
    upcoming = [m.next for m in snapshot.moments.values() if m.next is not None]
    assert upcoming, "the scenarios include events that start or end later"
    after = min(upcoming) + timedelta(seconds=1)  # an event started or ended while the replica was down
    _assert_same_as_full_render(renderers, _pairs(events), after, snapshot)
    _assert_same_as_full_render(renderers, _pairs(events), NOW - timedelta(hours=1), snapshot)  # clock went back


def test_a_snapshot_survives_the_disk_and_another_renderer_version_is_ignored(tmp_path: Path) -> None:
    renderers, pairs = _renderers(), _pairs(_many(NOW, copies=3))
    snapshot = _snapshot(renderers, pairs, NOW)
    path = tmp_path / "feeds.snapshot"
    write(path, snapshot)
    back = read(path, snapshot.fingerprint)
    assert back is not None
    assert back.hashes == snapshot.hashes
    assert back.moments == snapshot.moments
    for key, saved in snapshot.bodies.items():
        assert back.bodies[key].blocks == list(saved.blocks), key
        assert back.bodies[key].sources == saved.sources
    assert _assert_same_as_full_render(renderers, pairs, NOW, back) == len(pairs)
    assert read(path, "another fingerprint") is None
    assert read(tmp_path / "absent.snapshot", snapshot.fingerprint) is None


def _book(view: EventView, clock: list[datetime], folder: Path) -> FeedBook:
    return FeedBook(
        view,
        _renderers(),
        lambda now, published: FeedContext(now=now, published_at=published),
        TZ,
        clock=lambda: clock[0],
        settings=FeedSettings(block_events=BLOCK, snapshot_dir=folder),
    )


async def test_a_restarted_engine_serves_the_same_etags_from_its_snapshot(tmp_path: Path) -> None:
    view, clock = EventView(), [NOW]
    for event in _many(NOW, copies=3):
        view.put(event.id, event)
    first = _book(view, clock, tmp_path)
    await first.refresh()
    assert await first.save_snapshot()
    assert not await first.save_snapshot()  # nothing changed since: nothing written
    before = {feed: first.get(feed) for feed in FEEDS}
    clock[0] = NOW + timedelta(seconds=5)
    second = _book(view, clock, tmp_path)
    await second.refresh()
    assert second.reused == len(view.records())
    for feed, version in before.items():
        now = second.get(feed)
        assert version is not None
        assert now is not None
        assert (now.etag, now.body, now.gzipped) == (version.etag, version.body, version.gzipped), feed


async def test_a_damaged_snapshot_is_logged_and_the_feeds_render_from_scratch(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    view, clock = EventView(), [NOW]
    for event in ev.partner_scenarios(NOW):
        view.put(event.id, event)
    (tmp_path / "feeds.snapshot").write_bytes(b"traffic-hub feed snapshot 1\n\x00\x00\x00\x00\x00\x00\x00\x05{bad")
    book = _book(view, clock, tmp_path)
    with caplog.at_level(logging.WARNING):
        await book.refresh()
    assert book.rendered
    assert book.reused == 0
    assert "unreadable" in caplog.text
