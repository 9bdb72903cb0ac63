"""The history's reads: one item's versions, past events in a window or at an instant, a day's ended events.

Every function takes a connection (from `store.HistoryDb`) and returns plain data; the API shapes it.

Past events come from `event_spans` (one row per event: its life as a range, kept by the schema's
trigger) and the version rows. A window [from, to) is walked in two disjoint parts so that no page ever
sorts the whole window: first the events already alive at `from` (a GiST stab of `life`: at most what was
live at one instant), then those that appeared in the window, in `(first_at, event_id)` order straight from
a b-tree. Both parts share that order, so the cursor (the last `(first_at, event_id)` returned) is stable:
a page never repeats or skips an event already archived. `at=T` is the first part alone, at T. Each event
is returned as its version current at T (for a window: at `to`, the last version before it).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import psycopg
from psycopg import sql

Conn = psycopg.AsyncConnection[Any]


@dataclass(frozen=True)
class EventFilter:
    commune: str | None = None
    type: str | None = None
    source: str | None = None
    bbox: tuple[float, float, float, float] | None = None  # min lon, min lat, max lon, max lat


@dataclass(frozen=True)
class Cursor:
    first_at: datetime
    event_id: str

    def encode(self) -> str:
        raw = orjson.dumps({"t": self.first_at.isoformat(), "id": self.event_id})
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """ValueError when the text is not a cursor this API gave."""
        try:
            doc = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
            return cls(datetime.fromisoformat(doc["t"]), str(doc["id"]))
        except (ValueError, KeyError, TypeError, orjson.JSONDecodeError) as exc:
            raise ValueError("not a cursor of this endpoint") from exc


@dataclass(frozen=True)
class PastEvent:
    event_id: str
    first_at: datetime
    life_from: datetime
    life_to: datetime | None  # None: still open (no end known)
    version_at: datetime  # the record time of the version returned
    event: dict[str, Any]


@dataclass(frozen=True)
class Page:
    items: list[PastEvent]
    next: Cursor | None


def _filters(f: EventFilter) -> tuple[list[sql.Composable], dict[str, Any]]:
    where: list[sql.Composable] = []
    params: dict[str, Any] = {}
    if f.commune is not None:
        where.append(sql.SQL("commune = %(commune)s"))
        params["commune"] = f.commune
    if f.type is not None:
        where.append(sql.SQL("type = %(type)s"))
        params["type"] = f.type
    if f.source is not None:
        where.append(sql.SQL("sources @> ARRAY[%(source)s]::text[]"))
        params["source"] = f.source
    if f.bbox is not None:
        where.append(sql.SQL(
            "geom && ST_MakeEnvelope(%(x0)s, %(y0)s, %(x1)s, %(y1)s, 4326) "
            "AND ST_Intersects(geom, ST_MakeEnvelope(%(x0)s, %(y0)s, %(x1)s, %(y1)s, 4326))"
        ))
        params.update(zip(("x0", "y0", "x1", "y1"), f.bbox, strict=True))
    return where, params


# an open life ends at 'infinity', which Python's datetime cannot hold: None instead
SPAN_COLUMNS = sql.SQL("event_id, first_at, lower(life), nullif(upper(life), 'infinity'::timestamptz), last_at")
RANGE = sql.SQL("SELECT {} FROM event_spans WHERE {} ORDER BY first_at, event_id LIMIT %(limit)s")
# The events alive at an instant: the GiST stab of `life` first (a materialised CTE), then sorted. Left to
# choose, a *generic* plan (psycopg prepares a statement run 5 times; PostgreSQL may then keep a plan made
# without the parameters' values) walks the (first_at, event_id) b-tree from the archive's first day and
# filters every span: 600 ms on ~350,000 spans, seconds on a year at MEL scale (the day-window p99).
STAB = sql.SQL(
    "WITH alive AS MATERIALIZED (SELECT {} FROM event_spans WHERE {}) "
    "SELECT * FROM alive ORDER BY 2, 1 LIMIT %(limit)s"
)


async def _spans(conn: Conn, condition: sql.Composable, params: dict[str, Any], f: EventFilter,
                 after: Cursor | None, limit: int, stab: bool = False) -> list[tuple[Any, ...]]:
    where, extra = _filters(f)
    clauses = [condition, *where]
    if after is not None:
        clauses.append(sql.SQL("(first_at, event_id) > (%(c_at)s, %(c_id)s)"))
        extra.update(c_at=after.first_at, c_id=after.event_id)
    template = STAB if stab else RANGE
    query = template.format(SPAN_COLUMNS, sql.SQL(" AND ").join(clauses))
    cur = await conn.execute(query, {**params, **extra, "limit": limit})
    return list(await cur.fetchall())


async def _alive_at(conn: Conn, at: datetime, f: EventFilter, after: Cursor | None,
                    limit: int) -> list[tuple[Any, ...]]:
    return await _spans(conn, sql.SQL("life @> %(at)s::timestamptz"), {"at": at}, f, after, limit, stab=True)


async def _appeared(conn: Conn, start: datetime, end: datetime, f: EventFilter, after: Cursor | None,
                    limit: int) -> list[tuple[Any, ...]]:
    condition = sql.SQL("first_at > %(start)s AND first_at < %(end)s AND NOT isempty(life)")
    return await _spans(conn, condition, {"start": start, "end": end}, f, after, limit)


async def _versions_at(conn: Conn, spans: list[tuple[Any, ...]], at: datetime, inclusive: bool) -> dict[str, Any]:
    """Each span's event version current at `at` (the last one before it when not `inclusive`).

    One backward index step per event, bounded by the event's own first and last record times, so the
    planner prunes the month partitions per event at run time (a closure alive for months costs a few
    partitions; a day-long jam one) instead of probing every partition a page's oldest event reaches."""
    if not spans:
        return {}
    bound = sql.SQL("<=") if inclusive else sql.SQL("<")
    query = sql.SQL(
        "SELECT s.event_id, v.received_at, v.event::text "
        "FROM unnest(%(ids)s::text[], %(firsts)s::timestamptz[], %(lasts)s::timestamptz[]) AS s(event_id, first_at, "
        "last_at) CROSS JOIN LATERAL (SELECT received_at, event FROM event_versions "
        "WHERE event_id = s.event_id AND received_at >= s.first_at AND received_at <= s.last_at "
        "AND received_at {} %(at)s AND NOT deleted AND event ? 'id' "
        'ORDER BY received_at DESC, "offset" DESC LIMIT 1) v'
    ).format(bound)
    params = {"ids": [s[0] for s in spans], "firsts": [s[1] for s in spans], "lasts": [s[4] for s in spans], "at": at}
    cur = await conn.execute(query, params)
    # the JSON as text, parsed by orjson: several times faster than the driver's json.loads per document
    return {str(row[0]): (row[1], orjson.loads(row[2])) for row in await cur.fetchall()}


