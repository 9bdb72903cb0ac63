"""Traffic measures: what a traffic-regulation order (arrêté) imposes on a stretch of road.

Why: road works rarely close a whole road. French authorities order alternating traffic, no
overtaking, temporary speed limits, bans for lorries above a weight or height, Crit'Air bans and
detours (issue 18). A closure is the first of these measures; this module fixes the others' shape so
that every source (the API, the national regulation base DiaLog) and every feed (GeoJSON, CSV, Waze,
DATEX II, WZDx) speak the same words.

The shape (stable; changes are only compatible additions):

- :class:`MeasureType` — ``road_closed``, ``lane_closed``, ``alternate_traffic``, ``no_overtaking``,
  ``speed_limit``, ``vehicle_restriction``, ``detour``.
- :class:`Measure` — ``type`` and the type's values:
  ``speed_kmh`` (``speed_limit`` only, 5–130),
  ``vehicles`` (:class:`Vehicles`; required for ``vehicle_restriction``; on a ``detour`` the vehicles
  the detour is for; else absent),
  ``detour_of`` (``detour`` only: the id of the measure the detour goes around).
  Lanes stay on the closure/event (``lanes``), validity on :class:`~traffic_hub.model.validity.Validity`.
- :class:`Vehicles` — who a restriction bans. A vehicle is banned when it is of one of ``kinds`` (any
  kind when ``kinds`` is empty) AND exceeds one of the given limits (any size when none is given) AND
  carries one of the ``critair`` stickers (any when empty), unless it is in ``except``. Limits are
  maxima: ``max_weight_t`` 3.5 bans vehicles heavier than 3.5 t (gross weight, tonnes),
  ``max_axle_load_t`` (t per axle), ``max_height_m``, ``max_width_m``, ``max_length_m`` (metres).
  JSON field ``except`` (Python attribute ``except_``: a keyword). Serialised by alias.
- :class:`VehicleKind`, :class:`Exemption`, :class:`CritAir` — snake_case words; :data:`DATEX2_KIND`,
  :data:`DATEX2_EXEMPTION` give their DATEX II v3.7 translation (element and value, as DiaLog writes
  them in its TrafficRegulationPublication) so feeds and the ``dialog`` connector map both ways.

Where it lives: :class:`~traffic_hub.model.closure.ClosureState` (a road-works team's measure, flat
fields ``type``, ``speed_kmh``, ``vehicles``, ``detour_of``), :class:`~traffic_hub.model.event.Event`
``measure`` and :class:`~traffic_hub.model.incident.IncidentReport` ``measure`` (a source's measure).
An event without ``measure`` is an incident (accident, jam, ...), not a regulation.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator


class MeasureType(StrEnum):
    """What the order imposes. Each feed carries what its format can and withholds the rest with a reason."""

    ROAD_CLOSED = "road_closed"  # no entry for any vehicle (in the given direction)
    LANE_CLOSED = "lane_closed"  # some lanes closed (`lanes`), traffic passes
    ALTERNATE_TRAFFIC = "alternate_traffic"  # one lane for both directions in turn (lights, flagmen)
    NO_OVERTAKING = "no_overtaking"
    SPEED_LIMIT = "speed_limit"  # `speed_kmh`
    VEHICLE_RESTRICTION = "vehicle_restriction"  # no entry for the vehicles in `vehicles`
    DETOUR = "detour"  # the route to take instead of `detour_of`


CLOSING_TYPES = frozenset({MeasureType.ROAD_CLOSED, MeasureType.LANE_CLOSED})
"""The measures the closures API has always carried (`/api/v1/closures`)."""

DETOURABLE_TYPES = frozenset({MeasureType.ROAD_CLOSED, MeasureType.VEHICLE_RESTRICTION})
"""What a detour may go around: a closed road, or a road closed to some vehicles (a lorry detour)."""


class VehicleKind(StrEnum):
    """Vehicle kinds a restriction names (DiaLog's restricted types, DATEX II v3 vehicle types/loads)."""

    HEAVY_GOODS_VEHICLE = "heavy_goods_vehicle"
    HAZARDOUS_GOODS = "hazardous_goods"
    ABNORMAL_LOAD = "abnormal_load"  # oversize convoys (convois exceptionnels)
    BUS = "bus"
    COMMERCIAL = "commercial"
    LIGHT_COMMERCIAL_VEHICLE = "light_commercial_vehicle"
    CAR = "car"
    VEHICLE_WITH_TRAILER = "vehicle_with_trailer"
    TANKER = "tanker"
    AGRICULTURAL_VEHICLE = "agricultural_vehicle"
    MOTORCYCLE = "motorcycle"
    MOPED = "moped"
    BICYCLE = "bicycle"
    PEDESTRIANS = "pedestrians"


class Exemption(StrEnum):
    """Who a restriction lets through all the same (« sauf ... »)."""

    EMERGENCY_SERVICES = "emergency_services"
    RESIDENTS = "residents"  # riverains
    LOCAL_ACCESS = "local_access"  # desserte locale
    DELIVERIES = "deliveries"  # livraisons
    PUBLIC_TRANSPORT = "public_transport"
    TAXI = "taxi"
    CAR_SHARING = "car_sharing"
    ROAD_MAINTENANCE = "road_maintenance"
    RECOVERY_SERVICES = "recovery_services"
    MILITARY = "military"
    AGRICULTURAL = "agricultural"
    BICYCLE = "bicycle"


class CritAir(StrEnum):
    """Crit'Air air-quality stickers (a ban lists the classes it bans)."""

    CRITAIR_0 = "critair0"  # green: electric, hydrogen
    CRITAIR_1 = "critair1"
    CRITAIR_2 = "critair2"
    CRITAIR_3 = "critair3"
    CRITAIR_4 = "critair4"
    CRITAIR_5 = "critair5"
    UNCLASSIFIED = "unclassified"  # non classés


DATEX2_KIND: dict[VehicleKind, tuple[str, str]] = {
    VehicleKind.HEAVY_GOODS_VEHICLE: ("vehicleType", "heavyGoodsVehicle"),
    VehicleKind.HAZARDOUS_GOODS: ("loadType", "hazardousMaterials"),
    VehicleKind.ABNORMAL_LOAD: ("loadType", "abnormalLoad"),
    VehicleKind.BUS: ("vehicleType", "bus"),
    VehicleKind.COMMERCIAL: ("vehicleUsage", "commercial"),
    VehicleKind.LIGHT_COMMERCIAL_VEHICLE: ("vehicleType", "lightCommercialVehicle"),
    VehicleKind.CAR: ("vehicleType", "car"),
    VehicleKind.VEHICLE_WITH_TRAILER: ("vehicleType", "vehicleWithTrailer"),
    VehicleKind.TANKER: ("vehicleType", "tanker"),
    VehicleKind.AGRICULTURAL_VEHICLE: ("vehicleType", "agriculturalVehicle"),
    VehicleKind.MOTORCYCLE: ("vehicleType", "motorcycle"),
    VehicleKind.MOPED: ("vehicleType", "moped"),
    VehicleKind.BICYCLE: ("vehicleType", "bicycle"),
    VehicleKind.PEDESTRIANS: ("otherVehicleType", "pedestrians"),
}
"""DATEX II v3.7 VehicleCharacteristics element and value of each kind (as DiaLog writes them)."""

DATEX2_EXEMPTION: dict[Exemption, tuple[str, str]] = {
    Exemption.EMERGENCY_SERVICES: ("vehicleUsage", "emergencyServices"),
    Exemption.RESIDENTS: ("otherVehicleType", "residents"),
    Exemption.LOCAL_ACCESS: ("otherVehicleType", "Desserte locale"),
    Exemption.DELIVERIES: ("vehicleUsage", "cityLogistics"),
    Exemption.PUBLIC_TRANSPORT: ("vehicleType", "bus"),
    Exemption.TAXI: ("vehicleUsage", "taxi"),
    Exemption.CAR_SHARING: ("vehicleUsage", "carSharing"),
    Exemption.ROAD_MAINTENANCE: ("vehicleUsage", "roadMaintenanceOrConstruction"),
    Exemption.RECOVERY_SERVICES: ("vehicleUsage", "recoveryServices"),
    Exemption.MILITARY: ("vehicleUsage", "military"),
    Exemption.AGRICULTURAL: ("vehicleUsage", "agricultural"),
    Exemption.BICYCLE: ("vehicleType", "bicycle"),
}
"""DATEX II v3.7 element and value of each exemption (a negated VehicleCondition in DiaLog's orders)."""

Tonnes = Annotated[float, Field(gt=0, le=100, allow_inf_nan=False)]
AxleTonnes = Annotated[float, Field(gt=0, le=30, allow_inf_nan=False)]
Metres = Annotated[float, Field(gt=0, le=50, allow_inf_nan=False)]
SpeedKmh = Annotated[int, Field(ge=5, le=130)]


class Vehicles(BaseModel):
    """Who a restriction bans (see the module docstring for the rule), or who a detour is for."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
    )

    max_weight_t: Tonnes | None = None
    max_axle_load_t: AxleTonnes | None = None
    max_height_m: Annotated[float, Field(gt=0, le=10, allow_inf_nan=False)] | None = None
    max_width_m: Annotated[float, Field(gt=0, le=10, allow_inf_nan=False)] | None = None
    max_length_m: Metres | None = None
    kinds: Annotated[list[VehicleKind], Field(max_length=len(VehicleKind))] = Field(default_factory=list)
    critair: Annotated[list[CritAir], Field(max_length=len(CritAir))] = Field(default_factory=list)
    except_: Annotated[list[Exemption], Field(max_length=len(Exemption))] = Field(
        default_factory=list, alias="except"
    )

    @model_validator(mode="before")
    @classmethod
    def _axle_alias(cls, data: object) -> object:
        """`max_axle_weight_t` is accepted as another name of `max_axle_load_t` (both are used)."""
        if isinstance(data, dict) and "max_axle_weight_t" in data and "max_axle_load_t" not in data:
            data = {k if k != "max_axle_weight_t" else "max_axle_load_t": v for k, v in data.items()}
        return data

    @property
    def limits(self) -> dict[str, float]:
        """The size limits given, by field name."""
        names = ("max_weight_t", "max_axle_load_t", "max_height_m", "max_width_m", "max_length_m")
        return {name: value for name in names if (value := getattr(self, name)) is not None}

    @property
    def bans_anything(self) -> bool:
        """Whether it names whom it bans (a restriction of nobody in particular is a closure)."""
        return bool(self.limits or self.kinds or self.critair)

    def bans(self, other: Vehicles | None) -> bool:
        """Whether some vehicle of `other` (None: any vehicle) may be banned by this restriction.

        Conservative: it says True unless `other` provably stays clear (its kinds are all outside
        ours, or each of its maxima is within our limits)."""
        if other is None:
            return True
        if self.kinds and other.kinds and not set(other.kinds) & set(self.kinds):
            return False
        mine, theirs = self.limits, other.limits
        if mine and all(name in theirs and theirs[name] <= limit for name, limit in mine.items()):
            return False
        return not (self.critair and other.critair and not set(other.critair) & set(self.critair))


class Measure(BaseModel):
    """A measure's type and values, as events and incident reports carry them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: MeasureType
    speed_kmh: SpeedKmh | None = None
    vehicles: Vehicles | None = None
    detour_of: Annotated[str, Field(min_length=1, max_length=100)] | None = None

    @model_validator(mode="after")
    def _values_fit_type(self) -> Measure:
        problem = values_problem(self.type, self.speed_kmh, self.vehicles, self.detour_of)
        if problem is not None:
            raise ValueError(problem[1])
        return self


def values_problem(
    kind: MeasureType, speed_kmh: int | None, vehicles: Vehicles | None, detour_of: str | None
) -> tuple[str, str] | None:
    """(field, message) when the values do not fit the type, else None. One rule for every source."""
    if kind is MeasureType.SPEED_LIMIT and speed_kmh is None:
        return "speed_kmh", "a speed_limit needs speed_kmh (km/h, 5 to 130)"
    if kind is not MeasureType.SPEED_LIMIT and speed_kmh is not None:
        return "speed_kmh", f"speed_kmh is for a speed_limit, not a {kind.value}"
    if kind is MeasureType.VEHICLE_RESTRICTION and (vehicles is None or not vehicles.bans_anything):
        return "vehicles", "a vehicle_restriction needs vehicles with a limit, kinds or critair classes"
    if vehicles is not None and kind not in (MeasureType.VEHICLE_RESTRICTION, MeasureType.DETOUR):
        return "vehicles", f"vehicles are for a vehicle_restriction or a detour, not a {kind.value}"
    if kind is MeasureType.DETOUR and not detour_of:
        return "detour_of", "a detour needs detour_of: the id of the measure it goes around"
    if kind is not MeasureType.DETOUR and detour_of is not None:
        return "detour_of", f"detour_of is for a detour, not a {kind.value}"
    return None
