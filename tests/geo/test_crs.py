"""CRS handling (geo.crs): names, projection origins, round trips inside MEL, bad input."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from geo.crs import CC50, LAMBERT93, SUPPORTED_CRS, WGS84, Reprojector, normalise_crs
from geo.errors import GeoError
from geo.shapes import length_m

MEL_BBOX = (2.78908, 50.49983, 3.27097, 50.79433)
GRAND_PLACE = (3.0630, 50.6370)


@pytest.fixture(scope="module")
def reprojector() -> Reprojector:
    return Reprojector()


def test_supported_crs() -> None:
    assert frozenset({"EPSG:4326", "EPSG:2154", "EPSG:3950"}) == SUPPORTED_CRS


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("EPSG:4326", WGS84),
        ("epsg:4326", WGS84),
        ("urn:ogc:def:crs:OGC:1.3:CRS84", WGS84),
        (" EPSG:2154 ", LAMBERT93),
        ("urn:ogc:def:crs:EPSG::2154", LAMBERT93),
        ("EPSG:3950", CC50),
    ],
)
def test_normalise_crs(name: str, canonical: str) -> None:
    assert normalise_crs(name) == canonical


@pytest.mark.parametrize("name", ["EPSG:3857", "EPSG:27572", "WGS84", "", None, 4326])
def test_unsupported_crs(reprojector: Reprojector, name: object) -> None:
    with pytest.raises(GeoError) as caught:
        reprojector.to_wgs84([[3.0, 50.0]], name)  # type: ignore[arg-type]
    assert caught.value.code == "unsupported-crs"
    assert "EPSG:2154" in caught.value.reason


@pytest.mark.parametrize(
    ("crs", "origin", "lonlat"),
    [
        # Lambert-93: central meridian 3°E, latitude of origin 46.5°N → (700 000, 6 600 000)
        ("EPSG:2154", (700_000.0, 6_600_000.0), (3.0, 46.5)),
        # CC50: central meridian 3°E, latitude of origin 50°N → (1 700 000, 9 200 000)
        ("EPSG:3950", (1_700_000.0, 9_200_000.0), (3.0, 50.0)),
    ],
)
def test_projection_origins(
    reprojector: Reprojector, crs: str, origin: tuple[float, float], lonlat: tuple[float, float]
) -> None:
    ((lon, lat),) = reprojector.to_wgs84([list(origin)], crs)
    assert (lon, lat) == pytest.approx(lonlat, abs=1e-9)
    assert reprojector.from_wgs84([lonlat], crs).tolist()[0] == pytest.approx(origin, abs=1e-6)


def test_wgs84_passes_through_and_drops_elevation(reprojector: Reprojector) -> None:
    assert reprojector.to_wgs84([[3.0561, 50.6301, 20.0], [3.0509, 50.6279]], "EPSG:4326") == [
        (3.0561, 50.6301),
        (3.0509, 50.6279),
    ]


def test_grand_place_in_both_projections_agrees(reprojector: Reprojector) -> None:
    l93 = reprojector.from_wgs84([GRAND_PLACE], LAMBERT93)
    cc50 = reprojector.from_wgs84([GRAND_PLACE], CC50)
    assert reprojector.to_metric([GRAND_PLACE]).tolist() == cc50.tolist()
    from_l93 = reprojector.to_wgs84(l93.tolist(), LAMBERT93)[0]
    from_cc50 = reprojector.to_wgs84(cc50.tolist(), CC50)[0]
    assert from_l93 == pytest.approx(GRAND_PLACE, abs=1e-9)
    assert from_cc50 == pytest.approx(GRAND_PLACE, abs=1e-9)
    # both are conformal conics on RGF93 with 3°E as central meridian: Lille lies ~4.5 km east of it
    assert 4_000 < l93[0, 0] - 700_000 < 5_000
    assert 4_000 < cc50[0, 0] - 1_700_000 < 5_000


def test_metric_lengths_are_true_metres_at_lille(reprojector: Reprojector) -> None:
    line = shapely.LineString([(3.0561, 50.6301), (3.0509, 50.6279), (3.0420, 50.6250)])
    metric = reprojector.geometry_to_metric(line)
    assert metric.length == pytest.approx(length_m(line), rel=1e-4)
    back = reprojector.geometry_from_metric(metric)
    assert np.allclose(shapely.get_coordinates(back), shapely.get_coordinates(line), rtol=0, atol=1e-10)


def test_degrees_labelled_as_metres_are_refused(reprojector: Reprojector) -> None:
    with pytest.raises(GeoError) as caught:
        reprojector.to_wgs84([[3.0561, 50.6301], [3.0509, 50.6279]], "EPSG:2154")
    assert caught.value.code == "wrong-crs"
    assert "EPSG:4326" in caught.value.reason


def test_metres_labelled_as_degrees_are_refused(reprojector: Reprojector) -> None:
    with pytest.raises(GeoError) as caught:
        reprojector.to_wgs84([[704464.4, 7060006.0], [704100.0, 7059800.0]], "EPSG:4326")
    assert caught.value.code == "wrong-crs"
    assert "EPSG:2154" in caught.value.reason


def test_unprojectable_coordinates_are_refused(reprojector: Reprojector) -> None:
    with pytest.raises(GeoError) as caught:
        reprojector.to_wgs84([[1_700_000.0, 9_200_000.0], [1e300, 1e300]], "EPSG:3950")
    assert caught.value.code == "out-of-range"
    assert caught.value.position == 1


def test_projected_input_is_parsed_strictly(reprojector: Reprojector) -> None:
    with pytest.raises(GeoError) as caught:
        reprojector.to_wgs84([[704464.4, "7060006"]], "EPSG:2154")  # type: ignore[list-item]
    assert caught.value.code == "bad-position"


lon_in_mel = st.floats(MEL_BBOX[0], MEL_BBOX[2])
lat_in_mel = st.floats(MEL_BBOX[1], MEL_BBOX[3])
points_in_mel = st.lists(st.tuples(lon_in_mel, lat_in_mel), min_size=1, max_size=20)


def _metres_apart(reprojector: Reprojector, a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    xa, xb = reprojector.to_metric(a), reprojector.to_metric(b)
    return float(np.max(np.hypot(*(xa - xb).T)))


@settings(deadline=None)  # the machine is shared: no timing assertions
@given(points_in_mel, st.sampled_from([LAMBERT93, CC50]))
def test_projected_round_trip_within_a_millimetre(
    reprojector: Reprojector, points: list[tuple[float, float]], crs: str
) -> None:
    projected = reprojector.from_wgs84(points, crs)
    back = reprojector.to_wgs84(projected.tolist(), crs)
    assert _metres_apart(reprojector, points, back) < 1e-3


@settings(deadline=None)  # the machine is shared: no timing assertions
@given(points_in_mel)
def test_metric_round_trip_within_a_millimetre(reprojector: Reprojector, points: list[tuple[float, float]]) -> None:
    metric = reprojector.to_metric(points)
    assert _metres_apart(reprojector, points, reprojector.from_metric(metric)) < 1e-3
    # and from metres: to_wgs84(from CC50) then back to metres lands on the same spot
    lonlat = reprojector.to_wgs84(metric.tolist(), CC50)
    assert float(np.max(np.hypot(*(reprojector.to_metric(lonlat) - metric).T))) < 1e-3
