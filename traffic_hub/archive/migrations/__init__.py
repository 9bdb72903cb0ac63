"""The archive's schema migrations, run by Alembic: the hub applies them at start, operators with `traffic-hub db`.

Why Alembic rather than the numbered SQL list the archive began with (issue 19): operators get the tool
they know — `current`, `history`, `upgrade`, `downgrade`, `stamp`, a version table other tools read — and
a revision graph that says which change follows which, instead of a home-made `schema_version` table.
The revisions stay raw SQL (PostGIS geometry, month partitions, triggers in PL/pgSQL: nothing an ORM
model would describe), executed through SQLAlchemy's psycopg 3 dialect over the hub's own libpq URL
(`TRAFFIC_HUB_DATABASE_URL`, any form libpq takes), so there is still one database driver.

How a run goes (env.py): one connection takes a session-level advisory lock (`LOCK_ID`, the key the
archiver's partition creation takes too) for the whole run, so processes that start together queue
instead of racing: the first applies the missing revisions, each in its own transaction (PostgreSQL DDL
is transactional: a failed revision leaves the database at the previous one), the others then find it at
head and apply nothing. Alembic is synchronous; the hub calls `upgrade` in a worker thread
(`schema.migrate`), never on the event loop.

A database migrated before Alembic has a `schema_version` table whose max(version) is N: under the same
lock, before anything runs, it is stamped at revision `f"{N:04d}"` (a revision's id is the old version
number) and continues from there; nothing is applied twice. The legacy table is left as it was.
Adding a revision: docs/migrations.md.

Alembic's own INFO lines ("Context impl PostgresqlImpl.", "Will assume transactional DDL.", "Running
upgrade …") are for an operator at `traffic-hub db …` (`verbose=True`). A hub starting logs only its own
line of what a run applied (`schema.migrate`): two Alembic lines at every start were noise to a sysadmin.
Alembic's warnings and errors are always logged.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import psycopg
from alembic import command, op
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.pool import NullPool

LOCK_ID = 190_019  # the archive's advisory lock key: schema changes and partition creation, one process at a time
HERE = Path(__file__).resolve().parent
LEGACY_TABLE = "schema_version"  # the pre-Alembic version table: (version integer, applied_at)
CONNECT_TIMEOUT_S = 5
# Alembic's `context` and `op` are module-level proxies, one per process: two commands running at once in
# two threads (the API's check and the archiver's start in `traffic-hub run`) would tear each other's down.
# So one command at a time per process; between processes, the advisory lock (env.py).
_ONE_AT_A_TIME = threading.Lock()
ALEMBIC_LOG = logging.getLogger("alembic")


class MigrationError(psycopg.OperationalError):
    """The database cannot be brought to this release's schema (e.g. it is newer than the code).

    A psycopg error, like every failure `upgrade` lets out (a database error comes out as psycopg raised it,
    not wrapped by SQLAlchemy): the archiver and the API already treat those as "retry later"."""


@dataclass
class Outcome:
    """What a run found and did; env.py fills it in `Config.attributes["outcome"]`."""

    revision: str | None = None  # the database's revision after the run (None: empty, nothing applied)
    applied: list[str] = field(default_factory=list)  # the revisions this run applied, in order
    adopted: str | None = None  # the revision stamped from the legacy `schema_version` table by this run

    @property
    def number(self) -> int | None:
        """The revision as the schema version number /readyz and the logs show (revision "0003" → 3)."""
        return revision_number(self.revision)


def revision_number(revision: str | None) -> int | None:
    return int(revision) if revision is not None and revision.isdigit() else None


def legacy_revision(version: int) -> str:
    """The Alembic revision of the pre-Alembic schema version `version`."""
    return f"{version:04d}"


def alembic_config(database_url: str | None = None) -> Config:
    """The Alembic configuration, built in code: no alembic.ini, the scripts from the installed package."""
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.attributes["database_url"] = database_url
    config.attributes["outcome"] = Outcome()
    return config


def engine(database_url: str) -> Engine:
    """An engine on the hub's libpq URL as it is (psycopg parses it, so `postgresql://`, `postgres://` and
    `key=value` strings all work); no pool: one connection per run, closed (and its lock released) after."""
    connect = partial(
        psycopg.connect, database_url, connect_timeout=CONNECT_TIMEOUT_S, application_name="traffic-hub-migrations"
    )
    return create_engine("postgresql+psycopg://", creator=connect, poolclass=NullPool)


def execute(statement: str) -> None:
    """Run a revision's SQL as written: several statements, `$$` bodies and `%` (format()) left alone.

    Straight to psycopg without parameters (SQLAlchemy's `text()` would read `:name` as binds and double `%`)."""
    op.get_bind().exec_driver_sql(statement, execution_options={"no_parameters": True})


def irreversible(revision: str, why: str) -> MigrationError:
    """The error for a revision that cannot be undone (set `IRREVERSIBLE = "why"` in its module and raise this
    from its `downgrade()`: `downgrade` then refuses up front, before undoing the revisions above it)."""
    return MigrationError(f"revision {revision} cannot be downgraded: {why}")


def head() -> str | None:
    """The newest revision this release knows."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def upgrade(database_url: str, target: str = "head", *, verbose: bool = False) -> Outcome:
    """Bring the database to `target` (blocking: call it in a thread from async code); `verbose`: with
    Alembic's INFO lines (the operators' command), else only its warnings (a hub starting)."""
    config = alembic_config(database_url)
    with _ONE_AT_A_TIME, _alembic_log(verbose), _psycopg_errors():
        command.upgrade(config, target)
    outcome: Outcome = config.attributes["outcome"]
    return outcome


def downgrade(database_url: str, target: str, *, verbose: bool = False) -> Outcome:
    """Take the database back to `target`, or refuse before undoing anything when a revision on the way
    cannot be undone (its module sets `IRREVERSIBLE` to the reason; its docstring says more)."""
    config = alembic_config(database_url)
    with _ONE_AT_A_TIME, _alembic_log(verbose), _psycopg_errors():
        script = ScriptDirectory.from_config(config)
        revision, legacy = current(database_url)
        start = revision or (legacy_revision(legacy) if legacy is not None else None)
        if start is not None:
            for undone in script.revision_map.iterate_revisions(start, target, select_for_downgrade=True):
                why = getattr(undone.module, "IRREVERSIBLE", None) if isinstance(undone, Script) else None
                if why:
                    raise irreversible(undone.revision, str(why))
        command.downgrade(config, target)
    outcome: Outcome = config.attributes["outcome"]
    return outcome


def legacy_version(conn: Connection) -> int | None:
    """max(version) of the pre-Alembic `schema_version` table, None without one (or an empty one)."""
    if conn.execute(text("SELECT to_regclass(:name)"), {"name": LEGACY_TABLE}).scalar() is None:
        return None
    found = conn.execute(text(f"SELECT max(version) FROM {LEGACY_TABLE}")).scalar()  # noqa: S608 - a constant
    return int(found) if found is not None else None


def current(database_url: str) -> tuple[str | None, int | None]:
    """The database's revision and, for a database not adopted yet, its legacy version (read-only, no lock)."""
    db = engine(database_url)
    with _psycopg_errors(), db.connect() as conn:
        revision = MigrationContext.configure(conn).get_current_revision()
        legacy = legacy_version(conn) if revision is None else None
        conn.rollback()
    db.dispose()
    return revision, legacy


