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
    def placed(self) -> str:
        """Reports placed on the road network by the normaliser's first stage, for its second (internal).

        One partition: every merge decision of the hub is made by its one consumer (docs/scaling.md)."""
        return f"{self.prefix}.placed"

    @property
    def deadletter(self) -> str:
        """Records nobody could use: the raw payload and the reason."""
        return f"{self.prefix}.deadletter"

    @property
    def normaliser_group(self) -> str:
        """The normaliser's first stage (placement): shares the reports topic's partitions."""
        return f"{self.prefix}.normaliser"

    @property
    def decision_group(self) -> str:
        """The normaliser's second stage (decision): one member at a time holds the placed topic."""
        return f"{self.prefix}.normaliser.decision"
