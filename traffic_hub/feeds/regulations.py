"""DATEX II v3 TrafficRegulationPublication of every measure (served at `/feeds/datex2/v3/regulations.xml`).

Why: the national regulation base (DiaLog) and the national access point take traffic-regulation
orders in this shape, not as situations; with it the hub can feed them directly. Valid against the
vendored 3.7 schemas (DiaLog writes 3.3: `ValidityCondition`, `SpeedLimit/maxValue`, …; here the
3.7 words are used: `TimeValidityCondition`, `MaxSpeedLimit`, `ProhibitionOfOvertaking`,
`AlternateRoadOrCarriagewayOrLaneLayout`, GML lines instead of DiaLog's GeoJSON extension).

Document: a bare `d2:payload`, `xsi:type="tro:TrafficRegulationPublication"`, the publication
time and creator, then `tro:trafficRegulationsFromCompetentAuthorities` with one
`tro:trafficRegulationOrder` per event (`id` = event id, `version` = event version). DiaLog's
shape: the order's description, issuing authority, `regulationId` (the team's reference), status
and validity; one `tro:trafficRegulation` whose condition is an `and` of the validity
(`TimeValidityCondition`, with weekly windows and excepted days), the place (`LocationCondition`)
and, for restrictions, an `or` of vehicle conditions: who is banned (`negate` false) and who is
exempted (`negate` true; residents and local access as negated `AccessCondition`s).

| measure | typeOfRegulation |
|---|---|
| road_closed | `AccessRestriction` `noEntry` |
| lane_closed | `AlternateRoadOrCarriagewayOrLaneLayout`, layout `lane`, status `closed` |
| alternate_traffic | the same, and `PriorityRule` `giveWayToOncomingVehicles` (one lane, in turn) |
| no_overtaking | `ProhibitionOfOvertaking` |
| speed_limit | `MaxSpeedLimit` (km/h) |
| vehicle_restriction | `AccessRestriction` `noEntry` for the vehicles |
| detour | `Rerouting`, at the detour's geometry |

Withheld (reported in `publication`): events that are not measures (incidents: they are in the
situations feed), and measures known only from the national base (they came from there).

An empty publication omits the container (the schema wants one order in it at least): the head
then opens a processing instruction that swallows the tail's closing tag, so head and tail stay
fixed pieces for the feed engine and the document stays well-formed and valid either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from zoneinfo import ZoneInfo

from traffic_hub.feeds.base import XML_DECLARATION, FeedContext, Item, Shell, status_reasons
from traffic_hub.feeds.datex2 import COM, D2, LOC, TEXT_MAX, XSI, escape_xml, location_xml, validity_content
from traffic_hub.feeds.datex2_vehicles import characteristics, exemptions
from traffic_hub.feeds.validation import geometry_reasons
from traffic_hub.feeds.waze_incident import clean_text, local_time
from traffic_hub.feeds.waze_withhold import from_national_base_only
from traffic_hub.model import Event, Measure, MeasureType, Status

__all__ = ["PUBLICATION_KEY", "TRO", "Datex2Regulations", "check_regulations", "render_regulations"]

PUBLICATION_KEY = "datex2-regulations"
TRO = "http://datex2.eu/schema/3/trafficRegulation"
LANG = "fr"
NOT_A_MEASURE = "not a traffic-regulation measure (incidents are in the situations feed)"
FROM_NATIONAL_BASE = "known only from the national regulation base: published there already"
_CONTAINER = "tro:trafficRegulationsFromCompetentAuthorities"
_EMPTY = "<?traffic-hub no traffic-regulation order in force: "  # swallows the tail's closing tag
_ROOT = (
    f'<d2:payload xmlns:d2="{D2}" xmlns:tro="{TRO}" xmlns:com="{COM}" xmlns:loc="{LOC}" xmlns:xsi="{XSI}"'
    f' xsi:type="tro:TrafficRegulationPublication" lang="{LANG}" modelBaseVersion="3" id="{{id}}">'
)


# --- the gate ---------------------------------------------------------------------------------


def check_regulations(event: Event, ctx: FeedContext) -> list[str]:
    """Reasons `event` cannot enter the regulations feed at `ctx.now` (empty: it can)."""
    return status_reasons(event, ctx) or _rule_reasons(event)


def _rule_reasons(event: Event) -> list[str]:
    if event.measure is None:
        return [NOT_A_MEASURE]
    if from_national_base_only(event):
        return [FROM_NATIONAL_BASE]
    reasons = geometry_reasons(event.geometry)
    if not event.id or clean_text(event.id) != event.id:
        reasons.append("the event id is empty or has characters XML cannot carry")
    return reasons


# --- one order ----------------------------------------------------------------------------------


def _leaf(name: str, text: str) -> str:
    return f"<{name}>{text}</{name}>"


def _attr(value: str) -> str:
    value = escape_xml(clean_text(value))
    return value.replace('"', "&quot;") if '"' in value else value


def _multilingual(name: str, text: str) -> str:
    value = escape_xml(clean_text(text)[:TEXT_MAX])
    return f'<{name}><com:values><com:value lang="{LANG}">{value}</com:value></com:values></{name}>'


def authority(event: Event, ctx: FeedContext) -> str:
    """Who issued the order: the authority a relayed order names, else the publisher (MEL)."""
    for report in event.sources:
        named = report.said.get("issuing_authority")
        if isinstance(named, str) and clean_text(named) and report.active:
            return clean_text(named)
    return ctx.publisher


def regulation_id(event: Event) -> str:
    """The authority's own number: the team's reference, a relayed order's number, else the event id."""
    if event.closure is not None:
        return event.closure.reference
    for report in event.sources:
        number = report.said.get("regulation_id")
        if isinstance(number, str) and clean_text(number):
            return clean_text(number)
    return event.id


