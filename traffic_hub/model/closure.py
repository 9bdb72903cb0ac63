"""Closures and measures as road-works teams post them (contract §3), and the state the hub keeps of one.

A closure is a measure (``road_closed``, or ``lane_closed`` when it has ``lanes`` not all closed);
the measures API adds ``type`` and the type's values (:mod:`traffic_hub.model.measure`). One state
(:class:`ClosureState`) records both, so every guarantee of closures holds for measures.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from traffic_hub.model.geometry import LineString
from traffic_hub.model.measure import Measure, MeasureType, SpeedKmh, Vehicles, values_problem
from traffic_hub.model.validity import Schedule, Validity, ends_after
from traffic_hub.model.vocabulary import Cause, Direction

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")


def _printable(value: str) -> str:
    """Refuse control characters: they cannot travel in XML feeds and are never meant."""
    if _CONTROL.search(value):
        raise ValueError("contains control characters")
    return value


Text = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000), AfterValidator(_printable)
]
Name = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=2, max_length=200), AfterValidator(_printable)
]
Reference = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:/-]+$")
]
Crs = Literal["EPSG:4326", "EPSG:2154", "EPSG:3950"]


class Lanes(BaseModel):
    """A lane closure: `closed` of `total` lanes, on a side of the road."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    closed: Annotated[int, Field(ge=1, le=20)]
    total: Annotated[int, Field(ge=1, le=20)]
    side: Literal["LEFT", "MIDDLE", "RIGHT"] | None = None

    @model_validator(mode="after")
    def _closed_within_total(self) -> Lanes:
        if self.closed > self.total:
            raise ValueError("closed lanes cannot exceed total lanes")
        return self

    @property
    def full(self) -> bool:
        return self.closed == self.total


class _ClosureFields(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    description: Text
    geometry: LineString | None = None
    crs: Crs = "EPSG:4326"
    street: Name | None = None
    from_street: Name | None = None
    to_street: Name | None = None
    direction: Direction = Direction.BOTH_DIRECTIONS
    cause: Cause = Cause.ROADWORKS
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    schedule: Schedule | None = None
    lanes: Lanes | None = None

    @model_validator(mode="after")
    def _consistent(self) -> _ClosureFields:
        if not ends_after(self.starts_at, self.ends_at):
            raise ValueError("ends_at must be after starts_at")
        if self.geometry is None and not (self.street and self.from_street and self.to_street):
            raise ValueError("give either geometry, or street with from_street and to_street")
        if self.direction is Direction.UNKNOWN:
            raise ValueError("direction must be ONE_DIRECTION or BOTH_DIRECTIONS")
        return self

    def validity(self) -> Validity:
        return Validity(starts_at=self.starts_at, ends_at=self.ends_at, schedule=self.schedule)


class ClosureIn(_ClosureFields):
    """Body of POST /api/v1/closures and PUT /api/v1/closures/{id}."""

    reference: Reference


class ClosurePatch(BaseModel):
    """Body of PATCH: any subset of the closure's fields (reference is fixed)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    description: Text | None = None
    geometry: LineString | None = None
    crs: Crs | None = None
    street: Name | None = None
    from_street: Name | None = None
    to_street: Name | None = None
    direction: Direction | None = None
    cause: Cause | None = None
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    schedule: Schedule | None = None
    lanes: Lanes | None = None


MeasureId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class _MeasureValues(BaseModel):
    """A measure's type and values, flat as the measures API takes them (None: a plain closure)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: MeasureType | None = None
    speed_kmh: SpeedKmh | None = None
    vehicles: Vehicles | None = None
    detour_of: MeasureId | None = None


def measure_problem(
    kind: MeasureType, lanes: Lanes | None, speed_kmh: int | None, vehicles: Vehicles | None, detour_of: str | None
) -> tuple[str, str] | None:
    """(field, message) when a measure's values do not fit its type (lanes included), else None."""
    if kind is MeasureType.LANE_CLOSED and (lanes is None or lanes.full):
        return "lanes", "a lane_closed measure needs lanes with fewer closed than total (all closed: road_closed)"
    if kind is MeasureType.ROAD_CLOSED and lanes is not None and not lanes.full:
        return "lanes", "a road_closed measure closes every lane: use lane_closed for some lanes"
    return values_problem(kind, speed_kmh, vehicles, detour_of)


class MeasureIn(ClosureIn, _MeasureValues):
    """Body of POST /api/v1/measures and PUT /api/v1/measures/{id}: a closure's fields plus `type` and
    the type's values. Whether the values fit the type is :func:`measure_problem` (the service answers
    a 422 naming the field)."""

    type: MeasureType


class MeasurePatch(ClosurePatch, _MeasureValues):
    """Body of PATCH /api/v1/measures/{id}: any subset of the measure's fields (reference is fixed)."""


class ClosureWarning(BaseModel):
    """Accepted, but worth a second look: unusual input a team would rather hear about now."""

    model_config = ConfigDict(frozen=True)

    code: str
    field: str
    message: str


class ClosureState(_ClosureFields, _MeasureValues):
    """What the hub records of a closure or measure: the submission as accepted, plus bookkeeping.

    `geometry` is always WGS84 here (converted from `crs` by the API); `submitted_crs` keeps what
    the team used. `type` is None for a closure posted through /api/v1/closures: see :meth:`measure`.
    """

    id: str
    reference: Reference
    owner: str
    owner_communes: list[str]
    communes: list[str]
    version: Annotated[int, Field(ge=1)]
    cancelled: bool = False
    created_at: datetime
    updated_at: datetime
    submitted_crs: Crs = "EPSG:4326"

    @property
    def measure_type(self) -> MeasureType:
        """The type, also of a plain closure: lane_closed when some lanes stay open, else road_closed."""
        if self.type is not None:
            return self.type
        if self.lanes is not None and not self.lanes.full:
            return MeasureType.LANE_CLOSED
        return MeasureType.ROAD_CLOSED

    def measure(self) -> Measure:
        return Measure(type=self.measure_type, speed_kmh=self.speed_kmh, vehicles=self.vehicles,
                       detour_of=self.detour_of)
