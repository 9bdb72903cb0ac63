"""MEL communes (geo.communes) on the bundled real boundaries."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.ops import substring

from geo.communes import TOLERANCE_M, Commune, Communes
from geo.crs import Reprojector

LILLE = "59350"
LA_MADELEINE = "59368"
GRAND_PLACE = (3.0630, 50.6370)
# Lomme and Hellemmes are communes associées of Lille: no INSEE polygon of their own.
LOMME_MAIRIE = (2.9877, 50.6437)
HELLEMMES = (3.1094, 50.6275)
ROUBAIX_GRAND_PLACE = (3.1746, 50.6942)
PARIS = (2.3522, 48.8566)
BRUSSELS = (4.3517, 50.8503)
MOUSCRON = (3.2169, 50.7432)  # Belgium, across the border from Tourcoing
# From Lille (south-west) across the boundary with La Madeleine (north-east): ~270 m in Lille, ~150 m beyond.
LILLE_TO_LA_MADELEINE = shapely.LineString([(3.0640, 50.6482), (3.06665, 50.65105)])
# A shared border vertex of Lille and La Madeleine (from the 2018 tracings).
BORDER_VERTEX = (3.06705, 50.64936)


@pytest.fixture(scope="module")
def reprojector() -> Reprojector:
    return Reprojector()


@pytest.fixture(scope="module")
def communes(reprojector: Reprojector) -> Communes:
    return Communes.load(reprojector=reprojector)


@pytest.fixture(scope="module")
def mel_union(communes: Communes) -> shapely.Geometry:
    return shapely.union_all([communes.polygon(c.insee) for c in communes])


def test_all_95_communes_load_with_name_and_population(communes: Communes) -> None:
    assert len(communes) == 95
    assert len({c.insee for c in communes}) == 95
    assert len({c.name for c in communes}) == 95
    for commune in communes:
        assert commune.insee.startswith("59")
        assert len(commune.insee) == 5
        assert commune.name
        assert commune.population > 0
        assert communes.get(commune.insee) is commune
        polygon = communes.polygon(commune.insee)
        assert polygon is not None
        assert polygon.is_valid
    # MEL has about 1.2 million inhabitants
    assert 1_100_000 < sum(c.population for c in communes) < 1_300_000


def test_get(communes: Communes) -> None:
    assert communes.get(LILLE) == Commune(insee=LILLE, name="Lille", population=240523)
    madeleine = communes.get(LA_MADELEINE)
    assert madeleine is not None
    assert madeleine.name == "La Madeleine"
    assert communes.get("75056") is None  # Paris
    assert LILLE in communes
    assert "75056" not in communes


def test_bbox(communes: Communes) -> None:
    min_lon, min_lat, max_lon, max_lat = communes.bbox
    assert (min_lon, min_lat, max_lon, max_lat) == pytest.approx((2.78908, 50.49983, 3.27097, 50.79433))
    assert min_lon < GRAND_PLACE[0] < max_lon
    assert min_lat < GRAND_PLACE[1] < max_lat


@pytest.mark.parametrize(
    ("point", "insee"),
    [(GRAND_PLACE, LILLE), (LOMME_MAIRIE, LILLE), (HELLEMMES, LILLE), (ROUBAIX_GRAND_PLACE, "59512")],
)
def test_locate(communes: Communes, point: tuple[float, float], insee: str) -> None:
    found = communes.locate(*point)
    assert found is not None
    assert found.insee == insee
    assert communes.covering(shapely.Point(point)) == [insee]
    assert communes.in_mel(shapely.Point(point))
    assert communes.within(shapely.Point(point), {insee})


@pytest.mark.parametrize("point", [PARIS, BRUSSELS, MOUSCRON])
def test_outside_mel(communes: Communes, point: tuple[float, float]) -> None:
    assert communes.locate(*point) is None
    assert communes.covering(shapely.Point(point)) == []
    assert not communes.in_mel(shapely.Point(point))
    assert not communes.within(shapely.Point(point), [c.insee for c in communes])


def test_locate_many_matches_locate(communes: Communes) -> None:
    points = [GRAND_PLACE, PARIS, LOMME_MAIRIE, MOUSCRON, ROUBAIX_GRAND_PLACE]
    expected = [None if (c := communes.locate(*p)) is None else c.insee for p in points]
    assert communes.locate_many(np.array(points)) == expected
    assert expected == [LILLE, None, LILLE, None, "59512"]


def test_line_across_the_lille_la_madeleine_border(communes: Communes) -> None:
    line = LILLE_TO_LA_MADELEINE
    assert communes.covering(line) == [LILLE, LA_MADELEINE]  # the larger share first
    (first, lille_m), (second, madeleine_m) = communes.shares(line)
    assert (first, second) == (LILLE, LA_MADELEINE)
    assert lille_m > madeleine_m > 100
    assert communes.in_mel(line)
    assert not communes.within(line, {LILLE})
    assert not communes.within(line, [LA_MADELEINE])
    assert communes.within(line, {LILLE, LA_MADELEINE})
    assert communes.within(line, {LILLE, LA_MADELEINE, "75056"})  # unknown codes are ignored


def test_shares_add_up_to_the_line_length(communes: Communes, reprojector: Reprojector) -> None:
    line = LILLE_TO_LA_MADELEINE
    total = sum(share for _, share in communes.shares(line))
    assert total == pytest.approx(reprojector.geometry_to_metric(line).length, rel=1e-6)


def _poke_out_of_lille(reprojector: Reprojector, communes: Communes, metres: float) -> shapely.LineString:
    """A line from 200 m inside Lille to ``metres`` beyond the Lille / La Madeleine border."""
    lille_lonlat = communes.polygon(LILLE)
    assert lille_lonlat is not None
    lille = reprojector.geometry_to_metric(lille_lonlat)
    border = shapely.Point(reprojector.to_metric([BORDER_VERTEX])[0])
    inside = shapely.Point(reprojector.to_metric([GRAND_PLACE])[0])
    # the direction from Lille's interior towards the border, prolonged beyond it
    dx, dy = border.x - inside.x, border.y - inside.y
    norm = float(np.hypot(dx, dy))
    start = (border.x - dx / norm * 200, border.y - dy / norm * 200)
    end = (border.x + dx / norm * metres, border.y + dy / norm * metres)
    line = shapely.LineString([start, end])
    outside = shapely.difference(line, lille)
    assert shapely.length(outside) == pytest.approx(metres, rel=0.5)  # the border is not straight
    return reprojector.geometry_from_metric(line)


def test_within_tolerates_a_few_metres_beyond_the_border(communes: Communes, reprojector: Reprojector) -> None:
    assert communes.within(_poke_out_of_lille(reprojector, communes, 5.0), {LILLE})
    assert not communes.within(_poke_out_of_lille(reprojector, communes, 100.0), {LILLE})


def _ring_around_mel(reprojector: Reprojector, mel_union: shapely.Geometry, metres: float) -> shapely.LineString:
    """A stretch of the line running ``metres`` outside MEL's outer boundary."""
    grown = shapely.buffer(reprojector.geometry_to_metric(mel_union), metres)
    ring = shapely.get_exterior_ring(grown)
    stretch = substring(ring, 0.0, 500.0)
    assert isinstance(stretch, shapely.LineString)
    return reprojector.geometry_from_metric(stretch)