@contextmanager
def _alembic_log(verbose: bool) -> Iterator[None]:
    """Alembic's INFO lines only when `verbose`; the level is put back after (under `_ONE_AT_A_TIME`, so
    two runs in one process never interleave their changes)."""
    if verbose:
        yield
        return
    level = ALEMBIC_LOG.level
    ALEMBIC_LOG.setLevel(max(logging.WARNING, level))
    try:
        yield
    finally:
        ALEMBIC_LOG.setLevel(level)


@contextmanager
def _psycopg_errors() -> Iterator[None]:
    """SQLAlchemy's and Alembic's errors as psycopg ones: the database's own error unwrapped, the rest as
    `MigrationError` (an unknown revision in the database, a revision file that fails, …)."""
    try:
        yield
    except DBAPIError as exc:
        if isinstance(exc.orig, psycopg.Error):
            raise exc.orig from exc
        raise MigrationError(str(exc)) from exc
    except (SQLAlchemyError, CommandError) as exc:
        raise MigrationError(str(exc)) from exc


def adopt_legacy(context: MigrationContext, script: ScriptDirectory) -> str | None:
    """Stamp a pre-Alembic database at the revision of its `schema_version`, in one transaction (the caller
    holds the lock, so two processes never both adopt); returns the revision stamped, None if nothing to do."""
    conn = context.connection
    if conn is None:
        return None
    with conn.begin():
        if context.get_current_revision() is not None:
            return None
        version = legacy_version(conn)
        if version is None:
            return None
        revision = legacy_revision(version)
        if revision not in {r.revision for r in script.walk_revisions()}:
            raise MigrationError(
                f"the database's schema is at version {version} (table {LEGACY_TABLE}), which this release "
                f"does not know (newest: {script.get_current_head()}): run a newer traffic-hub"
            )
        context.stamp(script, revision)
    return revision
