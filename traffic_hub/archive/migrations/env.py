"""Alembic's entry point for the archive: one locked connection, a pre-Alembic database adopted, then the revisions.

Alembic runs this file for every command that touches the database, whoever calls it: the hub at start
(`schema.migrate`), `traffic-hub db …`, or a plain `alembic` pointed at `traffic_hub.archive:migrations`
(docs/migrations.md). So the locking and the adoption live here, once, and every path behaves alike:
- the session-level advisory lock `LOCK_ID` is held from before the version is read until the connection
  closes (no pool: right after the run), so concurrent starts queue and the later ones apply nothing;
- a database with the legacy `schema_version` table and no `alembic_version` is stamped first, under it;
- each revision runs in its own transaction (`transaction_per_migration`), so a failure keeps the ones before.
The database URL comes from the caller (`Config.attributes["database_url"]`), else `sqlalchemy.url` of an
ini file, else `TRAFFIC_HUB_DATABASE_URL`, like the hub. Offline SQL scripts (`--sql`) are not offered:
the revisions execute SQL constants you can read in the modules they name.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from typing import Any

from alembic import context
from alembic.runtime.migration import MigrationContext, MigrationInfo
from sqlalchemy import Connection, text

from traffic_hub.archive.migrations import LOCK_ID, MigrationError, Outcome, adopt_legacy, engine


def _url() -> str:
    config = context.config
    url = (
        config.attributes.get("database_url")
        or config.get_main_option("sqlalchemy.url")
        or os.environ.get("TRAFFIC_HUB_DATABASE_URL")
    )
    if not url:
        raise MigrationError("which database? set TRAFFIC_HUB_DATABASE_URL (a libpq URL: postgresql://…)")
    return str(url)


def _outcome() -> Outcome:
    outcome: Outcome = context.config.attributes.setdefault("outcome", Outcome())
    return outcome


def _record(ctx: MigrationContext, step: MigrationInfo, heads: Collection[Any], run_args: Mapping[str, Any]) -> None:
    """Alembic's hook after each step: what this run applied (or undid), for the caller and the logs."""
    if step.is_stamp or step.up_revision_id is None:
        return
    _outcome().applied.append(step.up_revision_id if step.is_upgrade else f"-{step.up_revision_id}")


def _run(conn: Connection) -> None:
    conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": LOCK_ID})
    conn.commit()  # the lock is the session's: it outlives this transaction, until the connection closes
    context.configure(connection=conn, transaction_per_migration=True, on_version_apply=_record)
    migration = context.get_context()
    outcome = _outcome()
    outcome.adopted = adopt_legacy(migration, context.script)
    with context.begin_transaction():
        context.run_migrations()
    conn.commit()  # what reading the version left open (the revisions' own transactions are closed)
    outcome.revision = migration.get_current_revision()
    conn.commit()


def run() -> None:
    if context.is_offline_mode():
        raise MigrationError(
            "offline SQL scripts (--sql) are not supported: the revisions execute the SQL constants their "
            "modules name (traffic_hub/archive/schema.py, analytics_schema.py, …); run `traffic-hub db upgrade`"
        )
    db = engine(_url())
    try:
        with db.connect() as conn:
            _run(conn)
    finally:
        db.dispose()


run()
