"""The closure API end to end against the real broker: create → Kafka → normaliser → view → Waze feed."""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
import xmlschema
from aiokafka import AIOKafkaConsumer, TopicPartition
from fastapi.testclient import TestClient
from lxml import etree

from tests.clock import paris_day, paris_iso
from tests.integration.hubs import KEYS, auth, closure_body, running_hub, settings_for, wait_until, write_principals
from traffic_hub.auth import hash_key
from traffic_hub.topics import Topics

pytestmark = pytest.mark.kafka

XSD = Path(__file__).resolve().parents[2] / "traffic_hub" / "feeds" / "schemas" / "cifsv2.xsd"


@pytest.fixture(scope="module")
def cifs_schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(XSD))


@pytest.fixture
def hub(kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> Iterator[TestClient]:
    settings = settings_for(kafka_bootstrap, topic_prefix, write_principals(tmp_path))
    with running_hub(settings) as client:
        yield client


def feed_ids(client: TestClient, key: str = KEYS.partner) -> list[str]:
    response = client.get("/feeds/waze/cifs.xml", params={"key": key})
    assert response.status_code == 200
    root = etree.fromstring(response.content)
    return [str(node.get("id")) for node in root.iter("incident")]


def post(client: TestClient, body: dict[str, Any], key: str = KEYS.lille) -> Any:
    return client.post("/api/v1/closures", json=body, headers=auth(key))


def reports_written(bootstrap: str, prefix: str) -> int:
    async def count() -> int:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
        await consumer.start()
        try:
            partitions = consumer.partitions_for_topic(Topics(prefix).reports) or set()
            cluster = await consumer._client.fetch_all_metadata()
            partitions = cluster.partitions_for_topic(Topics(prefix).reports) or partitions
            ends = await consumer.end_offsets([TopicPartition(Topics(prefix).reports, p) for p in partitions])
            return sum(ends.values())
        finally:
            await consumer.stop()

    return asyncio.run(count())


def test_created_closure_is_durable_readable_and_in_the_waze_feed_within_2s(
    hub: TestClient, cifs_schema: xmlschema.XMLSchema
) -> None:
    body = closure_body()
    response = post(hub, body)
    assert response.status_code == 201, response.text
    closure = response.json()
    assert response.headers["location"] == f"/api/v1/closures/{closure['id']}"
    assert response.headers["etag"] == '"1"'
    # read-your-writes: at once, before the normaliser has run
    read = hub.get(f"/api/v1/closures/{closure['id']}", headers=auth(KEYS.lille))
    assert read.status_code == 200
    assert read.json()["reference"] == "LILLE-2026-0042"
    assert read.json()["status"] == "planned"
    took = wait_until(lambda: closure["id"] in feed_ids(hub), timeout=2.0)
    assert took < 2.0
    xml = hub.get("/feeds/waze/cifs.xml", headers=auth(KEYS.partner)).content
    cifs_schema.validate(etree.fromstring(xml))
    incident = etree.fromstring(xml).find("incident")
    assert incident is not None
    assert incident.findtext("street") == "Rue Nationale"
    # the polyline follows the road, lat lon with 6 decimals, from the first drawn point to the last
    numbers = (incident.findtext("polyline") or "").split()
    assert len(numbers) >= 4
    assert all(len(n.split(".")[1]) == 6 for n in numbers)
    lat0, lon0, lat1, lon1 = (float(n) for n in numbers[:2] + numbers[-2:])
    assert abs(lat0 - 50.632626) < 2e-4
    assert abs(lon0 - 3.052176) < 3e-4
    assert abs(lat1 - 50.633345) < 2e-4
    assert abs(lon1 - 3.053887) < 3e-4
    assert incident.findtext("starttime") == body["starts_at"]
    # the closure now shows where it is published
    wait_until(lambda: hub.get(f"/api/v1/closures/{closure['id']}", headers=auth(KEYS.lille)).json()["publication"]
               ["waze"]["status"] == "published")
    normalised = hub.get(f"/api/v1/closures/{closure['id']}", headers=auth(KEYS.lille)).json()["normalised"]
    assert normalised["commune"] == "59350"
    assert normalised["matched"] is True
    assert normalised["street"] == "Rue Nationale"
    assert normalised["edge_ids"]
    assert normalised["confidence"] > 0.5


def test_same_reference_twice_gives_the_same_closure_never_a_duplicate(hub: TestClient) -> None:
    first = post(hub, closure_body("LILLE-IDEM"))
    second = post(hub, closure_body("LILLE-IDEM"))
    assert first.status_code == 201
    assert second.status_code == 200
    assert first.json()["id"] == second.json()["id"]
    wait_until(lambda: first.json()["id"] in feed_ids(hub))
    assert feed_ids(hub).count(first.json()["id"]) == 1
    listing = hub.get("/api/v1/closures", headers=auth(KEYS.lille)).json()
    assert [c["reference"] for c in listing["items"]] == ["LILLE-IDEM"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (closure_body(geometry={"type": "LineString", "coordinates": [[3.0561, 50.6301]]}), "geometry.coordinates"),
        (
            closure_body(geometry={"type": "LineString", "coordinates": [[3.0561, 50.6301], [3.0561, 50.6301]]}),
            "geometry.coordinates",
        ),
        (closure_body(starts_at=paris_iso(5), ends_at=paris_iso(3)), "body"),
        (closure_body(colour="red"), "colour"),
        (closure_body(description=12), "description"),
        (closure_body(starts_at="tomorrow"), "starts_at"),
        (closure_body(starts_at=paris_iso(1)[:19]), "starts_at"),  # no UTC offset
        (closure_body(geometry={"type": "LineString", "coordinates": [[2.3522, 48.8566], [2.3530, 48.8570]]}),
         "geometry"),
        (closure_body(geometry={"type": "LineString", "coordinates": [[50.6301, 3.0561], [50.6279, 3.0509]]}),
         "geometry.coordinates"),
        (closure_body(geometry={"type": "LineString", "coordinates": [[3.0561, "x"], [3.0509, 50.6279]]}),
         "geometry.coordinates.0.1"),
        (closure_body(geometry=None), "body"),
        (closure_body(crs="EPSG:3857"), "crs"),
        (closure_body(lanes={"closed": 3, "total": 2}), "lanes"),
        (closure_body(schedule={"monday": ["18:00-08:00"]}), "schedule.monday.0"),
        (closure_body(reference=""), "reference"),
    ],
)
def test_bad_input_is_422_naming_the_field_and_writes_nothing(
    hub: TestClient, kafka_bootstrap: str, topic_prefix: str, body: dict[str, Any], field: str
) -> None:
    response = post(hub, body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 422
    assert problem["field"] == field, problem
    assert reports_written(kafka_bootstrap, topic_prefix) == 0


def test_broken_json_is_422_on_the_body(hub: TestClient) -> None:
    headers = {**auth(KEYS.lille), "content-type": "application/json"}
    response = hub.post("/api/v1/closures", content=b'{"reference": "X", ', headers=headers)
    assert response.status_code == 422
    assert response.json()["field"] == "body"


def test_keys_roles_and_communes(hub: TestClient, kafka_bootstrap: str, topic_prefix: str) -> None:
    assert hub.post("/api/v1/closures", json=closure_body()).status_code == 401
    assert post(hub, closure_body(), key="no-such-key").status_code == 401
    assert post(hub, closure_body(), key=KEYS.partner).status_code == 403
    assert post(hub, closure_body(), key=KEYS.operator).status_code == 403
    outside = post(hub, closure_body(), key=KEYS.roubaix)
    assert outside.status_code == 403
    assert "communes" in outside.json()["detail"]
    assert hub.get("/feeds/waze/cifs.xml").status_code == 401
    assert hub.get("/feeds/waze/cifs.xml", headers=auth(KEYS.lille)).status_code == 403
    assert hub.get("/api/v1/events", headers=auth(KEYS.partner)).status_code == 403
    assert reports_written(kafka_bootstrap, topic_prefix) == 0
    created = post(hub, closure_body(), key=KEYS.mel)
    assert created.status_code == 201
    cid = created.json()["id"]
    assert hub.get(f"/api/v1/closures/{cid}", headers=auth(KEYS.roubaix)).status_code == 403
    assert hub.delete(f"/api/v1/closures/{cid}", headers=auth(KEYS.roubaix)).status_code == 403
    assert hub.get(f"/api/v1/closures/{cid}", headers=auth(KEYS.lille)).status_code == 200
    assert hub.get("/api/v1/closures", headers=auth(KEYS.admin)).json()["items"][0]["id"] == cid
    assert hub.get("/api/v1/closures", headers=auth(KEYS.lille)).json()["items"] == []


def test_oversized_body_is_413(hub: TestClient) -> None:
    body = closure_body(description="x" * 300_000)
    response = post(hub, body)
    assert response.status_code == 413
    assert response.json()["status"] == 413


def test_update_with_if_match_then_delete_leaves_the_feed(hub: TestClient) -> None:
    cid = post(hub, closure_body("LILLE-UPD")).json()["id"]
    url = f"/api/v1/closures/{cid}"
    stale = hub.put(url, json=closure_body("LILLE-UPD", description="Nouveau"), headers={**auth(KEYS.lille),
                                                                                          "If-Match": '"7"'})
    assert stale.status_code == 412
    replaced = hub.put(url, json=closure_body("LILLE-UPD", description="Chaussée rétrécie"),
                       headers={**auth(KEYS.lille), "If-Match": '"1"'})
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["version"] == 2
    assert replaced.headers["etag"] == '"2"'
    patched = hub.patch(url, json={"description": "Fermeture totale"}, headers={**auth(KEYS.lille), "If-Match": '"2"'})
    assert patched.status_code == 200
    assert patched.json()["version"] == 3
    assert patched.json()["street"] == "Rue Nationale"
    renamed = hub.put(url, json=closure_body("OTHER-REF"), headers=auth(KEYS.lille))
    assert renamed.status_code == 422
    assert renamed.json()["field"] == "reference"

    def described() -> bool:
        xml = hub.get("/feeds/waze/cifs.xml", headers=auth(KEYS.partner)).content
        return b"Fermeture totale" in xml

    wait_until(described)
    assert hub.delete(url, headers=auth(KEYS.lille)).status_code == 204
    assert hub.get(url, headers=auth(KEYS.lille)).json()["status"] == "cancelled"
    wait_until(lambda: cid not in feed_ids(hub), timeout=2.0)
    assert hub.delete(url, headers=auth(KEYS.lille)).status_code == 204
    assert hub.patch(url, json={"description": "x"}, headers=auth(KEYS.lille)).status_code == 409
    assert hub.get("/api/v1/closures/nope", headers=auth(KEYS.admin)).status_code == 404


def test_feed_etag_304_gzip_and_key_in_url(hub: TestClient) -> None:
    cid = post(hub, closure_body("LILLE-ETAG")).json()["id"]
    wait_until(lambda: cid in feed_ids(hub))
    first = hub.get("/feeds/waze/cifs.xml", headers=auth(KEYS.partner))
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    again = hub.get("/feeds/waze/cifs.xml", headers={**auth(KEYS.partner), "If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    since = hub.get("/feeds/waze/cifs.xml", headers={**auth(KEYS.partner), "If-Modified-Since": modified})
    assert since.status_code == 304
    zipped = hub.get(
        "/feeds/waze/cifs.xml", params={"key": KEYS.partner}, headers={"Accept-Encoding": "gzip"}
    )
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.content == first.content  # httpx decodes; the bytes are the same feed
    raw = hub.get("/feeds/waze/cifs.json", params={"key": KEYS.partner}, headers={"Accept-Encoding": "identity"})
    assert raw.headers["content-type"].startswith("application/json")
    assert cid in raw.text
    assert gzip.decompress(gzip.compress(raw.content)) == raw.content


def test_lambert93_and_cc50_closures_land_where_the_wgs84_one_does(hub: TestClient) -> None:
    # Rue Nationale, the same two points in Lambert-93 (EPSG:2154) and CC50 (EPSG:3950)
    for crs, coordinates in {
        "EPSG:2154": [[703697.7, 7059518.1], [703818.9, 7059598.3]],
        "EPSG:3950": [[1703691.4, 9270366.9], [1703812.4, 9270447.0]],
    }.items():
        body = closure_body(f"LILLE-{crs[5:]}", crs=crs, geometry={"type": "LineString", "coordinates": coordinates})
        created = post(hub, body)
        assert created.status_code == 201, created.text
        (lon, lat) = created.json()["geometry"]["coordinates"][0]
        assert abs(lon - 3.052176) < 2e-6
        assert abs(lat - 50.632626) < 2e-6
        assert created.json()["submitted_crs"] == crs


def test_schedule_and_lanes_reach_the_feed(hub: TestClient, cifs_schema: xmlschema.XMLSchema) -> None:
    body = closure_body(
        "LILLE-NIGHT",
        schedule={"monday": ["21:00-23:59"], "tuesday": ["21:00-23:59"]},
        lanes={"closed": 1, "total": 2, "side": "RIGHT"},
    )
    cid = post(hub, body).json()["id"]
    wait_until(lambda: cid in feed_ids(hub))
    xml = hub.get("/feeds/waze/cifs.xml", headers=auth(KEYS.partner)).content
    cifs_schema.validate(etree.fromstring(xml))
    incident = etree.fromstring(xml).find("incident")
    assert incident is not None
    assert incident.findtext("type") == "HAZARD"
    assert incident.findtext("subtype") == "HAZARD_ON_ROAD_LANE_CLOSED"
    assert incident.findtext("lane_impact/total_closed_lanes") == "1"
    assert incident.findtext("schedule/monday") == "21:00-23:59"


def test_events_health_metrics_and_docs(hub: TestClient) -> None:
    cid = post(hub, closure_body("LILLE-EVT")).json()["id"]
    wait_until(lambda: cid in feed_ids(hub))
    events = hub.get("/api/v1/events", headers=auth(KEYS.operator)).json()
    assert events["type"] == "FeatureCollection"
    feature = events["features"][0]
    assert feature["id"] == cid
    assert feature["properties"]["sources"][0]["source"] == "roadworks:voirie-lille"
    assert feature["properties"]["commune"] == "59350"
    assert hub.get(f"/api/v1/events/{cid}", headers=auth(KEYS.admin)).json()["id"] == cid
    assert hub.get("/healthz").json() == {"status": "ok"}
    assert hub.get("/readyz").json()["status"] == "ready"
    metrics = hub.get("/metrics", headers=auth(KEYS.admin)).text
    assert 'traffic_hub_closure_writes_total{operation="create"} 1.0' in metrics
    assert "traffic_hub_kafka_up 1.0" in metrics
    assert 'traffic_hub_feed_requests_total{feed="waze/cifs.xml",partner="waze",status="200"}' in metrics
    assert hub.get("/docs").status_code == 200
    assert "/api/v1/closures" in hub.get("/openapi.json").json()["paths"]


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b"[" * 100_000, "body"),  # deep nesting
        (b'{"reference": "\xff\xfe"}', "body"),  # invalid UTF-8
        (b"\x00\x01\x02", "body"),
        (b"", "body"),
    ],
)
def test_hostile_bodies_are_rejected_cleanly(
    hub: TestClient, kafka_bootstrap: str, topic_prefix: str, raw: bytes, field: str
) -> None:
    headers = {**auth(KEYS.lille), "content-type": "application/json"}
    response = hub.post("/api/v1/closures", content=raw, headers=headers)
    assert response.status_code in (400, 422), response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json().get("field", "body") == field
    assert reports_written(kafka_bootstrap, topic_prefix) == 0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"geometry": {"type": "LineString", "coordinates": [[float("nan"), 50.63], [3.053887, 50.633345]]}},
         "geometry.coordinates"),
        ({"description": "Travaux\x00de nuit"}, "description"),
        ({"street": "Rue\x1bNationale"}, "street"),
    ],
)
def test_nan_and_control_characters_are_422(hub: TestClient, change: dict[str, Any], field: str) -> None:
    raw = json.dumps(closure_body("HOSTILE", **change)).encode()  # json.dumps writes NaN, as hostile clients do
    headers = {**auth(KEYS.lille), "content-type": "application/json"}
    response = hub.post("/api/v1/closures", content=raw, headers=headers)
    assert response.status_code == 422, response.text
    assert response.json()["field"].startswith(field)


