"""The real PostgreSQL + PostGIS for the archive tests: started through ops/postgres/db-local.sh (as
`make db-up`), one fresh database per test so tests and runs never see each other's rows."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from tests.conftest import ROOT
from tests.kafkarun import run_name

DB_SCRIPT = ROOT / "ops" / "postgres" / "db-local.sh"


@pytest.fixture(scope="session")
def database_cluster() -> str:
    """The URL of the local cluster's `traffic_hub` database (`db-up` is idempotent: the last line is the URL)."""
    done = subprocess.run(["bash", str(DB_SCRIPT), "up"], check=True, timeout=300, capture_output=True, text=True)
    return done.stdout.strip().splitlines()[-1]


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture
def database_url(database_cluster: str) -> Iterator[str]:
    """A new, empty database on the cluster for one test, dropped afterwards."""
    name = run_name("archive").replace("-", "_").lower()
    with psycopg.connect(database_cluster, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield with_database(database_cluster, name)
    finally:
        with psycopg.connect(database_cluster, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def count(url: str, query: str, *params: object) -> int:
    """One integer from the archive (0 while the tables do not exist yet)."""
    try:
        with psycopg.connect(url) as conn:
            row = conn.execute(query.encode(), params).fetchone()
    except psycopg.errors.UndefinedTable:
        return 0
    return int(row[0]) if row and row[0] is not None else 0
