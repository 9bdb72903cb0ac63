"""Validation of posted line geometries (geo.shapes): every rejection code, and properties."""

from __future__ import annotations

import math

import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from geo.crs import Reprojector
from geo.errors import GeoError
from geo.shapes import MAX_POINTS, length_m, line_from_coords, lines_from_coords, looks_swapped, parse_positions

# The example from the contract: a closure in central Lille (Rue Nationale area).
CONTRACT_LINE = [[3.0561, 50.6301], [3.0509, 50.6279]]
MEL_BBOX = (2.78908, 50.49983, 3.27097, 50.79433)


@pytest.fixture(scope="module")
def reprojector() -> Reprojector:
    return Reprojector()


def _code(coords: object) -> str:
    with pytest.raises(GeoError) as caught:
        line_from_coords(coords)
    return caught.value.code


def test_contract_example_is_accepted() -> None:
    line = line_from_coords(CONTRACT_LINE)
    assert shapely.get_coordinates(line).tolist() == CONTRACT_LINE
    assert 400 < length_m(line) < 450


def test_elevation_is_dropped_and_ints_accepted() -> None:
    line = line_from_coords([[3, 50, 12.5], [3.001, 50.0005, 13]])
    assert not line.has_z
    assert shapely.get_coordinates(line).tolist() == [[3.0, 50.0], [3.001, 50.0005]]


def test_tuples_are_accepted() -> None:
    line = line_from_coords(((3.0561, 50.6301), (3.0509, 50.6279)))
    assert len(line.coords) == 2


def test_consecutive_repeats_are_collapsed() -> None:
    line = line_from_coords([[3.0561, 50.6301], [3.0561, 50.6301], [3.0509, 50.6279], [3.0509, 50.6279]])
    assert shapely.get_coordinates(line).tolist() == CONTRACT_LINE


@pytest.mark.parametrize("coords", ["3.0561,50.6301", {"type": "LineString"}, None, 3.0561, b"[[3, 50]]"])
def test_not_a_list(coords: object) -> None:
    assert _code(coords) == "not-a-list"


def test_too_many_points() -> None:
    coords = [[3.0 + i * 1e-5, 50.6] for i in range(MAX_POINTS + 1)]
    assert _code(coords) == "too-many-points"
    assert len(line_from_coords(coords[:MAX_POINTS]).coords) == MAX_POINTS


@pytest.mark.parametrize(
    ("coords", "position"),
    [
        ([[3.0561], [3.0509, 50.6279]], 0),
        ([[3.0561, 50.6301], [3.0509, 50.6279, 10.0, 1.0]], 1),
        ([[3.0561, 50.6301], ["3.0509", "50.6279"]], 1),
        ([[True, 50.6301], [3.0509, 50.6279]], 0),
        ([[3.0561, 50.6301], [3.0509, None]], 1),
        ([[3.0561, 50.6301], {"lon": 3.0509, "lat": 50.6279}], 1),
        ([[3.0561, 50.6301], "3.0509 50.6279"], 1),
    ],
)
def test_bad_position_names_the_position(coords: object, position: int) -> None:
    with pytest.raises(GeoError) as caught:
        line_from_coords(coords)
    assert caught.value.code == "bad-position"
    assert caught.value.position == position
    assert f"position {position}" in caught.value.reason


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, 10**400])
def test_not_finite(bad: float) -> None:
    assert _code([[3.0561, 50.6301], [bad, 50.6279]]) == "not-finite"


@pytest.mark.parametrize("coords", [[[3.0561, 50.6301], [181.0, 50.6279]], [[3.0561, 91.0], [3.0509, 50.6279]]])
def test_out_of_range(coords: list[list[float]]) -> None:
    assert _code(coords) == "out-of-range"


@pytest.mark.parametrize(
    "coords",
    [[], [[3.0561, 50.6301]], [[3.0561, 50.6301], [3.0561, 50.6301]], [[3.0561, 50.6301, 1], [3.0561, 50.6301, 2]]],
)
def test_too_few_points(coords: object) -> None:
    assert _code(coords) == "too-few-points"


