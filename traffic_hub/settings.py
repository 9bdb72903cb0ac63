"""Configuration: one typed object, read from the environment (prefix TRAFFIC_HUB_) and `.env`.

Built in `cli.main()` and handed down; nothing reads the environment anywhere else.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _host_name() -> str:
    return socket.gethostname() or "hub"


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
    # ended and cancelled events stay readable this long, then are removed from the events topic
    retention_days: Annotated[float, Field(gt=0, le=3650)] = 7.0
    # which hub instance this is: client ids, logs, and the normaliser's static group member name (a
    # process restarted under the same name takes its partitions back at once). Stable and unique per
    # process; the default, the host name, is both for one process per host or container.
    instance: Annotated[str, Field(min_length=1, max_length=200)] = Field(default_factory=_host_name)
