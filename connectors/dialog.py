"""Connector kind `dialog`: the national traffic-regulation base (DiaLog), kept to the orders in MEL.

Why a kind of its own rather than `datex2`: DiaLog publishes every French order in one DATEX II v3
`TrafficRegulationPublication` (`https://dialog.beta.gouv.fr/api/regulations.xml`, the default
URL, `connectors.config.DIALOG_URL`), and the hub wants only those located in the Métropole: a
measure is kept when its geometry lies in one of the 95 communes, or within their tolerance margin
(`geo.communes.TOLERANCE_M`) of MEL. The reading is the DATEX II one (`connectors.datex2_regulation`);
the reports' kind is `dialog-regulation`, which the Waze feed reads as "the national base already sent this to Waze".

The publication lists every order in force: it is a snapshot, so an order that disappears from it
(withdrawn, ended, moved out of MEL) ends its events. The national document is big (every French
order; DiaLog's template is whitespace-heavy): it is read order by order (`iter_elements`), each
freed once read, up to `MAX_NATIONAL_BYTES`, rather than as one tree.
"""

from __future__ import annotations

import re
from functools import cache

import shapely

from connectors.base import ParseContext, Parsed, PayloadError
from connectors.datex2_location import Shape
from connectors.datex2_measures import reports_of_orders
from connectors.xml_find import Element, local, xsi_type
from connectors.xml_safety import iter_elements
from geo.communes import Communes
from traffic_hub.model.geometry import lonlat_pairs


def texts(element: Element, name: str) -> list[str]:
    """The texts of the descendants named `name` (local name)."""
    return [found.text for found in element.iter(f"{{*}}{name}", name) if found.text]


KIND = "dialog"
REPORT_KIND = "dialog-regulation"
_BBOX_MARGIN_DEG = 0.01  # the quick test before the exact one (≈ 700-1100 m here)
MAX_NATIONAL_BYTES = 512 * 1024 * 1024  # the largest body a connector may fetch (connectors.config)
_ROOTS = frozenset({"payload", "messageContainer"})


@cache
def mel() -> Communes:
    """The bundled MEL communes, loaded once per process (parsers run in worker threads; loading is idempotent)."""
    return Communes.load()


_GEOJSON_PAIR = re.compile(r"\[\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def near_mel(order: Element, communes: Communes | None = None) -> bool:
    """A quick look at an order's raw coordinates (GeoJSON `[lon, lat]`, GML `lat lon`): one near MEL's box.

    Reads no geometry properly: it only spares the orders of the rest of France the full reading."""
    west, south, east, north = _grown_bbox(communes or mel())
    for text in texts(order, "geoJsonGeometry"):
        if any(west <= float(lon) <= east and south <= float(lat) <= north for lon, lat in _GEOJSON_PAIR.findall(text)):
            return True
    for text in texts(order, "posList"):
        values = [float(v) for v in _NUMBER.findall(text)]
        pairs = zip(values[1::2], values[0::2], strict=False)  # lat lon (EPSG:4326), or projected: never near
        if any(west <= lon <= east and south <= lat <= north for lon, lat in pairs):
            return True
    return False


def _grown_bbox(zone: Communes) -> tuple[float, float, float, float]:
    west, south, east, north = (
        edge + sign * _BBOX_MARGIN_DEG for edge, sign in zip(zone.bbox, (-1, -1, 1, 1), strict=True)
    )
    return west, south, east, north


def in_mel(place: Shape, communes: Communes | None = None) -> bool:
    """The place lies in MEL: in one of its communes, or within the tolerance of MEL."""
    zone = communes or mel()
    points = lonlat_pairs(place)
    west, south, east, north = _grown_bbox(zone)
    if not any(west <= lon <= east and south <= lat <= north for lon, lat in points):
        return False
    geom = shapely.geometry.shape(place.model_dump())
    return zone.in_mel(geom) or bool(zone.scope(geom))


class DialogParser:
    """DiaLog's `regulations.xml`: the orders located in MEL, as measure reports."""

    kind = KIND

    def parse(self, payload: bytes, ctx: ParseContext) -> Parsed:
        elements = iter_elements(payload, "trafficRegulationOrder", max_bytes=MAX_NATIONAL_BYTES)
        root = next(elements)
        typed = xsi_type(root) == "TrafficRegulationPublication" if local(root) == "payload" else None
        if local(root) not in _ROOTS or typed is False or b"TrafficRegulationPublication" not in payload:
            kind = xsi_type(root) or local(root)
            raise PayloadError(f"not the national base's TrafficRegulationPublication (found {kind[:60]!r})")
        found = reports_of_orders(elements, ctx, kind=REPORT_KIND, keep=in_mel, near=near_mel)
        return Parsed(incidents=found.incidents, rejects=found.rejects, snapshot=True)
