"""Schemathesis against the hub's own OpenAPI: generated requests never get a 5xx, and every response
conforms to the documented status codes, content types and schemas."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from tests.faults.hubprocess import HubProcess, started_hub
from tests.integration.hubs import KEYS, auth

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


# Cross-field rules (ends after starts, lies in MEL, on the road network) cannot be written in JSON Schema,
# so "schema-valid data must be accepted" does not apply; everything about responses does.
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
]


def _operations(url: str) -> list[Any]:
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    return [op for op in operations if op.path != "/api/v1/events/stream"]  # endless; tested on its own


@dataclass(frozen=True)
class Fuzzed:
    """A hub after every operation of its OpenAPI was fuzzed, and what went wrong."""

    hub: HubProcess
    operations: int
    failures: list[str]  # one per operation whose generated requests broke a check


@pytest.fixture(scope="module")
def fuzzed(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    """Each test reads the result of the fuzzing, never the side effects of another test: whichever
    runs, alone or first, the hub has been fuzzed once."""
    with started_hub(kafka_bootstrap, tmp_path_factory.mktemp("fuzz"), "fuzz", "api") as hub:
        operations = _operations(hub.url)
        yield Fuzzed(hub, len(operations), [failure for op in operations if (failure := _fuzz(hub.url, op))])


# the archive's routes (analytics, history) answer their documented 503 on this hub, which has no database:
# every other check holds
ARCHIVE_CHECKS = [check for check in CHECKS if check is not checks.not_a_server_error]


def _fuzz(url: str, operation: Any) -> str | None:
    """Generated requests to one operation; what broke a check, or None."""
    key = KEYS.lille if operation.path.startswith("/api/v1/closures") else KEYS.admin
    archive = operation.path.startswith("/api/v1/analytics/") or "history" in operation.path
    used = ARCHIVE_CHECKS if archive else CHECKS

    @given(case=operation.as_strategy())
    @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def check(case: Any) -> None:
        case.call_and_validate(base_url=url, headers=auth(key), checks=used, timeout=10)

    try:
        check()
    except (Exception, BaseExceptionGroup) as exc:  # per operation (schemathesis raises a group); others go on
        return f"{operation.method.upper()} {operation.path}: {exc}"
    return None


def test_no_server_errors_and_responses_conform(fuzzed: Fuzzed) -> None:
    assert fuzzed.operations >= 15
    assert fuzzed.failures == [], "\n\n".join(fuzzed.failures)


def test_hub_log_has_no_unhandled_error(fuzzed: Fuzzed) -> None:
    log = Path(fuzzed.hub.log).read_text(encoding="utf-8", errors="replace")
    assert "unhandled error" not in log
    assert "Traceback" not in log
