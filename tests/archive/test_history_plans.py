"""The history's stab of the events alive at an instant keeps its GiST index even in a generic plan.

psycopg prepares a statement run five times, and PostgreSQL may then keep a plan made without the
parameters' values: for "alive at T, in (first_at, id) order, first 200" that plan walked the
(first_at, event_id) b-tree from the archive's first day, filtering every span (the day window's p99 of
688 ms at a twentieth of MEL's year). The query (`queries.STAB`) now stabs first; this checks the plan
PostgreSQL makes for it with `plan_cache_mode = force_generic_plan`, on enough spans for the trap to show.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import orjson
import psycopg
import pytest
from psycopg import sql

from traffic_hub.archive import queries, schema

pytestmark = [pytest.mark.db]

SPANS = """
INSERT INTO event_spans (event_id, first_at, last_at, last_topic, last_partition, last_offset, life, type, commune)
SELECT 'e' || n, %(start)s + n * interval '90 seconds', %(start)s + n * interval '90 seconds', 't', 0, n,
       tstzrange(%(start)s + n * interval '90 seconds', %(start)s + n * interval '90 seconds' + interval '40 minutes'),
       'jam', '59350'
FROM generate_series(1, 40000) AS n
"""


def _plan(conn: psycopg.Connection[object], query: sql.Composed) -> str:
    text = query.as_string(conn).replace("%(at)s", "$1").replace("%(limit)s", "$2")
    conn.execute("SET plan_cache_mode = force_generic_plan")
    conn.execute(f"PREPARE stab(timestamptz, integer) AS {text}".encode())
    found = conn.execute(sql.SQL("EXPLAIN (FORMAT JSON) EXECUTE stab({}, 201)").format(
        sql.Literal(datetime.now(UTC) - timedelta(days=30)))).fetchone()
    conn.execute("DEALLOCATE stab")
    assert isinstance(found, tuple)
    return orjson.dumps(found[0]).decode()


def test_the_alive_at_stab_uses_the_gist_index_in_a_generic_plan(database_url: str) -> None:
    async def migrate() -> None:
        async with await psycopg.AsyncConnection.connect(database_url) as conn:
            await schema.migrate(conn)

    asyncio.run(migrate())
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(SPANS.encode(), {"start": datetime.now(UTC) - timedelta(days=60)})
        conn.execute("ANALYZE event_spans")
        alive = sql.SQL("life @> %(at)s::timestamptz")
        trap = _plan(conn, queries.RANGE.format(queries.SPAN_COLUMNS, alive))
        stab = _plan(conn, queries.STAB.format(queries.SPAN_COLUMNS, alive))
    assert "event_spans_first" in trap  # the trap is there: ordered b-tree walk, life filtered row by row
    assert "event_spans_life" in stab
    assert "event_spans_first" not in stab
