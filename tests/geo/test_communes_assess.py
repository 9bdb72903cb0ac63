"""`Communes.assess` (one projection, one scope: the closure POST's check) answers as the three
separate questions do, on the border cases of test_scope and on random lines across MEL's edge."""

from __future__ import annotations

import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from geo.communes import Assessment, Communes
from tests.geo.test_scope import ALONG_BORDER, IN_VILLENEUVE, LILLE, OUTSIDE, STRAYING, VILLENEUVE

_COMMUNES = Communes.load()
_TEAMS = st.sampled_from([None, frozenset({LILLE}), frozenset({VILLENEUVE}), frozenset({LILLE, VILLENEUVE}),
                          frozenset({"59512"}), frozenset()])


def _separately(communes: Communes, line: shapely.Geometry, team: frozenset[str] | None) -> Assessment:
    in_scope = communes.in_scope(line, team) if team is not None else None
    return Assessment(communes.scope(line), communes.in_mel(line), in_scope)


@pytest.mark.parametrize("line", [STRAYING, IN_VILLENEUVE, ALONG_BORDER, OUTSIDE, shapely.LineString()])
@pytest.mark.parametrize("team", [None, frozenset({LILLE}), frozenset({VILLENEUVE}), frozenset()])
def test_assess_on_the_border_cases(line: shapely.Geometry, team: frozenset[str] | None) -> None:
    assert _COMMUNES.assess(line, team) == _separately(_COMMUNES, line, team)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(st.floats(2.80, 3.30), st.floats(50.48, 50.82)), min_size=2, max_size=5),
    _TEAMS,
)
def test_assess_answers_as_the_three_questions(points: list[tuple[float, float]], team: frozenset[str] | None) -> None:
    line = shapely.LineString(points)
    assert _COMMUNES.assess(line, team) == _separately(_COMMUNES, line, team)
