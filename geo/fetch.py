"""`traffic-hub network fetch`: the whole metropole's road network from the current OSM extract.

Why: the bundled network covers central Lille only; a deployment needs all 95 communes, built from
fresh OpenStreetMap data by an operator with one command, repeatable from a cron job.

What it does, and why this way:

- **Download** the regional extract (default: Geofabrik's Nord-Pas-de-Calais extract; Geofabrik still
  lists France by its pre-2016 regions, there is no ``hauts-de-france`` file) into a cache directory.
  The body goes to ``<file>.part``; a dropped connection is resumed with an HTTP ``Range`` request
  guarded by ``If-Range`` (so a file replaced upstream in between is never spliced onto the old one),
  a few times within one run and again by the next run. A server that ignores ``Range`` answers 200:
  the part is then rewritten from the start.
- **Verify**: Geofabrik publishes ``<file>.md5`` next to each extract; it is fetched and compared. If
  there is none, that is said, and the SHA-256 of what was downloaded is recorded in the network's
  metadata either way (with the URL and the server's ``Last-Modified``), so a network can be traced
  back to its bytes. A mismatch deletes the download and writes no network.
- **Cache**: the verified file stays in the cache with its ``ETag``/``Last-Modified``; the next fetch
  asks with ``If-None-Match``/``If-Modified-Since`` and a 304 means no download at all.
- **Clip** while building (no clipped PBF is written): a drivable way is kept, whole, when one of its
  nodes lies within MEL's 95 communes grown by a margin (2 km by default), so roads crossing the
  border are not cut and the matcher finds the road just outside.
- **Offline** (DNS failure, connection refused, connect timeout): one line naming the URL and the way
  to build from a local file, exit code 2, no traceback (:class:`Unreachable`).

This is an operator's command, not a connector: it talks to whatever URL the operator gives
(loopback included), with the synchronous HTTP client and explicit timeouts.
"""

from __future__ import annotations

import enum
import fcntl
import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import httpx2
import shapely
from tqdm import tqdm

from geo.arrays import FloatArray
from geo.build import BuildStats, WayFilter, build_network
from geo.communes import Communes
from geo.crs import Reprojector

DEFAULT_URL = "https://download.geofabrik.de/europe/france/nord-pas-de-calais-latest.osm.pbf"
"""Geofabrik's Nord-Pas-de-Calais extract (the département Nord, all of MEL in it), updated daily."""

MARGIN_M = 2000.0
"""Metres around MEL's boundary within which a way touching it is kept."""

TIMEOUT = httpx2.Timeout(connect=15.0, read=60.0, write=30.0, pool=15.0)
ATTEMPTS = 5
"""Tries within one run when the connection drops mid-body (each resumes where the last stopped)."""

_CHUNK = 1 << 20
_MD5 = re.compile(r"\A\s*([0-9a-fA-F]{32})\b")
_NO_CHECKSUM = frozenset({403, 404, 410})

Say = Callable[[str], None]


class FetchError(Exception):
    """A fetch that cannot go on; the message is one line for the operator. Exit code 1."""

    exit_code = 1


class Unreachable(FetchError):
    """The URL could not be reached at all (offline, DNS failure, refused, timed out). Exit code 2."""

    exit_code = 2


class ChecksumMismatch(FetchError):
    """The downloaded bytes are not what the published checksum says; the download was deleted."""


class _Interrupted(Exception):
    """The body stopped before its end; the part is kept for a resume."""


