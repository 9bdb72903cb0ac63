"""Replay of recorded sample sources for the demo: shifted to today, served as local files.

The samples (in `samples/`) were recorded as if fetched on `RECORDED_AT`. At start the demo copies
them to a temporary folder with every timestamp moved by (now - RECORDED_AT), so the demo always
shows current incidents, and points one connector of each kind at its file.
"""

from __future__ import annotations

import re
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from connectors.config import ConnectorConfig

SAMPLES = Path(__file__).parent / "samples"
RECORDED_AT = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)

_ISO = re.compile(r"(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(\.\d+|:\d{3})?(Z|[+-]\d{2}:\d{2})?")
_MILLIS = re.compile(r"(?<![\d.])(1[7-9]\d{11})(?![\d.])")

DEMO_SOURCES: list[tuple[str, str, str, dict[str, object]]] = [
    ("demo-waze", "waze-partner-feed", "lille_waze-partner-feed.json", {}),
    ("demo-bison-fute", "datex2", "lille_datex2-v3_situations.xml", {}),
    ("demo-wzdx", "wzdx", "lille_wzdx-4.2_workzones.geojson", {}),
    ("demo-cifs", "cifs", "lille_cifs.xml", {}),
    (
        "demo-opendata",
        "geojson",
        "lille_opendata_chantiers.geojson",
        {
            "id_field": "identifiant",
            "type_field": "nature",
            "description_field": "libelle",
            "street_field": "voie",
            "city_field": "commune",
            "start_field": "date_debut",
            "end_field": "date_fin",
            "direction_field": "sens",
        },
    ),
]


def shift_text(text: str, delta: timedelta) -> str:
    """Move every ISO-8601 timestamp and epoch-millisecond number in `text` by `delta`."""

    def iso(match: re.Match[str]) -> str:
        date, clock, fraction, zone = match.group(1), match.group(2), match.group(3) or "", match.group(4) or ""
        moment = datetime.fromisoformat(f"{date}T{clock}") + delta
        separator = match.group(0)[10]  # "T", or " " in Waze's "2026-11-29 08:50:00:000"
        return f"{moment.strftime('%Y-%m-%d')}{separator}{moment.strftime('%H:%M:%S')}{fraction}{zone}"

    def millis(match: re.Match[str]) -> str:
        return str(int(match.group(1)) + int(delta.total_seconds() * 1000))

    return _MILLIS.sub(millis, _ISO.sub(iso, text))


def replay_configs(now: datetime, folder: Path | None = None, interval_s: float = 30.0) -> list[ConnectorConfig]:
    """Write today's copies of the samples and return one connector per sample."""
    target = folder or Path(tempfile.mkdtemp(prefix="traffic-hub-demo-"))
    delta = now.replace(second=0, microsecond=0) - RECORDED_AT
    configs = []
    for name, kind, filename, options in DEMO_SOURCES:
        out = target / filename
        out.write_text(shift_text((SAMPLES / filename).read_text(encoding="utf-8"), delta), encoding="utf-8")
        configs.append(
            ConnectorConfig.model_validate(
                {"name": name, "kind": kind, "url": out.as_uri(), "interval_s": interval_s, "options": options},
                context={"allow_file": True},
            )
        )
    return configs
