"""Coordinates of a DATEX II location (v2 `groupOfLocations`, v3 `locationReference`).

Only coordinate-based methods are read: GML lines (`posList`, lat/lon for WGS84, easting/northing
for projected CRSs), TPEG and "linear by coordinates" start/end points, points by coordinates and
`coordinatesForDisplay`. ALERT-C and linear referencing without coordinates need location tables
we do not have: such records are rejected with that reason.
"""

from __future__ import annotations

from connectors.coords import LonLat, crs_code, geometry, numbers, to_lonlat
from connectors.values import ItemError, number
from connectors.xml_find import Element, child, child_text, descendants, local
from traffic_hub.model import Direction
from traffic_hub.model.geometry import LineString, MultiLineString, Point

_LOCATION_ELEMENTS = ("locationReference", "groupOfLocations")
_BOTH = frozenset({"both", "bothWays"})
_ONE = frozenset(
    {"aligned", "positive", "negative", "opposite", "clockwise", "anticlockwise", "inboundTowardsTown"}
    | {"outboundFromTown", "innerRing", "outerRing"}
    | {f"{compass}Bound" for compass in ("north", "south", "east", "west", "northEast", "northWest", "southEast")}
    | {"southWestBound"}
)
Shape = Point | LineString | MultiLineString


def location_of(record: Element) -> Element:
    for name in _LOCATION_ELEMENTS:
        found = child(record, name)
        if found is not None:
            return found
    raise ItemError("record has no location")


def shape(location: Element) -> Shape:
    """The record's geometry in WGS84 lon/lat, from the first coordinate method it carries."""
    lines = [_gml_line(element) for element in descendants(location, "gmlLineString")]
    lines = [line for line in lines if line]
    if len(lines) == 1:
        return geometry(lines[0])
    if lines:
        parts = [geometry(line) for line in lines]
        kept = [part.coordinates for part in parts if isinstance(part, LineString)]
        if not kept:
            return parts[0]
        return MultiLineString(type="MultiLineString", coordinates=kept)
    ends = _tpeg_ends(location) or _linear_by_coordinates(location)
    if ends:
        return geometry(ends)
    for name in ("pointCoordinates", "coordinatesForDisplay"):
        for element in descendants(location, name):
            return geometry([_lat_lon(element)])
    raise ItemError("no coordinates in the location (ALERT-C or linear referencing only)")


def direction(location: Element) -> Direction:
    for name in (
        "alertCDirectionCoded",
        "alertCAffectedDirection",
        "directionRelativeOnLinearSection",
        "tpegDirection",
    ):
        for element in descendants(location, name):
            value = (element.text or "").strip()
            if value in _BOTH:
                return Direction.BOTH_DIRECTIONS
            if value in _ONE:
                return Direction.ONE_DIRECTION
    return Direction.UNKNOWN


def road_name(location: Element) -> str | None:
    for name in ("roadName", "roadNumber"):
        for element in descendants(location, name):
            if element.text and element.text.strip():
                return element.text.strip()[:200]
    return None


def _gml_line(element: Element) -> list[LonLat]:
    pos_list = child_text(element, "posList")
    if pos_list is None:
        return []
    values = numbers(pos_list)
    code = crs_code(element.get("srsName"))
    pairs = [(values[i], values[i + 1]) for i in range(0, len(values), 2)]
    if code == 4326:
        return [(lat_lon[1], lat_lon[0]) for lat_lon in pairs]
    return to_lonlat(pairs, code)


def _tpeg_ends(location: Element) -> list[LonLat]:
    for linear in descendants(location, "tpegLinearLocation"):
        start, end = child(linear, "from", "pointCoordinates"), child(linear, "to", "pointCoordinates")
        if start is not None and end is not None:
            return [_lat_lon(start), _lat_lon(end)]
    return []


def _linear_by_coordinates(location: Element) -> list[LonLat]:
    for extension in descendants(location, "linearByCoordinatesExtension"):
        start = child(extension, "linearCoordinatesStartPoint", "pointCoordinates")
        end = child(extension, "linearCoordinatesEndPoint", "pointCoordinates")
        if start is not None and end is not None:
            return [_lat_lon(start), _lat_lon(end)]
    return []


def _lat_lon(element: Element) -> LonLat:
    values = {local(c): number(c.text) for c in element}
    lat, lon = values.get("latitude"), values.get("longitude")
    if lat is None or lon is None:
        raise ItemError("point coordinates without a numeric latitude and longitude")
    return (lon, lat)
