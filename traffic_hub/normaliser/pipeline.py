"""What the normaliser does with one report: the decisions, without Kafka.

Closure reports become closure events; incident reports are placed on the network and either join
the event they are about (conflation, echo suppression) or start a new one; a source that drops or
ends an incident is marked inactive, and the event ends when no source is left. Reports that
cannot be used become dead letters.

The normaliser runs this in two stages (see `service`): `place_many` (placement, any number of
processes) and `decide_many` (every decision, one owner). `process_many` is both at once, for one
process and for tests. Deciding a report again once it is applied changes nothing and writes
nothing (`_applied`, `_unchanged`): after a crash, or when the decision owner changes, the reports
decided but not yet committed are decided again, and a report placed twice (stage 1 crashed after
writing it) comes twice.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from pydantic import ValidationError

from traffic_hub.model import (
    ClosureState,
    Event,
    IncidentReport,
    Lifecycle,
    OperatorAction,
    Report,
    ReportKind,
    SourceReport,
)
from traffic_hub.normaliser.actions import apply_action
from traffic_hub.normaliser.closures import closure_event
from traffic_hub.normaliser.conflation import EventIndex, same_incident
from traffic_hub.normaliser.incidents import (
    closure_with_source,
    event_id_for,
    incident_event,
    merged_event,
    primary_report,
    provenance,
    with_source,
)
from traffic_hub.normaliser.placed import encode_placed
from traffic_hub.normaliser.placement import Placement, Placer
from traffic_hub.publishing import Record, dead_letter
from traffic_hub.topics import Topics
from traffic_hub.view import encode, micros

log = logging.getLogger(__name__)

PLACEMENTS_KEPT = 5000  # incident placements remembered by a pipeline (~1-2 KiB each)


class Pipeline:
    def __init__(
        self,
        topics: Topics,
        placer: Placer,
        index: EventIndex | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._topics = topics
        self._placer = placer
        self.index = index if index is not None else EventIndex()  # an empty index is falsy (len 0)
        self._clock = clock
        self._placements: OrderedDict[str, Placement] = OrderedDict()  # see `_place_incident`

    def process(self, key: str, raw: bytes) -> list[Record]:
        return self._guarded(key, raw, _parse(raw), None)

    def place_many(self, items: Sequence[tuple[str, bytes]], max_bytes: int | None = None) -> list[Record]:
        """Stage 1: each (key, raw report) as a placed record for stage 2, in order, the batch's closures
        placed together (as in `process_many`). Reports that are not reports become dead letters here,
        and so do those whose placement fails (as `_guarded` would have it); fetch payloads give nothing.
        A placed record over `max_bytes` goes without its placement: stage 2 places that report itself."""
        reports = [_parse(raw) for _, raw in items]
        closures = self._place_closures(reports)
        out: list[Record] = []
        for (key, raw), report, placement in zip(items, reports, closures, strict=True):
            if isinstance(report, ValidationError):
                out.append(self._dead("reports", f"not a report: {report}", raw, key))
            elif report.kind is not ReportKind.FETCH:
                out.append(self._placed_record(key, raw, report, placement, max_bytes))
        return out

    def _placed_record(
        self, key: str, raw: bytes, report: Report, placement: Placement | None, max_bytes: int | None
    ) -> Record:
        try:
            if report.kind is ReportKind.CLOSURE and report.closure is not None and placement is None:
                placement = self._placer.place_closure(report.closure)
            elif report.kind is ReportKind.INCIDENT and report.incident is not None:
                placement = self._placer.place_incident(report.incident)
        except Exception as exc:
            log.exception("placing report %r failed; dead-lettered", key)
            return self._dead(report.source, f"the normaliser failed on this report: {exc!r}", raw, key)
        record = Record(self._topics.placed, key.encode(), encode_placed(raw, placement))
        if max_bytes is not None and placement is not None and record.size > max_bytes:
            record = Record(self._topics.placed, key.encode(), encode_placed(raw, None))
        return record

    def decide_many(self, items: Sequence[tuple[str, bytes, Placement | None]]) -> list[Record]:
        """Stage 2: each (key, raw report, its placement from stage 1) decided in order, as `process` would.

        A missing placement (operator actions, or a placed record without one) is computed here."""
        out: list[Record] = []
        for key, raw, placement in items:
            out.extend(self._guarded(key, raw, _parse(raw), placement))
        return out

    def process_many(self, items: Sequence[tuple[str, bytes]]) -> list[Record]:
        """:meth:`process` of each (key, raw report) in order, the batch's closures placed together.

        Why: placing a closure alone is mostly fixed numpy overhead that a batch shares (see
        :meth:`Placer.place_closures`). Placement depends on the closure only, never on the index,
        so placing first and applying in order gives the same records as one by one."""
        reports = [_parse(raw) for _, raw in items]
        placements = self._place_closures(reports)
        out: list[Record] = []
        for (key, raw), report, placement in zip(items, reports, placements, strict=True):
            out.extend(self._guarded(key, raw, report, placement))
        return out

    def _guarded(
        self, key: str, raw: bytes, report: Report | ValidationError, placement: Placement | None
    ) -> list[Record]:
        """:meth:`_process`, with a report that breaks it (a bug, or input nobody foresaw) turned into
        a dead letter: one poison report must not stop the normaliser, which would then fail on it
        again after every restart, and hold back every report behind it."""
        try:
            return self._process(key, raw, report, placement)
        except Exception as exc:
            log.exception("normalising report %r failed; dead-lettered", key)
            source = report.source if isinstance(report, Report) else "reports"
            return [self._dead(source, f"the normaliser failed on this report: {exc!r}", raw, key)]

    def _place_closures(self, reports: list[Report | ValidationError]) -> list[Placement | None]:
        """Placements of the closure reports (None elsewhere, and for all if the batch fails:
        those closures are then placed one by one, and only a failing one fails)."""
        out: list[Placement | None] = [None] * len(reports)
        at, closures = [], []
        for i, report in enumerate(reports):
            if isinstance(report, Report) and report.kind is ReportKind.CLOSURE and report.closure is not None:
                at.append(i)
                closures.append(report.closure)
        if len(closures) < 2:
            return out
        try:
            placed = self._placer.place_closures(closures)
        except Exception:
            log.exception("placing %d closures together failed; placing them one by one", len(closures))
            return out
        for i, placement in zip(at, placed, strict=True):
            out[i] = placement
        return out

    def _process(
        self, key: str, raw: bytes, report: Report | ValidationError, placement: Placement | None
    ) -> list[Record]:
        if isinstance(report, ValidationError):
            return [self._dead("reports", f"not a report: {report}", raw, key)]
        if report.kind is ReportKind.CLOSURE and report.closure is not None:
            return self._emit(*self._closure(report.closure, report.received_at, placement))
        if report.kind is ReportKind.INCIDENT and report.incident is not None:
            event = self._incident(report.incident, report.received_at, placement)
            return self._emit(event) if event is not None else []
        if report.kind is ReportKind.OPERATOR:
            return self._operator(report, raw, key)
        if report.kind is ReportKind.FETCH:
            return []  # raw payloads are kept for audit and replay; nothing to normalise
        return [self._dead(report.source, f"no normaliser for report kind {report.kind.value!r}", raw, key)]

    def _emit(self, *events: Event) -> list[Record]:
        """The records of `events`, each indexed at once; an event that would change only in version and
        time of writing is left as it is (a decision taken again, see the module's docstring)."""
        records = []
        for event in events:
            before = self.index.get(event.id)
            if before is not None and _unchanged(before, event):
                continue
            raw = encode(event)
            self.index.put(event.id, event, raw)  # the index holds these very bytes (no second copy)
            records.append(Record(self._topics.events, event.id.encode(), raw))
        return records

    def _operator(self, report: Report, raw: bytes, key: str) -> list[Record]:
        try:
            action = OperatorAction.model_validate(report.payload)
        except ValidationError as exc:
            return [self._dead(report.source, f"not an operator action: {exc}", raw, key)]
        event = self.index.get(action.event_id)
        target = self.index.get(action.into) if action.into else None
        if event is None or (action.action == "merge" and target is None):
            return [self._dead(report.source, "the action's event no longer exists", raw, key)]
        if _acted(event, action):
            return []  # this very action is already on the event: decided again
        return self._emit(*apply_action(action, event, target, report.received_at))

    def _dead(self, source: str, reason: str, raw: bytes, key: str) -> Record:
        return dead_letter(self._topics, stage="normaliser", source=source, reason=reason, raw=raw, key=key)

    def _closure(
        self, closure: ClosureState, received_at: datetime, placement: Placement | None = None
    ) -> list[Event]:
        """The closure's event, and the incident events it took in (see `_absorb`)."""
        existing = self.index.get(closure.id)
        if existing is not None and existing.closure is not None and existing.closure.version > closure.version:
            return []  # an older version of the closure than the one applied: a report decided again
        placed = placement if placement is not None else self._placer.place_closure(closure)
        event = closure_event(closure, placed, received_at)
        if existing is not None:
            folded = [s for s in existing.sources if s.kind != "closure"]  # reports merged into it stay listed
            kept = {"verification": existing.verification, "ended_by": existing.ended_by}  # operators' decisions
            lifecycle = Lifecycle.ENDED if existing.ended_by and not closure.cancelled else event.lifecycle
            version = max(event.version, existing.version + 1)  # folded reports counted too: never backwards
            update = {"sources": [*event.sources, *folded], "lifecycle": lifecycle, "version": version, **kept}
            event = event.model_copy(update=update)
        return self._absorb(event)

    def _absorb(self, closure: Event) -> list[Event]:
        """`closure` with the incident events it is about taken in, then those events, ended and merged into it.

        A report that arrives after a closure joins it (`_incident`); one that arrived before has an
        event of its own, which the closure takes in here by the same test, so that the events are
        the same whatever the order of arrival (a driver's report of the works, or Waze's echo of
        our closure, often comes first)."""
        now, alone = self._clock(), closure
        merged: list[Event] = []
        try:
            for candidate in self.index.absorbable(closure, now):
                moved = self._sources_about(closure, candidate, now)
                if moved:
                    closure = closure.model_copy(update={"sources": _replaced(closure.sources, moved)})
                    merged.append(merged_event(candidate, closure.id, now))
        except Exception:  # a bug in taking reports in must not cost the team's closure its publication
            log.exception("closure %s: taking in the events it is about failed; published alone", closure.id)
            return [alone]
        return [closure, *merged]

    def _sources_about(self, closure: Event, candidate: Event, now: datetime) -> list[SourceReport]:
        """The sources of `candidate` to fold into `closure` (none when it is not about the closure).

        The event is about the closure when its strongest report would have joined the closure had it
        come after it; then every report moves, each with the reason it would have been given then."""
        primary = primary_report(candidate.sources)
        if primary is None or candidate.normalised is None:
            return []
        reason = same_incident(closure, primary, candidate.normalised, now)
        if reason is None:
            return []
        moved = []
        for source in candidate.sources:
            if source.incident is None:
                continue  # operators' records stay with the event they were about
            own = reason
            if source.incident is not primary:
                placed = self._place_incident(source.incident).normalised
                own = same_incident(closure, source.incident, placed, now) or reason
            moved.append(source.model_copy(update={"match_reason": own}))
        return moved

    def _place_incident(self, report: IncidentReport, placement: Placement | None = None) -> Placement:
        """`Placer.place_incident`, remembered: a decision places again the strongest report of an event
        (when another report joins it) and the reports of an event a closure takes in, which were placed
        before (by stage 1, handed over as `placement`). Placement is a pure function of what the key
        holds (what `NetworkPlacer.place_incident` reads), so remembering it changes no result."""
        key = _placement_key(report)
        if placement is None:
            placement = self._placements.get(key)
            if placement is None:
                placement = self._placer.place_incident(report)
        self._placements[key] = placement
        self._placements.move_to_end(key)
        if len(self._placements) > PLACEMENTS_KEPT:
            self._placements.popitem(last=False)
        return placement

    def _incident(
        self, report: IncidentReport, received_at: datetime, placement: Placement | None = None
    ) -> Event | None:
        now = self._clock()
        existing = self.index.by_source(report.source, report.source_id)
        if existing is None and report.ended:
            return None  # nothing to end
        if existing is not None and (_stale(existing, report) or _applied(existing, report, received_at)):
            return None
        placement = self._place_incident(report, placement)
        reason = _reason_of(existing, report)
        if existing is None:
            match = self.index.find(report, placement.normalised, now)
            existing, reason = (match.event, match.reason) if match else (None, None)
        source = provenance(report, received_at, reason)
        if existing is not None and existing.closure is not None:
            return closure_with_source(existing, source, now)
        sources = with_source(existing, source) if existing else [source]
        primary = primary_report(sources) or report
        if primary is not report:
            placement = self._place_incident(primary)
        event_id = existing.id if existing else event_id_for(report)
        return incident_event(event_id, sources, primary, placement, existing, now)


def _parse(raw: bytes) -> Report | ValidationError:
    try:
        return Report.model_validate_json(raw)
    except ValidationError as exc:
        return exc


def _reason_of(event: Event | None, report: IncidentReport) -> str | None:
    if event is None:
        return None
    for source in event.sources:
        if (source.source, source.source_id) == (report.source, report.source_id):
            return source.match_reason
    return None


def _placement_key(report: IncidentReport) -> str:
    """What an incident's placement depends on (`NetworkPlacer.place_incident`), as one string."""
    return f"{report.geometry.model_dump_json()}\x1f{report.openlr}\x1f{report.street}\x1f{report.direction.value}"


def _applied(event: Event, report: IncidentReport, received_at: datetime) -> bool:
    """The event already holds this report of the source, or a later one: the report is decided again.

    Why by reception time: one item's reports are keyed alike, so they reach the normaliser in the order
    their connector received them; one that comes after a later one of its item was applied is a
    replay (a stage that crashed before committing, a decision owner that changed), never news."""
    for source in event.sources:
        if (source.source, source.source_id) != (report.source, report.source_id) or source.incident is None:
            continue
        before, now = micros(source.received_at), micros(received_at)  # instants (see `conflation`)
        return before > now if before != now else source.incident == report
    return False


def _acted(event: Event, action: OperatorAction) -> bool:
    """The event already lists this operator action (same operator, same moment, same action)."""
    said = f"{action.by}:{action.at.isoformat()}"
    return any(
        s.kind == "operator" and s.source_id == said and s.said.get("action") == action.action for s in event.sources
    )


def _unchanged(before: Event, after: Event) -> bool:
    """`after` is `before` but for its version and time of writing."""
    return after.model_copy(update={"version": before.version, "updated_at": before.updated_at}) == before


def _replaced(sources: list[SourceReport], moved: list[SourceReport]) -> list[SourceReport]:
    """`sources` with `moved` added, each replacing an earlier entry of its item (one entry per item)."""
    keys = {(s.source, s.source_id) for s in moved}
    return [*(s for s in sources if (s.source, s.source_id) not in keys), *moved]


def _stale(event: Event, report: IncidentReport) -> bool:
    """An older version of a source's record than the one already applied (DATEX II versions)."""
    for source in event.sources:
        if (source.source, source.source_id) != (report.source, report.source_id) or source.incident is None:
            continue
        before, now = source.incident.source_version, report.source_version
        if before and now and before.isdigit() and now.isdigit():
            return int(now) < int(before)
    return False