def test_a_corrected_repost_is_409_naming_what_differs_and_how_to_change_it(hub: TestClient) -> None:
    first = post(hub, closure_body("LILLE-FIX"))
    assert first.status_code == 201
    cid = first.json()["id"]
    # the same closure with its times written in UTC and in Lambert-93: the same body, 200
    utc = closure_body("LILLE-FIX", starts_at=paris_day(1, "08:00").astimezone(UTC).isoformat())
    assert post(hub, utc).status_code == 200
    in_lambert93 = {"type": "LineString", "coordinates": [[703697.7, 7059518.1], [703818.9, 7059598.3]]}
    lambert = closure_body("LILLE-FIX", crs="EPSG:2154", geometry=in_lambert93)
    assert post(hub, lambert).status_code == 200
    corrected = post(hub, closure_body("LILLE-FIX", description="Chaussée rétrécie", ends_at=paris_iso(30, "18:00")))
    assert corrected.status_code == 409, corrected.text
    assert corrected.headers["content-type"] == "application/problem+json"
    problem = corrected.json()
    assert problem["status"] == 409
    assert problem["type"] == "urn:traffic-hub:problem:reference-taken"
    assert problem["closure_id"] == cid
    assert problem["version"] == 1
    assert problem["etag"] == '"1"'
    assert [d["field"] for d in problem["differences"]] == ["description", "ends_at"]
    assert problem["differences"][0]["posted"] == "Chaussée rétrécie"
    assert f"/api/v1/closures/{cid}" in problem["detail"]
    assert 'If-Match: "1"' in problem["detail"]
    assert corrected.headers["location"] == f"/api/v1/closures/{cid}"
    # following the advice works, and the recorded closure was untouched until then
    assert hub.get(f"/api/v1/closures/{cid}", headers=auth(KEYS.lille)).json()["description"] == "Travaux de voirie"
    patched = hub.patch(f"/api/v1/closures/{cid}", json={"description": "Chaussée rétrécie"},
                        headers={**auth(KEYS.lille), "If-Match": problem["etag"]})
    assert patched.status_code == 200
    assert patched.json()["version"] == 2


