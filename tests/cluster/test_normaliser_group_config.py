"""The normalisers' group settings that make a take-over fast on a cluster, checked without a broker.

Why: a killed normaliser's partitions must move to a live one one short session after the kill, only its
own partitions must move (a survivor that keeps its partitions keeps placing them), and the decision
partition must stay with its new owner when the killed process comes back. These are consumer settings;
the cluster tests (`test_normaliser_standby.py`, the chaos run) measure what they give.
"""

from __future__ import annotations

from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from aiokafka.coordinator.assignors.sticky.sticky_assignor import StickyPartitionAssignor

from traffic_hub.normaliser.group import (
    CURRENT_MARGIN_MS,
    FAST_HEARTBEAT_INTERVAL_MS,
    FAST_SESSION_TIMEOUT_MS,
    GroupStage,
)


async def test_a_stage_joins_with_the_sticky_assignor_first_and_round_robin_for_older_members() -> None:
    stage = GroupStage("normaliser test", "127.0.0.1:9", "topic", "group", "client")
    other = GroupStage("normaliser test", "127.0.0.1:9", "topic2", "group2", "client")
    consumer = stage._consumer()  # never started: no broker needed
    try:
        sticky, fallback = consumer._partition_assignment_strategy
        assert issubclass(sticky, StickyPartitionAssignor)
        assert sticky.name == "sticky"  # the protocol every member offers
        assert fallback is RoundRobinPartitionAssignor
        # the assignor's memory of "my previous assignment" is class state: one class per stage, not shared
        assert sticky is not StickyPartitionAssignor
        assert sticky is not other._sticky
        assert consumer._session_timeout_ms == FAST_SESSION_TIMEOUT_MS
        assert consumer._heartbeat_interval_ms == FAST_HEARTBEAT_INTERVAL_MS
    finally:
        await consumer.stop()


def test_many_heartbeats_fit_in_a_session_and_a_stalled_member_holds_back_before_it_can_be_dropped() -> None:
    assert FAST_SESSION_TIMEOUT_MS // FAST_HEARTBEAT_INTERVAL_MS >= 10  # a short stall misses a few, not all
    assert CURRENT_MARGIN_MS >= 2 * FAST_HEARTBEAT_INTERVAL_MS
    assert FAST_SESSION_TIMEOUT_MS - CURRENT_MARGIN_MS >= 1000
