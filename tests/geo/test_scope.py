"""The one commune scope rule (geo.communes.Communes.scope / in_scope) on the real Lille–Villeneuve-d'Ascq border."""

from __future__ import annotations

import pytest
import shapely

from geo.communes import Communes

LILLE, VILLENEUVE = "59350", "59009"
# 300 m inside Lille, its last 10 m over the border into Villeneuve-d'Ascq
STRAYING = shapely.LineString([[3.116655, 50.6303], [3.120897, 50.630997]])
# wholly inside Villeneuve-d'Ascq, 12 m from Lille: within Lille's 25 m tolerance band
IN_VILLENEUVE = shapely.LineString([[3.120924, 50.631002], [3.121101, 50.630567]])
# 200 m along the border itself, zig-zagging ±6 m across it (a border street)
ALONG_BORDER = shapely.LineString([
    [3.120678, 50.630961], [3.120913, 50.630814], [3.120819, 50.630613], [3.121054, 50.630466],
    [3.120961, 50.630265], [3.121196, 50.630118], [3.121102, 50.629917], [3.121337, 50.62977],
])
OUTSIDE = shapely.LineString([[3.014684, 50.772052], [3.014394, 50.772361]])  # 12 m outside MEL at Comines


@pytest.fixture(scope="module")
def communes() -> Communes:
    return Communes.load()


def test_a_line_straying_over_the_border_is_its_commune_s(communes: Communes) -> None:
    assert communes.covering(STRAYING) == [LILLE, VILLENEUVE]
    assert communes.scope(STRAYING) == [LILLE]
    assert communes.in_scope(STRAYING, {LILLE})
    assert not communes.in_scope(STRAYING, {VILLENEUVE})


def test_a_line_wholly_in_the_neighbour_is_the_neighbour_s_however_close(communes: Communes) -> None:
    assert communes.within(IN_VILLENEUVE, {LILLE})  # the tolerance alone let Lille have it
    assert communes.scope(IN_VILLENEUVE) == [VILLENEUVE]
    assert not communes.in_scope(IN_VILLENEUVE, {LILLE})
    assert communes.in_scope(IN_VILLENEUVE, {VILLENEUVE})
    assert communes.in_scope(IN_VILLENEUVE, {LILLE, VILLENEUVE})


def test_a_border_street_belongs_to_both_communes(communes: Communes) -> None:
    assert sorted(communes.scope(ALONG_BORDER)) == [VILLENEUVE, LILLE]
    assert communes.in_scope(ALONG_BORDER, {LILLE})
    assert communes.in_scope(ALONG_BORDER, {VILLENEUVE})


def test_outside_mel_is_in_no_commune_and_nobody_s_scope(communes: Communes) -> None:
    assert communes.in_mel(OUTSIDE)  # within the tolerance of the border
    assert communes.scope(OUTSIDE) == []
    assert not communes.in_scope(OUTSIDE, {c.insee for c in communes})


def test_names(communes: Communes) -> None:
    assert communes.names([VILLENEUVE, "00000"]) == "Villeneuve-d'Ascq (59009), 00000"
