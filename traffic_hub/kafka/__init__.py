"""Kafka wiring: broker probe, durable publisher, topic set-up, compacted-topic reader."""

from traffic_hub.kafka.admin import ensure_topics
from traffic_hub.kafka.probe import BrokerProbe
from traffic_hub.kafka.publisher import Publisher
from traffic_hub.kafka.reader import TopicReader
from traffic_hub.publishing import Record

__all__ = ["BrokerProbe", "Publisher", "Record", "TopicReader", "ensure_topics"]
