"""TrafficRegulationPublication in: each regulation of each order becomes a measure report, safely."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from connectors import datex2_regulation as regulation
from connectors.base import ParseContext, PayloadError
from connectors.config import ConnectorConfig
from connectors.registry import parser_for
from tests.connectors import regulations_xml as x
from tests.connectors.sources import read
from traffic_hub.model import IncidentReport

NOW = datetime.now(UTC).replace(microsecond=0)


def _parse(*orders: str, kind: str = "datex2") -> dict[str, IncidentReport]:
    payload = (x.HEAD + "".join(orders) + x.TAIL).encode()
    parsed = parser_for(kind).parse(payload, ParseContext(source="dialog", received_at=NOW))
    assert parsed.rejects == [], [r.reason for r in parsed.rejects]
    assert parsed.snapshot is True
    return {incident.source_id: incident for incident in parsed.incidents}


def test_each_type_of_regulation_becomes_its_measure() -> None:
    starts, ends = NOW - timedelta(days=1), NOW + timedelta(days=10)
    where = x.validity(starts, ends) + x.location()
    found = _parse(
        x.order(
            "closed",
            '<typeOfRegulation xsi:type="AccessRestriction"><accessRestrictionType>noEntry'
            "</accessRestrictionType></typeOfRegulation>",
            where,
        ),
        x.order(
            "speed",
            '<typeOfRegulation xsi:type="SpeedLimit"><maxValue><numericValue>30</numericValue>'
            "<unitOfMeasure>kilometresPerHour</unitOfMeasure></maxValue></typeOfRegulation>",
            where,
        ),
        x.order(
            "speed37",
            '<typeOfRegulation xsi:type="MaxSpeedLimit"><numericalValue>50</numericalValue>'
            "<unitOfMeasure>kilometresPerHour</unitOfMeasure></typeOfRegulation>",
            x.validity(starts, ends, tag="TimeValidityCondition") + x.location(),
        ),
        x.order(
            "alternate",
            '<typeOfRegulation xsi:type="RoadOrCarriagewayOrLaneManagement">'
            "<roadOrCarriagewayOrLaneManagementType>singleAlternateLineTraffic"
            "</roadOrCarriagewayOrLaneManagementType></typeOfRegulation>",
            where,
        ),
        x.order(
            "overtaking",
            '<typeOfRegulation xsi:type="GeneralInstructionToRoadUsers">'
            "<generalInstructionToRoadUsersType>noOvertaking</generalInstructionToRoadUsersType>"
            "</typeOfRegulation>",
            where,
        ),
        x.order("overtaking37", '<typeOfRegulation xsi:type="ProhibitionOfOvertaking"/>', where),
    )
    measures = {
        key.split("/")[0]: report.measure.model_dump(exclude_none=True)
        for key, report in found.items()
        if report.measure
    }
    assert measures == {
        "closed": {"type": "road_closed"},
        "speed": {"type": "speed_limit", "speed_kmh": 30},
        "speed37": {"type": "speed_limit", "speed_kmh": 50},
        "alternate": {"type": "alternate_traffic"},
        "overtaking": {"type": "no_overtaking"},
        "overtaking37": {"type": "no_overtaking"},
    }
    closed = found["closed/1"]
    assert closed.kind == "datex2-regulation"
    assert closed.source_version == "3"
    assert closed.validity.starts_at == starts
    assert closed.validity.ends_at == ends
    assert closed.street == "Rue Nationale"
    assert closed.ended is False
    assert closed.said["regulation_id"] == "2026-closed"


def test_vehicle_conditions_with_negations_are_limits_kinds_and_exemptions() -> None:
    vehicles = (
        '<conditions xsi:type="ConditionSet"><operator>or</operator>'
        + x.vehicle(
            "<com:vehicleType>heavyGoodsVehicle</com:vehicleType><com:grossWeightCharacteristic>"
            "<com:comparisonOperator>lessThanOrEqualTo</com:comparisonOperator>"
            "<com:grossVehicleWeight>3.5</com:grossVehicleWeight></com:grossWeightCharacteristic>"
        )
        + x.vehicle(
            "<com:heightCharacteristic><com:comparisonOperator>greaterThan</com:comparisonOperator>"
            "<com:vehicleHeight>3.2</com:vehicleHeight></com:heightCharacteristic>"
        )
        + x.vehicle("<com:loadType>hazardousMaterials</com:loadType>")
        + x.vehicle(
            "<com:emissions><com:emissionClassificationOther>critair4</com:emissionClassificationOther></com:emissions>"
        )
        + x.vehicle("<com:vehicleUsage>emergencyServices</com:vehicleUsage>", negate=True)
        + x.vehicle(
            "<com:_vehicleCharacteristicsExtension><com:vehicleCharacteristicsExtended>"
            "<dx:otherVehicleType>Riverains</dx:otherVehicleType></com:vehicleCharacteristicsExtended>"
            "</com:_vehicleCharacteristicsExtension>",
            negate=True,
        )
        + '<conditions xsi:type="AccessCondition"><negate>true</negate><accessConditionType>loadingAndUnloading'
        "</accessConditionType></conditions></conditions>"
    )
    found = _parse(
        x.order(
            "lorries",
            '<typeOfRegulation xsi:type="AccessRestriction"><accessRestrictionType>noEntry'
            "</accessRestrictionType></typeOfRegulation>",
            x.validity(NOW - timedelta(days=1), None) + x.location() + vehicles,
        )
    )
    measure = found["lorries/1"].measure
    assert measure is not None
    assert measure.model_dump(exclude_none=True) == {
        "type": "vehicle_restriction",
        "vehicles": {
            "max_weight_t": 3.5,
            "max_height_m": 3.2,
            "kinds": ["heavy_goods_vehicle", "hazardous_goods"],
            "critair": ["critair4"],
            "except": ["emergency_services", "residents", "deliveries"],
        },
    }


def test_recurring_periods_exceptions_and_overnight_slots() -> None:
    periods = (
        "<com:validPeriod><com:recurringTimePeriodOfDay><com:startTimeOfPeriod>21:00:00+00:00</com:startTimeOfPeriod>"
        "<com:endTimeOfPeriod>06:00:00+00:00</com:endTimeOfPeriod></com:recurringTimePeriodOfDay>"
        "<com:recurringDayWeekMonthPeriod><com:applicableDay>friday</com:applicableDay>"
        "<com:applicableDay>sunday</com:applicableDay></com:recurringDayWeekMonthPeriod></com:validPeriod>"
        "<com:exceptionPeriod><com:recurringDayWeekMonthPeriod><com:applicableDay>sunday</com:applicableDay>"
        "</com:recurringDayWeekMonthPeriod></com:exceptionPeriod>"
        "<com:exceptionPeriod><com:recurringSpecialDay><com:specialDayType>publicHoliday</com:specialDayType>"
        "</com:recurringSpecialDay></com:exceptionPeriod>"
    )
    found = _parse(
        x.order(
            "nights",
            '<typeOfRegulation xsi:type="AccessRestriction"><accessRestrictionType>noEntry'
            "</accessRestrictionType></typeOfRegulation>",
            x.validity(NOW - timedelta(days=1), NOW + timedelta(days=30), periods) + x.location(),
        )
    )
    report = found["nights/1"]
    schedule = report.validity.schedule
    assert schedule is not None
    # local wall-clock times (the +00:00 DiaLog writes is not applied); Friday 21:00-06:00 runs into Saturday;
    # Sunday is an exception day: its hours go, the Monday hours of its night stay (exceptions name days)
    assert schedule.model_dump(exclude_none=True, exclude={"except_"}) == {
        "friday": ["21:00-24:00"],
        "saturday": ["00:00-06:00"],
        "monday": ["00:00-06:00"],
    }
    assert schedule.except_ is not None
    assert schedule.except_.public_holidays is True


def test_withdrawn_and_past_orders_end_their_measures() -> None:
    where = x.validity(NOW - timedelta(days=10), NOW - timedelta(days=1)) + x.location()
    closed = (
        '<typeOfRegulation xsi:type="AccessRestriction"><accessRestrictionType>noEntry</accessRestrictionType>'
        "</typeOfRegulation>"
    )
    found = _parse(
        x.order("past", closed, where),
        x.order("gone", closed, x.validity(NOW, None) + x.location(), status="withdrawn"),
    )
    assert found["past/1"].ended
    assert found["gone/1"].ended


def test_unusable_regulations_are_rejects_naming_the_reason() -> None:
    parking = (
        '<typeOfRegulation xsi:type="StandingOrParkingRestriction"><standingOrParkingRestrictionType>'
        "parkingProhibited</standingOrParkingRestrictionType></typeOfRegulation>"
    )
    payload = (x.HEAD + x.order("parking", parking, x.validity(NOW, None) + x.location()) + x.TAIL).encode()
    parsed = parser_for("datex2").parse(payload, ParseContext(source="x", received_at=NOW))
    assert parsed.incidents == []
    assert [r.source_id for r in parsed.rejects] == ["parking"]
    assert "StandingOrParkingRestriction" in parsed.rejects[0].reason


def test_the_national_base_keeps_only_the_orders_in_mel() -> None:
    sample = read("datex2/fr-dialog/dialog-regulations_mel-derived.xml")
    parsed = parser_for("dialog").parse(sample, ParseContext(source="dialog", received_at=NOW))
    ids = sorted(incident.source_id for incident in parsed.incidents)
    # order 1 moved into Lille (4 regulations, one street each), the copy of order 2 moved into Roubaix;
    # order 2 (Meurthe-et-Moselle) dropped
    assert ids == [
        *(f"018a45df-58c3-740c-b712-37d3d2ca25f8/{n}" for n in range(1, 5)),
        "018b19e9-7f21-7b21-9200-5b4a09b00fde/1",
    ]
    assert {incident.kind for incident in parsed.incidents} == {"dialog-regulation"}
    assert (
        parser_for("dialog")
        .parse(read("datex2/fr-dialog/dialog-regulations.xml"), ParseContext(source="dialog", received_at=NOW))
        .incidents
        == []
    )


@pytest.mark.parametrize(
    "payload",
    [
        b'<!DOCTYPE d [<!ENTITY e SYSTEM "http://example.invalid/x">]><d2:payload xmlns:d2="x">&e;</d2:payload>',
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">]><payload/>',
    ],
)
def test_hostile_documents_are_refused_before_parsing(payload: bytes) -> None:
    for kind in ("datex2", "dialog"):
        with pytest.raises(PayloadError, match=r"DTD|DOCTYPE"):
            parser_for(kind).parse(payload, ParseContext(source="x", received_at=NOW))


def test_a_situation_publication_is_not_the_national_base() -> None:
    with pytest.raises(PayloadError, match="TrafficRegulationPublication"):
        parser_for("dialog").parse(read("datex2/nl-ndw/situations.xml"), ParseContext(source="x", received_at=NOW))


def test_work_per_document_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(regulation, "MAX_CONDITIONS", 2)
    monkeypatch.setattr(regulation, "_MAX_GEOJSON", 200)
    long_line = '{"type":"LineString","coordinates":[' + ",".join(["[3.05,50.63]"] * 40) + "]}"
    payload = x.document(
        x.order("many", x.no_entry(), x.validity(NOW, None) + x.location() + x.location()),
        x.order("huge", x.no_entry(), x.validity(NOW, None) + x.location(long_line)),
    )
    parsed = parser_for("datex2").parse(payload, ParseContext(source="x", received_at=NOW))
    assert parsed.incidents == []
    reasons = {r.source_id: r.reason for r in parsed.rejects}
    assert "more than 2 conditions" in reasons["many"]
    assert "more than 200" in reasons["huge"]
    monkeypatch.setattr(regulation, "MAX_ORDERS", 1)
    with pytest.raises(PayloadError, match="more than the 1"):
        parser_for("datex2").parse(payload, ParseContext(source="x", received_at=NOW))


def test_a_dialog_connector_defaults_to_the_national_base_with_room_for_it() -> None:
    config = ConnectorConfig.model_validate({"name": "dialog", "kind": "dialog", "enabled": False})
    assert config.url == "https://dialog.beta.gouv.fr/api/regulations.xml"
    assert config.max_bytes == 512 * 1024 * 1024
    assert config.enabled is False
    own = ConnectorConfig.model_validate(
        {"name": "d", "kind": "dialog", "url": "https://x.example/r.xml", "max_bytes": 9}
    )
    assert (own.url, own.max_bytes) == ("https://x.example/r.xml", 9)
