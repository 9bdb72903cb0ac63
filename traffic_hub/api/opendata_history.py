"""Open-data history (issue 19): one file per day of the events that ended that day, public like the live
open feed and under its rules, generated from the archive.

`/feeds/opendata/history/index.json` lists the days; `/feeds/opendata/history/YYYY-MM-DD.geojson`, `.csv`
and `.parquet` (GeoParquet 1.1: WKB geometry, written with pyarrow, already a dependency for the road
network, so no geopandas or GDAL) are the day's files. A day is a Europe/Paris calendar day, and a file
exists once the day is over. Each event appears as its last version before the end of the day, with the
live open feed's columns (`traffic_hub.feeds.opendata`) and its status `ended`.

Licensing is the live feed's, by the same code: its gate (`check_opendata`, minus the "is it current"
test that a past event fails by definition) and its renderers. So Waze-only events never appear (Waze's
terms forbid redistribution), Waze is left out of `sources`, what sources said is not published, road-works
teams appear as "roadworks". Cancelled events (a closure deleted) are left out: they did not happen as
published. Past days do not change, so their files are cached and carry a strong ETag.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections import OrderedDict
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import shapely
import shapely.geometry
from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

from traffic_hub.api.conditional import etag_listed
from traffic_hub.api.deps import HistoryDep, SettingsDep
from traffic_hub.archive import queries
from traffic_hub.errors import NotFound
from traffic_hub.feeds.base import FeedContext
from traffic_hub.feeds.context import feed_context
from traffic_hub.feeds.opendata import (
    COLUMNS,
    LICENSE,
    LICENSE_URL,
    OSM_ATTRIBUTION,
    check_opendata,
    geometry_of,
    properties_of,
    render_csv,
    render_geojson,
)
from traffic_hub.model import Event
from traffic_hub.model.vocabulary import Lifecycle
from traffic_hub.settings import Settings

PREFIX = "/feeds/opendata/history"
router = APIRouter(prefix=PREFIX, tags=["feeds"])

FORMATS = {"geojson": "application/geo+json", "csv": "text/csv; charset=utf-8; header=present",
           "parquet": "application/vnd.apache.parquet"}
FILE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.(geojson|csv|parquet)$")
INDEX_DAYS = 400  # the index lists this many days back (the archive's retention decides what exists)
SETTLED = timedelta(hours=1)  # a day's file is cached once the day ended this long ago (the archiver caught up)
_CACHE: OrderedDict[tuple[str, str, str], tuple[bytes, str]] = OrderedDict()
_CACHE_SIZE = 64


def day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) of a local calendar day, in UTC (23 or 25 hours on DST days)."""
    start = datetime.combine(day, time(0), tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)


def publishable(items: list[queries.PastEvent]) -> list[Event]:
    """The day's ended events the open feed's rules let out (see the module doc)."""
    out: list[Event] = []
    for item in items:
        try:
            event = Event.model_validate(item.event)
        except ValidationError:
            continue
        if event.lifecycle is Lifecycle.CANCELLED:
            continue
        live = event.model_copy(update={"lifecycle": Lifecycle.OPEN})  # as it stood while it was current
        when = FeedContext(now=event.validity.starts_at)
        if not check_opendata(live, when):
            out.append(event)
    return out


