"""The archive's Alembic migrations on the real PostgreSQL: a fresh database goes to head, a second run does
nothing, two processes starting together both succeed and each revision is applied once, a database migrated
by the pre-Alembic mechanism (`schema_version`) is stamped and continues without re-running anything, and
the operators' `traffic-hub db` commands. Also the rules that keep adding a revision trivial (ids, chain,
docstrings, shipped in the wheel)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tomllib
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from alembic.script import Script, ScriptDirectory

from tests.conftest import ROOT
from tests.integration.hubs import wait_until
from tests.kafkarun import run_name
from traffic_hub import cli
from traffic_hub.archive import migrations, schema
from traffic_hub.archive.analytics_schema import ANALYTICS_MIGRATION
from traffic_hub.archive.migrations import LOCK_ID, MigrationError
from traffic_hub.archive.store import HistoryDb
from traffic_hub.topics import Topics

ALL = ["0001", "0002", "0003", "0004"]
HEAD = ALL[-1]
# what the pre-Alembic `migrate` applied, version by version, in one transaction with its `schema_version` rows
# one hub's start, in a process of its own: prints the revisions it applied
UPGRADE = (
    "import json, os; from traffic_hub.archive import migrations; "
    "print(json.dumps(migrations.upgrade(os.environ['TRAFFIC_HUB_DATABASE_URL']).applied))"
)
LEGACY = {1: schema.BASE_MIGRATION, 2: schema.HISTORY_MIGRATION, 3: ANALYTICS_MIGRATION}


def scripts() -> list[Script]:
    return list(reversed(list(ScriptDirectory.from_config(migrations.alembic_config()).walk_revisions())))


def one_column(url: str, query: str) -> list[object]:
    with psycopg.connect(url) as conn:
        return [row[0] for row in conn.execute(query.encode()).fetchall()]


def relation(url: str, name: str) -> bool:
    return one_column(url, f"SELECT to_regclass('{name}') IS NOT NULL") == [True]


def legacy_database(url: str, upto: int) -> None:
    """A database as the pre-Alembic code left it at version `upto`, with one archived offset."""
    with psycopg.connect(url) as conn, conn.transaction():
        conn.execute("CREATE TABLE schema_version (version integer PRIMARY KEY, applied_at timestamptz NOT NULL)")
        for version in range(1, upto + 1):
            conn.execute(LEGACY[version].encode())
            conn.execute("INSERT INTO schema_version VALUES (%s, now())", (version,))
        conn.execute("INSERT INTO archive_offsets (topic, partition, next_offset) VALUES ('t.events', 0, 42)")


# --- the revisions themselves (no database) ---------------------------------------------------------


def test_revisions_are_numbered_in_one_chain_each_saying_why_and_how_to_undo() -> None:
    """Revision N is "000N" and follows N-1 (so a legacy schema_version N maps to it); each module says why
    it exists and what its downgrade does."""
    found = scripts()
    assert [s.revision for s in found][: len(ALL)] == ALL
    for number, script in enumerate(found, start=1):
        assert script.revision == migrations.legacy_revision(number)
        assert script.down_revision == (migrations.legacy_revision(number - 1) if number > 1 else None)
        doc = script.module.__doc__ or ""
        assert "Why:" in doc, f"{script.path}: the docstring says why the revision exists"
        assert "Downgrade:" in doc, f"{script.path}: the docstring says what its downgrade does"
    assert migrations.head() == found[-1].revision
    assert migrations.revision_number(migrations.head()) == len(found)


def test_the_wheel_ships_the_migrations() -> None:
    """The Docker image and a pip-installed hub migrate too: env.py and the revisions are in packages the
    build finds, and the revision template is package data."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert setuptools["packages"]["find"]["include"][0] == "traffic_hub*"
    for package in (migrations.HERE, migrations.HERE / "versions"):  # regular packages: found by the build
        assert (package / "__init__.py").is_file()
    assert (migrations.HERE / "env.py").is_file()
    assert "**/*.mako" in setuptools["package-data"]["*"]


# --- against the database -------------------------------------------------------------------------

pytestmark_db = pytest.mark.db


