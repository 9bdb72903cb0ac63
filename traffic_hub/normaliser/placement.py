"""Where a closure sits on the road: the placement the normaliser attaches to its event.

`Placer` is what the normaliser needs from the geo side. `PassthroughPlacer` keeps the geometry as
drawn (no road network); the network-backed placer maps it onto the network.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from traffic_hub.model import ClosureState, Direction, Normalised, Segment
from traffic_hub.model.geometry import lonlat_pairs


@dataclass(frozen=True)
class Placement:
    normalised: Normalised
    segments: list[Segment] = field(default_factory=list)
    withheld: list[str] = field(default_factory=list)  # why parts could not become single-street segments


class Placer(Protocol):
    def place_closure(self, closure: ClosureState) -> Placement: ...


class PassthroughPlacer:
    """The drawn line is taken as it is: one segment, the street the team named."""

    def __init__(self, length_m: LengthFn) -> None:
        self._length_m = length_m

    def place_closure(self, closure: ClosureState) -> Placement:
        if closure.geometry is None:  # the API resolves street-only closures before writing
            return Placement(Normalised(matched=False, confidence=0.0, reason="no geometry"), [], ["no geometry"])
        coords = lonlat_pairs(closure.geometry)
        normalised = Normalised(
            matched=False,
            street=closure.street,
            commune=closure.communes[0] if closure.communes else None,
            communes=closure.communes,
            direction=closure.direction,
            confidence=0.0,
            reason="no road network loaded: geometry passed through as drawn",
            method="passthrough",
        )
        if not closure.street:
            return Placement(normalised, [], ["no street name: give `street` so partners can place it"])
        segment = Segment(street=closure.street, coordinates=coords, length_m=self._length_m(coords))
        return Placement(normalised, [segment], [])


class LengthFn(Protocol):
    def __call__(self, coords: list[tuple[float, float]], /) -> float: ...


def direction_of(closure: ClosureState) -> Direction:
    return closure.direction