class _Outcome(enum.Enum):
    UNCHANGED = "unchanged"
    COMPLETE = "complete"


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/traffic-hub/osm`` (``~/.cache/traffic-hub/osm``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "traffic-hub" / "osm"


@dataclass(frozen=True)
class Downloaded:
    """A verified extract in the cache and how it was obtained."""

    path: Path
    url: str
    size: int
    sha256: str
    md5: str
    checksum: str  # "md5 verified against URL" | "no checksum published at URL"
    etag: str | None
    last_modified: str | None
    downloaded: bool  # False: the remote was unchanged and the cached file was used


@dataclass(frozen=True)
class _Validators:
    """What the server said identifies the version of the file (for If-Range / conditional GET)."""

    url: str
    etag: str | None = None
    last_modified: str | None = None

    @classmethod
    def of(cls, url: str, response: httpx2.Response) -> _Validators:
        return cls(url, response.headers.get("etag"), response.headers.get("last-modified"))

    @classmethod
    def load(cls, path: Path) -> _Validators | None:
        data = _read_json(path)
        url = data.get("url")
        if not isinstance(url, str):
            return None
        return cls(url, _text(data.get("etag")), _text(data.get("last_modified")))

    def if_range(self) -> str | None:
        """A validator usable in If-Range: a strong ETag, else the Last-Modified date."""
        if self.etag and not self.etag.startswith("W/"):
            return self.etag
        return self.last_modified


class Downloader:
    """Resumable, verified, cached download of one URL into ``cache_dir``."""

    def __init__(
        self,
        client: httpx2.Client,
        cache_dir: Path,
        *,
        progress: bool = False,
        attempts: int = ATTEMPTS,
        backoff_s: float = 1.0,
        say: Say = print,
    ) -> None:
        self._client = client
        self._cache = cache_dir
        self._progress = progress
        self._attempts = max(1, attempts)
        self._backoff_s = backoff_s
        self._say = say

    def fetch(self, url: str) -> Downloaded:
        """The extract at ``url``, downloaded (or resumed) unless the cached copy is current."""
        target = self._cache / _file_name(url)
        self._cache.mkdir(parents=True, exist_ok=True)
        with _exclusive(target.with_name(target.name + ".lock"), url):
            return self._fetch(url, target)

    def _fetch(self, url: str, target: Path) -> Downloaded:
        part = target.with_name(target.name + ".part")
        cached = _cached(target, url)
        if self._download(url, part, cached) is _Outcome.UNCHANGED and cached is not None:
            self._say(f"{url}: unchanged since the last fetch, using the cached copy {target}")
            return cached
        validators = _Validators.load(_sidecar(part)) or _Validators(url)
        md5, sha256 = _hashes(part)
        checksum = self._verify(url, part, md5)
        result = Downloaded(
            path=target,
            url=url,
            size=part.stat().st_size,
            sha256=sha256,
            md5=md5,
            checksum=checksum,
            etag=validators.etag,
            last_modified=validators.last_modified,
            downloaded=True,
        )
        os.replace(part, target)
        record = {k: v for k, v in asdict(result).items() if k not in ("path", "downloaded")}
        _write_json(_sidecar(target), record)
        _sidecar(part).unlink(missing_ok=True)
        return result

    # ------------------------------------------------------------------ download with resumes
    def _download(self, url: str, part: Path, cached: Downloaded | None) -> _Outcome:
        for attempt in range(1, self._attempts + 1):
            try:
                return self._get(url, part, cached)
            except _Interrupted as exc:
                have = part.stat().st_size if part.exists() else 0
                if attempt == self._attempts:
                    raise FetchError(
                        f"{url}: the download was interrupted {self._attempts} times ({exc}); "
                        f"{_mib(have)} kept in {part}, run the command again to resume"
                    ) from None
                wait = self._backoff_s * 2 ** (attempt - 1)
                self._say(f"connection lost after {_mib(have)} ({exc}); resuming in {wait:.0f} s "
                          f"(attempt {attempt + 1} of {self._attempts})")
                time.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def _get(self, url: str, part: Path, cached: Downloaded | None) -> _Outcome:
        resume = _Validators.load(_sidecar(part))
        if resume is None or resume.url != url or resume.if_range() is None or not part.exists():
            part.unlink(missing_ok=True)
            resume = None
        offset = part.stat().st_size if resume is not None else 0
        headers: dict[str, str] = {}
        if resume is not None and offset > 0:
            headers = {"Range": f"bytes={offset}-", "If-Range": str(resume.if_range())}
        elif cached is not None:
            headers = _conditional(cached)
        with self._request(url, headers) as response:
            if response.status_code == 304 and cached is not None and "Range" not in headers:
                return _Outcome.UNCHANGED
            if response.status_code == 416 and offset:
                return self._unsatisfiable(part, response, offset)
            if response.status_code == 206 and offset:
                if _range_start(response) != offset:
                    part.unlink(missing_ok=True)
                    raise _Interrupted("the server sent another range; starting again")
                self._body(response, part, offset)
                return _Outcome.COMPLETE
            if response.status_code == 200:
                if offset:
                    self._say(f"{url}: the server sent the whole file (no resume, or it changed): "
                              "starting again from 0")
                _write_json(_sidecar(part), asdict(_Validators.of(url, response)))
                self._body(response, part, 0)
                return _Outcome.COMPLETE
            raise FetchError(f"{url}: HTTP {response.status_code} {response.reason_phrase}".rstrip())

    def _unsatisfiable(self, part: Path, response: httpx2.Response, offset: int) -> _Outcome:
        """416 to a resume: the part is either already whole, or the remote file shrank."""
        size = response.headers.get("content-range", "").rpartition("/")[2]
        if size.isdigit() and int(size) == offset:
            return _Outcome.COMPLETE
        part.unlink(missing_ok=True)
        raise _Interrupted("the remote file changed; starting again")

    @contextmanager
    def _request(self, url: str, headers: dict[str, str]) -> Iterator[httpx2.Response]:
        try:
            with self._client.stream("GET", url, headers=headers) as response:
                yield response
        except (httpx2.UnsupportedProtocol, httpx2.InvalidURL) as exc:
            raise FetchError(
                f"{url}: not an http(s) URL ({_why(exc)}); for a local file use "
                "traffic-hub network build EXTRACT.osm.pbf -o NETWORK"
            ) from None
        except (httpx2.ConnectError, httpx2.ConnectTimeout) as exc:
            raise Unreachable(_unreachable(url, exc)) from None
        except (httpx2.ReadError, httpx2.ReadTimeout, httpx2.RemoteProtocolError) as exc:
            raise _Interrupted(_why(exc)) from None
        except httpx2.HTTPError as exc:
            raise FetchError(f"{url}: {_why(exc)}") from None

    def _body(self, response: httpx2.Response, part: Path, offset: int) -> None:
        length = response.headers.get("content-length", "")
        total = offset + int(length) if length.isdigit() else None
        with (
            part.open("ab" if offset else "wb") as out,
            tqdm(
                total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
                desc="download", disable=not self._progress,
            ) as bar,
        ):
            for chunk in response.iter_bytes():  # as received: a cut keeps all that came
                out.write(chunk)
                bar.update(len(chunk))
        if total is not None and part.stat().st_size < total:
            raise _Interrupted(f"{total - part.stat().st_size} bytes missing")

    # ------------------------------------------------------------------ checksum
    def _verify(self, url: str, part: Path, md5: str) -> str:
        expected = self._published_md5(url)
        if expected is None:
            self._say(f"no checksum published at {url}.md5: the download is not verified; "
                      "its SHA-256 is recorded in the network's metadata")
            return f"no checksum published at {url}.md5"
        if expected != md5:
            part.unlink(missing_ok=True)
            _sidecar(part).unlink(missing_ok=True)
            raise ChecksumMismatch(
                f"checksum mismatch: {url} downloaded with MD5 {md5} but {url}.md5 says {expected}; "
                "the download was deleted and no network was written (the file may have been replaced "
                "upstream meanwhile: run the command again)"
            )
        self._say(f"MD5 {md5} verified against {url}.md5")
        return f"md5 verified against {url}.md5"

    def _published_md5(self, url: str) -> str | None:
        with self._request(url + ".md5", {}) as response:
            if response.status_code in _NO_CHECKSUM:
                return None
            if response.status_code != 200:
                raise FetchError(f"{url}.md5: HTTP {response.status_code} {response.reason_phrase}; "
                                 "the download is kept, run the command again to verify it")
            text = response.read().decode("ascii", "replace")
        found = _MD5.match(text)
        if found is None:
            raise FetchError(f"{url}.md5 is not an MD5 checksum file (it starts {text[:40]!r})")
        return found.group(1).lower()


# ---------------------------------------------------------------------- clip
def mel_zone(margin_m: float = MARGIN_M, communes: Communes | None = None) -> shapely.Geometry:
    """MEL's 95 communes grown by ``margin_m`` metres (in CC50), as a lon/lat polygon."""
    communes = communes or Communes.load()
    reprojector = Reprojector()
    polygons = [communes.polygon(c.insee) for c in communes]
    union = shapely.union_all([reprojector.geometry_to_metric(p) for p in polygons if p is not None])
    grown = shapely.simplify(shapely.buffer(union, margin_m, quad_segs=4), 20.0)
    return reprojector.geometry_from_metric(grown)


class ZoneClip:
    """Keep a way (whole) when one of its nodes lies within the zone: a :data:`geo.build.WayFilter`."""

    def __init__(self, zone: shapely.Geometry) -> None:
        self._zone = zone
        shapely.prepare(zone)
        self._min_lon, self._min_lat, self._max_lon, self._max_lat = (float(b) for b in shapely.bounds(zone))

    def __call__(self, lon: FloatArray, lat: FloatArray) -> bool:
        if lon.max() < self._min_lon or lon.min() > self._max_lon:
            return False
        if lat.max() < self._min_lat or lat.min() > self._max_lat:
            return False
        return bool(shapely.intersects_xy(self._zone, lon, lat).any())


# ---------------------------------------------------------------------- the command
@dataclass(frozen=True)
class Fetched:
    """What `network fetch` did."""

    download: Downloaded
    build: BuildStats


def fetch_network(
    url: str,
    out: Path,
    *,
    cache_dir: Path,
    margin_m: float = MARGIN_M,
    progress: bool = False,
    say: Say = print,
    keep_way: WayFilter | None = None,
) -> Fetched:
    """Download (or reuse) the extract, verify it, build the clipped network into ``out`` atomically."""
    with httpx2.Client(timeout=TIMEOUT, follow_redirects=True) as http:
        download = Downloader(http, cache_dir, progress=progress, say=say).fetch(url)
    say(f"extract {download.path} ({_mib(download.size)}), SHA-256 {download.sha256}")
    clip = keep_way or ZoneClip(mel_zone(margin_m))
    metadata = {
        "source_url": download.url,
        "source_sha256": download.sha256,
        "source_md5": download.md5,
        "source_checksum": download.checksum,
        "source_last_modified": download.last_modified or "",
        "fetched_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "clip": f"MEL (95 communes) + {margin_m:g} m" if keep_way is None else "custom",
    }
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        stats = build_network(download.path, tmp, progress=progress, keep_way=clip, metadata=metadata)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return Fetched(download, replace(stats, out=out))


# ---------------------------------------------------------------------- helpers
def _file_name(url: str) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]", "_", urlsplit(url).path.rpartition("/")[2]).lstrip(".")
    return name or "extract.osm.pbf"