def parquet(events: list[Event], ctx: FeedContext, tz: ZoneInfo) -> bytes:
    """GeoParquet 1.1: the open feed's columns and a WKB `geometry` column (lon/lat, OGC:CRS84)."""
    rows = [properties_of(e, ctx, tz) for e in sorted(events, key=lambda e: e.id)]
    shapes = [shapely.geometry.shape(geometry_of(e.geometry)) for e in sorted(events, key=lambda e: e.id)]
    columns: dict[str, Any] = {name: [r[name] for r in rows] for name in COLUMNS}
    types = {name: pa.string() for name in COLUMNS}
    types.update(lanes_closed=pa.int32(), lanes_total=pa.int32(), version=pa.int64(), verified=pa.bool_())
    arrays = {name: pa.array(values, type=types[name]) for name, values in columns.items()}
    arrays["geometry"] = pa.array([shapely.to_wkb(s) for s in shapes], type=pa.binary())
    kinds = sorted({s.geom_type for s in shapes})
    bounds = [float(b) for b in shapely.total_bounds(shapes)] if shapes else []
    geo = {"version": "1.1.0", "primary_column": "geometry",
           "columns": {"geometry": {"encoding": "WKB", "geometry_types": kinds, "crs": None,
                                    **({"bbox": bounds} if shapes else {})}}}
    table = pa.table(arrays).replace_schema_metadata({
        "geo": orjson.dumps(geo).decode(),
        "license": LICENSE, "license_url": LICENSE_URL, "attribution": f"{ctx.publisher} ; {OSM_ATTRIBUTION}",
    })
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def render(events: list[Event], ext: str, ctx: FeedContext, tz: ZoneInfo) -> bytes:
    if ext == "geojson":
        return render_geojson(events, ctx)
    if ext == "csv":
        return render_csv(events, ctx)
    return parquet(events, ctx, tz)


def _answer(request: Request, body: bytes, etag: str, media_type: str, cache: str) -> Response:
    headers = {"ETag": etag, "Cache-Control": cache}
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None and etag_listed(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)


def _today(settings: Settings) -> tuple[date, ZoneInfo]:
    tz = ZoneInfo(settings.timezone)
    return datetime.now(UTC).astimezone(tz).date(), tz


UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"description": "the history archive is unavailable (or not configured): retry after Retry-After seconds"}
}


@router.get("/index.json", responses=UNAVAILABLE)
async def history_index(request: Request, settings: SettingsDep, db: HistoryDep) -> Response:
    """The days that have a history file, newest first, with their links (public, no key)."""
    today, tz = _today(settings)
    since, _ = day_bounds(today - timedelta(days=INDEX_DAYS), tz)
    until, _ = day_bounds(today, tz)
    async with db.connection() as conn:
        days = await queries.ended_days(conn, since, until, settings.timezone)
    base = f"{settings.public_url}{PREFIX}"
    body = orjson.dumps({
        "name": "traffic-events-history", "publisher": settings.publisher, "license": LICENSE,
        "license_url": LICENSE_URL, "attribution": f"{settings.publisher} ; {OSM_ATTRIBUTION}",
        "timezone": settings.timezone,
        "days": [{"date": d, "ended": n, **{ext: f"{base}/{d}.{ext}" for ext in FORMATS}} for d, n in reversed(days)],
    })
    etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
    return _answer(request, body, etag, "application/json", "public, max-age=300")


NO_FILE: dict[int | str, dict[str, Any]] = {404: {"description": "no such file (a day not over yet, or a bad name)"}}


@router.get("/{name}", responses=NO_FILE | UNAVAILABLE)
async def history_file(name: str, request: Request, settings: SettingsDep, db: HistoryDep) -> Response:
    """`YYYY-MM-DD.geojson`, `.csv` or `.parquet`: the events that ended that day (Europe/Paris), under
    the live open feed's licence and rules (public, no key)."""
    found = FILE.match(name)
    today, tz = _today(settings)
    try:
        day = date.fromisoformat(found[1]) if found else None
    except ValueError:
        day = None
    if found is None or day is None or day >= today:
        raise NotFound(f"no history file {name}: YYYY-MM-DD.geojson|csv|parquet of a day that is over")
    ext = found[2]
    key = (found[1], ext, settings.public_url)
    cached = _CACHE.get(key)
    if cached is None:
        start, end = day_bounds(day, tz)
        async with db.connection() as conn:
            items = await queries.ended_between(conn, start, end)
        ctx = feed_context(settings)(end, end)
        body = render(publishable(items), ext, ctx, tz)
        cached = (body, f'"{hashlib.sha256(body).hexdigest()[:32]}"')
        if end + SETTLED < datetime.now(UTC):
            _CACHE[key] = cached
            while len(_CACHE) > _CACHE_SIZE:
                _CACHE.popitem(last=False)
    return _answer(request, cached[0], cached[1], FORMATS[ext], "public, max-age=3600")
