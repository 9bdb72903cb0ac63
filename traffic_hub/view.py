"""The materialised view of canonical events, rebuilt from the compacted events topic.

Every API replica holds the same view because it reads the same topic from the beginning; a
restarted process has it back once `ready` is set. Changes are numbered so that feeds re-render
and SSE clients resume from a sequence number.

Events are kept as the JSON bytes read from the topic (~1 KB each) rather than as `Event` objects
(~5.5 KB each: issue 7), with the few fields that filters read (`Stored`); an event is decoded when
it is asked for, and the last ones decoded are cached.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import sys
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import TracebackType

from aiokafka import ConsumerRecord
from pydantic import ValidationError

from traffic_hub.kafka.reader import TopicReader
from traffic_hub.model import Event, Lifecycle

log = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def micros(moment: datetime) -> int:
    """Microseconds since the epoch: exact (datetimes have microsecond resolution), so comparisons
    of these integers agree with comparisons of the datetimes."""
    return (moment - _EPOCH) // _MICROSECOND


@dataclass(frozen=True, slots=True, eq=False)
class Stored:
    """One version of an event as kept in memory: its JSON, and what filters read without decoding it.

    Immutable and compared by identity: a record stands for one version, which is what lets decoded
    events be cached by record with no invalidation.
    """

    id: str
    raw: bytes  # the event's JSON, as on the events topic
    version: int
    lifecycle: Lifecycle
    starts: int  # validity.starts_at, see `micros`
    ends: int | None  # validity.ends_at
    updated: int  # updated_at
    scheduled: bool  # validity.schedule is not None
    dismissed: bool  # verification == "dismissed"
    closure: bool  # closure is not None

    @classmethod
    def of(cls, event_id: str, event: Event, raw: bytes) -> Stored:
        """The record of `event`, whose JSON is `raw`."""
        validity = event.validity
        return cls(
            id=event_id,
            raw=raw,
            version=event.version,
            lifecycle=event.lifecycle,
            starts=micros(validity.starts_at),
            ends=None if validity.ends_at is None else micros(validity.ends_at),
            updated=micros(event.updated_at),
            scheduled=validity.schedule is not None,
            dismissed=event.verification == "dismissed",
            closure=event.closure is not None,
        )

    def decode(self) -> Event:
        return Event.model_validate_json(self.raw)

    def is_current(self, now: int) -> bool:
        """`Event.is_current` at `now` (see `micros`): open and not past its end."""
        return self.lifecycle is Lifecycle.OPEN and (self.ends is None or now < self.ends)

    def finished_at(self) -> int:
        """`normaliser.service.finished_at`: the end time, or the last change when ended or cancelled."""
        return self.ends if self.ends is not None and self.lifecycle is Lifecycle.OPEN else self.updated


def encode(event: Event) -> bytes:
    """An event's JSON, as the normaliser writes it to the events topic."""
    return event.model_dump_json().encode()


