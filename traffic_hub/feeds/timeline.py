"""When each event changes by itself, and when the feeds' content last changed.

Events enter and leave feeds at their start and end, and scheduled ones at each window boundary;
an item may also read differently once its event has started (upcoming → active). The timeline
keeps, per event, the next such moment (a heap), so the engine wakes up then and re-renders just
those events. It also keeps the feeds' content time: the newest update, or validity boundary
already passed, among the current events; deterministic for a given view (an update counts even
before a lagging clock reaches it) so that replicas serve the same Last-Modified and ETag.
"""

from __future__ import annotations

import heapq
from datetime import datetime, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

from traffic_hub.model import Event

__all__ = ["MAX_SLEEP", "Moments", "Timeline", "moments_of"]

MAX_SLEEP = timedelta(minutes=5)


class Moments(NamedTuple):
    next: datetime | None  # when the event next changes by itself (start, end, window boundary)
    last: datetime  # its update, or its newest validity boundary already passed if later


def moments_of(event: Event, now: datetime, tz: ZoneInfo) -> Moments:
    validity = event.validity
    upcoming = [m for m in (validity.starts_at, validity.ends_at) if m is not None and m > now]
    if validity.schedule is not None:
        upcoming.extend(validity.schedule.boundaries(now, tz)[:1])
    passed = [m for m in (validity.starts_at, validity.ends_at) if m is not None and m <= now]
    # the update counts even if this replica's clock has not reached it yet (clock skew between machines):
    # otherwise a lagging replica would date the feed by an older moment until the next change
    return Moments(min(upcoming, default=None), max([event.updated_at, *passed]))


class Timeline:
    def __init__(self, tz: ZoneInfo) -> None:
        self.tz = tz
        self._next: dict[str, datetime] = {}
        self._wakes: list[tuple[datetime, str]] = []  # (moment, event id); stale entries are skipped
        self._last: dict[str, datetime] = {}
        self._latest: list[tuple[float, str]] = []  # max-heap of (-timestamp, event id), lazily cleaned

    def track(self, event_id: str, event: Event | None, now: datetime) -> None:
        """Remember when `event` (None: gone) next changes by itself, and its newest passed moment."""
        if event is None:
            self._next.pop(event_id, None)
            self._last.pop(event_id, None)
            return
        self.put(event_id, moments_of(event, now, self.tz))

    def load(self, moments: dict[str, Moments]) -> None:
        """Start over with these events' moments (after a full rebuild)."""
        self._next = {event_id: m.next for event_id, m in moments.items() if m.next is not None}
        self._wakes = [(moment, event_id) for event_id, moment in self._next.items()]
        heapq.heapify(self._wakes)
        self._last = {event_id: m.last for event_id, m in moments.items()}
        self._compact()

    def moments(self) -> dict[str, Moments]:
        """Every tracked event's moments (what `load` takes back)."""
        return {event_id: Moments(self._next.get(event_id), last) for event_id, last in self._last.items()}

    def put(self, event_id: str, moments: Moments) -> None:
        moment = moments.next
        if moment is None:
            self._next.pop(event_id, None)
        elif self._next.get(event_id) != moment:
            self._next[event_id] = moment
            heapq.heappush(self._wakes, (moment, event_id))
        last = moments.last
        if self._last.get(event_id) != last:
            self._last[event_id] = last
            heapq.heappush(self._latest, (-last.timestamp(), event_id))
        if len(self._latest) > 2 * len(self._last) + 1024:
            self._compact()

    def due(self, now: datetime) -> list[str]:
        """Events whose next moment has come (each once; `track` them again after re-rendering)."""
        out: list[str] = []
        while self._wakes and self._wakes[0][0] <= now:
            moment, event_id = heapq.heappop(self._wakes)
            if self._next.get(event_id) == moment:
                del self._next[event_id]
                out.append(event_id)
        return out

    def wake_at(self, now: datetime) -> datetime:
        while self._wakes and self._next.get(self._wakes[0][1]) != self._wakes[0][0]:
            heapq.heappop(self._wakes)
        return min(self._wakes[0][0], now + MAX_SLEEP) if self._wakes else now + MAX_SLEEP

    def content_time(self, now: datetime) -> datetime:
        """The newest update or validity boundary passed among the events (start of the hour if none)."""
        while self._latest:
            stamp, event_id = self._latest[0]
            last = self._last.get(event_id)
            if last is not None and last.timestamp() == -stamp:
                return last
            heapq.heappop(self._latest)
        return now.replace(minute=0, second=0, microsecond=0)

    def _compact(self) -> None:
        self._latest = [(-last.timestamp(), event_id) for event_id, last in self._last.items()]
        heapq.heapify(self._latest)
