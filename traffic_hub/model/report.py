"""What goes on the reports topic: one source's statement, kept verbatim enough to replay."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from traffic_hub.model.closure import ClosureState
from traffic_hub.model.incident import IncidentReport


class ReportKind(StrEnum):
    CLOSURE = "closure"  # a road-works team's closure (full state, versioned)
    INCIDENT = "incident"  # a connector's parsed incident (`incident`)
    FETCH = "fetch"  # a connector's raw payload as fetched (audit and replay; not normalised)
    OPERATOR = "operator"  # an operator action (confirm, dismiss, merge, end)


class Report(BaseModel):
    """Envelope on `{prefix}.reports`, keyed by `key` so one item's versions stay in order."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str
    kind: ReportKind
    source: str
    received_at: AwareDatetime
    closure: ClosureState | None = None
    incident: IncidentReport | None = None
    payload: dict[str, Any] = Field(default_factory=dict)