def test_in_mel_tolerance_at_the_outer_boundary(
    communes: Communes, reprojector: Reprojector, mel_union: shapely.Geometry
) -> None:
    near = _ring_around_mel(reprojector, mel_union, TOLERANCE_M / 2)
    far = _ring_around_mel(reprojector, mel_union, TOLERANCE_M * 4)
    assert communes.in_mel(near)
    assert not communes.in_mel(far)
    assert communes.covering(far) == []


def test_empty_geometry_and_no_codes(communes: Communes) -> None:
    assert not communes.in_mel(shapely.LineString())
    assert not communes.within(shapely.LineString(), {LILLE})
    assert not communes.within(shapely.Point(GRAND_PLACE), set())
    assert not communes.within(shapely.Point(GRAND_PLACE), {"75056"})


def test_load_from_a_file(tmp_path: Path) -> None:
    features = [
        {
            "type": "Feature",
            "properties": {"insee": "00001", "name": "Carré", "population": 10},
            "geometry": {"type": "Polygon", "coordinates": [[[3.0, 50.0], [3.01, 50.0], [3.01, 50.01], [3.0, 50.0]]]},
        }
    ]
    path = tmp_path / "communes.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8")
    loaded = Communes.load(path)
    assert len(loaded) == 1
    assert loaded.bbox == (3.0, 50.0, 3.01, 50.01)
    found = loaded.locate(3.008, 50.002)
    assert found == Commune("00001", "Carré", 10)


@settings(deadline=None)  # the machine is shared: no timing assertions
@given(st.floats(2.78908, 3.27097), st.floats(50.49983, 50.79433))
def test_points_in_a_commune_are_in_mel(
    communes: Communes, mel_union: shapely.Geometry, lon: float, lat: float
) -> None:
    point = shapely.Point(lon, lat)
    found = communes.locate(lon, lat)
    if shapely.covers(mel_union, point):
        assert found is not None
        assert communes.in_mel(point)
        assert communes.within(point, {found.insee})
    elif found is None:
        assert communes.covering(point) == []


@settings(deadline=None)  # the machine is shared: no timing assertions
@given(
    st.lists(st.tuples(st.floats(2.95, 3.15), st.floats(50.60, 50.70)), min_size=2, max_size=20, unique=True),
)
def test_a_line_is_within_the_communes_covering_it(
    communes: Communes, mel_union: shapely.Geometry, points: list[tuple[float, float]]
) -> None:
    line = shapely.LineString(points)
    codes = communes.covering(line)
    if shapely.covers(mel_union, line):
        assert codes
        assert communes.in_mel(line)
        assert communes.within(line, codes)
