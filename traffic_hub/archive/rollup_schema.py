"""The Waze jams' hourly roll-up: per UTC hour, road segment and jam line, the jam time, delay, length and level.

Why: the jams per segment of a week and a closure's impact re-derived every jam's state from the raw
reports (a window over millions of rows, `analytics.JAM_SPANS`): > 20 s for a week metropole-wide,
~2 s for an impact report on a year at MEL scale (loadtests/bench_impact.py). The roll-up holds the
same sums, already cut into hours, so the queries read a few hundred rows per hour.

What a row holds, per hour, segment (street|city|heading, `waze_jam_segment`, the same expression as
`analytics.SEGMENT`) and line (md5 of the jam's geometry; the geometry itself once in
`waze_jam_lines`, with a GiST index, so the impact query still selects the jams *within the radius* of a
closure, exactly as the raw query does): `jam_s` seconds of jam, `delay_ss` delay × seconds, `length_ms`
metres × seconds, `level_ss` jam level × seconds (time integrals: divided by 3600 they are the hour's
time averages) and `reports` (jam reports received in the hour).

How it stays exact and exactly once: a jam report's state holds until the next report of the same key,
at most `STALE_SQL` (2 h, `analytics.STALE`). A row trigger on `waze_observations` (itself filled by a
trigger on `reports`, in the archiver's transaction with the consumed offsets) adds the new report's span
[t, min(next, t + 2 h)) and takes off the part of the previous report's span that the new one now cuts
([t, min(next, previous + 2 h))): in order or late, the sums equal what the window over the raw rows gives
for every complete hour. A replayed record is not inserted (ON CONFLICT DO NOTHING) so nothing fires twice;
two archivers overlapping at a rebalance take the archive's advisory lock before touching a jam's spans.
The span of the last report of a jam runs to +2 h: the raw query cuts it at *now*, so the queries read the
roll-up for complete hours only and the raw rows for the current hour (`analytics.hours_sql`).

Partitioned by month of the hour like the other tables (the trigger creates the month's partition when it
first needs it, like `waze_partition`), and dropped with them by the retention (`schema.PARTITIONED`).
The migration back-fills the roll-up from the observations archived before it.
"""

from __future__ import annotations

ROLLUP_VERSION = 4  # after the analytics migration (3)
STALE_SQL = "interval '2 hours'"  # = analytics.STALE (tests/archive/test_rollup.py checks they agree)
NO_LINE = "00000000-0000-0000-0000-000000000000"  # a jam without a geometry: never near anything

