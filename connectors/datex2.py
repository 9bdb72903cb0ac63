"""DATEX II SituationPublication, v2.x (`d2LogicalModel`) and v3.x (`d2:payload` or `mc:messageContainer`),
and v3 TrafficRegulationPublication (traffic-regulation orders, `connectors.datex2_regulation`).

Elements are found by local name, so any namespace prefix (and v2's default namespace) works.
Each situation record is one report, keyed by the record id with its version; when one payload
repeats a record, the highest version wins. `validityStatus` `suspended` or an `overallEndTime`
at or before the reception time marks the record ended.

A TrafficRegulationPublication's orders become measure reports (kind `datex2-regulation`, see
`connectors.datex2_measures`). A document holding only regulations is a snapshot: it lists every
order in force, so an order missing from the next one has ended.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import partial

from connectors.base import ParseContext, Parsed, PayloadError
from connectors.datex2_location import direction, location_of, road_name, shape
from connectors.datex2_measures import regulation_reports
from connectors.datex2_regulation import is_regulation_publication
from connectors.items import collect
from connectors.values import ItemError, number, optional_time, small
from connectors.xml_find import Element, child, child_text, children, descendant_text, descendants, local, raw, xsi_type
from connectors.xml_safety import parse_xml
from traffic_hub.model import Cause, EventType, IncidentReport, Validity

KIND = "datex2"
_WORKS = (EventType.ROADWORKS, Cause.ROADWORKS)
_OBSTRUCTION = (EventType.HAZARD, Cause.HAZARD)
_CONDITIONS = (EventType.WEATHER, Cause.HAZARD)
RECORD_TYPES: dict[str, tuple[EventType, Cause]] = {
    "Accident": (EventType.ACCIDENT, Cause.ACCIDENT),
    "MaintenanceWorks": _WORKS,
    "ConstructionWorks": _WORKS,
    "Roadworks": _WORKS,
    "AbnormalTraffic": (EventType.JAM, Cause.OTHER),
    "VehicleObstruction": _OBSTRUCTION,
    "GeneralObstruction": _OBSTRUCTION,
    "AnimalPresenceObstruction": _OBSTRUCTION,
    "EnvironmentalObstruction": _OBSTRUCTION,
    "InfrastructureDamageObstruction": _OBSTRUCTION,
    "EquipmentOrSystemFault": _OBSTRUCTION,
    "NonWeatherRelatedRoadConditions": _OBSTRUCTION,
    "WeatherRelatedRoadConditions": _CONDITIONS,
    "PoorEnvironmentConditions": _CONDITIONS,
    "PublicEvent": (EventType.OTHER, Cause.EVENT),
    "DisturbanceActivity": (EventType.OTHER, Cause.EVENT),
    "RoadOrCarriagewayOrLaneManagement": (EventType.LANE_CLOSURE, Cause.OTHER),
}
# roadOrCarriagewayOrLaneManagementType values that close the road (others restrict lanes).
FULL_CLOSURES = frozenset({"roadClosed", "carriagewayClosures"})
CAUSE_TYPES: dict[str, Cause] = {
    "roadMaintenance": Cause.ROADWORKS,
    "constructionWork": Cause.ROADWORKS,
    "accident": Cause.ACCIDENT,
    "publicEvent": Cause.EVENT,
    "obstruction": Cause.HAZARD,
    "poorWeather": Cause.HAZARD,
    "environmentalObstruction": Cause.HAZARD,
    "infrastructureDamageObstruction": Cause.HAZARD,
}
_DETAILS = (
    "roadOrCarriagewayOrLaneManagementType",
    "accidentType",
    "roadMaintenanceType",
    "constructionWorkType",
    "abnormalTrafficType",
    "vehicleObstructionType",
    "obstructionType",
    "poorEnvironmentType",
    "publicEventType",
    "speedManagementType",
    "reroutingManagementType",
    "generalNetworkManagementType",
)
PROBABILITY = {"certain": 1.0, "probable": 0.7, "riskOf": 0.3}
_READ = frozenset({"SituationPublication"})


@dataclass(frozen=True, slots=True)
class _Record:
    element: Element
    situation_id: str
    situation_version: str | None
    model: str  # "2" or "3"


class Datex2Parser:
    kind = KIND

    def parse(self, payload: bytes, ctx: ParseContext) -> Parsed:
        root = parse_xml(payload)
        publications, model = _publications(root)
        situations = [p for p in publications if not is_regulation_publication(p)]
        records = _latest_versions([r for p in situations for r in _records(p, model)])
        incidents, rejects = collect(records, partial(_report, ctx=ctx), lambda r: raw(r.element), _record_id)
        regulations = [p for p in publications if is_regulation_publication(p)]
        if regulations:
            found = regulation_reports(regulations, ctx)
            incidents, rejects = incidents + found.incidents, rejects + found.rejects
        return Parsed(incidents=incidents, rejects=rejects, snapshot=bool(regulations) and not situations)


def publications_of(root: Element) -> tuple[list[Element], str]:
    """The document's SituationPublications and TrafficRegulationPublications, and its model ("2" or "3")."""
    return _publications(root)