@pytest.mark.parametrize(
    "coords",
    [
        # a bow-tie around the Grand Place
        [[3.0620, 50.6365], [3.0640, 50.6375], [3.0640, 50.6365], [3.0620, 50.6375]],
        # a closed ring (a block drawn as a LineString)
        [[3.0620, 50.6365], [3.0640, 50.6365], [3.0640, 50.6375], [3.0620, 50.6365]],
        # going back over itself along the same (north-south) street
        [[3.0630, 50.6301], [3.0630, 50.6279], [3.0630, 50.6290]],
        # coming back to an earlier vertex
        [[3.0561, 50.6301], [3.0509, 50.6279], [3.0509, 50.6301], [3.0561, 50.6301], [3.0600, 50.6320]],
    ],
)
def test_self_crossing(coords: list[list[float]]) -> None:
    assert _code(coords) == "self-crossing"


def test_degenerate() -> None:
    # two distinct points 0.5 m apart (1 m of longitude at 50.6°N is ~1.42e-5°)
    assert _code([[3.0561, 50.6301], [3.0561 + 0.7e-5, 50.6301]]) == "degenerate"


def test_parse_positions_for_projected_coordinates() -> None:
    points = parse_positions([[704464.4, 7060006.0, 21.0]])
    assert points.tolist() == [[704464.4, 7060006.0]]


def test_length_of_a_meridian_degree() -> None:
    # GRS80 meridian arc for 1° centred on 50.5°N: 111132.954 − 559.822·cos(101°) + 1.175·cos(202°)
    expected = 111132.954 - 559.822 * math.cos(math.radians(101)) + 1.175 * math.cos(math.radians(202))
    assert length_m(shapely.LineString([(3.0, 50.0), (3.0, 51.0)])) == pytest.approx(expected, abs=1.0)


lon_in_mel = st.floats(MEL_BBOX[0], MEL_BBOX[2])
lat_in_mel = st.floats(MEL_BBOX[1], MEL_BBOX[3])


@settings(deadline=None)  # the machine is shared: no timing assertions
@given(st.lists(st.tuples(lon_in_mel, lat_in_mel), min_size=2, max_size=30, unique=True))
def test_length_matches_cc50_metres_in_mel(reprojector: Reprojector, points: list[tuple[float, float]]) -> None:
    line = shapely.LineString(points)
    metric = reprojector.geometry_to_metric(line)
    # CC50's scale error in MEL is tens of ppm; 2e-4 relative leaves room for the zone edges
    assert length_m(line) == pytest.approx(metric.length, rel=2e-4, abs=1e-6)


@st.composite
def monotone_lines(draw: st.DrawFn) -> list[list[float]]:
    """Lines whose x strictly increases (so they are simple), in lon/lat or lat/lon order."""
    count = draw(st.integers(2, 60))
    start = draw(st.floats(-179.0, 170.0))
    steps = draw(st.lists(st.floats(1e-3, 0.2), min_size=count - 1, max_size=count - 1))
    xs = [start]
    for step in steps:
        xs.append(min(xs[-1] + step, 180.0))
    ys = draw(st.lists(st.floats(-80.0, 80.0), min_size=len(xs), max_size=len(xs)))
    points = [[x, y] for x, y in zip(xs, ys, strict=True)]
    unique = [p for i, p in enumerate(points) if i == 0 or p[0] > points[i - 1][0]]
    if draw(st.booleans()):  # monotone in latitude instead: scale x into [-80, 80]
        unique = [[y, x * 80.0 / 180.0] for x, y in unique]
    return unique if len(unique) >= 2 else [[0.0, 0.0], [0.01, 0.0]]


@settings(deadline=None)  # the machine is shared: no timing assertions
@given(monotone_lines(), st.booleans())
def test_any_simple_line_of_distinct_points_is_accepted(coords: list[list[float]], with_z: bool) -> None:
    given_coords = [[*p, 10.0] for p in coords] if with_z else coords
    line = line_from_coords(given_coords)
    assert shapely.get_coordinates(line).tolist() == coords
    assert line.is_simple
    assert length_m(line) >= 1.0


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=20,
)


