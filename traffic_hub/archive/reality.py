"""The reality check: is a closure really in place? Waze users driving on it say it is not.

A closed road carries no traffic, so Waze (whose data stays internal: its terms keep it out of public
feeds) should see none on it. A flag is raised on a full closure (type `closure`; a lane closure lets
traffic pass by design) when, while the closure is active (validity and weekly windows, before it
ended), at least `MIN_EVIDENCE` Waze reports contradict it:
- a Waze jam or irregularity that is moving (speed ≥ `MOVING_KMH` km/h, or level 1-4 when no speed is
  given) and runs along the closed line: at least `ALONG_M` metres of it (or half of a shorter one) lie
  within `BUFFER_M` metres of the line; for a one-direction closure, only one heading the same way;
- a Waze alert that only drivers on the road send (JAM, ACCIDENT, POLICE) within `BUFFER_M` metres.
A report of the same item counts again (Waze saw traffic at two moments). Reports that agree with the
closure (a ROAD_CLOSED alert, a level-5 "blocked" jam) are counted and shown, but do not lower a flag:
Waze may know a closure on part of the line while cars pass on the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg.rows import dict_row

from traffic_hub.archive.analytics_closures import DEG_PER_M, ArchivedClosure

BUFFER_M = 20.0
ALONG_M = 50.0
MOVING_KMH = 5.0
MIN_EVIDENCE = 2
DRIVER_ALERTS = frozenset({"JAM", "ACCIDENT", "POLICE"})
MAX_SHOWN = 20

CANDIDATES = """
    WITH closed AS (SELECT ST_GeomFromGeoJSON(%(line)s) AS g)
    SELECT o.received_at, o.kind, o.key, o.source, o.waze_type, o.subtype, o.street, o.level, o.speed_kmh,
           o.delay_s, o.length_m,
           ST_Length(ST_Intersection(ST_Transform(o.geom, 2154), ST_Buffer(ST_Transform(closed.g, 2154), %(buffer)s)))
               AS along_m,
           ST_Length(ST_Transform(o.geom, 2154)) AS line_m,
           CASE WHEN GeometryType(o.geom) = 'LINESTRING' AND NOT ST_Equals(ST_StartPoint(o.geom), ST_EndPoint(o.geom))
                THEN degrees(ST_Azimuth(ST_StartPoint(o.geom), ST_EndPoint(o.geom))) END AS heading,
           degrees(ST_Azimuth(ST_StartPoint(closed.g), ST_EndPoint(closed.g))) AS closure_heading
    FROM waze_observations o, closed
    WHERE o.received_at >= %(start)s AND o.received_at < %(end)s AND NOT o.ended
      AND o.geom && ST_Expand(closed.g, %(deg)s)
      AND ST_DWithin(o.geom::geography, closed.g::geography, %(buffer)s)
    ORDER BY o.received_at
"""


@dataclass(frozen=True)
class Verdict:
    contradicts: bool
    confirms: bool
    why: str
    code: str = ""  # for the pages to translate: moving_traffic, driver_alert, waze_closed, waze_blocked


def judge(row: dict[str, Any], one_direction: bool) -> Verdict:
    """What one Waze report says of the closure (the rules of the module's docstring)."""
    if row["kind"] == "waze-alert":
        kind = row["waze_type"] or ""
        if kind == "ROAD_CLOSED":
            return Verdict(False, True, "Waze users report the road closed", "waze_closed")
        if kind in DRIVER_ALERTS:
            return Verdict(True, False, f"a {kind} alert from a driver on the closed road", "driver_alert")
        return Verdict(False, False, "")
    level = row["level"]
    if level is not None and level >= 5:
        return Verdict(False, True, "Waze shows the road blocked", "waze_blocked")
    speed = row["speed_kmh"]
    moving = speed >= MOVING_KMH if speed is not None else level is not None and 1 <= level <= 4
    along = row["along_m"] or 0.0
    runs_along = along >= min(ALONG_M, 0.5 * (row["line_m"] or 0.0)) and along > 0
    if not moving or not runs_along:
        return Verdict(False, False, "")
    if one_direction and not _same_way(row["heading"], row["closure_heading"]):
        return Verdict(False, False, "")
    return Verdict(True, False, f"traffic moving at {speed if speed is not None else '?'} km/h on the closed road",
                   "moving_traffic")


def _same_way(heading: float | None, closure_heading: float | None) -> bool:
    if heading is None or closure_heading is None:
        return True
    gap = abs(heading - closure_heading) % 360
    return min(gap, 360 - gap) < 90


async def reality_check(
    conn: psycopg.AsyncConnection[Any], archived: ArchivedClosure, now: datetime, tz: ZoneInfo
) -> dict[str, Any]:
    """The closure's flag and the Waze reports behind it (internal: never for a public feed)."""
    event = archived.event
    base = {"closure_id": event.id, "rule": f"at least {MIN_EVIDENCE} Waze reports of traffic on the closed road "
            "while it is active", "flagged": False, "contradicting": 0, "confirming": 0, "first_seen": None,
            "last_seen": None, "evidence": []}
    until = archived.until(now)
    if event.type.value != "closure" or until <= event.validity.starts_at:
        return base
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(CANDIDATES.encode(), {
        "line": archived.line, "buffer": BUFFER_M, "deg": BUFFER_M * 4 * DEG_PER_M,
        "start": event.validity.starts_at, "end": until if event.validity.ends_at is None
        else min(until, event.validity.ends_at),
    })
    one_way = event.direction.value == "ONE_DIRECTION"
    contradicting: list[dict[str, Any]] = []
    confirming = 0
    for row in await cur.fetchall():
        if not event.validity.in_window(row["received_at"], tz):
            continue
        verdict = judge(row, one_way)
        confirming += verdict.confirms
        if verdict.contradicts:
            contradicting.append(_evidence(row, verdict))
    flagged = len(contradicting) >= MIN_EVIDENCE
    return {**base, "flagged": flagged, "contradicting": len(contradicting), "confirming": confirming,
            "first_seen": contradicting[0]["at"] if contradicting else None,
            "last_seen": contradicting[-1]["at"] if contradicting else None, "evidence": contradicting[-MAX_SHOWN:]}


def _evidence(row: dict[str, Any], verdict: Verdict) -> dict[str, Any]:
    return {"at": row["received_at"], "kind": row["kind"], "waze_type": row["waze_type"], "street": row["street"],
            "level": row["level"], "speed_kmh": row["speed_kmh"], "along_m": round(row["along_m"] or 0.0, 1),
            "why": verdict.why, "code": verdict.code}
