"""The Lille demo: a few real closures on real streets, posted by the demo teams at start.

Posted through the same service as the API (validated, scope-checked, durable in Kafka) and
idempotent by reference, so restarting the demo never duplicates them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from traffic_hub.auth import DemoKey, Principal
from traffic_hub.closures import ClosureService, ReferenceTaken, Written
from traffic_hub.errors import TrafficHubError, Unavailable
from traffic_hub.model import ClosureIn

log = logging.getLogger(__name__)


def demo_closures(now: datetime) -> list[tuple[str, dict[str, Any]]]:
    """(team, closure body) pairs; coordinates follow OpenStreetMap ways of central Lille and Roubaix."""
    day = now.replace(minute=0, second=0, microsecond=0)
    return [
        ("demo-voirie-lille", {
            "reference": "DEMO-LILLE-NATIONALE",
            "description": "Réfection de chaussée, rue fermée à la circulation",
            "street": "Rue Nationale",
            "geometry": {"type": "LineString", "coordinates": [
                [3.052176, 50.632626], [3.053887, 50.633345], [3.055154, 50.633878]]},
            "starts_at": (day - timedelta(hours=2)).isoformat(),
            "ends_at": (day + timedelta(days=10)).isoformat(),
        }),
        ("demo-voirie-lille", {
            "reference": "DEMO-LILLE-PARIS-NUIT",
            "description": "Travaux de réseau de nuit, voie de droite neutralisée",
            "street": "Rue de Paris",
            "geometry": {"type": "LineString", "coordinates": [
                [3.067795, 50.634331], [3.068067, 50.633128], [3.068295, 50.631849]]},
            "lanes": {"closed": 1, "total": 2, "side": "RIGHT"},
            "schedule": {d: ["21:00-23:59"] for d in ("monday", "tuesday", "wednesday", "thursday")},
            "starts_at": (day - timedelta(days=1)).isoformat(),
            "ends_at": (day + timedelta(days=21)).isoformat(),
        }),
        ("demo-mel-voirie", {
            "reference": "DEMO-MEL-LIBERTE",
            "description": "Braderie : boulevard fermé dans le sens Vauban vers République",
            "street": "Boulevard de la Liberté",
            "cause": "event",
            "direction": "ONE_DIRECTION",
            "geometry": {"type": "LineString", "coordinates": [
                [3.056671, 50.634531], [3.059300, 50.633090], [3.061908, 50.631649]]},
            "starts_at": (day + timedelta(days=7)).isoformat(),
            "ends_at": (day + timedelta(days=8)).isoformat(),
        }),
        ("demo-voirie-roubaix", {
            "reference": "DEMO-ROUBAIX-GRAND-RUE",
            "description": "Pose de canalisations",
            "street": "Grand-Rue",
            "geometry": {"type": "LineString", "coordinates": [[3.1760, 50.6912], [3.1795, 50.6925]]},
            "starts_at": (day - timedelta(hours=1)).isoformat(),
            "ends_at": (day + timedelta(days=5)).isoformat(),
        }),
    ]


async def seed(closures: ClosureService, ready: Callable[[], Awaitable[None]], keys: list[DemoKey]) -> None:
    """Post the demo closures once the view is ready (`ready`); errors are logged, never fatal."""
    teams = {k.principal.name: k.principal for k in keys}
    await ready()
    for team, body in demo_closures(datetime.now(UTC)):
        principal = teams.get(team)
        if principal is not None:
            await _post(closures, principal, ClosureIn.model_validate(body))


async def _post(closures: ClosureService, principal: Principal, body: ClosureIn, attempts: int = 20) -> None:
    for _ in range(attempts):
        try:
            written = await _post_or_refresh(closures, principal, body)
        except Unavailable:
            await asyncio.sleep(0.5)
            continue
        except TrafficHubError as exc:
            log.warning("demo closure %s not posted: %s", body.reference, exc.detail)
            return
        log.info("demo closure %s %s (%s)", body.reference, written.outcome, written.state.id)
        return


async def _post_or_refresh(closures: ClosureService, principal: Principal, body: ClosureIn) -> Written:
    try:
        return await closures.create(principal, body)
    except ReferenceTaken as taken:  # an earlier run's demo closure: bring its dates up to date
        return await closures.replace(principal, taken.current.id, body, None)
