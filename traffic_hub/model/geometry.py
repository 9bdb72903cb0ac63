"""GeoJSON geometry shapes (RFC 7946: WGS84, [lon, lat] order) as plain data.

Only the shape is checked here; whether a line is usable (distinct points, inside MEL, not
self-crossing) is `geo.shapes`' business, called by the API before anything is written.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Position = Annotated[list[float], Field(min_length=2, max_length=3)]


class Point(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["Point"]
    coordinates: Position


class LineString(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["LineString"]
    coordinates: Annotated[list[Position], Field(min_length=2, max_length=5000)]


class MultiLineString(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["MultiLineString"]
    coordinates: Annotated[list[Annotated[list[Position], Field(min_length=2)]], Field(min_length=1)]


Geometry = Annotated[Point | LineString | MultiLineString, Field(discriminator="type")]


def lonlat_pairs(geometry: Point | LineString | MultiLineString) -> list[tuple[float, float]]:
    """Every vertex as a (lon, lat) pair, parts concatenated."""
    if isinstance(geometry, Point):
        return [(geometry.coordinates[0], geometry.coordinates[1])]
    if isinstance(geometry, LineString):
        return [(p[0], p[1]) for p in geometry.coordinates]
    return [(p[0], p[1]) for part in geometry.coordinates for p in part]
