"""`traffic-hub`: run the hub (all roles or one), build a road network, manage API keys, migrate the archive."""

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
from geo.build import build_network
from geo.communes import Communes
from geo.fetch import DEFAULT_URL, MARGIN_M, FetchError, default_cache_dir, fetch_network
from traffic_hub.api.fastproto import feed_protocol
from traffic_hub.archive import commands as db_commands
from traffic_hub.auth import AuthFileError, DemoKey, Principal, Principals, demo_principals
from traffic_hub.auth import Role as AuthRole
from traffic_hub.demo.sources import replay_configs
from traffic_hub.keys import (
    KeysError,
    add_principal,
    demo_keys,
    make_principal,
    new_key,
    read_principals,
    revoke_principal,
)
from traffic_hub.logs import queued_logging, quiet_start
from traffic_hub.runtime import Role, archiver, create_app, open_hub
from traffic_hub.settings import Settings
from traffic_hub.topics import Topics

log = logging.getLogger("traffic_hub")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="traffic-hub", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="every role in one process: API + feeds + map, normaliser, connectors")
    sub.add_parser("api", help="the HTTP API and feeds only")
    sub.add_parser("normaliser", help="the normaliser only (a consumer-group member)")
    sub.add_parser(
        "connectors",
        help="the connector runner only; several share the sources (each polled by one of them at a time)",
    )
    sub.add_parser("archiver", help="the history archive only: reports and events into TRAFFIC_HUB_DATABASE_URL")
    network = sub.add_parser("network", help="road network tools")
    network_sub = network.add_subparsers(dest="network_command", required=True)
    build = network_sub.add_parser("build", help="build a road network from an OSM extract")
    build.add_argument("source", type=Path, help="OSM extract (.osm.pbf)")
    build.add_argument("-o", "--output", type=Path, required=True, help="network file to write")
    build.add_argument("--no-progress", action="store_true", help="no progress bar")
    _fetch_parser(network_sub)
    _keys_parser(sub)
    db_commands.add_parser(sub)
    return parser


def _fetch_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    fetch = sub.add_parser(
        "fetch",
        help="download the region's OSM extract, clip it to MEL, build the network",
        description="Download the current OpenStreetMap extract of the region (resumable, MD5-checked, "
        "cached: an unchanged extract is not downloaded again), keep the drivable ways within MEL's 95 "
        "communes plus a margin, and build the road network. Offline: exit code 2; build from a local "
        "file with `traffic-hub network build`.",
    )
    fetch.add_argument(
        "--url", default=DEFAULT_URL,
        help=f"OSM extract (.osm.pbf) to download (default: {DEFAULT_URL}, Geofabrik's Nord-Pas-de-Calais "
        "extract: Geofabrik still lists France by its pre-2016 regions, there is no Hauts-de-France file)",
    )
    fetch.add_argument(
        "-o", "--output", type=Path, default=Path("mel.network.arrow"),
        help="network file to write (default: mel.network.arrow); replaced only when the build succeeds",
    )
    fetch.add_argument(
        "--cache-dir", type=Path, default=default_cache_dir(),
        help="where the extract is kept between fetches (default: %(default)s)",
    )
    fetch.add_argument(
        "--margin", type=float, default=MARGIN_M, metavar="METRES",
        help="keep ways reaching within this distance of MEL's boundary, whole (default: %(default)g)",
    )
    fetch.add_argument("--no-progress", action="store_true", help="no progress bars")


def _keys_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = sub.add_parser(
        "keys",
        help="API keys: add, list, revoke principals in the principals file",
        description="Edit the principals file (--file, else TRAFFIC_HUB_AUTH_FILE); a running hub picks changes "
        "up within seconds. Keys are shown once and never stored, only their SHA-256.",
    )
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    file_help = "principals file (default: TRAFFIC_HUB_AUTH_FILE; under `make run`: .run/principals.toml)"
    add = keys_sub.add_parser("add", help="make a key for a new principal; prints the key once, last")
    add.add_argument("name", help="principal name: letters, digits, '.', '_', '-' (e.g. voirie-lille, waze)")
    add.add_argument("--role", required=True, choices=[r.value for r in AuthRole], help="what the key may do")
    add.add_argument(
        "--commune", dest="communes", nargs="+", action="extend", default=[], metavar="INSEE",
        help="roadworks only (and required): INSEE codes of the MEL communes it acts in, e.g. 59350 (Lille)",
    )
    add.add_argument("--file", type=Path, help=file_help)
    listing = keys_sub.add_parser("list", help="names, roles and communes (never keys, never whole hashes)")
    listing.add_argument("--file", type=Path, help=file_help)
    revoke = keys_sub.add_parser("revoke", help="remove a principal: its key gets 401 within seconds")
    revoke.add_argument("name")
    revoke.add_argument("--file", type=Path, help=file_help)


