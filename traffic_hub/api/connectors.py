"""Each connector's state: last success, last error, counts."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from traffic_hub.api.deps import ConnectorStatesDep, Operator
from traffic_hub.api.responses import AUTH

router = APIRouter(prefix="/api/v1/connectors", tags=["connectors"])


@router.get("", responses=AUTH)
async def list_connectors(principal: Operator, connector_states: ConnectorStatesDep) -> dict[str, Any]:
    """The connectors this process runs (an API-only replica runs none), with their last outcomes."""
    return {"connectors": list(connector_states())}