def _publications(root: Element) -> tuple[list[Element], str]:
    name = local(root)
    if name == "d2LogicalModel":
        candidates, model = children(root, "payloadPublication"), "2"
    elif name == "messageContainer":
        candidates, model = children(root, "payload"), "3"
    elif name == "payload":
        candidates, model = [root], "3"
    else:
        raise PayloadError(f"not a DATEX II document: root element is <{name}>")
    found = [p for p in candidates if xsi_type(p) in _READ or (model == "3" and is_regulation_publication(p))]
    if not found:
        kinds = ", ".join(sorted({xsi_type(p) or "untyped" for p in candidates})) or "none"
        raise PayloadError(
            f"no SituationPublication or TrafficRegulationPublication in the DATEX II document (publications: {kinds})"
        )
    return found, model


def _records(publication: Element, model: str) -> list[_Record]:
    return [
        _Record(record, situation.get("id") or "", situation.get("version"), model)
        for situation in children(publication, "situation")
        for record in children(situation, "situationRecord")
    ]


def _latest_versions(records: list[_Record]) -> list[_Record]:
    """One record per id: the highest version (numeric when both are numbers); order kept."""
    best: dict[str, _Record] = {}
    for record in records:
        key = record.element.get("id") or f"#{id(record)}"
        current = best.get(key)
        if current is None or _version_key(record) > _version_key(current):
            best[key] = record
    return [r for r in records if best.get(r.element.get("id") or f"#{id(r)}") is r]


def _version_key(record: _Record) -> tuple[float, str]:
    version = record.element.get("version") or ""
    value = number(version)
    return (value if value is not None else -1.0, version)


def _record_id(record: _Record) -> str:
    return record.element.get("id") or ""


def _report(record: _Record, ctx: ParseContext) -> IncidentReport:
    element = record.element
    record_id = (element.get("id") or "").strip()
    if not record_id:
        raise ItemError("situation record without id")
    record_type = xsi_type(element) or "SituationRecord"
    detail = _detail(element)
    event_type, cause = _classify(element, record_type, detail)
    status, starts, ends = _validity(element, ctx.received_at)
    location = location_of(element)
    version_time = optional_time(child_text(element, "situationRecordVersionTime"), "situationRecordVersionTime")
    probability = child_text(element, "probabilityOfOccurrence")
    return IncidentReport(
        source=ctx.source,
        kind="datex2-record",
        source_id=record_id[:200],
        source_version=element.get("version"),
        type=event_type,
        subtype=detail or record_type,
        cause=cause,
        description=_comment(element) or _label(record_type, detail),
        geometry=shape(location),
        direction=direction(location),
        street=road_name(location),
        validity=Validity(starts_at=starts, ends_at=ends),
        lanes=_lanes(element),
        ended=status == "suspended" or (ends is not None and ends <= ctx.received_at),
        observed_at=version_time,
        reliability=PROBABILITY.get(probability or ""),
        said=small(
            {
                "datex2": record.model,
                "situation_id": record.situation_id,
                "situation_version": record.situation_version,
                "record_type": record_type,
                "record_version": element.get("version"),
                "detail": detail,
                "validity_status": status,
                "probability": probability,
                "severity": child_text(element, "severity"),
                "version_time": None if version_time is None else version_time.isoformat(),
            }
        ),
    )


def _detail(element: Element) -> str | None:
    for name in _DETAILS:
        value = child_text(element, name)
        if value:
            return value[:100]
    return None


def _classify(element: Element, record_type: str, detail: str | None) -> tuple[EventType, Cause]:
    event_type, cause = RECORD_TYPES.get(record_type, (EventType.OTHER, Cause.OTHER))
    if record_type == "RoadOrCarriagewayOrLaneManagement" and detail in FULL_CLOSURES:
        event_type = EventType.CLOSURE
    if cause is Cause.OTHER:
        cause_element = child(element, "cause")
        cause_type = None if cause_element is None else descendant_text(cause_element, "causeType")
        managed = cause_element is not None and any(True for _ in descendants(cause_element, "managedCause"))
        cause = CAUSE_TYPES.get(cause_type or "", Cause.ROADWORKS if managed else Cause.OTHER)
    return event_type, cause


def _validity(element: Element, now: datetime) -> tuple[str | None, datetime, datetime | None]:
    validity = child(element, "validity")
    status = child_text(validity, "validityStatus")
    spec = child(validity, "validityTimeSpecification")
    starts = optional_time(child_text(spec, "overallStartTime"), "overallStartTime")
    ends = optional_time(child_text(spec, "overallEndTime"), "overallEndTime")
    if starts is None:
        created = child_text(element, "situationRecordCreationTime")
        starts = optional_time(created, "situationRecordCreationTime") or now
    return status, starts, ends


def _comment(element: Element) -> str | None:
    for comment in children(element, "generalPublicComment"):
        if child_text(comment, "commentType") in (None, "description"):
            text = descendant_text(comment, "value")
            if text:
                return text[:2000]
    return None


def _lanes(element: Element) -> dict[str, int] | None:
    impact = child(element, "impact")
    if impact is None:
        return None
    closed = number(child_text(impact, "numberOfLanesRestricted"))
    total = number(descendant_text(element, "originalNumberOfLanes"))
    lanes = {key: int(value) for key, value in (("closed", closed), ("total", total)) if value is not None}
    return lanes or None


def _label(record_type: str, detail: str | None) -> str:
    return f"{record_type}: {detail}" if detail else record_type