def test_a_deleted_reference_reopens_and_is_back_in_the_waze_feed(hub: TestClient) -> None:
    cid = post(hub, closure_body("LILLE-REOPEN")).json()["id"]
    wait_until(lambda: cid in feed_ids(hub))
    assert hub.delete(f"/api/v1/closures/{cid}", headers=auth(KEYS.lille)).status_code == 204
    wait_until(lambda: cid not in feed_ids(hub))
    reopened = post(hub, closure_body("LILLE-REOPEN", description="Reprise des travaux"))
    assert reopened.status_code == 201, reopened.text
    assert reopened.json()["id"] == cid
    assert reopened.json()["version"] == 3
    assert reopened.json()["status"] == "planned"
    assert reopened.headers["etag"] == '"3"'
    wait_until(lambda: cid in feed_ids(hub), timeout=2.0)
    xml = hub.get("/feeds/waze/cifs.xml", headers=auth(KEYS.partner)).content
    assert b"Reprise des travaux" in xml
    assert post(hub, closure_body("LILLE-REOPEN", description="Reprise des travaux")).status_code == 200


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
def test_an_end_in_the_past_is_422_on_ends_at_on_every_write(
    hub: TestClient, kafka_bootstrap: str, topic_prefix: str, method: str
) -> None:
    past = {"starts_at": paris_iso(-10, "08:00"), "ends_at": paris_iso(-3, "18:00")}
    if method == "POST":
        response = post(hub, closure_body("LILLE-PAST", **past))
        assert reports_written(kafka_bootstrap, topic_prefix) == 0
    else:
        cid = post(hub, closure_body("LILLE-PAST")).json()["id"]
        url = f"/api/v1/closures/{cid}"
        response = (hub.put(url, json=closure_body("LILLE-PAST", **past), headers=auth(KEYS.lille)) if method == "PUT"
                    else hub.patch(url, json=past, headers=auth(KEYS.lille)))
        assert hub.get(url, headers=auth(KEYS.lille)).json()["version"] == 1
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "ends_at"
    assert "past" in response.json()["detail"]


