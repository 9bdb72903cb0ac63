"""What a connector makes of one item in a source's payload, before normalisation and conflation."""

from __future__ import annotations

from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from traffic_hub.model.geometry import Geometry
from traffic_hub.model.measure import Measure
from traffic_hub.model.validity import Validity
from traffic_hub.model.vocabulary import Cause, Direction, EventType


class IncidentReport(BaseModel):
    """One source's statement about one incident, in the canonical vocabulary.

    `source_id` is the source's own stable id (Waze uuid, DATEX II situation record id, WZDx feature
    id, CIFS incident id); `version` is the source's version when it has one. `ended` is True when the
    source says the incident is over (DATEX II `suspended`/end in the past, a Waze item gone from the
    snapshot).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str  # connector name, e.g. "waze-mel", "bison-fute"
    kind: str  # "waze-alert", "waze-jam", "waze-irregularity", "datex2-record", "wzdx-feature", "cifs", "geojson"
    source_id: str
    source_version: str | None = None
    type: EventType
    subtype: str | None = None
    cause: Cause = Cause.OTHER
    description: str
    geometry: Geometry  # WGS84 lon/lat
    crs: str = "EPSG:4326"  # what the source used (already converted)
    direction: Direction = Direction.UNKNOWN
    street: str | None = None
    city: str | None = None
    validity: Validity
    lanes: dict[str, Any] | None = None
    ended: bool = False
    observed_at: AwareDatetime | None = None  # when the source says it saw/published this
    reliability: float | None = Field(default=None, ge=0.0, le=1.0)
    openlr: str | None = None  # an OpenLR line reference (base64 binary) when the source gives one
    said: dict[str, Any] = Field(default_factory=dict)  # the source's own fields, summarised (no huge blobs)
    measure: Measure | None = None  # a traffic-regulation measure (e.g. from the national base); None: an incident
