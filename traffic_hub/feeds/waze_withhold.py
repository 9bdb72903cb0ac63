"""Never two copies in Waze: what the national regulation base (DiaLog) already sends is not sent again.

Why: DiaLog publishes every French traffic-regulation order and sends its temporary no-entry
orders to Waze in its own CIFS feed. An event the hub knows only from DiaLog (every source still
reporting it is a `dialog` connector) would reach Waze twice: once from DiaLog, once from us.
Such an event is withheld from our CIFS with `NATIONAL_BASE_REASON` (the setting
`TRAFFIC_HUB_WAZE_WITHHOLD_NATIONAL_BASE`, default on, turns the rule off for a deployment where
DiaLog does not feed Waze). An event a road-works team or another source also reports (a merged
event) is ours: it is published once, by us.

The same test says which measures the regulations feed leaves out: republishing DiaLog's own
orders to the national access point would send them back where they came from.

Used by the Waze gate (`traffic_hub.feeds.waze_rules`, one line) and the regulations feed.
"""

from __future__ import annotations

from traffic_hub.model import Event

__all__ = ["NATIONAL_BASE_KINDS", "NATIONAL_BASE_REASON", "from_national_base_only", "national_base_reasons"]

# prefixes of the national base's report kinds (`dialog-regulation`: the `dialog` connector, connectors.dialog)
NATIONAL_BASE_KINDS = ("dialog",)
NATIONAL_BASE_REASON = "already sent to Waze by the national base"
_OPERATOR = "operator"


def from_national_base_only(event: Event) -> bool:
    """Every source still reporting the event is the national base (operators' actions aside)."""
    reporting = [s for s in event.sources if s.active and s.kind != _OPERATOR]
    return bool(reporting) and all(s.kind.startswith(NATIONAL_BASE_KINDS) for s in reporting)


def national_base_reasons(event: Event, *, enabled: bool = True) -> list[str]:
    """[NATIONAL_BASE_REASON] when the Waze feed must leave the event to the national base, else []."""
    return [NATIONAL_BASE_REASON] if enabled and from_national_base_only(event) else []
