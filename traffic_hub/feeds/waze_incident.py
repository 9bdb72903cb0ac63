"""One canonical event as CIFS incidents, in a form both the XML and the JSON renderer walk.

An event becomes one incident per `event.segments` item (a single-street, junction-to-junction
run). The incident id is the event id when there is one segment, else `{event.id}-{n}` (n from 1,
in segment order) with `parent_event` = the event id. Children are listed in the order of the
XSD (and of DiaLog's accepted feed); nested groups (`source`, `lane_impact`, `schedule`) are
`xs:sequence`s in the XSD, so their order is the XSD's.

Values are formatted here once: polyline `lat lon` pairs with 6 decimals, times in the
publisher's local time with offset and seconds precision (`2026-03-30T09:00:00+02:00`), text
stripped of characters XML 1.0 cannot carry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache, lru_cache
from zoneinfo import ZoneInfo

from traffic_hub.feeds.base import FeedContext
from traffic_hub.feeds.waze_types import LANE_CLOSED, WazeKind, waze_kind
from traffic_hub.model import Direction, Event, Schedule, Segment
from traffic_hub.model.validity import WEEKDAYS

Leaf = str | int
Group = tuple[tuple[str, Leaf], ...]
Element = tuple[str, str | Group]

DESCRIPTION_MAX = 500  # no documented limit; Waze shows it in a popup, keep it readable
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_SPACES = re.compile(r"\s+")
_ROADSIDES = frozenset({"LEFT", "MIDDLE", "RIGHT"})


@dataclass(frozen=True, slots=True)
class Incident:
    """One CIFS `<incident>`: its id, optional parent event id and children in XSD order."""

    id: str
    parent_event: str | None
    elements: tuple[Element, ...]


def clean_text(text: str | None) -> str:
    """`text` without XML-illegal characters, whitespace runs collapsed, stripped."""
    if not text:
        return ""
    if text.isprintable() and "  " not in text and text[0] != " " and text[-1] != " ":
        return text  # fast path: printable means no control, surrogate or non-character code point
    return _SPACES.sub(" ", _NOT_XML.sub("", text)).strip()


def description_of(event: Event) -> str:
    """The description Waze gets: cleaned, cut at a word boundary if over DESCRIPTION_MAX."""
    text = clean_text(event.description)
    if len(text) <= DESCRIPTION_MAX:
        return text
    cut = text[: DESCRIPTION_MAX - 1]
    head, space, _ = cut.rpartition(" ")
    return (head if space and len(head) > DESCRIPTION_MAX // 2 else cut).rstrip() + "…"


def rounded_points(segment: Segment) -> list[tuple[float, float]]:
    """The segment's (lon, lat) points rounded to 6 decimals, consecutive repeats dropped."""
    points: list[tuple[float, float]] = []
    for lon, lat in segment.coordinates:
        point = (round(lon, 6), round(lat, 6))
        if not points or points[-1] != point:
            points.append(point)
    return points


def polyline(segment: Segment) -> str:
    """CIFS polyline: blank-separated `lat lon` pairs (latitude first), 6 decimals, in travel
    order, consecutive repeats dropped: the points of `rounded_points`."""
    pairs: list[str] = []
    for lon, lat in segment.coordinates:
        pair = f"{lat:.6f} {lon:.6f}"
        if not pairs or pairs[-1] != pair:
            pairs.append(pair)
    return " ".join(pairs)


@lru_cache(maxsize=8192)  # every feed writes the same moments of an event: convert them once
def local_time(moment: datetime, tz: ZoneInfo) -> str:
    """`yyyy-MM-ddTHH:mm:ss+HH:MM` in `tz`, truncated to the second.

    Goes through UTC: `astimezone` returns a datetime already in `tz` unchanged, and wall-clock
    arithmetic can leave one on a non-existent local time (02:30 on the spring-forward night).
    """
    return moment.astimezone(UTC).astimezone(tz).replace(microsecond=0).isoformat()


def context_key(ctx: FeedContext) -> tuple[str, str, str, str]:
    """What of the context the incidents depend on (everything but `now`)."""
    return ctx.timezone, ctx.publisher, ctx.publisher_id, ctx.base_url


def incident_id(event: Event, index: int) -> str:
    """Id of the incident made from segment `index` (0-based) of `event`."""
    return event.id if len(event.segments) == 1 else f"{event.id}-{index + 1}"


def incidents_of(event: Event, ctx: FeedContext) -> list[Incident]:
    """The CIFS incidents of `event` (none when Waze has no type for it or it has no segment)."""
    kind = waze_kind(event)
    if kind is None or not event.segments:
        return []
    tz = ZoneInfo(ctx.timezone)
    head = _head(event, kind, ctx, tz)
    tail = _tail(event, kind, tz)
    parent = event.id if len(event.segments) > 1 else None
    return [
        Incident(
            id=incident_id(event, index),
            parent_event=parent,
            elements=(
                *head,
                ("street", clean_text(segment.street)),
                ("polyline", polyline(segment)),
                *tail,
            ),
        )
        for index, segment in enumerate(event.segments)
    ]


def _head(event: Event, kind: WazeKind, ctx: FeedContext, tz: ZoneInfo) -> list[Element]:
    elements: list[Element] = [
        ("creationtime", local_time(event.created_at, tz)),
        ("updatetime", local_time(event.updated_at, tz)),
    ]
    source = _source(event, ctx)
    if source:
        elements.append(("source", source))
    elements.append(("type", kind.type))
    if kind.subtype is not None:
        elements.append(("subtype", kind.subtype))
    elements.append(("description", description_of(event)))
    return elements


def _tail(event: Event, kind: WazeKind, tz: ZoneInfo) -> list[Element]:
    direction = Direction.BOTH_DIRECTIONS if event.direction is Direction.UNKNOWN else event.direction
    elements: list[Element] = [("direction", direction.value)]
    lane_impact = _lane_impact(event) if kind.subtype == LANE_CLOSED else ()
    if lane_impact:
        elements.append(("lane_impact", lane_impact))
    validity = event.validity
    elements.append(("starttime", local_time(validity.starts_at, tz)))
    if validity.ends_at is not None:
        elements.append(("endtime", local_time(validity.ends_at, tz)))
    if validity.schedule is not None:
        elements.append(("schedule", schedule_group(validity.schedule)))
    return elements


def _source(event: Event, ctx: FeedContext) -> Group:
    """`source`: reference = where the event came from, name/url = the publisher."""
    reference = clean_text(event.sources[0].source) or clean_text(ctx.publisher_id)
    return (("reference", reference), *_publisher(ctx.publisher, ctx.base_url)) if reference else ()


@cache
def _publisher(name: str, url: str) -> Group:
    return tuple((key, clean) for key, value in (("name", name), ("url", url)) if (clean := clean_text(value)))


def _lane_impact(event: Event) -> Group:
    """`lane_impact` from `event.lanes` ({"closed": 1, "total": 2, "side": "RIGHT"}), if complete."""
    lanes = event.lanes or {}
    closed, side = lanes.get("closed"), lanes.get("side")
    if type(closed) is not int or not 0 <= closed <= 99 or side not in _ROADSIDES:
        return ()
    return (("total_closed_lanes", closed), ("roadside", str(side)))


def schedule_group(schedule: Schedule) -> Group:
    """`schedule` children in XSD order; `everyday` alone when all seven days are the same."""
    days = [(day, ",".join(schedule.windows(day))) for day in WEEKDAYS]
    values = {windows for _, windows in days}
    if len(values) == 1:
        return (("everyday", days[0][1]),)
    return tuple((day, windows) for day, windows in days if windows)
