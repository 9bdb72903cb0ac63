"""The take-in's distances computed many at once are the one-at-a-time distances, bit for bit."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from traffic_hub.normaliser.conflation import _Metres, _packed

_LON = st.floats(2.95, 3.25, allow_nan=False)
_LAT = st.floats(50.55, 50.75, allow_nan=False)
_POINTS = st.lists(st.tuples(_LON, _LAT), min_size=1, max_size=6)


@settings(max_examples=200, deadline=None)
@given(_POINTS, st.lists(_POINTS, min_size=1, max_size=12))
def test_packed_distances_equal_one_at_a_time(
    origin: list[tuple[float, float]], others: list[list[tuple[float, float]]]
) -> None:
    metres = _Metres(origin)
    assert metres.to_packed([_packed(points) for points in others]) == [metres.to(points) for points in others]
