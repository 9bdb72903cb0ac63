"""Secrets in a source's URL never reach a log record (issue 14, finding 8).

The leak: partners put their key in the query string (`?key=…`), and the HTTP client logged every
request URL in full at INFO (`HTTP Request: GET https://…?key=SECRET "HTTP/1.1 200 OK"`). Now a
logging filter on the client's loggers and ours masks secret-looking query values and URL user info.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator

import orjson
import pytest

from connectors.config import ConnectorConfig
from connectors.fetch import FetchError, Validators, fetch, make_client
from connectors.geojson import GeoJsonParser
from connectors.logmask import mask_secrets
from connectors.runner import ConnectorRunner
from tests.connectors.httpserver import LocalServer, Route, local_server
from tests.hostile.kafkalog import wait_for
from traffic_hub.kafka import BrokerProbe, Publisher
from traffic_hub.topics import Topics

SECRETS = ["k3y-S3CRET", "ap1-S3CRET", "t0k-S3CRET", "acc-S3CRET", "pw-S3CRET", "sig-S3CRET", "usr-S3CRET"]
QUERY = "key=k3y-S3CRET&apikey=ap1-S3CRET&token=t0k-S3CRET&access_token=acc-S3CRET&password=pw-S3CRET"
FEED = orjson.dumps({"type": "FeatureCollection", "features": []})


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with local_server() as running:
        yield running


def config(url: str) -> ConnectorConfig:
    data = {"name": "partner", "kind": "geojson", "url": url, "interval_s": 0.2, "timeout_s": 3, "allow_private": True}
    return ConnectorConfig.model_validate(data, context={"testing": True})


def leaks(caplog: pytest.LogCaptureFixture) -> list[str]:
    lines = [record.getMessage() for record in caplog.records] + [caplog.text]
    return [line for line in lines if any(secret in line for secret in SECRETS)]


async def test_the_http_clients_request_lines_are_masked(
    server: LocalServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server.set("/feed", Route(FEED))
    server.set("/down", Route(b"oops", status=500))
    server.set("/moved", Route(b"", status=302, headers={"Location": "http://localhost:1/x?sig=sig-S3CRET"}))
    async with make_client(trust_env=False) as client:
        ok = await fetch(client, config(server.url(f"/feed?{QUERY}&page=2")), Validators())
        with pytest.raises(FetchError):
            await fetch(client, config(server.url(f"/down?{QUERY}")), Validators())
        with pytest.raises(FetchError):
            await fetch(client, config(server.url(f"/moved?{QUERY}")), Validators())

    assert ok.body == FEED
    assert leaks(caplog) == []
    requests = [r.getMessage() for r in caplog.records if r.getMessage().startswith("HTTP Request")]
    assert any("key=***" in line and "page=2" in line for line in requests)  # logged, masked, still useful


async def test_the_runners_log_lines_are_masked(server: LocalServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    server.set("/feed", Route(FEED))
    with socket.socket() as dead:  # a broker that never answers: the cycle fails and is logged
        dead.bind(("127.0.0.1", 0))
        bootstrap = f"127.0.0.1:{dead.getsockname()[1]}"
        cfg = config(f"http://usr-S3CRET:pw@{server.base.removeprefix('http://')}/feed?{QUERY}")
        async with (
            BrokerProbe(bootstrap, 0.5) as probe,
            Publisher(bootstrap, probe, 1.0, "offline") as publisher,
            make_client(trust_env=False) as client,
            ConnectorRunner([cfg], client, publisher, Topics("t"), parser_for=lambda kind: GeoJsonParser()) as runner,
        ):
            state = runner.state("partner")
            await wait_for(lambda: state.failures >= 1, within=30)

    assert leaks(caplog) == []
    assert "***" in state.url


@pytest.mark.parametrize(
    ("line", "masked"),
    [
        ("GET https://x.example/f?key=abc&page=2", "GET https://x.example/f?key=***&page=2"),
        ("?apikey=a&api_key=b&API-KEY=c", "?apikey=***&api_key=***&API-KEY=***"),
        ("?access_token=a&token=b&partner_token=c", "?access_token=***&token=***&partner_token=***"),
        ("?password=a&secret=b&signature=c&sig=d", "?password=***&secret=***&signature=***&sig=***"),
        ("https://user:pass@x.example/f", "https://***@x.example/f"),
        ("?monkey=3&keys=4&page=5", "?monkey=3&keys=4&page=5"),  # not secrets: left alone
        ('"HTTP/1.1 200 OK" for /f?X-Amz-Signature=abc#top', '"HTTP/1.1 200 OK" for /f?X-Amz-Signature=***#top'),
    ],
)
def test_mask_secrets(line: str, masked: str) -> None:
    assert mask_secrets(line) == masked
