"""The operator map: the page, its own static files, MapLibre GL from npm, glyphs, and its background data.

Nothing is fetched from the internet: MapLibre comes from `node_modules/maplibre-gl/dist/` (installed by
`npm ci` in `make install`), the text glyphs are bundled (`traffic_hub/map/fonts/SOURCES.md`), and the
background is drawn from the hub's own open data (the road network with its street names, the MEL
communes with their names), unless a tile URL or a style is configured for production
(`TRAFFIC_HUB_MAP_TILES`). The background data is public like the open-data feed: OpenStreetMap (ODbL)
and IGN/INSEE (Licence Ouverte); the events themselves stay behind the operator key.
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
import shapely
from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, RedirectResponse
from shapely.ops import polylabel

from geo.communes import Communes
from geo.network import RoadNetwork
from traffic_hub.api.deps import CommunesDep, NetworkDep, SettingsDep
from traffic_hub.errors import NotFound

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
COMMUNES_ATTRIBUTION = "Communes : IGN Admin Express, INSEE (Licence Ouverte)"
FONT_DIR = PAGE_DIR / "fonts"
FONT_STACKS = frozenset({"Noto Sans Regular", "Noto Sans Medium"})
GLYPH_RANGE = re.compile(r"^(\d{1,5})-(\d{1,5})\.pbf$")
PBF = "application/x-protobuf"


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


def _glyph_range(name: str) -> tuple[int, int] | None:
    """`0-255.pbf` → (0, 255): a range MapLibre asks for (256 code points from a multiple of 256)."""
    match = GLYPH_RANGE.fullmatch(name)
    if match is None:
        return None
    start, end = int(match[1]), int(match[2])
    return (start, end) if start % 256 == 0 and end == start + 255 and end <= 0xFFFF else None


@router.get("/map/fonts/{stack}/{name}", include_in_schema=False)
async def map_glyphs(stack: str, name: str) -> Response:
    """SDF glyphs for the map's labels; a range that is not bundled is an empty glyph set (nothing drawn)."""
    if stack not in FONT_STACKS or _glyph_range(name) is None:
        raise NotFound(f"no glyphs {stack}/{name}")
    path = FONT_DIR / stack / name
    if not path.is_file():
        return Response(b"", media_type=PBF, headers={"Cache-Control": "public, max-age=86400"})
    return FileResponse(path, media_type=PBF, headers={"Cache-Control": "public, max-age=86400"})


def tile_config(url: str | None, attribution: str | None) -> dict[str, Any] | None:
    """`TRAFFIC_HUB_MAP_TILES`: a raster XYZ template (`…/{z}/{x}/{y}.png`) or a MapLibre style JSON URL."""
    if not url:
        return None
    kind = "style" if url.split("?", 1)[0].endswith(".json") else "raster"
    if kind == "raster" and not all(part in url for part in ("{z}", "{x}", "{y}")):
        return None
    return {"url": url, "kind": kind, "attribution": attribution or ATTRIBUTION}


@router.get("/map/config.json", include_in_schema=False)
async def map_config(settings: SettingsDep, network: NetworkDep, communes: CommunesDep) -> dict[str, Any]:
    """What the page needs before any key: basemap (if any), network extent, commune names, glyphs."""
    return {
        "basemap": tile_config(settings.map_tiles, settings.map_tiles_attribution),
        "attribution": ATTRIBUTION,
        "communes_attribution": COMMUNES_ATTRIBUTION,
        "glyphs": "/map/fonts/{fontstack}/{range}.pbf",
        "bbox": list(network.bbox_lonlat) if network is not None else None,
        "communes": {c.insee: c.name for c in communes},
    }


@dataclass(frozen=True)
class _Encoded:
    raw: bytes
    gzipped: bytes
    etag: str


_cache: weakref.WeakKeyDictionary[RoadNetwork, _Encoded] = weakref.WeakKeyDictionary()
_commune_cache: weakref.WeakKeyDictionary[Communes, _Encoded] = weakref.WeakKeyDictionary()


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


def _label_point(polygon: shapely.Polygon | shapely.MultiPolygon) -> shapely.Point:
    """Where the commune's name goes: the visual centre of its largest part (inside, even if concave)."""
    largest = max(polygon.geoms, key=lambda part: part.area) if isinstance(polygon, shapely.MultiPolygon) else polygon
    return polylabel(largest, tolerance=0.0005)


def commune_features(communes: Communes) -> dict[str, Any]:
    """Each commune twice: its boundary (`kind: area`) and a label point (`kind: label`), with INSEE code and name."""
    features = []
    for commune in communes:
        polygon = communes.polygon(commune.insee)
        if polygon is None:
            continue
        properties = {"insee": commune.insee, "name": commune.name, "population": commune.population}
        label = _label_point(polygon)
        features.append({"type": "Feature", "id": commune.insee, "geometry": shapely.geometry.mapping(polygon),
                         "properties": {**properties, "kind": "area"}})
        features.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [
            round(label.x, 5), round(label.y, 5)]}, "properties": {**properties, "kind": "label"}})
    return {"type": "FeatureCollection", "attribution": COMMUNES_ATTRIBUTION, "features": features}


def _encode_json(document: dict[str, Any]) -> _Encoded:
    raw = orjson.dumps(document)
    return _Encoded(raw, gzip.compress(raw, 6), f'"{hashlib.sha256(raw).hexdigest()[:32]}"')


def _encode(network: RoadNetwork) -> _Encoded:
    return _encode_json(network_features(network))


def _encode_communes(communes: Communes) -> _Encoded:
    return _encode_json(commune_features(communes))


async def _encoded(network: RoadNetwork) -> _Encoded:
    cached = _cache.get(network)
    if cached is None:
        cached = await asyncio.to_thread(_encode, network)
        _cache[network] = cached
    return cached


async def _encoded_communes(communes: Communes) -> _Encoded:
    cached = _commune_cache.get(communes)
    if cached is None:
        cached = await asyncio.to_thread(_encode_communes, communes)
        _commune_cache[communes] = cached
    return cached


def _geojson(encoded: _Encoded, request: Request) -> Response:
    """The encoded document, gzipped if the client takes it, 304 when its ETag is unchanged."""
    headers = {"ETag": encoded.etag, "Cache-Control": "public, max-age=3600", "Vary": "Accept-Encoding"}
    if request.headers.get("if-none-match") == encoded.etag:
        return Response(status_code=304, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return Response(encoded.gzipped, media_type="application/geo+json", headers=headers)
    return Response(encoded.raw, media_type="application/geo+json", headers=headers)


@router.get(
    "/api/v1/network.geojson",
    tags=["map"],
    response_class=Response,
    responses={200: {"content": {"application/geo+json": {}}}, 304: {"description": "not modified"},
               503: {"description": "no road network loaded"}},
)
async def network_geojson(network: NetworkDep, request: Request) -> Response:
    """The road network as GeoJSON lines (the map's offline background). Public: OpenStreetMap data, ODbL."""
    if network is None:
        raise NotFound("this hub has no road network loaded")
    return _geojson(await _encoded(network), request)


@router.get(
    "/api/v1/communes.geojson",
    tags=["map"],
    response_class=Response,
    responses={200: {"content": {"application/geo+json": {}}}, 304: {"description": "not modified"}},
)
async def communes_geojson(communes: CommunesDep, request: Request) -> Response:
    """The 95 MEL communes: boundary polygons (`kind: area`) and label points (`kind: label`) with INSEE code
    and name. Public: IGN Admin Express / INSEE, Licence Ouverte."""
    return _geojson(await _encoded_communes(communes), request)
