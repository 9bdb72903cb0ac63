"""Shared runners (issue 16), in one process: a source's memory written and read back, the balance of
sources over runners, a release that waits for the in-flight poll, and a second runner resuming a
source from the first one's memory (real local HTTP server, real broker)."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import pytest
import pytest_asyncio

from connectors import runner as runner_module
from connectors.encoding import content_hash
from connectors.fetch import Validators, make_client
from connectors.handover import (
    PART_BYTES,
    Handover,
    Saved,
    is_status,
    new_generation,
    read_saved,
    state_records,
    status_record,
    statuses,
)
from connectors.runner import ConnectorRunner
from connectors.state import ConnectorState
from tests.connectors.httpserver import LocalServer, Route, local_server
from tests.connectors.test_runner import Log, config, feed, incident, tiny, wait_for
from tests.kafkarun import started_publisher
from traffic_hub.kafka.admin import _create
from traffic_hub.kafka.leases import (
    SOURCE_PARTITIONS,
    LeaseTopics,
    SavedStateReader,
    balance,
    lease_topic_specs,
    partition_of,
)
from traffic_hub.model import IncidentReport
from traffic_hub.publishing import Record


def apply(values: dict[str, bytes], records: list[Record]) -> dict[str, bytes]:
    """What a compacted topic holds after `records` (latest value per key; tombstones remove)."""
    for record in records:
        if record.value is None:
            values.pop(record.key.decode(), None)
        else:
            values[record.key.decode()] = record.value
    return values


def saved(items: int, text_bytes: int = 20) -> Saved:
    rng = random.Random(items)
    seen = {
        f"i{n}": incident("mel", f"i{n}", "".join(rng.choice("abcdefghij0123456789") for _ in range(text_bytes)))
        for n in range(items)
    }
    return Saved(
        url="https://example.org/feed?key=***",
        validators=Validators(etag='"v1"', last_modified="Tue, 01 Dec 2026 08:00:00 GMT"),
        seen=seen,
        hashes={sid: content_hash(inc) for sid, inc in seen.items()},  # as the runner keeps them
        cycles=7,
        polled_at=datetime.now(UTC),
        runner="runner-a",
        generation=new_generation(),
    )


def test_a_saved_state_reads_back_whole() -> None:
    state = saved(3)
    records, written = state_records("t", "mel", state)
    assert written.parts == 1
    assert [r.key for r in records] == [f"mel/{state.generation}/0".encode(), b"mel"]
    back = read_saved("mel", apply({}, records))
    assert back is not None
    assert (back.seen, back.hashes, back.validators, back.cycles, back.runner) == (
        state.seen, state.hashes, state.validators, 7, "runner-a"
    )


def test_a_large_state_is_cut_into_parts_and_the_previous_generation_is_removed_after_the_manifest() -> None:
    first, first_written = state_records("t", "mel", saved(400, 2000))  # ~800 kB of incompressible text
    assert first_written.parts > 1
    assert all(len(r.value or b"") <= PART_BYTES for r in first)
    values = apply({}, first)
    second_state = saved(5)
    second, _ = state_records("t", "mel", second_state, [first_written])
    manifest = [r.key for r in second].index(b"mel")
    assert all(r.value is None for r in second[manifest + 1 :])  # tombstones only after the new manifest
    assert len(second) - manifest - 1 == first_written.parts
    values = apply(values, second)
    assert sorted(values) == sorted(["mel", f"mel/{second_state.generation}/0"])
    back = read_saved("mel", values)
    assert back is not None
    assert set(back.seen) == set(second_state.seen)


def test_a_write_cut_short_leaves_the_previous_state_readable() -> None:
    old = saved(3)
    records, _ = state_records("t", "mel", old)
    values = apply({}, records)
    newer, _ = state_records("t", "mel", saved(4))
    values = apply(values, newer[:-1])  # the parts landed, the manifest did not
    back = read_saved("mel", values)
    assert back is not None
    assert set(back.seen) == set(old.seen)


def test_a_state_missing_a_part_or_corrupt_is_ignored() -> None:
    records, _ = state_records("t", "mel", saved(3))
    values = apply({}, records)
    part = next(key for key in values if key != "mel")
    assert read_saved("mel", {**values, part: b"garbage"}) is None
    assert read_saved("mel", {"mel": values["mel"]}) is None
    assert read_saved("mel", {"mel": b"{not json"}) is None
    assert read_saved("other", values) is None


def cycle(previous: Saved, changed: dict[str, str]) -> Saved:
    """The next state of a snapshot source as the runner builds it: every item parsed again (new, equal
    objects), `changed` ones with a new description; hashes as the runner computes them."""
    seen = {
        sid: incident("mel", sid, changed.get(sid, inc.description)) for sid, inc in previous.seen.items()
    }
    return replace(previous, seen=seen, hashes={sid: content_hash(inc) for sid, inc in seen.items()},
                   cycles=previous.cycles + 1, generation=new_generation())


def parts_and_manifest(records: list[Record]) -> list[tuple[bytes, bytes | None]]:
    return [(r.key, r.value) for r in records if r.value is not None]


def test_only_changed_items_are_dumped_again_and_the_state_written_is_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = saved(200)
    _, written = state_records("t", "mel", first)
    dumps: list[str] = []
    dump = IncidentReport.model_dump

    def counted(model: IncidentReport, **kwargs: Any) -> dict[str, Any]:
        dumps.append(model.source_id)
        return dump(model, **kwargs)

    monkeypatch.setattr(IncidentReport, "model_dump", counted)
    second = cycle(first, {"i7": "changed", "i42": "changed too"})
    records, second_written = state_records("t", "mel", second, [written])
    assert sorted(dumps) == ["i42", "i7"]  # not the 198 unchanged ones
    dumps.clear()
    unsaved = cycle(second, {"i7": "again"})  # a write that failed: the next one is given both
    _, unsaved_written = state_records("t", "mel", unsaved, [second_written])
    third = cycle(unsaved, {"i9": "new"})
    third_records, _ = state_records("t", "mel", third, [second_written, unsaved_written])
    assert sorted(dumps) == ["i7", "i9"]
    monkeypatch.undo()
    # byte for byte what a write without any earlier state gives (model_dump of every item)
    assert parts_and_manifest(records) == parts_and_manifest(state_records("t", "mel", second)[0])
    assert parts_and_manifest(third_records) == parts_and_manifest(state_records("t", "mel", third)[0])
    back = read_saved("mel", apply({}, third_records))
    assert back is not None
    assert back.seen == third.seen


def test_an_equal_item_whose_json_differs_is_dumped_again() -> None:
    """1 == 1.0 for the item, not for its JSON: the content hash tells them apart."""
    item = incident("mel", "i1", "x").model_copy(update={"said": {"level": 1}})
    first = replace(saved(0), seen={"i1": item}, hashes={"i1": content_hash(item)})
    _, written = state_records("t", "mel", first)
    floated = item.model_copy(update={"said": {"level": 1.0}})
    assert floated == item
    assert content_hash(floated) != content_hash(item)
    second = replace(first, seen={"i1": floated}, hashes={"i1": content_hash(floated)}, generation=new_generation())
    records, _ = state_records("t", "mel", second, [written])
    assert parts_and_manifest(records) == parts_and_manifest(state_records("t", "mel", second)[0])


def test_a_source_stands_on_the_same_partition_in_every_process_and_version() -> None:
    # pinned: runners of two versions must agree on which partition stands for a source
    assert (partition_of("waze-mel", SOURCE_PARTITIONS), partition_of("datex2-dirn", SOURCE_PARTITIONS)) == (24, 52)


def test_the_sources_are_balanced_over_the_runners_and_every_partition_has_one_owner() -> None:
    partitions = list(range(16))
    weights = {0: 2, 3: 1, 5: 1, 7: 1, 9: 1}  # six sources, two of them on partition 0
    plan = balance(["m1", "m2", "m3"], partitions, weights)
    owned = sorted(p for parts in plan.values() for p in parts)
    assert owned == partitions
    load = {member: sum(weights.get(p, 0) for p in parts) for member, parts in plan.items()}
    assert sorted(load.values()) == [2, 2, 2]
    assert plan == balance(["m1", "m2", "m3"], partitions, weights)  # the same on every leader
    assert balance([], partitions, weights) == {}


# --- against the real broker -------------------------------------------------------------------


@dataclass
class Shared:
    log: Log
    handover_topic: str
    reader: SavedStateReader

    def handover(self, instance: str) -> Handover:
        return Handover(self.reader, self.handover_topic, instance)


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with local_server() as running:
        yield running


@pytest_asyncio.fixture
async def shared(kafka_bootstrap: str, topic_prefix: str) -> AsyncIterator[Shared]:
    names = LeaseTopics(topic_prefix)
    async with asyncio.timeout(30):
        await _create(kafka_bootstrap, lease_topic_specs(names, 1, 1))
    async with (
        started_publisher(kafka_bootstrap, topic_prefix) as (publisher, topics),
        SavedStateReader(kafka_bootstrap, names.state, f"{topic_prefix}-state") as reader,
    ):
        yield Shared(Log(kafka_bootstrap, topics, publisher), names.state, reader)


def runner_for(shared: Shared, server: LocalServer, instance: str, client: object) -> ConnectorRunner:
    cfg = config("mel", server.url("/feed"))
    return ConnectorRunner(
        [cfg], client, shared.log.publisher, shared.log.topics, parser_for=tiny,  # type: ignore[arg-type]
        handover=shared.handover(instance),
    )


@pytest.mark.kafka
async def test_a_shared_runner_polls_nothing_until_handed_a_source_and_a_release_waits_for_the_poll(
    shared: Shared, server: LocalServer
) -> None:
    server.set("/feed", Route(feed({"id": "a", "text": "Travaux"}), delay_s=1.0))
    async with make_client(trust_env=False) as client, runner_for(shared, server, "one", client) as runner:
        assert runner.state("mel").status == "elsewhere"
        assert not server.hits("/feed")
        await runner.acquire(["mel"])
        assert runner.state("mel").runner == "one"
        await wait_for(lambda: bool(server.hits("/feed")))  # a poll in flight: the server answers after 1 s
        started = time.monotonic()
        await runner.release(["mel"])
        waited = time.monotonic() - started
        assert runner.state("mel").last_success is not None, "the in-flight poll was allowed to finish"
        assert runner.held() == []
        assert runner.state("mel").status == "elsewhere"
        assert waited > 0.2  # it did wait for the answer (the answer came ~1 s after the request)
        hits = len(server.hits("/feed"))
        await asyncio.sleep(0)  # nothing left to run it: no later poll can start
        assert len(server.hits("/feed")) == hits


@pytest.mark.kafka
async def test_a_source_taken_over_resumes_from_the_last_owners_memory(shared: Shared, server: LocalServer) -> None:
    body = feed({"id": "a", "text": "Travaux"}, {"id": "b", "text": "Fermeture"})
    server.set("/feed", Route(body))
    async with make_client(trust_env=False) as client:
        async with runner_for(shared, server, "first", client) as first:
            await first.acquire(["mel"])
            await wait_for(lambda: first.state("mel").incidents_published == 2)
            await first.release(["mel"])
        server.set("/feed", Route(feed({"id": "a", "text": "Travaux"})))  # b is gone while nobody polls
        async with runner_for(shared, server, "second", client) as second:
            await second.acquire(["mel"])
            await wait_for(lambda: second.state("mel").ended_published == 1, within=30)
            assert second.state("mel").incidents_published == 0  # a is unchanged: not sent again
            assert server.hits("/feed")[-1].headers.get("if-none-match") == Route(body).etag
    reports = await shared.log.reports("incident")
    found = [(r["key"], r["incident"]["ended"]) for r in reports]
    assert found == [("mel:a", False), ("mel:b", False), ("mel:b", True)]  # b ended from the first one's memory


@pytest.mark.kafka
async def test_a_poll_that_outlasts_the_grace_is_cancelled_and_the_release_still_returns(
    shared: Shared, server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner_module, "RELEASE_GRACE_S", 0.3)
    server.set("/feed", Route(feed({"id": "a", "text": "Travaux"}), delay_s=60))  # answered only when the server stops
    async with make_client(trust_env=False) as client, runner_for(shared, server, "one", client) as runner:
        await runner.acquire(["mel"])
        await wait_for(lambda: bool(server.hits("/feed")))
        async with asyncio.timeout(30):  # far above the grace: the release must not wait for the server
            await runner.release(["mel"])
        assert runner.held() == []
        assert runner.state("mel").last_success is None  # cancelled, not finished
        assert runner.state("mel").status == "elsewhere"


def test_a_status_record_names_the_runner_and_is_what_an_api_replica_lists() -> None:
    state = ConnectorState(name="mel", kind="geojson", url="https://example.org/feed", runner="runner-b")
    record = status_record("t", state, datetime.now(UTC))
    assert record.key == b"mel#status"
    assert is_status("mel#status")
    assert not is_status("mel")
    records, _ = state_records("t", "mel", saved(2))
    listed = statuses(apply({}, [*records, record]))  # the memory's parts and manifest are not statuses
    assert [(s["name"], s["runner"], s["status"]) for s in listed] == [("mel", "runner-b", "pending")]
