"""The open-data history files: a day's ended events, public, under the live open feed's rules (no Waze-only
event, no Waze in `sources`, no cancelled closure), as GeoJSON, CSV and GeoParquet, plus their index."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import pyarrow.parquet as pq
import pytest
import shapely

from tests.archive.history_data import days_ago, event_doc, insert
from tests.integration.hubs import KEYS, running_hub, settings_for, wait_until, write_principals
from traffic_hub.runtime import Role

pytestmark = [pytest.mark.kafka, pytest.mark.db]

TOPIC = "hist.events"


def _archive_yesterday(url: str) -> str:
    """Four events that ended two days ago (Paris), each with its story; returns that day as YYYY-MM-DD."""
    t0 = days_ago(3)
    ended = days_ago(2)
    road = [("roadworks:voirie-lille", "closure")]
    waze = [("waze-mel", "waze-alert")]
    # a closure whose validity ended two days ago
    insert(url, TOPIC, t0, event_doc("closure-done", 1, sources=road, starts=t0, ends=ended), "closure-done")
    # a Waze-only accident, ended by its source: never public
    insert(url, TOPIC, t0, event_doc("waze-only", 1, sources=waze, starts=t0, ends=None, type="accident"), "waze-only")
    insert(url, TOPIC, ended, event_doc("waze-only", 2, sources=waze, starts=t0, ends=None, type="accident",
                                        lifecycle="ended"), "waze-only")
    # an accident seen by Waze and the police feed, ended: public, without Waze in its sources
    both = [*waze, ("police-59", "datex2-record")]
    insert(url, TOPIC, t0, event_doc("mixed", 1, sources=both, starts=t0, ends=None, type="accident"), "mixed")
    insert(url, TOPIC, ended, event_doc("mixed", 2, sources=both, starts=t0, ends=None, type="accident",
                                        lifecycle="ended", description="=HYPERLINK(x)"), "mixed")
    # a closure cancelled (deleted) two days ago: it did not happen as published
    insert(url, TOPIC, t0, event_doc("cancelled", 1, sources=road, starts=t0 + timedelta(days=2),
                                     ends=t0 + timedelta(days=9)), "cancelled")
    insert(url, TOPIC, ended, event_doc("cancelled", 2, sources=road, starts=t0 + timedelta(days=2),
                                        ends=t0 + timedelta(days=9), lifecycle="cancelled"), "cancelled")
    return ended.astimezone(ZoneInfo("Europe/Paris")).date().isoformat()


def test_daily_files_follow_the_open_feed_rules(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, database_url: str
) -> None:
    settings = settings_for(kafka_bootstrap, topic_prefix, write_principals(tmp_path), database_url=database_url)
    with running_hub(settings, {Role.API}) as hub:  # the API alone migrates the schema
        wait_until(lambda: hub.get("/readyz").json()["archive"]["database"] == "up", timeout=30)
        day = _archive_yesterday(database_url)

        geojson = hub.get(f"/feeds/opendata/history/{day}.geojson")  # public: no key
        assert geojson.status_code == 200, geojson.text
        doc = orjson.loads(geojson.content)
        assert doc["license"] == "ODbL-1.0"
        by_id = {f["id"]: f["properties"] for f in doc["features"]}
        assert set(by_id) == {"closure-done", "mixed"}
        assert by_id["mixed"]["sources"] == "police-59"
        assert by_id["closure-done"]["sources"] == "roadworks"
        assert {p["status"] for p in by_id.values()} == {"ended"}
        again = hub.get(f"/feeds/opendata/history/{day}.geojson", headers={"If-None-Match": geojson.headers["ETag"]})
        assert again.status_code == 304

        table = hub.get(f"/feeds/opendata/history/{day}.csv")
        assert table.status_code == 200
        rows = list(csv.DictReader(io.StringIO(table.text)))
        assert sorted(r["id"] for r in rows) == ["closure-done", "mixed"]
        assert next(r for r in rows if r["id"] == "mixed")["description"] == "'=HYPERLINK(x)"

        parquet = hub.get(f"/feeds/opendata/history/{day}.parquet")
        assert parquet.status_code == 200
        read = pq.read_table(io.BytesIO(parquet.content))
        geo = orjson.loads(read.schema.metadata[b"geo"])
        assert geo["primary_column"] == "geometry"
        assert geo["columns"]["geometry"]["encoding"] == "WKB"
        assert sorted(read.column("id").to_pylist()) == ["closure-done", "mixed"]
        assert shapely.from_wkb(read.column("geometry").to_pylist()[0]).geom_type == "LineString"

        index = hub.get("/feeds/opendata/history/index.json").json()
        listed = {d["date"]: d for d in index["days"]}
        assert day in listed
        assert listed[day]["csv"].endswith(f"/feeds/opendata/history/{day}.csv")

        today = datetime.now(UTC).astimezone(ZoneInfo("Europe/Paris")).date().isoformat()
        for name in (f"{today}.geojson", "2026-13-40.csv", f"{day}.xlsx", "index.html"):
            assert hub.get(f"/feeds/opendata/history/{name}").status_code == 404, name


def test_at_and_window_see_versions_as_they_stood(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, database_url: str
) -> None:
    """The state at T is each event's version current at T; a window returns the last version before `to`."""
    settings = settings_for(kafka_bootstrap, topic_prefix, write_principals(tmp_path), database_url=database_url)
    with running_hub(settings, {Role.API}) as hub:
        wait_until(lambda: hub.get("/readyz").json()["archive"]["database"] == "up", timeout=30)
        t0 = days_ago(40)  # another month partition than the next versions
        road = [("roadworks:voirie-lille", "closure")]
        insert(database_url, TOPIC, t0, event_doc("ev", 1, sources=road, starts=t0, ends=None,
                                                  description="first"), "ev")
        insert(database_url, TOPIC, t0 + timedelta(days=30), event_doc("ev", 2, sources=road, starts=t0, ends=None,
                                                                       description="second"), "ev")
        insert(database_url, TOPIC, t0 + timedelta(days=35), None, "ev")  # removed (a tombstone)
        headers = {"Authorization": f"Bearer {KEYS.operator}"}

        def at(when: datetime) -> list[tuple[str, str]]:
            body = hub.get("/api/v1/history/events", params={"at": when.isoformat()}, headers=headers).json()
            return [(f["id"], f["properties"]["description"]) for f in body["features"]]

        assert at(t0 - timedelta(seconds=1)) == []
        assert at(t0) == [("ev", "first")]
        assert at(t0 + timedelta(days=29)) == [("ev", "first")]
        assert at(t0 + timedelta(days=31)) == [("ev", "second")]
        assert at(t0 + timedelta(days=36)) == []
        window = {"from": (t0 + timedelta(days=1)).isoformat(), "to": (t0 + timedelta(days=2)).isoformat()}
        body = hub.get("/api/v1/history/events", params=window, headers=headers).json()
        assert [f["properties"]["description"] for f in body["features"]] == ["first"]
        life = body["features"][0]["properties"]["life"]
        assert datetime.fromisoformat(life["to"]) == t0 + timedelta(days=35)
        history = hub.get("/api/v1/events/ev/history", headers=headers).json()["versions"]
        assert [v["action"] for v in history] == ["created", "updated", "removed"]
        assert history[1]["changes"] == [{"field": "description", "from": "first", "to": "second"}]
