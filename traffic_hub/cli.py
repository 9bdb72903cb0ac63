"""`traffic-hub`: run the hub (all roles or one), or build a road network."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import uvicorn

from connectors.config import ConnectorConfig, ConnectorsFileError, load_connectors
from geo.communes import Communes
from traffic_hub.api.app import create_app
from traffic_hub.api.fastproto import feed_protocol
from traffic_hub.auth import AuthFileError, DemoKey, Principals, demo_principals
from traffic_hub.demo.sources import replay_configs
from traffic_hub.runtime import Role, open_hub
from traffic_hub.settings import Settings

log = logging.getLogger("traffic_hub")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="traffic-hub", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="every role in one process: API + feeds + map, normaliser, connectors")
    sub.add_parser("api", help="the HTTP API and feeds only")
    sub.add_parser("normaliser", help="the normaliser only (a consumer-group member)")
    sub.add_parser("connectors", help="the connector runner only")
    network = sub.add_parser("network", help="road network tools")
    network_sub = network.add_subparsers(dest="network_command", required=True)
    build = network_sub.add_parser("build", help="build a road network from an OSM extract")
    build.add_argument("source", type=Path, help="OSM extract (.osm.pbf)")
    build.add_argument("-o", "--output", type=Path, required=True, help="network file to write")
    build.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def _principals(settings: Settings) -> tuple[Principals, list[DemoKey]]:
    if settings.auth_file is not None:
        return Principals.load(settings.auth_file), []
    if settings.demo:
        keys = demo_principals({c.insee for c in Communes.load()})
        return Principals.of([k.principal for k in keys]), keys
    log.warning("no TRAFFIC_HUB_AUTH_FILE and not in demo mode: every request will get 401")
    return Principals.of([]), []


def _print_demo_keys(keys: list[DemoKey], settings: Settings) -> None:
    if not keys:
        return
    lines = ["", "Demo principals (valid for this run only, demo mode):"]
    for k in keys:
        codes = sorted(k.principal.communes)
        communes = f" communes={','.join(codes)}" if len(codes) < 5 else f" communes=all {len(codes)}"
        communes = communes if codes else ""
        lines.append(f"  {k.principal.role.value:10} {k.principal.name:22} key={k.key}{communes}")
    base = settings.public_url
    admin = next((k.key for k in keys if k.principal.role.value == "roadworks"), "")
    lines += [
        "",
        "Try:",
        f"  curl -H 'Authorization: Bearer {admin}' {base}/api/v1/closures",
        f"  curl '{base}/feeds/waze/cifs.xml?key={keys[3].key if len(keys) > 3 else ''}'",
        "",
    ]
    print("\n".join(lines), flush=True)


def _connectors(settings: Settings, roles: set[Role]) -> list[ConnectorConfig]:
    """The connectors to run: the connectors file, else the demo's replayed samples, else none."""
    if Role.CONNECTORS not in roles:
        return []
    if settings.connectors_file is not None:
        return load_connectors(settings.connectors_file, allow_file=settings.demo)
    if settings.demo:
        return replay_configs(datetime.now(UTC))
    log.warning("no TRAFFIC_HUB_CONNECTORS_FILE: no connector will run")
    return []


def _serve(settings: Settings, roles: set[Role]) -> int:
    principals, demo_keys = _principals(settings)
    connectors = _connectors(settings, roles)
    _print_demo_keys(demo_keys, settings)
    app = create_app(settings, principals, roles, demo_keys, connectors)
    config = uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_level="info",
        proxy_headers=False,
        access_log=False,
        # conditional feed polls answered in the protocol, the rest as usual; header, time and connection limits
        http=feed_protocol(settings.limits, settings.map_tiles),
        timeout_keep_alive=settings.limits.keep_alive_s,
        h11_max_incomplete_event_size=settings.limits.max_header_bytes,  # should h11 ever be chosen
    )
    uvicorn.Server(config).run()
    return 0


async def _headless(settings: Settings, roles: set[Role], connectors: list[ConnectorConfig]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with open_hub(settings, Principals.of([]), roles, connectors=connectors):
        log.info("running roles: %s", ", ".join(sorted(r.value for r in roles)))
        await stop.wait()


def _build_network(args: argparse.Namespace) -> int:
    from geo.build import build_network

    stats = build_network(args.source, args.output, progress=not args.no_progress)
    print(stats)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "network":
        return _build_network(args)
    try:
        settings = Settings()
    except ValueError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    try:
        if args.command == "run":
            return _serve(settings, {Role.API, Role.NORMALISER, Role.CONNECTORS})
        if args.command == "api":
            return _serve(settings, {Role.API})
        roles = {Role.NORMALISER} if args.command == "normaliser" else {Role.CONNECTORS}
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_headless(settings, roles, _connectors(settings, roles)))
        return 0
    except (AuthFileError, ConnectorsFileError) as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
