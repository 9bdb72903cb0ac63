"""/docs (Swagger UI) and /redoc (ReDoc) with their assets served by the hub, not from a CDN.

FastAPI's default pages load their JavaScript and CSS from cdn.jsdelivr.net and a favicon from
fastapi.tiangolo.com: offline, in a closed network or behind a strict proxy, both pages are blank.
Here the assets come from the npm packages `make install` (and the Docker build) installs, pinned in
package-lock.json, as the map does with MapLibre; Google Fonts and Swagger's online validator are off,
and ReDoc's footer logo (an <img> from cdn.redoc.ly, hidden when it fails) is not fetched: no visitor's
browser calls a third party.
"""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, Response

from traffic_hub.errors import NotFound

router = APIRouter(include_in_schema=False)

NODE_MODULES = Path(__file__).resolve().parents[2] / "node_modules"
STATIC = "/docs/static"
# name served under /docs/static/ → (file in node_modules, media type)
ASSETS: dict[str, tuple[Path, str]] = {
    "swagger-ui-bundle.js": (NODE_MODULES / "swagger-ui-dist" / "swagger-ui-bundle.js", "text/javascript"),
    "swagger-ui.css": (NODE_MODULES / "swagger-ui-dist" / "swagger-ui.css", "text/css"),
    "favicon-32x32.png": (NODE_MODULES / "swagger-ui-dist" / "favicon-32x32.png", "image/png"),
    "redoc.standalone.js": (NODE_MODULES / "redoc" / "bundles" / "redoc.standalone.js", "text/javascript"),
}
TITLE = "traffic-hub"
# bytes replaced in an asset as it is served: the image fails to load and ReDoc hides it, as it does offline
PATCHES: dict[str, list[tuple[bytes, bytes]]] = {
    "redoc.standalone.js": [(b'"https://cdn.redoc.ly/redoc/logo-mini.svg"', b'"data:,"')],
}
CACHE = {"Cache-Control": "public, max-age=86400"}


def _openapi_url(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/") + "/openapi.json"


def _static(request: Request, name: str) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/") + f"{STATIC}/{name}"


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url=_openapi_url(request),
        title=f"{TITLE} - Swagger UI",
        swagger_js_url=_static(request, "swagger-ui-bundle.js"),
        swagger_css_url=_static(request, "swagger-ui.css"),
        swagger_favicon_url=_static(request, "favicon-32x32.png"),
        swagger_ui_parameters={"validatorUrl": None},  # no badge fetched from validator.swagger.io
    )


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    return get_redoc_html(
        openapi_url=_openapi_url(request),
        title=f"{TITLE} - ReDoc",
        redoc_js_url=_static(request, "redoc.standalone.js"),
        redoc_favicon_url=_static(request, "favicon-32x32.png"),
        with_google_fonts=False,
    )


@router.get(STATIC + "/{name}")
async def docs_asset(name: str) -> Response:
    if name not in ASSETS:
        raise NotFound(f"no docs file {name}")
    path, media_type = ASSETS[name]
    if not path.is_file():
        raise NotFound(f"{name} is missing: run `make install` (npm ci installs swagger-ui-dist and redoc)")
    if name in PATCHES:
        return Response(await asyncio.to_thread(_patched, name), media_type=media_type, headers=CACHE)
    return FileResponse(path, media_type=media_type, headers=CACHE)


@functools.cache
def _patched(name: str) -> bytes:
    content = ASSETS[name][0].read_bytes()
    for old, new in PATCHES[name]:
        content = content.replace(old, new)
    return content
