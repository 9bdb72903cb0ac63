"""Every kind of the connectors file has a parser."""

from __future__ import annotations

import pytest

from connectors.registry import KINDS, parser_for, parsers


def test_every_kind_has_its_parser() -> None:
    assert sorted(parsers()) == sorted(KINDS)
    assert all(parser_for(kind).kind == kind for kind in KINDS)


def test_unknown_kind() -> None:
    with pytest.raises(KeyError, match="unknown connector kind 'rss'"):
        parser_for("rss")
