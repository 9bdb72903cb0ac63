"""DATEX II v2.3 SituationPublication for legacy French consumers (suggested path `/feeds/datex2/v2/situations.xml`).

Bison Futé/Tipi and most French road operators still exchange DATEX II 2.2/2.3: one namespace
(`http://datex2.eu/schema/2/2_0`, default prefix), root `d2LogicalModel` with `exchange` and a
`payloadPublication xsi:type="SituationPublication"`. Valid against the vendored
`schemas/datex2-2.3/DATEXIISchema_2_2_3.xsd`.

Same situations, records, ids, versions and gate as the v3 feed (`traffic_hub.feeds.datex2`): it
publishes under the same key "datex2", so an event is in both or in neither. What v2.3 cannot say:
- Lines: v2.3 has no GML line; a line is a `Linear` location with a TPEG segment from its first to
  its last point (`TpegNonJunctionPoint`s with coordinates, named after the street), which loses
  the intermediate vertices; `locationForDisplay` is the first point. A multi-line event is a
  `NonOrderedLocationGroupByList` of such segments.
- Directions: `tpegDirection` is `bothWays`, the compass direction of a one-direction line
  (`eastBound`…), or `unknown`.
- Causes: the works behind a roadworks closure are a `ManagedCause` reference (as in v3); other
  causes are a `NonManagedCause` when v2.3 has a word for them (accident, obstruction).
- Lanes: `affectedCarriagewayAndLanes` names the closed side; counts are in `impact`.
- Measures: the v3 records (alternating traffic, no overtaking, speed, vehicle restrictions,
  detours) in their 2.3 names; a restriction's vehicles without Crit'Air classes (2.3 has no
  emission classes). A ban by Crit'Air class alone would read as a closure for all: it is left out
  of the 2.3 document (the v3 one carries it).
"""

from __future__ import annotations

from collections.abc import Sequence
from zoneinfo import ZoneInfo

from traffic_hub.feeds.base import FeedContext
from traffic_hub.feeds.datex2 import (
    LANG,
    MANAGEMENT_TYPES,
    TEXT_MAX,
    Record,
    SituationShell,
    escape_xml,
    is_authority,
    is_certain,
    schedule_groups,
)
from traffic_hub.feeds.datex2_vehicles import characteristics
from traffic_hub.feeds.validation import lane_counts, line_parts
from traffic_hub.feeds.waze_incident import clean_text, local_time
from traffic_hub.feeds.wzdx import compass
from traffic_hub.model import Cause, Direction, Event
from traffic_hub.model.geometry import Point

__all__ = ["Datex2V2Situations", "render_datex2_v2"]

D2_V2 = "http://datex2.eu/schema/2/2_0"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
_ROOT = f'<d2LogicalModel xmlns="{D2_V2}" xmlns:xsi="{XSI}" modelBaseVersion="2">'
_LANE = {"LEFT": "leftLane", "MIDDLE": "middleLane", "RIGHT": "rightLane"}
_COMPASS = {"northbound": "northBound", "eastbound": "eastBound", "southbound": "southBound", "westbound": "westBound"}
_CAUSE = {Cause.ACCIDENT: "accident", Cause.HAZARD: "obstruction"}
_NOT_IN_V2 = {"nearbyFlooding": "badWeather"}  # v3 values the 2.3 enumerations lack
_UNNAMED = "voie sans nom"


class Datex2V2Situations(SituationShell):
    """DATEX II v2.3 SituationPublication (`d2LogicalModel`), for consumers not yet on v3."""

    closing = b"</payloadPublication></d2LogicalModel>"

    def situation(self, event: Event, records: list[Record], tz: ZoneInfo) -> str:
        if any(_critair_only(record) for record in records):
            return ""
        return _situation(event, records, tz)

    def opening(self, ctx: FeedContext, tz: ZoneInfo) -> tuple[str, ...]:
        identifier = _leaf("nationalIdentifier", escape_xml(clean_text(ctx.publisher_id)[:TEXT_MAX] or "MEL"))
        creator = f"<country>fr</country>{identifier}"
        return (
            _ROOT,
            f"<exchange><supplierIdentification>{creator}</supplierIdentification></exchange>",
            f'<payloadPublication xsi:type="SituationPublication" lang="{LANG}">',
            _leaf("publicationTime", local_time(ctx.timestamp, tz)),
            f"<publicationCreator>{creator}</publicationCreator>",
        )


