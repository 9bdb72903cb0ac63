"""The connector contract: a source kind is a pure parser; the shared runner does everything else.

A parser turns the bytes of one fetched payload into incident reports and rejects. It never does
I/O, never raises on bad data (a bad item is a `Reject`, a bad payload raises `PayloadError`), and
is deterministic, so it can be property-tested and replayed from the raw payloads kept in Kafka.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from traffic_hub.model import IncidentReport


class PayloadError(ValueError):
    """The whole payload is unusable (not XML/JSON, hostile, wrong document type)."""


@dataclass(frozen=True, slots=True)
class Reject:
    """One item of a payload that could not be used: dead-lettered with its raw form."""

    reason: str
    raw: bytes
    source_id: str = ""


@dataclass(frozen=True, slots=True)
class Parsed:
    incidents: list[IncidentReport] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    # True when the payload lists everything the source considers current (Waze partner feed,
    # a CIFS feed, a WZDx feed): an item missing from the next snapshot has ended.
    snapshot: bool = False


@dataclass(frozen=True, slots=True)
class ParseContext:
    source: str  # the connector's name, e.g. "waze-mel"
    received_at: datetime  # aware, UTC
    options: Mapping[str, Any] = field(default_factory=dict)  # per-connector options (e.g. GeoJSON field mapping)


class Parser(Protocol):
    kind: str  # "waze-partner-feed" | "datex2" | "wzdx" | "cifs" | "geojson"

    def parse(self, payload: bytes, ctx: ParseContext) -> Parsed: ...
