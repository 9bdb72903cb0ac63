"""The chaos run, short: SIGKILL the active controller, a normaliser, an API replica, under load, on the cluster.

The same harness as `python -m loadtests.chaos` (loadtests/chaos.py, loadtests/load.py): real processes
(two `traffic-hub api` replicas, two normalisers, one connector runner on loopback sources), closures
posted by four teams through a load-balancer stand-in that retries a refused connection on the other
replica, partners polling every feed of both replicas, an SSE stream on each. After each fault and the
restart of what was killed, the load pauses and the test asserts the promises that must hold on any
machine: no acknowledged write lost, no duplicate event, both replicas serve the same bytes and ETag for
every feed, no feed answered 5xx. The timing figures (refused window, time until processing resumed)
are printed, not asserted: this box is shared and loaded; the full run reports them against the goals.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from loadtests import chaos
from loadtests.cluster import Cluster as ChaosCluster
from tests.cluster.conftest import Cluster
from tests.kafkarun import run_name

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.timeout(900)]

SHORT = chaos.Config(
    faults=["controller", "normaliser", "api"],  # the baseline ("none") is left to the full run
    replicas=2,
    normalisers=2,
    connectors=1,
    steady_s=2.0,
    hold_s=3.0,
    writers=4,
    probes=2,
    deadline_s=240.0,  # generous: a loaded 2-core box; every wait ends as soon as its condition holds
)


async def test_a_short_chaos_run_loses_nothing_doubles_nothing_and_the_replicas_converge(
    cluster: Cluster, tmp_path: Path
) -> None:
    started = time.monotonic()
    report = await chaos.run_on(SHORT, ChaosCluster(cluster.bootstrap, False, 0.0), tmp_path, run_name("chaos"))
    print("\n" + chaos.text_table(report))
    for result in report.results:
        cluster.figures[f"chaos (short): {result.name}"] = chaos.describe_result(result)
    cluster.figures["chaos (short): whole test"] = f"{time.monotonic() - started:.0f} s"
    assert [r.name for r in report.results] == SHORT.faults
    for result in report.results:
        assert result.error is None, chaos.describe_result(result)
        assert result.lost == 0, chaos.describe_result(result)
        assert result.duplicates == 0, chaos.describe_result(result)
        assert result.not_acked == 0, chaos.describe_result(result)
        assert result.converged, chaos.describe_result(result)
        assert result.feed_5xx == 0, chaos.describe_result(result)
        assert result.acked > 0, chaos.describe_result(result)
