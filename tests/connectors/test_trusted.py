"""Models built without validation (`connectors.trusted`) are the ones validation builds.

On every item of the recorded Waze partner feeds (the parser that builds its reports that way): the
incident equals a validated copy made from its own fields, with the same field order, the same set
fields and the same JSON; and what `build` refuses (fields the model does not have, required ones
missing, models it cannot build). Hostile values are the property tests' business
(tests/connectors/test_parser_properties.py validates every incident made from mutated samples).
Run time: about 1 s.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field

from connectors.coords import geometry
from connectors.trusted import build
from connectors.waze_partner import WazePartnerFeedParser
from tests.connectors.sources import LILLE, context, read
from traffic_hub.model import LineString, Point, Validity

WAZE_FEEDS = [
    read("waze-partner-feed/nyc_partner-feed_2019-03-22T2138Z.json"),
    read("waze-partner-feed/antofagasta-cl_partner-feed_2024-08-23T1413Z.json"),
    (LILLE / "lille_waze-partner-feed.json").read_bytes(),
]


def _validated(model: BaseModel) -> BaseModel:
    """`model` rebuilt through validation from the fields it was given (nested models too)."""
    given = {name: getattr(model, name) for name in model.model_fields_set}
    for name, value in given.items():
        if isinstance(value, BaseModel):
            given[name] = _validated(value)
    return type(model)(**given)


@pytest.mark.parametrize("payload", WAZE_FEEDS, ids=["nyc", "antofagasta", "lille"])
def test_waze_reports_equal_validated_ones(payload: bytes) -> None:
    parsed = WazePartnerFeedParser().parse(payload, context())
    assert parsed.incidents
    for incident in parsed.incidents:
        checked = _validated(incident)
        assert checked == incident
        assert list(checked.__dict__) == list(incident.__dict__)
        assert checked.model_fields_set == incident.model_fields_set
        assert checked.model_dump_json() == incident.model_dump_json()
        assert checked.__pydantic_extra__ == incident.__pydantic_extra__
        assert checked.__pydantic_private__ == incident.__pydantic_private__


def test_geometry_equals_validated_shapes() -> None:
    point = geometry([(3.06, 50.63), (3.06, 50.63)])
    line = geometry([(3, 50), (3.1, 50.1), (3.1, 50.1), (3.2, 50.2)])
    assert point == Point(type="Point", coordinates=[3.06, 50.63])
    assert line == LineString(type="LineString", coordinates=[[3.0, 50.0], [3.1, 50.1], [3.2, 50.2]])
    assert all(type(value) is float for position in line.coordinates for value in position)


def test_defaults_and_frozenness_as_validation_gives() -> None:
    validity = build(Validity, {"starts_at": context().received_at})
    assert validity == Validity(starts_at=context().received_at)
    assert validity.model_fields_set == {"starts_at"}
    with pytest.raises(ValueError, match="frozen"):
        validity.ends_at = None  # type: ignore[misc]


class _WithFactory(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    tags: dict[str, Any] = Field(default_factory=dict)


def test_a_default_factory_makes_a_new_value_each_time() -> None:
    first, second = build(_WithFactory, {"name": "a"}), build(_WithFactory, {"name": "b"})
    assert first == _WithFactory(name="a")
    assert first.tags == {}
    assert first.tags is not second.tags


@pytest.mark.parametrize(
    "fields",
    [{"name": "a", "colour": "red"}, {"tags": {}}],
    ids=["unknown field", "required field missing"],
)
def test_field_names_are_checked(fields: dict[str, Any]) -> None:
    with pytest.raises(TypeError, match="unknown or missing fields"):
        build(_WithFactory, fields)


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str


def test_models_with_extra_fields_are_not_built() -> None:
    with pytest.raises(TypeError, match="not built without validation"):
        build(_Open, {"name": "a"})
