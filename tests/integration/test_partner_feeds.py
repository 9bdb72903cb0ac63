"""Every partner feed through the API: valid against its official schema, live, cached, keyed."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import xmlschema
from fastapi.testclient import TestClient

from tests.integration.hubs import KEYS, auth, closure_body, running_hub, settings_for, wait_until, write_principals
from traffic_hub.feeds.validation import datex2_errors, datex2_v2_errors, wzdx_errors

pytestmark = pytest.mark.kafka

CIFS_XSD = Path(__file__).resolve().parents[2] / "traffic_hub" / "feeds" / "schemas" / "cifsv2.xsd"
KEYED = [
    "/feeds/waze/cifs.xml",
    "/feeds/waze/cifs.json",
    "/feeds/datex2/v3/situations.xml",
    "/feeds/datex2/v2/situations.xml",
    "/feeds/wzdx/v4.2/workzones.geojson",
]
PUBLIC = ["/feeds/geojson/events.geojson", "/feeds/geojson/events.csv"]


@pytest.fixture
def hub(kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> Iterator[TestClient]:
    with running_hub(settings_for(kafka_bootstrap, topic_prefix, write_principals(tmp_path))) as client:
        yield client


def post_realistic_closures(hub: TestClient) -> list[str]:
    bodies = [
        closure_body("FEED-FULL"),
        closure_body(
            "FEED-NIGHT",
            description="Travaux de nuit, voie de droite neutralisée",
            street="Rue de Paris",
            geometry={"type": "LineString", "coordinates": [[3.067795, 50.634331], [3.068067, 50.633128],
                                                            [3.068295, 50.631849]]},
            lanes={"closed": 1, "total": 2, "side": "RIGHT"},
            schedule={"monday": ["21:00-23:59"], "tuesday": ["21:00-23:59"]},
        ),
        closure_body(
            "FEED-ONEWAY",
            description="Braderie",
            cause="event",
            direction="ONE_DIRECTION",
            street="Boulevard de la Liberté",
            geometry={"type": "LineString", "coordinates": [[3.056671, 50.634531], [3.059300, 50.633090],
                                                            [3.061908, 50.631649]]},
        ),
    ]
    ids = []
    for body in bodies:
        response = hub.post("/api/v1/closures", json=body, headers=auth(KEYS.lille))
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    return ids


def test_every_feed_is_valid_and_carries_the_closures_within_2s(hub: TestClient) -> None:
    ids = post_realistic_closures(hub)

    def everywhere() -> bool:
        for path in KEYED:
            text = hub.get(path, headers=auth(KEYS.partner)).text
            if not all(i in text for i in ids):
                return False
        return all(all(i in hub.get(path).text for i in ids) for path in PUBLIC)

    wait_until(everywhere, timeout=2.0)
    xml = hub.get("/feeds/waze/cifs.xml", headers=auth(KEYS.partner)).content
    xmlschema.XMLSchema(str(CIFS_XSD)).validate(xml.decode())
    assert datex2_errors(hub.get("/feeds/datex2/v3/situations.xml", headers=auth(KEYS.partner)).content) == []
    assert datex2_v2_errors(hub.get("/feeds/datex2/v2/situations.xml", headers=auth(KEYS.partner)).content) == []
    wzdx = hub.get("/feeds/wzdx/v4.2/workzones.geojson", headers=auth(KEYS.partner)).content
    assert wzdx_errors(wzdx) == []
    assert {f["id"].rsplit("-", 1)[0] if f["id"].count("-") > 4 else f["id"] for f in orjson.loads(wzdx)["features"]} \
        >= set(ids)
    geojson = orjson.loads(hub.get("/feeds/geojson/events.geojson").content)
    assert geojson["type"] == "FeatureCollection"
    assert "OpenStreetMap" in orjson.dumps(geojson).decode()
    assert {f["id"] for f in geojson["features"]} >= set(ids)
    rows = list(csv.DictReader(io.StringIO(hub.get("/feeds/geojson/events.csv").text)))
    assert {row["id"] for row in rows} >= set(ids)
    # deleted: gone from every feed
    hub.delete(f"/api/v1/closures/{ids[0]}", headers=auth(KEYS.lille))
    wait_until(lambda: all(ids[0] not in hub.get(p, headers=auth(KEYS.partner)).text for p in KEYED + PUBLIC))
    publication = hub.get(f"/api/v1/closures/{ids[1]}", headers=auth(KEYS.lille)).json()["publication"]
    assert set(publication) == {"waze", "datex2", "datex2-regulations", "wzdx", "geojson"}
    assert {p["status"] for p in publication.values()} == {"published"}


@pytest.mark.parametrize("path", KEYED + PUBLIC)
def test_every_feed_has_etag_304_gzip_and_the_right_keys(hub: TestClient, path: str) -> None:
    headers = auth(KEYS.partner)
    if path in KEYED:
        assert hub.get(path).status_code == 401
        assert hub.get(path, headers=auth(KEYS.lille)).status_code == 403
        assert hub.get(path, params={"key": KEYS.partner}).status_code == 200
    first = hub.get(path, headers=headers)
    assert first.status_code == 200
    assert hub.get(path, headers={**headers, "If-None-Match": first.headers["etag"]}).status_code == 304
    zipped = hub.get(path, headers={**headers, "Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.content == first.content
