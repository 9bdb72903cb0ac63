"""Paths of the source fixtures and a parse context for the parser tests."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from connectors.base import ParseContext

SOURCES = Path(__file__).resolve().parent.parent / "fixtures" / "sources"
LILLE = SOURCES / "lille"
# A fixed reception time (the Lille fixtures are written around it).
RECEIVED = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)


def read(relative: str) -> bytes:
    return (SOURCES / relative).read_bytes()


def context(options: Mapping[str, Any] | None = None, received_at: datetime = RECEIVED) -> ParseContext:
    return ParseContext(source="test-source", received_at=received_at, options=options or {})
