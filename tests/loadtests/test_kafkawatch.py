"""The cluster bench's plumbing (loadtests/kafkawatch.py) against the real single broker, in a few seconds.

Why: the bench once hung past 10 minutes on the merged hub because its "have the normalisers joined?"
poll failed on every call (aiokafka 0.14 misreads a DescribeGroups answer holding two groups, and the
normaliser has two groups since it became two stages) and the error was swallowed. These tests keep the
pieces the bench waits with honest: two groups of one coordinator are described, items are counted once
however many versions carry them, and a wait that cannot succeed fails, naming what it waited for.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaConsumer

from loadtests.kafkawatch import ItemCounter, Stuck, admin_client, describe_groups, groups_formed, waited
from tests.kafkarun import run_name, started_publisher
from traffic_hub.kafka import Record

pytestmark = pytest.mark.kafka

ITEM = re.compile(rb'"source_id":"(it-[0-9]+)"')


@pytest.fixture
async def two_groups(kafka_bootstrap: str) -> AsyncIterator[tuple[str, list[str]]]:
    """One consumer in each of two groups `<prefix>.a` and `<prefix>.a.b` (like placement and decision)."""
    prefix = run_name("watch")
    async with started_publisher(kafka_bootstrap, prefix) as (_, topics):
        groups = [f"{prefix}.a", f"{prefix}.a.b"]
        consumers = [
            AIOKafkaConsumer(topics.reports, bootstrap_servers=kafka_bootstrap, group_id=group, client_id=group)
            for group in groups
        ]
        async with asyncio.timeout(30):
            for consumer in consumers:
                await consumer.start()
        polls = [asyncio.create_task(_poll_forever(c)) for c in consumers]  # members stay in their group
        try:
            yield kafka_bootstrap, groups
        finally:
            for poll in polls:
                poll.cancel()
            async with asyncio.timeout(30):
                for consumer in consumers:
                    await consumer.stop()


async def _poll_forever(consumer: AIOKafkaConsumer) -> None:
    while True:
        await consumer.getmany(timeout_ms=200)


async def test_two_groups_of_one_coordinator_are_described(two_groups: tuple[str, list[str]]) -> None:
    bootstrap, groups = two_groups
    await groups_formed(bootstrap, groups, members=1, timeout_s=20)
    async with admin_client(bootstrap, "test-watch") as admin:
        states = await describe_groups(admin, [*groups, f"{groups[0]}.never"])
    assert [(s.state, s.members) for s in states.values()] == [("Stable", 1), ("Stable", 1), ("Dead", 0)]


async def test_a_group_that_never_forms_fails_loudly(two_groups: tuple[str, list[str]]) -> None:
    bootstrap, groups = two_groups
    with pytest.raises(Stuck, match=r"stable with 2 member\(s\) each: not after 1 s; last seen: .*with 1 member"):
        await groups_formed(bootstrap, groups, members=2, timeout_s=1)


async def test_a_dead_member_process_stops_the_wait_at_once(two_groups: tuple[str, list[str]]) -> None:
    bootstrap, groups = two_groups

    def dead() -> None:
        raise RuntimeError("norm1-1 is not running (exit 1)")

    with pytest.raises(RuntimeError, match="norm1-1 is not running"):
        await groups_formed(bootstrap, groups, members=1, timeout_s=60, alive=dead)


async def test_items_are_counted_once_whatever_their_versions(kafka_bootstrap: str) -> None:
    async with started_publisher(kafka_bootstrap, run_name("count")) as (publisher, topics):
        versions = [  # three items, one of them in two versions, one record that is not an item
            b'{"sources":[{"source_id":"it-1"}]}',
            b'{"sources":[{"source_id":"it-1"},{"source_id":"it-2"}]}',
            b'{"sources":[{"source_id":"it-3"}]}',
            b'{"other":true}',
        ]
        await publisher.send_many([Record(topics.events, str(i).encode(), v) for i, v in enumerate(versions)])
        keep = re.compile(rb"it-3")
        async with ItemCounter(kafka_bootstrap, topics.events, 1, ITEM, keep=keep) as counter:
            await counter.until(3, 20, "test items")
            assert counter.seen == {b"it-1", b"it-2", b"it-3"}
            assert counter.kept == [(b"2", versions[2])]
            with pytest.raises(Stuck, match=r"test items: 3 of 4 items in .*\.events after 1 s"):
                await counter.until(4, 1, "test items")


async def test_a_wait_that_cannot_succeed_names_what_it_waited_for() -> None:
    async def poll() -> tuple[bool, str]:
        return False, "0 of 3 normalisers"

    with pytest.raises(Stuck, match=r"^the normalisers: not after 0 s; last seen: 0 of 3 normalisers$"):
        await waited("the normalisers", poll, timeout_s=0.1, every_s=0.02)
