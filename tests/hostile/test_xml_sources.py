"""Every XML source kind refuses external entities, entity bombs and DTDs, quickly, reading nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connectors.base import ParseContext, PayloadError
from connectors.registry import parser_for

XXE = b"""<?xml version="1.0"?><!DOCTYPE d [<!ENTITY e SYSTEM "file:///etc/passwd">]>
<d2:payload xmlns:d2="http://datex2.eu/schema/3/d2Payload">&e;</d2:payload>"""
BOMB = b"""<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">
<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]><incidents>&lol4;</incidents>"""
EXTERNAL_DTD = b"""<?xml version="1.0"?><!DOCTYPE incidents SYSTEM "http://127.0.0.1:9/evil.dtd"><incidents/>"""
PARAMETER = b"""<?xml version="1.0"?><!DOCTYPE x [<!ENTITY % p SYSTEM "file:///etc/hostname"> %p;]><x/>"""
TRUNCATED = b"""<?xml version="1.0"?><incidents><incident id="a"><type>ACCIDENT</ty"""


@pytest.mark.parametrize("kind", ["datex2", "cifs"])
@pytest.mark.parametrize("payload", [XXE, BOMB, EXTERNAL_DTD, PARAMETER, TRUNCATED, b"\x00\xff" * 100])
def test_hostile_xml_is_refused_by_every_xml_source(kind: str, payload: bytes) -> None:
    ctx = ParseContext(source="hostile", received_at=datetime.now(UTC))
    with pytest.raises(PayloadError) as refused:
        parser_for(kind).parse(payload, ctx)
    assert "passwd" not in str(refused.value)
    assert "root:" not in str(refused.value)
