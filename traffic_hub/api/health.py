"""Liveness, readiness and metrics.

Metrics name principals and connectors: Prometheus scrapes them on the separate loopback listener
(`metrics.serve_metrics`); on the public port `/metrics` answers admins only.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from traffic_hub.api.deps import DurabilityDep, MetricsDep, OptionalHistoryDep, ReadinessDep, caller
from traffic_hub.api.responses import AUTH
from traffic_hub.auth import Principal, Role

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "Kafka does not answer or the views are catching up"}})
async def readyz(
    readiness: ReadinessDep, durability: DurabilityDep, history: OptionalHistoryDep, response: Response
) -> dict[str, Any]:
    """200 only when Kafka answers and the event view has caught up; else 503.

    `archive` (when the hub has a history database) is a report, not a gate: the feeds and the API do not
    need it. `status` is `ok`, `behind` (a warning: over 10,000 records or 5 minutes not archived yet on
    a topic) or `down` (the database does not answer: the history routes answer 503); `lag` per topic:
    `records` not archived yet and `seconds`, an upper bound of how long the oldest of them has waited
    (null while Kafka's end offsets are unknown)."""
    checks: dict[str, Any] = dict(readiness())
    ready = all(checks.values())
    checks["kafka.replication"] = durability()  # a report, not a gate: a single broker still serves
    if history is not None:
        checks["archive"] = history.status()
    checks["status"] = "ready" if ready else "not ready"
    if not ready:
        response.status_code = 503
        response.headers["Retry-After"] = "1"
    return checks


Admin = Annotated[Principal, Depends(caller(Role.ADMIN))]


@router.get("/metrics", response_class=Response, responses=AUTH)
async def metrics(principal: Admin, metrics: MetricsDep) -> Response:
    """Prometheus text format, for admins (Prometheus itself scrapes the loopback metrics listener)."""
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
