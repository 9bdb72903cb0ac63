"""The Waze CIFS feeds: XML and JSON renderings of the same incidents, one gate for both.

Both renderers publish under the key "waze" (they carry the same items, so an event is either in
both or in neither). Served at `/feeds/waze/cifs.xml` and `/feeds/waze/cifs.json`.
"""

from __future__ import annotations

from collections.abc import Sequence

from traffic_hub.feeds.base import FeedContext
from traffic_hub.feeds.waze_json import render_json
from traffic_hub.feeds.waze_rules import check_waze
from traffic_hub.feeds.waze_xml import render_xml
from traffic_hub.model import Event

__all__ = ["CifsJson", "CifsXml", "check_waze"]

PUBLICATION_KEY = "waze"


class CifsXml:
    """Waze CIFS v2 XML (valid against `cifsv2.xsd`)."""

    name: str = PUBLICATION_KEY
    media_type: str = "application/xml"

    def check(self, event: Event, ctx: FeedContext) -> list[str]:
        return check_waze(event, ctx)

    def render(self, events: Sequence[Event], ctx: FeedContext) -> bytes:
        return render_xml(events, ctx)


class CifsJson:
    """Waze CIFS JSON, Google's documented `{"incidents": [{"incident": {…}}]}` shape."""

    name: str = PUBLICATION_KEY
    media_type: str = "application/json"

    def check(self, event: Event, ctx: FeedContext) -> list[str]:
        return check_waze(event, ctx)

    def render(self, events: Sequence[Event], ctx: FeedContext) -> bytes:
        return render_json(events, ctx)
