"""OpenLR line references → edges of the road network (map decoding by ``openlr-decoder``).

The binary/base64 physical format is checked with the ``openlr`` package first (a malformed
reference is a ``GeoError("bad-openlr")``); the map-dependent decoding runs in
``openlr_decoder`` (Rust) over an Arrow view of the network where ``stableEdgeId`` is the
edge's row. Decoding quality hinges on FRC conventions between the encoder's map and OSM
(see ``research/geo.md``): the default tolerates any FRC difference (``frc_tolerance=7``).
A reference that is well formed but finds no path is returned unmatched with the reason.
"""

from __future__ import annotations

import base64
import binascii
import threading
import weakref
from dataclasses import dataclass, field

import numpy as np
import openlr
import openlr_decoder
import pyarrow as pa
import shapely

from geo import hmm
from geo.errors import GeoError
from geo.network import RoadNetwork
from geo.results import MatchResult, result_from_states, unmatched

DEFAULT_CONFIG: dict[str, float | int | bool] = {"frc_tolerance": 7, "search_radius_m": 100.0}


@dataclass(eq=False)
class _Decoders:
    by_net: weakref.WeakKeyDictionary[RoadNetwork, openlr_decoder.Decoder] = field(
        default_factory=weakref.WeakKeyDictionary
    )
    lock: threading.Lock = field(default_factory=threading.Lock)


_DECODERS = _Decoders()


def openlr_table(net: RoadNetwork) -> pa.Table:
    """The network in ``openlr_decoder.road_network_schema()`` (stableEdgeId = edge row)."""
    starts, ends = net.offsets[:-1], net.offsets[1:] - 1
    counts = np.diff(net.offsets)
    lines = shapely.linestrings(net.lonlat, indices=np.repeat(np.arange(net.n_edges), counts))
    return pa.table(
        {
            "stableEdgeId": pa.array(np.arange(net.n_edges, dtype=np.uint64)),
            "startOsmNode": pa.array(net.osm_u),
            "endOsmNode": pa.array(net.osm_v),
            "startLat": pa.array(net.lonlat[starts, 1]),
            "startLon": pa.array(net.lonlat[starts, 0]),
            "endLat": pa.array(net.lonlat[ends, 1]),
            "endLon": pa.array(net.lonlat[ends, 0]),
            "highway": pa.array(net.highway.tolist(), pa.string()),
            "lanes": pa.nulls(net.n_edges, pa.int64()),
            "geometry": pa.array(list(np.asarray(shapely.to_wkb(lines), dtype=object)), pa.binary()),
        },
        schema=openlr_decoder.road_network_schema(),
    )


def decoder_for(net: RoadNetwork) -> openlr_decoder.Decoder:
    """The (cached) decoder of a network, built on first use."""
    with _DECODERS.lock:
        found = _DECODERS.by_net.get(net)
        if found is None:
            network = openlr_decoder.RoadNetwork.from_arrow(openlr_table(net))
            found = openlr_decoder.Decoder(network, openlr_decoder.DecoderConfig(**DEFAULT_CONFIG))
            _DECODERS.by_net[net] = found
        return found


def check_reference(ref: str) -> None:
    """Raise ``GeoError("bad-openlr")`` unless ``ref`` is a base64 OpenLR line location."""
    try:
        base64.b64decode(ref, validate=True)
        decoded = openlr.binary_decode(ref)
    except (binascii.Error, ValueError, TypeError, KeyError, IndexError, NotImplementedError) as err:
        raise GeoError("bad-openlr", f"not a base64 OpenLR reference: {err}") from None
    if not isinstance(decoded, openlr.LineLocationReference):
        raise GeoError("bad-openlr", f"only line locations are supported, got {type(decoded).__name__}")


def decode_openlr(net: RoadNetwork, ref: str) -> MatchResult:
    """Edges (travel direction) of an OpenLR line location reference (re-exported by :mod:`geo.matching`)."""
    check_reference(ref)
    try:
        path = decoder_for(net).decode(ref)
    except ValueError as err:
        return unmatched(f"OpenLR reference not found on the road network: {err}", "ONE_DIRECTION")
    states = [int(e) for e in path.edge_ids]
    xy = np.vstack([hmm.state_xy(net, net.directed, s) for s in states])
    total = float(hmm.cumlen(xy)[-1])
    xy = hmm.cut(xy, float(path.positive_offset), total - float(path.negative_offset))
    covered = [float(net.length[s]) for s in states]
    covered[0] -= float(path.positive_offset)
    covered[-1] -= float(path.negative_offset)
    return result_from_states(
        net,
        net.directed,
        states,
        xy,
        "ONE_DIRECTION",
        share=1.0,
        confidence=float(path.primary_edge_coverage),
        covered=[max(c, 0.0) for c in covered],
    )
