"""Configuration: one typed object, read from the environment (prefix TRAFFIC_HUB_) and `.env`.

Built in `cli.main()` and handed down; nothing reads the environment anywhere else, except
`local_bootstrap`: the one place that turns `TRAFFIC_HUB_KAFKA_PORT` (the port `make kafka-up` starts
the local broker on) into the default Kafka address, so that moving the broker moves the hub, the
tests and the benchmarks with it instead of leaving them on another broker that happens to answer.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LOCAL_KAFKA_PORT = 19092  # ops/kafka/kafka-local.sh's default


def local_bootstrap(environ: Mapping[str, str] | None = None) -> str:
    """The Kafka address when none is configured: `127.0.0.1:${TRAFFIC_HUB_KAFKA_PORT:-19092}`.

    `TRAFFIC_HUB_KAFKA__BOOTSTRAP_SERVERS` still wins over it (callers read that first).
    """
    env = os.environ if environ is None else environ
    raw = env.get("TRAFFIC_HUB_KAFKA_PORT", "").strip() or str(LOCAL_KAFKA_PORT)
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise ValueError(f"TRAFFIC_HUB_KAFKA_PORT must be a port number (1-65535), not {raw!r}")
    return f"127.0.0.1:{int(raw)}"


def bootstrap_servers(environ: Mapping[str, str] | None = None) -> str:
    """Kafka for tools outside `Settings` (tests, benchmarks): the explicit setting, else the local broker."""
    env = os.environ if environ is None else environ
    return env.get("TRAFFIC_HUB_KAFKA__BOOTSTRAP_SERVERS") or local_bootstrap(env)


def _host_name() -> str:
    return socket.gethostname() or "hub"


class KafkaSettings(BaseModel):
    bootstrap_servers: str = Field(default_factory=local_bootstrap)
    # how long a write may wait for the broker before the API answers 503 (contract: within 2 s)
    write_timeout_s: Annotated[float, Field(gt=0, le=10)] = 1.5
    partitions: Annotated[int, Field(ge=1, le=256)] = 3
    # replicas of every topic the hub creates: 1 on one broker, 3 on a cluster (a broker may then be lost)
    replication_factor: Annotated[int, Field(ge=1, le=5)] = 1
    # `min.insync.replicas` of those topics: an acks=all write is acknowledged once this many replicas have
    # it. Default: 2 when the replication factor is 3 or more (one broker may be lost, no acknowledged write
    # with it), else 1.
    min_insync_replicas: Annotated[int, Field(ge=1, le=5)] = 1
    # a single broker (topics below replication factor 3) is a conscious choice: no warning at start
    single_broker_ok: bool = False
    # how often the broker is probed for /readyz and fast 503s
    probe_interval_s: Annotated[float, Field(gt=0, le=30)] = 0.5

    @model_validator(mode="after")
    def _min_insync_follows_the_replication(self) -> KafkaSettings:
        if "min_insync_replicas" not in self.model_fields_set and self.replication_factor >= 3:
            self.min_insync_replicas = 2
        if self.min_insync_replicas > self.replication_factor:
            raise ValueError(
                f"min_insync_replicas ({self.min_insync_replicas}) must not exceed replication_factor "
                f"({self.replication_factor}): every acks=all write would be refused"
            )
        return self


class FeedSettings(BaseModel):
    # uncompressed feed bytes kept in memory (smallest feeds first); the rest is served by inflating on the fly
    plain_cache_mb: Annotated[int, Field(ge=0, le=65536)] = 128
    # events per compressed block: a change rebuilds one block of each feed. 32 and level 3 (were 64 and 6):
    # a change cost ~4.2 ms of compression over the 8 feeds, now ~1 ms, for 11-28 % more gzip bytes
    # (loadtests/RESULTS.md, writes; measured on the bench's events, 2026-12-07): rendering must keep up
    # with 500 closures/s (issue 17). Every replica must use the same values (same bytes, same ETags).
    block_events: Annotated[int, Field(ge=1, le=4096)] = 32
    # zlib level of the blocks (1 fastest … 9 smallest)
    gzip_level: Annotated[int, Field(ge=1, le=9)] = 3
    # where the rendered feeds are saved (feeds.snapshot), so that a restart renders only what changed
    # meanwhile; none = every start renders every event (about a minute at 100,000 events on 2 cores).
    # Replicas may share it: in the same state they render the same bytes.
    snapshot_dir: Path | None = None
    # a changed snapshot is saved this often, and at every clean stop
    snapshot_every_s: Annotated[float, Field(ge=1, le=86400)] = 60.0


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
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)  # built per Settings: reads TRAFFIC_HUB_KAFKA_PORT now
    feeds: FeedSettings = Field(default_factory=FeedSettings)
    topic_prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,100}$")] = "traffic"
    auth_file: Path | None = None
    connectors_file: Path | None = None
    network: Path | None = None
    demo: bool = False
    timezone: str = "Europe/Paris"
    publisher: str = "Métropole Européenne de Lille"
    # withhold from our Waze CIFS what only the national regulation base (DiaLog) reports: it sends it to Waze itself
    waze_withhold_national_base: bool = True
    # the hub's public address, used in feeds; default: this host and port (a second hub on 8001 says 8001)
    public_url: str = "http://127.0.0.1:8000"
    # operator map basemap in production: a raster XYZ template ("https://…/{z}/{x}/{y}.png") or a MapLibre
    # style JSON URL ("https://…/style.json"); none = the offline background (network, street names, communes)
    map_tiles: str | None = None
    # attribution shown for those tiles (their provider's terms), e.g. "© OpenStreetMap contributors"
    map_tiles_attribution: str | None = None
    max_body_bytes: Annotated[int, Field(ge=1024, le=16 * 1024 * 1024)] = 256 * 1024
    limits: LimitSettings = LimitSettings()
    metrics: MetricsSettings = MetricsSettings()
    # ended and cancelled events stay readable this long, then are removed from the events topic
    retention_days: Annotated[float, Field(gt=0, le=3650)] = 7.0
    # which hub instance this is: client ids, logs, and the normaliser's static group member name (a
    # process restarted under the same name takes its partitions back at once). Stable and unique per
    # process; the default, the host name, is both for one process per host or container.
    instance: Annotated[str, Field(min_length=1, max_length=200)] = Field(default_factory=_host_name)
    # the history archive (issue 19, TRAFFIC_HUB_DATABASE_URL, postgresql://…): none = no archiver in `run`;
    # the archiver drops month partitions older than archive_retention_months
    database_url: str | None = None
    archive_retention_months: Annotated[int, Field(ge=1, le=1200)] = 24
    # local state of `make run` (the demo principals and their keys, stable across restarts)
    run_dir: Path = Path(".run")

    @model_validator(mode="after")
    def _public_url_follows_the_port(self) -> Settings:
        if "public_url" not in self.model_fields_set:
            host = "127.0.0.1" if self.http_host in {"0.0.0.0", "::", ""} else self.http_host  # noqa: S104
            host = f"[{host}]" if ":" in host else host
            self.public_url = f"http://{host}:{self.http_port}"
        return self
