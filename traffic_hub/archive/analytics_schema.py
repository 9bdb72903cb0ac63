"""The analytics' own table: every Waze alert, jam and irregularity report, with its numbers and PostGIS line.

Why a table fed by a trigger rather than queries on `reports`: the closure impact and the reality check
ask "which Waze jams lay within 300 m of this closure in these hours", which needs a spatial index on
the jam's geometry; `reports` keeps the JSON only. A row trigger on `reports` fills `waze_observations`
in the archiver's own transaction, so the exactly-once of the archive holds for it too (a replayed
report is not inserted, so the trigger does not fire) and the archiver's code does not change. The
migration back-fills the rows archived before it. Rows are partitioned by month like `reports` (the
trigger creates the month's partition when it first needs it) so the retention drops them alike.

A Waze item is re-sent only when it changes and gets an `ended` report when it leaves the snapshot
(connectors/runner.py), so a jam's state holds from one report until the next one of the same key:
the queries (`analytics.py`) turn reports into intervals with `lead()`.
"""

from __future__ import annotations

ANALYTICS_VERSION = 3  # after the history migration (2)

ANALYTICS_MIGRATION = """
CREATE TABLE waze_observations (
    topic text NOT NULL,
    partition integer NOT NULL,
    "offset" bigint NOT NULL,
    received_at timestamptz NOT NULL,
    key text NOT NULL,
    kind text NOT NULL,
    source text,
    source_id text,
    ended boolean NOT NULL DEFAULT false,
    waze_type text,
    subtype text,
    street text,
    city text,
    level real,
    delay_s real,
    length_m real,
    speed_kmh real,
    geom geometry(Geometry, 4326),
    PRIMARY KEY (topic, partition, "offset", received_at)
) PARTITION BY RANGE (received_at);
CREATE INDEX waze_observations_time ON waze_observations (kind, received_at);
CREATE INDEX waze_observations_key ON waze_observations (key, received_at);
CREATE INDEX waze_observations_geom ON waze_observations USING gist (geom);

CREATE FUNCTION waze_number(value jsonb) RETURNS real LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN jsonb_typeof(value) = 'number' THEN value::text::real END
$$;

CREATE FUNCTION waze_partition(at timestamptz) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    start timestamptz := date_trunc('month', at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    name text := 'waze_observations_p' || to_char(start AT TIME ZONE 'UTC', 'YYYYMM');
BEGIN
    IF to_regclass(name) IS NULL THEN
        PERFORM pg_advisory_xact_lock(190019);
        EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF waze_observations FOR VALUES FROM (%L) TO (%L)',
                       name, start, start + interval '1 month');
    END IF;
END
$$;

CREATE FUNCTION waze_observation() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    incident jsonb := NEW.payload -> 'incident';
    said jsonb := coalesce(NEW.payload -> 'incident' -> 'said', '{}'::jsonb);
    shape geometry;
BEGIN
    IF NEW.kind IS DISTINCT FROM 'incident' OR incident IS NULL
       OR coalesce(incident ->> 'kind', '') NOT IN ('waze-jam', 'waze-alert', 'waze-irregularity') THEN
        RETURN NULL;
    END IF;
    BEGIN
        shape := ST_SetSRID(ST_GeomFromGeoJSON(incident -> 'geometry'), 4326);
    EXCEPTION WHEN others THEN
        shape := NULL;  -- a geometry PostGIS refuses: the numbers are still worth keeping
    END;
    PERFORM waze_partition(NEW.received_at);
    INSERT INTO waze_observations VALUES (
        NEW.topic, NEW.partition, NEW."offset", NEW.received_at, coalesce(NEW.key, ''), incident ->> 'kind',
        incident ->> 'source', incident ->> 'source_id', coalesce((incident ->> 'ended')::boolean, false),
        said ->> 'type', incident ->> 'subtype', incident ->> 'street', incident ->> 'city',
        coalesce(waze_number(said -> 'level'), waze_number(said -> 'jamLevel')),
        coalesce(waze_number(said -> 'delay'), waze_number(said -> 'delaySeconds')),
        waze_number(said -> 'length'),
        coalesce(waze_number(said -> 'speedKMH'), waze_number(said -> 'speed')),
        shape
    ) ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;

CREATE TRIGGER reports_waze AFTER INSERT ON reports FOR EACH ROW EXECUTE FUNCTION waze_observation();

-- the reports archived before this migration
SELECT waze_partition(m) FROM (
    SELECT DISTINCT date_trunc('month', received_at) AS m FROM reports
    WHERE kind = 'incident' AND payload -> 'incident' ->> 'kind' LIKE 'waze-%'
) months;
INSERT INTO waze_observations
SELECT topic, partition, "offset", received_at, coalesce(key, ''), payload -> 'incident' ->> 'kind',
       payload -> 'incident' ->> 'source', payload -> 'incident' ->> 'source_id',
       coalesce((payload -> 'incident' ->> 'ended')::boolean, false),
       payload -> 'incident' -> 'said' ->> 'type', payload -> 'incident' ->> 'subtype',
       payload -> 'incident' ->> 'street', payload -> 'incident' ->> 'city',
       coalesce(waze_number(payload -> 'incident' -> 'said' -> 'level'),
                waze_number(payload -> 'incident' -> 'said' -> 'jamLevel')),
       coalesce(waze_number(payload -> 'incident' -> 'said' -> 'delay'),
                waze_number(payload -> 'incident' -> 'said' -> 'delaySeconds')),
       waze_number(payload -> 'incident' -> 'said' -> 'length'),
       coalesce(waze_number(payload -> 'incident' -> 'said' -> 'speedKMH'),
                waze_number(payload -> 'incident' -> 'said' -> 'speed')),
       CASE WHEN payload -> 'incident' -> 'geometry' ? 'coordinates'
            THEN ST_SetSRID(ST_GeomFromGeoJSON(payload -> 'incident' -> 'geometry'), 4326) END
FROM reports
WHERE kind = 'incident' AND payload -> 'incident' ->> 'kind' IN ('waze-jam', 'waze-alert', 'waze-irregularity')
ON CONFLICT DO NOTHING;

-- closures and incidents are looked up by type and validity
CREATE INDEX event_versions_type_start ON event_versions (type, starts_at);
"""
