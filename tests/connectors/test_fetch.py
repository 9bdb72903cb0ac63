"""One fetch against a real local HTTP server: conditional GET, limits, errors, secrets kept out."""

from __future__ import annotations

import email.utils
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2
import pytest
import pytest_asyncio

from connectors.config import ConnectorConfig
from connectors.fetch import FetchError, TooLarge, Validators, _retry_after, fetch, make_client
from tests.connectors.httpserver import LAST_MODIFIED, LocalServer, Route, local_server

BODY = b'{"items": [{"id": "a", "text": "Travaux rue Nationale"}]}'


def config(url: str, **extra: Any) -> ConnectorConfig:
    data = {"name": "test-source", "kind": "geojson", "url": url, "interval_s": 0.2, "allow_private": True, **extra}
    return ConnectorConfig.model_validate(data, context={"testing": True, "allow_file": True})


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with local_server() as running:
        yield running


@pytest_asyncio.fixture
async def client(server: LocalServer) -> AsyncIterator[httpx2.AsyncClient]:
    async with make_client(trust_env=False) as http:
        yield http


async def test_conditional_get_round_trip(server: LocalServer, client: httpx2.AsyncClient) -> None:
    server.set("/feed", Route(BODY))
    cfg = config(server.url("/feed"))

    first = await fetch(client, cfg, Validators())
    second = await fetch(client, cfg, first.validators)

    assert (first.status, first.body, first.not_modified) == (200, BODY, False)
    assert first.validators == Validators(Route(BODY).etag, LAST_MODIFIED)
    assert second.not_modified
    assert second.body == b""
    assert second.validators == first.validators
    sent = server.hits("/feed")[1].headers
    assert sent["if-none-match"] == Route(BODY).etag
    assert sent["if-modified-since"] == LAST_MODIFIED


async def test_changed_content_is_fetched_again(server: LocalServer, client: httpx2.AsyncClient) -> None:
    server.set("/feed", Route(BODY))
    cfg = config(server.url("/feed"))
    first = await fetch(client, cfg, Validators())
    server.set("/feed", Route(BODY + b" "))

    second = await fetch(client, cfg, first.validators)

    assert second.status == 200
    assert second.body == BODY + b" "
    assert second.validators.etag != first.validators.etag


async def test_if_modified_since_alone_gives_304(server: LocalServer, client: httpx2.AsyncClient) -> None:
    server.set("/feed", Route(BODY))
    result = await fetch(client, config(server.url("/feed")), Validators(last_modified=LAST_MODIFIED))

    assert result.not_modified
    assert result.validators.last_modified == LAST_MODIFIED


async def test_declared_size_over_the_limit_is_refused(server: LocalServer, client: httpx2.AsyncClient) -> None:
    server.set("/big", Route(b"y" * 5000))

    with pytest.raises(TooLarge, match="5000 bytes") as caught:
        await fetch(client, config(server.url("/big"), max_bytes=1000), Validators())

    assert caught.value.status is None


async def test_streamed_body_is_cut_at_the_limit(server: LocalServer, client: httpx2.AsyncClient) -> None:
    server.set("/huge", Route(huge_bytes=50 * 1024 * 1024, validators=False))

    with pytest.raises(TooLarge, match="limit of 100000 bytes") as caught:
        await fetch(client, config(server.url("/huge"), max_bytes=100_000), Validators())

    assert caught.value.head.startswith(b"xxxx")
    assert 0 < len(caught.value.head) <= 64 * 1024


async def test_a_slow_server_times_out(server: LocalServer, client: httpx2.AsyncClient) -> None:
    server.set("/slow", Route(BODY, delay_s=30))

    with pytest.raises(FetchError, match=r"timed out after 0\.3 s"):
        await fetch(client, config(server.url("/slow"), timeout_s=0.3), Validators())


async def test_server_errors_carry_status_and_retry_after(server: LocalServer, client: httpx2.AsyncClient) -> None:
    server.set("/down", Route(b"oops", status=503, headers={"Retry-After": "120"}))

    with pytest.raises(FetchError, match="HTTP 503") as caught:
        await fetch(client, config(server.url("/down")), Validators())

    assert caught.value.status == 503
    assert caught.value.retry_after_s == 120.0


async def test_configured_headers_are_sent_and_never_shown(server: LocalServer, client: httpx2.AsyncClient) -> None:
    server.set("/private", Route(b"denied", status=401))
    cfg = config(server.url("/private?key=s3cr3t-query"), headers={"Authorization": "Bearer s3cr3t-header"})

    with pytest.raises(FetchError) as caught:
        await fetch(client, cfg, Validators())

    assert server.hits("/private")[0].headers["authorization"] == "Bearer s3cr3t-header"
    assert "s3cr3t" not in caught.value.reason
    assert "s3cr3t-header" not in repr(cfg)
    assert "s3cr3t-header" not in str(cfg.model_dump())


async def test_connection_refused_is_a_fetch_error(client: httpx2.AsyncClient) -> None:
    with local_server() as gone:
        url = gone.url("/feed")

    with pytest.raises(FetchError, match="HTTP request failed: ConnectError"):
        await fetch(client, config(url, timeout_s=2), Validators())


async def test_file_urls_use_mtime_validators(tmp_path: Path, client: httpx2.AsyncClient) -> None:
    source = tmp_path / "feed.json"
    source.write_bytes(BODY)
    cfg = config(source.as_uri())

    first = await fetch(client, cfg, Validators())
    second = await fetch(client, cfg, first.validators)

    assert (first.status, first.body) == (200, BODY)
    assert second.not_modified


async def test_missing_or_oversized_files_are_fetch_errors(tmp_path: Path, client: httpx2.AsyncClient) -> None:
    big = tmp_path / "big.json"
    big.write_bytes(b"z" * 2000)

    with pytest.raises(FetchError, match=r"cannot read missing\.json"):
        await fetch(client, config((tmp_path / "missing.json").as_uri()), Validators())
    with pytest.raises(TooLarge, match="2000 bytes"):
        await fetch(client, config(big.as_uri(), max_bytes=1000), Validators())


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    later = email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=90), usegmt=True)

    assert _retry_after("30") == 30.0
    assert 80.0 < (_retry_after(later) or 0.0) <= 90.0
    assert _retry_after("soon") is None
    assert _retry_after(None) is None
