"""Create the hub's topics when they are missing (idempotent, safe to run from every role), and say how
durable they really are.

"A 201 means durable" holds only as far as the topics are replicated: with replication factor 1 a lost
broker loses acknowledged writes. Topics are created with the configured replication factor and
`min.insync.replicas` (3 and 2 on a cluster: an acks=all write is on two machines before it is
acknowledged). Topics that already exist keep the factor they were created with, so the hub also reads
back what the broker has and warns, loudly, when it is below 3 without a conscious choice of a single broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from traffic_hub.kafka.starting import started_admin
from traffic_hub.topics import Topics

log = logging.getLogger(__name__)


SAFE_REPLICATION = 3  # below this, losing one broker can lose acknowledged writes or stop them
SAFE_MIN_INSYNC = 2
MIN_ISR = "min.insync.replicas"
ADMIN_REQUEST_TIMEOUT_S = 5.0  # each admin request; a failed start closes the client (kafka/starting.py)
REPLICATION_RETRY_MAX_S = 30.0  # the longest wait between two reads of the replication that failed


def topic_specs(topics: Topics, partitions: int, replication: int, min_insync: int = 1) -> list[NewTopic]:
    isr = {MIN_ISR: str(min_insync)}
    compact = {"cleanup.policy": "compact", "min.compaction.lag.ms": "60000"} | isr
    keep = {"cleanup.policy": "delete", "retention.ms": str(30 * 24 * 3600 * 1000)} | isr
    # placed reports are needed until decided (seconds); a week covers a decision stage stuck over a weekend,
    # and the reports topic (30 days) can always be placed again
    placed = {"cleanup.policy": "delete", "retention.ms": str(7 * 24 * 3600 * 1000)} | isr
    return [
        NewTopic(topics.reports, num_partitions=partitions, replication_factor=replication, topic_configs=keep),
        # one partition whatever `partitions` says: its one consumer makes every merge decision of the hub
        NewTopic(topics.placed, num_partitions=1, replication_factor=replication, topic_configs=placed),
        NewTopic(topics.events, num_partitions=partitions, replication_factor=replication, topic_configs=compact),
        NewTopic(topics.deadletter, num_partitions=1, replication_factor=replication, topic_configs=keep),
    ]


async def ensure_topics(
    bootstrap_servers: str, topics: Topics, partitions: int, replication: int, min_insync: int = 1
) -> None:
    """Create missing topics; retries until the broker answers (callers bound it with a timeout)."""
    delay = 0.2
    while True:
        try:
            await _create(bootstrap_servers, topic_specs(topics, partitions, replication, min_insync))
            return
        except (KafkaError, OSError) as exc:
            log.warning("topic set-up failed (%s), retrying in %.1fs", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


async def _create(bootstrap_servers: str, specs: list[NewTopic]) -> None:
    async with started_admin(bootstrap_servers, ADMIN_REQUEST_TIMEOUT_S) as admin:
        existing = set(await admin.list_topics())
        missing = [spec for spec in specs if spec.name not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(missing)
        await _wait_for_metadata(admin, [spec.name for spec in specs])


async def _wait_for_metadata(admin: AIOKafkaAdminClient, names: list[str]) -> None:
    for _ in range(50):
        missing = set(names) - set(await admin.list_topics())
        if not missing:
            return
        await asyncio.sleep(0.1)
    raise KafkaError(f"topics not created: {sorted(missing)}")


@dataclass
class Replication:
    """How durable the hub's topics are, as the broker reports them; `/readyz` shows `detail`.

    `conscious`: a single broker was chosen (demo mode or `TRAFFIC_HUB_KAFKA__SINGLE_BROKER_OK`), so low
    replication is reported but not warned about.
    """

    conscious: bool = False
    factor: int | None = None  # the smallest replication factor among the hub's topics; None: not read yet
    min_insync: int | None = None  # the smallest min.insync.replicas among them

    @property
    def safe(self) -> bool:
        return (self.factor or 0) >= SAFE_REPLICATION and (self.min_insync or 0) >= SAFE_MIN_INSYNC

    @property
    def detail(self) -> str:
        if self.factor is None:
            return "unknown"
        found = f"replication factor {self.factor}, min.insync.replicas {self.min_insync}"
        if self.safe:
            return found
        if self.conscious:
            return f"{found} (single broker by choice)"
        return f"{found}: below {SAFE_REPLICATION}/{SAFE_MIN_INSYNC}, a broker loss can lose acknowledged writes"

    def report(self, topics: list[str]) -> None:
        """Log what was found: a WARNING naming the settings when unsafe and not chosen."""
        if self.safe or self.factor is None or self.conscious:
            log.info("kafka topics: %s", self.detail)
        else:
            log.warning(
                "DURABILITY: the hub's topics %s have %s. Acknowledged writes live on fewer than %d brokers. "
                "On a cluster set TRAFFIC_HUB_KAFKA__REPLICATION_FACTOR=%d and "
                "TRAFFIC_HUB_KAFKA__MIN_INSYNC_REPLICAS=%d "
                "(topics that exist keep their factor until reassigned with kafka-reassign-partitions); "
                "to run on one broker on purpose, set TRAFFIC_HUB_KAFKA__SINGLE_BROKER_OK=true.",
                ", ".join(topics),
                self.detail,
                SAFE_REPLICATION,
                SAFE_REPLICATION,
                SAFE_MIN_INSYNC,
            )


async def read_replication(bootstrap_servers: str, names: list[str], into: Replication) -> None:
    """Fill `into` with the smallest replication factor and min.insync.replicas of the topics `names`."""
    async with started_admin(bootstrap_servers, ADMIN_REQUEST_TIMEOUT_S) as admin:
        described = await admin.describe_topics(names)
        resources = [ConfigResource(ConfigResourceType.TOPIC, name, {MIN_ISR: None}) for name in names]
        responses = await admin.describe_configs(resources)
    factors = [len(part["replicas"]) for topic in described for part in topic["partitions"]]
    isr = [
        int(entry["config_value"])
        for response in responses
        for resource in response.to_object()["resources"]
        for entry in resource["config_entries"]
        if entry["config_names"] == MIN_ISR
    ]
    if not factors or not isr:
        raise KafkaError(f"no replication reported for {names}")
    into.factor, into.min_insync = min(factors), min(isr)


async def check_replication(
    bootstrap_servers: str, topics: Topics, into: Replication, retry_max_s: float = REPLICATION_RETRY_MAX_S
) -> None:
    """Read the topics' replication once they exist and log it. It is a report, not a gate, so it never
    raises; but it retries until the broker answers (every `retry_max_s` at most): on a cluster a topic just
    created is not yet in every broker's metadata, so the first read can find no partitions, and a single
    read left `/readyz` saying "unknown" for the life of the process (fresh-clone CI, 8 December)."""
    names = [spec.name for spec in topic_specs(topics, 1, 1)]
    delay = 0.2
    level = logging.WARNING  # once; then DEBUG: /readyz keeps saying "unknown" meanwhile
    while True:
        try:
            await read_replication(bootstrap_servers, names, into)
        except (KafkaError, OSError, ValueError) as exc:
            log.log(level, "could not read the replication of the kafka topics (%s), retrying in %.1fs", exc, delay)
            level = logging.DEBUG
            await asyncio.sleep(delay)
            delay = min(delay * 2, retry_max_s)
            continue
        into.report(names)
        return
