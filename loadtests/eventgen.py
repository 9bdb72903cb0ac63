"""Realistic current events in Lille, as the JSON the normaliser writes to ``{prefix}.events``.

Each event lies on one real street of the bundled road network (© OpenStreetMap contributors,
ODbL 1.0): its geometry and its single segment are the coordinates of one named edge. Events are
built as plain dicts and serialised with orjson (100,000 of them in a few seconds); `sample_event`
checks that the shape is the one `traffic_hub.model.Event` accepts.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import orjson

from geo.network import RoadNetwork
from traffic_hub.model import Event

KINDS = (
    ("closure", "roadworks", "Travaux de voirie : chaussée fermée"),
    ("lane_closure", "roadworks", "Voie de droite neutralisée pour travaux"),
    ("roadworks", "roadworks", "Réfection du trottoir, circulation maintenue"),
    ("closure", "event", "Manifestation : rue fermée à la circulation"),
)


@dataclass(frozen=True, slots=True)
class Street:
    name: str
    edge_id: str
    commune: str
    length_m: float
    coordinates: list[list[float]]


def streets(network: RoadNetwork) -> list[Street]:
    """Every named edge of the network with at least two distinct points."""
    out: list[Street] = []
    for i in range(network.n_edges):
        name = str(network.name[i] or "")
        coords = np.round(network.edge_lonlat(i), 7).tolist()
        if name and len(coords) >= 2 and coords[0] != coords[-1]:
            commune = str(network.commune[i] or "") or "59350"
            out.append(Street(name, str(network.edge_ids[i]), commune, round(float(network.length[i]), 1), coords))
    return out


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def event_dict(event_id: str, street: Street, kind: int, now: datetime, seq: int) -> dict[str, Any]:
    """One current event (started an hour to a week ago, ending in 1-30 days)."""
    event_type, cause, description = KINDS[kind % len(KINDS)]
    start = now - timedelta(hours=1 + seq % 168)
    created = start - timedelta(days=2)
    event: dict[str, Any] = {
        "id": event_id,
        "type": event_type,
        "cause": cause,
        "description": f"{description} ({street.name}, n° {seq})",
        "geometry": {"type": "LineString", "coordinates": street.coordinates},
        "direction": "BOTH_DIRECTIONS",
        "street": street.name,
        "commune": street.commune,
        "validity": {"starts_at": _iso(start), "ends_at": _iso(now + timedelta(days=1 + seq % 30))},
        "lifecycle": "open",
        "version": 1,
        "sources": [
            {
                "source": "roadworks:bench",
                "source_id": event_id.upper(),
                "kind": "closure",
                "received_at": _iso(created),
            }
        ],
        "segments": [
            {
                "street": street.name,
                "coordinates": street.coordinates,
                "length_m": street.length_m,
                "edge_ids": [street.edge_id],
            }
        ],
        "created_at": _iso(created),
        "updated_at": _iso(created + timedelta(hours=5)),
    }
    if event_type == "lane_closure":
        event["direction"] = "ONE_DIRECTION"
        event["lanes"] = {"closed": 1, "total": 2, "side": "RIGHT"}
    return event


def events_json(
    count: int, network: RoadNetwork, now: datetime, prefix: str = "bench"
) -> Iterator[tuple[bytes, bytes]]:
    """`count` (key, value) pairs of current events spread over the network's streets."""
    pool = streets(network)
    rng = np.random.default_rng(42)
    picks = rng.integers(0, len(pool), count)
    for seq, pick in enumerate(picks.tolist()):
        event_id = f"{prefix}-{seq:07d}"
        value = orjson.dumps(event_dict(event_id, pool[pick], seq, now, seq))
        yield event_id.encode(), value


def sample_event(network: RoadNetwork, now: datetime) -> Event:
    """The first generated event, validated by the model (fails loudly when the model moved on)."""
    _, value = next(events_json(1, network, now))
    return Event.model_validate_json(value)
