"""The field-level diff of the history (pure): nested fields dotted, bookkeeping left out, sources summarised."""

from __future__ import annotations

from traffic_hub.archive import diff


def test_changes_name_nested_fields_and_leave_bookkeeping_out() -> None:
    before = {"version": 1, "updated_at": "a", "description": "x", "lanes": {"closed": 1, "total": 2},
              "geometry": {"type": "LineString", "coordinates": [[3.0, 50.0], [3.1, 50.1]]}}
    after = {"version": 2, "updated_at": "b", "description": "x", "lanes": {"closed": 2, "total": 2},
             "geometry": {"type": "LineString", "coordinates": [[3.0, 50.0], [3.2, 50.1]]}, "street": "Rue"}
    assert diff.changes(before, after) == [
        {"field": "geometry", "from": before["geometry"], "to": after["geometry"]},
        {"field": "lanes.closed", "from": 1, "to": 2},
        {"field": "street", "from": None, "to": "Rue"},
    ]
    assert diff.changes(None, after) == []


def test_actions_of_a_closure() -> None:
    live, cancelled = {"cancelled": False}, {"cancelled": True}
    assert diff.action_of(None, live) == "created"
    assert diff.action_of(live, live) == "updated"
    assert diff.action_of(live, cancelled) == "deleted"
    assert diff.action_of(cancelled, live) == "reopened"


def test_an_event_diff_says_which_source_spoke_not_its_whole_report() -> None:
    old = {"id": "e", "sources": [{"source": "waze-mel", "source_id": "1", "received_at": "t1", "said": {"a": 1}}],
           "segments": [{}, {}]}
    new = {"id": "e", "sources": [{"source": "waze-mel", "source_id": "1", "received_at": "t2", "said": {"a": 2}}],
           "segments": [{}, {}]}
    assert diff.changes(diff.event_summary(old), diff.event_summary(new)) == [
        {"field": "sources", "from": ["waze-mel/1 active t1"], "to": ["waze-mel/1 active t2"]}]
    assert diff.newest_source(old, new) == new["sources"][0]
    assert diff.newest_source(new, new) is None
