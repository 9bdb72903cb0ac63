"""DATEX II v3 SituationPublication, valid against the 3.7 schemas (served at `/feeds/datex2/v3/situations.xml`).

Document: a bare `d2:payload` with `xsi:type="sit:SituationPublication"` (the snapshot-pull form
NDW and DiaLog serve), namespaces under their canonical prefixes (`d2 sit com loc xsi`): DATEX II
v3 `targetClass` attributes are fixed strings such as `sit:SituationRecord`, so any other prefix
makes the document invalid.

One `sit:situation` per event, `id` = event id. Its records, `version` = event version (which the
normaliser raises on every change), ids = the event id for the main record and `{event id}-works`
for the works record a roadworks-caused closure also carries (the management record points at it
through `cause/managedCause`, as NDW does and as DATEX II → CIFS converters expect):

| event | records |
|---|---|
| CLOSURE | `RoadOrCarriagewayOrLaneManagement` `roadClosed` (+ `MaintenanceWorks`, see below) |
| LANE_CLOSURE | the same with `laneClosures`, lanes in `impact` and in the location's carriageway |
| ROADWORKS | `MaintenanceWorks` `roadworks` |
| ACCIDENT | `Accident` `accident` |
| HAZARD | `GeneralObstruction` (`objectOnTheRoad`, `spillageOnTheRoad`, … from the subtype, else `hazardsOnTheRoad`) |
| WEATHER | `PoorEnvironmentConditions` (`fog`, `heavyRain`, … from the subtype, else `badWeather`) |
| JAM | `AbnormalTraffic` (`stationaryTraffic`, `queuingTraffic`, `slowTraffic`, `heavyTraffic`) |
| POLICE, OTHER | withheld: police sightings are not road information; "other" has no honest record type |

A traffic-regulation measure (`event.measure`) other than a closure is written by its type:

| measure | record |
|---|---|
| alternate_traffic | `RoadOrCarriagewayOrLaneManagement` `singleAlternateLineTraffic` |
| no_overtaking | `GeneralInstructionOrMessageToRoadUsers` `noOvertaking` |
| speed_limit | `SpeedManagement` `speedRestrictionInOperation`, `temporarySpeedLimit` = the limit |
| vehicle_restriction | `RoadOrCarriagewayOrLaneManagement` (`weightRestrictionInOperation`, …) for the vehicles |

A vehicle restriction's vehicles are its `forVehiclesWithCharacteristicsOf`
(`traffic_hub.feeds.datex2_vehicles`); its exemptions are said in the regulations feed only.
| detour | `ReroutingManagement` `followDiversionSigns` at the detour's own geometry |

Each carries the works record behind it when road works cause it, as closures do.

Locations by coordinates: a point → `loc:PointLocation/pointByCoordinates`; a line →
`loc:LinearLocation/gmlLineString` (`posList` is **lat lon** for EPSG:4326); a multi-line →
`loc:LocationGroupByList` of linear locations. The street is the location's `roadInformation`.
An event the normaliser could not place on the loaded road network (beyond its coverage, or no
road there) is published at the place its source drew, with a `locationDescription` saying that
place is not verified (`UNVERIFIED_PLACE`); Waze gets nothing of it (its gate needs the segments).
Validity: `overallStartTime`/`overallEndTime`, and a weekly schedule as one `validPeriod` per
group of weekdays sharing the same windows (`recurringTimePeriodOfDay` + `recurringDayWeekMonthPeriod`,
local times). Sources: the record's single `com:source` names every source of a conflated event;
`probabilityOfOccurrence` is `certain` unless only Waze users reported it and no operator confirmed it
(then `probable`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from traffic_hub.feeds.base import XML_DECLARATION, FeedContext, Item, Shell, status_reasons
from traffic_hub.feeds.datex2_vehicles import characteristics
from traffic_hub.feeds.validation import geometry_reasons, lane_counts, lane_reasons, line_parts
from traffic_hub.feeds.waze_incident import clean_text, local_time
from traffic_hub.model import Cause, Event, EventType, Measure, MeasureType, Schedule, Validity, Vehicles
from traffic_hub.model.geometry import Point
from traffic_hub.model.validity import WEEKDAYS

__all__ = ["Datex2Situations", "SituationShell", "check_datex2", "render_datex2"]

PUBLICATION_KEY = "datex2"

D2 = "http://datex2.eu/schema/3/d2Payload"
SIT = "http://datex2.eu/schema/3/situation"
COM = "http://datex2.eu/schema/3/common"
LOC = "http://datex2.eu/schema/3/locationReferencing"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
LANG = "fr"
TEXT_MAX = 1024  # com:String and MultilingualStringValueType maxLength

_AUTHORITY_PREFIXES = ("roadworks:", "operator")
_ORDER_SUFFIX = "-regulation"  # report kinds of orders: `dialog-regulation`, `datex2-regulation`
_CROWD_PREFIX = "waze"
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

Leaf = tuple[str, str]  # (element name with its canonical prefix, text)


@dataclass(frozen=True, slots=True)
class Record:
    """One `sit:situationRecord`: its id, `xsi:type`, optional cause and type-specific children."""

    id: str
    xsi_type: str
    leaves: tuple[Leaf, ...]  # after locationReference, in XSD order
    managed_cause: str | None = None  # id of the record that causes this one (the works behind a closure)
    lanes: bool = False  # carries the lane impact
    vehicles: Vehicles | None = None  # whom a network management applies to (`forVehiclesWithCharacteristicsOf`)

    def ordered(self, vehicles: list[Leaf]) -> list[Leaf]:
        """The leaves with `vehicles` (the characteristics, already written) where NetworkManagement wants them."""
        common = [leaf for leaf in self.leaves if leaf[0].removeprefix("sit:") in _NETWORK_MANAGEMENT]
        rest = [leaf for leaf in self.leaves if leaf[0].removeprefix("sit:") not in _NETWORK_MANAGEMENT]
        return [*common, *vehicles, *rest]


_NETWORK_MANAGEMENT = frozenset({"complianceOption", "applicableForTrafficDirection"})
MANAGEMENT_TYPES = frozenset(
    {
        "sit:RoadOrCarriagewayOrLaneManagement",
        "sit:SpeedManagement",
        "sit:GeneralInstructionOrMessageToRoadUsers",
        "sit:ReroutingManagement",
    }
)


# --- the gate ---------------------------------------------------------------------------------


def check_datex2(event: Event, ctx: FeedContext) -> list[str]:
    """Reasons `event` cannot enter the DATEX II feed at `ctx.now` (empty: it can)."""
    return status_reasons(event, ctx) or _rule_reasons(event)


def _rule_reasons(event: Event) -> list[str]:
    reasons: list[str] = []
    if event.type in _WITHHELD_TYPES and event.measure is None:  # a measure has its own record type
        reasons.append(_WITHHELD_TYPES[event.type])
    if not event.id or clean_text(event.id) != event.id:
        reasons.append("the event id is empty or has characters XML cannot carry")
    reasons.extend(geometry_reasons(event.geometry))
    reasons.extend(lane_reasons(event))
    return reasons


# --- records ----------------------------------------------------------------------------------


def records_of(event: Event) -> list[Record]:
    """The situation records of `event`, main record first."""
    measure = event.measure
    if measure is not None and measure.type not in (MeasureType.ROAD_CLOSED, MeasureType.LANE_CLOSED):
        return _measure_records(event, measure)
    kind = event.type
    if kind in (EventType.CLOSURE, EventType.LANE_CLOSURE):
        return _closure_records(event)
    if kind is EventType.ROADWORKS:
        return [_works(event.id)]
    if kind is EventType.ACCIDENT:
        return [Record(event.id, "sit:Accident", (("sit:accidentType", "accident"),))]
    if kind is EventType.HAZARD:
        value = _by_subtype(event.subtype, _OBSTRUCTION, "hazardsOnTheRoad")
        return [Record(event.id, "sit:GeneralObstruction", (("sit:obstructionType", value),))]
    if kind is EventType.WEATHER:
        value = _by_subtype(event.subtype, _WEATHER, "badWeather")
        return [Record(event.id, "sit:PoorEnvironmentConditions", (("sit:poorEnvironmentType", value),))]
    if kind is EventType.JAM:
        value = _by_subtype(event.subtype, _JAM, "queuingTraffic")
        return [Record(event.id, "sit:AbnormalTraffic", (("sit:abnormalTrafficType", value),))]
    return []


def _closure_records(event: Event) -> list[Record]:
    lane_closure = event.type is EventType.LANE_CLOSURE
    management = "laneClosures" if lane_closure else "roadClosed"
    leaves = (("sit:roadOrCarriagewayOrLaneManagementType", management),)
    return _managed(event, "sit:RoadOrCarriagewayOrLaneManagement", leaves, lanes=lane_closure)


def _managed(
    event: Event, xsi_type: str, leaves: tuple[Leaf, ...], *, lanes: bool = False, vehicles: Vehicles | None = None
) -> list[Record]:
    """A network-management record (mandatory, in the event's directions), and the works behind it."""
    works = event.cause is Cause.ROADWORKS
    common: list[Leaf] = [("sit:complianceOption", "mandatory")]
    if event.direction.value == "ONE_DIRECTION":
        common.append(("sit:applicableForTrafficDirection", "aligned"))
    elif event.direction.value == "BOTH_DIRECTIONS":
        common.append(("sit:applicableForTrafficDirection", "bothWays"))
    main = Record(
        event.id,
        xsi_type,
        (*common, *leaves),
        managed_cause=event.id + _WORKS_SUFFIX if works else None,
        lanes=lanes,
        vehicles=vehicles,
    )
    return [main, _works(event.id + _WORKS_SUFFIX)] if works else [main]


def _measure_records(event: Event, measure: Measure) -> list[Record]:
    """The records of a traffic-regulation measure that is not a closure (see the module's table)."""
    kind = measure.type
    if kind is MeasureType.ALTERNATE_TRAFFIC:
        leaves: tuple[Leaf, ...] = (("sit:roadOrCarriagewayOrLaneManagementType", "singleAlternateLineTraffic"),)
        return _managed(event, "sit:RoadOrCarriagewayOrLaneManagement", leaves, lanes=True)
    if kind is MeasureType.NO_OVERTAKING:
        leaves = (("sit:generalInstructionToRoadUsersType", "noOvertaking"),)
        return _managed(event, "sit:GeneralInstructionOrMessageToRoadUsers", leaves)
    if kind is MeasureType.SPEED_LIMIT and measure.speed_kmh is not None:
        leaves = (
            ("sit:speedManagementType", "speedRestrictionInOperation"),
            ("sit:temporarySpeedLimit", f"{measure.speed_kmh:.1f}"),
        )
        return _managed(event, "sit:SpeedManagement", leaves)
    if kind is MeasureType.VEHICLE_RESTRICTION and measure.vehicles is not None:
        leaves = (("sit:roadOrCarriagewayOrLaneManagementType", restriction_type(measure.vehicles)),)
        return _managed(event, "sit:RoadOrCarriagewayOrLaneManagement", leaves, vehicles=measure.vehicles)
    if kind is MeasureType.DETOUR:
        leaves = (("sit:reroutingManagementType", "followDiversionSigns"),)
        return _managed(event, "sit:ReroutingManagement", leaves, vehicles=measure.vehicles)
    return []


def restriction_type(vehicles: Vehicles) -> str:
    """`weightRestrictionInOperation` / `heightRestrictionInOperation` for that only limit, else `roadClosed`."""
    limits = set(vehicles.limits)
    if vehicles.kinds or vehicles.critair or not limits:
        return "roadClosed"
    if limits <= {"max_weight_t", "max_axle_load_t"}:
        return "weightRestrictionInOperation"
    if limits == {"max_height_m"}:
        return "heightRestrictionInOperation"
    return "roadClosed"


def _works(record_id: str) -> Record:
    return Record(record_id, "sit:MaintenanceWorks", (("sit:roadMaintenanceType", "roadworks"),))


def _by_subtype(subtype: str | None, table: dict[str, str], default: str) -> str:
    if subtype:
        for key, value in table.items():
            if key in subtype:
                return value
    return default


# --- rendering --------------------------------------------------------------------------------
#
# Built as text, not as an lxml tree: 10 000 events make about a million elements, which lxml
# builds in seconds; joined strings take a fraction of that. Every value that is not produced
# here (ids, descriptions, street and source names) goes through `_text`/`_attr`.

_ROOT = (
    f'<d2:payload xmlns:d2="{D2}" xmlns:sit="{SIT}" xmlns:com="{COM}" xmlns:loc="{LOC}" xmlns:xsi="{XSI}"'
    f' xsi:type="sit:SituationPublication" lang="{LANG}" modelBaseVersion="3">'
)


def escape_xml(value: str) -> str:
    """`value` with &, < and > escaped (enough for element text; attributes also need quotes)."""
    if "&" in value or "<" in value or ">" in value:
        value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return value


def _text(value: str) -> str:
    return escape_xml(clean_text(value))


def _attr(value: str) -> str:
    value = _text(value)
    return value.replace('"', "&quot;") if '"' in value else value


def _leaf(name: str, text: str) -> str:
    return f"<{name}>{text}</{name}>"


def render_datex2(events: Sequence[Event], ctx: FeedContext) -> bytes:
    """The SituationPublication for `events` (already passed through the gate), sorted by event id."""
    return Datex2Situations().render(events, ctx)


def situation_xml(event: Event, records: list[Record], tz: ZoneInfo) -> str:
    """One `sit:situation` element for `event`."""
    shared = _shared(event, tz)
    parts = [
        f'<sit:situation id="{_attr(event.id)}">',
        _leaf("sit:situationVersionTime", local_time(event.updated_at, tz)),
        "<sit:headerInformation><com:informationStatus>real</com:informationStatus></sit:headerInformation>",
    ]
    parts.extend(_record(event, record, shared) for record in records)
    parts.append("</sit:situation>")
    return "".join(parts)


@dataclass(frozen=True, slots=True)
class _Shared:
    """Pieces every record of a situation repeats, built once per event."""

    head: str  # creation/version times, probability, source, validity
    comment: str
    location: str
    lanes_location: str
    impact: str


def _shared(event: Event, tz: ZoneInfo) -> _Shared:
    certain = is_certain(event)
    head = "".join(
        (
            _leaf("sit:situationRecordCreationTime", local_time(event.created_at, tz)),
            _leaf("sit:situationRecordVersionTime", local_time(event.updated_at, tz)),
            _leaf("sit:probabilityOfOccurrence", "certain" if certain else "probable"),
            _source(event, certain),
            _validity(event, tz),
        )
    )
    description = escape_xml(clean_text(event.description)[:TEXT_MAX])
    comment = (
        f'<sit:generalPublicComment><sit:comment><com:values><com:value lang="{LANG}">{description}'
        "</com:value></com:values></sit:comment></sit:generalPublicComment>"
        if description
        else ""
    )
    counts = lane_counts(event)
    impact = ""
    if counts is not None:
        restricted = _leaf("sit:numberOfLanesRestricted", str(counts[0]))
        operational = _leaf("sit:numberOfOperationalLanes", str(counts[1] - counts[0]))
        impact = _leaf("sit:impact", restricted + operational)
    return _Shared(
        head=head,
        comment=comment,
        location=location_xml(event, None),
        lanes_location=location_xml(event, counts) if counts is not None else "",
        impact=impact,
    )


def _record(event: Event, record: Record, shared: _Shared) -> str:
    lanes = record.lanes and bool(shared.impact)
    vehicles = characteristics(record.vehicles) if record.vehicles is not None else []
    wanted = [("sit:forVehiclesWithCharacteristicsOf", content) for content in vehicles]
    leaves = "".join(_leaf(name, text) for name, text in record.ordered(wanted))
    return "".join(
        (
            f'<sit:situationRecord id="{_attr(record.id)}" version="{event.version}" xsi:type="{record.xsi_type}">',
            shared.head,
            shared.impact if lanes else "",
            _cause(event, record),
            shared.comment,
            shared.lanes_location if lanes else shared.location,
            leaves,
            "</sit:situationRecord>",
        )
    )


def is_authority(source: str, kind: str) -> bool:
    """A road authority's word: a road-works team, an operator, or a traffic-regulation order."""
    return source.startswith(_AUTHORITY_PREFIXES) or kind.endswith(_ORDER_SUFFIX)


def is_certain(event: Event) -> bool:
    """Certain unless only crowd reports (Waze users) back it and no operator confirmed it."""
    return event.verification == "confirmed" or any(
        not report.source.startswith(_CROWD_PREFIX) and not report.kind.startswith(_CROWD_PREFIX)
        for report in event.sources
    )


def _source(event: Event, certain: bool) -> str:
    """`com:source`: every source's name; road authorities when a road-works team, an operator or an
    authority's traffic-regulation order (relayed by the national base or a DATEX II connector) said it."""
    names = ", ".join(dict.fromkeys(name for report in event.sources if (name := clean_text(report.source))))
    authority = any(is_authority(report.source, report.kind) for report in event.sources)
    return "".join(
        (
            "<sit:source>",
            _leaf("com:sourceIdentification", escape_xml(names[:TEXT_MAX])) if names else "",
            _leaf("com:sourceType", "roadAuthorities" if authority else "otherInformation"),
            _leaf("com:reliable", "true" if certain else "false"),
            "</sit:source>",
        )
    )


def _validity(event: Event, tz: ZoneInfo) -> str:
    return f"<sit:validity>{validity_content(event.validity, tz)}</sit:validity>"


def validity_content(validity: Validity, tz: ZoneInfo) -> str:
    """The content of a `com:Validity`: overall period, weekly windows, excepted days (holidays, weekends, dates)."""
    parts = [
        "<com:validityStatus>definedByValidityTimeSpec</com:validityStatus>",
        "<com:validityTimeSpecification>",
        _leaf("com:overallStartTime", local_time(validity.starts_at, tz)),
    ]
    if validity.ends_at is not None:
        parts.append(_leaf("com:overallEndTime", local_time(validity.ends_at, tz)))
    if validity.schedule is not None:
        parts.extend(_valid_period(days, windows) for days, windows in schedule_groups(validity.schedule))
        parts.extend(exception_periods(validity.schedule))
    parts.append("</com:validityTimeSpecification>")
    return "".join(parts)


def exception_periods(schedule: Schedule) -> list[str]:
    """`com:exceptionPeriod`s of a schedule's excepted days: public holidays, weekends, given dates."""
    excepted = schedule.except_
    if excepted is None:
        return []
    out = []
    if excepted.public_holidays:
        out.append(
            "<com:exceptionPeriod><com:recurringSpecialDay><com:intersectWithApplicableDays>false"
            "</com:intersectWithApplicableDays><com:specialDayType>publicHoliday</com:specialDayType>"
            "</com:recurringSpecialDay></com:exceptionPeriod>"
        )
    if excepted.weekends:
        out.append(
            "<com:exceptionPeriod><com:recurringDayWeekMonthPeriod><com:applicableDay>saturday</com:applicableDay>"
            "<com:applicableDay>sunday</com:applicableDay></com:recurringDayWeekMonthPeriod></com:exceptionPeriod>"
        )
    for day in excepted.dates:
        out.append(
            f"<com:exceptionPeriod>{_leaf('com:startOfPeriod', f'{day.isoformat()}T00:00:00')}"
            f"{_leaf('com:endOfPeriod', f'{day.isoformat()}T23:59:59')}</com:exceptionPeriod>"
        )
    return out


def schedule_groups(schedule: Schedule) -> list[tuple[list[str], list[str]]]:
    """Weekdays grouped by identical windows: [(["monday", "tuesday"], ["08:00-12:00"]), …]."""
    groups: dict[tuple[str, ...], list[str]] = {}
    for day in WEEKDAYS:
        windows = tuple(schedule.windows(day))
        if windows:
            groups.setdefault(windows, []).append(day)
    return [(days, list(windows)) for windows, days in groups.items()]


def _valid_period(days: list[str], windows: list[str]) -> str:
    """One `com:validPeriod`: the windows (local times of day) on the given weekdays."""
    parts = ["<com:validPeriod>"]
    for window in windows:
        start, end = window.split("-")
        parts.append(
            "<com:recurringTimePeriodOfDay>"
            f"{_leaf('com:startTimeOfPeriod', start + ':00')}{_leaf('com:endTimeOfPeriod', end + ':00')}"
            "</com:recurringTimePeriodOfDay>"
        )
    parts.append("<com:recurringDayWeekMonthPeriod>")
    parts.extend(_leaf("com:applicableDay", day) for day in days)
    parts.append("</com:recurringDayWeekMonthPeriod></com:validPeriod>")
    return "".join(parts)


def _cause(event: Event, record: Record) -> str:
    """`sit:cause` of a management record: the cause type, and the works record it manages."""
    if record.xsi_type not in MANAGEMENT_TYPES:
        return ""
    cause_type = _CAUSE_TYPE.get(event.cause)
    if cause_type is None and record.managed_cause is None:
        return ""
    parts = ["<sit:cause>"]
    if cause_type is not None:
        parts.append(_leaf("sit:causeType", cause_type))
    if record.managed_cause is not None:
        parts.append(
            "<sit:managedCause>"
            f'<sit:objectReference id="{_attr(record.managed_cause)}" targetClass="sit:SituationRecord"'
            f' version="{event.version}"/></sit:managedCause>'
        )
    parts.append("</sit:cause>")
    return "".join(parts)


def location_xml(event: Event, counts: tuple[int, int] | None, element: str = "sit:locationReference") -> str:
    """The event's place as a DATEX II v3 location reference named `element` (lanes when `counts`)."""
    geometry = event.geometry
    supplementary = _supplementary(event, counts)
    if isinstance(geometry, Point):
        lon, lat = geometry.coordinates[0], geometry.coordinates[1]
        return (
            f'<{element} xsi:type="loc:PointLocation">{supplementary}'
            "<loc:pointByCoordinates><loc:pointCoordinates>"
            f"{_leaf('loc:latitude', f'{lat:.6f}')}{_leaf('loc:longitude', f'{lon:.6f}')}"
            f"</loc:pointCoordinates></loc:pointByCoordinates></{element}>"
        )
    parts = line_parts(geometry)
    if len(parts) == 1:
        linear = _linear(parts[0], supplementary)
        return f'<{element} xsi:type="loc:LinearLocation">{linear}</{element}>'
    members = "".join(
        f'<loc:locationContainedInGroup xsi:type="loc:LinearLocation">{_linear(part, supplementary)}'
        "</loc:locationContainedInGroup>"
        for part in parts
    )
    return f'<{element} xsi:type="loc:LocationGroupByList">{members}</{element}>'


def _linear(points: list[tuple[float, float]], supplementary: str) -> str:
    return (
        f'{supplementary}<loc:gmlLineString srsName="EPSG:4326">'
        f"{_leaf('loc:posList', pos_list(points))}</loc:gmlLineString>"
    )


def pos_list(points: list[tuple[float, float]]) -> str:
    """GML posList for EPSG:4326: `lat lon` pairs (latitude first), 6 decimals, repeats dropped."""
    pairs: list[str] = []
    for lon, lat in points:
        pair = f"{lat:.6f} {lon:.6f}"
        if not pairs or pairs[-1] != pair:
            pairs.append(pair)
    return " ".join(pairs)


UNVERIFIED_PLACE = "tracé de la source, non vérifié sur le réseau routier chargé"


def is_placed(event: Event) -> bool:
    """False when the normaliser could not place the event on the loaded road network (its drawn place is
    published as it is, marked unverified); True when placed or when nobody tried (no `normalised`)."""
    return event.normalised is None or event.normalised.matched


def _supplementary(event: Event, counts: tuple[int, int] | None) -> str:
    """The street as `roadInformation`; for a lane closure, the side and the carriageway's lanes; off the
    loaded road network, a `locationDescription` saying the place is as drawn, not verified."""
    street = escape_xml(clean_text(event.street)[:TEXT_MAX])
    side = str((event.lanes or {}).get("side", ""))
    unverified = not is_placed(event)
    if not street and counts is None and not unverified:
        return ""
    parts = ["<loc:supplementaryPositionalDescription>"]
    if unverified:
        parts.append(
            f'<loc:locationDescription><com:values><com:value lang="{LANG}">{UNVERIFIED_PLACE}</com:value>'
            "</com:values></loc:locationDescription>"
        )
    if counts is not None:
        if side in _POSITION:
            parts.append(_leaf("loc:positionOnCarriageway", _POSITION[side]))
        parts.append("<loc:carriageway><loc:carriageway>mainCarriageway</loc:carriageway>")
        parts.append(_leaf("loc:originalNumberOfLanes", str(counts[1])))
        if side in _LANE_USAGE:  # DATEX II names the closed side, not each lane's number
            parts.append(f"<loc:lane>{_leaf('loc:laneUsage', _LANE_USAGE[side])}</loc:lane>")
        parts.append("</loc:carriageway>")
    if street:
        parts.append(f"<loc:roadInformation>{_leaf('loc:roadName', street)}</loc:roadInformation>")
    parts.append("</loc:supplementaryPositionalDescription>")
    return "".join(parts)


# --- the renderers ----------------------------------------------------------------------------


class SituationShell(Shell):
    """What DATEX II v3 and v2.3 share: the key "datex2", the gate, one situation per event with records.

    A version says how a situation is written (`situation`), what opens the document after the XML
    declaration (`opening`) and what closes it (`closing`).
    """

    name: str = PUBLICATION_KEY
    media_type: str = "application/xml"
    gate = staticmethod(check_datex2)
    closing: bytes

    def situation(self, event: Event, records: list[Record], tz: ZoneInfo) -> str:
        raise NotImplementedError

    def opening(self, ctx: FeedContext, tz: ZoneInfo) -> tuple[str, ...]:
        raise NotImplementedError

    def item(self, event: Event, ctx: FeedContext) -> Item:
        records = records_of(event)
        return Item(self.situation(event, records, ZoneInfo(ctx.timezone)).encode() if records else b"")

    def head(self, ctx: FeedContext, sources: Sequence[str]) -> bytes:
        return "".join((XML_DECLARATION, *self.opening(ctx, ZoneInfo(ctx.timezone)))).encode()

    def tail(self, ctx: FeedContext) -> bytes:
        return self.closing


class Datex2Situations(SituationShell):
    """DATEX II v3 SituationPublication (valid against the 3.7 schemas)."""

    closing = b"</d2:payload>"

    def situation(self, event: Event, records: list[Record], tz: ZoneInfo) -> str:
        return situation_xml(event, records, tz)

    def opening(self, ctx: FeedContext, tz: ZoneInfo) -> tuple[str, ...]:
        creator = clean_text(ctx.publisher_id)[:TEXT_MAX] or "MEL"
        return (
            _ROOT,
            _leaf("com:publicationTime", local_time(ctx.timestamp, tz)),
            "<com:publicationCreator><com:country>FR</com:country>",
            _leaf("com:nationalIdentifier", escape_xml(creator)),
            "</com:publicationCreator>",
        )
