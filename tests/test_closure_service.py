"""The closure service with an injected clock, without Kafka: re-posts, re-opening, times, warnings.

The clock is fixed years away from the real one, so these tests prove the service reads its own
clock (a date in the real future is "the past" to it) and never go stale.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time, timedelta, timezone
from typing import Any, cast
from zoneinfo import ZoneInfo

import pytest

from geo.communes import Communes
from geo.crs import Reprojector
from traffic_hub.auth import Principal, Role
from traffic_hub.closure_checks import differences, warnings
from traffic_hub.closures import ClosureBook, ClosureService, ReferenceTaken, Written
from traffic_hub.demo.closures import _post_or_refresh
from traffic_hub.errors import Conflict, Forbidden, InvalidInput
from traffic_hub.kafka.publisher import Publisher
from traffic_hub.model import ClosureIn, ClosurePatch, ClosureState
from traffic_hub.model.validity import WEEKDAYS
from traffic_hub.publishing import Record
from traffic_hub.topics import Topics
from traffic_hub.view import EventView

PARIS = ZoneInfo("Europe/Paris")
NOW = (datetime.now(UTC) + timedelta(days=3 * 365)).replace(microsecond=0)  # the service's "now"
LILLE = Principal(name="voirie-lille", role=Role.ROADWORKS, communes=frozenset({"59350"}), key_sha256="0" * 64)
NATIONALE = [[3.052176, 50.632626], [3.053887, 50.633345]]  # Rue Nationale, Lille


class _Sink:
    def __init__(self) -> None:
        self.records: list[Record] = []

    async def send(self, record: Record) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def communes() -> Communes:
    return Communes.load()


@pytest.fixture
def sink() -> _Sink:
    return _Sink()


@pytest.fixture
def service(communes: Communes, sink: _Sink) -> ClosureService:
    publisher = cast(Publisher, sink)
    return ClosureService(ClosureBook(EventView()), publisher, Topics("t"), communes, Reprojector(), clock=lambda: NOW)


def body(reference: str = "LILLE-1", **changes: Any) -> ClosureIn:
    data: dict[str, Any] = {
        "reference": reference,
        "description": "Travaux de voirie",
        "geometry": {"type": "LineString", "coordinates": NATIONALE},
        "starts_at": (NOW + timedelta(days=1)).astimezone(PARIS).isoformat(),
        "ends_at": (NOW + timedelta(days=10)).astimezone(PARIS).isoformat(),
    }
    data.update(changes)
    return ClosureIn.model_validate(data)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_same_body_again_is_the_same_closure_and_writes_nothing(service: ClosureService, sink: _Sink) -> None:
    first: Written = run(service.create(LILLE, body()))
    assert first.outcome == "created"
    # the same instants written in UTC, the same line: the same body
    utc = body(starts_at=first.state.starts_at.astimezone(UTC).isoformat(),
               ends_at=first.state.ends_at.astimezone(UTC).isoformat())
    again: Written = run(service.create(LILLE, utc))
    assert again.outcome == "unchanged"
    assert again.state == first.state
    assert len(sink.records) == 1


def test_another_body_for_a_live_reference_is_refused_naming_the_fields(service: ClosureService, sink: _Sink) -> None:
    run(service.create(LILLE, body()))
    later = (NOW + timedelta(days=12)).isoformat()
    with pytest.raises(ReferenceTaken) as taken:
        run(service.create(LILLE, body(description="Chaussée rétrécie", ends_at=later)))
    assert [d["field"] for d in taken.value.differences] == ["description", "ends_at"]
    assert taken.value.differences[0] == {"field": "description", "current": "Travaux de voirie",
                                          "posted": "Chaussée rétrécie"}
    assert taken.value.current.version == 1
    assert 'If-Match: "1"' in taken.value.detail
    assert isinstance(taken.value, Conflict)
    assert len(sink.records) == 1


def test_a_deleted_reference_reopens_as_the_next_version(service: ClosureService, sink: _Sink) -> None:
    created: Written = run(service.create(LILLE, body()))
    run(service.cancel(LILLE, created.state.id, None))
    reopened: Written = run(service.create(LILLE, body(description="Reprise des travaux")))
    assert reopened.outcome == "reopened"
    assert reopened.state.id == created.state.id
    assert reopened.state.version == 3
    assert not reopened.state.cancelled
    assert reopened.state.description == "Reprise des travaux"
    assert len(sink.records) == 3


def test_an_admins_edit_keeps_the_owning_teams_communes(service: ClosureService) -> None:
    created: Written = run(service.create(LILLE, body()))
    admin = Principal(name="admin", role=Role.ADMIN, communes=frozenset(), key_sha256="1" * 64)
    edited: Written = run(service.replace(admin, created.state.id, body(description="Par l'admin"), None))
    assert edited.state.owner == "voirie-lille"
    assert edited.state.owner_communes == ["59350"]


def test_ends_at_before_the_service_clock_is_refused_on_every_write(service: ClosureService) -> None:
    # a year before the injected "now", yet two years after the real one
    past = (NOW - timedelta(days=365)).isoformat()
    with pytest.raises(InvalidInput) as refused:
        run(service.create(LILLE, body(starts_at=(NOW - timedelta(days=400)).isoformat(), ends_at=past)))
    assert refused.value.field == "ends_at"
    created: Written = run(service.create(LILLE, body()))
    cid = created.state.id
    with pytest.raises(InvalidInput, match="ends_at"):
        run(service.replace(LILLE, cid, body(starts_at=(NOW - timedelta(days=400)).isoformat(), ends_at=past), None))
    with pytest.raises(InvalidInput, match="ends_at"):
        run(service.patch(LILLE, cid, ClosurePatch(ends_at=NOW - timedelta(minutes=1)), None))


def test_a_closure_wholly_in_the_neighbour_commune_is_forbidden(service: ClosureService) -> None:
    in_villeneuve = [[3.120924, 50.631002], [3.121101, 50.630567]]  # 12 m from Lille's border
    with pytest.raises(Forbidden, match="Villeneuve"):
        run(service.create(LILLE, body(geometry={"type": "LineString", "coordinates": in_villeneuve})))


def _state(**changes: Any) -> ClosureState:
    data: dict[str, Any] = {
        **body().model_dump(), "id": "c", "owner": "voirie-lille", "owner_communes": ["59350"],
        "communes": ["59350"], "version": 1, "created_at": NOW, "updated_at": NOW,
    }
    data.update(changes)
    return ClosureState.model_validate(data)


MORNING = datetime.combine((NOW + timedelta(days=1)).astimezone(PARIS).date(), time(10), PARIS)
NIGHTS = {day: ["22:00-23:00"] for day in WEEKDAYS}


def codes(state: ClosureState, now: datetime = NOW) -> list[str]:
    return [w.code for w in warnings(state, now, PARIS)]


def test_usual_input_has_no_warning() -> None:
    assert codes(_state()) == []


@pytest.mark.parametrize(
    ("changes", "code", "field"),
    [
        ({"ends_at": NOW + timedelta(days=500)}, "long-duration", "ends_at"),
        ({"starts_at": NOW + timedelta(days=400), "ends_at": NOW + timedelta(days=401)}, "far-future-start",
         "starts_at"),
        ({"starts_at": NOW - timedelta(days=2)}, "started-in-past", "starts_at"),
        ({"starts_at": NOW - timedelta(minutes=30), "ends_at": NOW + timedelta(minutes=20)}, "ends-soon", "ends_at"),
        ({"starts_at": NOW + timedelta(days=1)}, "not-local-time", "starts_at"),  # UTC, not Lille's offset
        ({"starts_at": MORNING, "ends_at": MORNING + timedelta(hours=2), "schedule": NIGHTS},
         "schedule-never-applies", "schedule"),
    ],
)
def test_unusual_input_is_accepted_with_a_warning(changes: dict[str, Any], code: str, field: str) -> None:
    state = _state(**changes)
    found = {w.code: w for w in warnings(state, NOW, PARIS)}
    assert code in found, found
    assert found[code].field == field
    assert found[code].message


def test_a_winter_time_written_in_utc_is_flagged_with_the_local_time() -> None:
    now = datetime(2031, 1, 10, 12, tzinfo=UTC)  # the clock is given: a fixed date is fine here
    state = _state(starts_at=datetime(2031, 1, 15, 8, tzinfo=UTC), ends_at=datetime(2031, 1, 16, 18, tzinfo=PARIS),
                   created_at=now, updated_at=now)
    (warning,) = [w for w in warnings(state, now, PARIS) if w.code == "not-local-time"]
    assert "09:00" in warning.message
    assert "+0100" in warning.message


@pytest.mark.parametrize("offset_min", [0, -210, 345, 120, -600])
def test_the_offset_warning_reads_as_strftime_would_write_it(offset_min: int) -> None:
    """The warning is formatted by hand (strftime was a tenth of a POST): the same text as strftime's."""
    zone = timezone(timedelta(minutes=offset_min))
    starts = (NOW + timedelta(days=1)).astimezone(zone)
    (warning,) = [w for w in warnings(_state(starts_at=starts), NOW, PARIS) if w.field == "starts_at"]
    local = starts.astimezone(PARIS)
    assert warning.message == (
        f"starts_at is written with UTC offset {starts.strftime('%z')}: {starts.strftime('%H:%M')} there is "
        f"{local.strftime('%H:%M')} in Europe/Paris (offset {local.strftime('%z')}); "
        f"if {starts.strftime('%H:%M')} was meant as local time, write the offset {local.strftime('%z')}"
    )


def test_differences_compare_instants_and_positions_not_text() -> None:
    state = _state()
    same = _state(starts_at=state.starts_at.astimezone(UTC),
                  geometry={"type": "LineString", "coordinates": [[x + 1e-9, y] for x, y in NATIONALE]})
    assert differences(state, same) == []
    moved = _state(geometry={"type": "LineString", "coordinates": [[x + 2e-5, y] for x, y in NATIONALE]})
    assert [d["field"] for d in differences(state, moved)] == ["geometry"]


def test_a_restarted_demo_brings_its_closures_up_to_date(service: ClosureService) -> None:
    """The demo posts its closures at every start with dates from the clock: the next run's body differs
    (409 for a team), so the demo replaces its own closure instead of logging a failure."""
    first: Written = run(_post_or_refresh(service, LILLE, body("DEMO-1")))
    later_body = body("DEMO-1", ends_at=(NOW + timedelta(days=11)).isoformat())
    later: Written = run(_post_or_refresh(service, LILLE, later_body))
    assert (first.outcome, later.outcome) == ("created", "replaced")
    assert later.state.version == 2