def order_xml(event: Event, measure: Measure, ctx: FeedContext) -> str:
    """One `tro:trafficRegulationOrder` for `event`."""
    tz = ZoneInfo(ctx.timezone)
    active = event.status_at(ctx.now) is Status.ACTIVE
    validity = validity_content(event.validity, tz)
    conditions = [
        f'<tro:conditions xsi:type="tro:TimeValidityCondition"><tro:validityByOrder>{validity}'
        "</tro:validityByOrder></tro:conditions>",
        '<tro:conditions xsi:type="tro:LocationCondition">'
        f"{location_xml(event, None, 'tro:locationByOrder')}</tro:conditions>",
    ]
    vehicles = _vehicle_conditions(measure)
    if vehicles:
        conditions.append(
            f'<tro:conditions xsi:type="tro:ConditionSet"><tro:operator>or</tro:operator>{vehicles}</tro:conditions>'
        )
    return "".join(
        (
            f'<tro:trafficRegulationOrder id="{_attr(event.id)}" version="{event.version}">',
            _multilingual("tro:description", event.description) if clean_text(event.description) else "",
            _multilingual("tro:issuingAuthority", authority(event, ctx)),
            _leaf("tro:regulationId", escape_xml(regulation_id(event)[:TEXT_MAX])),
            _leaf("tro:status", "madeAndImplemented" if active else "madeButNotImplemented"),
            f"<tro:validityByOrder>{validity}</tro:validityByOrder>",
            f'<tro:trafficRegulation id="{_attr(event.id)}-1" version="{event.version}">',
            _leaf("tro:status", "active" if active else "scheduled"),
            _types(measure),
            '<tro:condition xsi:type="tro:ConditionSet"><tro:operator>and</tro:operator>',
            *conditions,
            "</tro:condition></tro:trafficRegulation></tro:trafficRegulationOrder>",
        )
    )


