"""One NaN in one feature of an upstream GeoJSON costs that feature only (issue 14, finding 11, GeoJSON part).

`NaN`, `Infinity` and `-Infinity` are not JSON (RFC 8259), yet pandas / GeoPandas and many exporters
write them. A single one used to make the whole document a payload error (every other feature
lost). The decision: in a feature's geometry it rejects that feature (dead-lettered with the feature's
index and the path of the value); in its properties it means "no value" (null), as those exporters mean
it. The other features go through. The same holds for WZDx feeds (GeoJSON too).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from connectors.base import ParseContext, PayloadError
from connectors.config import ConnectorConfig
from connectors.fetch import make_client
from connectors.geojson import GeoJsonParser
from connectors.runner import ConnectorRunner
from connectors.wzdx import WzdxParser
from tests.connectors.httpserver import LocalServer, Route, local_server
from tests.hostile.kafkalog import read_topic, wait_for
from traffic_hub.kafka import Publisher
from traffic_hub.topics import Topics

WZDX = Path(__file__).resolve().parents[1] / "fixtures" / "sources" / "wzdx"
CTX = ParseContext(source="opendata", received_at=datetime.now(UTC))


def feature(ident: str, coordinates: str, properties: str = "{}") -> str:
    geometry = f'{{"type": "Point", "coordinates": {coordinates}}}'
    return f'{{"type": "Feature", "id": "{ident}", "geometry": {geometry}, "properties": {properties}}}'


def collection(*features: str) -> bytes:
    return f'{{"type": "FeatureCollection", "features": [{", ".join(features)}]}}'.encode()


DOCUMENT = collection(
    feature("ok-1", "[3.0561, 50.6301]"),
    feature("nan-in-geometry", "[3.0561, NaN]"),
    feature("ok-2", "[3.0700, 50.6400]", '{"longueur": NaN, "description": "Travaux"}'),
    feature("inf-in-geometry", "[-Infinity, 50.63]"),
)


def test_a_nan_rejects_its_feature_only_with_index_and_path() -> None:
    parsed = GeoJsonParser().parse(DOCUMENT, CTX)

    assert [incident.source_id for incident in parsed.incidents] == ["ok-1", "ok-2"]
    assert parsed.incidents[1].description == "Travaux"  # NaN in a property: no value, feature kept
    assert [(reject.source_id, reject.reason) for reject in parsed.rejects] == [
        ("nan-in-geometry", "feature #1: non-finite number (NaN or Infinity) at geometry.coordinates[1]"),
        ("inf-in-geometry", "feature #3: non-finite number (NaN or Infinity) at geometry.coordinates[0]"),
    ]
    assert b"NaN" in parsed.rejects[0].raw  # the dead letter shows the value as the source wrote it


def test_wzdx_features_get_the_same_treatment() -> None:
    document = orjson.loads((WZDX / "scenario6_multi_lane_closure_linestring_example.geojson").read_bytes())
    good = document["features"][0]
    broken = orjson.loads(orjson.dumps(good))
    broken["id"] = "broken"
    text = orjson.dumps({**document, "features": [good, broken]}).decode()
    first_coordinate = orjson.dumps(broken["geometry"]["coordinates"][0]).decode()
    index = text.rindex(first_coordinate)
    text = text[:index] + "[NaN, 40.0]" + text[index + len(first_coordinate) :]

    parsed = WzdxParser().parse(text.encode(), CTX)

    assert [incident.source_id for incident in parsed.incidents] == [good["id"]]
    assert [reject.source_id for reject in parsed.rejects] == ["broken"]
    assert parsed.rejects[0].reason.startswith("feature #1: non-finite number (NaN or Infinity) at geometry.")


@pytest.mark.parametrize(
    "payload",
    [
        b'{"type": "FeatureCollection", "features": [], "x": NaNa}',  # not the token: still not JSON
        b'{"type": "FeatureCollection", "features": [{"name": "\\ud800"}], "n": NaN}',  # lone surrogate
        b"[" * 5000 + b"NaN" + b"]" * 5000,  # nesting past the limit
    ],
)
def test_leniency_stops_at_the_three_tokens(payload: bytes) -> None:
    with pytest.raises(PayloadError, match=r"not valid JSON|nested deeper"):
        GeoJsonParser().parse(payload, CTX)


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with local_server() as running:
        yield running


@pytest.mark.kafka
async def test_through_the_runner_the_good_features_are_published_and_the_bad_one_dead_lettered(
    server: LocalServer, publisher: tuple[Publisher, Topics], kafka_bootstrap: str
) -> None:
    producer, topics = publisher
    server.set("/opendata.geojson", Route(DOCUMENT, content_type="application/geo+json"))
    cfg = ConnectorConfig.model_validate(
        {"name": "opendata", "kind": "geojson", "url": server.url("/opendata.geojson"), "allow_private": True},
        context={"testing": True},
    )
    async with (
        make_client(trust_env=False) as client,
        ConnectorRunner([cfg], client, producer, topics, parser_for=lambda kind: GeoJsonParser()) as runner,
    ):
        state = runner.state("opendata")
        await wait_for(lambda: state.incidents_published >= 2, within=30)

    assert (state.incidents_published, state.rejects, state.payload_errors, state.status) == (2, 2, 0, "ok")
    letters = [orjson.loads(value) for value in await read_topic(kafka_bootstrap, topics.deadletter)]
    assert sorted(letter["key"] for letter in letters) == ["opendata:inf-in-geometry", "opendata:nan-in-geometry"]
    assert all("non-finite number" in letter["reason"] for letter in letters)