def _page(spans: list[tuple[Any, ...]], versions: dict[str, Any]) -> list[PastEvent]:
    items: list[PastEvent] = []
    for event_id, first_at, low, high, _ in spans:
        found = versions.get(event_id)
        if found is None:
            continue
        items.append(PastEvent(event_id, first_at, low, high, found[0], found[1]))
    return items


async def events_at(conn: Conn, at: datetime, f: EventFilter, after: Cursor | None, limit: int) -> Page:
    """The events alive at `at` (each as its version current at `at`), a page in (first_at, id) order."""
    spans = await _alive_at(conn, at, f, after, limit + 1)
    more = len(spans) > limit
    spans = spans[:limit]
    items = _page(spans, await _versions_at(conn, spans, at, inclusive=True))
    return Page(items, Cursor(spans[-1][1], spans[-1][0]) if more and spans else None)


async def events_between(conn: Conn, start: datetime, end: datetime, f: EventFilter, after: Cursor | None,
                         limit: int) -> Page:
    """The events whose life overlaps [start, end), each as its last version before `end`: first those
    alive at `start`, then those that appeared inside (see the module doc)."""
    spans: list[tuple[Any, ...]] = []
    if after is None or after.first_at <= start:
        spans = await _alive_at(conn, start, f, after, limit + 1)
    if len(spans) <= limit:
        cursor = after if after is not None and after.first_at > start else None
        spans += await _appeared(conn, start, end, f, cursor, limit + 1 - len(spans))
    more = len(spans) > limit
    spans = spans[:limit]
    items = _page(spans, await _versions_at(conn, spans, end, inclusive=False))
    return Page(items, Cursor(spans[-1][1], spans[-1][0]) if more and spans else None)


@dataclass(frozen=True)
class Version:
    """One archived record of an item: when the hub took it, its offset, and the document."""

    at: datetime
    offset: int
    deleted: bool
    doc: dict[str, Any] | None
    principal: str | None = None


async def report_versions(conn: Conn, kind: str, key: str) -> list[Version]:
    """Every report of `kind` about `key` (a closure's or a measure's versions), in order."""
    cur = await conn.execute(
        'SELECT received_at, "offset", deleted, payload, principal FROM reports WHERE key = %s AND kind = %s '
        'ORDER BY received_at, "offset"', (key, kind),
    )
    return [Version(r[0], int(r[1]), bool(r[2]), r[3], r[4]) for r in await cur.fetchall()]


async def event_versions(conn: Conn, event_id: str, limit: int) -> list[Version]:
    """The first `limit` archived versions of an event (tombstones included), in order."""
    cur = await conn.execute(
        'SELECT received_at, "offset", deleted, event FROM event_versions WHERE event_id = %s '
        'ORDER BY received_at, "offset" LIMIT %s', (event_id, limit),
    )
    return [Version(r[0], int(r[1]), bool(r[2]), r[3]) for r in await cur.fetchall()]


async def ended_between(conn: Conn, start: datetime, end: datetime) -> list[PastEvent]:
    """Events whose life ended in [start, end), not Waze-only, each as its last version before `end` (the
    open-data history's day file; the API drops the cancelled ones and applies the open feed's gate)."""
    cur = await conn.execute(
        sql.SQL("SELECT {} FROM event_spans "
                "WHERE upper(life) >= %s AND upper(life) < %s AND NOT waze_only AND NOT isempty(life) "
                "ORDER BY upper(life), event_id").format(SPAN_COLUMNS), (start, end),
    )
    spans = list(await cur.fetchall())
    items: list[PastEvent] = []
    for chunk in range(0, len(spans), 1000):
        part = spans[chunk:chunk + 1000]
        items += _page(part, await _versions_at(conn, part, end, inclusive=False))
    return items


async def ended_days(conn: Conn, since: datetime, until: datetime, tz: str) -> list[tuple[str, int]]:
    """(local date, count) of the days in [since, until) on which publishable events ended."""
    cur = await conn.execute(
        "SELECT to_char((upper(life) AT TIME ZONE %s)::date, 'YYYY-MM-DD') AS day, count(*) FROM event_spans "
        "WHERE upper(life) >= %s AND upper(life) < %s AND NOT waze_only AND NOT isempty(life) "
        "GROUP BY day ORDER BY day", (tz, since, until),
    )
    return [(str(d), int(n)) for d, n in await cur.fetchall()]
