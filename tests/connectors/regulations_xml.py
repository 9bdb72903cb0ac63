"""DATEX II v3 TrafficRegulationPublication documents built in tests, in DiaLog's 3.3 shape (dates from the clock)."""

from __future__ import annotations

from datetime import datetime

HEAD = (
    '<d2:payload xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:d2="http://datex2.eu/schema/3/d2Payload"'
    ' xmlns:com="http://datex2.eu/schema/3/common" xmlns:loc="http://datex2.eu/schema/3/locationReferencing"'
    ' xmlns:dx="https://raw.githubusercontent.com/MTES-MCT/dialog/main/docs/spec/datex2"'
    ' xmlns="http://datex2.eu/schema/3/trafficRegulation" xsi:type="TrafficRegulationPublication" id="p1"'
    ' modelBaseVersion="3" lang="FR"><com:publicationTime>2026-01-01T00:00:00+00:00</com:publicationTime>'
    "<com:publicationCreator><com:country>fr</com:country><com:nationalIdentifier>T</com:nationalIdentifier>"
    "</com:publicationCreator><trafficRegulationsFromCompetentAuthorities>"
)
TAIL = "</trafficRegulationsFromCompetentAuthorities></d2:payload>"
LILLE_LINE = '{"type":"LineString","coordinates":[[3.0561,50.6301],[3.0509,50.6279]]}'


def iso(moment: datetime) -> str:
    return moment.isoformat()


def document(*orders: str) -> bytes:
    return (HEAD + "".join(orders) + TAIL).encode()


def no_entry() -> str:
    return (
        '<typeOfRegulation xsi:type="AccessRestriction"><accessRestrictionType>noEntry</accessRestrictionType>'
        "</typeOfRegulation>"
    )


def validity(starts: datetime, ends: datetime | None, periods: str = "", tag: str = "ValidityCondition") -> str:
    end = f"<com:overallEndTime>{iso(ends)}</com:overallEndTime>" if ends else ""
    return (
        f'<conditions xsi:type="{tag}"><validityByOrder><com:validityStatus>definedByValidityTimeSpec'
        f"</com:validityStatus><com:validityTimeSpecification><com:overallStartTime>{iso(starts)}"
        f"</com:overallStartTime>{end}{periods}</com:validityTimeSpecification></validityByOrder></conditions>"
    )


def location(geojson: str = LILLE_LINE, street: str = "Rue Nationale") -> str:
    return (
        '<conditions xsi:type="LocationCondition"><locationByOrder xsi:type="loc:LinearLocation">'
        f"<loc:supplementaryPositionalDescription><loc:roadInformation><loc:roadName>{street}</loc:roadName>"
        "</loc:roadInformation></loc:supplementaryPositionalDescription><loc:_linearLocationExtension>"
        f"<loc:linearLocationExtended><dx:geoJsonGeometry>{geojson}</dx:geoJsonGeometry>"
        "</loc:linearLocationExtended></loc:_linearLocationExtension></locationByOrder></conditions>"
    )


def vehicle(characteristics: str, negate: bool = False) -> str:
    return (
        f'<conditions xsi:type="VehicleCondition"><negate>{str(negate).lower()}</negate>'
        f"<vehicleCharacteristics>{characteristics}</vehicleCharacteristics></conditions>"
    )


def order(ident: str, regulation_type: str, conditions: str, status: str = "madeAndImplemented") -> str:
    return (
        f'<trafficRegulationOrder id="{ident}" version="3"><description><com:values><com:value>Travaux {ident}'
        "</com:value></com:values></description><issuingAuthority><com:values><com:value>Lille</com:value>"
        f"</com:values></issuingAuthority><regulationId>2026-{ident}</regulationId><status>{status}</status>"
        f"<trafficRegulation><status>active</status>{regulation_type}"
        f'<condition xsi:type="ConditionSet"><operator>and</operator>{conditions}</condition></trafficRegulation>'
        "</trafficRegulationOrder>"
    )