def _types(measure: Measure) -> str:
    kind = measure.type
    if kind in (MeasureType.ROAD_CLOSED, MeasureType.VEHICLE_RESTRICTION):
        return (
            '<tro:typeOfRegulation xsi:type="tro:AccessRestriction">'
            "<tro:accessRestrictionType>noEntry</tro:accessRestrictionType></tro:typeOfRegulation>"
        )
    layout = (
        '<tro:typeOfRegulation xsi:type="tro:AlternateRoadOrCarriagewayOrLaneLayout">'
        "<tro:roadOrCarriagewayOrLaneLayoutType>lane</tro:roadOrCarriagewayOrLaneLayoutType>"
        "<tro:roadOrCarriagewayOrLaneStatus>closed</tro:roadOrCarriagewayOrLaneStatus></tro:typeOfRegulation>"
    )
    if kind is MeasureType.LANE_CLOSED:
        return layout
    if kind is MeasureType.ALTERNATE_TRAFFIC:
        return (
            '<tro:typeOfRegulation xsi:type="tro:PriorityRule">'
            "<tro:priorityRuleType>giveWayToOncomingVehicles</tro:priorityRuleType></tro:typeOfRegulation>" + layout
        )
    if kind is MeasureType.NO_OVERTAKING:
        return '<tro:typeOfRegulation xsi:type="tro:ProhibitionOfOvertaking"/>'
    if kind is MeasureType.SPEED_LIMIT and measure.speed_kmh is not None:
        return (
            f'<tro:typeOfRegulation xsi:type="tro:MaxSpeedLimit">{_leaf("tro:numericalValue", str(measure.speed_kmh))}'
            "<tro:unitOfMeasure>kilometresPerHour</tro:unitOfMeasure></tro:typeOfRegulation>"
        )
    return '<tro:typeOfRegulation xsi:type="tro:Rerouting"/>'  # a detour


def _vehicle_conditions(measure: Measure) -> str:
    """Who a restriction bans (`negate` false) and who it lets through (`negate` true)."""
    vehicles = measure.vehicles
    if measure.type is not MeasureType.VEHICLE_RESTRICTION or vehicles is None:
        return ""
    parts = [_vehicle_condition(content, negate=False) for content in characteristics(vehicles)]
    exempted, access = exemptions(vehicles)
    parts.extend(_vehicle_condition(content, negate=True) for content in exempted)
    parts.extend(
        '<tro:conditions xsi:type="tro:AccessCondition"><tro:negate>true</tro:negate>'
        f"{_leaf('tro:accessConditionType', value)}</tro:conditions>"
        for value in access
    )
    return "".join(parts)


def _vehicle_condition(content: str, *, negate: bool) -> str:
    return (
        f'<tro:conditions xsi:type="tro:VehicleCondition"><tro:negate>{str(negate).lower()}</tro:negate>'
        f"<tro:vehicleCharacteristics>{content}</tro:vehicleCharacteristics></tro:conditions>"
    )


# --- the renderer -----------------------------------------------------------------------------


def render_regulations(events: Sequence[Event], ctx: FeedContext) -> bytes:
    """The publication for `events` (already passed through the gate), sorted by event id."""
    return Datex2Regulations().render(events, ctx)


class Datex2Regulations(Shell):
    """DATEX II v3 TrafficRegulationPublication (valid against the 3.7 schemas)."""

    name: str = PUBLICATION_KEY
    media_type: str = "application/xml"
    gate = staticmethod(check_regulations)

    def item(self, event: Event, ctx: FeedContext) -> Item:
        if event.measure is None:
            return Item(b"")
        # the source names the authority, so the head knows there is at least one order
        return Item(order_xml(event, event.measure, ctx).encode(), (authority(event, ctx),))

    def head(self, ctx: FeedContext, sources: Sequence[str]) -> bytes:
        tz = ZoneInfo(ctx.timezone)
        creator = escape_xml(clean_text(ctx.publisher_id)[:TEXT_MAX] or "MEL")
        return "".join(
            (
                XML_DECLARATION,
                _ROOT.format(id=f"{_attr(creator)}-regulations"),
                _leaf("com:publicationTime", local_time(ctx.timestamp, tz)),
                f"<com:publicationCreator><com:country>FR</com:country>{_leaf('com:nationalIdentifier', creator)}",
                "</com:publicationCreator>",
                f"<{_CONTAINER}>" if sources else _EMPTY,
            )
        ).encode()

    def tail(self, ctx: FeedContext) -> bytes:
        return f"</{_CONTAINER}><?traffic-hub end?></d2:payload>".encode()