MIGRATION_DDL = f"""
CREATE TABLE waze_jam_hours (
    hour timestamptz NOT NULL,
    segment text NOT NULL,
    line uuid NOT NULL,
    city text,
    jam_s double precision NOT NULL DEFAULT 0,
    delay_ss double precision NOT NULL DEFAULT 0,
    length_ms double precision NOT NULL DEFAULT 0,
    level_ss double precision NOT NULL DEFAULT 0,
    reports integer NOT NULL DEFAULT 0,
    PRIMARY KEY (hour, segment, line)
) PARTITION BY RANGE (hour);
CREATE INDEX waze_jam_hours_line ON waze_jam_hours (line, hour);
CREATE INDEX waze_jam_hours_segment ON waze_jam_hours (segment, hour);

CREATE TABLE waze_jam_lines (
    line uuid PRIMARY KEY,
    geom geometry(Geometry, 4326) NOT NULL
);
CREATE INDEX waze_jam_lines_geom ON waze_jam_lines USING gist (geom);

CREATE FUNCTION waze_jam_segment(street text, city text, geom geometry) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(street, '') || '|' || coalesce(city, '') || '|' || CASE
        WHEN geom IS NULL OR GeometryType(geom) <> 'LINESTRING' OR ST_NPoints(geom) < 2
             OR ST_Equals(ST_StartPoint(geom), ST_EndPoint(geom)) THEN '?'
        ELSE (ARRAY['N','NE','E','SE','S','SW','W','NW'])[
            (floor((degrees(ST_Azimuth(ST_StartPoint(geom), ST_EndPoint(geom))) + 22.5) / 45)::int % 8) + 1] END
$$;

CREATE FUNCTION waze_jam_line(geom geometry) RETURNS uuid LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN geom IS NULL THEN '{NO_LINE}'::uuid ELSE md5(ST_AsEWKB(geom))::uuid END
$$;

CREATE FUNCTION waze_jam_hours_partition(at timestamptz) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    start timestamptz := date_trunc('month', at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    name text := 'waze_jam_hours_p' || to_char(start AT TIME ZONE 'UTC', 'YYYYMM');
BEGIN
    IF to_regclass(name) IS NULL THEN
        PERFORM pg_advisory_xact_lock(190019);
        EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF waze_jam_hours FOR VALUES FROM (%L) TO (%L)',
                       name, start, start + interval '1 month');
    END IF;
END
$$;

-- adds (sign 1) or takes off (sign -1) a jam state held over [t0, t1), cut into UTC hours
CREATE FUNCTION waze_jam_add(a_segment text, a_line uuid, a_city text, a_t0 timestamptz, a_t1 timestamptz,
                             a_delay real, a_length real, a_level real, a_sign integer, a_reported boolean)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_hour timestamptz;
    v_overlap double precision;
    v_first boolean := true;
BEGIN
    IF a_t1 <= a_t0 THEN
        RETURN;
    END IF;
    FOR v_hour IN SELECT generate_series(date_trunc('hour', a_t0, 'UTC'), a_t1 - interval '1 microsecond',
                                         interval '1 hour') LOOP
        v_overlap := a_sign * extract(epoch FROM least(a_t1, v_hour + interval '1 hour') - greatest(a_t0, v_hour));
        PERFORM waze_jam_hours_partition(v_hour);
        INSERT INTO waze_jam_hours AS r (hour, segment, line, city, jam_s, delay_ss, length_ms, level_ss, reports)
        VALUES (v_hour, a_segment, a_line, a_city, v_overlap, coalesce(a_delay, 0) * v_overlap,
                coalesce(a_length, 0) * v_overlap, coalesce(a_level, 0) * v_overlap,
                CASE WHEN v_first AND a_reported THEN 1 ELSE 0 END)
        ON CONFLICT (hour, segment, line) DO UPDATE SET
            jam_s = r.jam_s + EXCLUDED.jam_s, delay_ss = r.delay_ss + EXCLUDED.delay_ss,
            length_ms = r.length_ms + EXCLUDED.length_ms, level_ss = r.level_ss + EXCLUDED.level_ss,
            reports = r.reports + EXCLUDED.reports;
        v_first := false;
    END LOOP;
END
$$;

CREATE FUNCTION waze_jam_rollup() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_prev waze_observations%ROWTYPE;
    v_next timestamptz;
    v_stale interval := {STALE_SQL};
    v_line uuid := waze_jam_line(NEW.geom);
BEGIN
    IF NEW.kind <> 'waze-jam' THEN
        RETURN NULL;
    END IF;
    -- the archive's lock (schema.LOCK_ID): two archivers overlapping at a rebalance write jams one after the
    -- other, so each sees the other's reports of the same jam (one lock for all: no deadlock with partitions)
    PERFORM pg_advisory_xact_lock(190019);
    SELECT o.received_at INTO v_next FROM waze_observations o
     WHERE o.key = NEW.key AND o.kind = 'waze-jam' AND o.received_at > NEW.received_at
       AND o.received_at < NEW.received_at + v_stale
     ORDER BY o.received_at LIMIT 1;
    SELECT * INTO v_prev FROM waze_observations o
     WHERE o.key = NEW.key AND o.kind = 'waze-jam' AND o.received_at < NEW.received_at
       AND o.received_at > NEW.received_at - v_stale
     ORDER BY o.received_at DESC LIMIT 1;
    IF FOUND AND NOT v_prev.ended THEN  -- the previous state now ends at NEW (it ran to the next one or +2 h)
        PERFORM waze_jam_add(waze_jam_segment(v_prev.street, v_prev.city, v_prev.geom), waze_jam_line(v_prev.geom),
                             v_prev.city, NEW.received_at,
                             least(coalesce(v_next, 'infinity'), v_prev.received_at + v_stale),
                             v_prev.delay_s, v_prev.length_m, v_prev.level, -1, false);
    END IF;
    IF NOT NEW.ended THEN
        IF NEW.geom IS NOT NULL THEN
            INSERT INTO waze_jam_lines VALUES (v_line, NEW.geom) ON CONFLICT DO NOTHING;
        END IF;
        PERFORM waze_jam_add(waze_jam_segment(NEW.street, NEW.city, NEW.geom), v_line, NEW.city, NEW.received_at,
                             least(coalesce(v_next, 'infinity'), NEW.received_at + v_stale),
                             NEW.delay_s, NEW.length_m, NEW.level, 1, true);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER waze_observations_rollup AFTER INSERT ON waze_observations
    FOR EACH ROW EXECUTE FUNCTION waze_jam_rollup();
"""  # noqa: S608 - constants only

