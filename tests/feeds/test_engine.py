"""The feed engine: incremental versions equal whole renders, in plain and in gzip, as time passes."""

from __future__ import annotations

import gzip
import zlib
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from traffic_hub.feeds import rebuild
from traffic_hub.feeds.base import FeedContext, Item, Renderer
from traffic_hub.feeds.blocks import FeedBody
from traffic_hub.feeds.engine import FeedBook, feedable
from traffic_hub.feeds.gzjoin import FINAL, HEADER, _shift_bits, crc32_combine, piece, shift, trailer
from traffic_hub.feeds.rendered import Rendered, publish
from traffic_hub.feeds.timeline import moments_of
from traffic_hub.model import Event
from traffic_hub.runtime import FEEDS
from traffic_hub.settings import FeedSettings
from traffic_hub.view import EventView

from . import events as ev

NOW = ev.WINTER_NOW
TZ = ZoneInfo("Europe/Paris")


# --- gzip assembled from pieces ----------------------------------------------------------------


@given(st.lists(st.binary(max_size=3000), max_size=8), st.integers(1, 9))
def test_pieces_join_into_one_valid_gzip_member(parts: list[bytes], level: int) -> None:
    pieces = [piece(part, level) for part in parts]
    crc = 0
    for p in pieces:
        crc = p.after(crc)
    whole = b"".join(parts)
    assert crc == zlib.crc32(whole)
    member = HEADER + b"".join(p.deflated for p in pieces) + FINAL + trailer(crc, len(whole))
    assert gzip.decompress(member) == whole
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)  # what HTTP clients do: a single gzip member
    assert inflater.decompress(member) == whole
    assert inflater.eof
    assert not inflater.unused_data


@given(st.binary(max_size=500), st.binary(max_size=5000))
def test_crc32_combine_is_zlibs(a: bytes, b: bytes) -> None:
    assert crc32_combine(zlib.crc32(a), zlib.crc32(b), len(b)) == zlib.crc32(a + b)


@given(st.integers(0, 2**40))
def test_shift_by_byte_tables_is_shift_by_bits(length: int) -> None:
    assert shift(length) == _shift_bits(length)


@pytest.mark.parametrize("length", [0, 1, 255, 256, 65_535, 65_536, 2**24 - 1, 2**24, 2**32 - 1, 2**32, 2**32 + 7])
def test_shift_at_byte_edges_is_shift_by_bits(length: int) -> None:
    assert shift(length) == _shift_bits(length)


# --- one feed's body edited block by block ------------------------------------------------------

_IDS = st.sampled_from([f"ev-{i:03d}" for i in range(40)])
_EDITS = st.lists(
    st.tuples(_IDS, st.none() | st.binary(max_size=40).map(lambda data: Item(data, (data[:1].hex(),) if data else ()))),
    max_size=60,
)


class _Frame:
    """A renderer shell around raw items, so that `publish` can frame a FeedBody."""

    name = "test"
    media_type = "application/octet-stream"

    def __init__(self, separator: bytes) -> None:
        self.separator = separator

    def head(self, ctx: FeedContext, sources: list[str]) -> bytes:
        return b"[" + ",".join(sources).encode() + b"|"

    def tail(self, ctx: FeedContext) -> bytes:
        return b"]"


_MANY_IDS = st.sampled_from([f"ev-{i:04d}" for i in range(400)])


