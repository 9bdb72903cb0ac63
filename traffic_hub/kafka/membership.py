"""Static consumer-group membership (KIP-345), shared by every role that is a group member.

A member whose `group_instance_id` is its stable instance name (`TRAFFIC_HUB_INSTANCE`) takes its
partitions back at once when it is killed and restarted, instead of waiting until the dead member's
session expires. That opens two corners, both closed here:

- a static member does not leave its group when it stops (aiokafka skips LeaveGroup), so a clean stop
  not followed by a restart would leave its partitions idle for a whole session: `leave_and_stop`
  sends the LeaveGroup all the same;
- two live processes sharing an instance name fence each other every heartbeat for ever: `Fencing`
  notices it, and the caller carries on as a dynamic member.

A member with a short session (the normaliser's 1.5 s) is dropped by the broker after a stall of that
length, and another member takes its partitions while it may still be about to write: `Heartbeats`
tells a member when the group last acknowledged it, so it can hold a write back when that is too long
ago.

Whether the broker allows such a session is its `group.min.session.timeout.ms` (6 s by default): a member
asking for less is refused at its join. `min_session_timeout_ms` reads it beforehand (DescribeConfigs on
every broker: any of them may become the group's coordinator), so a member can choose its session before
joining instead of learning it from a failed join (an aiokafka ERROR line, then a fallback).

Used by both stages of the normaliser (`traffic_hub/normaliser/group.py`) and by the connector
runners' leases (`traffic_hub/kafka/leases.py`).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError

from traffic_hub.kafka.starting import started_admin, stop_quietly

# Our member id replaced this many times within the window = another live process joins with our
# instance name and the broker fences us each time we rejoin (and we fence it back): see `Fencing`.
FENCED_TIMES = 3
FENCED_WINDOW_S = 60.0
MIN_SESSION = "group.min.session.timeout.ms"
READ_TIMEOUT_S = 5.0  # reading the broker's settings never holds a member's start longer


class SharedInstanceName(Exception):
    """Another live process uses this instance's group_instance_id."""


class Fencing:
    """Notices a group_instance_id shared by two live processes.

    A static member whose id is taken over by a newcomer is fenced: its next heartbeat is refused
    (unknown member), it rejoins under the same instance id and fences the other in turn, about once
    a heartbeat, for ever. A rebalance keeps the member id; only a rejoin from scratch (fenced, or our
    own session expired) gives a new one. Several new ids within a minute mean a shared name. aiokafka
    keeps the member id on its private coordinator: if that ever moves, `member_id` reads None and the
    check is simply off.
    """

    def __init__(self) -> None:
        self._member: str | None = None
        self._changes: deque[float] = deque(maxlen=FENCED_TIMES)

    def check(self, consumer: AIOKafkaConsumer) -> None:
        member = member_id(consumer)
        if not member or member == self._member:
            return
        if self._member is not None:
            self._changes.append(time.monotonic())
        self._member = member
        if len(self._changes) == FENCED_TIMES and self._changes[-1] - self._changes[0] < FENCED_WINDOW_S:
            raise SharedInstanceName(member)


class Heartbeats:
    """When the group coordinator last acknowledged this member: a heartbeat answered, or a join.

    `acknowledged_at` is the time.monotonic() at which the last acknowledged heartbeat was *sent*: the
    broker keeps the member at least one session timeout after that. aiokafka keeps its heartbeats on
    its private coordinator; `watch` wraps the method that sends them. If that ever moves, the watch is
    off and `acknowledged_at` stays +inf (every check passes, as before this class existed).
    """

    def __init__(self) -> None:
        self.acknowledged_at = float("-inf")

    def joined(self) -> None:
        """The group has just (re)assigned us: the member is current now."""
        self.acknowledged_at = max(self.acknowledged_at, time.monotonic())

    def age(self) -> float:
        """Seconds since the last acknowledged heartbeat was sent."""
        return time.monotonic() - self.acknowledged_at

    def watch(self, consumer: AIOKafkaConsumer) -> None:
        coordinator = getattr(consumer, "_coordinator", None)
        send: Callable[[], Awaitable[bool]] | None = getattr(coordinator, "_do_heartbeat", None)
        if coordinator is None or send is None:
            self.acknowledged_at = float("inf")
            return

        async def counted() -> bool:
            sent = time.monotonic()
            ok = await send()
            if ok:  # answered without error, or "rebalancing" (the member is still in the group then)
                self.acknowledged_at = max(self.acknowledged_at, sent)
            return ok

        coordinator._do_heartbeat = counted


def member_id(consumer: AIOKafkaConsumer) -> str | None:
    """The group member id aiokafka holds on its (private) coordinator; None when not known."""
    member = getattr(getattr(consumer, "_coordinator", None), "member_id", None)
    return member if isinstance(member, str) else None


async def leave_and_stop(consumer: AIOKafkaConsumer) -> None:
    """Stop the consumer, leaving the group even as a static member.

    aiokafka sends LeaveGroup on stop only for dynamic members; forgetting the instance id on its
    coordinator just before stopping makes it send one (LeaveGroup by member id, which Kafka 4.4
    honours for a static member: the partitions move in under a second instead of a session).
    """
    coordinator = getattr(consumer, "_coordinator", None)
    if coordinator is not None and hasattr(coordinator, "_group_instance_id"):
        coordinator._group_instance_id = None
    await stop_quietly(consumer.stop(), 5)


async def min_session_timeout_ms(bootstrap_servers: str, client_id: str) -> int | None:
    """The highest `group.min.session.timeout.ms` of the cluster's brokers: the shortest session every
    possible coordinator accepts. None when it cannot be read (no broker answers within `READ_TIMEOUT_S`,
    the principal may not describe the brokers' configuration, …): the caller then tries its session."""
    try:
        async with (
            asyncio.timeout(READ_TIMEOUT_S),
            started_admin(bootstrap_servers, READ_TIMEOUT_S, client_id) as admin,
        ):
            brokers = (await admin.describe_cluster())["brokers"]
            asked = [ConfigResource(ConfigResourceType.BROKER, str(b["node_id"]), {MIN_SESSION: None}) for b in brokers]
            responses = await admin.describe_configs(asked)
    except (KafkaError, OSError, TimeoutError):
        return None
    found = [
        int(entry["config_value"])
        for response in responses
        for resource in response.to_object()["resources"]
        if resource["error_code"] == 0
        for entry in resource["config_entries"]
        if entry["config_names"] == MIN_SESSION and str(entry["config_value"]).isdigit()
    ]
    return max(found) if len(found) == len(brokers) and found else None
