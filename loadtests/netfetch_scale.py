"""`traffic-hub network fetch` at metropole scale, on a synthetic regional extract served locally.

Why: the only real extract here is central Lille (50 KB, 1,470 edges) and there is no network access,
so the fetch → clip → build path is measured on a synthetic ``.osm.pbf`` shaped like the regional
extract it will meet: a dense street grid over MEL's bounding box (120 m blocks, a shape node in
every block, a quarter of the streets one-way), a sparse grid over the rest of Nord-Pas-de-Calais that
the clip must drop, and buildings (closed non-road ways) that make up most of a real extract's nodes.
Node ids are spread out as in a real extract (so libosmium's location index is sparse, 16 B a node).

Run: ``python -m loadtests.netfetch_scale [--buildings N]``; prints sizes, wall time and peak RSS of
the fetch (download + MD5 + clip + build) and of a second fetch (remote unchanged: build only).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import osmium

from geo.network import RoadNetwork

MEL_BBOX = (2.78, 50.49, 3.30, 50.82)
NPDC_BBOX = (1.55, 49.96, 4.25, 51.09)
DENSE_M, SPARSE_M, BLOCKS_PER_WAY = 120.0, 600.0, 10
ID_BASE, ID_STEP = 1_000_000_000, 37
_M_PER_DEG_LAT = 111_320.0
TIME = "/usr/bin/time"  # GNU time, for the child's peak RSS


@dataclass(frozen=True)
class _Grid:
    lon0: float
    lat0: float
    dlon: float
    dlat: float
    nx: int
    ny: int


def _grid(bbox: tuple[float, float, float, float], spacing_m: float) -> _Grid:
    lon0, lat0, lon1, lat1 = bbox
    dlat = spacing_m / _M_PER_DEG_LAT
    dlon = spacing_m / (_M_PER_DEG_LAT * np.cos(np.radians((lat0 + lat1) / 2)))
    return _Grid(lon0, lat0, dlon, dlat, int((lon1 - lon0) / dlon) + 1, int((lat1 - lat0) / dlat) + 1)


class _Writer:
    """OPL lines out, node ids handed out in ascending order (what a PBF reader expects)."""

    def __init__(self, path: Path) -> None:
        self._out = path.open("w", encoding="ascii")
        self.next_node = 0
        self.next_way = 0

    def nodes(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        ids = ID_BASE + ID_STEP * (self.next_node + np.arange(len(lon), dtype=np.int64))
        self.next_node += len(lon)
        self._out.writelines(
            f"n{i} v1 x{x:.7f} y{y:.7f}\n" for i, x, y in zip(ids.tolist(), lon.tolist(), lat.tolist(), strict=True)
        )
        return ids

    def way(self, refs: list[int], tags: str) -> None:
        self.next_way += 1
        self._out.write(f"w{self.next_way} v1 T{tags} N{','.join(f'n{r}' for r in refs)}\n")

    def close(self) -> None:
        self._out.close()


def _street_tags(line: int, piece: int, kind: str) -> str:
    if line % 10 == 0:
        return f"highway=secondary,name=Boulevard%20%{kind}{line}"
    oneway = ",oneway=yes" if zlib.crc32(f"{kind}{line}:{piece}".encode()) % 4 == 0 else ""
    return f"highway=residential,name=Rue%20%{kind}{line}-{piece}{oneway}"


def _dense(writer: _Writer, rng: np.random.Generator) -> list[tuple[list[int], str]]:
    """Rows with a shape node mid-block; columns sharing the rows' junctions."""
    g = _grid(MEL_BBOX, DENSE_M)
    cols = 2 * g.nx - 1
    jj, kk = np.meshgrid(np.arange(g.ny), np.arange(cols), indexing="ij")
    jitter = rng.normal(0, g.dlat / 20, jj.shape)
    row_lon, row_lat = g.lon0 + kk * g.dlon / 2, g.lat0 + jj * g.dlat + jitter
    row_ids = writer.nodes(row_lon.ravel(), row_lat.ravel()).reshape(jj.shape)
    ii, hh = np.meshgrid(np.arange(g.nx), np.arange(g.ny - 1), indexing="ij")
    col_ids = writer.nodes(
        (g.lon0 + ii * g.dlon + rng.normal(0, g.dlon / 20, ii.shape)).ravel(), (g.lat0 + (hh + 0.5) * g.dlat).ravel()
    ).reshape(ii.shape)
    ways: list[tuple[list[int], str]] = []
    span = 2 * BLOCKS_PER_WAY
    for j in range(g.ny):
        for m, start in enumerate(range(0, cols - 1, span)):
            ways.append((row_ids[j, start : start + span + 1].tolist(), _street_tags(j, m, "R")))
    for i in range(g.nx):
        column = np.empty(2 * g.ny - 1, dtype=np.int64)
        column[0::2] = row_ids[:, 2 * i]
        column[1::2] = col_ids[i]
        for m, start in enumerate(range(0, len(column) - 1, span)):
            ways.append((column[start : start + span + 1].tolist(), _street_tags(i, m, "C")))
    return ways