@pytestmark_db
def test_a_fresh_database_goes_to_head_and_a_second_run_applies_nothing(database_url: str) -> None:
    first = migrations.upgrade(database_url)
    assert (first.applied, first.revision, first.adopted, first.number) == (ALL, HEAD, None, 4)
    assert one_column(database_url, "SELECT version_num FROM alembic_version") == [HEAD]
    for table in ("archive_offsets", "event_versions", "reports", "event_spans", "waze_observations"):
        assert relation(database_url, table), table
    assert not relation(database_url, "schema_version")  # the legacy table is not created any more
    again = migrations.upgrade(database_url)
    assert (again.applied, again.revision) == ([], HEAD)


@pytestmark_db
def test_two_processes_starting_together_both_succeed_and_each_revision_is_applied_once(database_url: str) -> None:
    """Two processes (two hubs starting at once) are held at the advisory lock, then released together:
    one applies every revision, the other waits for it and finds head."""
    waiting = (
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND objid = %s "
        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )
    env = {**os.environ, "TRAFFIC_HUB_DATABASE_URL": database_url}
    with psycopg.connect(database_url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (LOCK_ID,))
        runs = [
            subprocess.Popen([sys.executable, "-c", UPGRADE], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
            for _ in range(2)
        ]
        try:
            wait_until(lambda: holder.execute(waiting, (LOCK_ID,)).fetchone() == (2,), timeout=120, interval=0.1)
        finally:
            holder.execute("SELECT pg_advisory_unlock(%s)", (LOCK_ID,))
        outputs = [run.communicate(timeout=120)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0]
    assert sorted(json.loads(out.splitlines()[-1]) for out in outputs) == [[], ALL]
    assert one_column(database_url, "SELECT version_num FROM alembic_version") == [HEAD]


@pytestmark_db
def test_two_starts_in_one_process_both_succeed_and_each_revision_is_applied_once(database_url: str) -> None:
    """`traffic-hub run`: the API's first check and the archiver's start migrate at the same time, in two
    threads (Alembic's proxies are per process: the runs take turns)."""
    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(migrations.upgrade, [database_url, database_url]))
    assert sorted(o.applied for o in outcomes) == [[], ALL]
    assert [o.revision for o in outcomes] == [HEAD, HEAD]


@pytestmark_db
@pytest.mark.parametrize(("legacy", "applied"), [(3, ["0004"]), (1, ["0002", "0003", "0004"])])
def test_a_database_migrated_before_alembic_is_stamped_and_continues(
    database_url: str, legacy: int, applied: list[str]
) -> None:
    legacy_database(database_url, legacy)
    outcome = migrations.upgrade(database_url)
    assert (outcome.adopted, outcome.applied, outcome.revision) == (migrations.legacy_revision(legacy), applied, HEAD)
    assert one_column(database_url, "SELECT version_num FROM alembic_version") == [HEAD]
    assert one_column(database_url, "SELECT version FROM schema_version ORDER BY 1") == list(range(1, legacy + 1))
    assert one_column(database_url, "SELECT next_offset FROM archive_offsets") == [42]
    assert migrations.upgrade(database_url).applied == []


