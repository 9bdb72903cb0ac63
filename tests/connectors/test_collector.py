"""The collector pause (`connectors.collector`): counted across threads, restored as it was found.

Run time: well under 1 s (threads wait on events, never on sleeps).
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from connectors.collector import collector_paused, pause_holders


@pytest.fixture(autouse=True)
def _collector_enabled() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def test_paused_inside_and_enabled_after() -> None:
    with collector_paused():
        assert not gc.isenabled()
        assert pause_holders() == 1
    assert gc.isenabled()
    assert pause_holders() == 0


def test_enabled_again_after_an_exception() -> None:
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("parser bug")
    assert gc.isenabled()


def test_overlapping_threads_share_the_pause() -> None:
    """A first planning thread that ends must not resume the collector while a second still plans."""
    entered, first_done, release = threading.Event(), threading.Event(), threading.Event()
    seen: list[bool] = []

    def second() -> None:
        with collector_paused():
            entered.set()
            first_done.wait(10)
            seen.append(gc.isenabled())
            release.wait(10)

    worker = threading.Thread(target=second)
    with collector_paused():
        worker.start()
        assert entered.wait(10)
    first_done.set()
    assert not gc.isenabled()  # the second thread still holds it
    release.set()
    worker.join(10)
    assert seen == [False]
    assert gc.isenabled()


def test_a_collector_disabled_before_stays_disabled() -> None:
    gc.disable()
    with collector_paused():
        pass
    assert not gc.isenabled()
