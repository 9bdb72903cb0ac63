"""DATEX II v3 `TrafficRegulationPublication` (traffic-regulation orders) read into plain measures.

Why a module of its own: the national regulation base (DiaLog) and any authority publishing its
orders in DATEX II v3 write them this way, not as situations. Both the 3.3 vocabulary DiaLog uses
(`ValidityCondition`, `SpeedLimit/maxValue/numericValue`, `GeneralInstructionToRoadUsers
noOvertaking`, `RoadOrCarriagewayOrLaneManagement singleAlternateLineTraffic`, its `dx:` extension
with a GeoJSON geometry) and the 3.7 one (`TimeValidityCondition`, `MaxSpeedLimit/numericalValue`,
`ProhibitionOfOvertaking`, `AlternateRoadOrCarriagewayOrLaneLayout`, GML lines) are read.

One order holds regulations; a regulation holds types of regulation and one condition tree. Each
(regulation, location) pair becomes one `RegulationMeasure`, so each measure sits on one place.

How the condition tree is read (DiaLog's shape: an `and` of `or` sets):
- validity: every `ValidityCondition`/`TimeValidityCondition` (the implemented validity — the real
  start and end — before the validity by order); several are one period from the earliest start to
  the latest end, their weekly windows joined; `exceptionPeriod`s on weekdays remove those days,
  on public holidays set `except_public_holidays`. Times of day are local wall-clock times: DiaLog
  writes its local times with a `+00:00` offset, and an order's "07:00-20:00" means 07:00 in France
  all year, so the offset is not applied.
- vehicles: a vehicle condition that is not negated says who the rule is for, a negated one who is
  exempted. Several restricted conditions (an `or`) are merged into one set of kinds, limits and
  classes, which the model reads as an `and` (kinds, then limits, then classes): exact for DiaLog's
  usual "lorries above 7.5 t", an approximation when one order mixes unrelated conditions. A
  weight, axle load or dimension is the limit above which the rule applies, whatever the
  comparison operator (DiaLog writes `lessThanOrEqualTo 7.5` for "+7,5 t interdit").
- the order's own validity and location are used when the conditions carry none.

Nothing here does I/O; errors in one regulation are `ItemError`s (one reject), never a crash. The
work per document is bounded (`MAX_ORDERS`, `MAX_REGULATIONS`, `MAX_CONDITIONS`, `_MAX_GEOJSON`)
on top of the XML size cap (`connectors.xml_safety`), so no document can hold a parse for long.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice

from connectors.base import PayloadError
from connectors.coords import geometry as line_or_point
from connectors.datex2_location import Shape, road_name, shape
from connectors.json_safety import parse_json
from connectors.values import ItemError, number, optional_time
from connectors.xml_find import Element, child, child_text, children, descendant_text, descendants, local, xsi_type
from traffic_hub.model.geometry import LineString, MultiLineString, Point

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_HHMM = re.compile(r"^(\d{2}):(\d{2})")
_CRITAIR = re.compile(r"(\d)")

# our measure types (traffic_hub.model.measure)
ROAD_CLOSED = "road_closed"
LANE_CLOSED = "lane_closed"
ALTERNATE_TRAFFIC = "alternate_traffic"
NO_OVERTAKING = "no_overtaking"
SPEED_LIMIT = "speed_limit"
VEHICLE_RESTRICTION = "vehicle_restriction"

# DATEX II vehicle types / loads → our vehicle kinds
VEHICLE_KINDS = {
    "heavyGoodsVehicle": "heavy_goods_vehicle",
    "lorry": "heavy_goods_vehicle",
    "largeGoodsVehicle": "heavy_goods_vehicle",
    "articulatedVehicle": "heavy_goods_vehicle",
    "bus": "bus",
    "coach": "bus",
    "minibus": "bus",
    "car": "car",
    "motorcycle": "motorcycle",
    "bicycle": "bicycle",
    "vehicleWithTrailer": "vehicle_with_trailer",
    "lightCommercialVehicle": "light_commercial_vehicle",
    "commercial": "commercial",
    "agriculturalVehicle": "agricultural_vehicle",
    "tractor": "agricultural_vehicle",
    "tanker": "tanker",
    "moped": "moped",
}
LOAD_KINDS = {
    "hazardousMaterials": "hazardous_goods",
    "dangerousGoods": "hazardous_goods",
    "abnormalLoad": "abnormal_load",
    "extraHighLoad": "abnormal_load",
    "extraLongLoad": "abnormal_load",
    "extraWideLoad": "abnormal_load",
}
# DATEX II vehicle usages and access conditions → our exemptions
USAGES = {
    "emergencyServices": "emergency_services",
    "police": "emergency_services",
    "fireBrigade": "emergency_services",
    "ambulance": "emergency_services",
    "roadMaintenanceOrConstruction": "road_maintenance",
    "roadOperator": "road_maintenance",
    "publicTransport": "public_transport",
    "deliveryServices": "deliveries",
    "cityLogistics": "deliveries",
    "agricultural": "agricultural",
    "military": "military",
    "taxi": "taxi",
    "carSharing": "car_sharing",
    "recoveryServices": "recovery_services",
}
# words of free-text exemptions (DiaLog's `dx:otherVehicleType`, in French) → our exemptions
OTHER_EXEMPTIONS = (
    ("desserte", "local_access"),
    ("déserte", "local_access"),
    ("riverain", "residents"),
    ("resident", "residents"),
    ("livraison", "deliveries"),
    ("secours", "emergency_services"),
    ("transport en commun", "public_transport"),
)
ACCESS = {
    "accessOnly": "local_access",
    "destinationTraffic": "residents",
    "sourceAndDestinationTraffic": "residents",
    "loadingAndUnloading": "deliveries",
    "passengerLoadingAndUnloading": "deliveries",
}
_LIMITS = (
    ("grossWeightCharacteristic", "grossVehicleWeight", "max_weight_t"),
    ("heaviestAxleWeightCharacteristic", "heaviestAxleWeight", "max_axle_load_t"),
    ("axleWeightCharacteristic", "axleWeight", "max_axle_load_t"),
    ("heightCharacteristic", "vehicleHeight", "max_height_m"),
    ("widthCharacteristic", "vehicleWidth", "max_width_m"),
    ("lengthCharacteristic", "vehicleLength", "max_length_m"),
)
ENDED_ORDER_STATUSES = frozenset({"withdrawn"})
# Bounds on work per document, whatever its size (the XML itself is size-capped by xml_safety): a
# hostile or broken document cannot make one parse run for minutes.
MAX_ORDERS = 200_000  # the national base held about 20 000 orders in 2026
MAX_REGULATIONS = 200  # per order
MAX_CONDITIONS = 2_000  # leaf conditions per regulation
_MAX_GEOJSON = 2 * 1024 * 1024  # characters of one GeoJSON geometry


@dataclass(frozen=True, slots=True)
class Vehicles:
    """Who a regulation is for (empty: every vehicle) and who is exempted."""

    max_weight_t: float | None = None
    max_axle_load_t: float | None = None
    max_height_m: float | None = None
    max_width_m: float | None = None
    max_length_m: float | None = None
    kinds: tuple[str, ...] = ()
    critair: tuple[str, ...] = ()  # "critair3", …
    exempt: tuple[str, ...] = ()  # our exemption words ("emergency_services", "residents", …)
    exempt_other: tuple[str, ...] = ()  # the source's own words for other exemptions

    def restricts(self) -> bool:
        """True when the rule is for some vehicles only (a limit, a kind or a Crit'Air class)."""
        limits = (self.max_weight_t, self.max_axle_load_t, self.max_height_m, self.max_width_m, self.max_length_m)
        return any(value is not None for value in limits) or bool(self.kinds or self.critair)

    def limits(self) -> dict[str, float]:
        """The limits given, by the model's field names."""
        return {
            name: value
            for name in ("max_weight_t", "max_axle_load_t", "max_height_m", "max_width_m", "max_length_m")
            if (value := getattr(self, name)) is not None
        }


@dataclass(frozen=True, slots=True)
class Period:
    """When a regulation applies: overall start/end and weekly windows in local wall-clock time."""

    starts_at: datetime | None
    ends_at: datetime | None
    windows: dict[str, list[str]] = field(default_factory=dict)  # weekday → ["07:00-20:00"]; empty: all day
    except_public_holidays: bool = False


@dataclass(frozen=True, slots=True)
class RegulationMeasure:
    """One regulation of one order at one place."""

    source_id: str  # "{order id}/{regulation n}/{location n}"
    order_id: str
    order_version: str | None
    regulation_id: str | None  # the authority's own order number
    type: str  # ROAD_CLOSED, SPEED_LIMIT, …
    detail: str  # the DATEX II type of regulation, e.g. "AccessRestriction noEntry"
    speed_kmh: int | None
    vehicles: Vehicles
    period: Period
    geometry: Shape
    street: str | None
    description: str
    authority: str | None
    order_status: str | None
    public_url: str | None
    origin: str | None  # the producer's own source name (DiaLog's `dx:source`)

    @property
    def withdrawn(self) -> bool:
        return self.order_status in ENDED_ORDER_STATUSES


# --- the publication --------------------------------------------------------------------------


def is_regulation_publication(publication: Element) -> bool:
    return xsi_type(publication) == "TrafficRegulationPublication"


def orders(publication: Element) -> list[Element]:
    """Every `trafficRegulationOrder` of the publication (competent authorities); PayloadError past MAX_ORDERS."""
    found = [
        order
        for group in children(publication, "trafficRegulationsFromCompetentAuthorities")
        for order in children(group, "trafficRegulationOrder")
    ]
    if len(found) > MAX_ORDERS:
        raise PayloadError(f"{len(found)} traffic regulation orders: more than the {MAX_ORDERS} the hub reads")
    return found


def order_id(order: Element) -> str:
    return (order.get("id") or "").strip()[:150]


def measures_of(order: Element) -> list[RegulationMeasure]:
    """The measures of one order; `ItemError` when none of its regulations can be used."""
    ident = order_id(order)
    if not ident:
        raise ItemError("traffic regulation order without id")
    header = _OrderHeader.of(order)
    out: list[RegulationMeasure] = []
    problems: list[str] = []
    regulations = children(order, "trafficRegulation")
    if len(regulations) > MAX_REGULATIONS:
        raise ItemError(f"{len(regulations)} regulations in one order: more than {MAX_REGULATIONS}")
    for number_, regulation in enumerate(regulations, start=1):
        try:
            out.extend(_regulation_measures(order, ident, header, number_, regulation))
        except ItemError as exc:
            problems.append(f"regulation {number_}: {exc}")
    if not out:
        raise ItemError("; ".join(problems) or "order without any traffic regulation")
    return out


@dataclass(frozen=True, slots=True)
class _OrderHeader:
    description: str
    authority: str | None
    regulation_id: str | None
    status: str | None
    public_url: str | None
    origin: str | None

    @classmethod
    def of(cls, order: Element) -> _OrderHeader:
        authority = _multilingual(child(order, "issuingAuthority"))
        description = _multilingual(child(order, "description")) or "Arrêté de circulation"
        extension = child(order, "_trafficRegulationOrderExtension", "trafficRegulationOrderExtended")
        return cls(
            description=description[:2000],
            authority=authority[:200] if authority else None,
            regulation_id=(child_text(order, "regulationId") or "")[:200] or None,
            status=child_text(order, "status"),
            public_url=(child_text(extension, "publicUrl") or "")[:500] or None,
            origin=(child_text(extension, "source") or "")[:100] or None,
        )


def _multilingual(element: Element | None) -> str | None:
    if element is None:
        return None
    for value in descendants(element, "value"):
        if value.text and value.text.strip():
            return value.text.strip()
    return None


def _regulation_measures(
    order: Element, ident: str, header: _OrderHeader, number_: int, regulation: Element
) -> list[RegulationMeasure]:
    if child_text(regulation, "status") == "inactive":
        raise ItemError("the regulation is inactive")
    kind, detail, speed = _kind(regulation)
    leaves = list(islice(_leaves(child(regulation, "condition"), negated=False), MAX_CONDITIONS + 1))
    if len(leaves) > MAX_CONDITIONS:
        raise ItemError(f"more than {MAX_CONDITIONS} conditions in one regulation")
    vehicles = _vehicles([(e, n) for e, n in leaves if local_type(e) in _VEHICLE_LEAVES])
    if kind == ROAD_CLOSED and vehicles.restricts():
        kind = VEHICLE_RESTRICTION
    period = _period([e for e, _ in leaves if local_type(e) in _VALIDITY_LEAVES]) or _order_period(order)
    found = [_place(e) for e, n in leaves if local_type(e) == "LocationCondition" and not n]
    places = [place for place in found if place is not None] or _order_places(order)
    if not places:
        raise ItemError("no location with coordinates (only GeoJSON or GML geometries are read)")
    reg_id = (regulation.get("id") or "").strip()[:60] or str(number_)
    return [
        RegulationMeasure(
            source_id=f"{ident}/{reg_id}/{n}" if len(places) > 1 else f"{ident}/{reg_id}",
            order_id=ident,
            order_version=order.get("version"),
            regulation_id=header.regulation_id,
            type=kind,
            detail=detail,
            speed_kmh=speed,
            vehicles=vehicles,
            period=period,
            geometry=geometry,
            street=street,
            description=header.description,
            authority=header.authority,
            order_status=header.status,
            public_url=header.public_url,
            origin=header.origin,
        )
        for n, (geometry, street) in enumerate(places, start=1)
    ]


def local_type(element: Element) -> str:
    return xsi_type(element) or local(element)


# --- type of regulation -----------------------------------------------------------------------


def _kind(regulation: Element) -> tuple[str, str, int | None]:
    """(measure type, the DATEX II words, speed) of the regulation's type we can carry.

    Alternating traffic first: 3.7 says it as a closed lane (`AlternateRoadOrCarriagewayOrLaneLayout`)
    plus a `PriorityRule` giving way to oncoming vehicles, and the lane alone is a lane closure."""
    types = children(regulation, "typeOfRegulation")
    found = [kind for element in types if (kind := _one_kind(element)) is not None]
    for kind in found:
        if kind[0] == ALTERNATE_TRAFFIC:
            return kind
    if found:
        return found[0]
    seen = ", ".join(xsi_type(element) or "untyped" for element in types) or "none"
    raise ItemError(f"no type of regulation the hub carries (found: {seen})")


def _one_kind(element: Element) -> tuple[str, str, int | None] | None:
    name = xsi_type(element)
    if name == "AccessRestriction":
        value = child_text(element, "accessRestrictionType") or ""
        if value in ("noEntry", "restrictedAccess"):
            return ROAD_CLOSED, f"AccessRestriction {value}", None
        return None
    if name in ("SpeedLimit", "MaxSpeedLimit"):
        return _speed(element, name)
    management = descendant_text(element, "roadOrCarriagewayOrLaneManagementType") or ""
    if name == "RoadOrCarriagewayOrLaneManagement" and "lternate" in management:
        return ALTERNATE_TRAFFIC, f"{name} {management}", None
    if (
        name == "AlternateRoadOrCarriagewayOrLaneLayout"
        and child_text(element, "roadOrCarriagewayOrLaneStatus") == "closed"
    ):
        layout = child_text(element, "roadOrCarriagewayOrLaneLayoutType") or "lane"
        return (LANE_CLOSED if layout == "lane" else ROAD_CLOSED), f"{name} {layout} closed", None
    if name == "PriorityRule" and child_text(element, "priorityRuleType") in (
        "giveWayToOncomingVehicles",
        "priorityOverOncomingVehicles",
    ):
        return ALTERNATE_TRAFFIC, f"PriorityRule {child_text(element, 'priorityRuleType')}", None
    instruction = descendant_text(element, "generalInstructionToRoadUsersType")
    if name == "ProhibitionOfOvertaking" or (name == "GeneralInstructionToRoadUsers" and instruction == "noOvertaking"):
        return NO_OVERTAKING, name, None
    return None


def _speed(element: Element, name: str) -> tuple[str, str, int | None]:
    value = descendant_text(element, "numericValue") or descendant_text(element, "numericalValue")
    unit = descendant_text(element, "unitOfMeasure") or "kilometresPerHour"
    speed = number(value)
    if speed is None or not 0 < speed <= 200:
        raise ItemError(f"speed limit without a usable value ({value!r})")
    if unit == "milesPerHour":
        speed *= 1.609344
    elif unit != "kilometresPerHour":
        raise ItemError(f"speed limit in an unknown unit ({unit!r})")
    return SPEED_LIMIT, name, round(speed)


# --- the condition tree -----------------------------------------------------------------------

_VALIDITY_LEAVES = frozenset({"ValidityCondition", "TimeValidityCondition"})
_VEHICLE_LEAVES = frozenset({"VehicleCondition", "AccessCondition", "NonVehicularRoadUserCondition"})


def _leaves(condition: Element | None, *, negated: bool) -> Iterator[tuple[Element, bool]]:
    """Every leaf condition with whether it is negated (a negated set negates its members)."""
    if condition is None:
        return
    here = negated != (child_text(condition, "negate") == "true")
    if local_type(condition) == "ConditionSet":
        for member in children(condition, "conditions"):
            yield from _leaves(member, negated=here)
        return
    yield condition, here


def _vehicles(leaves: list[tuple[Element, bool]]) -> Vehicles:
    limits: dict[str, float] = {}
    kinds: list[str] = []
    critair: list[str] = []
    exempt: list[str] = []
    other: list[str] = []
    for element, negated in leaves:
        if local_type(element) == "AccessCondition":
            words = [ACCESS.get(value, value) for value in _texts(element, "accessConditionType")]
            (exempt if negated else kinds).extend(w for w in words if w)
            continue
        if local_type(element) == "NonVehicularRoadUserCondition":
            continue  # pedestrians and riders: not vehicles
        characteristics = child(element, "vehicleCharacteristics")
        if characteristics is None:
            continue
        if negated:
            exempt.extend(_exemptions(characteristics))
            for text in _texts(characteristics, "otherVehicleType"):
                word = _other_exemption(text)
                (exempt if word else other).append(word or text[:100])
            continue
        found = _limits(characteristics)
        limits.update({k: min(v, limits.get(k, v)) for k, v in found.items()})
        critair.extend(_critair(characteristics))
        kinds.extend(_kinds(characteristics))  # "heavyGoodsVehicle + 7.5 t": lorries above 7.5 t
    return Vehicles(
        **limits,
        kinds=tuple(dict.fromkeys(kinds)),
        critair=tuple(sorted(set(critair))),
        exempt=tuple(dict.fromkeys(exempt)),
        exempt_other=tuple(dict.fromkeys(other)),
    )


def _texts(element: Element, name: str) -> list[str]:
    return [found.text.strip() for found in descendants(element, name) if found.text and found.text.strip()]


def _limits(characteristics: Element) -> dict[str, float]:
    out: dict[str, float] = {}
    for wrapper, value_name, key in _LIMITS:
        for found in children(characteristics, wrapper):
            value = number(child_text(found, value_name))
            if value is not None and 0 < value < 1000:
                out[key] = min(value, out.get(key, value))
    return out


def _critair(characteristics: Element) -> list[str]:
    out = []
    for text in _texts(characteristics, "emissionClassificationOther"):
        match = _CRITAIR.search(text)
        if "crit" in text.lower() and match and int(match[1]) <= 5:
            out.append(f"critair{match[1]}")
        elif "crit" in text.lower() and ("non" in text.lower() or "unclassified" in text.lower()):
            out.append("unclassified")
    return out


def _other_exemption(text: str) -> str | None:
    lowered = text.lower()
    return next((word for key, word in OTHER_EXEMPTIONS if key in lowered), None)


def _kinds(characteristics: Element) -> list[str]:
    kinds = [VEHICLE_KINDS.get(value, value) for value in _texts(characteristics, "vehicleType")]
    kinds.extend(LOAD_KINDS[value] for value in _texts(characteristics, "loadType") if value in LOAD_KINDS)
    return kinds


def _exemptions(characteristics: Element) -> list[str]:
    words = [USAGES.get(value, value) for value in _texts(characteristics, "vehicleUsage")]
    words.extend(
        "public_transport" if value == "bus" else VEHICLE_KINDS.get(value, value)
        for value in _texts(characteristics, "vehicleType")
    )
    return words


# --- validity ---------------------------------------------------------------------------------


def _period(conditions: list[Element]) -> Period | None:
    specs = [spec for condition in conditions if (spec := _time_spec(condition)) is not None]
    if not specs:
        return None
    starts = [optional_time(child_text(s, "overallStartTime"), "overallStartTime") for s in specs]
    ends = [optional_time(child_text(s, "overallEndTime"), "overallEndTime") for s in specs]
    known_starts = [s for s in starts if s is not None]
    windows: dict[str, list[str]] = {}
    all_day = False
    for spec in specs:
        spec_windows = _spec_windows(spec)
        if not spec_windows:
            all_day = True
        for day, day_windows in spec_windows.items():
            windows.setdefault(day, []).extend(w for w in day_windows if w not in windows.get(day, []))
    holidays = any(_excepts_holidays(spec) for spec in specs)
    return Period(
        starts_at=min(known_starts) if known_starts else None,
        ends_at=None if any(e is None for e in ends) else max(e for e in ends if e is not None),
        windows={} if all_day else {day: sorted(windows[day]) for day in WEEKDAYS if windows.get(day)},
        except_public_holidays=holidays,
    )


def _time_spec(condition: Element) -> Element | None:
    for name in ("implementedValidity", "validityByOrder"):
        spec = child(condition, name, "validityTimeSpecification")
        if spec is not None:
            return spec
    return None


def _order_period(order: Element) -> Period:
    spec = _time_spec(order)
    if spec is None:
        return Period(starts_at=None, ends_at=None)
    found = _period([order])
    return found or Period(starts_at=None, ends_at=None)


def _spec_windows(spec: Element) -> dict[str, list[str]]:
    """Weekday → windows of the spec's valid periods, minus the weekdays of its exception periods."""
    windows: dict[str, list[str]] = {}
    for period in children(spec, "validPeriod"):
        for day, day_windows in _period_windows(period).items():
            windows.setdefault(day, []).extend(day_windows)
    excluded = {day for period in children(spec, "exceptionPeriod") for day in _days(period) or ()}
    if excluded and not windows:
        windows = {day: ["00:00-24:00"] for day in WEEKDAYS}
    return {day: sorted(set(w)) for day, w in windows.items() if day not in excluded}


def _period_windows(period: Element) -> dict[str, list[str]]:
    days = _days(period) or list(WEEKDAYS)
    slots = [
        (_hhmm(child_text(slot, "startTimeOfPeriod")), _hhmm(child_text(slot, "endTimeOfPeriod")))
        for slot in children(period, "recurringTimePeriodOfDay")
    ]
    out: dict[str, list[str]] = {}
    for day in days:
        if not slots:
            out.setdefault(day, []).append("00:00-24:00")
        for start, end in slots:
            for window_day, window in _split_overnight(day, start, end):
                out.setdefault(window_day, []).append(window)
    return out


def _days(period: Element) -> list[str] | None:
    days = [d for d in _texts(period, "applicableDay") if d in WEEKDAYS]
    return days or None


def _split_overnight(day: str, start: str, end: str) -> list[tuple[str, str]]:
    """A window crossing midnight is two: to 24:00 on its day, from 00:00 on the next."""
    if end == "00:00":
        end = "24:00"
    if end > start:
        return [(day, f"{start}-{end}")]
    following = WEEKDAYS[(WEEKDAYS.index(day) + 1) % 7]
    out = [(day, f"{start}-24:00")] if start != "24:00" else []
    if end != "00:00":
        out.append((following, f"00:00-{end}"))
    return out


def _hhmm(value: str | None) -> str:
    match = _HHMM.match(value or "")
    if match is None or int(match[1]) > 24 or int(match[2]) > 59:
        raise ItemError(f"time of day {value!r} is not HH:MM[:SS]")
    return f"{match[1]}:{match[2]}"


def _excepts_holidays(spec: Element) -> bool:
    return any(
        text in ("publicHoliday", "publicHolidays")
        for period in children(spec, "exceptionPeriod")
        for text in _texts(period, "publicHoliday") + _texts(period, "specialDayType")
    )


# --- location ---------------------------------------------------------------------------------


def _place(condition: Element) -> tuple[Shape, str | None] | None:
    for name in ("implementedLocation", "locationByOrder", "trafficImpactLocation"):
        location = child(condition, name)
        if location is not None:
            return _located(location)
    return None


def all_places(order: Element) -> list[Shape]:
    """Every readable geometry of the order (to place an order none of whose regulations is usable)."""
    out: list[Shape] = []
    for condition in [order, *descendants(order, "conditions")]:
        try:
            found = _place(condition)
        except (ItemError, ValueError):
            continue
        if found is not None:
            out.append(found[0])
    return out


def _order_places(order: Element) -> list[tuple[Shape, str | None]]:
    found = _place(order)
    return [found] if found else []


def _located(location: Element) -> tuple[Shape, str | None] | None:
    street = road_name(location)
    geojson = descendant_text(location, "geoJsonGeometry")
    if geojson:
        return _from_geojson(geojson), street
    try:
        return shape(location), street
    except ItemError:
        return None


def _from_geojson(text: str) -> Shape:
    if len(text) > _MAX_GEOJSON:
        raise ItemError(f"GeoJSON geometry of {len(text)} characters: more than {_MAX_GEOJSON}")
    data = parse_json(text.encode())
    if not isinstance(data, dict):
        raise ItemError("the GeoJSON geometry is not an object")
    kind, coordinates = data.get("type"), data.get("coordinates")
    if kind == "Point" and isinstance(coordinates, list):
        return line_or_point([_pair(coordinates)])
    if kind == "LineString" and isinstance(coordinates, list):
        return line_or_point([_pair(p) for p in coordinates])
    if kind == "MultiLineString" and isinstance(coordinates, list):
        parts = [line_or_point([_pair(p) for p in part]) for part in coordinates if isinstance(part, list)]
        lines = [part.coordinates for part in parts if isinstance(part, LineString)]
        if not lines:
            return parts[0] if parts else _no_geometry()
        if len(lines) == 1:
            return LineString(type="LineString", coordinates=lines[0])
        return MultiLineString(type="MultiLineString", coordinates=lines)
    raise ItemError(f"GeoJSON geometry of type {kind!r} is not a point or a line")


def _pair(value: object) -> tuple[float, float]:
    if not isinstance(value, list) or len(value) < 2:
        raise ItemError("a GeoJSON position is not [lon, lat]")
    lon, lat = number(value[0]), number(value[1])
    if lon is None or lat is None:
        raise ItemError("a GeoJSON position is not numeric")
    return lon, lat


def _no_geometry() -> Point:
    raise ItemError("the GeoJSON geometry has no coordinates")
