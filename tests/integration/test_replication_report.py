"""The replication report of `/readyz` against the real broker: it keeps reading until the topics answer.

On a cluster a topic just created is not yet in every broker's metadata, so the first read of its
replication can find no partitions. A single read then left `/readyz` saying "unknown" for the life of the
process (fresh-clone CI, 8 December). Here the topics do not exist at all when the report starts, which is
the same answer from the broker (no partitions), made certain on one broker.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from tests.hostile.kafkalog import wait_for
from tests.kafkarun import run_name
from traffic_hub.kafka.admin import Replication, check_replication, ensure_topics
from traffic_hub.settings import bootstrap_servers
from traffic_hub.topics import Topics

pytestmark = pytest.mark.kafka

DEADLINE_S = 30.0


async def test_the_report_retries_until_the_topics_answer(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="traffic_hub.kafka.admin")
    bootstrap = bootstrap_servers()
    topics = Topics(run_name("replication-report"))
    into = Replication(conscious=True)
    report = asyncio.create_task(check_replication(bootstrap, topics, into, retry_max_s=0.5))
    try:
        await wait_for(lambda: "could not read the replication" in caplog.text, DEADLINE_S)
        assert into.detail == "unknown"
        assert not report.done(), "the report gave up after one failed read"
        await ensure_topics(bootstrap, topics, partitions=1, replication=1, min_insync=1)
        async with asyncio.timeout(DEADLINE_S):
            await report
    finally:
        report.cancel()
    assert (into.factor, into.min_insync) == (1, 1)
    assert into.detail == "replication factor 1, min.insync.replicas 1 (single broker by choice)"
