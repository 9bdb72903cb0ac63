"""Bounded waits on Kafka for the cluster bench: consumer groups formed, bench items counted on a topic.

Why a module: a bench that waits on Kafka without a deadline hangs silently. On the merged hub
`python -m loadtests --only cluster` once ran past 10 minutes printing nothing, because its "have the
normalisers joined?" poll could never succeed (below) and swallowed the error. Every wait here has a
deadline; when it passes it raises `Stuck`, naming what it waited for and the last state it saw, and
while it waits it says so on stderr every few seconds (`say`).

aiokafka 0.14 and DescribeGroups: against Kafka 4.x its admin client sends DescribeGroups v3 but decodes
the answer with v2's schema (`DescribeGroupsRequest_v3.RESPONSE_TYPE = DescribeGroupsResponse_v2`,
without each group's `authorized_operations`). With one group per answer the unread field is simply
left at the end; with two groups the second is decoded from the wrong bytes ("Buffer underrun decoding
string"), the connection is closed and the call fails. The normaliser has two groups since it became
two stages (placement `{prefix}.normaliser`, decision `{prefix}.normaliser.decision`), both coordinated
by the same broker when there is one, so `describe_groups` asks for one group per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

PROGRESS_EVERY_S = 15.0


class Stuck(RuntimeError):
    """A bench wait passed its deadline; the message says what it waited for and what it last saw."""


def say(message: str) -> None:
    """A progress line on stderr: UTC time and 1-minute load average first (the machine is shared)."""
    now = datetime.now(UTC).strftime("%H:%M:%S")
    print(f"[cluster {now} UTC, load {os.getloadavg()[0]:.1f}] {message}", file=sys.stderr, flush=True)


async def waited(
    what: str,
    poll: Callable[[], Awaitable[tuple[bool, str]]],
    timeout_s: float,
    every_s: float = 0.5,
    progress_s: float = PROGRESS_EVERY_S,
) -> float:
    """Poll until `poll` says done; seconds it took. `Stuck` after `timeout_s`, with `poll`'s last state."""
    started = said = time.monotonic()
    while True:
        done, state = await poll()
        elapsed = time.monotonic() - started
        if done:
            return elapsed
        if elapsed > timeout_s:
            raise Stuck(f"{what}: not after {timeout_s:.0f} s; last seen: {state}")
        if time.monotonic() - said >= progress_s:
            said = time.monotonic()
            say(f"still waiting for {what} ({elapsed:.0f} s): {state}")
        await asyncio.sleep(every_s)


@dataclass(frozen=True, slots=True)
class GroupState:
    name: str
    state: str  # "Stable", "PreparingRebalance", "CompletingRebalance", "Empty", "Dead" (never formed)
    members: int

    def __str__(self) -> str:
        return f"{self.name} {self.state} with {self.members} member(s)"


@contextlib.asynccontextmanager
async def admin_client(bootstrap: str, client_id: str, timeout_s: float = 60.0) -> AsyncIterator[AIOKafkaAdminClient]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id=client_id, request_timeout_ms=10_000)
    try:
        async with asyncio.timeout(timeout_s):
            await admin.start()
    except TimeoutError as exc:
        raise Stuck(f"the Kafka admin client could not reach {bootstrap} within {timeout_s:.0f} s") from exc
    try:
        yield admin
    finally:
        with contextlib.suppress(KafkaError, OSError, TimeoutError):
            async with asyncio.timeout(5):
                await admin.close()


async def describe_groups(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, GroupState]:
    """State and member count of each group, one request per group (see the module's docstring)."""
    out: dict[str, GroupState] = {}
    for name in names:
        async with asyncio.timeout(20):
            (response,) = await admin.describe_consumer_groups([name])
        for group in response.groups:
            error_code, group_id, state, members = group[0], group[1], group[2], group[5]
            out[name] = GroupState(group_id, state if error_code == 0 else f"error {error_code}", len(members))
    return out


async def groups_formed(
    bootstrap: str, names: list[str], members: int, timeout_s: float, alive: Callable[[], None] = lambda: None
) -> float:
    """Wait until every group of `names` is Stable with `members` members; seconds it took.

    `alive` is called on every poll and raises if a member process died (then waiting is pointless)."""
    async with admin_client(bootstrap, "bench-groups") as admin:

        async def poll() -> tuple[bool, str]:
            await asyncio.to_thread(alive)
            try:
                states = await describe_groups(admin, names)
            except (KafkaError, OSError, TimeoutError) as exc:  # a coordinator moving: ask again
                return False, f"DescribeGroups failed: {exc!r}"
            done = all(s.state == "Stable" and s.members == members for s in states.values()) and len(states) == len(
                names
            )
            return done, "; ".join(str(s) for s in states.values()) or "no group yet"

        return await waited(f"groups {', '.join(names)} stable with {members} member(s) each", poll, timeout_s)


class ItemCounter:
    """Distinct item ids (`pattern`'s group 1) in a topic's records from its beginning, by a consumer of its own.

    Why ids rather than records: an event is rewritten as its sources change, and a report decided again
    is rewritten too; counting ids counts each item once whatever the number of versions."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        partitions: int,
        pattern: re.Pattern[bytes],
        keep: re.Pattern[bytes] | None = None,
    ) -> None:
        self.topic = topic
        self._keep = keep
        self._partitions = [TopicPartition(topic, p) for p in range(partitions)]
        self._pattern = pattern
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, client_id=f"bench-count-{topic}"[:200],
            fetch_max_wait_ms=100,
        )  # fmt: skip
        self.seen: set[bytes] = set()
        self.kept: list[tuple[bytes, bytes]] = []  # (key, value) of the records matching `keep`

    async def __aenter__(self) -> ItemCounter:
        try:
            async with asyncio.timeout(60):
                await self._consumer.start()
                self._consumer.assign(self._partitions)
                await self._consumer.seek_to_beginning(*self._partitions)
        except TimeoutError as exc:
            raise Stuck(f"a consumer of {self.topic} did not start within 60 s") from exc
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        with contextlib.suppress(KafkaError, OSError, TimeoutError):
            async with asyncio.timeout(10):
                await self._consumer.stop()

    async def read(self, timeout_ms: int = 200) -> int:
        """Read what is there (waiting up to `timeout_ms`); how many ids have been seen so far."""
        batches = await self._consumer.getmany(*self._partitions, timeout_ms=timeout_ms, max_records=2000)
        for records in batches.values():
            for record in records:
                value = record.value or b""
                self.seen.update(self._pattern.findall(value))
                if self._keep is not None and self._keep.search(value):
                    self.kept.append((record.key or b"", value))
        return len(self.seen)

    async def until(self, wanted: int, timeout_s: float, what: str) -> float:
        """Read until `wanted` ids were seen; the `time.monotonic()` at which the last one was read."""
        started = said = time.monotonic()
        while await self.read() < wanted:
            if time.monotonic() - started > timeout_s:
                raise Stuck(f"{what}: {len(self.seen)} of {wanted} items in {self.topic} after {timeout_s:.0f} s")
            if time.monotonic() - said >= PROGRESS_EVERY_S:
                said = time.monotonic()
                say(f"{what}: {len(self.seen)} of {wanted} in {self.topic} ({time.monotonic() - started:.0f} s)")
        return time.monotonic()