def _sparse(writer: _Writer) -> list[tuple[list[int], str]]:
    """Country roads over the rest of the region (dropped by the clip), none inside MEL's box."""
    g = _grid(NPDC_BBOX, SPARSE_M)
    jj, ii = np.meshgrid(np.arange(g.ny), np.arange(g.nx), indexing="ij")
    lon, lat = g.lon0 + ii * g.dlon, g.lat0 + jj * g.dlat
    ids = writer.nodes(lon.ravel(), lat.ravel()).reshape(jj.shape)
    lon0, lat0, lon1, lat1 = MEL_BBOX
    inside = (lon >= lon0 - 0.01) & (lon <= lon1 + 0.01) & (lat >= lat0 - 0.01) & (lat <= lat1 + 0.01)
    ways: list[tuple[list[int], str]] = []
    for lines, mask in ((ids, inside), (ids.T, inside.T)):
        for n, (line, bad) in enumerate(zip(lines, mask, strict=True)):
            for start in range(0, len(line) - 1, BLOCKS_PER_WAY):
                piece = slice(start, start + BLOCKS_PER_WAY + 1)
                if not bad[piece].any():
                    ways.append((line[piece].tolist(), f"highway=unclassified,ref=D{n}"))
    return ways


def _buildings(writer: _Writer, rng: np.random.Generator, count: int) -> Iterator[list[int]]:
    """Small closed ways, a third in MEL's box, the rest across the region."""
    in_mel = count // 3
    boxes = [(MEL_BBOX, in_mel), (NPDC_BBOX, count - in_mel)]
    for (lon0, lat0, lon1, lat1), n in boxes:
        cx, cy = rng.uniform(lon0, lon1, n), rng.uniform(lat0, lat1, n)
        d = 0.0001
        lon = np.column_stack([cx, cx + d, cx + d, cx]).ravel()
        lat = np.column_stack([cy, cy, cy + d, cy + d]).ravel()
        ids = writer.nodes(lon, lat).reshape(n, 4)
        for row in ids.tolist():
            yield [*row, row[0]]


def synthesize(out: Path, *, buildings: int, seed: int = 17) -> dict[str, int]:
    """Write the synthetic regional extract ``out`` (.osm.pbf); returns its counts."""
    rng = np.random.default_rng(seed)
    opl = out.with_suffix(".opl")
    writer = _Writer(opl)
    streets = _dense(writer, rng) + _sparse(writer)
    houses = list(_buildings(writer, rng, buildings))
    for refs, tags in streets:
        writer.way(refs, tags)
    for refs in houses:
        writer.way(refs, "building=yes")
    writer.close()
    out.unlink(missing_ok=True)
    handler = osmium.WriteHandler(str(out))
    osmium.apply(str(opl), handler)
    handler.close()
    opl.unlink()
    size = out.stat().st_size
    return {"nodes": writer.next_node, "ways": writer.next_way, "street_ways": len(streets), "bytes": size}


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def _fetch(url: str, out: Path, cache: Path) -> tuple[float, float, str]:
    """Run `traffic-hub network fetch` as a child under GNU time; wall seconds, peak RSS (MiB), its
    summary line. (getrusage of children would count this process's pages in a forked child.)"""
    cli = Path(sys.executable).with_name("traffic-hub")
    fetch = [str(cli), "network", "fetch", "--url", url, "-o", str(out), "--cache-dir", str(cache), "--no-progress"]
    started = time.perf_counter()
    done = subprocess.run([TIME, "-f", "peak-rss-kib %M", *fetch], capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - started
    peak = re.findall(r"^peak-rss-kib (\d+)$", done.stderr, re.MULTILINE)
    return seconds, int(peak[-1]) / 1024, done.stdout.splitlines()[0]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--buildings", type=int, default=1_500_000)
    parser.add_argument("--extract", type=Path, help="serve this .osm.pbf instead of synthesizing one")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="netfetch-scale-") as tmp:
        root = Path(tmp)
        served = root / "served"
        served.mkdir()
        pbf = served / "synthetic-npdc-latest.osm.pbf"
        started = time.perf_counter()
        if args.extract:
            shutil.copyfile(args.extract, pbf)
            counts = {"bytes": pbf.stat().st_size}
        else:
            counts = synthesize(pbf, buildings=args.buildings)
        md5 = hashlib.md5(pbf.read_bytes(), usedforsecurity=False).hexdigest()
        (served / (pbf.name + ".md5")).write_text(f"{md5}  {pbf.name}\n")
        print(f"synthetic extract: {counts} in {time.perf_counter() - started:.0f} s")
        server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(served)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/{pbf.name}"
        try:
            out = root / "mel.network.arrow"
            first = _fetch(url, out, root / "cache")
            print(f"fetch (download + md5 + clip + build): {first[0]:.1f} s, peak RSS {first[1]:.0f} MiB\n  {first[2]}")
            second = _fetch(url, out, root / "cache")
            print(f"fetch again (304, build only): {second[0]:.1f} s\n  {second[2]}")
            started = time.perf_counter()
            network = RoadNetwork.load(out)
            print(f"load: {network.n_edges} edges in {time.perf_counter() - started:.1f} s; "
                  f"file {os.path.getsize(out) / 1048576:.1f} MiB")
        finally:
            server.shutdown()
            server.server_close()


if __name__ == "__main__":
    main()
