"""A batch of decisions held back unwritten is forgotten by the conflation index, exactly.

Why: a decision owner whose heartbeats were not acknowledged for almost a session may have been
replaced; it then writes nothing of the batch it just decided (normaliser `Deciding._hold_back`) and
reads it again later. Its index must be as it was before the batch, or the next decisions would merge
into events nobody wrote. It used to drop the whole index and index the view again: right, but a
decode of every event, under the very load that had delayed the heartbeats. `EventIndex.undo` puts back
only what the batch changed; these tests hold it to "as if the batch had never been decided".
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.test_conflation_order import POLLS, comparable, final_events, pipeline
from traffic_hub.normaliser.conflation import EventIndex

ITEMS = [item for poll in POLLS for item in poll]  # each key's reports in order, keys one after the other
# the second poll of every sample and the closure's second version come after the split: merges into
# events of the first half, sources moving between events, closures taking incidents in
INTERLEAVED = [poll[i] for i in range(2) for poll in POLLS if i < len(poll)]


def state(index: EventIndex) -> tuple[Any, ...]:
    """Everything the index holds, comparable (grid cells as sorted id lists: their order is not used)."""
    entries = {
        k: (e.stored.raw, e.type, e.points, e.sources, e.absorbable, e.measure) for k, e in index._entries.items()
    }
    grids = [{cell: sorted(ids) for cell, ids in grid.items()} for grid in (index._grid, index._absorbable_grid)]
    return entries, dict(index._by_source), grids


@pytest.mark.parametrize("split", [len(INTERLEAVED) // 3, len(INTERLEAVED) // 2, len(INTERLEAVED) - 3])
def test_an_undone_batch_leaves_the_index_as_it_was_and_deciding_again_gives_the_same_events(split: int) -> None:
    first, second = INTERLEAVED[:split], INTERLEAVED[split:]
    held = pipeline()
    before = final_events(held, [first])
    snapshot = state(held.index)

    held.index.begin()
    undone = held.process_many(second)
    held.index.undo()
    assert undone, "the held-back batch decided something"
    assert state(held.index) == snapshot

    held.index.begin()
    after = final_events(held, [second])
    held.index.settle()
    straight = pipeline()
    expected = final_events(straight, [first, second])
    assert comparable(before | after) == comparable(expected)
    assert len(held.index) == len(straight.index)


def test_settled_changes_stay_and_a_second_undo_changes_nothing() -> None:
    index_owner = pipeline()
    index_owner.index.begin()
    final_events(index_owner, [ITEMS])
    index_owner.index.settle()
    kept = state(index_owner.index)
    assert kept[0], "the samples made events"
    index_owner.index.undo()  # nothing begun: nothing to put back
    assert state(index_owner.index) == kept
