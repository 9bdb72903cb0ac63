"""Operator actions applied to events (pure): confirm, dismiss, end, merge."""

from __future__ import annotations

from datetime import datetime

from traffic_hub.model import Event, Lifecycle, OperatorAction, SourceReport


def _record(action: OperatorAction, received_at: datetime) -> SourceReport:
    said = {"action": action.action, "by": action.by, "note": action.note, "into": action.into}
    return SourceReport(
        source="operator",
        source_id=f"{action.by}:{action.at.isoformat()}",
        kind="operator",
        received_at=received_at,
        observed_at=action.at,
        said={k: v for k, v in said.items() if v is not None},
        active=False,  # an operator's word never keeps an event alive on its own
    )


def _bump(
    event: Event,
    action: OperatorAction,
    received_at: datetime,
    added: list[SourceReport] | None = None,
    **changes: object,
) -> Event:
    update = {
        "sources": [*event.sources, *(added or []), _record(action, received_at)],
        "version": event.version + 1,
        "updated_at": action.at,
        **changes,
    }
    return event.model_copy(update=update)


def apply_action(action: OperatorAction, event: Event, target: Event | None, received_at: datetime) -> list[Event]:
    """The events as they are after the action (one, or two for a merge)."""
    if action.action == "confirm":
        return [_bump(event, action, received_at, verification="confirmed")]
    if action.action == "dismiss":
        return [_bump(event, action, received_at, verification="dismissed")]
    if action.action == "end":
        return [_bump(event, action, received_at, lifecycle=Lifecycle.ENDED, ended_by=action.by)]
    if target is None or target.id == event.id:
        return []
    reason = f"merged by operator {action.by}"
    known = {(s.source, s.source_id) for s in target.sources}
    moved = [
        s.model_copy(update={"match_reason": s.match_reason or reason})
        for s in event.sources
        if (s.source, s.source_id) not in known and s.kind != "operator"
    ]
    merged = _bump(target, action, received_at, moved)
    ended = _bump(event, action, received_at, lifecycle=Lifecycle.ENDED, ended_by=action.by, merged_into=target.id)
    return [ended, merged]