def _critair_only(record: Record) -> bool:
    """A restriction 2.3 cannot say: it bans by Crit'Air class only."""
    vehicles = record.vehicles
    return vehicles is not None and bool(vehicles.critair) and not (vehicles.kinds or vehicles.limits)


def _leaf(name: str, text: str) -> str:
    return f"<{name}>{text}</{name}>"


def _attr(value: str) -> str:
    escaped = escape_xml(clean_text(value))
    return escaped.replace('"', "&quot;") if '"' in escaped else escaped


def _multilingual(text: str) -> str:
    return f'<values><value lang="{LANG}">{escape_xml(text[:TEXT_MAX])}</value></values>'


def render_datex2_v2(events: Sequence[Event], ctx: FeedContext) -> bytes:
    """The v2.3 document for `events` (already passed through the gate), sorted by event id."""
    return Datex2V2Situations().render(events, ctx)


def _situation(event: Event, records: list[Record], tz: ZoneInfo) -> str:
    head = _head(event, tz)
    counts = lane_counts(event)
    parts = [
        f'<situation id="{_attr(event.id)}" version="{event.version}">',
        _leaf("situationVersionTime", local_time(event.updated_at, tz)),
        "<headerInformation><confidentiality>noRestriction</confidentiality>"
        "<informationStatus>real</informationStatus></headerInformation>",
    ]
    for record in records:
        lanes = counts if record.lanes else None
        parts.append(_record(event, record, head, lanes))
    parts.append("</situation>")
    return "".join(parts)


def _head(event: Event, tz: ZoneInfo) -> str:
    certain = is_certain(event)
    names = ", ".join(dict.fromkeys(name for report in event.sources if (name := clean_text(report.source))))
    authority = any(is_authority(report.source, report.kind) for report in event.sources)
    return "".join(
        (
            _leaf("situationRecordCreationTime", local_time(event.created_at, tz)),
            _leaf("situationRecordVersionTime", local_time(event.updated_at, tz)),
            _leaf("probabilityOfOccurrence", "certain" if certain else "probable"),
            "<source>",
            _leaf("sourceIdentification", escape_xml(names[:TEXT_MAX])) if names else "",
            _leaf("sourceType", "roadAuthorities" if authority else "otherInformation"),
            _leaf("reliable", "true" if certain else "false"),
            "</source>",
            _validity(event, tz),
        )
    )


def _validity(event: Event, tz: ZoneInfo) -> str:
    validity = event.validity
    parts = [
        "<validity><validityStatus>definedByValidityTimeSpec</validityStatus><validityTimeSpecification>",
        _leaf("overallStartTime", local_time(validity.starts_at, tz)),
    ]
    if validity.ends_at is not None:
        parts.append(_leaf("overallEndTime", local_time(validity.ends_at, tz)))
    for days, windows in schedule_groups(validity.schedule) if validity.schedule is not None else []:
        parts.append("<validPeriod>")
        for window in windows:
            start, end = window.split("-")
            parts.append(
                '<recurringTimePeriodOfDay xsi:type="TimePeriodByHour">'
                f"{_leaf('startTimeOfPeriod', start + ':00')}{_leaf('endTimeOfPeriod', end + ':00')}"
                "</recurringTimePeriodOfDay>"
            )
        parts.append("<recurringDayWeekMonthPeriod>")
        parts.extend(_leaf("applicableDay", day) for day in days)
        parts.append("</recurringDayWeekMonthPeriod></validPeriod>")
    parts.append("</validityTimeSpecification></validity>")
    return "".join(parts)


def _record(event: Event, record: Record, head: str, counts: tuple[int, int] | None) -> str:
    kind = record.xsi_type.removeprefix("sit:")
    description = clean_text(event.description)
    return "".join(
        (
            f'<situationRecord xsi:type="{kind}" id="{_attr(record.id)}" version="{event.version}">',
            head,
            _impact(counts),
            _cause(event, record),
            f"<generalPublicComment><comment>{_multilingual(description)}</comment></generalPublicComment>"
            if description
            else "",
            _locations(event, counts),
            "".join(_leaf(name, value) for name, value in _leaves(record)),
            "</situationRecord>",
        )
    )


def _leaves(record: Record) -> list[tuple[str, str]]:
    """The record's type-specific children in v2.3 words (no `aligned` direction in 2.3)."""
    out: list[tuple[str, str]] = []
    vehicles = characteristics(record.vehicles, "", v2=True) if record.vehicles is not None else []
    for name, value in record.ordered([("forVehiclesWithCharacteristicsOf", content) for content in vehicles]):
        bare = name.removeprefix("sit:")
        if bare == "applicableForTrafficDirection" and value == "aligned":
            continue
        out.append((bare, _NOT_IN_V2.get(value, value)))
    return out


