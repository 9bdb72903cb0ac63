"""Operator actions on events: recorded in Kafka (who, when) and applied by the normaliser."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, StringConstraints, model_validator

ActionName = Literal["confirm", "dismiss", "end", "merge"]


class ActionIn(BaseModel):
    """Body of POST /api/v1/events/{id}/actions."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    action: ActionName
    into: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000)] | None = None

    @model_validator(mode="after")
    def _merge_needs_target(self) -> ActionIn:
        if self.action == "merge" and not self.into:
            raise ValueError("merge needs `into`: the event to merge this one into")
        if self.action != "merge" and self.into:
            raise ValueError("`into` is only for merge")
        return self


class OperatorAction(ActionIn):
    """An action as recorded: on which event, by whom, when."""

    event_id: str
    by: str
    at: AwareDatetime
