"""Configuration: one typed object, read from the environment (prefix TRAFFIC_HUB_) and `.env`.

Built in `cli.main()` and handed down; nothing reads the environment anywhere else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class KafkaSettings(BaseModel):
    bootstrap_servers: str = "127.0.0.1:19092"
    # how long a write may wait for the broker before the API answers 503 (contract: within 2 s)
    write_timeout_s: Annotated[float, Field(gt=0, le=10)] = 1.5
    partitions: Annotated[int, Field(ge=1, le=256)] = 3
    replication_factor: Annotated[int, Field(ge=1, le=5)] = 1
    # how often the broker is probed for /readyz and fast 503s
    probe_interval_s: Annotated[float, Field(gt=0, le=30)] = 0.5


class FeedSettings(BaseModel):
    # uncompressed feed bytes kept in memory (smallest feeds first); the rest is served by inflating on the fly
    plain_cache_mb: Annotated[int, Field(ge=0, le=65536)] = 128
    # events per compressed block: a change rebuilds one block of each feed
    block_events: Annotated[int, Field(ge=1, le=4096)] = 64
    # zlib level of the blocks (1 fastest … 9 smallest)
    gzip_level: Annotated[int, Field(ge=1, le=9)] = 6


class LimitSettings(BaseModel):
    """What one client may hold of the HTTP server (TRAFFIC_HUB_LIMITS__*); README "Guarantees" lists them."""

    # request line + headers; a larger head gets 431 and the connection is closed
    max_header_bytes: Annotated[int, Field(ge=1024, le=1024 * 1024)] = 16 * 1024
    # a request head must be complete this long after the connection opens or its first byte arrives (else 408)
    header_timeout_s: Annotated[float, Field(gt=0, le=300)] = 10.0
    # a request body must be complete this long after its head (else the connection is closed)
    body_timeout_s: Annotated[float, Field(gt=0, le=600)] = 30.0
    # an idle keep-alive connection is closed after this long
    keep_alive_s: Annotated[int, Field(ge=1, le=300)] = 5
    # open HTTP connections; a request beyond gets 503 with Retry-After and its connection is closed
    max_connections: Annotated[int, Field(ge=1, le=1_000_000)] = 4096
    # open event streams (SSE) per key (429 beyond) and in all (503 with Retry-After beyond)
    streams_per_key: Annotated[int, Field(ge=1, le=10_000)] = 8  # a control room shares a key across screens
    streams_total: Annotated[int, Field(ge=1, le=100_000)] = 256


class MetricsSettings(BaseModel):
    """Prometheus metrics are served on their own listener, never on the public port (TRAFFIC_HUB_METRICS__*)."""

    host: str = "127.0.0.1"
    # 0: no metrics listener
    port: Annotated[int, Field(ge=0, le=65535)] = 9108


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="TRAFFIC_HUB_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    http_host: str = "127.0.0.1"
    http_port: Annotated[int, Field(ge=1, le=65535)] = 8000
    kafka: KafkaSettings = KafkaSettings()
    feeds: FeedSettings = FeedSettings()
    topic_prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,100}$")] = "traffic"
    auth_file: Path | None = None
    connectors_file: Path | None = None
    network: Path | None = None
    demo: bool = False
    timezone: str = "Europe/Paris"
    publisher: str = "Métropole Européenne de Lille"
    public_url: str = "http://127.0.0.1:8000"
    # raster tile URL for the operator map in production ("https://…/{z}/{x}/{y}.png"); none = offline network only
    map_tiles: str | None = None
    max_body_bytes: Annotated[int, Field(ge=1024, le=16 * 1024 * 1024)] = 256 * 1024
    limits: LimitSettings = LimitSettings()
    metrics: MetricsSettings = MetricsSettings()
    # ended and cancelled events stay readable this long, then are removed from the events topic
    retention_days: Annotated[float, Field(gt=0, le=3650)] = 7.0
    # which hub instance this is, for consumer-group member ids and logs
    instance: str = "hub"
