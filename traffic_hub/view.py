"""The materialised view of canonical events, rebuilt from the compacted events topic.

Every API replica holds the same view because it reads the same topic from the beginning; a
restarted process has it back once `ready` is set. Changes are numbered so that feeds re-render
and SSE clients resume from a sequence number.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType

from aiokafka import ConsumerRecord
from pydantic import ValidationError

from traffic_hub.kafka.reader import TopicReader
from traffic_hub.model import Event

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Change:
    seq: int
    event_id: str
    kind: str  # "created" | "updated" | "removed"
    event: Event | None


class EventView:
    """Event id → latest Event; readers never block writers (single event loop)."""

    def __init__(self, history: int = 10_000) -> None:
        # changes are numbered per process; the epoch tells a resuming client whether its number is ours
        self.epoch = secrets.token_hex(4)
        self._events: dict[str, Event] = {}
        self._changes: deque[Change] = deque(maxlen=history)
        self._seq = 0
        self._changed = asyncio.Condition()

    def __len__(self) -> int:
        return len(self._events)

    def __iter__(self) -> Iterator[Event]:
        return iter(list(self._events.values()))

    def get(self, event_id: str) -> Event | None:
        return self._events.get(event_id)

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
        previous = self._events.get(event_id)
        if event is None:
            if previous is None:
                return
            del self._events[event_id]
            kind = "removed"
        else:
            self._events[event_id] = event
            kind = "created" if previous is None else "updated"
        self._seq += 1
        self._changes.append(Change(self._seq, event_id, kind, event))

    async def apply(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        for record in records:
            if record.key is None:
                continue
            event_id = record.key.decode()
            self.put(event_id, _decode(event_id, record.value))
        async with self._changed:
            self._changed.notify_all()


def _decode(event_id: str, value: bytes | None) -> Event | None:
    if value is None:
        return None
    try:
        return Event.model_validate_json(value)
    except ValidationError as exc:
        log.error("events topic: undecodable event %s: %s", event_id, exc)
        return None


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

    async def __aenter__(self) -> LiveView:
        await self._reader.__aenter__()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._reader.__aexit__(exc_type, exc, tb)