GEO_ERROR_CODES = {
    "not-a-list",
    "too-many-points",
    "bad-position",
    "not-finite",
    "out-of-range",
    "too-few-points",
    "self-crossing",
    "degenerate",
}


def _outcome(value: object) -> GeoError | shapely.LineString:
    try:
        return line_from_coords(value)
    except GeoError as error:
        return error


@settings(deadline=None)  # the machine is shared: no timing assertions
@given(json_values)
def test_any_json_value_gives_a_line_or_a_geo_error(value: object) -> None:
    outcome = _outcome(value)
    if isinstance(outcome, GeoError):
        assert outcome.code in GEO_ERROR_CODES
        assert outcome.reason
    else:
        assert outcome.is_simple


@settings(deadline=None)  # the machine is shared: no timing assertions
@given(st.lists(st.tuples(lon_in_mel, lat_in_mel), min_size=1, max_size=50))
def test_looks_swapped_for_mel_lines(points: list[tuple[float, float]]) -> None:
    correct = [[lon, lat] for lon, lat in points]
    swapped = [[lat, lon] for lon, lat in points]
    assert not looks_swapped(correct, MEL_BBOX)
    assert looks_swapped(swapped, MEL_BBOX)


def test_looks_swapped_on_the_contract_example_and_odd_input() -> None:
    swapped = [[lat, lon] for lon, lat in CONTRACT_LINE]
    assert looks_swapped(swapped, MEL_BBOX)
    assert looks_swapped(shapely.LineString(swapped), MEL_BBOX)
    assert not looks_swapped(shapely.LineString(CONTRACT_LINE), MEL_BBOX)
    assert not looks_swapped([[2.35, 48.85], [2.36, 48.86]], MEL_BBOX)  # Paris: outside, not swapped
    assert not looks_swapped("50.63,3.05", MEL_BBOX)
    assert not looks_swapped([], MEL_BBOX)
    # partly swapped: not called swapped (the line is just wrong)
    assert not looks_swapped([CONTRACT_LINE[0], swapped[1]], MEL_BBOX)


def _one_at_a_time(value: object, box: tuple[float, float, float, float]) -> GeoError | shapely.LineString:
    """What checking one line alone gives: swapped first, then line_from_coords."""
    if looks_swapped(value, box):
        return GeoError("swapped-coordinates", "")
    return _outcome(value)


def _same(a: GeoError | shapely.LineString, b: GeoError | shapely.LineString) -> bool:
    if isinstance(a, GeoError) or isinstance(b, GeoError):
        return isinstance(a, GeoError) and isinstance(b, GeoError) and (a.code, a.position) == (b.code, b.position)
    return bool(a.equals_exact(b, 0.0))


line_values = st.one_of(
    json_values,
    monotone_lines(),
    monotone_lines().map(lambda line: [[p[1], p[0], *p[2:]] for p in line]),  # swapped
    st.just([[3.0, 50.6], [3.01, 50.61], [3.0, 50.61], [3.01, 50.6]]),  # self-crossing
    st.lists(st.tuples(lon_in_mel, lat_in_mel), min_size=1, max_size=8).map(
        lambda points: [[lat, lon] for lon, lat in points]  # swapped, in MEL
    ),
    st.lists(st.tuples(lon_in_mel, lat_in_mel), min_size=1, max_size=8).map(lambda points: [list(p) for p in points]),
)


@settings(deadline=None)  # the machine is shared: no timing assertions
@given(st.lists(line_values, max_size=6))
def test_checking_lines_together_is_checking_each_alone(values: list[object]) -> None:
    together = lines_from_coords(values, swapped_in=MEL_BBOX)
    assert len(together) == len(values)
    for value, outcome in zip(values, together, strict=True):
        assert _same(outcome, _one_at_a_time(value, MEL_BBOX))
