"""Topic names, in one place. Several hubs can share a broker by using different prefixes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Topics:
    prefix: str = "traffic"

    @property
    def reports(self) -> str:
        """What each source said (closures, connector incidents, operator actions). Keyed by item."""
        return f"{self.prefix}.reports"

    @property
    def events(self) -> str:
        """Canonical events, compacted, keyed by event id; a tombstone when an event is gone."""
        return f"{self.prefix}.events"

    @property
    def deadletter(self) -> str:
        """Records nobody could use: the raw payload and the reason."""
        return f"{self.prefix}.deadletter"

    @property
    def normaliser_group(self) -> str:
        return f"{self.prefix}.normaliser"