@pytestmark_db
@pytest.mark.kafka
async def test_the_api_started_on_a_pre_alembic_database_adopts_it_and_shows_the_version(
    database_url: str, kafka_bootstrap: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The start path itself (the API's first contact, as the archiver's): nothing re-runs, only the revisions
    after the legacy version apply, /readyz says the head."""
    legacy_database(database_url, 3)
    history = HistoryDb(database_url, kafka_bootstrap, Topics(run_name("schema")), run_name("schema"), partitions=1)
    await history.before_start()
    try:
        with caplog.at_level(logging.INFO):
            await history.check()
    finally:
        await history.after_stop()
    status = history.status()
    assert (status["database"], status["schema_version"]) == ("up", 4)
    assert one_column(database_url, "SELECT version_num FROM alembic_version") == [HEAD]
    said = [r.getMessage() for r in caplog.records if r.name == "traffic_hub.archive.schema"]
    assert said == [
        "archive schema: the pre-Alembic version table says 3: stamped as revision 0003",
        "archive schema: applied 0004; now at revision 0004",
    ]
    assert [r.getMessage() for r in caplog.records if r.name.startswith("alembic")] == []  # its own lines: below


@pytestmark_db
async def test_a_start_logs_only_the_hubs_own_lines_and_a_clean_start_none(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Alembic said "Context impl PostgresqlImpl." and "Will assume transactional DDL." at every start; the
    hub's own line says what a run applied, and a start with nothing to apply says nothing."""
    with caplog.at_level(logging.INFO):
        assert await schema.migrate(database_url) == 4
    assert [(r.name, r.getMessage()) for r in caplog.records] == [
        ("traffic_hub.archive.schema", "archive schema: applied 0001, 0002, 0003, 0004; now at revision 0004")
    ]
    caplog.clear()
    with caplog.at_level(logging.INFO):
        assert await schema.migrate(database_url) == 4  # a clean start
    assert caplog.records == []
    assert migrations.ALEMBIC_LOG.level == logging.NOTSET  # left as found: the CLI shows Alembic's lines


@pytestmark_db
async def test_the_archiver_path_migrates_through_an_open_connection(database_url: str) -> None:
    """`schema.migrate(conn)` (the archiver, the benches) reaches the same database on a connection of its own."""
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        assert await schema.migrate(conn) == 4
        assert await schema.migrate(conn) == 4
        cur = await conn.execute("SELECT version_num FROM alembic_version")
        assert await cur.fetchall() == [(HEAD,)]


@pytestmark_db
def test_a_schema_version_this_release_does_not_know_is_refused_untouched(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE schema_version (version integer PRIMARY KEY, applied_at timestamptz NOT NULL)")
        conn.execute("INSERT INTO schema_version VALUES (99, now())")
    with pytest.raises(MigrationError, match="version 99"):
        migrations.upgrade(database_url)
    assert not relation(database_url, "archive_offsets")
    assert not relation(database_url, "alembic_version")


@pytestmark_db
def test_a_database_newer_than_this_release_is_refused(database_url: str) -> None:
    migrations.upgrade(database_url)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0099'")
    with pytest.raises(MigrationError, match="0099"):
        migrations.upgrade(database_url)


@pytestmark_db
def test_downgrades_undo_the_derived_tables_and_refuse_to_drop_the_archive(database_url: str) -> None:
    migrations.upgrade(database_url)
    with pytest.raises(MigrationError, match="0001 cannot be downgraded"):
        migrations.downgrade(database_url, "base")
    assert one_column(database_url, "SELECT version_num FROM alembic_version") == [HEAD]  # refused up front
    down = migrations.downgrade(database_url, "0001")
    assert (down.applied, down.revision) == (["-0004", "-0003", "-0002"], "0001")
    assert not relation(database_url, "event_spans")
    assert not relation(database_url, "waze_observations")
    assert migrations.upgrade(database_url).applied == ["0002", "0003", "0004"]


@pytestmark_db
def test_the_db_commands(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("TRAFFIC_HUB_DATABASE_URL", database_url)
    assert cli.main(["db", "current", "--check"]) == 1
    assert "empty (no revision)" in capsys.readouterr().out
    with caplog.at_level(logging.INFO):
        assert cli.main(["db", "upgrade"]) == 0
    alembic = [r.getMessage() for r in caplog.records if r.name.startswith("alembic")]
    assert "Will assume transactional DDL." in alembic  # an operator at the command sees Alembic's lines
    assert any(m.startswith("Running upgrade 0003 -> 0004") for m in alembic)
    out = capsys.readouterr().out
    assert "applied 0001, 0002, 0003, 0004; now at revision 0004" in out
    assert "postgres:" not in out.split(":", 1)[0]  # where, never the password
    assert cli.main(["db", "current", "--check"]) == 0
    assert "revision 0004 (head)" in capsys.readouterr().out
    assert cli.main(["db", "history"]) == 0
    assert "0003 -> 0004 (head)" in capsys.readouterr().out
    monkeypatch.setenv("TRAFFIC_HUB_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    assert cli.main(["db", "upgrade"]) == 1
    assert "127.0.0.1:1/none" in capsys.readouterr().err
