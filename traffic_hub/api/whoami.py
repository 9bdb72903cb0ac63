"""Who the caller is: lets a page show only the tools the key allows."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from traffic_hub.api.deps import Anyone
from traffic_hub.api.responses import AUTH

router = APIRouter(prefix="/api/v1", tags=["auth"])


class WhoAmI(BaseModel):
    name: str
    role: str
    communes: list[str]


@router.get("/whoami", responses=AUTH)
async def whoami(principal: Anyone) -> WhoAmI:
    return WhoAmI(name=principal.name, role=principal.role.value, communes=sorted(principal.communes))