class Decoded:
    """The events decoded last, by record: a bounded LRU, shared by the loop and worker threads."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._events: OrderedDict[Stored, Event] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._events)

    def get(self, stored: Stored) -> Event:
        """The decoded event, kept as the most recent."""
        with self._lock:
            event = self._events.get(stored)
            if event is not None:
                self._events.move_to_end(stored)
                return event
        event = stored.decode()
        self.keep(stored, event)
        return event

    def peek(self, stored: Stored) -> Event:
        """The decoded event, leaving the cache as it is (for scans over many events, which would flush it)."""
        with self._lock:
            event = self._events.get(stored)
        return event if event is not None else stored.decode()

    def keep(self, stored: Stored, event: Event) -> None:
        with self._lock:
            self._events[stored] = event
            self._events.move_to_end(stored)
            if len(self._events) > self._size:
                self._events.popitem(last=False)


@dataclass(frozen=True, slots=True)
class Change:
    seq: int
    event_id: str
    kind: str  # "created" | "updated" | "removed"
    stored: Stored | None
    decoded: Decoded = field(repr=False, compare=False)

    @property
    def event(self) -> Event | None:
        """The event as it was after the change (decoded on each read unless still cached)."""
        return None if self.stored is None else self.decoded.get(self.stored)


class EventView:
    """Event id → latest event; readers never block writers (single event loop).

    Iterating (`__iter__`, `matching`, `current`) decodes lazily from a snapshot taken when the
    iterator is made, so a long scan can run in a worker thread while the view moves on.
    """

    def __init__(self, history: int = 10_000, cache: int = 2048) -> None:
        # changes are numbered per process; the epoch tells a resuming client whether its number is ours
        self.epoch = secrets.token_hex(4)
        self._events: dict[str, Stored] = {}
        self._changes: deque[Change] = deque(maxlen=history)
        self._decoded = Decoded(cache)
        self._seq = 0
        self._changed = asyncio.Condition()

    def __len__(self) -> int:
        return len(self._events)

    def __iter__(self) -> Iterator[Event]:
        return self._decode_all(list(self._events.values()))

    def records(self) -> list[Stored]:
        """Every current record (no decoding): for filters on the fields `Stored` carries."""
        return list(self._events.values())

    def matching(self, keep: Callable[[Stored], bool]) -> Iterator[Event]:
        """The events whose record passes `keep`; only those are decoded."""
        return self._decode_all([stored for stored in self._events.values() if keep(stored)])

    def current(self, now: datetime) -> Iterator[Event]:
        """The events for which `Event.is_current(now)` holds (active or upcoming)."""
        moment = micros(now)
        return self.matching(lambda stored: stored.is_current(moment))

    def _decode_all(self, records: list[Stored]) -> Iterator[Event]:
        peek = self._decoded.peek
        return (peek(stored) for stored in records)

    def get(self, event_id: str) -> Event | None:
        stored = self._events.get(event_id)
        return None if stored is None else self._decoded.get(stored)

    def stored(self, event_id: str) -> Stored | None:
        return self._events.get(event_id)

    def decode(self, stored: Stored) -> Event:
        """The event of `stored` (a record of this view), through the cache."""
        return self._decoded.get(stored)

    @property
    def seq(self) -> int:
        return self._seq

    def changes_since(self, seq: int) -> list[Change] | None:
        """Changes after `seq`, or None when they are older than the kept history."""
        if self._changes and seq < self._changes[0].seq - 1:
            return None
        return [change for change in self._changes if change.seq > seq]

    async def wait_for_change(self, seq: int) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self._seq > seq)

    def put(self, event_id: str, event: Event | None) -> None:
        """Record `event` (None: removed); it is encoded as the normaliser writes it."""
        if event is None:
            self._put(event_id, None)
            return
        stored = Stored.of(event_id, event, encode(event))
        self._decoded.keep(stored, event)  # read back as the very object that was put while cached
        self._put(event_id, stored)

    def _put(self, event_id: str, stored: Stored | None) -> None:
        previous = self._events.get(event_id)
        if stored is None:
            if previous is None:
                return
            del self._events[event_id]
            kind = "removed"
        else:
            self._events[event_id] = stored
            kind = "created" if previous is None else "updated"
        self._seq += 1
        self._changes.append(Change(self._seq, event_id, kind, stored, self._decoded))

    async def apply(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        for record in records:
            if record.key is None:
                continue
            event_id = sys.intern(record.key.decode())  # one string per id, however many holders
            self._put(event_id, self._read(event_id, record.value))
        async with self._changed:
            self._changed.notify_all()

    def _read(self, event_id: str, value: bytes | None) -> Stored | None:
        """The record of a topic value, validated; None for a tombstone or an undecodable event."""
        if value is None:
            return None
        try:
            event = Event.model_validate_json(value)
        except ValidationError as exc:
            log.error("events topic: undecodable event %s: %s", event_id, exc)
            return None
        stored = Stored.of(event_id, event, value)
        self._decoded.keep(stored, event)  # readers of the change (feeds, SSE, normaliser) come soon
        return stored


class LiveView:
    """The view plus the reader that fills it, as one async context manager."""

    def __init__(self, bootstrap_servers: str, topic: str, client_id: str, gate: asyncio.Event | None = None) -> None:
        self.events = EventView()
        self._reader = TopicReader(bootstrap_servers, topic, self.events.apply, client_id, gate)

    @property
    def ready(self) -> bool:
        return self._reader.caught_up.is_set()

    async def wait_ready(self) -> None:
        await self._reader.caught_up.wait()

    def position(self, partition: int) -> int:
        """The next offset of the topic's `partition` to read: every record before it is in the view."""
        return self._reader.position(partition)

    async def __aenter__(self) -> LiveView:
        await self._reader.__aenter__()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._reader.__aexit__(exc_type, exc, tb)
