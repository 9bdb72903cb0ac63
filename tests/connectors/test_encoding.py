"""What a connector publishes stays what it published before the parse path was made fast.

Pinned two ways on every recorded feed of every source kind (tests/fixtures/sources):
- each INCIDENT record value is byte-identical to `Report(...).model_dump_json()` (pydantic, as the
  runner wrote it before `connectors.encoding`), and each content hash to the former formula, also for
  the `ended` copy a vanished item gets;
- a SHA-256 over every record of one cycle (topic, key, value; dead letters by key, they carry the
  time they were made) equals the one computed with the code before the speed-up (commit dfd66f6):
  parser changes that alter a byte of any report fail here.
Run time: about 2 s (the NYC Waze sample is 1.7 MB).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from connectors.base import ParseContext
from connectors.encoding import content_hash, incident_json, incident_report
from connectors.fetch import FetchResult, Validators
from connectors.registry import parser_for
from connectors.runner import Memory, plan_cycle
from tests.connectors.sources import RECEIVED, SOURCES
from tests.connectors.test_geojson import LILLE_OPTIONS
from traffic_hub.model import IncidentReport, Report, ReportKind
from traffic_hub.topics import Topics

TOPICS = Topics("pin")

# (kind, fixture, options) → SHA-256 of the cycle's records, computed at dfd66f6 (before the speed-up).
FEEDS: dict[tuple[str, str], str] = {
    ("waze-partner-feed", "waze-partner-feed/nyc_partner-feed_2019-03-22T2138Z.json"): (
        "d6344d6841ad46de294c32fdb3b203e4ff88d4c75f8408685c8e04b974b1a2b4"
    ),
    ("waze-partner-feed", "waze-partner-feed/antofagasta-cl_partner-feed_2024-08-23T1413Z.json"): (
        "40bc5b24f5b71b07cc7fed565d123c1e70adc2996d8888141eeda9117bd1f311"
    ),
    ("waze-partner-feed", "lille/lille_waze-partner-feed.json"): (
        "7b448951ed47dbe82d86c4ae16707c8bae028a76b5d9d4dd71e7b1fb47a6aed8"
    ),
    ("datex2", "datex2/minimal/minimal_situationpublication_v3.xml"): (
        "68b8f3b8e4ca77a4ec20634456cc1ae22a77a3f240ceff884fa0dccd2ebddf65"
    ),
    ("datex2", "datex2/minimal/closure_locref_messagecontainer_v3.xml"): (
        "f7e8ee0e7b76d2814a7226bc9d49aeec747c4ca5cbbf7be1794bf23013ce26cf"
    ),
    ("datex2", "datex2/fr-bisonfute-tipi/events.xml"): (
        "11da5e32ad015c06eab429c075715aa56acb93f70c6bc4c10ec994073c94b745"
    ),
    ("datex2", "datex2/fi-fintraffic/roadworks.xml"): (
        "b1bf75a53224759be0337076b5c5842a65315ced8b775ffe22523e1b021d4924"
    ),
    ("datex2", "datex2/no-svv/GetSituations_Datex3.xml"): (
        "28ef2780665ea8028864754f2a5067d1342b4a2ac06b0e1759bce6ded6c73a04"
    ),
    ("datex2", "datex2/nl-ndw/srti.xml"): "dc2e1735baf6e86d8605e03d432ccf60a307d32361309580279a1a1763b612f6",
    ("datex2", "datex2/nl-ndw/situations.xml"): "937fc4ee1ec0e730081cee8738f9d6335936228e78082c493babe7d3647030ad",
    ("datex2", "lille/lille_datex2-v2.3_situations.xml"): (
        "c5086bf103615018b27e2c0c0c5a69618a0707e19d5cad7151c2c65b6c7d8dea"
    ),
    ("datex2", "lille/lille_datex2-v3_situations.xml"): (
        "6453cc7179f12d56a63870d3be3f207c4d7954c11ba6b2a84b7896902ac02d61"
    ),
    ("dialog", "datex2/fr-dialog/dialog-regulations_mel-derived.xml"): (
        "e31d24e9fd4013e7d0cf18caf81a3116c06484999bbe932ac9947694ddc43c96"
    ),
    ("dialog", "datex2/fr-dialog/dialog-regulations.xml"): (
        "f9da4ded49833a322c92bf2a2521bea6ea91275b688fd32d3591d75ba5a297fa"
    ),
    ("cifs", "cifs/icone-colorado_legacy-waze-incident-feed_2024-11-07.xml"): (
        "6023a60bd262aab8471c55df4bdd87a2460b34f5a6dd2a48c0fc465df99576c7"
    ),
    ("cifs", "cifs/dialog-fr_cifs-feed_test-fixture.xml"): (
        "7af4b0611629248be28fe0bd3ddacf636a38af896a51855c646361ef0faf855a"
    ),
    ("cifs", "cifs/icone-kentucky_legacy-waze-incident-feed_2020-08-21.xml"): (
        "2387587c6b42a72db1cd68d8c61d8da8d0078ae1e2b29a1e76968ee5d7309027"
    ),
    ("cifs", "lille/lille_cifs.xml"): "6124ba1c3091dc1c785b5a0bd02d73e3a5a6653d40f1f7fc57f945ba89177f98",
    ("cifs", "lille/lille_cifs.json"): "79531f3bd294a1ff47abfaeb8c0b2088ccbdd5ef01de1d91afeb7f11ea4ac6f1",
    ("geojson", "lille/lille_opendata_chantiers.geojson"): (
        "295d5be1d7082cb7d66bf8c97708fa13f6726d50122274cb1e5739c1b863ebfa"
    ),
    ("wzdx", "lille/lille_wzdx-4.2_workzones.geojson"): (
        "6d6d971d295898083c751b90f541d40a9bcaec0db48a6aab93f8f159466a85f9"
    ),
    ("wzdx", "wzdx/arrow_board_ok_example.geojson"): "f1bff9156a1d8dbc0a16e82d5d3bd8032fc0ed2be3042a95ea46aa1f8d353bd6",
    ("wzdx", "wzdx/camera_error_example.geojson"): "d6508dc72f4affe7c6868a1a434599ae2948980cac3c555afa6a92155fa41685",
    ("wzdx", "wzdx/scenario1_simple_linestring_example.geojson"): (
        "7ae8f04003be2601df4b0326ab8851db8e07958d285e697f7036bb6103dec26d"
    ),
    ("wzdx", "wzdx/scenario1_simple_multipoint_example.geojson"): (
        "5ee32eb86778c1cb8d9c3e453dba17ca92274b6b4673471d62ede55290e08dfa"
    ),
    ("wzdx", "wzdx/scenario2_laneshift_linestring_example.geojson"): (
        "3318752c166d4728a7b717182540b36bd456599919765ecb784b097e4ceae6ea"
    ),
    ("wzdx", "wzdx/scenario3_shoulder_bidirectional_linestring_example.geojson"): (
        "a4bf993ab0bdac23d6cb8d9b22186448dbb77565fccf6ec9126bbc034ddc7a63"
    ),
    ("wzdx", "wzdx/scenario4_detour_linestring_example.geojson"): (
        "7a1d598a310f82c7ee68bafcf66141c63d4151e80903a9eb83d9537da80fafe9"
    ),
    ("wzdx", "wzdx/scenario5_recurring_linestring_example.geojson"): (
        "068377e3cef59bdce9a0a4aefa9f0ee5ed0486434eb1f0d5f0de9e13afd75448"
    ),
    ("wzdx", "wzdx/scenario6_multi_lane_closure_linestring_example.geojson"): (
        "df2f4be01d20b32362f13303d81d87393daf100ab77381f5343043b61ed17241"
    ),
    ("wzdx", "wzdx/scenario7_mobileoperation_linestring_example.geojson"): (
        "0f5ff7e11d36555d03d6d4ca66104ac161e9e807222d848621694dc3733f15b8"
    ),
    ("wzdx", "wzdx/scenario8_local_access_only_bidirectional_linestring_example.geojson"): (
        "7941adf6410c65658a5ba90ab683965c65d3c548e439f0ac40bac0fd455ea238"
    ),
}


def _options(kind: str) -> Mapping[str, Any]:
    return LILLE_OPTIONS if kind == "geojson" else {}


def _plan_digest(kind: str, relative: str, received_at: datetime = RECEIVED) -> str:
    """SHA-256 of one cycle's records for the fixture, dead letters by topic and key only."""
    body = (SOURCES / relative).read_bytes()
    result = FetchResult(200, body, Validators(etag='"pin"'), "application/octet-stream", 0.0)
    ctx = ParseContext(source="pin", received_at=received_at, options=_options(kind))
    plan = plan_cycle(parser_for(kind), result, ctx, Memory(), TOPICS, "https://example.invalid/feed")
    digest = hashlib.sha256()
    for record in plan.records:
        value = b"" if record.topic == TOPICS.deadletter else (record.value or b"")
        for part in (record.topic.encode(), record.key, value):
            digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()


