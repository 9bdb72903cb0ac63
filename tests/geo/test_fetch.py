"""`traffic-hub network fetch` end to end against a local HTTP server serving the bundled extract.

The server behaves like Geofabrik (ETag, Last-Modified, Range with If-Range, a `.md5` next to the
file) and can misbehave on demand: drop the connection half-way, ignore Range, publish a wrong or no
checksum. It records every request, so the tests can tell what was downloaded and how.
"""

from __future__ import annotations

import fcntl
import hashlib
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx2
import numpy as np
import pyarrow.feather as feather
import pytest
import shapely

from geo.build import build_network
from geo.fetch import Downloader, FetchError, ZoneClip, mel_zone
from geo.network import RoadNetwork
from tests.conftest import free_port
from traffic_hub.cli import main

DATA = Path(__file__).resolve().parents[2] / "geo" / "data"
EXTRACT = (DATA / "lille_centre_2017_roads.osm.pbf").read_bytes()
PATH = "/europe/france/nord-pas-de-calais-latest.osm.pbf"
LILLE_EDGES = 1470


@dataclass
class Remote:
    """What the test server serves, how it misbehaves, and what it was asked."""

    body: bytes = EXTRACT
    md5: str | None = hashlib.md5(EXTRACT, usedforsecurity=False).hexdigest()
    etag: str = '"v1"'
    last_modified: str = field(default_factory=lambda: formatdate(usegmt=True))
    drops: int = 0  # how many body responses to cut half-way
    honour_range: bool = True
    requests: list[tuple[str, dict[str, str], int, int]] = field(default_factory=list)  # path, headers, status, bytes

    def bodies(self) -> list[tuple[dict[str, str], int, int]]:
        """The requests for the extract itself: headers, status, body bytes sent."""
        return [(h, status, sent) for path, h, status, sent in self.requests if path == PATH]


def _handler(remote: Remote) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            headers = {k.lower(): v for k, v in self.headers.items()}
            if self.path == PATH + ".md5":
                self._md5(headers)
            elif self.path == PATH:
                self._extract(headers)
            else:
                self._send(headers, 404, b"not found", {})

        def _md5(self, headers: dict[str, str]) -> None:
            if remote.md5 is None:
                self._send(headers, 404, b"not found", {})
            else:
                self._send(headers, 200, f"{remote.md5}  nord-pas-de-calais-latest.osm.pbf\n".encode(), {})

        def _extract(self, headers: dict[str, str]) -> None:
            validators = {"ETag": remote.etag, "Last-Modified": remote.last_modified}
            if headers.get("if-none-match") == remote.etag or headers.get("if-modified-since") == remote.last_modified:
                self._send(headers, 304, b"", validators)
                return
            start = re.fullmatch(r"bytes=(\d+)-", headers.get("range", ""))
            if_range = headers.get("if-range")
            if start and remote.honour_range and if_range in (None, remote.etag, remote.last_modified):
                offset, size = int(start.group(1)), len(remote.body)
                if offset >= size:
                    self._send(headers, 416, b"", {"Content-Range": f"bytes */{size}"})
                    return
                extra = {**validators, "Content-Range": f"bytes {offset}-{size - 1}/{size}"}
                self._send(headers, 206, remote.body[offset:], extra)
                return
            self._send(headers, 200, remote.body, validators)

        def _send(self, headers: dict[str, str], status: int, body: bytes, extra: dict[str, str]) -> None:
            self.send_response(status)
            for name, value in extra.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if status in (200, 206) and self.path == PATH and remote.drops > 0:
                remote.drops -= 1
                body = body[: len(body) // 2]
                self.close_connection = True
            self.wfile.write(body)
            self.wfile.flush()
            remote.requests.append((self.path, headers, status, len(body)))

    return Handler


@pytest.fixture
def remote() -> Iterator[tuple[Remote, str]]:
    state = Remote()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, name="osm-extract-server", daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}{PATH}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def _fetch(url: str, tmp_path: Path, out: str = "mel.network.arrow") -> int:
    return main(["network", "fetch", "--url", url, "-o", str(tmp_path / out),
                 "--cache-dir", str(tmp_path / "cache"), "--no-progress"])


def _metadata(path: Path) -> dict[str, str]:
    meta = feather.read_table(str(path)).schema.metadata or {}
    return {k.decode(): v.decode() for k, v in meta.items()}


