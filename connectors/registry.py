"""Source kind name (as in the connectors file) → its parser."""

from __future__ import annotations

from connectors.base import Parser
from connectors.cifs import CifsParser
from connectors.datex2 import Datex2Parser
from connectors.dialog import DialogParser
from connectors.geojson import GeoJsonParser
from connectors.waze_partner import WazePartnerFeedParser
from connectors.wzdx import WzdxParser

KINDS = ("waze-partner-feed", "datex2", "wzdx", "cifs", "geojson", "dialog")


def parsers() -> dict[str, Parser]:
    """A fresh parser for every kind (parsers are stateless; one set per runner is enough)."""
    found: list[Parser] = [
        WazePartnerFeedParser(),
        Datex2Parser(),
        WzdxParser(),
        CifsParser(),
        GeoJsonParser(),
        DialogParser(),
    ]
    return {parser.kind: parser for parser in found}


def parser_for(kind: str) -> Parser:
    """The parser of `kind`; `KeyError` naming the known kinds when there is none."""
    try:
        return parsers()[kind]
    except KeyError:
        raise KeyError(f"unknown connector kind {kind!r}: use one of {', '.join(KINDS)}") from None
