"""Realistic archive rows for the analytics tests: the hub's own models, turned into rows by the archiver's code.

Why not through Kafka: the analytics maths need reports at chosen instants weeks in the past, and a Kafka
record's timestamp (the row's `received_at`) is the broker's clock. So the tests build the very `Report`
and `Event` documents the hub writes, map them with `traffic_hub.archive.rows` and insert them with the
archiver's own statements (the migration's trigger fills `waze_observations`, as in production).
"""

from __future__ import annotations

import asyncio
import itertools
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from traffic_hub.archive import rows, schema
from traffic_hub.archive.service import INSERT_EVENT, INSERT_REPORT
from traffic_hub.model import Report
from traffic_hub.model.closure import ClosureState
from traffic_hub.model.event import Event, SourceReport
from traffic_hub.model.incident import IncidentReport
from traffic_hub.model.validity import Schedule, Validity
from traffic_hub.model.vocabulary import Direction, EventType, Lifecycle

PARIS = ZoneInfo("Europe/Paris")
# Rue Solférino, Lille (west → east), and a street 2 km away
SOLFERINO = [(3.0560, 50.6300), (3.0590, 50.6305), (3.0620, 50.6310)]
PARALLEL_80M = [(3.0560, 50.63072), (3.0590, 50.63122), (3.0620, 50.63172)]  # ~80 m north
NEAR_200M = [(3.0565, 50.6318), (3.0600, 50.6320)]  # ~200 m north
FAR_2KM = [(3.0850, 50.6300), (3.0880, 50.6305)]


def monday_of_last_week(now: datetime) -> datetime:
    """Monday 00:00 local of the week before this one (a week wholly in the past, from the clock)."""
    local = now.astimezone(PARIS)
    monday = (local - timedelta(days=local.weekday() + 7)).date()
    return datetime(monday.year, monday.month, monday.day, tzinfo=PARIS).astimezone(UTC)


def local(day: datetime, days: int, hour: int, minute: int = 0) -> datetime:
    """`days` days after the local midnight `day`, at local hour:minute, in UTC (DST-correct)."""
    d = (day.astimezone(PARIS) + timedelta(days=days)).date()
    return datetime(d.year, d.month, d.day, hour, minute, tzinfo=PARIS).astimezone(UTC)


def line(points: list[tuple[float, float]]) -> dict[str, Any]:
    return {"type": "LineString", "coordinates": [list(p) for p in points]}


def jam(uuid: str, at: datetime, points: list[tuple[float, float]], delay: float, length: float,
        speed: float = 12.0, level: int = 3, street: str = "Rue Solférino", ended: bool = False) -> Report:
    incident = IncidentReport(
        source="waze-mel", kind="waze-jam", source_id=f"jam-{uuid}", type=EventType.JAM, description="jam",
        geometry=line(points), direction=Direction.ONE_DIRECTION, street=street, city="Lille",
        validity=Validity(starts_at=at), observed_at=at, ended=ended,
        said={"level": level, "speedKMH": speed, "delay": delay, "length": length},
    )
    return Report(key=f"waze-mel:jam-{uuid}", kind="incident", source="waze-mel", received_at=at, incident=incident)


def alert(uuid: str, at: datetime, point: tuple[float, float], waze_type: str) -> Report:
    incident = IncidentReport(
        source="waze-mel", kind="waze-alert", source_id=uuid, type=EventType.HAZARD, description=waze_type,
        geometry={"type": "Point", "coordinates": list(point)}, street="Rue Solférino", city="Lille",
        validity=Validity(starts_at=at), observed_at=at, said={"type": waze_type},
    )
    return Report(key=f"waze-mel:{uuid}", kind="incident", source="waze-mel", received_at=at, incident=incident)


def event(event_id: str, kind: EventType, at: datetime, starts: datetime, ends: datetime | None = None,
          commune: str = "59350", version: int = 1, lifecycle: Lifecycle = Lifecycle.OPEN,
          points: list[tuple[float, float]] | None = None, schedule: Schedule | None = None,
          direction: Direction = Direction.BOTH_DIRECTIONS, owner: str = "voirie-lille") -> Event:
    geometry = line(points or SOLFERINO)
    validity = Validity(starts_at=starts, ends_at=ends, schedule=schedule)
    closure = None
    if kind in (EventType.CLOSURE, EventType.LANE_CLOSURE):
        closure = ClosureState(
            id=event_id, reference=f"REF-{event_id}", owner=owner, owner_communes=[commune], communes=[commune],
            version=version, description="Travaux", geometry=geometry, street="Rue Solférino",
            direction=direction, starts_at=starts, ends_at=ends or starts + timedelta(days=30), schedule=schedule,
            created_at=at, updated_at=at,
        )
    return Event(
        id=event_id, type=kind, description="test", geometry=geometry, direction=direction, street="Rue Solférino",
        commune=commune, validity=validity, lifecycle=lifecycle, version=version,
        sources=[SourceReport(source="test", source_id=event_id, kind=kind.value, received_at=at)],
        closure=closure, created_at=at, updated_at=at,
    )


@dataclass
class Archive:
    """Rows to insert, in order; offsets are counted per topic as Kafka would."""

    reports: list[Report] = field(default_factory=list)
    events: list[tuple[datetime, Event]] = field(default_factory=list)
    _offsets: itertools.count[int] = field(default_factory=itertools.count)

    def write(self, url: str) -> None:
        """In a thread of its own: the browser tests' thread already runs Playwright's event loop."""
        with ThreadPoolExecutor(1) as pool:
            pool.submit(lambda: asyncio.run(self._write(url))).result()

    async def _write(self, url: str) -> None:
        async with await psycopg.AsyncConnection.connect(url) as conn:
            await schema.migrate(conn)
            event_rows = [self._event_row(at, e) for at, e in self.events]
            report_rows = [self._report_row(r) for r in self.reports]
            async with conn.transaction():
                months = {("event_versions", schema.month_start(r[3])) for r in event_rows}
                months |= {("reports", schema.month_start(r[3])) for r in report_rows}
                for table, start in sorted(months):
                    await schema.ensure_partition(conn, table, start)
                async with conn.cursor() as cur:
                    if event_rows:
                        await cur.executemany(INSERT_EVENT, event_rows)
                    if report_rows:
                        await cur.executemany(INSERT_REPORT, report_rows)

    def _event_row(self, at: datetime, doc: Event) -> rows.Row:
        ms = int(at.timestamp() * 1000)
        row, geo = rows.event_row("t.events", 0, next(self._offsets), ms, doc.id.encode(),
                                  doc.model_dump_json().encode())
        return (*row, geo)

    def _report_row(self, report: Report) -> rows.Row:
        ms = int(report.received_at.timestamp() * 1000)
        return rows.report_row("t.reports", 0, next(self._offsets), ms, report.key.encode(),
                               report.model_dump_json().encode())