def test_fetch_downloads_verifies_and_builds_a_network_that_loads(
    remote: tuple[Remote, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server, url = remote
    assert _fetch(url, tmp_path) == 0
    network = RoadNetwork.load(tmp_path / "mel.network.arrow")
    assert network.n_edges == LILLE_EDGES  # central Lille lies wholly inside MEL: nothing clipped
    meta = _metadata(tmp_path / "mel.network.arrow")
    assert meta["source_url"] == url
    assert meta["source_sha256"] == hashlib.sha256(EXTRACT).hexdigest()
    assert meta["source_checksum"] == f"md5 verified against {url}.md5"
    assert meta["source_last_modified"] == server.last_modified
    assert meta["clip"] == "MEL (95 communes) + 2000 m"
    cached = tmp_path / "cache" / "nord-pas-de-calais-latest.osm.pbf"
    assert cached.read_bytes() == EXTRACT
    assert not list((tmp_path / "cache").glob("*.part*"))
    out = capsys.readouterr()
    assert f"{LILLE_EDGES} directed edges" in out.out
    assert "TRAFFIC_HUB_NETWORK=" in out.out
    assert "verified" in out.err


def test_an_interrupted_download_resumes_with_a_range_request(
    remote: tuple[Remote, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server, url = remote
    server.drops = 1
    assert _fetch(url, tmp_path) == 0
    assert RoadNetwork.load(tmp_path / "mel.network.arrow").n_edges == LILLE_EDGES
    (_first, status1, sent1), (second, status2, sent2) = server.bodies()
    assert (status1, sent1) == (200, len(EXTRACT) // 2)
    assert second["range"] == f"bytes={len(EXTRACT) // 2}-"
    assert second["if-range"] == server.etag  # never spliced onto another version of the file
    assert (status2, sent2) == (206, len(EXTRACT) - len(EXTRACT) // 2)
    assert "resuming" in capsys.readouterr().err


def test_a_download_interrupted_in_one_run_is_resumed_by_the_next(remote: tuple[Remote, str], tmp_path: Path) -> None:
    server, url = remote
    server.drops = 1
    cache = tmp_path / "cache"
    lines: list[str] = []
    with httpx2.Client(timeout=10) as client:
        with pytest.raises(FetchError, match="run the command again to resume"):
            Downloader(client, cache, attempts=1, say=lines.append).fetch(url)
        assert (cache / "nord-pas-de-calais-latest.osm.pbf.part").stat().st_size == len(EXTRACT) // 2
        done = Downloader(client, cache, attempts=1, say=lines.append).fetch(url)
    assert done.path.read_bytes() == EXTRACT
    assert done.downloaded
    assert [status for _, status, _ in server.bodies()] == [200, 206]


def test_a_server_ignoring_range_makes_a_clean_restart(remote: tuple[Remote, str], tmp_path: Path) -> None:
    server, url = remote
    server.drops, server.honour_range = 1, False
    lines: list[str] = []
    with httpx2.Client(timeout=10) as client:
        done = Downloader(client, tmp_path / "cache", backoff_s=0, say=lines.append).fetch(url)
    assert done.path.read_bytes() == EXTRACT  # not the first half twice
    assert done.checksum.startswith("md5 verified")
    assert [status for _, status, _ in server.bodies()] == [200, 200]
    assert any("starting again from 0" in line for line in lines)


def test_a_wrong_checksum_fails_clearly_and_keeps_no_network(
    remote: tuple[Remote, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server, url = remote
    server.md5 = "0" * 32
    assert _fetch(url, tmp_path) == 1
    err = capsys.readouterr().err
    assert "checksum mismatch" in err
    assert "0" * 32 in err
    assert hashlib.md5(EXTRACT, usedforsecurity=False).hexdigest() in err
    assert "Traceback" not in err
    assert not (tmp_path / "mel.network.arrow").exists()
    kept = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert kept == ["nord-pas-de-calais-latest.osm.pbf.lock"]  # nothing half-trusted is kept


def test_a_wrong_checksum_leaves_the_previous_network_in_place(
    remote: tuple[Remote, str], tmp_path: Path
) -> None:
    server, url = remote
    assert _fetch(url, tmp_path) == 0
    before = (tmp_path / "mel.network.arrow").read_bytes()
    server.etag, server.last_modified, server.md5 = '"v2"', "Tue, 08 Dec 2026 01:00:00 GMT", "f" * 32
    assert _fetch(url, tmp_path) == 1
    assert (tmp_path / "mel.network.arrow").read_bytes() == before


def test_without_a_published_checksum_the_sha256_is_recorded(
    remote: tuple[Remote, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server, url = remote
    server.md5 = None
    assert _fetch(url, tmp_path) == 0
    assert "no checksum published" in capsys.readouterr().err
    meta = _metadata(tmp_path / "mel.network.arrow")
    assert meta["source_checksum"] == f"no checksum published at {url}.md5"
    assert meta["source_sha256"] == hashlib.sha256(EXTRACT).hexdigest()


@pytest.mark.parametrize(
    "url",
    [
        pytest.param(f"http://127.0.0.1:{free_port()}{PATH}", id="connection-refused"),
        pytest.param(f"http://osm-extract.invalid{PATH}", id="dns-failure"),
    ],
)
def test_offline_is_one_line_and_exit_code_2(url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _fetch(url, tmp_path) == 2
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err.count("\n") == 1
    assert out.err.startswith(f"error: could not reach {url} (")
    assert "traffic-hub network build" in out.err
    assert not (tmp_path / "mel.network.arrow").exists()


def test_an_unchanged_remote_is_not_downloaded_again(
    remote: tuple[Remote, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server, url = remote
    assert _fetch(url, tmp_path) == 0
    assert _fetch(url, tmp_path, out="again.network.arrow") == 0
    statuses = [(status, sent) for _, status, sent in server.bodies()]
    assert statuses == [(200, len(EXTRACT)), (304, 0)]
    second = server.bodies()[1][0]
    assert second["if-none-match"] == server.etag
    assert second["if-modified-since"] == server.last_modified
    assert [p for p, *_ in server.requests].count(PATH + ".md5") == 1
    assert RoadNetwork.load(tmp_path / "again.network.arrow").n_edges == LILLE_EDGES
    assert "unchanged, cached" in capsys.readouterr().out


def test_a_changed_remote_is_downloaded_again(remote: tuple[Remote, str], tmp_path: Path) -> None:
    server, url = remote
    assert _fetch(url, tmp_path) == 0
    server.etag, server.last_modified = '"v2"', "Tue, 08 Dec 2026 01:00:00 GMT"
    assert _fetch(url, tmp_path) == 0
    assert [status for _, status, _ in server.bodies()] == [200, 200]


def test_mel_zone_holds_every_commune_with_its_margin() -> None:
    zone = mel_zone()
    clip = ZoneClip(zone)
    lille = np.array([3.063]), np.array([50.637])
    arras = np.array([2.781]), np.array([50.291])
    assert clip(*lille)
    assert not clip(*arras)
    # Armentières' western edge (≈ 2.85 E) plus 1 km is in; 5 km further west is not
    assert clip(np.array([2.83]), np.array([50.69]))
    assert not clip(np.array([2.76]), np.array([50.69]))


def test_the_clip_keeps_the_ways_touching_the_zone_whole(tmp_path: Path) -> None:
    full = RoadNetwork.load(DATA / "lille_centre.network.arrow")
    square = shapely.box(3.055, 50.632, 3.065, 50.640)  # a part of central Lille
    out = tmp_path / "clipped.network.arrow"
    stats = build_network(DATA / "lille_centre_2017_roads.osm.pbf", out, progress=False, keep_way=ZoneClip(square))
    clipped = RoadNetwork.load(out)
    assert 0 < stats.edges < LILLE_EDGES
    kept = set(clipped.way_id.tolist())
    for way in kept:  # every piece of a kept way, including those outside the square
        assert np.count_nonzero(clipped.way_id == way) == np.count_nonzero(full.way_id == way)
    outside = sorted(set(full.way_id.tolist()) - kept)
    assert outside
    for way in outside[:50]:
        rows = np.flatnonzero(full.way_id == way)
        points = np.concatenate([full.lonlat[full.offsets[i] : full.offsets[i + 1]] for i in rows])
        assert not shapely.intersects_xy(square, points[:, 0], points[:, 1]).any()


def test_a_local_path_is_not_a_url_and_says_how_to_build_from_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _fetch(str(DATA / "lille_centre_2017_roads.osm.pbf"), tmp_path) == 1
    err = capsys.readouterr().err
    assert "not an http(s) URL" in err
    assert "traffic-hub network build" in err
    assert err.count("\n") == 1


def test_two_fetches_into_one_cache_do_not_mix(remote: tuple[Remote, str], tmp_path: Path) -> None:
    _, url = remote
    cache = tmp_path / "cache"
    cache.mkdir()
    with (cache / "nord-pas-de-calais-latest.osm.pbf.lock").open("a") as held, httpx2.Client(timeout=10) as client:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(FetchError, match="another traffic-hub network fetch is downloading"):
            Downloader(client, cache).fetch(url)
        fcntl.flock(held, fcntl.LOCK_UN)
        assert Downloader(client, cache).fetch(url).path.read_bytes() == EXTRACT