def _incidents(kind: str, relative: str) -> list[IncidentReport]:
    ctx = ParseContext(source="pin", received_at=RECEIVED, options=_options(kind))
    return parser_for(kind).parse((SOURCES / relative).read_bytes(), ctx).incidents


def _pydantic_report(key: str, received_at: datetime, incident: IncidentReport) -> bytes:
    report = Report(key=key, kind=ReportKind.INCIDENT, source="pin", received_at=received_at, incident=incident)
    return report.model_dump_json().encode()


def _pydantic_hash(incident: IncidentReport) -> str:
    return hashlib.sha256(orjson.dumps(incident.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)).hexdigest()


@pytest.mark.parametrize(("kind", "relative"), sorted(FEEDS))
def test_records_are_the_ones_pydantic_writes(kind: str, relative: str) -> None:
    incidents = _incidents(kind, relative)
    for incident in incidents:
        for version in (incident, incident.model_copy(update={"ended": True})):
            key = f"pin:{version.source_id}"
            assert incident_report(key, "pin", RECEIVED, version) == _pydantic_report(key, RECEIVED, version)
            assert incident_json(version) == version.model_dump_json().encode()
            assert content_hash(version) == _pydantic_hash(version)


@pytest.mark.parametrize(("kind", "relative"), sorted(FEEDS))
def test_a_cycle_publishes_the_bytes_it_published_before(kind: str, relative: str) -> None:
    assert _plan_digest(kind, relative) == FEEDS[(kind, relative)]


