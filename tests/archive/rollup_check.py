"""The roll-up against its recomputation from the raw jam reports (every span to its next report or +2 h):
what a correct, exactly-once maintenance leaves, whatever the order and the replays of the records."""

from __future__ import annotations

import psycopg
import pytest

# the roll-up as the raw rows give it (every span to its next report or +2 h), per hour, segment and line
RAW_ROLLUP = """
SELECT h.h, waze_jam_segment(s.street, s.city, s.geom), waze_jam_line(s.geom),
       sum(o.overlap), sum(coalesce(s.delay_s, 0) * o.overlap), sum(coalesce(s.length_m, 0) * o.overlap),
       count(*) FILTER (WHERE h.h = date_trunc('hour', s.received_at, 'UTC'))
FROM (SELECT *, least(coalesce(lead(received_at) OVER w, 'infinity'), received_at + interval '2 hours') AS t1
      FROM waze_observations WHERE kind = 'waze-jam' WINDOW w AS (PARTITION BY key ORDER BY received_at)) s
CROSS JOIN LATERAL generate_series(date_trunc('hour', s.received_at, 'UTC'), s.t1 - interval '1 microsecond',
                                   interval '1 hour') AS h(h)
CROSS JOIN LATERAL (SELECT extract(epoch FROM least(s.t1, h.h + interval '1 hour')
                                          - greatest(s.received_at, h.h))::float8 AS overlap) o
WHERE NOT s.ended AND s.t1 > s.received_at
GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
"""
ROLLED = """
SELECT hour, segment, line, jam_s, delay_ss, length_ms, reports
FROM waze_jam_hours WHERE jam_s > 0.001 ORDER BY 1, 2, 3
"""


def rollup_matches_raw(url: str) -> int:
    """Asserts the roll-up table equals its recomputation from the raw rows; returns its rows."""
    with psycopg.connect(url) as conn:
        raw = conn.execute(RAW_ROLLUP.encode()).fetchall()
        rolled = conn.execute(ROLLED.encode()).fetchall()
    assert [r[:3] for r in rolled] == [r[:3] for r in raw]
    for mine, theirs in zip(rolled, raw, strict=True):  # float sums, added and taken off in another order
        assert mine[3:6] == pytest.approx(theirs[3:6], rel=1e-9, abs=1e-3), mine[:3]
        assert mine[6] == theirs[6], mine[:3]
    return len(rolled)
