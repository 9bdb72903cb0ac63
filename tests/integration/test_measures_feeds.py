"""Each measure type in through /api/v1/measures and out, against the real broker, through DATEX II v3
situations, the new regulations publication and WZDx 4.2, each document schema-valid."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from lxml import etree

from tests.integration.hubs import KEYS, auth, closure_body, running_hub, settings_for, wait_until, write_principals
from tests.kafkarun import run_name
from traffic_hub.feeds.validation import datex2_errors, wzdx_errors

pytestmark = pytest.mark.kafka

OTHER_LINE = [[3.0561, 50.6301], [3.0509, 50.6279]]
NS = {"sit": "http://datex2.eu/schema/3/situation", "tro": "http://datex2.eu/schema/3/trafficRegulation"}
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"


@pytest.fixture(scope="module")
def hub(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = settings_for(kafka_bootstrap, run_name("measfeeds"), write_principals(tmp_path_factory.mktemp("mf")))
    with running_hub(settings) as client:
        yield client


def post(hub: TestClient, reference: str, kind: str, **values: Any) -> str:
    body = {**closure_body(reference), "type": kind, **values}
    response = hub.post("/api/v1/measures", json=body, headers=auth(KEYS.lille))
    assert response.status_code == 201, (kind, response.text)
    return str(response.json()["id"])


def feed(hub: TestClient, path: str) -> bytes:
    response = hub.get(f"/feeds/{path}", headers=auth(KEYS.partner))
    assert response.status_code == 200, response.text
    return response.content


def test_each_measure_type_goes_out_through_datex2_regulations_and_wzdx(hub: TestClient) -> None:
    road = post(hub, "MF-ROAD", "road_closed")
    ids = {
        "road_closed": road,
        "lane_closed": post(hub, "MF-LANE", "lane_closed", lanes={"closed": 1, "total": 2, "side": "RIGHT"}),
        "alternate_traffic": post(hub, "MF-ALT", "alternate_traffic"),
        "no_overtaking": post(hub, "MF-NOPASS", "no_overtaking"),
        "speed_limit": post(hub, "MF-SPEED", "speed_limit", speed_kmh=30),
        "vehicle_restriction": post(
            hub,
            "MF-HGV",
            "vehicle_restriction",
            vehicles={"max_weight_t": 3.5, "kinds": ["heavy_goods_vehicle"], "except": ["deliveries"]},
        ),
        "detour": post(
            hub, "MF-DETOUR", "detour", detour_of=road, geometry={"type": "LineString", "coordinates": OTHER_LINE}
        ),
    }

    def regulations() -> dict[str, list[str]]:
        tree = etree.fromstring(feed(hub, "datex2/v3/regulations.xml"))
        return {
            str(order.get("id")): [str(t.get(XSI_TYPE)) for t in order.iterfind(".//tro:typeOfRegulation", NS)]
            for order in tree.iterfind(".//tro:trafficRegulationOrder", NS)
        }

    wait_until(lambda: set(ids.values()) <= set(regulations()), timeout=15)
    document = feed(hub, "datex2/v3/regulations.xml")
    assert datex2_errors(document) == []
    found = regulations()
    assert found[ids["speed_limit"]] == ["tro:MaxSpeedLimit"]
    assert found[ids["vehicle_restriction"]] == ["tro:AccessRestriction"]
    assert found[ids["detour"]] == ["tro:Rerouting"]

    situations = feed(hub, "datex2/v3/situations.xml")
    assert datex2_errors(situations) == []
    records = {
        str(r.get("id")): str(r.get(XSI_TYPE))
        for r in etree.fromstring(situations).iterfind(".//sit:situationRecord", NS)
    }
    assert records[ids["speed_limit"]] == "sit:SpeedManagement"
    assert records[ids["no_overtaking"]] == "sit:GeneralInstructionOrMessageToRoadUsers"
    assert records[ids["detour"]] == "sit:ReroutingManagement"
    assert set(ids.values()) <= set(records)

    wzdx = orjson.loads(feed(hub, "wzdx/v4.2/workzones.geojson"))
    assert wzdx_errors(wzdx) == []
    by_event: dict[str, list[dict[str, Any]]] = {}
    for feature in wzdx["features"]:
        event_id = next(i for i in ids.values() if feature["id"].startswith(i))
        by_event.setdefault(event_id, []).append(feature["properties"])
    assert set(ids.values()) <= set(by_event)
    assert by_event[ids["speed_limit"]][0]["reduced_speed_limit_kph"] == 30
    assert {"type": "no-trucks"} in by_event[ids["vehicle_restriction"]][0]["restrictions"]
    assert by_event[ids["detour"]][0]["core_details"]["event_type"] == "detour"
