"""A production basemap (`TRAFFIC_HUB_MAP_TILES`) drawn from a tile server: a tiny local one, in this test.

The server answers every `/tiles/{z}/{x}/{y}.png` with one flat-coloured PNG and `/style.json` with a
MapLibre style over those tiles, and records what the browser asked for. The map must fetch tiles
from it and show them (pixels of that colour on the canvas), credit them, and keep its own overlays.
"""

from __future__ import annotations

import re
import struct
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import OpenPage
from tests.browser.server import Served, serve
from tests.integration.hubs import KEYS, wait_until, write_principals
from tests.kafkarun import run_name
from traffic_hub.auth import Principals
from traffic_hub.runtime import Role, create_app
from traffic_hub.settings import KafkaSettings, Settings

pytestmark = [pytest.mark.kafka, pytest.mark.browser]

COLOUR = (255, 0, 200)  # a colour nothing else on the map uses
TILE_PATH = re.compile(r"^/tiles/(\d+)/(\d+)/(\d+)\.png$")
ATTRIBUTION = "© Tuiles de test"


def flat_png(rgb: tuple[int, int, int], size: int = 256) -> bytes:
    """A size×size PNG of one colour (8-bit RGB), written by hand."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    row = b"\x00" + bytes(rgb) * size
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    pixels = zlib.compress(row * size)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


@dataclass
class TileServer:
    url: str
    requested: list[str] = field(default_factory=list)

    def tiles(self) -> list[tuple[int, int, int]]:
        return [tuple(int(n) for n in m.groups()) for p in list(self.requested)  # type: ignore[misc]
                if (m := TILE_PATH.match(p))]


def _handler(server: TileServer, png: bytes) -> type[BaseHTTPRequestHandler]:
    style = {"version": 8, "sources": {"tiles": {
        "type": "raster", "tiles": [f"{server.url}/tiles/{{z}}/{{x}}/{{y}}.png"], "tileSize": 256,
        "attribution": ATTRIBUTION}}, "layers": [{"id": "tiles", "type": "raster", "source": "tiles"}]}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            server.requested.append(self.path)
            if TILE_PATH.match(self.path):
                self._send(png, "image/png")
            elif self.path == "/style.json":
                self._send(orjson.dumps(style), "application/json")
            else:
                self.send_error(404)

        def _send(self, body: bytes, media_type: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", media_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Access-Control-Allow-Origin", "*")  # tiles come from another origin
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture(scope="module")
def tile_server() -> Iterator[TileServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    server = TileServer(f"http://127.0.0.1:{httpd.server_address[1]}")
    httpd.RequestHandlerClass = _handler(server, flat_png(COLOUR))
    thread = threading.Thread(target=httpd.serve_forever, name="tiles", daemon=True)
    thread.start()
    yield server
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module", params=["raster", "style"])
def hub(request: pytest.FixtureRequest, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory,
        tile_server: TileServer) -> Iterator[Served]:
    """A hub whose map is configured with the local tile server: an XYZ template, or a style JSON."""
    kind: str = request.param
    directory = tmp_path_factory.mktemp(f"basemap-{kind}")
    prefix = run_name(f"basemap-{kind}")
    tiles = f"{tile_server.url}/tiles/{{z}}/{{x}}/{{y}}.png" if kind == "raster" else f"{tile_server.url}/style.json"
    settings = Settings(
        kafka=KafkaSettings(bootstrap_servers=kafka_bootstrap), topic_prefix=prefix,
        auth_file=write_principals(directory), instance=prefix, map_tiles=tiles,
        map_tiles_attribution=ATTRIBUTION if kind == "raster" else None,
    )
    assert settings.auth_file is not None
    app = create_app(settings, Principals.load(settings.auth_file), {Role.API, Role.NORMALISER})
    with serve(app) as served:
        yield served


def share_of_colour(page: Page, rgb: tuple[int, int, int], tolerance: int = 6) -> float:
    """The share of the map canvas's pixels in that colour, read from WebGL right after a frame is drawn."""
    share: float = page.evaluate(
        """([r, g, b, tol]) => new Promise(resolve => {
             const map = window.trafficHubMap;
             map.once("render", () => {
               const canvas = map.getCanvas();
               const gl = canvas.getContext("webgl2") || canvas.getContext("webgl");
               const w = gl.drawingBufferWidth, h = gl.drawingBufferHeight;
               const px = new Uint8Array(w * h * 4);
               gl.readPixels(0, 0, w, h, gl.RGBA, gl.UNSIGNED_BYTE, px);
               let hits = 0;
               for (let i = 0; i < px.length; i += 4) {
                 const near = (k, v) => Math.abs(px[i + k] - v) <= tol;
                 if (near(0, r) && near(1, g) && near(2, b)) hits++;
               }
               resolve(hits / (w * h));
             });
             map.triggerRepaint();
           })""",
        [*rgb, tolerance],
    )
    return share


def test_the_configured_basemap_is_fetched_and_shown(
    open_map: Any, hub: Served, tile_server: TileServer
) -> None:
    tile_server.requested.clear()
    opened: OpenPage = open_map(KEYS.operator)
    page = opened.page
    page.wait_for_function("() => window.trafficHubMap.loaded()", timeout=15_000)
    # the browser asked the tile server for tiles around Lille (3.06° E, 50.63° N: x/2^z ≈ 0.5085, y/2^z ≈ 0.3365)
    wait_until(lambda: len(tile_server.tiles()) >= 4, timeout=10)
    for z, x, y in tile_server.tiles():
        assert 8 <= z <= 19, (z, x, y)
        assert abs(x / 2**z - 0.5085) < 0.01, (z, x, y)
        assert abs(y / 2**z - 0.3365) < 0.01, (z, x, y)
    # and drew them: most of the map is the tiles' colour (overlays and boundaries cover the rest)
    wait_until(lambda: share_of_colour(page, COLOUR) > 0.5, timeout=10)
    expect(page.locator(".maplibregl-ctrl-attrib")).to_contain_text(ATTRIBUTION)
    # the tiles have their own streets: no offline street layer, but the commune boundaries stay on top
    assert page.evaluate("() => window.trafficHubMap.getLayer('street-names') === undefined")
    wait_until(lambda: page.evaluate(
        "() => window.trafficHubMap.queryRenderedFeatures({layers: ['commune-lines']}).length") > 0, timeout=10)
    assert opened.console.errors == []
