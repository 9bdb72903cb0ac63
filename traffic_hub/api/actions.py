"""Operator actions on events, recorded in Kafka with who and when, and in the audit log."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, status

from traffic_hub.api.audit import audited
from traffic_hub.api.deps import EventsDep, Operator, ReportWriterDep
from traffic_hub.api.responses import WRITE
from traffic_hub.errors import InvalidInput, NotFound
from traffic_hub.model import ActionIn, OperatorAction, Report, ReportKind

router = APIRouter(prefix="/api/v1/events", tags=["events"])


@router.post("/{event_id}/actions", status_code=status.HTTP_202_ACCEPTED, responses=WRITE)
async def act_on_event(
    event_id: str, body: ActionIn, principal: Operator, events: EventsDep, write_report: ReportWriterDep
) -> OperatorAction:
    """Confirm, dismiss, end, or merge into another event. Recorded durably (202), applied within a second.

    Dismissed and ended events leave the partner feeds; a merged event ends and its sources join the other.
    """
    with audited(principal, body.action, event_id=event_id, into=body.into) as entry:
        if events.get(event_id) is None:
            raise NotFound(f"no event {event_id}")
        if body.into is not None and (body.into == event_id or events.get(body.into) is None):
            raise InvalidInput("into", "merge into another existing event")
        action = OperatorAction(**body.model_dump(), event_id=event_id, by=principal.name, at=datetime.now(UTC))
        report = Report(
            key=event_id,
            kind=ReportKind.OPERATOR,
            source="operator",
            received_at=action.at,
            payload=action.model_dump(mode="json"),
        )
        await write_report(report)
        entry["result"] = status.HTTP_202_ACCEPTED
    return action