def _impact(counts: tuple[int, int] | None) -> str:
    if counts is None:
        return ""
    closed, total = counts
    return (
        f"<impact>{_leaf('numberOfLanesRestricted', str(closed))}"
        f"{_leaf('numberOfOperationalLanes', str(total - closed))}{_leaf('originalNumberOfLanes', str(total))}</impact>"
    )


def _cause(event: Event, record: Record) -> str:
    if record.xsi_type not in MANAGEMENT_TYPES:
        return ""
    if record.managed_cause is not None:
        target = f'id="{_attr(record.managed_cause)}" version="{event.version}"'
        reference = f'<managedCause targetClass="SituationRecord" {target}/>'
        return f'<cause xsi:type="ManagedCause">{reference}</cause>'
    cause_type = _CAUSE.get(event.cause)
    if cause_type is None:
        return ""
    return f'<cause xsi:type="NonManagedCause">{_leaf("causeType", cause_type)}</cause>'


def _locations(event: Event, counts: tuple[int, int] | None) -> str:
    supplementary = _supplementary(event, counts)
    geometry = event.geometry
    if isinstance(geometry, Point):
        lon, lat = geometry.coordinates[0], geometry.coordinates[1]
        return (
            f'<groupOfLocations xsi:type="Point">{supplementary}'
            f"<pointByCoordinates>{_coordinates(lon, lat)}</pointByCoordinates></groupOfLocations>"
        )
    parts = line_parts(geometry)
    if len(parts) == 1:
        return f'<groupOfLocations xsi:type="Linear">{_linear(event, parts[0], supplementary)}</groupOfLocations>'
    members = "".join(
        f'<locationContainedInGroup xsi:type="Linear">{_linear(event, part, supplementary)}</locationContainedInGroup>'
        for part in parts
    )
    return f'<groupOfLocations xsi:type="NonOrderedLocationGroupByList">{members}</groupOfLocations>'


def _coordinates(lon: float, lat: float) -> str:
    return f"<pointCoordinates>{_leaf('latitude', f'{lat:.6f}')}{_leaf('longitude', f'{lon:.6f}')}</pointCoordinates>"


def _linear(event: Event, points: list[tuple[float, float]], supplementary: str) -> str:
    """A TPEG segment from the first to the last point (2.3 has no coordinate line)."""
    (lon1, lat1), (lon2, lat2) = points[0], points[-1]
    name = escape_xml(clean_text(event.street)[:TEXT_MAX]) or _UNNAMED
    descriptor = (
        f'<name><descriptor><values><value lang="{LANG}">{name}</value></values></descriptor>'
        "<tpegOtherPointDescriptorType>linkName</tpegOtherPointDescriptorType></name>"
    )
    display = f"{_leaf('latitude', f'{lat1:.6f}')}{_leaf('longitude', f'{lon1:.6f}')}"
    return (
        f"<locationForDisplay>{display}</locationForDisplay>"
        f"{supplementary}<tpegLinearLocation>{_leaf('tpegDirection', _direction(event, points))}"
        "<tpegLinearLocationType>segment</tpegLinearLocationType>"
        f'<to xsi:type="TpegNonJunctionPoint">{_coordinates(lon2, lat2)}{descriptor}</to>'
        f'<from xsi:type="TpegNonJunctionPoint">{_coordinates(lon1, lat1)}{descriptor}</from>'
        "</tpegLinearLocation>"
    )


def _direction(event: Event, points: list[tuple[float, float]]) -> str:
    if event.direction is Direction.BOTH_DIRECTIONS:
        return "bothWays"
    if event.direction is Direction.ONE_DIRECTION and points[0] != points[-1]:
        return _COMPASS[compass(points)]
    return "unknown"


def _supplementary(event: Event, counts: tuple[int, int] | None) -> str:
    side = str((event.lanes or {}).get("side", ""))
    if counts is None or side not in _LANE:
        return ""
    return (
        "<supplementaryPositionalDescription><affectedCarriagewayAndLanes>"
        f"<carriageway>mainCarriageway</carriageway>{_leaf('lane', _LANE[side])}"
        "</affectedCarriagewayAndLanes></supplementaryPositionalDescription>"
    )
