"""Connectors do not follow a source to internal addresses nor carry its secrets elsewhere (issue 14, finding 4).

The attack: a source answered `302 Location: http://localhost:…/`; the connector followed it, sent the
source's X-Api-Key to that internal server, and wrote the internal server's body to the dead-letter
topic. Now a redirect to another host is refused unless the connector lists that host, configured
headers are never sent outside the configured origin, and loopback / private / link-local addresses
are refused (checked on the address actually connected to) unless the connector allows them.

Both test servers listen on 127.0.0.1; "another host" is reached as `localhost`.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx2
import orjson
import pytest
import pytest_asyncio

from connectors import netguard
from connectors.config import ConnectorConfig
from connectors.fetch import FetchError, Refused, Validators, _next_hop, fetch, make_client
from connectors.geojson import GeoJsonParser
from connectors.netguard import IPAddress, is_public
from connectors.runner import ConnectorRunner
from tests.connectors.httpserver import LocalServer, Route, local_server
from tests.hostile.kafkalog import read_topic, wait_for
from traffic_hub.kafka import Publisher
from traffic_hub.topics import Topics

SECRETS = {"X-Api-Key": "k-s3cr3t", "Authorization": "Bearer b-s3cr3t", "X-Partner-Token": "t-s3cr3t"}
INTERNAL_BODY = b'{"internal": "metadata-service-credentials"}'
FEED = orjson.dumps({"type": "FeatureCollection", "features": []})


@pytest.fixture
def source() -> Iterator[LocalServer]:
    with local_server() as running:
        yield running


@pytest.fixture
def internal() -> Iterator[LocalServer]:
    with local_server() as running:
        running.set("/secret", Route(INTERNAL_BODY))
        yield running


@pytest_asyncio.fixture
async def client() -> AsyncIterator[httpx2.AsyncClient]:
    async with make_client(trust_env=False) as running:
        yield running


def config(url: str, **extra: Any) -> ConnectorConfig:
    data = {"name": "partner", "kind": "geojson", "url": url, "interval_s": 0.2, "timeout_s": 3, **extra}
    return ConnectorConfig.model_validate(data, context={"testing": True})


def port(server: LocalServer) -> int:
    return int(server.base.rsplit(":", 1)[1])


def redirect_to(location: str, status: int = 302) -> Route:
    return Route(b"moved", status=status, headers={"Location": location}, validators=False)


def carried_secret(server: LocalServer, path: str) -> bool:
    return any(value in seen.headers.values() for seen in server.hits(path) for value in SECRETS.values())


# --- redirects ---------------------------------------------------------------------------------------


async def test_a_redirect_to_another_host_is_refused(
    source: LocalServer, internal: LocalServer, client: httpx2.AsyncClient
) -> None:
    source.set("/feed", redirect_to(f"http://localhost:{port(internal)}/secret"))
    cfg = config(source.url("/feed"), headers=SECRETS, allow_private=True)

    with pytest.raises(Refused, match=r"redirect to another host \(localhost\) refused") as refused:
        await fetch(client, cfg, Validators())

    assert "allow_redirect_hosts" in refused.value.reason
    assert internal.hits("/secret") == []
    assert "s3cr3t" not in refused.value.reason


@pytest.mark.kafka
async def test_the_runner_records_the_refused_redirect_and_writes_nothing_of_the_target(
    source: LocalServer, internal: LocalServer, publisher: tuple[Publisher, Topics], kafka_bootstrap: str
) -> None:
    producer, topics = publisher
    source.set("/feed", redirect_to(f"http://localhost:{port(internal)}/secret"))
    cfg = config(source.url("/feed"), headers=SECRETS, allow_private=True)
    async with (
        make_client(trust_env=False) as client,
        ConnectorRunner([cfg], client, producer, topics, parser_for=lambda kind: GeoJsonParser()) as runner,
    ):
        state = runner.state("partner")
        await wait_for(lambda: state.failures >= 2, within=30)

    assert state.status == "failing"
    assert state.last_error is not None
    assert "redirect to another host (localhost) refused" in state.last_error
    assert internal.hits("/secret") == []
    written = await read_topic(kafka_bootstrap, topics.deadletter) + await read_topic(kafka_bootstrap, topics.reports)
    assert not any(b"metadata-service" in value for value in written)


async def test_a_redirect_to_a_listed_host_is_followed_without_any_configured_header(
    source: LocalServer, internal: LocalServer, client: httpx2.AsyncClient
) -> None:
    source.set("/feed", redirect_to(f"http://localhost:{port(internal)}/secret"))
    cfg = config(source.url("/feed"), headers=SECRETS, allow_private=True, allow_redirect_hosts=["LOCALHOST"])

    result = await fetch(client, cfg, Validators())

    assert result.body == INTERNAL_BODY
    assert {name.lower() for name in SECRETS} <= set(source.hits("/feed")[0].headers)  # sent to the source
    (seen,) = internal.hits("/secret")
    assert not {name.lower() for name in SECRETS} & set(seen.headers)  # and to nobody else
    assert not carried_secret(internal, "/secret")


async def test_a_redirect_to_another_port_of_the_same_host_drops_the_headers(
    source: LocalServer, internal: LocalServer, client: httpx2.AsyncClient
) -> None:
    source.set("/feed", redirect_to(f"{internal.base}/secret"))  # same host 127.0.0.1, another origin
    cfg = config(source.url("/feed"), headers=SECRETS, allow_private=True)

    result = await fetch(client, cfg, Validators())

    assert result.body == INTERNAL_BODY
    assert not carried_secret(internal, "/secret")


async def test_a_same_origin_redirect_keeps_the_headers_unless_redirects_are_off(
    source: LocalServer, client: httpx2.AsyncClient
) -> None:
    source.set("/old", redirect_to("/feed", status=301))
    source.set("/feed", Route(FEED))

    result = await fetch(client, config(source.url("/old"), headers=SECRETS, allow_private=True), Validators())
    assert result.body == FEED
    assert carried_secret(source, "/feed")

    off = config(source.url("/old"), allow_private=True, follow_redirects=False)
    with pytest.raises(Refused, match="follow_redirects = false"):
        await fetch(client, off, Validators())


def test_https_never_redirects_down_to_http() -> None:
    cfg = config("https://feeds.example.org/feed", allow_redirect_hosts=["feeds.example.org"])
    response = httpx2.Response(302, headers={"Location": "http://feeds.example.org/feed?key=abc"})

    with pytest.raises(Refused, match="from https down to http") as refused:
        _next_hop(cfg, httpx2.URL(cfg.url), response)
    assert "abc" not in refused.value.reason


def test_redirect_hosts_in_the_connectors_file_are_host_names() -> None:
    assert config("https://a.example/x", allow_redirect_hosts=["CDN.Example.org."]).allow_redirect_hosts == [
        "cdn.example.org"
    ]
    with pytest.raises(ValueError, match="host name"):
        config("https://a.example/x", allow_redirect_hosts=["https://cdn.example.org/path"])


# --- addresses ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_a_private_source_is_refused_unless_the_connector_allows_it(
    source: LocalServer, client: httpx2.AsyncClient, host: str
) -> None:
    source.set("/feed", Route(FEED))
    url = f"http://{host}:{port(source)}/feed"

    with pytest.raises(Refused, match="non-public address") as refused:
        await fetch(client, config(url, headers=SECRETS), Validators())
    assert "allow_private = true" in refused.value.reason
    assert source.hits("/feed") == []

    allowed = await fetch(client, config(url, allow_private=True), Validators())
    assert allowed.body == FEED


async def test_the_connection_goes_to_the_address_that_was_checked(
    source: LocalServer, client: httpx2.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A name is resolved once, checked, and connected to by address: no second lookup to rebind.

    `rebind.invalid` exists for no resolver: the fetch works only because the connection is opened
    to the address our checked resolution returned, never to the name.
    """
    lookups: list[str] = []

    async def resolver(host: str, port: int) -> list[IPAddress]:
        lookups.append(host)
        return [ipaddress.ip_address("127.0.0.1")]

    monkeypatch.setattr(netguard, "resolve", resolver)
    source.set("/feed", Route(FEED))
    url = f"http://rebind.invalid:{port(source)}/feed"

    with pytest.raises(Refused, match=r"rebind\.invalid resolves to a non-public address"):
        await fetch(client, config(url), Validators())
    result = await fetch(client, config(url, allow_private=True), Validators())

    assert result.body == FEED
    assert lookups == ["rebind.invalid", "rebind.invalid"]  # once per connection, nothing else resolved it


async def test_an_unresolvable_host_is_a_plain_fetch_error(client: httpx2.AsyncClient) -> None:
    with pytest.raises(FetchError, match="HTTP request failed: ConnectError"):
        await asyncio.wait_for(fetch(client, config("http://nowhere.invalid/feed"), Validators()), 30)


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),  # cloud metadata service
        ("100.64.0.1", False),  # carrier-grade NAT
        ("0.0.0.0", False),  # noqa: S104 - an address under test, not a bind
        ("224.0.0.1", False),
        ("::1", False),
        ("fe80::1", False),
        ("fd00::1", False),
        ("::ffff:127.0.0.1", False),  # IPv4-mapped loopback
        ("::ffff:10.0.0.1", False),
        ("8.8.8.8", True),
        ("2a00:1450:4007:80c::200e", True),
        ("::ffff:8.8.8.8", True),
    ],
)
def test_only_global_unicast_addresses_are_public(address: str, public: bool) -> None:
    assert is_public(ipaddress.ip_address(address)) is public
