"""The operator map: the page, its own static files, MapLibre GL from npm, and the road network as GeoJSON.

Nothing is fetched from the internet: MapLibre comes from `node_modules/maplibre-gl/dist/` (installed by
`npm ci` in `make install`) and the background is the hub's own road network, unless a tile URL is
configured for production.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import re
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, RedirectResponse

from geo.network import RoadNetwork
from traffic_hub.api.deps import HubDep
from traffic_hub.errors import NotFound
from traffic_hub.runtime import Hub

router = APIRouter(tags=["map"])

PAGE_DIR = Path(__file__).resolve().parent.parent / "map"
VENDOR_DIR = Path(__file__).resolve().parents[2] / "node_modules" / "maplibre-gl" / "dist"
VENDOR_FILES = frozenset({"maplibre-gl.mjs", "maplibre-gl-worker.mjs", "maplibre-gl-shared.mjs", "maplibre-gl.css"})
STATIC_NAME = re.compile(r"^[a-z0-9_-]{1,64}\.(?:js|css|html|svg)$")
MEDIA_TYPES = {
    ".mjs": "text/javascript",
    ".js": "text/javascript",
    ".css": "text/css",
    ".html": "text/html; charset=utf-8",
    ".svg": "image/svg+xml",
}
ATTRIBUTION = "© OpenStreetMap contributors (ODbL)"


def _file(path: Path, cache: str) -> FileResponse:
    return FileResponse(path, media_type=MEDIA_TYPES[path.suffix], headers={"Cache-Control": cache})


@router.get("/map", include_in_schema=False)
async def map_redirect() -> RedirectResponse:
    return RedirectResponse("/map/", status_code=308)


@router.get("/map/", include_in_schema=False)
async def map_page() -> FileResponse:
    """The live incident map (the key is entered in the page, or given as `/map/#key=<key>`)."""
    return _file(PAGE_DIR / "index.html", "no-cache")


@router.get("/map/static/{name}", include_in_schema=False)
async def map_static(name: str) -> FileResponse:
    path = PAGE_DIR / name
    if not STATIC_NAME.fullmatch(name) or not path.is_file():
        raise NotFound(f"no map file {name}")
    return _file(path, "no-cache")


@router.get("/map/vendor/{name}", include_in_schema=False)
async def map_vendor(name: str) -> FileResponse:
    path = VENDOR_DIR / name
    if name not in VENDOR_FILES:
        raise NotFound(f"no vendor file {name}")
    if not path.is_file():
        raise NotFound(f"{name} is missing: run `make install` (npm ci installs maplibre-gl)")
    return _file(path, "public, max-age=86400")


@router.get("/map/config.json", include_in_schema=False)
async def map_config(hub: HubDep) -> dict[str, Any]:
    """What the page needs before any key: tile URL (if any), network extent, commune names."""
    network = _network(hub)
    return {
        "tiles": hub.settings.map_tiles,
        "attribution": ATTRIBUTION,
        "bbox": list(network.bbox_lonlat) if network is not None else None,
        "communes": {c.insee: c.name for c in hub.communes},
    }


@dataclass(frozen=True)
class _Encoded:
    raw: bytes
    gzipped: bytes
    etag: str


_cache: weakref.WeakKeyDictionary[RoadNetwork, _Encoded] = weakref.WeakKeyDictionary()


def _network(hub: Hub) -> RoadNetwork | None:
    return hub.network


def network_features(network: RoadNetwork) -> dict[str, Any]:
    """One LineString per carriageway piece (twins collapsed), with name, road class and commune."""
    features = []
    for i in network.segments.tolist():
        coords = [[round(lon, 6), round(lat, 6)] for lon, lat in network.edge_lonlat(i).tolist()]
        features.append({
            "type": "Feature",
            "geometry": {"type": "LineString", "coordinates": coords},
            "properties": {
                "name": network.name[i] or None,
                "highway": network.highway[i],
                "commune": network.commune[i] or None,
            },
        })
    return {"type": "FeatureCollection", "attribution": ATTRIBUTION, "features": features}


def _encode(network: RoadNetwork) -> _Encoded:
    raw = orjson.dumps(network_features(network))
    return _Encoded(raw, gzip.compress(raw, 6), f'"{hashlib.sha256(raw).hexdigest()[:32]}"')


async def _encoded(network: RoadNetwork) -> _Encoded:
    cached = _cache.get(network)
    if cached is None:
        cached = await asyncio.to_thread(_encode, network)
        _cache[network] = cached
    return cached


@router.get(
    "/api/v1/network.geojson",
    tags=["map"],
    response_class=Response,
    responses={200: {"content": {"application/geo+json": {}}}, 304: {"description": "not modified"},
               503: {"description": "no road network loaded"}},
)
async def network_geojson(hub: HubDep, request: Request) -> Response:
    """The road network as GeoJSON lines (the map's offline background). Public: OpenStreetMap data, ODbL."""
    network = _network(hub)
    if network is None:
        raise NotFound("this hub has no road network loaded")
    encoded = await _encoded(network)
    headers = {"ETag": encoded.etag, "Cache-Control": "public, max-age=3600", "Vary": "Accept-Encoding"}
    if request.headers.get("if-none-match") == encoded.etag:
        return Response(status_code=304, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return Response(encoded.gzipped, media_type="application/geo+json", headers=headers)
    return Response(encoded.raw, media_type="application/geo+json", headers=headers)
