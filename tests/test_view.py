"""The event view keeps events as bytes and decodes on demand: callers see the same events as before."""

from __future__ import annotations

from datetime import datetime, timedelta

from aiokafka import ConsumerRecord
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.feeds import events as ev
from traffic_hub.model import Event, Lifecycle
from traffic_hub.normaliser.service import expired, expired_records
from traffic_hub.view import EventView, encode

NOW = ev.WINTER_NOW


def _record(key: str, value: bytes | None) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord("events", 0, 0, 0, 0, key.encode(), value, None, len(key), len(value or b""), ())


def test_put_get_and_changes_keep_their_meaning() -> None:
    view = EventView()
    first, second = ev.lille_scenarios(NOW)[:2]
    view.put(first.id, first)
    view.put(second.id, second)
    view.put(first.id, first.model_copy(update={"version": first.version + 1}))
    view.put(second.id, None)
    view.put("never-seen", None)  # removing what is not there changes nothing
    assert len(view) == 1
    assert view.seq == 4
    assert view.get(second.id) is None
    got = view.get(first.id)
    assert got is not None
    assert got.version == first.version + 1
    changes = view.changes_since(0)
    assert changes is not None
    assert [(c.seq, c.event_id, c.kind) for c in changes] == [
        (1, first.id, "created"),
        (2, second.id, "created"),
        (3, first.id, "updated"),
        (4, second.id, "removed"),
    ]
    assert changes[1].event is second
    assert changes[3].event is None
    assert [c.seq for c in view.changes_since(2) or []] == [3, 4]


def test_events_decoded_again_once_out_of_the_cache_are_equal() -> None:
    view = EventView(cache=1)
    scenarios = ev.lille_scenarios(NOW)
    for event in scenarios:
        view.put(event.id, event)
    assert [view.get(e.id) for e in scenarios] == scenarios
    assert list(view) == scenarios
    assert [c.event for c in view.changes_since(0) or []] == scenarios


def test_history_too_old_for_a_resume_is_none() -> None:
    view = EventView(history=2)
    for event in ev.lille_scenarios(NOW)[:4]:
        view.put(event.id, event)
    assert view.changes_since(0) is None
    assert [c.seq for c in view.changes_since(2) or []] == [3, 4]


async def test_topic_values_are_validated_and_undecodable_ones_removed() -> None:
    view = EventView()
    first, second = ev.lille_scenarios(NOW)[:2]
    await view.apply([_record(first.id, encode(first)), _record(second.id, encode(second))])
    assert view.get(first.id) == first
    assert len(view) == 2
    await view.apply([_record(first.id, None), _record(second.id, b'{"id": "truncated')])
    assert len(view) == 0
    changes = view.changes_since(2)
    assert changes is not None
    assert [c.kind for c in changes] == ["removed", "removed"]


async def test_the_view_shares_the_topic_bytes() -> None:
    view = EventView()
    event = ev.lille_scenarios(NOW)[0]
    value = encode(event)
    await view.apply([_record(event.id, value)])
    stored = view.stored(event.id)
    assert stored is not None
    assert stored.raw is value
    assert stored.version == event.version


def test_an_iterator_is_a_snapshot_of_when_it_was_made() -> None:
    view = EventView()
    first, second = ev.lille_scenarios(NOW)[:2]
    view.put(first.id, first)
    events = iter(view)
    current = view.current(NOW)
    view.put(second.id, second)
    view.put(first.id, None)
    assert [e.id for e in events] == [first.id]
    assert [e.id for e in current] == [first.id]


def test_only_closures_match_a_closure_filter() -> None:
    view = EventView()
    for event in [*ev.lille_scenarios(NOW), ev.waze_accident(NOW)]:
        view.put(event.id, event)
    closures = {e.id for e in view.matching(lambda stored: stored.closure)}
    assert closures == {e.id for e in view if e.closure is not None}


@st.composite
def _events_around(draw: st.DrawFn, now: datetime) -> Event:
    """Events started or ending around `now` (to the microsecond), in every lifecycle."""
    event = draw(ev.mel_events(now))
    start = now + timedelta(microseconds=draw(st.integers(-(10**7), 10**7)))
    end = draw(st.none() | st.integers(1, 2 * 10**7).map(lambda us: start + timedelta(microseconds=us)))
    validity = event.validity.model_copy(update={"starts_at": start, "ends_at": end})
    updated = now - timedelta(days=draw(st.integers(0, 20)), microseconds=draw(st.integers(0, 10**6)))
    return event.model_copy(
        update={"validity": validity, "lifecycle": draw(st.sampled_from(Lifecycle)), "updated_at": updated}
    )


@settings(max_examples=40, deadline=None)
@given(st.lists(_events_around(NOW), min_size=1, max_size=8, unique_by=lambda e: e.id), st.integers(0, 10))
def test_current_and_expired_read_from_records_agree_with_the_events(events: list[Event], retention: int) -> None:
    view = EventView()
    for event in events:
        view.put(event.id, event)
    assert [e.id for e in view.current(NOW)] == [e.id for e in events if e.is_current(NOW)]
    window = timedelta(days=retention, microseconds=retention * 1000)
    assert expired_records(view.records(), NOW, window) == expired(events, NOW, window)


def test_boundaries_to_the_microsecond() -> None:
    week = timedelta(days=7)
    ends_now = ev.make_event("ends-now", NOW, segments=[], starts_at=NOW - week, ends_at=NOW)
    ends_next = ev.make_event("ends-next", NOW, segments=[], ends_at=NOW + timedelta(microseconds=1))
    ended_on_the_limit = ev.make_event("limit", NOW, segments=[], starts_at=NOW - 2 * week, ends_at=NOW - week)
    ended_before = ev.make_event(
        "before", NOW, segments=[], starts_at=NOW - 2 * week, ends_at=NOW - week - timedelta(microseconds=1)
    )
    events = [ends_now, ends_next, ended_on_the_limit, ended_before]
    view = EventView()
    for event in events:
        view.put(event.id, event)
    assert [e.id for e in view.current(NOW)] == ["ends-next"]
    assert expired_records(view.records(), NOW, week) == expired(events, NOW, week) == ["before"]
