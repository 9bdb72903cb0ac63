"""A hub over N active events: seeded straight into `{prefix}.events`, started, settled, measured.

Issue 7 asks for the feed process's resident memory at 100,000 active events (goal < 1 GiB); the
10,000-event hub of the feed benchmark is measured the same way.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from geo.network import RoadNetwork
from loadtests.broker import fresh_topics, produce
from loadtests.eventgen import events_json, sample_event, streets
from loadtests.feedwatch import feed_paths, mark
from loadtests.hubproc import Hub, running_hub, wait_for

GOAL_MIB = 1024.0
READY_TIMEOUT_S = 900.0
"""Process start → every feed rendered, at most: the first render of 100,000 events is ~100 s of CPU,
several minutes on a 2-core machine shared with other work (300 s was not always enough)."""


@dataclass(frozen=True, slots=True)
class HubMemory:
    events: int
    seed_s: float  # writing the events to the topic
    ready_s: float  # process start → /readyz 200
    settled_s: float  # /readyz, then one more event → in every feed (the whole view rendered)
    rss_mib: float
    peak_mib: float
    restart_ready_s: float = 0.0  # after kill -9: process start → /readyz 200
    restart_settled_s: float = 0.0  # then one more event → in every feed (the feeds taken back from the snapshot)


@contextmanager
def seeded_hub(
    count: int, workdir: Path, ready_timeout_s: float = READY_TIMEOUT_S, restart: bool = False
) -> Iterator[tuple[Hub, HubMemory]]:
    """A hub whose view holds `count` current events of Lille (+1 mark), feeds rendered, with its memory.

    With `restart`, the hub saves its feeds (`TRAFFIC_HUB_FEEDS__SNAPSHOT_DIR`), is killed with SIGKILL
    once the snapshot is on disk, and a new process on the same topics is measured the same way."""
    network = RoadNetwork.default()
    now = datetime.now(UTC)
    sample_event(network, now)  # the generated shape is still a valid Event
    snapshots = workdir / f"feeds-{count}"
    env = {"TRAFFIC_HUB_FEEDS__SNAPSHOT_DIR": str(snapshots)} if restart else None
    with fresh_topics(f"view{count}") as topics:
        started = time.monotonic()
        asyncio.run(produce(topics.events, events_json(count, network, now)))
        seed_s = time.monotonic() - started
        with running_hub(topics.prefix, workdir, ready_timeout_s, env) as hub:
            (settled_s,) = mark(hub, topics.events, feed_paths(), streets(network), 1, ready_timeout_s)
            memory = HubMemory(count, seed_s, hub.started_in_s, settled_s, hub.rss_mib(), hub.rss_mib("VmHWM"))
            if not restart:
                yield hub, memory
                return
            wait_for((snapshots / "feeds.snapshot").exists, ready_timeout_s)
            hub.process.kill()  # the worst case: no snapshot saved at stop, only the one after the first render
            hub.process.wait(30)
        with running_hub(topics.prefix, workdir, ready_timeout_s, env, port=hub.port) as again:
            (settled_s,) = mark(again, topics.events, feed_paths(), streets(network), 1, ready_timeout_s)
            yield again, replace(memory, restart_ready_s=again.started_in_s, restart_settled_s=settled_s)
