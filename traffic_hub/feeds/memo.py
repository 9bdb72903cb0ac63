"""Remember what was rendered for an event object while that object lives.

Events are frozen: the view replaces an event object when the event changes and keeps the same
object otherwise. A feed re-rendered after one change among 10 000 events then rebuilds one
fragment, not 10 000. Entries are keyed by object identity and dropped by a weak-reference
callback when the event object is collected, so a recycled `id()` never meets a stale entry;
`key` (the publisher context) must match too.

Not Waze-specific: any renderer may hold one `EventMemo` per instance.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from traffic_hub.model import Event

T = TypeVar("T")


class EventMemo(Generic[T]):
    """Per-event values, computed once per live event object and context key."""

    def __init__(self) -> None:
        self._entries: dict[int, tuple[weakref.ref[Event], Hashable, T]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, event: Event, key: Hashable, build: Callable[[Event], T]) -> T:
        """`build(event)`, or the value remembered for this very object and `key`."""
        slot = id(event)
        entry = self._entries.get(slot)
        if entry is not None and entry[0]() is event and entry[1] == key:
            return entry[2]
        value = build(event)
        self._entries[slot] = (weakref.ref(event, self._forget(slot)), key, value)
        return value

    def _forget(self, slot: int) -> Callable[[weakref.ref[Event]], None]:
        def forget(ref: weakref.ref[Event]) -> None:
            entry = self._entries.get(slot)
            if entry is not None and entry[0] is ref:
                self._entries.pop(slot, None)

        return forget
