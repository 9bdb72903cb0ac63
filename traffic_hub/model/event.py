"""The canonical event: one real-world incident or closure, whatever its sources."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from traffic_hub.model.closure import ClosureState
from traffic_hub.model.geometry import Geometry
from traffic_hub.model.incident import IncidentReport
from traffic_hub.model.measure import Measure
from traffic_hub.model.validity import Validity
from traffic_hub.model.vocabulary import Cause, Direction, EventType, Lifecycle, Status


class SourceReport(BaseModel):
    """Provenance: what one source said of this event, and when."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str  # "roadworks:voirie-lille", "waze-mel", "operator"
    source_id: str  # the source's own id (closure reference, Waze uuid, DATEX II record id)
    kind: str  # "closure", "waze-alert", "datex2-record", ...
    received_at: AwareDatetime
    observed_at: AwareDatetime | None = None
    said: dict[str, Any] = Field(default_factory=dict)  # the source's own fields, summarised
    active: bool = True  # False once this source dropped or ended the incident
    match_reason: str | None = None  # why this report was merged into the event (conflation)
    incident: IncidentReport | None = None  # the source's last full report (to rebuild the event from it)


class Normalised(BaseModel):
    """Where the event sits on the road network (filled by the normaliser)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    matched: bool
    street: str | None = None
    edge_ids: list[str] = Field(default_factory=list)
    commune: str | None = None
    communes: list[str] = Field(default_factory=list)
    direction: Direction = Direction.UNKNOWN
    confidence: float = Field(ge=0.0, le=1.0)
    matched_share: float = Field(default=0.0, ge=0.0, le=1.0)
    reason: str | None = None  # why it is unmatched or partial
    method: str = "passthrough"  # "passthrough", "line", "point", "street", "openlr"


class Segment(BaseModel):
    """One single-street, junction-to-junction run of the event (one Waze incident each)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    street: str | None
    coordinates: list[tuple[float, float]]  # lon, lat in travel order
    length_m: float
    edge_ids: list[str] = Field(default_factory=list)


class Event(BaseModel):
    """One incident or closure, normalised, as partners see it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    type: EventType
    subtype: str | None = None
    cause: Cause = Cause.OTHER
    description: str
    geometry: Geometry
    direction: Direction = Direction.UNKNOWN
    street: str | None = None
    commune: str | None = None
    validity: Validity
    lanes: dict[str, Any] | None = None  # {"closed": 1, "total": 2, "side": "RIGHT"}
    lifecycle: Lifecycle = Lifecycle.OPEN
    version: int = Field(ge=1)
    sources: list[SourceReport] = Field(min_length=1)
    normalised: Normalised | None = None
    segments: list[Segment] = Field(default_factory=list)
    segments_withheld: list[str] = Field(default_factory=list)  # why parts could not become segments
    verification: Literal["unverified", "confirmed", "dismissed"] = "unverified"
    ended_by: str | None = None  # an operator ended it: sources cannot reopen it
    merged_into: str | None = None  # an operator merged it into this event
    closure: ClosureState | None = None  # set when the event is a road-works closure (same id)
    measure: Measure | None = None  # what a traffic-regulation order imposes (closures too); None: an incident
    created_at: AwareDatetime
    updated_at: AwareDatetime

    def status_at(self, now: datetime) -> Status:
        if self.lifecycle is Lifecycle.CANCELLED:
            return Status.CANCELLED
        if self.lifecycle is Lifecycle.ENDED or self.validity.has_ended(now):
            return Status.ENDED
        return Status.ACTIVE if self.validity.has_started(now) else Status.PLANNED

    def is_current(self, now: datetime) -> bool:
        """Active or upcoming: what feeds carry."""
        return self.status_at(now) in (Status.ACTIVE, Status.PLANNED)

    def in_window(self, now: datetime, tz: ZoneInfo) -> bool:
        return self.lifecycle is Lifecycle.OPEN and self.validity.in_window(now, tz)
