"""Parse untrusted XML: no DTD, no entity expansion, no network, no file access, bounded size.

Any DOCTYPE is refused before libxml2 sees the document (the defusedxml rule "DTDs forbidden"),
and the parser itself is configured never to load DTDs, resolve entities or reach the network,
so an XXE, a billion-laughs bomb or an external DTD URL is a `PayloadError`, never a fetch.
"""

from __future__ import annotations

import codecs
import io
import re
from collections.abc import Iterator
from typing import Any

from lxml import etree

from connectors.base import PayloadError

MAX_XML_BYTES = 50 * 1024 * 1024
_FORBIDDEN = re.compile(rb"<!\s*(DOCTYPE|ENTITY|ELEMENT|ATTLIST|NOTATION)", re.IGNORECASE)
_WIDE_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def parse_xml(payload: bytes, *, max_bytes: int = MAX_XML_BYTES) -> etree._Element:
    """The root element of `payload`; `PayloadError` when it is too big, not XML or hostile."""
    if not isinstance(payload, bytes | bytearray):
        raise PayloadError("payload is not bytes")
    if len(payload) > max_bytes:
        raise PayloadError(f"payload of {len(payload)} bytes is over the {max_bytes}-byte limit")
    _refuse_declarations(bytes(payload))
    try:
        root = etree.fromstring(bytes(payload), parser=_parser())
    except (etree.XMLSyntaxError, ValueError) as exc:
        raise PayloadError(f"not well-formed XML: {_short(exc)}") from None
    if root is None:
        raise PayloadError("empty XML document")
    docinfo: Any = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise PayloadError("XML with a DTD is refused")
    return root


def iter_elements(payload: bytes, name: str, *, max_bytes: int = MAX_XML_BYTES) -> Iterator[etree._Element]:
    """The root element (first, as soon as it opens), then every element named `name` (local name) once
    parsed, each freed once the caller moves on: a big document (the national regulation base's) read
    in bounded memory, under the same rules as `parse_xml` (no DTD, no entities, no network)."""
    if not isinstance(payload, bytes | bytearray):
        raise PayloadError("payload is not bytes")
    if len(payload) > max_bytes:
        raise PayloadError(f"payload of {len(payload)} bytes is over the {max_bytes}-byte limit")
    _refuse_declarations(bytes(payload))
    events = etree.iterparse(
        io.BytesIO(bytes(payload)),
        events=("start", "end"),
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )
    root = None
    try:
        for kind, element in events:
            if root is None:
                root = element
                yield element
            elif kind == "end" and isinstance(element.tag, str) and element.tag.rsplit("}", 1)[-1] == name:
                yield element
                element.clear(keep_tail=False)
                parent = element.getparent()
                while parent is not None and element.getprevious() is not None:
                    del parent[0]
    except etree.XMLSyntaxError as exc:
        raise PayloadError(f"not well-formed XML: {_short(exc)}") from None
    if root is None:
        raise PayloadError("empty XML document")


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        collect_ids=False,
    )


def _refuse_declarations(payload: bytes) -> None:
    """Refuse DOCTYPE and markup declarations, also in UTF-16/32 documents."""
    text = payload
    for bom, codec in _WIDE_BOMS:
        if payload.startswith(bom):
            try:
                text = payload[len(bom) :].decode(codec).encode("utf-8")
            except UnicodeDecodeError:
                raise PayloadError(f"invalid {codec} text") from None
            break
    else:
        if b"\x00" in payload[:4]:
            raise PayloadError("XML in a wide encoding without a byte-order mark is refused")
    if _FORBIDDEN.search(text):
        raise PayloadError("XML with a DOCTYPE or entity declarations is refused (DTDs are forbidden)")


def _short(exc: Exception) -> str:
    return str(exc)[:200]
