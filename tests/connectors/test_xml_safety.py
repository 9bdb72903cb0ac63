"""Hostile XML is a PayloadError: no entity expanded, no file read, nothing fetched."""

from __future__ import annotations

import pytest

from connectors.base import PayloadError
from connectors.xml_find import local
from connectors.xml_safety import parse_xml

XXE = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>'
BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i > 1 else "&lol;" * 10}">'.encode()
        for i in range(1, 10)
    )
    + b"]><lolz>&lol9;</lolz>"
)
EXTERNAL_DTD = b'<?xml version="1.0"?><!DOCTYPE incidents SYSTEM "http://127.0.0.1:9/evil.dtd"><incidents/>'
PARAMETER_ENTITY = b'<!DOCTYPE x [<!ENTITY % p SYSTEM "http://127.0.0.1:9/p.dtd"> %p;]><x/>'
UTF16_XXE = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>'


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (XXE, "DOCTYPE"),
        (BILLION_LAUGHS, "DOCTYPE"),
        (EXTERNAL_DTD, "DOCTYPE"),
        (PARAMETER_ENTITY, "DOCTYPE"),
        (UTF16_XXE.encode("utf-16"), "DOCTYPE"),
        (b"<incidents><incident id='1'><type>ACC", "well-formed"),
        (b"\x89PNG\r\n\x1a\n\x00\x00binary", "well-formed"),
        (b"\x00\x00\x00<\x00\x00\x00x", "wide encoding"),
        (b"not xml at all", "well-formed"),
        (b"", "well-formed"),
        (b"<a>&undeclared;</a>", "well-formed"),
    ],
)
def test_hostile_or_broken_xml_is_a_payload_error(payload: bytes, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason):
        parse_xml(payload)


def test_the_size_limit_is_exact() -> None:
    document = b"<incidents>" + b" " * 100 + b"</incidents>"
    assert local(parse_xml(document, max_bytes=len(document))) == "incidents"
    with pytest.raises(PayloadError, match="over the"):
        parse_xml(document + b" ", max_bytes=len(document))


def test_the_xml_declaration_and_namespaces_are_fine() -> None:
    root = parse_xml(b'<?xml version="1.0" encoding="ISO-8859-1"?><d2:payload xmlns:d2="urn:x">caf\xe9</d2:payload>')
    assert local(root) == "payload"
    assert root.text == "café"


def test_utf16_documents_without_declarations_parse() -> None:
    root = parse_xml('<?xml version="1.0" encoding="UTF-16"?><incidents/>'.encode("utf-16"))
    assert local(root) == "incidents"