@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.lists(st.tuples(_MANY_IDS, st.none() | st.binary(min_size=1, max_size=30)), max_size=12), max_size=8),
    st.integers(1, 2),
)
def test_the_body_crc_is_the_texts_crc_after_every_step(steps: list[list[tuple[str, bytes | None]]], size: int) -> None:
    """The CRC's groups of blocks are kept between calls: every publish must still see the body as it is."""
    body = FeedBody(b",", block_size=size, level=1)
    body.begin()
    for n in range(0, 400, 3):
        body.append(f"ev-{n:04d}", Item(b"x%d" % n, ()))
    body.end()
    assert len(body.blocks) > 40  # several CRC groups (16 blocks each)
    assert body.crc() == zlib.crc32(b"".join(body.texts()))
    for step in steps:
        for event_id, data in step:
            body.stage(event_id, None if data is None else Item(data, ()))
        body.commit()
        assert body.crc() == zlib.crc32(b"".join(body.texts()))


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_EDITS, min_size=1, max_size=6), st.sampled_from([b"", b","]), st.integers(1, 5), st.booleans())
def test_a_body_edited_in_steps_is_the_body_built_at_once(
    steps: list[list[tuple[str, Item | None]]], separator: bytes, block_size: int, keep_plain: bool
) -> None:
    body, truth = FeedBody(separator, block_size=block_size, level=1), dict[str, Item]()
    body.set_keep_plain(keep_plain)
    for step in steps:
        for event_id, item in step:
            body.stage(event_id, item)
            if item is None:
                truth.pop(event_id, None)
            else:
                truth[event_id] = item
        body.commit()
    fresh = FeedBody(separator, block_size=7, level=9)
    fresh.begin()
    for event_id in sorted(truth):
        fresh.append(event_id, truth[event_id])
    fresh.end()
    expected = separator.join(truth[k].data for k in sorted(truth) if truth[k].data)
    assert b"".join(body.texts()) == b"".join(fresh.texts()) == expected
    assert (body.hash, body.items, body.sources) == (fresh.hash, fresh.items, fresh.sources)
    frame, ctx = _Frame(separator), FeedContext(now=NOW)
    version = publish(frame, body, ctx)  # type: ignore[arg-type]
    assert version.body == frame.head(ctx, sorted(body.sources)) + expected + b"]"
    assert gzip.decompress(version.gzipped) == version.body
    assert (len(version.body), len(version.gzipped)) == (version.length, version.gzip_length)
    assert version.etag == publish(frame, fresh, ctx).etag  # type: ignore[arg-type]
    replica = FeedBody(separator, block_size=block_size, level=1)  # another replica: rebuilt, never edited
    replica.begin()
    for event_id in sorted(truth):
        replica.append(event_id, truth[event_id])
    replica.end()
    assert [block.ids for block in body.blocks] == [block.ids for block in replica.blocks]
    assert version.gzipped == publish(frame, replica, ctx).gzipped  # type: ignore[arg-type]
    ordered = sorted(truth)
    halves = [FeedBody(separator, block_size=block_size, level=1) for _ in range(2)]
    for half, ids in zip(halves, (ordered[: len(ordered) // 2], ordered[len(ordered) // 2 :]), strict=True):
        half.begin()
        for event_id in ids:
            half.append(event_id, truth[event_id])
        half.end()
    halves[0].extend(halves[1])  # a rebuild over two worker processes, joined
    assert version.gzipped == publish(frame, halves[0], ctx).gzipped  # type: ignore[arg-type]


# --- the engine over an event view --------------------------------------------------------------


def _book(view: EventView, clock: list[datetime], budget_mb: int = 64) -> FeedBook:
    renderers: dict[str, Renderer] = {path: cls() for path, cls in FEEDS.items()}
    return FeedBook(
        view,
        renderers,
        lambda now, published: FeedContext(now=now, published_at=published),
        TZ,
        clock=lambda: clock[0],
        settings=FeedSettings(plain_cache_mb=budget_mb, block_events=2),
    )


def _expected(book: FeedBook, view: EventView, feed: str, now: datetime, version: Rendered) -> bytes:
    renderer = FEEDS[feed]()
    ctx = FeedContext(now=now, published_at=version.last_modified)
    kept = [e for e in view if feedable(e, now) is None and not renderer.check(e, ctx)]
    return renderer.render(kept, ctx)


def _assert_in_step(book: FeedBook, view: EventView, now: datetime) -> None:
    for feed in FEEDS:
        version = book.get(feed)
        assert version is not None
        assert version.body == _expected(book, view, feed, now, version), feed
        assert gzip.decompress(version.gzipped) == version.body, feed


async def test_every_version_equals_a_whole_render_through_changes_and_time() -> None:
    view, clock = EventView(), [NOW]
    for event in ev.partner_scenarios(NOW):
        view.put(event.id, event)
    book = _book(view, clock)
    await book.refresh()
    _assert_in_step(book, view, NOW)
    first = {feed: book.get(feed) for feed in FEEDS}

    lane = ev.lane_closure(NOW)
    view.put(lane.id, lane.model_copy(update={"description": "Voie rouverte", "version": lane.version + 1}))
    view.put(ev.waze_accident(NOW).id, None)
    await book.refresh()
    _assert_in_step(book, view, NOW)
    assert all(book.get(feed) != first[feed] for feed in FEEDS)
    assert book.get("waze/cifs.xml").etag != first["waze/cifs.xml"].etag  # type: ignore[union-attr]

    upcoming = ev.upcoming_closure(NOW)  # starts in 7 days: the timeline wakes the engine then
    assert book._timeline.wake_at(NOW) <= NOW + timedelta(minutes=5)
    clock[0] = upcoming.validity.starts_at + timedelta(seconds=1)
    await book.refresh()
    _assert_in_step(book, view, clock[0])
    assert upcoming.validity.ends_at is not None
    clock[0] = upcoming.validity.ends_at + timedelta(seconds=1)  # everything but the open-ended ones has ended
    await book.refresh()
    _assert_in_step(book, view, clock[0])


async def test_unchanged_content_keeps_its_etag_and_a_rebuild_gives_the_same_bytes() -> None:
    view, clock = EventView(), [NOW]
    for event in ev.partner_scenarios(NOW):
        view.put(event.id, event)
    book = _book(view, clock)
    await book.refresh()
    before = {feed: book.get(feed) for feed in FEEDS}
    await book.refresh()  # nothing changed, no time passed
    assert all(book.get(feed) is before[feed] for feed in FEEDS)
    other = _book(view, clock, budget_mb=0)  # another replica, which keeps no plain copy at all
    assert not other.rendered
    await other.refresh()
    assert other.rendered
    for feed in FEEDS:
        mine, theirs = before[feed], other.get(feed)
        assert mine is not None
        assert theirs is not None
        assert all(block.plain is None for block in theirs.blocks)
        assert (theirs.body, theirs.etag, theirs.last_modified) == (mine.body, mine.etag, mine.last_modified)


async def test_a_broken_item_is_left_out_and_the_feed_stays_whole() -> None:
    view, clock = EventView(), [NOW]
    good, bad = ev.lane_closure(NOW), ev.scheduled_closure(NOW)
    view.put(good.id, good)
    view.put(bad.id, bad)
    book = _book(view, clock)
    renderer = book._renderers["geojson/events.geojson"]
    original = renderer.item

    def broken(event: Event, ctx: FeedContext) -> Item:
        if event.id == bad.id:
            raise ValueError("cannot render")
        return original(event, ctx)

    renderer.item = broken  # type: ignore[method-assign]
    await book.refresh()
    version = book.get("geojson/events.geojson")
    assert version is not None
    assert version.items == 1
    assert good.id.encode() in version.body


def test_a_rebuild_over_processes_equals_one_in_a_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    renderers: dict[str, Renderer] = {path: cls() for path, cls in FEEDS.items()}
    events = sorted(ev.partner_scenarios(NOW), key=lambda e: e.id)
    raws = [e.model_dump_json().encode() for e in events]
    ctx = FeedContext(now=NOW)
    alone = rebuild.render_all(renderers, raws, ctx, 2, 6)
    monkeypatch.setattr(rebuild, "PARALLEL_FROM", 1)
    monkeypatch.setattr("os.cpu_count", lambda: 3)
    split = rebuild.render_all(renderers, raws, ctx, 2, 6)
    assert split.moments == alone.moments
    for key, body in alone.bodies.items():
        other = split.bodies[key]
        assert b"".join(other.texts()) == b"".join(body.texts()), key
        assert (other.hash, other.items, other.sources) == (body.hash, body.items, body.sources)
        assert other.crc() == body.crc()


def test_a_replica_whose_clock_lags_dates_the_feed_by_the_update_all_the_same() -> None:
    lane = ev.lane_closure(NOW).model_copy(update={"updated_at": NOW + timedelta(milliseconds=300)})
    behind, ahead = moments_of(lane, NOW, TZ), moments_of(lane, NOW + timedelta(seconds=1), TZ)
    assert behind.last == ahead.last == lane.updated_at
