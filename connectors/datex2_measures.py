"""Traffic-regulation measures (`connectors.datex2_regulation`) as the incident reports connectors publish.

Why apart from the reading: the DATEX II connector (any `TrafficRegulationPublication`) and the
national-base connector (`dialog`, which also keeps only the orders in MEL) publish the same
reports; only the report `kind` and the filter differ. One order makes one report per regulation
and place, keyed `{order id}/{regulation}/{place}`, versioned by the order's version.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from connectors.base import ParseContext, PayloadError, Reject
from connectors.datex2_location import Shape
from connectors.datex2_regulation import (
    ALTERNATE_TRAFFIC,
    LANE_CLOSED,
    MAX_ORDERS,
    NO_OVERTAKING,
    ROAD_CLOSED,
    SPEED_LIMIT,
    VEHICLE_RESTRICTION,
    Period,
    RegulationMeasure,
    all_places,
    measures_of,
    order_id,
    orders,
)
from connectors.items import MAX_RAW, collect
from connectors.values import ItemError, small
from connectors.xml_find import Element, raw
from traffic_hub.model import (
    Cause,
    CritAir,
    Direction,
    EventType,
    Exemption,
    IncidentReport,
    Measure,
    MeasureType,
    Schedule,
    Validity,
    VehicleKind,
    Vehicles,
)

REPORT_KIND = "datex2-regulation"

# The event type each measure type is carried as by feeds that know only event types (as for the
# teams' measures, traffic_hub.normaliser.closures: an order's cause is not known, so no "roadworks").
EVENT_TYPES = {
    ROAD_CLOSED: EventType.CLOSURE,
    LANE_CLOSED: EventType.LANE_CLOSURE,
    ALTERNATE_TRAFFIC: EventType.LANE_CLOSURE,
}
LABELS = {
    ROAD_CLOSED: "route barrée",
    LANE_CLOSED: "voie fermée",
    ALTERNATE_TRAFFIC: "circulation alternée",
    NO_OVERTAKING: "interdiction de dépasser",
    SPEED_LIMIT: "limitation de vitesse",
    VEHICLE_RESTRICTION: "restriction de circulation",
}

Keep = Callable[[Shape], bool]


@dataclass(frozen=True, slots=True)
class Regulations:
    incidents: list[IncidentReport]
    rejects: list[Reject]
    dropped: int  # measures (and unusable orders) the filter did not keep, e.g. outside MEL


def regulation_reports(
    publications: list[Element], ctx: ParseContext, *, kind: str = REPORT_KIND, keep: Keep | None = None
) -> Regulations:
    """The reports of the measures of every order of `publications` whose place `keep` accepts (all by default).

    An order none of whose regulations can be used is a reject only when one of its places is kept
    (the national base's orders elsewhere in France are none of our business, usable or not).
    """
    all_orders = [order for publication in publications for order in orders(publication)]
    return reports_of_orders(all_orders, ctx, kind=kind, keep=keep)


def reports_of_orders(
    all_orders: Iterable[Element],
    ctx: ParseContext,
    *,
    kind: str = REPORT_KIND,
    keep: Keep | None = None,
    near: Callable[[Element], bool] | None = None,
) -> Regulations:
    """`regulation_reports` of orders given one by one (each may be freed once the next is asked for).

    `near`: a quick test on the raw order; an order it says no to is skipped unread (the national
    base's orders elsewhere in France)."""
    chosen = all_orders if near is None else (order for order in all_orders if near(order))
    measures, rejects = _measures(chosen, keep)
    kept = [m for m in measures if keep is None or keep(m.geometry)]
    incidents, bad = collect(kept, lambda m: measure_report(m, ctx, kind), _raw_measure, lambda m: m.source_id)
    return Regulations(incidents, [reject for reject, ours in rejects if ours] + bad, len(measures) - len(kept))


def _measures(
    all_orders: Iterable[Element], keep: Keep | None
) -> tuple[list[RegulationMeasure], list[tuple[Reject, bool]]]:
    """Every order's measures; an unusable order's reject, with whether it is ours to report."""
    measures: list[RegulationMeasure] = []
    rejects: list[tuple[Reject, bool]] = []
    for count, order in enumerate(all_orders, start=1):
        if count > MAX_ORDERS:
            raise PayloadError(f"more than the {MAX_ORDERS} traffic regulation orders the hub reads")
        try:
            measures.extend(measures_of(order))
        except ItemError as exc:
            ours = keep is None or any(keep(place) for place in all_places(order))
            reason = f"traffic regulation order: {exc}"
            reject = Reject(reason=reason, raw=raw(order)[:MAX_RAW], source_id=order_id(order))
            rejects.append((reject, ours))
    return measures, rejects


def _raw_measure(measure: RegulationMeasure) -> bytes:
    return f"{measure.source_id}: {measure.type} {measure.detail}".encode()


_KINDS = frozenset(VehicleKind)
_EXEMPTIONS = frozenset(Exemption)
_CRITAIR = frozenset(CritAir)


def canonical_measure(measure: RegulationMeasure) -> tuple[Measure, dict[str, Any]]:
    """The model's `Measure`, and what the order said that the model has no word for.

    A road closed to everyone but some users (« sauf riverains ») stays `road_closed`: the model keeps
    exemptions on restrictions only, so they are in `said` (and in the description)."""
    kind = MeasureType(measure.type)
    found = measure.vehicles
    unknown: dict[str, Any] = {
        "vehicle_kinds": [k for k in found.kinds if k not in _KINDS],
        "exemptions": [e for e in found.exempt if e not in _EXEMPTIONS] + list(found.exempt_other),
    }
    vehicles = None
    if kind is MeasureType.VEHICLE_RESTRICTION:
        vehicles = Vehicles.model_validate(
            {
                **found.limits(),
                "kinds": [k for k in found.kinds if k in _KINDS],
                "critair": [c for c in found.critair if c in _CRITAIR],
                "except": [e for e in found.exempt if e in _EXEMPTIONS],
            }
        )
        if not vehicles.bans_anything:
            kind, vehicles = MeasureType.ROAD_CLOSED, None
    else:
        unknown["exemptions"] = list(found.exempt) + list(found.exempt_other)
    if kind is MeasureType.SPEED_LIMIT and not (measure.speed_kmh and 5 <= measure.speed_kmh <= 130):
        raise ItemError(f"speed limit of {measure.speed_kmh} km/h is outside 5-130 km/h")
    speed = measure.speed_kmh if kind is MeasureType.SPEED_LIMIT else None
    return Measure(type=kind, speed_kmh=speed, vehicles=vehicles), small(unknown)


def measure_report(measure: RegulationMeasure, ctx: ParseContext, kind: str) -> IncidentReport:
    validity = _validity(measure.period, ctx.received_at)
    ended = measure.withdrawn or (validity.ends_at is not None and validity.ends_at <= ctx.received_at)
    canonical, unknown = canonical_measure(measure)
    label = LABELS.get(canonical.type.value, canonical.type.value)
    description = measure.description
    if label.lower() not in description.lower():
        description = f"{description} ({label})"
    return IncidentReport(
        source=ctx.source,
        kind=kind,
        source_id=measure.source_id[:200],
        source_version=measure.order_version,
        type=EVENT_TYPES.get(canonical.type.value, EventType.OTHER),
        subtype=canonical.type.value,
        cause=Cause.OTHER,
        description=description[:2000],
        geometry=measure.geometry,
        direction=Direction.BOTH_DIRECTIONS,
        street=measure.street,
        validity=validity,
        ended=ended,
        reliability=1.0,
        measure=canonical,
        said=small(
            {
                "regulation": measure.detail,
                "not_in_model": unknown,
                "order_id": measure.order_id,
                "order_version": measure.order_version,
                "regulation_id": measure.regulation_id,
                "order_status": measure.order_status,
                "issuing_authority": measure.authority,
                "public_url": measure.public_url,
                "origin": measure.origin,
            }
        ),
    )


def _validity(period: Period, now: datetime) -> Validity:
    starts = period.starts_at or now
    ends = period.ends_at if period.ends_at is not None and period.ends_at > starts else None
    windows: dict[str, Any] = dict(period.windows)
    if period.except_public_holidays:
        windows = {**(windows or {"daily": ["00:00-24:00"]}), "except": {"public_holidays": True}}
    schedule = Schedule.model_validate(windows) if windows else None
    return Validity(starts_at=starts, ends_at=ends, schedule=schedule)