def _keys_file(args: argparse.Namespace) -> Path:
    if args.file is not None:
        return Path(args.file)
    auth_file = Settings().auth_file
    if auth_file is None:
        raise KeysError(
            "which principals file? pass --file PATH or set TRAFFIC_HUB_AUTH_FILE "
            "(the hub started by `make run` uses .run/principals.toml)"
        )
    return auth_file


def _keys(args: argparse.Namespace) -> int:
    try:
        path = _keys_file(args)
        if args.keys_command == "add":
            return _keys_add(path, args)
        if args.keys_command == "revoke":
            revoked = revoke_principal(path, args.name)
            print(f"revoked {revoked.role.value} principal {revoked.name!r} in {path}; "
                  "a running hub answers 401 to its key within seconds")
            return 0
        print(_keys_table(path, read_principals(path)))
        return 0
    except (KeysError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _keys_add(path: Path, args: argparse.Namespace) -> int:
    communes = Communes.load()
    key = new_key()
    principal = make_principal(args.name, AuthRole(args.role), args.communes, key, {c.insee for c in communes})
    add_principal(path, principal)
    where = f" for {_commune_names(principal.communes, communes)}" if principal.communes else ""
    print(f"added {principal.role.value} principal {principal.name!r}{where} to {path}")
    print("a running hub accepts it within seconds; this key is shown only now (only its SHA-256 is stored):")
    print(key)
    return 0


def _commune_names(codes: frozenset[str], communes: Communes) -> str:
    named = [f"{code} {c.name}" if (c := communes.get(code)) else code for code in sorted(codes)]
    return ", ".join(named) if len(named) <= 4 else f"{len(named)} communes ({', '.join(named[:3])}, …)"


def _keys_table(path: Path, principals: list[Principal]) -> str:
    if not principals:
        return f"no principals in {path}"
    communes = Communes.load()
    rows = [("NAME", "ROLE", "KEY SHA-256", "COMMUNES")]
    rows += [
        (p.name, p.role.value, p.key_sha256[:8] + "…", _commune_names(p.communes, communes) if p.communes else "-")
        for p in principals
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [f"{r[0]:{widths[0]}}  {r[1]:{widths[1]}}  {r[2]:{widths[2]}}  {r[3]}".rstrip() for r in rows]
    return "\n".join([f"{path}: {len(principals)} principals", *lines])


def _principals(settings: Settings) -> tuple[Settings, Principals, list[DemoKey]]:
    """The principals to start with, and the settings naming the file the hub then follows."""
    if settings.auth_file is not None:
        return settings, Principals.load(settings.auth_file), []
    if settings.demo:
        communes = {c.insee for c in Communes.load()}
        try:
            path, keys = demo_keys(settings.run_dir, communes)
        except OSError as exc:  # e.g. a read-only working directory in a container
            log.warning("demo keys are not kept across restarts: %s (set TRAFFIC_HUB_RUN_DIR)", exc)
            keys = demo_principals(communes)
            return settings, Principals.of([k.principal for k in keys]), keys
        return settings.model_copy(update={"auth_file": path}), Principals.load(path), keys
    log.warning("no TRAFFIC_HUB_AUTH_FILE and not in demo mode: every request will get 401")
    return settings, Principals.of([]), []


def _print_demo_keys(keys: list[DemoKey], settings: Settings) -> None:
    if not keys:
        return
    lines = [
        "",
        f"Demo principals (kept across restarts in {settings.run_dir / 'demo-keys.toml'}; delete it for new keys).",
        f"More keys: traffic-hub keys add NAME --role partner --file {settings.auth_file}",
    ]
    for k in keys:
        codes = sorted(k.principal.communes)
        communes = f" communes={','.join(codes)}" if len(codes) < 5 else f" communes=all {len(codes)}"
        communes = communes if codes else ""
        lines.append(f"  {k.principal.role.value:10} {k.principal.name:22} key={k.key}{communes}")
    base = settings.public_url
    by_role = {k.principal.role.value: k.key for k in reversed(keys)}  # the first key of each role
    lines += [
        "",
        "Try (these links keep working after a restart):",
        f"  curl -H 'Authorization: Bearer {by_role.get('roadworks', '')}' {base}/api/v1/closures",
        f"  curl '{base}/feeds/waze/cifs.xml?key={by_role.get('partner', '')}'",
        f"  operator map: {base}/map/#key={by_role.get('operator', '')}",
        f"  API docs: {base}/docs",
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
    settings, principals, demo_keys = _principals(settings)
    connectors = _connectors(settings, roles)
    _print_demo_keys(demo_keys, settings)
    app = create_app(settings, principals, roles, demo_keys, connectors, freeze_heap=True)
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
    with queued_logging():  # a log line (one audit line per write) never writes to stderr on the event loop
        uvicorn.Server(config).run()
    return 0


async def _headless(settings: Settings, roles: set[Role], connectors: list[ConnectorConfig]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    shared = Role.CONNECTORS in roles  # `traffic-hub connectors`: sources shared with the other runners
    hub_parts = open_hub(
        settings, Principals.of([]), roles, connectors=connectors, shared_connectors=shared, freeze_heap=True
    )
    async with quiet_start() as quiet, hub_parts as hub:
        quiet.ready_when(lambda: hub.ready)
        log.info("running roles: %s", ", ".join(sorted(r.value for r in roles)))
        await stop.wait()


async def _archive(settings: Settings) -> None:
    """`traffic-hub archiver`: the archiver alone (no road network, no view), until SIGINT/SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with archiver(settings, Topics(settings.topic_prefix)):
        log.info("running roles: archiver")
        await stop.wait()


def _build_network(args: argparse.Namespace) -> int:
    stats = build_network(args.source, args.output, progress=not args.no_progress)
    print(stats)
    return 0


def _fetch_network(args: argparse.Namespace) -> int:
    def say(line: str) -> None:
        print(line, file=sys.stderr)

    http_log = logging.getLogger("httpx2")
    level = http_log.level
    http_log.setLevel(logging.WARNING)  # our own lines say what was fetched
    try:
        fetched = fetch_network(
            args.url, args.output, cache_dir=args.cache_dir, margin_m=args.margin,
            progress=not args.no_progress, say=say,
        )
    except FetchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: run the same command again to resume the download", file=sys.stderr)
        return 130
    finally:
        http_log.setLevel(level)  # the command may run inside another program (tests): leave it as found
    stats = fetched.build
    print(
        f"{stats.out}: {stats.edges} directed edges from {stats.ways} ways, {stats.junctions} nodes, "
        f"{stats.length_km:.1f} km, built in {stats.seconds:.1f} s from {fetched.download.url} "
        f"({'downloaded' if fetched.download.downloaded else 'unchanged, cached'}; "
        f"{fetched.download.checksum}; SHA-256 {fetched.download.sha256})"
    )
    print(f"run the hub on it: TRAFFIC_HUB_NETWORK={stats.out.resolve()}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "network":
        return _fetch_network(args) if args.network_command == "fetch" else _build_network(args)
    if args.command == "keys":
        return _keys(args)
    try:
        settings = Settings()
    except ValueError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    if args.command == "db":
        return db_commands.run(args, settings.database_url)
    try:
        if args.command == "run":
            archive = {Role.ARCHIVER} if settings.database_url else set()
            return _serve(settings, {Role.API, Role.NORMALISER, Role.CONNECTORS, *archive})
        if args.command == "archiver":
            if not settings.database_url:
                print("configuration error: traffic-hub archiver needs TRAFFIC_HUB_DATABASE_URL", file=sys.stderr)
                return 2
            with contextlib.suppress(KeyboardInterrupt):
                asyncio.run(_archive(settings))
            return 0
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