def test_unusual_input_is_accepted_with_warnings(hub: TestClient) -> None:
    long = post(hub, closure_body("LILLE-LONG", ends_at=paris_iso(500, "18:00")))
    assert long.status_code == 201
    assert [(w["code"], w["field"]) for w in long.json()["warnings"]] == [("long-duration", "ends_at")]
    ahead = post(hub, closure_body("LILLE-AHEAD", starts_at=paris_iso(400), ends_at=paris_iso(401)))
    assert [w["code"] for w in ahead.json()["warnings"]] == ["far-future-start"]
    utc = post(hub, closure_body("LILLE-UTC", starts_at=paris_day(1, "08:00").astimezone(UTC).isoformat()))
    assert [w["code"] for w in utc.json()["warnings"]] == ["not-local-time"]
    usual = post(hub, closure_body("LILLE-USUAL"))
    assert usual.json()["warnings"] == []
    assert post(hub, closure_body("LILLE-USUAL")).json()["warnings"] == []  # a retry has nothing new to say
    read = hub.get(f"/api/v1/closures/{long.json()['id']}", headers=auth(KEYS.lille))
    assert read.json()["warnings"] == []  # warnings answer a write


def audit_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "traffic_hub.audit"]


def test_every_write_and_operator_action_is_audited_without_secrets(
    hub: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="traffic_hub.audit")
    cid = post(hub, closure_body("LILLE-AUDIT")).json()["id"]
    url = f"/api/v1/closures/{cid}"
    post(hub, closure_body("LILLE-AUDIT", description="Autre"))  # 409
    stale = {**auth(KEYS.lille), "If-Match": '"9"'}
    hub.put(url, json=closure_body("LILLE-AUDIT", description="Nouveau"), headers=stale)
    hub.patch(url, json={"description": "Fermeture totale"}, headers=auth(KEYS.lille))
    assert hub.delete(url, headers=auth(KEYS.roubaix)).status_code == 403
    hub.delete(url, headers=auth(KEYS.lille))
    post(hub, closure_body("LILLE-AUDIT"))  # re-open
    wait_until(lambda: hub.get(f"/api/v1/events/{cid}", headers=auth(KEYS.operator)).status_code == 200)
    hub.post(f"/api/v1/events/{cid}/actions", json={"action": "confirm"}, headers=auth(KEYS.operator))
    hub.post("/api/v1/events/nope/actions", json={"action": "dismiss"}, headers=auth(KEYS.operator))
    lines = audit_lines(caplog)
    seen = [(line["principal"], line["action"], line.get("version"), line["result"]) for line in lines]
    assert seen == [
        ("voirie-lille", "create", 1, 201),
        ("voirie-lille", "create", 1, 409),
        ("voirie-lille", "replace", None, 412),
        ("voirie-lille", "patch", 2, 200),
        ("voirie-roubaix", "delete", None, 403),
        ("voirie-lille", "delete", 3, 204),
        ("voirie-lille", "reopen", 4, 201),
        ("salle-trafic", "confirm", None, 202),
        ("salle-trafic", "dismiss", None, 404),
    ]
    assert all(line["closure_id"] == cid and line["reference"] == "LILLE-AUDIT" for line in lines[:7])
    assert lines[7]["event_id"] == cid
    text = "\n".join(r.getMessage() for r in caplog.records)
    for key in vars(KEYS).values():
        assert key not in text
        assert hash_key(key) not in text