@contextmanager
def _exclusive(lock: Path, url: str) -> Iterator[None]:
    """One fetch at a time per cached file (a cron job and an operator must not write one part)."""
    with lock.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FetchError(
                f"another traffic-hub network fetch is downloading {url} into {lock.parent}; "
                "wait for it to finish"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _read_json(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_json(path: Path, data: object) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def _cached(target: Path, url: str) -> Downloaded | None:
    """The verified copy of ``url`` in the cache, as its record describes it (None: none usable)."""
    data = _read_json(_sidecar(target))
    try:
        record = Downloaded(
            path=target,
            url=str(data["url"]),
            size=int(str(data["size"])),
            sha256=str(data["sha256"]),
            md5=str(data["md5"]),
            checksum=str(data["checksum"]),
            etag=_text(data.get("etag")),
            last_modified=_text(data.get("last_modified")),
            downloaded=False,
        )
    except (KeyError, ValueError):
        return None
    if record.url != url or not target.exists() or target.stat().st_size != record.size:
        return None
    return record


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _conditional(cached: Downloaded) -> dict[str, str]:
    headers = {}
    if cached.etag:
        headers["If-None-Match"] = cached.etag
    if cached.last_modified:
        headers["If-Modified-Since"] = cached.last_modified
    return headers


def _range_start(response: httpx2.Response) -> int | None:
    found = re.match(r"bytes (\d+)-", response.headers.get("content-range", ""))
    return int(found.group(1)) if found else None


def _hashes(path: Path) -> tuple[str, str]:
    md5, sha256 = hashlib.md5(usedforsecurity=False), hashlib.sha256()
    with path.open("rb") as src:
        while block := src.read(_CHUNK):
            md5.update(block)
            sha256.update(block)
    return md5.hexdigest(), sha256.hexdigest()


def _why(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def _unreachable(url: str, exc: BaseException) -> str:
    return (
        f"could not reach {url} ({_why(exc)}); offline? Build from a local extract instead: "
        "traffic-hub network build EXTRACT.osm.pbf -o NETWORK"
    )


def _mib(size: int) -> str:
    return f"{size / 1048576:.1f} MiB" if size >= 1048576 else f"{size:,} bytes"
