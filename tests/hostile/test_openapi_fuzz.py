"""Schemathesis against the hub's own OpenAPI: generated requests never get a 5xx, and every response
conforms to the documented status codes, content types and schemas."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from tests.faults.hubprocess import HubProcess, started_hub
from tests.integration.hubs import KEYS, auth

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


@pytest.fixture(scope="module")
def hub(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    with started_hub(kafka_bootstrap, tmp_path_factory.mktemp("fuzz"), "fuzz", "api") as hub:
        yield hub


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


def test_no_server_errors_and_responses_conform(hub: HubProcess) -> None:
    operations = _operations(hub.url)
    assert len(operations) >= 15
    for operation in operations:
        key = KEYS.lille if operation.path.startswith("/api/v1/closures") else KEYS.admin

        @given(case=operation.as_strategy())
        @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case: Any) -> None:
            case.call_and_validate(base_url=hub.url, headers=auth(key), checks=CHECKS, timeout=10)  # noqa: B023

        check()


def test_hub_log_has_no_unhandled_error(hub: HubProcess) -> None:
    log = Path(hub.log).read_text(encoding="utf-8", errors="replace")
    assert "unhandled error" not in log
    assert "Traceback" not in log
