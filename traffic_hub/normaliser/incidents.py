"""Incident reports become events, or join the event they are about (pure)."""

from __future__ import annotations

import uuid
from datetime import datetime

from traffic_hub.model import Event, IncidentReport, Lifecycle, Normalised, SourceReport
from traffic_hub.normaliser.placement import Placement

INCIDENT_NAMESPACE = uuid.UUID("0b6f3f0e-54a4-4b0e-8f38-7d3c1c0e9a11")

# whose word wins for the event's content when several sources report it (lower is stronger)
_PRIORITY = {"closure": 0, "operator": 1, "datex2-record": 2, "cifs": 3, "wzdx-feature": 4, "geojson": 5}
_WAZE_PRIORITY = 9


def event_id_for(report: IncidentReport) -> str:
    return str(uuid.uuid5(INCIDENT_NAMESPACE, f"{report.source}:{report.source_id}"))


def provenance(report: IncidentReport, received_at: datetime, match_reason: str | None) -> SourceReport:
    return SourceReport(
        source=report.source,
        source_id=report.source_id,
        kind=report.kind,
        received_at=received_at,
        observed_at=report.observed_at,
        said=report.said,
        active=not report.ended,
        match_reason=match_reason,
        incident=report,
    )


def _priority(source: SourceReport) -> tuple[int, int]:
    rank = _PRIORITY.get(source.kind, _WAZE_PRIORITY if source.kind.startswith("waze") else 6)
    return (0 if source.active else 1, rank)


def with_source(event: Event, source: SourceReport) -> list[SourceReport]:
    """The event's sources with `source` replacing its earlier report (or added)."""
    others = [s for s in event.sources if (s.source, s.source_id) != (source.source, source.source_id)]
    return [*others, source]


def primary_report(sources: list[SourceReport]) -> IncidentReport | None:
    """The report whose word wins: active before ended, then by source priority."""
    reports = [s for s in sources if s.incident is not None]
    return min(reports, key=_priority).incident if reports else None


def incident_event(
    event_id: str,
    sources: list[SourceReport],
    report: IncidentReport,
    placement: Placement,
    previous: Event | None,
    now: datetime,
) -> Event:
    """The event as its strongest source (`report`, see `primary_report`) tells it, listing every source."""
    ended_by = previous.ended_by if previous else None
    lifecycle = Lifecycle.OPEN if any(s.active for s in sources) and not ended_by else Lifecycle.ENDED
    return Event(
        id=event_id,
        type=report.type,
        subtype=report.subtype,
        cause=report.cause,
        description=report.description,
        geometry=report.geometry,
        direction=report.direction,
        street=placement.normalised.street or report.street,
        commune=placement.normalised.commune,
        validity=report.validity,
        lanes=report.lanes,
        measure=report.measure,
        lifecycle=lifecycle,
        version=(previous.version + 1) if previous else 1,
        sources=sorted(sources, key=_priority),
        normalised=placement.normalised,
        segments=placement.segments,
        segments_withheld=placement.withheld,
        verification=previous.verification if previous else "unverified",
        ended_by=ended_by,
        merged_into=previous.merged_into if previous else None,
        created_at=previous.created_at if previous else now,
        updated_at=now,
    )


def closure_with_source(event: Event, source: SourceReport, now: datetime) -> Event:
    """A report folded into a road-works closure: the closure's content stays, the source is listed."""
    return event.model_copy(update={"sources": with_source(event, source), "version": event.version + 1,
                                    "updated_at": now})


def merged_event(event: Event, into: str, now: datetime) -> Event:
    """`event` ended because a closure took it in: its sources now speak through `into`."""
    update = {"lifecycle": Lifecycle.ENDED, "merged_into": into, "version": event.version + 1, "updated_at": now}
    return event.model_copy(update=update)


def unmatched_normalised(reason: str) -> Normalised:
    return Normalised(matched=False, confidence=0.0, reason=reason, method="none")
