"""Every measure type out through DATEX II v3 (situations and regulations), v2.3 and WZDx, schema-validated;
the Waze rules of the national base and of places off the loaded network."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import orjson
import pytest
from lxml import etree

from connectors.base import ParseContext
from connectors.registry import parser_for
from tests.feeds import events as ev
from tests.feeds import measures as ms
from traffic_hub.feeds.base import FeedContext, Renderer
from traffic_hub.feeds.datex2 import UNVERIFIED_PLACE, Datex2Situations
from traffic_hub.feeds.datex2_v2 import Datex2V2Situations
from traffic_hub.feeds.registry import by_path
from traffic_hub.feeds.regulations import FROM_NATIONAL_BASE, NOT_A_MEASURE, Datex2Regulations
from traffic_hub.feeds.validation import datex2_errors, datex2_v2_errors, wzdx_errors
from traffic_hub.feeds.waze import CifsXml
from traffic_hub.feeds.waze_withhold import NATIONAL_BASE_REASON
from traffic_hub.feeds.wzdx import WzdxWorkZones
from traffic_hub.model import Event, MeasureType, Normalised
from traffic_hub.normaliser.placement import not_covered

NOW = ev.WINTER_NOW
CTX = FeedContext(now=NOW)
NS = {
    "sit": "http://datex2.eu/schema/3/situation",
    "tro": "http://datex2.eu/schema/3/trafficRegulation",
    "com": "http://datex2.eu/schema/3/common",
    "loc": "http://datex2.eu/schema/3/locationReferencing",
}
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"


def feed(renderer: Renderer, events: Sequence[Event], ctx: FeedContext = CTX) -> bytes:
    return renderer.render([e for e in events if not renderer.check(e, ctx)], ctx)


def test_every_measure_is_a_valid_situation_with_the_right_record() -> None:
    document = feed(Datex2Situations(), ms.every_measure(NOW))
    assert datex2_errors(document) == []
    tree = etree.fromstring(document)
    records = {r.get("id"): r for r in tree.iterfind(".//sit:situationRecord", NS)}

    def main(event_id: str) -> tuple[str, dict[str, str]]:
        record = records[event_id]
        return record.get(XSI_TYPE) or "", {etree.QName(c).localname: (c.text or "") for c in record}

    assert main("m-road-closed")[1]["roadOrCarriagewayOrLaneManagementType"] == "roadClosed"
    assert main("m-lane-closed")[1]["roadOrCarriagewayOrLaneManagementType"] == "laneClosures"
    assert main("m-alternate")[1]["roadOrCarriagewayOrLaneManagementType"] == "singleAlternateLineTraffic"
    assert main("m-no-overtaking") == ("sit:GeneralInstructionOrMessageToRoadUsers", main("m-no-overtaking")[1])
    assert main("m-no-overtaking")[1]["generalInstructionToRoadUsersType"] == "noOvertaking"
    speed_type, speed = main("m-speed-30")
    assert (speed_type, speed["temporarySpeedLimit"]) == ("sit:SpeedManagement", "30.0")
    assert main("m-low-bridge")[1]["roadOrCarriagewayOrLaneManagementType"] == "heightRestrictionInOperation"
    assert main("m-detour")[0] == "sit:ReroutingManagement"
    lorries = records["m-lorries"].findall("sit:forVehiclesWithCharacteristicsOf", NS)
    # lorries or hazardous goods, above 3.5 t: one characteristics each, with the same limit
    assert [c.findtext("com:vehicleType", namespaces=NS) for c in lorries] == [None, "heavyGoodsVehicle"]
    assert [c.findtext("com:loadType", namespaces=NS) for c in lorries] == ["hazardousMaterials", None]
    weights = [c.findtext("com:grossWeightCharacteristic/com:grossVehicleWeight", namespaces=NS) for c in lorries]
    assert weights == ["3.5", "3.5"]
    critair = records["m-critair"].findall(".//com:emissionClassificationOther", NS)
    assert [c.text for c in critair] == ["critair4", "critair5"]
    # weekdays 08:00-17:00 except weekends and public holidays
    speed_validity = records["m-speed-30"].find("sit:validity/com:validityTimeSpecification", NS)
    assert speed_validity is not None
    assert speed_validity.findtext(".//com:specialDayType", namespaces=NS) == "publicHoliday"
    assert len(speed_validity.findall("com:exceptionPeriod", NS)) == 2


def test_every_measure_is_valid_datex2_v2_where_it_can_be_said() -> None:
    events = ms.every_measure(NOW)
    document = feed(Datex2V2Situations(), events)
    assert datex2_v2_errors(document) == []
    ids = {s.get("id") for s in etree.fromstring(document).iterfind(".//{http://datex2.eu/schema/2/2_0}situation")}
    assert ids == {e.id for e in events} - {"m-critair"}  # 2.3 has no emission classes


def test_regulations_feed_is_valid_3_7_in_the_national_base_shape() -> None:
    events = ms.every_measure(NOW)
    document = feed(Datex2Regulations(), events)
    assert datex2_errors(document) == []
    tree = etree.fromstring(document)
    assert tree.get(XSI_TYPE) == "tro:TrafficRegulationPublication"
    orders = {o.get("id"): o for o in tree.iterfind(".//tro:trafficRegulationOrder", NS)}
    assert set(orders) == {e.id for e in events}
    kinds = {
        key: [t.get(XSI_TYPE) for t in order.iterfind(".//tro:typeOfRegulation", NS)] for key, order in orders.items()
    }
    assert kinds["m-road-closed"] == ["tro:AccessRestriction"]
    assert kinds["m-alternate"] == ["tro:PriorityRule", "tro:AlternateRoadOrCarriagewayOrLaneLayout"]
    assert kinds["m-speed-30"] == ["tro:MaxSpeedLimit"]
    assert kinds["m-no-overtaking"] == ["tro:ProhibitionOfOvertaking"]
    assert kinds["m-detour"] == ["tro:Rerouting"]
    lorries = orders["m-lorries"]
    negated = [
        c.findtext("tro:negate", namespaces=NS)
        for c in lorries.iterfind(".//tro:conditions", NS)
        if c.get(XSI_TYPE) in ("tro:VehicleCondition", "tro:AccessCondition")
    ]
    assert negated == ["false", "false", "true", "true", "true"]  # 2 banned (hazardous, lorries), 3 exempted


def test_regulations_feed_reads_back_as_the_same_measures() -> None:
    """What we publish, our DATEX II connector reads as the same measure types and values."""
    events = {e.id: e for e in ms.every_measure(NOW) if e.measure and e.measure.type is not MeasureType.DETOUR}
    document = feed(Datex2Regulations(), list(events.values()))
    parsed = parser_for("datex2").parse(document, ParseContext(source="mel", received_at=NOW))
    assert [r.reason for r in parsed.rejects] == []
    back = {report.source_id.split("/")[0]: report.measure for report in parsed.incidents}
    for event_id, event in events.items():
        expected, got = event.measure, back[event_id]
        assert expected is not None
        assert got is not None
        assert got.type is expected.type
        assert got.speed_kmh == expected.speed_kmh
        if expected.vehicles is not None:
            assert got.vehicles is not None
            assert got.vehicles.limits == expected.vehicles.limits
            assert set(got.vehicles.critair) == set(expected.vehicles.critair)
            assert set(got.vehicles.except_) == set(expected.vehicles.except_)


def test_empty_regulations_feed_is_valid() -> None:
    assert datex2_errors(Datex2Regulations().render([], CTX)) == []


def test_regulations_feed_withholds_incidents_and_the_national_base_own_orders() -> None:
    closed = ms.every_measure(NOW)[0]
    accident = ev.waze_accident(NOW)
    renderer = Datex2Regulations()
    assert renderer.check(accident, CTX) == [NOT_A_MEASURE]
    assert renderer.check(ms.from_national_base(closed), CTX) == [FROM_NATIONAL_BASE]
    assert renderer.check(ms.from_national_base(closed, also_team=True), CTX) == []


def test_every_measure_is_a_valid_wzdx_road_event() -> None:
    events = ms.every_measure(NOW)
    renderer = WzdxWorkZones()
    assert renderer.check(next(e for e in events if e.id == "m-critair"), CTX) == [
        "WZDx cannot say this restriction (Crit'Air classes, hazardous goods or buses only)"
    ]
    document = feed(renderer, events)
    assert wzdx_errors(document) == []
    features = {f["id"].rsplit("-", 1)[0]: f["properties"] for f in orjson.loads(document)["features"]}
    assert features["m-alternate"]["vehicle_impact"] == "alternating-one-way"
    assert "lanes" not in features["m-alternate"]  # no lane counts given

    assert features["m-speed-30"]["reduced_speed_limit_kph"] == 30
    assert features["m-no-overtaking"]["restrictions"] == [{"type": "no-passing"}]
    assert {"type": "gross-weight-limit", "value": 3500.0, "unit": "kilograms"} in features["m-lorries"]["restrictions"]
    assert {"type": "no-trucks"} in features["m-lorries"]["restrictions"]
    assert {"type": "local-access-only"} in features["m-lorries"]["restrictions"]
    assert features["m-low-bridge"]["restrictions"] == [
        {"type": "reduced-height", "value": 320.0, "unit": "centimeters"}
    ]
    assert {"type": "permitted-oversize-loads-prohibited"} in features["m-oversize"]["restrictions"]
    detour = features["m-detour"]["core_details"]
    assert detour["event_type"] == "detour"
    assert {"type": "related-detour", "id": "m-road-closed"} in detour["related_road_events"]


def test_the_new_feed_is_in_the_one_feed_registry() -> None:
    feed_ = by_path()["datex2/v3/regulations.xml"]
    assert feed_.renderer is Datex2Regulations
    assert not feed_.public


@pytest.mark.parametrize("enabled", [True, False])
def test_waze_leaves_to_the_national_base_what_only_it_reports(enabled: bool) -> None:
    ctx = FeedContext(now=NOW, waze_withhold_national_base=enabled)
    closed = ms.every_measure(NOW)[0]
    waze = CifsXml()
    alone, merged = ms.from_national_base(closed), ms.from_national_base(closed, also_team=True)
    assert (NATIONAL_BASE_REASON in waze.check(alone, ctx)) is enabled
    assert NATIONAL_BASE_REASON not in waze.check(merged, ctx)
    assert waze.check(merged, ctx) == waze.check(closed, ctx)  # a merged event is ours: published once, by us


def test_off_the_loaded_network_the_drawn_place_goes_out_unverified_and_waze_says_why() -> None:
    reason = not_covered(["59512"], {"59512": "Roubaix"})
    closed = ms.every_measure(NOW)[0].model_copy(
        update={
            "segments": [],
            "segments_withheld": [reason],
            "normalised": Normalised(matched=False, confidence=0.0, reason=reason, method="line"),
        }
    )
    assert CifsXml().check(closed, CTX) == [reason]
    for renderer in (Datex2Situations(), Datex2Regulations()):
        document = feed(renderer, [closed])
        assert datex2_errors(document) == []
        assert UNVERIFIED_PLACE.encode() in etree.tostring(etree.fromstring(document), encoding="utf-8")
    wzdx = orjson.loads(feed(WzdxWorkZones(), [closed]))
    assert wzdx_errors(wzdx) == []
    assert all(not f["properties"]["is_start_position_verified"] for f in wzdx["features"])
    assert len(wzdx["features"]) == 2


def test_a_measure_ended_an_hour_ago_leaves_every_feed() -> None:
    closed = ms.every_measure(NOW)[0]
    ended = closed.model_copy(
        update={
            "validity": closed.validity.model_copy(
                update={"ends_at": NOW - timedelta(hours=1), "starts_at": NOW - timedelta(days=1)}
            )
        }
    )
    for renderer in (Datex2Situations(), Datex2Regulations(), WzdxWorkZones(), CifsXml()):
        assert renderer.check(ended, CTX) == ["ended"]


def test_an_order_relayed_by_the_national_base_is_a_road_authority_s_word_in_datex2() -> None:
    relayed = ms.from_national_base(ms.every_measure(NOW)[0])
    document = feed(Datex2Situations(), [relayed])
    assert datex2_errors(document) == []
    assert etree.fromstring(document).findtext(".//com:sourceType", namespaces=NS) == "roadAuthorities"


def test_alternating_traffic_with_lanes_gives_wzdx_lane_statuses() -> None:
    alternate = next(e for e in ms.every_measure(NOW) if e.id == "m-alternate")
    alternate = alternate.model_copy(update={"lanes": {"closed": 1, "total": 2, "side": "RIGHT"}})
    document = orjson.loads(feed(WzdxWorkZones(), [alternate]))
    assert wzdx_errors(document) == []
    statuses = [[lane["status"] for lane in f["properties"]["lanes"]] for f in document["features"]]
    assert statuses == [["alternating-flow", "closed"]] * 2