@pytest.mark.parametrize(
    "received_at",
    [
        datetime(2026, 3, 29, 1, 30, tzinfo=UTC),
        datetime(2026, 3, 29, 3, 30, 0, 250, tzinfo=ZoneInfo("Europe/Paris")),
        datetime(2026, 10, 25, 2, 30, tzinfo=timezone(timedelta(hours=-3, minutes=-30))),
    ],
)
def test_reception_times_are_written_as_pydantic_writes_them(received_at: datetime) -> None:
    [incident, *_] = _incidents("waze-partner-feed", "lille/lille_waze-partner-feed.json")
    assert incident_report("k", "pin", received_at, incident) == _pydantic_report("k", received_at, incident)


def test_values_orjson_does_not_write_go_through_pydantic() -> None:
    [incident, *_] = _incidents("waze-partner-feed", "lille/lille_waze-partner-feed.json")
    odd = incident.model_copy(update={"said": {"tags": {"a"}, "raw": b"x", "text": "\x00\u2028é"}})
    assert incident_json(odd) == odd.model_dump_json().encode()
    assert content_hash(odd) == _pydantic_hash(odd)
    big = incident.model_copy(update={"said": {"big": 2**70}})  # the former hash refused it too: only the record
    assert incident_json(big) == big.model_dump_json().encode()


def test_a_naive_reception_time_is_refused_as_before() -> None:
    [incident, *_] = _incidents("waze-partner-feed", "lille/lille_waze-partner-feed.json")
    with pytest.raises(ValueError, match="timezone"):
        incident_report("k", "pin", datetime(2026, 1, 1), incident)  # noqa: DTZ001 - the naive time under test
