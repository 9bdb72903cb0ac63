"""The write rows on the production layout: the API and the normaliser as two processes (compose.yaml).

Why: `traffic-hub run` (`make run`, and the bench's seeded hub) runs the API, the normaliser and the
feeds in one process, on one GIL: under 64 writers, placing and deciding closures (normaliser) and
serving POSTs and rendering feeds (API) take turns on it. compose.yaml runs them as separate services;
a second process brings a second GIL, so on 2 cores the normaliser's work runs beside the API's
instead of between its requests. This measures that layout with the same load, on a hub seeded with
the same events; `loadtests.__main__` reports it beside the all-in-one figures, which stay the
reference for `make run`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from geo.network import RoadNetwork
from loadtests.broker import bootstrap, fresh_topics, produce
from loadtests.eventgen import events_json, streets
from loadtests.feedwatch import feed_paths, mark
from loadtests.hubproc import Hub, free_port, principals_toml, wait_for
from loadtests.roles import Deployment, RoleProcess


@contextmanager
def split_hub(count: int, workdir: Path, ready_timeout_s: float = 300.0) -> Iterator[tuple[Hub, list[RoleProcess]]]:
    """An API process and a normaliser process over `count` seeded events, feeds rendered (+1 mark).

    Yields the API as a `Hub` (what the write bench polls and posts to) and both processes (their CPU)."""
    network = RoadNetwork.default()
    now = datetime.now(UTC)
    with fresh_topics(f"split{count}") as topics:
        asyncio.run(produce(topics.events, events_json(count, network, now)))
        auth = workdir / "principals-split.toml"
        auth.write_text(principals_toml(), encoding="utf-8")
        port = free_port()
        deployment = Deployment(bootstrap(), topics.prefix, auth, workdir, f"http://127.0.0.1:{port}", replication=1)
        api = RoleProcess(deployment, "api", "api-1", port=port)
        normaliser = RoleProcess(deployment, "normaliser", "normaliser-1")
        processes = [api, normaliser]
        try:
            for process in processes:
                process.start()
            started = time.monotonic()
            for process in processes:
                wait_for(process.ready, ready_timeout_s)
            assert api.process is not None
            hub = Hub(api.process, topics.prefix, api.port, api.log, time.monotonic() - started)
            mark(hub, topics.events, feed_paths(), streets(network), 1, ready_timeout_s)
            yield hub, processes
        finally:
            for process in processes:
                process.stop()
