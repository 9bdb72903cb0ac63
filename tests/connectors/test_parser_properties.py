"""Property tests: whatever the bytes, a parser returns reports and rejects or raises PayloadError."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from connectors.base import Parsed, Parser, PayloadError
from connectors.coords import latlon_text
from connectors.datex2_location import shape
from connectors.registry import parsers
from connectors.xml_safety import parse_xml
from tests.connectors.sources import LILLE, context, read
from traffic_hub.model import IncidentReport, LineString

SAMPLES: dict[str, list[bytes]] = {
    "waze-partner-feed": [
        (LILLE / "lille_waze-partner-feed.json").read_bytes(),
        read("waze-partner-feed/antofagasta-cl_partner-feed_2024-08-23T1413Z.json"),
    ],
    "datex2": [
        (LILLE / "lille_datex2-v3_situations.xml").read_bytes(),
        (LILLE / "lille_datex2-v2.3_situations.xml").read_bytes(),
        read("datex2/nl-ndw/srti.xml"),
    ],
    "wzdx": [(LILLE / "lille_wzdx-4.2_workzones.geojson").read_bytes()],
    "cifs": [(LILLE / "lille_cifs.xml").read_bytes(), (LILLE / "lille_cifs.json").read_bytes()],
    "geojson": [(LILLE / "lille_opendata_chantiers.geojson").read_bytes()],
    "dialog": [read("datex2/fr-dialog/dialog-regulations_mel-derived.xml")],
}
KINDS = sorted(SAMPLES)
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)


def _parse_or_payload_error(kind: str, payload: bytes) -> Parsed | None:
    try:
        parsed = parsers()[kind].parse(payload, context())
    except PayloadError:
        return None
    for incident in parsed.incidents:
        assert isinstance(incident, IncidentReport)
        assert IncidentReport.model_validate_json(incident.model_dump_json()) == incident
    assert all(isinstance(reject.raw, bytes) and reject.reason for reject in parsed.rejects)
    return parsed


@PROPERTY
@given(kind=st.sampled_from(KINDS), payload=st.binary(max_size=400))
def test_random_bytes(kind: str, payload: bytes) -> None:
    _parse_or_payload_error(kind, payload)


@PROPERTY
@given(kind=st.sampled_from(KINDS), data=st.data())
def test_byte_mutations_of_real_samples(kind: str, data: st.DataObject) -> None:
    sample = data.draw(st.sampled_from(SAMPLES[kind]))
    start = data.draw(st.integers(0, len(sample)))
    end = data.draw(st.integers(start, min(len(sample), start + 40)))
    patch = data.draw(
        st.binary(max_size=20) | st.sampled_from([b"<", b">", b'"', b"{", b"]", b"&amp;", b"-1", b"\x00"])
    )
    _parse_or_payload_error(kind, sample[:start] + patch + sample[end:])


def _mutate_json(document: Any, path: list[int], value: Any) -> Any:
    """Replace the leaf or container reached by following `path` (indices modulo sizes) with `value`."""
    if not path or not isinstance(document, dict | list) or not document:
        return value
    keys = list(document) if isinstance(document, dict) else list(range(len(document)))
    key = keys[path[0] % len(keys)]
    copy: Any = dict(document) if isinstance(document, dict) else list(document)
    copy[key] = _mutate_json(document[key], path[1:], value)
    return copy


@PROPERTY
@given(
    kind=st.sampled_from(["waze-partner-feed", "wzdx", "geojson"]),
    path=st.lists(st.integers(0, 50), min_size=1, max_size=6),
    value=json_values,
    data=st.data(),
)
def test_value_mutations_of_json_samples(kind: str, path: list[int], value: Any, data: st.DataObject) -> None:
    sample = data.draw(st.sampled_from(SAMPLES[kind]))
    mutated = _mutate_json(orjson.loads(sample), path, value)
    _parse_or_payload_error(kind, orjson.dumps(mutated))


@PROPERTY
@given(
    kind=st.sampled_from(["datex2", "cifs"]),
    index=st.integers(0, 400),
    value=st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), max_size=30),
    drop=st.booleans(),
    data=st.data(),
)
def test_element_mutations_of_xml_samples(kind: str, index: int, value: str, drop: bool, data: st.DataObject) -> None:
    sample = data.draw(st.sampled_from([s for s in SAMPLES[kind] if s.lstrip().startswith(b"<")]))
    root = parse_xml(sample)
    elements = list(root.iter())
    target = elements[index % len(elements)]
    parent = target.getparent()
    if drop and parent is not None:
        parent.remove(target)
    else:
        target.text = value
    _parse_or_payload_error(kind, etree.tostring(root))


@PROPERTY
@given(
    st.lists(
        st.tuples(st.floats(-180, 180, allow_nan=False), st.floats(-90, 90, allow_nan=False)),
        min_size=2,
        max_size=30,
        unique=True,
    )
)
def test_datex2_poslist_round_trip(points: list[tuple[float, float]]) -> None:
    """lon/lat → GML posList ("lat lon …") → parsed geometry gives the same lon/lat points back."""
    pos_list = " ".join(f"{lat!r} {lon!r}" for lon, lat in points)
    assert latlon_text(pos_list) == points
    location = etree.fromstring(
        '<loc:locationReference xmlns:loc="http://datex2.eu/schema/3/locationReferencing">'
        f'<loc:gmlLineString srsName="EPSG:4326"><loc:posList>{pos_list}</loc:posList></loc:gmlLineString>'
        "</loc:locationReference>"
    )
    geometry = shape(location)
    expected = [list(points[0])]
    for point in points[1:]:
        if [*point] != expected[-1]:
            expected.append(list(point))
    assert geometry == LineString(type="LineString", coordinates=expected)


def test_every_kind_has_samples() -> None:
    registered: dict[str, Parser] = parsers()
    assert sorted(registered) == KINDS
