"""Connector kind `dialog`: the national traffic-regulation base (DiaLog), kept to the orders in MEL.

Why a kind of its own rather than `datex2`: DiaLog publishes every French order in one DATEX II v3
`TrafficRegulationPublication` (`https://dialog.beta.gouv.fr/api/regulations.xml`, the default
URL, `connectors.config.DIALOG_URL`), and the hub wants only those located in the Métropole: a
measure is kept when its geometry lies in one of the 95 communes, or within their tolerance margin
(`geo.communes.TOLERANCE_M`) of MEL. The reading is the DATEX II one (`connectors.datex2_regulation`);
the reports' kind is `dialog-regulation`, which the Waze feed reads as "the national base already sent this to Waze".

The publication lists every order in force: it is a snapshot, so an order that disappears from it
(withdrawn, ended, moved out of MEL) ends its events.
"""

from __future__ import annotations

from functools import cache

import shapely

from connectors.base import ParseContext, Parsed, PayloadError
from connectors.datex2 import publications_of
from connectors.datex2_location import Shape
from connectors.datex2_measures import regulation_reports
from connectors.datex2_regulation import is_regulation_publication
from connectors.xml_safety import parse_xml
from geo.communes import Communes
from traffic_hub.model.geometry import lonlat_pairs

KIND = "dialog"
REPORT_KIND = "dialog-regulation"
_BBOX_MARGIN_DEG = 0.01  # the quick test before the exact one (≈ 700-1100 m here)


@cache
def mel() -> Communes:
    """The bundled MEL communes, loaded once per process (parsers run in worker threads; loading is idempotent)."""
    return Communes.load()


def in_mel(place: Shape, communes: Communes | None = None) -> bool:
    """The place lies in MEL: in one of its communes, or within the tolerance of MEL."""
    zone = communes or mel()
    points = lonlat_pairs(place)
    grown = (edge + sign * _BBOX_MARGIN_DEG for edge, sign in zip(zone.bbox, (-1, -1, 1, 1), strict=True))
    west, south, east, north = grown
    if not any(west <= lon <= east and south <= lat <= north for lon, lat in points):
        return False
    geom = shapely.geometry.shape(place.model_dump())
    return zone.in_mel(geom) or bool(zone.scope(geom))


class DialogParser:
    """DiaLog's `regulations.xml`: the orders located in MEL, as measure reports."""

    kind = KIND

    def parse(self, payload: bytes, ctx: ParseContext) -> Parsed:
        root = parse_xml(payload)
        publications, _ = publications_of(root)
        regulations = [p for p in publications if is_regulation_publication(p)]
        if not regulations:
            raise PayloadError("no TrafficRegulationPublication in the national base's document")
        found = regulation_reports(regulations, ctx, kind=REPORT_KIND, keep=in_mel)
        return Parsed(incidents=found.incidents, rejects=found.rejects, snapshot=True)
