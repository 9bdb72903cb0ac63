"""Waze CIFS v2 as XML, shaped by Google's `cifsv2.xsd`.

Root `<incidents>` with `xsi:noNamespaceSchemaLocation` pointing at the schema and a `timestamp`
(the feed's creation time: `ctx.timestamp`, when the content last changed, so identical content
gives identical bytes and ETags; local with offset); one `<incident id="…">` per incident. Each
event's incidents are built with lxml and serialised on their own (a fragment, which the feed
engine keeps per event), then placed inside the root serialised by lxml (`xml_frame`). The schema is not run
here (10 000 events must render in well under a second); the tests validate whole documents
against the vendored copy in `schemas/cifsv2.xsd`.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from lxml import etree

from traffic_hub.feeds.base import FeedContext
from traffic_hub.feeds.waze_incident import Incident, incidents_of, local_time
from traffic_hub.model import Event

XSI = "http://www.w3.org/2001/XMLSchema-instance"
SCHEMA_LOCATION = "https://www.gstatic.com/road-incidents/cifsv2.xsd"
_SLOT = b"<incident/>"


def xml_fragment(event: Event, ctx: FeedContext) -> bytes:
    """The serialised `<incident>` elements of one event (UTF-8, no declaration)."""
    return b"".join(etree.tostring(_element(incident), encoding="UTF-8") for incident in incidents_of(event, ctx))


def xml_frame(ctx: FeedContext) -> tuple[bytes, bytes]:
    """The CIFS document before and after the incident fragments."""
    root = etree.Element("incidents", nsmap={"xsi": XSI})
    root.set(f"{{{XSI}}}noNamespaceSchemaLocation", SCHEMA_LOCATION)
    root.set("timestamp", local_time(ctx.timestamp, ZoneInfo(ctx.timezone)))
    etree.SubElement(root, "incident")
    head, tail = etree.tostring(root, xml_declaration=True, encoding="UTF-8").split(_SLOT)
    return head, tail


def _element(incident: Incident) -> etree._Element:
    node = etree.Element("incident", id=incident.id)
    if incident.parent_event is not None:
        etree.SubElement(node, "parent_event", id=incident.parent_event)
    for name, value in incident.elements:
        child = etree.SubElement(node, name)
        if isinstance(value, str):
            child.text = value
            continue
        for key, leaf in value:
            etree.SubElement(child, key).text = str(leaf)
    return node