# the observations archived before the roll-up: the same spans, by the raw rows' window, in one statement each.
# `{where}` picks the observations (all of them in the migration; a month at a time in the bench's load,
# whose jams never span a month): their spans' hours are added to what is there.
BACKFILL = f"""
CREATE TEMP TABLE rollup_spans ON COMMIT DROP AS
SELECT waze_jam_segment(street, city, geom) AS segment, waze_jam_line(geom) AS line, city, geom,
       received_at AS t0,
       least(coalesce(lead(received_at) OVER w, 'infinity'), received_at + {STALE_SQL}) AS t1,
       ended, coalesce(delay_s, 0) AS delay_s, coalesce(length_m, 0) AS length_m, coalesce(level, 0) AS level
FROM waze_observations WHERE kind = 'waze-jam' AND ({{where}})
WINDOW w AS (PARTITION BY key ORDER BY received_at);
INSERT INTO waze_jam_lines SELECT DISTINCT ON (line) line, geom FROM rollup_spans
WHERE NOT ended AND geom IS NOT NULL ON CONFLICT DO NOTHING;
SELECT waze_jam_hours_partition(m) FROM (
    SELECT DISTINCT date_trunc('month', h.h, 'UTC') AS m FROM rollup_spans s
    CROSS JOIN LATERAL generate_series(date_trunc('hour', s.t0, 'UTC'), s.t1 - interval '1 microsecond',
                                       interval '1 hour') AS h(h)
    WHERE NOT s.ended AND s.t1 > s.t0
) months;
INSERT INTO waze_jam_hours (hour, segment, line, city, jam_s, delay_ss, length_ms, level_ss, reports)
SELECT h.h, s.segment, s.line, min(s.city), sum(o.overlap), sum(s.delay_s * o.overlap),
       sum(s.length_m * o.overlap), sum(s.level * o.overlap),
       count(*) FILTER (WHERE h.h = date_trunc('hour', s.t0, 'UTC'))
FROM rollup_spans s
CROSS JOIN LATERAL generate_series(date_trunc('hour', s.t0, 'UTC'), s.t1 - interval '1 microsecond',
                                   interval '1 hour') AS h(h)
CROSS JOIN LATERAL (SELECT extract(epoch FROM least(s.t1, h.h + interval '1 hour') - greatest(s.t0, h.h))::float8
                    AS overlap) o
WHERE NOT s.ended AND s.t1 > s.t0
GROUP BY h.h, s.segment, s.line
ON CONFLICT (hour, segment, line) DO UPDATE SET
    jam_s = waze_jam_hours.jam_s + EXCLUDED.jam_s, delay_ss = waze_jam_hours.delay_ss + EXCLUDED.delay_ss,
    length_ms = waze_jam_hours.length_ms + EXCLUDED.length_ms,
    level_ss = waze_jam_hours.level_ss + EXCLUDED.level_ss, reports = waze_jam_hours.reports + EXCLUDED.reports;
"""  # noqa: S608 - constants only


def backfill_sql(where: str = "true") -> str:
    """The back-fill for the observations `where` picks (SQL text, constants only)."""
    return BACKFILL.replace("{where}", where)


ROLLUP_MIGRATION = MIGRATION_DDL + backfill_sql()
