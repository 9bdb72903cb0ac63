"""`traffic-hub db …`: the operators' handle on the archive's schema (Alembic), without an alembic.ini.

The hub upgrades the schema itself at start; these commands are for the rest of a sysadmin's day: see
where a database stands before a deployment (`current`, `--check` for a pipeline), upgrade ahead of a
rolling restart so no replica waits on the lock (`upgrade`), list the revisions (`history`), go back
before deploying an older release (`downgrade`). They use `TRAFFIC_HUB_DATABASE_URL`, like the hub (never
a URL on the command line, where `ps` would show its password), and the same lock as the hub, so running
one while hubs start is safe.
"""

from __future__ import annotations

import argparse
import sys

import psycopg
from alembic import command
from psycopg.conninfo import conninfo_to_dict

from traffic_hub.archive import migrations


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    db = sub.add_parser(
        "db",
        help="the history archive's schema (Alembic): current, upgrade, history, downgrade",
        description="The archive's schema migrations (Alembic revisions shipped in the package). The hub applies "
        "them at start; these commands read TRAFFIC_HUB_DATABASE_URL and take the same lock as the hub.",
    )
    db_sub = db.add_subparsers(dest="db_command", required=True)
    current = db_sub.add_parser("current", help="the database's revision, and whether it is this release's head")
    current.add_argument("--check", action="store_true", help="exit 1 unless the database is at this release's head")
    upgrade = db_sub.add_parser("upgrade", help="apply the missing revisions (what the hub does at start)")
    upgrade.add_argument("revision", nargs="?", default="head", help="target revision (default: head)")
    db_sub.add_parser("history", help="the revisions this release knows, newest first (no database needed)")
    downgrade = db_sub.add_parser(
        "downgrade",
        help="undo revisions down to REVISION, before deploying an older release (a hub of this release "
        "upgrades again at start); each revision's docstring says whether it can be undone",
    )
    downgrade.add_argument("revision", help="the revision to go back to, e.g. 0002, or -1")


def run(args: argparse.Namespace, database_url: str | None) -> int:
    if args.db_command == "history":
        config = migrations.alembic_config()
        config.stdout = sys.stdout  # Alembic's default is the stdout of import time
        command.history(config, verbose=False)
        return 0
    if not database_url:
        print("configuration error: traffic-hub db needs TRAFFIC_HUB_DATABASE_URL", file=sys.stderr)
        return 2
    try:
        if args.db_command == "current":
            return _current(database_url, check=args.check)
        if args.db_command == "upgrade":  # with Alembic's own lines: an operator is watching
            outcome = migrations.upgrade(database_url, args.revision, verbose=True)
        else:
            outcome = migrations.downgrade(database_url, args.revision, verbose=True)
    except psycopg.Error as exc:
        print(f"error ({where(database_url)}): {exc}", file=sys.stderr)
        return 1
    print(_outcome_line(outcome, database_url))
    return 0


def where(database_url: str) -> str:
    """The database a URL names, without its password: host:port/dbname."""
    try:
        parts = conninfo_to_dict(database_url)
    except psycopg.ProgrammingError:
        return "an unreadable TRAFFIC_HUB_DATABASE_URL"
    return f"{parts.get('host', 'localhost')}:{parts.get('port', 5432)}/{parts.get('dbname', '')}"


def _outcome_line(outcome: migrations.Outcome, database_url: str) -> str:
    done = f"applied {', '.join(outcome.applied)}" if outcome.applied else "nothing to apply"
    adopted = f"; adopted the pre-Alembic schema version {int(outcome.adopted)}" if outcome.adopted else ""
    return f"{where(database_url)}: {done}{adopted}; now at revision {outcome.revision or 'none (empty)'}"


def _current(database_url: str, *, check: bool) -> int:
    revision, legacy = migrations.current(database_url)
    head = migrations.head()
    if revision is not None:
        state = "(head)" if revision == head else f"(this release's head is {head}: `traffic-hub db upgrade`)"
        print(f"{where(database_url)}: revision {revision} {state}")
    elif legacy is not None:
        print(f"{where(database_url)}: no Alembic revision yet, pre-Alembic schema version {legacy} (table "
              f"{migrations.LEGACY_TABLE}): the next upgrade stamps it {migrations.legacy_revision(legacy)} "
              f"and goes on to {head}")
    else:
        print(f"{where(database_url)}: empty (no revision); the next upgrade applies every revision up to {head}")
    return 1 if check and revision != head else 0
