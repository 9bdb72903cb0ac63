"""Waze CIFS as JSON, in the shape Google documents.

Google's "Incident information" page (https://developers.google.com/waze/data-feed/incident-information)
shows the JSON encoding as `{"incidents": [{"incident": {"id": …, "type": …, "polyline": "lat lon …",
…}}]}`: each incident wrapped in an `incident` object, keys named like the XML elements, `id` as a
key, polyline kept as a string. That documented wrapper is what we serve. Some publishers (MobiData
BW, Grand Nancy) use a flat legacy array with a nested `location`; Waze documents neither that nor
a JSON schema, so we follow the page.

Google shows no JSON for the nested XML groups; we carry the same fields as the XML by the same
rule (element name → key): `source`, `lane_impact` and `schedule` become objects with their child
names as keys (`total_closed_lanes` a number), `parent_event` becomes `{"id": …}`. The XML
root's `timestamp` attribute becomes a top-level `timestamp` key.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

import orjson

from traffic_hub.feeds.base import FeedContext
from traffic_hub.feeds.waze_incident import Incident, incidents_of, local_time
from traffic_hub.model import Event


def json_fragment(event: Event, ctx: FeedContext) -> bytes:
    """One event's `{"incident": …}` items, comma-separated (empty when it has none)."""
    return b",".join(orjson.dumps({"incident": _incident(incident)}) for incident in incidents_of(event, ctx))


JSON_HEAD = b'{"incidents":['


def json_tail(ctx: FeedContext) -> bytes:
    """What follows the comma-separated fragments in `{"incidents": [...], "timestamp": ...}`."""
    timestamp = orjson.dumps(local_time(ctx.timestamp, ZoneInfo(ctx.timezone)))
    return b'],"timestamp":' + timestamp + b"}"


def _incident(incident: Incident) -> dict[str, Any]:
    out: dict[str, Any] = {"id": incident.id}
    if incident.parent_event is not None:
        out["parent_event"] = {"id": incident.parent_event}
    for name, value in incident.elements:
        out[name] = value if isinstance(value, str) else dict(value)
    return out
