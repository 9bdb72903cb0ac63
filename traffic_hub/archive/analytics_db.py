"""A read-only connection to the archive for one analytics request, failing fast when PostgreSQL is away.

Why one connection per request and no pool: analytics are a few requests a minute from the control
room and MEL's analysts, each a second of PostgreSQL work at most; opening a connection (a few ms on
loopback) costs nothing next to it, and a pool would hold connections and need health checks in every
API process for nothing. The API must answer fast when the database is down (issue 19): connecting
has `CONNECT_TIMEOUT_S`, each statement `STATEMENT_TIMEOUT_MS`, and any connection problem becomes
`Unavailable` (503 with Retry-After). The session runs in UTC so `date_trunc('hour', …)` cuts UTC hours,
and without JIT: the planner's estimates on these queries turn it on, and compiling cost more than the
query itself (1.05 s of a 1.7 s closure impact report on a year at MEL scale; loadtests/bench_impact.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg

from traffic_hub.errors import Unavailable

CONNECT_TIMEOUT_S = 3
STATEMENT_TIMEOUT_MS = 20_000
RETRY_AFTER_S = 10
WORK_MEM = "32MB"  # a week's jams per segment metropole-wide sums ~180,000 roll-up rows: in memory, not on disk


@asynccontextmanager
async def reading(database_url: str | None) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """A read-only transaction on the archive; `Unavailable` when there is none or it does not answer."""
    if not database_url:
        raise Unavailable("no archive database is configured (TRAFFIC_HUB_DATABASE_URL)", retry_after_s=60)
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_S + 1):
            conn = await psycopg.AsyncConnection.connect(
                database_url, connect_timeout=CONNECT_TIMEOUT_S, application_name="analytics",
                options=f"-c statement_timeout={STATEMENT_TIMEOUT_MS} -c TimeZone=UTC -c jit=off "
                        f"-c work_mem={WORK_MEM} -c default_transaction_read_only=on",
            )
    except (psycopg.OperationalError, OSError, TimeoutError) as exc:
        raise Unavailable("the archive database does not answer; try again later", RETRY_AFTER_S) from exc
    try:
        async with conn:
            yield conn
    except psycopg.errors.UndefinedTable as exc:
        raise Unavailable("the archive is not set up yet (the archiver creates it at start)", RETRY_AFTER_S) from exc
    except psycopg.errors.QueryCanceled as exc:
        raise Unavailable("the archive took too long to answer; narrow the period", RETRY_AFTER_S) from exc
    except (psycopg.OperationalError, OSError) as exc:
        raise Unavailable("the archive database went away; try again later", RETRY_AFTER_S) from exc
