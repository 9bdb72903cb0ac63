"""Official schemas of the partner formats, loaded offline from the vendored copies, once.

- DATEX II 2.3: the single `schemas/datex2-2.3/DATEXIISchema_2_2_3.xsd`, compiled by lxml.
- DATEX II 3.7: the 23 XSDs in `schemas/datex2-3.7/`, compiled by lxml (libxml2) through a wrapper
  schema importing the `d2:payload` and `mc:messageContainer` roots (about 0.1 s, no network).
- WZDx 4.2: the JSON Schemas in `schemas/wzdx-4.2/` plus the three geojson.org geometry schemas
  they `$ref`, registered under their absolute `$id`s in a `referencing.Registry`, validated with
  jsonschema's Draft 7 validator and a format checker (RFC 3339 date-times via rfc3339-validator).

The rules every format's gate shares (coordinates usable, lane counts sensible) live here too.

Renderers never validate at render time (10 000 items must render well under a second); the
gates check the rules, tests validate whole documents, and operators may call these at run time.
Nothing is loaded at import time.
"""

from __future__ import annotations

import json
import math
from functools import cache
from pathlib import Path
from typing import Any

import orjson
from jsonschema import Draft7Validator, FormatChecker
from lxml import etree
from referencing import Registry, Resource

from traffic_hub.model import Event
from traffic_hub.model.geometry import LineString, MultiLineString, Point

SCHEMAS = Path(__file__).resolve().parent / "schemas"
DATEX2_DIR = SCHEMAS / "datex2-3.7"
DATEX2_V2_XSD = SCHEMAS / "datex2-2.3" / "DATEXIISchema_2_2_3.xsd"
WZDX_DIR = SCHEMAS / "wzdx-4.2"

_DATEX2_ROOTS = {
    "http://datex2.eu/schema/3/d2Payload": "DATEXII_3_D2Payload.xsd",
    "http://datex2.eu/schema/3/messageContainer": "DATEXII_3_MessageContainer.xsd",
}


@cache
def datex2_schema() -> etree.XMLSchema:
    """The DATEX II 3.7 schema set (SituationPublication payloads and message containers)."""
    imports = "".join(
        f'<xs:import namespace="{namespace}" schemaLocation="{(DATEX2_DIR / name).as_uri()}"/>'
        for namespace, name in _DATEX2_ROOTS.items()
    )
    wrapper = (
        '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:traffic-hub:datex2-roots">'
        f"{imports}</xs:schema>"
    )
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    return etree.XMLSchema(etree.fromstring(wrapper.encode(), parser))


def datex2_errors(document: bytes) -> list[str]:
    """Schema errors of a DATEX II v3 document (empty: valid against 3.7)."""
    schema = datex2_schema()
    parser = etree.XMLParser(no_network=True, resolve_entities=False, huge_tree=True)
    tree = etree.fromstring(document, parser)
    if schema.validate(tree):
        return []
    return str(schema.error_log).splitlines()  # "<string>:LINE:COL:ERROR:SCHEMASV:CODE: message"


@cache
def datex2_v2_schema() -> etree.XMLSchema:
    """The DATEX II 2.3 schema (one file, namespace `http://datex2.eu/schema/2/2_0`)."""
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    return etree.XMLSchema(etree.parse(str(DATEX2_V2_XSD), parser))


def datex2_v2_errors(document: bytes) -> list[str]:
    """Schema errors of a DATEX II v2.3 `d2LogicalModel` (empty: valid)."""
    schema = datex2_v2_schema()
    parser = etree.XMLParser(no_network=True, resolve_entities=False, huge_tree=True)
    if schema.validate(etree.fromstring(document, parser)):
        return []
    return str(schema.error_log).splitlines()


@cache
def wzdx_validator() -> Draft7Validator:
    """A Draft 7 validator of the WZDx 4.2 WorkZoneFeed, resolving every `$ref` locally."""
    registry: Registry[Any] = Registry()
    paths = [*sorted(WZDX_DIR.glob("*.json")), *sorted((WZDX_DIR / "geojson").glob("*.json"))]
    for path in paths:
        contents = json.loads(path.read_text(encoding="utf-8"))
        registry = registry.with_resource(contents["$id"], Resource.from_contents(contents))
    root = json.loads((WZDX_DIR / "WorkZoneFeed.json").read_text(encoding="utf-8"))
    return Draft7Validator(root, registry=registry, format_checker=FormatChecker())


def wzdx_errors(document: bytes | dict[str, Any]) -> list[str]:
    """Schema errors of a WZDx 4.2 work zone feed (empty: valid)."""
    feed = orjson.loads(document) if isinstance(document, bytes) else document
    return [
        f"{'/'.join(str(part) for part in error.absolute_path) or '(root)'}: {error.message}"
        for error in wzdx_validator().iter_errors(feed)
    ]


# --- rules shared by the gates -----------------------------------------------------------------


def geometry_reasons(geometry: Point | LineString | MultiLineString) -> list[str]:
    """Why a geometry cannot be published by coordinates (finite, in range, lines of 2+ points)."""
    parts = line_parts(geometry)
    points = [point for part in parts for point in part]
    if not all(math.isfinite(lon) and math.isfinite(lat) for lon, lat in points):
        return ["the geometry has coordinates that are not numbers"]
    if not all(-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0 for lon, lat in points):
        return ["the geometry has coordinates outside latitude/longitude ranges"]
    if not isinstance(geometry, Point) and any(len(set(_rounded(part))) < 2 for part in parts):
        return ["the line has fewer than 2 distinct points"]
    return []


def lane_reasons(event: Event) -> list[str]:
    """Lane counts are optional (a Waze lane closure has none), but when given they must agree."""
    lanes = event.lanes or {}
    if ("closed" in lanes or "total" in lanes) and lane_counts(event) is None:
        return [f"the lane counts are inconsistent: {lanes.get('closed')} closed of {lanes.get('total')}"]
    return []


def lane_counts(event: Event) -> tuple[int, int] | None:
    """(closed, total) from `event.lanes` when both are sensible integers."""
    lanes = event.lanes or {}
    closed, total = lanes.get("closed"), lanes.get("total")
    if type(closed) is not int or type(total) is not int or not 1 <= closed <= total <= 99:
        return None
    return closed, total


def line_parts(geometry: Point | LineString | MultiLineString) -> list[list[tuple[float, float]]]:
    """The geometry as lists of (lon, lat): one per line part, a single one-point list for a point."""
    if isinstance(geometry, Point):
        return [[(geometry.coordinates[0], geometry.coordinates[1])]]
    if isinstance(geometry, LineString):
        return [[(p[0], p[1]) for p in geometry.coordinates]]
    return [[(p[0], p[1]) for p in part] for part in geometry.coordinates]


def _rounded(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    return [(round(lon, 6), round(lat, 6)) for lon, lat in points]
