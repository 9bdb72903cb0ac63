"""The Waze CIFS feeds: XML and JSON renderings of the same incidents, one gate for both.

Both renderers publish under the key "waze" (they carry the same items, so an event is either in
both or in neither). Served at `/feeds/waze/cifs.xml` and `/feeds/waze/cifs.json`. Incidents are
ordered by event id.
"""

from __future__ import annotations

from collections.abc import Sequence

from traffic_hub.feeds.base import FeedContext, Item, Shell
from traffic_hub.feeds.waze_json import JSON_HEAD, json_fragment, json_tail
from traffic_hub.feeds.waze_rules import check_waze
from traffic_hub.feeds.waze_xml import xml_fragment, xml_frame
from traffic_hub.model import Event

__all__ = ["PUBLICATION_KEY", "CifsJson", "CifsXml", "check_waze"]

PUBLICATION_KEY = "waze"


class _Cifs(Shell):
    name: str = PUBLICATION_KEY
    gate = staticmethod(check_waze)


class CifsXml(_Cifs):
    """Waze CIFS v2 XML (valid against `cifsv2.xsd`)."""

    media_type = "application/xml"

    def item(self, event: Event, ctx: FeedContext) -> Item:
        return Item(xml_fragment(event, ctx))

    def head(self, ctx: FeedContext, sources: Sequence[str]) -> bytes:
        return xml_frame(ctx)[0]

    def tail(self, ctx: FeedContext) -> bytes:
        return xml_frame(ctx)[1]


class CifsJson(_Cifs):
    """Waze CIFS JSON, Google's documented `{"incidents": [{"incident": {…}}]}` shape."""

    media_type = "application/json"
    separator = b","

    def item(self, event: Event, ctx: FeedContext) -> Item:
        return Item(json_fragment(event, ctx))

    def head(self, ctx: FeedContext, sources: Sequence[str]) -> bytes:
        return JSON_HEAD

    def tail(self, ctx: FeedContext) -> bytes:
        return json_tail(ctx)
