"""Event versions written straight into an archive database, at chosen record times (days in the past, from
the clock), through the same table and trigger the archiver uses: for tests that need history older than
a test can wait for."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import psycopg

from traffic_hub.archive.schema import month_start, next_month, partition_name

LILLE_LINE = [[3.052176, 50.632626], [3.053887, 50.633345]]
_offsets: dict[str, int] = {}


def event_doc(event_id: str, version: int, *, sources: list[tuple[str, str]], starts: datetime,
              ends: datetime | None, lifecycle: str = "open", type: str = "roadworks",
              description: str = "Travaux", commune: str = "59350") -> dict[str, Any]:
    """An event as the normaliser writes it; `sources` as (source, kind) pairs."""
    at = starts.isoformat()
    return {
        "id": event_id, "type": type, "description": description, "version": version, "lifecycle": lifecycle,
        "geometry": {"type": "LineString", "coordinates": LILLE_LINE}, "commune": commune, "street": "Rue Nationale",
        "validity": {"starts_at": at, "ends_at": ends.isoformat() if ends else None},
        "sources": [{"source": s, "source_id": f"{event_id}-{s}", "kind": k, "received_at": at} for s, k in sources],
        "created_at": at, "updated_at": at,
    }


def insert(url: str, topic: str, received_at: datetime, doc: dict[str, Any] | None, event_id: str) -> None:
    """One version row (a tombstone when `doc` is None) at `received_at`, its month partition created."""
    start = month_start(received_at.astimezone(UTC))
    offset = _offsets[topic] = _offsets.get(topic, -1) + 1
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            f'CREATE TABLE IF NOT EXISTS "{partition_name("event_versions", start)}" PARTITION OF event_versions '
            f"FOR VALUES FROM ('{start.isoformat()}') TO ('{next_month(start).isoformat()}')"
        )
        validity = (doc or {}).get("validity", {})
        conn.execute(
            'INSERT INTO event_versions (topic, partition, "offset", received_at, event_id, version, deleted, type, '
            "lifecycle, starts_at, ends_at, commune, sources, event, geom) VALUES (%s, 0, %s, %s, %s, %s, %s, %s, %s, "
            "%s, %s, %s, %s, %s, ST_SetSRID(ST_GeomFromGeoJSON(%s), 4326))",
            (topic, offset, received_at, event_id, (doc or {}).get("version"), doc is None, (doc or {}).get("type"),
             (doc or {}).get("lifecycle"), validity.get("starts_at"), validity.get("ends_at"),
             (doc or {}).get("commune"), orjson.dumps((doc or {}).get("sources")).decode() if doc else None,
             orjson.dumps(doc).decode() if doc else None,
             orjson.dumps(doc["geometry"]).decode() if doc else None),
        )


def days_ago(days: int, hour: int = 12) -> datetime:
    """Noon (UTC) `days` days before today, from the clock."""
    today = datetime.now(UTC).replace(hour=hour, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days)
