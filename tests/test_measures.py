"""Measures without a hub (issue 18): validity with holidays and daylight-saving changes, who a vehicle
restriction bans, detour conflicts, the values-fit-type rule, and what Waze and the open data make of
each type. Fixed dates are fine here: every test gives its own "now"."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import orjson
import pytest

from geo.crs import Reprojector
from tests.feeds import events as ev
from traffic_hub.feeds.base import FeedContext
from traffic_hub.feeds.opendata import CSV_COLUMNS, OpenDataCsv, OpenDataGeoJson
from traffic_hub.feeds.waze_rules import check_waze, measure_reason
from traffic_hub.measures import detour_warnings
from traffic_hub.model import (
    ClosureState,
    Event,
    Measure,
    MeasureType,
    Schedule,
    SourceReport,
    Validity,
    Vehicles,
)
from traffic_hub.model.closure import measure_problem
from traffic_hub.model.geometry import LineString
from traffic_hub.model.validity import public_holidays
from traffic_hub.model.vocabulary import Cause, EventType
from traffic_hub.normaliser.closures import event_type

PARIS = ZoneInfo("Europe/Paris")
WEEKDAY_DAYTIME = Schedule.model_validate(
    {"daily": ["08:00-17:00"], "except": {"weekends": True, "public_holidays": True, "dates": ["2026-12-24"]}}
)


# --- validity --------------------------------------------------------------------------------


def test_french_public_holidays_come_from_the_holidays_library() -> None:
    days = public_holidays(2027)
    assert {date(2027, 1, 1), date(2027, 3, 29), date(2027, 5, 6), date(2027, 7, 14), date(2027, 12, 25)} <= days
    assert date(2027, 3, 26) not in days  # Good Friday is a holiday in Alsace-Moselle only, not in Lille


@pytest.mark.parametrize(
    ("moment", "applies"),
    [
        (datetime(2026, 12, 23, 9, 0, tzinfo=PARIS), True),  # a Wednesday
        (datetime(2026, 12, 23, 17, 0, tzinfo=PARIS), False),  # the window has closed
        (datetime(2026, 12, 24, 9, 0, tzinfo=PARIS), False),  # an excepted date
        (datetime(2026, 12, 25, 9, 0, tzinfo=PARIS), False),  # Christmas
        (datetime(2026, 12, 26, 9, 0, tzinfo=PARIS), False),  # Saturday
        (datetime(2026, 12, 28, 9, 0, tzinfo=PARIS), True),  # Monday
        (datetime(2027, 5, 6, 10, 0, tzinfo=PARIS), False),  # Ascension Thursday
        (datetime(2027, 5, 7, 10, 0, tzinfo=PARIS), True),
    ],
)
def test_a_schedule_skips_weekends_holidays_and_given_dates(moment: datetime, applies: bool) -> None:
    assert WEEKDAY_DAYTIME.covers(moment, PARIS) is applies


def test_the_next_boundary_jumps_over_the_days_that_do_not_apply() -> None:
    after = datetime(2026, 12, 23, 18, 0, tzinfo=PARIS)
    assert WEEKDAY_DAYTIME.boundaries(after, PARIS)[0] == datetime(2026, 12, 28, 8, 0, tzinfo=PARIS)


@pytest.mark.parametrize(("day", "utc_hour"), [(date(2027, 3, 26), 7), (date(2027, 3, 29), 6),
                                                (date(2027, 10, 29), 6), (date(2027, 11, 1), 7)])
def test_windows_stay_on_the_local_clock_across_daylight_saving_changes(day: date, utc_hour: int) -> None:
    """08:00 in Lille is 07:00 UTC in winter and 06:00 UTC in summer, also around the change weekends
    (Friday 26 March winter, Monday 29 March summer; 29 October summer, 1 November winter... a holiday)."""
    schedule = Schedule.model_validate({"daily": ["08:00-17:00"], "except": {"weekends": True}})
    start = datetime.combine(day, datetime.min.time(), ZoneInfo("UTC")).replace(hour=utc_hour)
    assert schedule.covers(start, PARIS)
    assert not schedule.covers(start - timedelta(minutes=1), PARIS)
    friday = datetime(2027, 3, 26, 18, 0, tzinfo=PARIS)
    assert schedule.boundaries(friday, PARIS)[0].astimezone(ZoneInfo("UTC")).hour == 6  # Monday, summer time


def test_a_closure_schedule_reads_as_before_when_it_uses_no_new_field() -> None:
    schedule = Schedule(monday=["08:00-12:00"])
    assert schedule.model_dump(mode="json") == {
        "monday": ["08:00-12:00"], "tuesday": None, "wednesday": None, "thursday": None, "friday": None,
        "saturday": None, "sunday": None,
    }
    assert "except" in WEEKDAY_DAYTIME.model_dump(mode="json")


def test_validity_in_window_honours_the_exceptions() -> None:
    validity = Validity(starts_at=datetime(2026, 12, 1, tzinfo=PARIS), ends_at=datetime(2027, 1, 31, tzinfo=PARIS),
                        schedule=WEEKDAY_DAYTIME)
    assert not validity.in_window(datetime(2027, 1, 1, 10, 0, tzinfo=PARIS), PARIS)
    assert validity.in_window(datetime(2027, 1, 4, 10, 0, tzinfo=PARIS), PARIS)


# --- values ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "values", "field"),
    [
        (MeasureType.SPEED_LIMIT, {}, "speed_kmh"),
        (MeasureType.NO_OVERTAKING, {"speed_kmh": 30}, "speed_kmh"),
        (MeasureType.VEHICLE_RESTRICTION, {"vehicles": Vehicles()}, "vehicles"),
        (MeasureType.ROAD_CLOSED, {"vehicles": Vehicles(max_height_m=3.5)}, "vehicles"),
        (MeasureType.DETOUR, {}, "detour_of"),
        (MeasureType.SPEED_LIMIT, {"speed_kmh": 30, "detour_of": "x"}, "detour_of"),
    ],
)
def test_values_that_do_not_fit_the_type_name_their_field(kind: MeasureType, values: dict[str, object],
                                                          field: str) -> None:
    problem = measure_problem(kind, None, values.get("speed_kmh"), values.get("vehicles"),  # type: ignore[arg-type]
                              values.get("detour_of"))  # type: ignore[arg-type]
    assert problem is not None
    assert problem[0] == field


def test_vehicles_take_except_as_json_and_the_axle_alias() -> None:
    vehicles = Vehicles.model_validate({"max_axle_weight_t": 11, "except": ["residents"]})
    assert vehicles.max_axle_load_t == 11
    assert orjson.loads(vehicles.model_dump_json())["except"] == ["residents"]


@pytest.mark.parametrize(
    ("other", "banned"),
    [
        (None, True),  # any vehicle
        (Vehicles(kinds=["car"]), False),
        (Vehicles(kinds=["heavy_goods_vehicle"]), True),
        (Vehicles(kinds=["heavy_goods_vehicle"], max_weight_t=3.5), False),  # light lorries only
        (Vehicles(kinds=["heavy_goods_vehicle"], max_weight_t=19), True),
    ],
)
def test_who_a_lorry_ban_bars(other: Vehicles | None, banned: bool) -> None:
    ban = Vehicles(kinds=["heavy_goods_vehicle"], max_weight_t=3.5)
    assert ban.bans(other) is banned


def test_each_measure_type_has_an_event_type_the_feeds_know() -> None:
    assert event_type(MeasureType.ROAD_CLOSED, Cause.ROADWORKS) is EventType.CLOSURE
    assert event_type(MeasureType.ALTERNATE_TRAFFIC, Cause.ROADWORKS) is EventType.LANE_CLOSURE
    assert event_type(MeasureType.SPEED_LIMIT, Cause.ROADWORKS) is EventType.ROADWORKS
    assert event_type(MeasureType.SPEED_LIMIT, Cause.EVENT) is EventType.OTHER
    assert event_type(MeasureType.DETOUR, Cause.ROADWORKS) is EventType.OTHER


# --- detours ---------------------------------------------------------------------------------

NOW = ev.WINTER_NOW
ALONG = [[3.0561, 50.6301], [3.0509, 50.6279]]
ACROSS = [[3.0535, 50.6300], [3.0535, 50.6280]]  # crosses ALONG once, follows it nowhere


def measure_event(event_id: str, coords: list[list[float]], measure: Measure) -> Event:
    base = ev.make_event(event_id, NOW, segments=[], geometry=_line(coords))
    return base.model_copy(update={"measure": measure})


def _line(coords: list[list[float]]) -> LineString:
    return LineString(type="LineString", coordinates=coords)


def detour(coords: list[list[float]], vehicles: Vehicles | None = None) -> ClosureState:
    return ClosureState(
        id="detour-1", reference="D-1", owner="voirie-lille", owner_communes=["59350"], communes=["59350"],
        version=1, created_at=NOW, updated_at=NOW, description="Déviation", geometry=_line(coords),
        starts_at=NOW, ends_at=NOW + timedelta(days=2), type=MeasureType.DETOUR, detour_of="closed-1",
        vehicles=vehicles,
    )


def test_a_detour_along_a_closed_street_is_warned_and_one_crossing_it_is_not() -> None:
    closed = measure_event("closed-2", ALONG, Measure(type=MeasureType.ROAD_CLOSED))
    warnings = detour_warnings(detour([[3.0575, 50.63068], *ALONG]), [closed], Reprojector())
    assert [w.code for w in warnings] == ["detour-conflict"]
    assert "closed-2" in warnings[0].message
    assert detour_warnings(detour(ACROSS), [closed], Reprojector()) == []


def test_the_closure_a_detour_goes_around_is_no_conflict() -> None:
    around = measure_event("closed-1", ALONG, Measure(type=MeasureType.ROAD_CLOSED))
    assert detour_warnings(detour(ALONG), [around], Reprojector()) == []


def test_a_lorry_ban_conflicts_with_a_lorry_detour_only() -> None:
    ban = measure_event("ban-1", ALONG, Measure(type=MeasureType.VEHICLE_RESTRICTION,
                                                vehicles=Vehicles(kinds=["heavy_goods_vehicle"])))
    lorries = detour(ALONG, Vehicles(kinds=["heavy_goods_vehicle"]))
    cars = detour(ALONG, Vehicles(kinds=["car"]))
    assert [w.code for w in detour_warnings(lorries, [ban], Reprojector())] == ["detour-conflict"]
    assert detour_warnings(cars, [ban], Reprojector()) == []


def test_a_closure_over_before_the_detour_starts_is_no_conflict() -> None:
    closed = measure_event("closed-3", ALONG, Measure(type=MeasureType.ROAD_CLOSED))
    days = {"starts_at": NOW + timedelta(days=10), "ends_at": NOW + timedelta(days=11)}
    later = detour(ALONG).model_copy(update=days)
    assert detour_warnings(later, [closed], Reprojector()) == []


# --- feeds -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("measure", "reason"),
    [
        (Measure(type=MeasureType.SPEED_LIMIT, speed_kmh=30), "Waze CIFS cannot carry a 30 km/h speed limit"),
        (Measure(type=MeasureType.VEHICLE_RESTRICTION, vehicles=Vehicles(max_weight_t=3.5)),
         "Waze CIFS cannot carry a 3.5 t limit"),
        (Measure(type=MeasureType.VEHICLE_RESTRICTION, vehicles=Vehicles(max_height_m=3.2, kinds=["bus"])),
         "Waze CIFS cannot carry a 3.2 m height limit and a ban on bus"),
        (Measure(type=MeasureType.VEHICLE_RESTRICTION, vehicles=Vehicles(critair=["critair4", "critair5"])),
         "Waze CIFS cannot carry a Crit'Air ban (critair4, critair5)"),
        (Measure(type=MeasureType.NO_OVERTAKING), "Waze CIFS cannot carry a no-overtaking rule"),
        (Measure(type=MeasureType.ALTERNATE_TRAFFIC), "Waze CIFS cannot carry alternating traffic"),
        (Measure(type=MeasureType.DETOUR, detour_of="x"), "Waze CIFS cannot carry a detour"),
    ],
)
def test_waze_withholds_what_cifs_cannot_carry_with_a_true_reason(measure: Measure, reason: str) -> None:
    assert (measure_reason(measure) or "").startswith(reason)
    event = ev.scheduled_closure(NOW).model_copy(update={"measure": measure})
    assert check_waze(event, FeedContext(now=NOW))[0].startswith(reason)


def test_waze_still_takes_closures_for_all_vehicles() -> None:
    event = ev.scheduled_closure(NOW).model_copy(update={"measure": Measure(type=MeasureType.ROAD_CLOSED)})
    assert measure_reason(event.measure) is None
    assert check_waze(event, FeedContext(now=NOW)) == []


def test_an_order_known_only_from_the_national_base_is_not_sent_to_waze_twice() -> None:
    closure = ev.scheduled_closure(NOW).model_copy(update={"measure": Measure(type=MeasureType.ROAD_CLOSED)})
    national = SourceReport(source="dialog", source_id="order-1", kind="dialog-regulation", received_at=NOW)
    alone = closure.model_copy(update={"sources": [national]})
    assert check_waze(alone, FeedContext(now=NOW)) == ["already sent to Waze by the national base"]
    merged = closure.model_copy(update={"sources": [*closure.sources, national]})
    assert check_waze(merged, FeedContext(now=NOW)) == []  # our team posted it too: published once, by us


def test_the_open_data_carries_every_measure_with_its_values() -> None:
    ban = Measure(type=MeasureType.VEHICLE_RESTRICTION,
                  vehicles=Vehicles(max_weight_t=7.5, kinds=["heavy_goods_vehicle"], critair=["critair5"],
                                    except_=["deliveries"]))
    event = ev.scheduled_closure(NOW).model_copy(update={"measure": ban, "type": EventType.ROADWORKS})
    ctx = FeedContext(now=NOW)
    feature = orjson.loads(OpenDataGeoJson().item(event, ctx).data)
    props = feature["properties"]
    assert (props["measure"], props["max_weight_t"], props["vehicle_kinds"], props["critair"],
            props["vehicles_except"]) == ("vehicle_restriction", 7.5, "heavy_goods_vehicle", "critair5", "deliveries")
    row = next(csv.reader(io.StringIO(OpenDataCsv().item(event, ctx).data.decode())))
    assert dict(zip(CSV_COLUMNS, row, strict=True))["max_weight_t"] == "7.5"
    incident = orjson.loads(OpenDataGeoJson().item(ev.waze_accident(NOW), ctx).data)["properties"]
    assert incident["measure"] is None
