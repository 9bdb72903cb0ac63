"""The Waze CIFS feeds: XML and JSON renderings of the same incidents, one gate for both.

Both renderers publish under the key "waze" (they carry the same items, so an event is either in
both or in neither). Served at `/feeds/waze/cifs.xml` and `/feeds/waze/cifs.json`. Incidents are
ordered by event id. Each renderer instance memoises, per event object and while it lives, the
serialised incidents and the gate's time-independent reasons, so re-checking and re-rendering
after a few changes costs little: keep one instance per feed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from traffic_hub.feeds.base import FeedContext
from traffic_hub.feeds.memo import EventMemo
from traffic_hub.feeds.waze_incident import context_key
from traffic_hub.feeds.waze_json import json_document, json_fragment
from traffic_hub.feeds.waze_rules import check_waze, rule_reasons, status_reasons
from traffic_hub.feeds.waze_xml import xml_document, xml_fragment
from traffic_hub.model import Event

__all__ = ["PUBLICATION_KEY", "CifsJson", "CifsXml", "check_waze"]

PUBLICATION_KEY = "waze"


class _Cifs:
    name: str = PUBLICATION_KEY
    media_type: str

    def __init__(self) -> None:
        self._memo: EventMemo[bytes] = EventMemo()
        self._reasons: EventMemo[tuple[str, ...]] = EventMemo()

    def check(self, event: Event, ctx: FeedContext) -> list[str]:
        """`check_waze`, with the time-independent part memoised per event object."""
        status = status_reasons(event, ctx)
        if status:
            return status
        return list(self._reasons.get(event, context_key(ctx), lambda item: tuple(rule_reasons(item, ctx))))

    def render(self, events: Sequence[Event], ctx: FeedContext) -> bytes:
        key = context_key(ctx)
        fragments = (
            self._memo.get(event, key, lambda item: self._fragment(item, ctx))
            for event in sorted(events, key=lambda item: item.id)
        )
        return self._document(fragments, ctx)

    def _fragment(self, event: Event, ctx: FeedContext) -> bytes:
        raise NotImplementedError

    def _document(self, fragments: Iterable[bytes], ctx: FeedContext) -> bytes:
        raise NotImplementedError


class CifsXml(_Cifs):
    """Waze CIFS v2 XML (valid against `cifsv2.xsd`)."""

    media_type = "application/xml"

    def _fragment(self, event: Event, ctx: FeedContext) -> bytes:
        return xml_fragment(event, ctx)

    def _document(self, fragments: Iterable[bytes], ctx: FeedContext) -> bytes:
        return xml_document(fragments, ctx)


class CifsJson(_Cifs):
    """Waze CIFS JSON, Google's documented `{"incidents": [{"incident": {…}}]}` shape."""

    media_type = "application/json"

    def _fragment(self, event: Event, ctx: FeedContext) -> bytes:
        return json_fragment(event, ctx)

    def _document(self, fragments: Iterable[bytes], ctx: FeedContext) -> bytes:
        return json_document(fragments, ctx)
