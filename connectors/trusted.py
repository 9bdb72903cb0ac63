"""Models built from values a parser has already checked, without pydantic validating them again.

Why: building an `IncidentReport` through pydantic validated every field a second time (13 µs per item,
plus its `Validity` and geometry: about 17 µs, a quarter of the Waze partner feed parser's own work on
the 1.7 MB NYC sample), although every value came out of the parser's own readers: strings from
`values.text`, finite numbers from `values.number`, aware times from `values.from_millis`, enums from
fixed tables, geometry from `coords.geometry` (finite, in WGS84 range, 1 to `MAX_POINTS` positions).
Hostile input is still refused: by those readers, which raise `ItemError` (the item becomes a reject),
not by a second validation afterwards.

`build` is for those call sites only: it checks that the field names are the model's (no unknown
field, every required one given), nothing about the values. `tests/connectors/test_trusted.py` pins
that what it builds equals what validation builds, field order included (the JSON bytes depend on it),
and the property tests (`tests/connectors/test_parser_properties.py`) that every incident a parser
makes from mutated samples survives validation unchanged.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)
_REQUIRED = object()  # placeholder of a required field in a model's template
_set = object.__setattr__
_new = object.__new__  # BaseModel has no __new__ of its own


@dataclass(frozen=True, slots=True)
class _Shape:
    template: dict[str, Any]  # every field in declaration order: its default, or `_REQUIRED`
    required: frozenset[str]
    names: frozenset[str]
    factories: tuple[str, ...]  # fields whose default is made per instance (`default_factory`)


@functools.cache
def _shape(model: type[BaseModel]) -> _Shape:
    special = model.__pydantic_post_init__ or model.__pydantic_root_model__ or model.__private_attributes__
    if special or model.model_config.get("extra") == "allow":
        raise TypeError(f"{model.__name__} is not built without validation here")
    template: dict[str, Any] = {}
    factories: list[str] = []
    for name, info in model.model_fields.items():
        if info.default_factory is not None:
            factories.append(name)
        template[name] = _REQUIRED if info.is_required() else info.default
    required = frozenset(name for name, value in template.items() if value is _REQUIRED)
    return _Shape(template, required, frozenset(template), tuple(factories))


def build(model: type[M], fields: dict[str, Any]) -> M:
    """`model(**fields)` for values already checked (see the module docstring), without validating them."""
    shape = _shape(model)
    given = fields.keys()
    if not (shape.required <= given <= shape.names):
        raise TypeError(f"{model.__name__}: unknown or missing fields in {sorted(given)}")
    values = {**shape.template, **fields}  # the template's (declaration) order, the given values
    for name in shape.factories:
        if name not in fields:
            values[name] = model.model_fields[name].get_default(call_default_factory=True)
    instance = _new(model)
    _set(instance, "__dict__", values)
    _set(instance, "__pydantic_fields_set__", set(given))
    _set(instance, "__pydantic_extra__", None)
    _set(instance, "__pydantic_private__", None)
    return instance
