"""DATEX II v3 SituationPublication, valid against the 3.7 schemas (served at `/feeds/datex2/v3/situations.xml`).

Document: a bare `d2:payload` with `xsi:type="sit:SituationPublication"` (the snapshot-pull form
NDW and DiaLog serve), namespaces under their canonical prefixes (`d2 sit com loc xsi`): DATEX II
v3 `targetClass` attributes are fixed strings such as `sit:SituationRecord`, so any other prefix
makes the document invalid.

One `sit:situation` per event, `id` = event id. Its records, `version` = event version (which the
normaliser raises on every change), ids = the event id for the main record and `{event id}-works`
for the works record a roadworks-caused closure also carries:

| event | records |
|---|---|
| CLOSURE | `RoadOrCarriagewayOrLaneManagement` `roadClosed` (+ `MaintenanceWorks` when caused by roadworks, linked by `cause/managedCause`) |
| LANE_CLOSURE | `RoadOrCarriagewayOrLaneManagement` `laneClosures`, lanes in `impact` and the location's carriageway (+ works as above) |
| ROADWORKS | `MaintenanceWorks` `roadworks` |
| ACCIDENT | `Accident` `accident` |
| HAZARD | `GeneralObstruction` (`objectOnTheRoad`, `spillageOnTheRoad`, … from the subtype, else `hazardsOnTheRoad`) |
| WEATHER | `PoorEnvironmentConditions` (`fog`, `heavyRain`, … from the subtype, else `badWeather`) |
| JAM | `AbnormalTraffic` (`stationaryTraffic`, `queuingTraffic`, `slowTraffic`, `heavyTraffic`) |
| POLICE, OTHER | withheld: police sightings are not road information; "other" has no honest record type |

Locations by coordinates: a point → `loc:PointLocation/pointByCoordinates`; a line →
`loc:LinearLocation/gmlLineString` (`posList` is **lat lon** for EPSG:4326); a multi-line →
`loc:LocationGroupByList` of linear locations. The street is the location's `roadInformation`.
Validity: `overallStartTime`/`overallEndTime`, and a weekly schedule as one `validPeriod` per
group of weekdays sharing the same windows (`recurringTimePeriodOfDay` + `recurringDayWeekMonthPeriod`,
local times). Sources: the record's single `com:source` names every source of a conflated event.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from lxml import etree

from traffic_hub.feeds.base import FeedContext
from traffic_hub.feeds.waze_incident import clean_text, local_time
from traffic_hub.model import Cause, Event, EventType, Schedule, Status
from traffic_hub.model.geometry import LineString, MultiLineString, Point
from traffic_hub.model.validity import WEEKDAYS

__all__ = ["Datex2Situations", "check_datex2", "render_datex2"]

PUBLICATION_KEY = "datex2"

D2 = "http://datex2.eu/schema/3/d2Payload"
SIT = "http://datex2.eu/schema/3/situation"
COM = "http://datex2.eu/schema/3/common"
LOC = "http://datex2.eu/schema/3/locationReferencing"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
NSMAP = {"d2": D2, "sit": SIT, "com": COM, "loc": LOC, "xsi": XSI}
XSI_TYPE = f"{{{XSI}}}type"
LANG = "fr"
TEXT_MAX = 1024  # com:String and MultilingualStringValueType maxLength

_AUTHORITY_PREFIXES = ("roadworks:", "operator")
_WORKS_SUFFIX = "-works"
_LANE_USAGE = {"LEFT": "leftLane", "MIDDLE": "middleLane", "RIGHT": "rightLane"}
_POSITION = {"LEFT": "onTheLeft", "MIDDLE": "inTheCentre", "RIGHT": "onTheRight"}
_CAUSE_TYPE = {
    Cause.ROADWORKS: "roadMaintenance",
    Cause.EVENT: "publicEvent",
    Cause.HAZARD: "obstruction",
    Cause.ACCIDENT: "accident",
}
_OBSTRUCTION = {
    "OBJECT": "objectOnTheRoad",
    "OIL": "spillageOnTheRoad",
    "CAR_STOPPED": "obstructionOnTheRoad",
    "ROAD_KILL": "obstructionOnTheRoad",
    "ANIMALS": "obstructionOnTheRoad",
}
_WEATHER = {
    "FOG": "fog",
    "HEAVY_RAIN": "heavyRain",
    "HEAVY_SNOW": "heavySnowfall",
    "HAIL": "hail",
    "FREEZING_RAIN": "sleet",
    "HEAT_WAVE": "extremeHeat",
    "TORNADO": "tornadoes",
    "HURRICANE": "hurricaneForceWinds",
    "FLOOD": "nearbyFlooding",
}
_JAM = {
    "STAND_STILL": "stationaryTraffic",
    "HEAVY": "queuingTraffic",
    "MODERATE": "slowTraffic",
    "LIGHT": "heavyTraffic",
}
_WITHHELD_TYPES = {
    EventType.POLICE: "police sightings are not published in DATEX II",
    EventType.OTHER: "events of type other have no DATEX II record type",
}

Leaf = tuple[str, str]  # (Clark tag, text)


def _sit(name: str) -> str:
    return f"{{{SIT}}}{name}"


def _com(name: str) -> str:
    return f"{{{COM}}}{name}"


def _loc(name: str) -> str:
    return f"{{{LOC}}}{name}"


@dataclass(frozen=True, slots=True)
class Record:
    """One `sit:situationRecord`: its id, `xsi:type`, optional cause and type-specific children."""

    id: str
    xsi_type: str
    leaves: tuple[Leaf, ...]  # after locationReference, in XSD order
    managed_cause: str | None = None  # id of the record this one manages (a closure for works)
    lanes: bool = False  # carries the lane impact


class Datex2Situations:
    """DATEX II v3 SituationPublication (valid against the 3.7 schemas)."""

    name: str = PUBLICATION_KEY
    media_type: str = "application/xml"

    def check(self, event: Event, ctx: FeedContext) -> list[str]:
        return check_datex2(event, ctx)

    def render(self, events: Sequence[Event], ctx: FeedContext) -> bytes:
        return render_datex2(events, ctx)


# --- the gate ---------------------------------------------------------------------------------


def check_datex2(event: Event, ctx: FeedContext) -> list[str]:
    """Reasons `event` cannot enter the DATEX II feed at `ctx.now` (empty: it can)."""
    status = event.status_at(ctx.now)
    if status is Status.CANCELLED:
        return ["cancelled"]
    if status is Status.ENDED:
        return ["ended"]
    reasons: list[str] = []
    if event.type in _WITHHELD_TYPES:
        reasons.append(_WITHHELD_TYPES[event.type])
    if not event.id or clean_text(event.id) != event.id:
        reasons.append("the event id is empty or has characters XML cannot carry")
    reasons.extend(geometry_reasons(event.geometry))
    if event.type is EventType.LANE_CLOSURE and lane_counts(event) is None:
        reasons.append("a lane closure needs its closed and total lane counts (1 ≤ closed ≤ total)")
    return reasons


def geometry_reasons(geometry: Point | LineString | MultiLineString) -> list[str]:
    """Why a geometry cannot be published by coordinates (finite, in range, lines of 2+ points)."""
    parts = _parts(geometry)
    points = [point for part in parts for point in part]
    if not all(math.isfinite(lon) and math.isfinite(lat) for lon, lat in points):
        return ["the geometry has coordinates that are not numbers"]
    if not all(-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0 for lon, lat in points):
        return ["the geometry has coordinates outside latitude/longitude ranges"]
    if not isinstance(geometry, Point) and any(len(set(_rounded(part))) < 2 for part in parts):
        return ["the line has fewer than 2 distinct points"]
    return []


def lane_counts(event: Event) -> tuple[int, int] | None:
    """(closed, total) from `event.lanes` when both are sensible integers."""
    lanes = event.lanes or {}
    closed, total = lanes.get("closed"), lanes.get("total")
    if type(closed) is not int or type(total) is not int or not 1 <= closed <= total <= 99:
        return None
    return closed, total


def _parts(geometry: Point | LineString | MultiLineString) -> list[list[tuple[float, float]]]:
    if isinstance(geometry, Point):
        return [[(geometry.coordinates[0], geometry.coordinates[1])]]
    if isinstance(geometry, LineString):
        return [[(p[0], p[1]) for p in geometry.coordinates]]
    return [[(p[0], p[1]) for p in part] for part in geometry.coordinates]


def _rounded(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    return [(round(lon, 6), round(lat, 6)) for lon, lat in points]


# --- records ----------------------------------------------------------------------------------


def records_of(event: Event) -> list[Record]:
    """The situation records of `event`, main record first."""
    kind = event.type
    if kind in (EventType.CLOSURE, EventType.LANE_CLOSURE):
        return _closure_records(event)
    if kind is EventType.ROADWORKS:
        return [_works(event.id)]
    if kind is EventType.ACCIDENT:
        return [Record(event.id, "sit:Accident", ((_sit("accidentType"), "accident"),))]
    if kind is EventType.HAZARD:
        value = _by_subtype(event.subtype, _OBSTRUCTION, "hazardsOnTheRoad")
        return [Record(event.id, "sit:GeneralObstruction", ((_sit("obstructionType"), value),))]
    if kind is EventType.WEATHER:
        value = _by_subtype(event.subtype, _WEATHER, "badWeather")
        return [Record(event.id, "sit:PoorEnvironmentConditions", ((_sit("poorEnvironmentType"), value),))]
    if kind is EventType.JAM:
        value = _by_subtype(event.subtype, _JAM, "queuingTraffic")
        return [Record(event.id, "sit:AbnormalTraffic", ((_sit("abnormalTrafficType"), value),))]
    return []


def _closure_records(event: Event) -> list[Record]:
    lane_closure = event.type is EventType.LANE_CLOSURE
    management = "laneClosures" if lane_closure else "roadClosed"
    works = event.cause is Cause.ROADWORKS
    leaves: list[Leaf] = [(_sit("complianceOption"), "mandatory")]
    if event.direction.value == "ONE_DIRECTION":
        leaves.append((_sit("applicableForTrafficDirection"), "aligned"))
    elif event.direction.value == "BOTH_DIRECTIONS":
        leaves.append((_sit("applicableForTrafficDirection"), "bothWays"))
    leaves.append((_sit("roadOrCarriagewayOrLaneManagementType"), management))
    main = Record(
        event.id,
        "sit:RoadOrCarriagewayOrLaneManagement",
        tuple(leaves),
        managed_cause=event.id + _WORKS_SUFFIX if works else None,
        lanes=lane_closure,
    )
    return [main, _works(event.id + _WORKS_SUFFIX)] if works else [main]


def _works(record_id: str) -> Record:
    return Record(record_id, "sit:MaintenanceWorks", ((_sit("roadMaintenanceType"), "roadworks"),))


def _by_subtype(subtype: str | None, table: dict[str, str], default: str) -> str:
    if subtype:
        for key, value in table.items():
            if subtype.endswith(key):
                return value
    return default


# --- rendering --------------------------------------------------------------------------------


def render_datex2(events: Sequence[Event], ctx: FeedContext) -> bytes:
    """The SituationPublication for `events` (already passed through the gate), sorted by event id."""
    tz = ZoneInfo(ctx.timezone)
    root = etree.Element(f"{{{D2}}}payload", nsmap=NSMAP)
    root.set(XSI_TYPE, "sit:SituationPublication")
    root.set("lang", LANG)
    root.set("modelBaseVersion", "3")
    etree.SubElement(root, _com("publicationTime")).text = local_time(ctx.timestamp, tz)
    creator = etree.SubElement(root, _com("publicationCreator"))
    etree.SubElement(creator, _com("country")).text = "FR"
    etree.SubElement(creator, _com("nationalIdentifier")).text = clean_text(ctx.publisher_id)[:TEXT_MAX] or "MEL"
    for event in sorted(events, key=lambda item: item.id):
        records = records_of(event)
        if records:
            _situation(root, event, records, tz)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _situation(root: etree._Element, event: Event, records: list[Record], tz: ZoneInfo) -> None:
    node = etree.SubElement(root, _sit("situation"), id=event.id)
    etree.SubElement(node, _sit("situationVersionTime")).text = local_time(event.updated_at, tz)
    header = etree.SubElement(node, _sit("headerInformation"))
    etree.SubElement(header, _com("informationStatus")).text = "real"
    for record in records:
        _record(node, event, record, tz)


def _record(parent: etree._Element, event: Event, record: Record, tz: ZoneInfo) -> None:
    node = etree.SubElement(parent, _sit("situationRecord"), id=record.id, version=str(event.version))
    node.set(XSI_TYPE, record.xsi_type)
    etree.SubElement(node, _sit("situationRecordCreationTime")).text = local_time(event.created_at, tz)
    etree.SubElement(node, _sit("situationRecordVersionTime")).text = local_time(event.updated_at, tz)
    authority = _from_authority(event)
    etree.SubElement(node, _sit("probabilityOfOccurrence")).text = "certain" if authority else "probable"
    _source(node, event, authority)
    _validity(node, event, tz)
    counts = lane_counts(event) if record.lanes else None
    if counts is not None:
        impact = etree.SubElement(node, _sit("impact"))
        etree.SubElement(impact, _sit("numberOfLanesRestricted")).text = str(counts[0])
        etree.SubElement(impact, _sit("numberOfOperationalLanes")).text = str(counts[1] - counts[0])
    _cause(node, event, record)
    description = clean_text(event.description)[:TEXT_MAX]
    if description:
        comment = etree.SubElement(node, _sit("generalPublicComment"))
        _multilingual(etree.SubElement(comment, _sit("comment")), description)
    _location(node, event, counts)
    for tag, text in record.leaves:
        etree.SubElement(node, tag).text = text


def _from_authority(event: Event) -> bool:
    return event.verification == "confirmed" or any(
        report.source.startswith(_AUTHORITY_PREFIXES) for report in event.sources
    )


def _source(node: etree._Element, event: Event, authority: bool) -> None:
    names = list(dict.fromkeys(clean_text(report.source) for report in event.sources))
    source = etree.SubElement(node, _sit("source"))
    etree.SubElement(source, _com("sourceIdentification")).text = ", ".join(filter(None, names))[:TEXT_MAX]
    etree.SubElement(source, _com("sourceType")).text = "roadAuthorities" if authority else "otherInformation"
    etree.SubElement(source, _com("reliable")).text = "true" if authority else "false"


def _validity(node: etree._Element, event: Event, tz: ZoneInfo) -> None:
    validity = etree.SubElement(node, _sit("validity"))
    etree.SubElement(validity, _com("validityStatus")).text = "definedByValidityTimeSpec"
    spec = etree.SubElement(validity, _com("validityTimeSpecification"))
    etree.SubElement(spec, _com("overallStartTime")).text = local_time(event.validity.starts_at, tz)
    if event.validity.ends_at is not None:
        etree.SubElement(spec, _com("overallEndTime")).text = local_time(event.validity.ends_at, tz)
    if event.validity.schedule is not None:
        for days, windows in schedule_groups(event.validity.schedule):
            _valid_period(spec, days, windows)


def schedule_groups(schedule: Schedule) -> list[tuple[list[str], list[str]]]:
    """Weekdays grouped by identical windows: [(["monday", "tuesday"], ["08:00-12:00"]), …]."""
    groups: dict[tuple[str, ...], list[str]] = {}
    for day in WEEKDAYS:
        windows = tuple(schedule.windows(day))
        if windows:
            groups.setdefault(windows, []).append(day)
    return [(days, list(windows)) for windows, days in groups.items()]


def _valid_period(spec: etree._Element, days: list[str], windows: list[str]) -> None:
    period = etree.SubElement(spec, _com("validPeriod"))
    for window in windows:
        start, end = window.split("-")
        of_day = etree.SubElement(period, _com("recurringTimePeriodOfDay"))
        etree.SubElement(of_day, _com("startTimeOfPeriod")).text = f"{start}:00"
        etree.SubElement(of_day, _com("endTimeOfPeriod")).text = f"{end}:00"
    week = etree.SubElement(period, _com("recurringDayWeekMonthPeriod"))
    for day in days:
        etree.SubElement(week, _com("applicableDay")).text = day


def _cause(node: etree._Element, event: Event, record: Record) -> None:
    cause_type = _CAUSE_TYPE.get(event.cause)
    if record.managed_cause is None and (cause_type is None or record.xsi_type != "sit:RoadOrCarriagewayOrLaneManagement"):
        return
    cause = etree.SubElement(node, _sit("cause"))
    if cause_type is not None:
        etree.SubElement(cause, _sit("causeType")).text = cause_type
    if record.managed_cause is not None:
        managed = etree.SubElement(cause, _sit("managedCause"))
        reference = etree.SubElement(managed, _sit("objectReference"), id=record.managed_cause)
        reference.set("targetClass", "sit:SituationRecord")
        reference.set("version", str(event.version))


def _multilingual(parent: etree._Element, text: str) -> None:
    values = etree.SubElement(parent, _com("values"))
    value = etree.SubElement(values, _com("value"), lang=LANG)
    value.text = text


def _location(node: etree._Element, event: Event, counts: tuple[int, int] | None) -> None:
    reference = etree.SubElement(node, _sit("locationReference"))
    geometry = event.geometry
    if isinstance(geometry, Point):
        reference.set(XSI_TYPE, "loc:PointLocation")
        _supplementary(reference, event, counts)
        by_coordinates = etree.SubElement(reference, _loc("pointByCoordinates"))
        coordinates = etree.SubElement(by_coordinates, _loc("pointCoordinates"))
        etree.SubElement(coordinates, _loc("latitude")).text = f"{geometry.coordinates[1]:.6f}"
        etree.SubElement(coordinates, _loc("longitude")).text = f"{geometry.coordinates[0]:.6f}"
        return
    parts = _parts(geometry)
    if len(parts) == 1:
        reference.set(XSI_TYPE, "loc:LinearLocation")
        _linear(reference, parts[0], event, counts)
        return
    reference.set(XSI_TYPE, "loc:LocationGroupByList")
    for part in parts:
        member = etree.SubElement(reference, _loc("locationContainedInGroup"))
        member.set(XSI_TYPE, "loc:LinearLocation")
        _linear(member, part, event, counts)


def _linear(
    node: etree._Element, points: list[tuple[float, float]], event: Event, counts: tuple[int, int] | None
) -> None:
    _supplementary(node, event, counts)
    line = etree.SubElement(node, _loc("gmlLineString"), srsName="EPSG:4326")
    etree.SubElement(line, _loc("posList")).text = pos_list(points)


def pos_list(points: list[tuple[float, float]]) -> str:
    """GML posList for EPSG:4326: `lat lon` pairs (latitude first), 6 decimals, repeats dropped."""
    pairs: list[str] = []
    for lon, lat in points:
        pair = f"{lat:.6f} {lon:.6f}"
        if not pairs or pairs[-1] != pair:
            pairs.append(pair)
    return " ".join(pairs)


def _supplementary(node: etree._Element, event: Event, counts: tuple[int, int] | None) -> None:
    street = clean_text(event.street)[:TEXT_MAX]
    side = str((event.lanes or {}).get("side", ""))
    if not street and counts is None:
        return
    description = etree.SubElement(node, _loc("supplementaryPositionalDescription"))
    if counts is not None and side in _POSITION:
        etree.SubElement(description, _loc("positionOnCarriageway")).text = _POSITION[side]
    if counts is not None:
        carriageway = etree.SubElement(description, _loc("carriageway"))
        etree.SubElement(carriageway, _loc("carriageway")).text = "mainCarriageway"
        etree.SubElement(carriageway, _loc("originalNumberOfLanes")).text = str(counts[1])
        if side in _LANE_USAGE:  # DATEX II names the closed side, not each lane's number
            lane = etree.SubElement(carriageway, _loc("lane"))
            etree.SubElement(lane, _loc("laneUsage")).text = _LANE_USAGE[side]
    if street:
        road = etree.SubElement(description, _loc("roadInformation"))
        etree.SubElement(road, _loc("roadName")).text = street

