"""Namespace-agnostic lookups in parsed XML (DATEX II prefixes and versions vary by producer)."""

from __future__ import annotations

from collections.abc import Iterator

from lxml import etree

XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
Element = etree._Element


def local(element: Element) -> str:
    tag = element.tag
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]


def children(element: Element, name: str) -> list[Element]:
    return [child for child in element if local(child) == name]


def child(element: Element | None, *path: str) -> Element | None:
    """The first element down `path` (each step a direct child's local name)."""
    current = element
    for name in path:
        if current is None:
            return None
        current = next((c for c in current if local(c) == name), None)
    return current


def child_text(element: Element | None, *path: str) -> str | None:
    found = child(element, *path)
    if found is None or found.text is None:
        return None
    return found.text.strip() or None


def descendants(element: Element, name: str) -> Iterator[Element]:
    for found in element.iter():
        if found is not element and local(found) == name:
            yield found


def descendant_text(element: Element, name: str) -> str | None:
    for found in descendants(element, name):
        if found.text and found.text.strip():
            return found.text.strip()
    return None


def xsi_type(element: Element) -> str:
    """The local part of `xsi:type` ("sit:Accident" → "Accident")."""
    value = element.get(XSI_TYPE) or ""
    return value.rsplit(":", 1)[-1].strip()


def raw(element: Element) -> bytes:
    return etree.tostring(element)
