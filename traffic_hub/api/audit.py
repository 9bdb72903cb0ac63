"""Who changed what: one JSON line per write on the `traffic_hub.audit` logger.

Nothing else records who created, changed or deleted a closure, or which operator confirmed,
dismissed, ended or merged an event; an authority must be able to answer "who did this, when, and
did it work?". Each line names the principal (never its key or key hash), the action, the item,
its version and the HTTP status the caller got, refusals included. Route the logger to its own
file or collector with the usual logging configuration.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import orjson

from traffic_hub.api.problems import status_of
from traffic_hub.auth import Principal
from traffic_hub.errors import TrafficHubError

log = logging.getLogger("traffic_hub.audit")


def record(principal: Principal, action: str, result: int, **fields: Any) -> None:
    """Log one audit line (INFO, a JSON object)."""
    line = {
        "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "principal": principal.name,
        "role": principal.role.value,
        "action": action,
        **fields,
        "result": result,
    }
    log.info(orjson.dumps(line).decode())


@contextmanager
def audited(principal: Principal, action: str, **fields: Any) -> Iterator[dict[str, Any]]:
    """Audit the block: the caller fills the yielded dict (version, result, a finer action …); an
    error leaving the block is recorded with its status (500 for an unexpected one) and re-raised."""
    entry: dict[str, Any] = {"action": action, "result": 200, **fields}
    try:
        yield entry
    except TrafficHubError as exc:
        entry["result"] = status_of(exc)[0]
        raise
    except Exception:
        entry["result"] = 500
        raise
    finally:
        fields = {k: v for k, v in entry.items() if k not in ("action", "result")}
        record(principal, entry["action"], entry["result"], **fields)
