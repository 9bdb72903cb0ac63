"""Liveness, readiness and metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from traffic_hub.api.deps import HubDep, MetricsDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "Kafka does not answer or the views are catching up"}})
async def readyz(hub: HubDep, response: Response) -> dict[str, bool | str]:
    """200 only when Kafka answers and the event view has caught up; else 503."""
    checks: dict[str, bool | str] = {
        "kafka": hub.probe.up,
        "topics": hub.topics_ready.is_set(),
        "producer": hub.publisher.ready,
        "view": hub.live.ready,
        "feeds": hub.feeds.alive,
    }
    ready = all(checks.values())
    checks["kafka.replication"] = hub.replication.detail  # a report, not a gate: a single broker still serves
    checks["status"] = "ready" if ready else "not ready"
    if not ready:
        response.status_code = 503
        response.headers["Retry-After"] = "1"
    return checks


@router.get("/metrics", response_class=Response)
async def metrics(metrics: MetricsDep) -> Response:
    """Prometheus text format."""
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
