"""Realistic Lille events for feed tests, and a Hypothesis strategy of valid ones inside MEL.

Street geometries are real OpenStreetMap ways of central Lille (way ids given), copied from
`lille_centre_2017_roads.osm.pbf` (see `tests/fixtures/waze/SOURCES.md`):
© OpenStreetMap contributors, ODbL 1.0. Coordinates are (lon, lat) in way order, as in the model.

Scenario builders take the moment `now` the feed is rendered at, so every test can place events
before, around or after it; they return plain `Event`s, usable by any feed's tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from hypothesis import strategies as st
from pyproj import Geod

from traffic_hub.model import (
    Cause,
    Direction,
    Event,
    EventType,
    Lifecycle,
    LineString,
    Measure,
    MeasureType,
    Point,
    Schedule,
    Segment,
    SourceReport,
    Validity,
)
from traffic_hub.model.geometry import MultiLineString
from traffic_hub.model.validity import WEEKDAYS

# Rough Métropole Européenne de Lille envelope (lon/lat), generous by a few km.
MEL_WEST, MEL_SOUTH, MEL_EAST, MEL_NORTH = 2.70, 50.50, 3.40, 50.90

WINTER_NOW = datetime(2026, 1, 15, 9, 30, tzinfo=UTC)  # Europe/Paris is +01:00
SUMMER_NOW = datetime(2026, 7, 15, 9, 30, tzinfo=UTC)  # Europe/Paris is +02:00

ROADWORKS_TEAM = "roadworks:voirie-lille"
WAZE_SOURCE = "waze-mel"


@dataclass(frozen=True, slots=True)
class StreetRun:
    """One real OSM way: a junction-to-junction run of one street."""

    street: str
    osm_way: int
    coordinates: tuple[tuple[float, float], ...]


# Three consecutive ways of Rue Nationale, west to east (each ends where the next starts).
RUE_NATIONALE_WEST = StreetRun(
    "Rue Nationale",
    131751140,
    (
        (3.0521757, 50.6326256),
        (3.0522418, 50.6326517),
        (3.0522582, 50.6326585),
        (3.0523841, 50.6327111),
        (3.0524157, 50.6327254),
        (3.0529673, 50.6329636),
        (3.053269, 50.633092),
        (3.0538867, 50.6333447),
    ),
)
RUE_NATIONALE_MIDDLE = StreetRun(
    "Rue Nationale",
    392793717,
    ((3.0538867, 50.6333447), (3.0545123, 50.633619), (3.0547645, 50.6337183), (3.0551538, 50.6338781)),
)
RUE_NATIONALE_EAST = StreetRun(
    "Rue Nationale",
    180787923,
    ((3.0551538, 50.6338781), (3.0555584, 50.634052), (3.0561665, 50.634318), (3.0564942, 50.6344501)),
)
# One-way, secondary: a lane closure candidate.
BOULEVARD_DE_LA_LIBERTE = StreetRun(
    "Boulevard de la Liberté",
    180787913,
    (
        (3.0518103, 50.6372167),
        (3.0523291, 50.6369304),
        (3.0527197, 50.6367144),
        (3.0529108, 50.6366185),
        (3.0536186, 50.6362186),
        (3.053702, 50.6361716),
        (3.0537867, 50.636125),
        (3.0545248, 50.6357178),
        (3.0552386, 50.6353225),
        (3.0553575, 50.635259),
        (3.0555059, 50.6351747),
        (3.0555519, 50.6351494),
        (3.0565373, 50.6346047),
        (3.0566714, 50.6345306),
    ),
)
BOULEVARD_VAUBAN = StreetRun(
    "Boulevard Vauban",
    180787910,
    (
        (3.0487759, 50.6344483),
        (3.048805, 50.6344767),
        (3.0488135, 50.634485),
        (3.0488743, 50.6345443),
        (3.0490899, 50.6347541),
        (3.0493905, 50.6350468),
        (3.0501604, 50.6357963),
        (3.0503774, 50.6360077),
        (3.0505688, 50.6361982),
        (3.0506353, 50.6362586),
        (3.0516057, 50.6372009),
    ),
)
RUE_DE_PARIS = StreetRun(
    "Rue de Paris",
    83847265,
    (
        (3.0682955, 50.6318493),
        (3.0682999, 50.631818),
        (3.0683655, 50.63156),
        (3.0684942, 50.6310536),
        (3.0685118, 50.6309846),
        (3.0686237, 50.6305687),
        (3.0686789, 50.6303642),
        (3.0686837, 50.6303459),
    ),
)
RUE_ESQUERMOISE = StreetRun(
    "Rue Esquermoise",
    120724079,
    ((3.059841, 50.6385874), (3.0609262, 50.638204), (3.0610338, 50.6381678), (3.0611275, 50.6381318)),
)

LILLE_RUNS = (
    RUE_NATIONALE_WEST,
    RUE_NATIONALE_MIDDLE,
    RUE_NATIONALE_EAST,
    BOULEVARD_DE_LA_LIBERTE,
    BOULEVARD_VAUBAN,
    RUE_DE_PARIS,
    RUE_ESQUERMOISE,
)
STREET_NAMES = (
    "Rue Nationale",
    "Boulevard de la Liberté",
    "Boulevard Vauban",
    "Rue de Paris",
    "Rue Esquermoise",
    "Rue d'Esquermes",
    "Avenue du Peuple Belge",
    "Rue du Molinel",
    "Place du Général de Gaulle",
    "Rue Pierre Mauroy",
)


@cache
def _geod() -> Geod:
    return Geod(ellps="WGS84")


def geodesic_length(coordinates: Sequence[tuple[float, float]]) -> float:
    """Length in metres of (lon, lat) points on the WGS84 ellipsoid."""
    lons = [lon for lon, _ in coordinates]
    lats = [lat for _, lat in coordinates]
    return float(_geod().line_length(lons, lats))


def segment(run: StreetRun, start: int = 0, stop: int | None = None, *, street: str | None = "") -> Segment:
    """A model Segment from points [start:stop] of `run`; `street=""` means the run's own name."""
    coordinates = list(run.coordinates[start:stop])
    return Segment(
        street=run.street if street == "" else street,
        coordinates=coordinates,
        length_m=geodesic_length(coordinates) if len(coordinates) > 1 else 0.0,
        edge_ids=[str(run.osm_way)],
    )


def make_event(
    event_id: str,
    now: datetime,
    *,
    segments: Sequence[Segment],
    event_type: EventType = EventType.CLOSURE,
    cause: Cause = Cause.ROADWORKS,
    subtype: str | None = None,
    description: str = "Travaux de voirie : chaussée fermée",
    direction: Direction = Direction.BOTH_DIRECTIONS,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
    open_ended: bool = False,
    schedule: Schedule | None = None,
    lanes: dict[str, Any] | None = None,
    lifecycle: Lifecycle = Lifecycle.OPEN,
    geometry: LineString | Point | None = None,
    source: str = ROADWORKS_TEAM,
    commune: str | None = "59350",
) -> Event:
    """An Event around `now`: by default started an hour ago, ending in three days.

    `geometry` defaults to the segments' points joined into one line (what a team would draw).
    """
    start = starts_at if starts_at is not None else now - timedelta(hours=1)
    end = None if open_ended else (ends_at if ends_at is not None else start + timedelta(days=3))
    shape = geometry if geometry is not None else _joined(segments)
    created = min(start, now) - timedelta(days=2)
    return Event(
        id=event_id,
        type=event_type,
        subtype=subtype,
        cause=cause,
        description=description,
        geometry=shape,
        direction=direction,
        street=segments[0].street if segments else None,
        commune=commune,
        validity=Validity(starts_at=start, ends_at=end, schedule=schedule),
        lanes=lanes,
        lifecycle=lifecycle,
        version=1,
        sources=[
            SourceReport(
                source=source,
                source_id=event_id.upper(),
                kind="closure" if source == ROADWORKS_TEAM else "waze-alert",
                received_at=created,
            )
        ],
        segments=list(segments),
        created_at=created,
        updated_at=created + timedelta(hours=5),
    )


def _joined(segments: Sequence[Segment]) -> LineString:
    points: list[list[float]] = []
    for part in segments:
        for lon, lat in part.coordinates:
            if not points or points[-1] != [lon, lat]:
                points.append([lon, lat])
    if len(points) < 2:  # deliberately degenerate segments still need a valid event geometry
        points = [[3.0521757, 50.6326256], [3.0538867, 50.6333447]]
    return LineString(type="LineString", coordinates=points)


# --- scenarios -------------------------------------------------------------------------------


def scheduled_closure(now: datetime) -> Event:
    """Weekday day-time roadworks on Rue Nationale (one junction-to-junction run)."""
    schedule = Schedule(
        monday=["08:00-12:00", "13:30-17:00"],
        tuesday=["08:00-12:00", "13:30-17:00"],
        wednesday=["08:00-12:00"],
        thursday=["08:00-12:00", "13:30-17:00"],
        friday=["08:00-12:00", "13:30-17:00"],
    )
    return make_event(
        "cl-LILLE-2026-0042",
        now,
        segments=[segment(RUE_NATIONALE_WEST)],
        description="Réfection de la chaussée, rue fermée en journée (déviation par le boulevard de la Liberté)",
        starts_at=now - timedelta(days=2),
        ends_at=now + timedelta(days=12),
        schedule=schedule,
    )


def nightly_closure(now: datetime) -> Event:
    """Night works every day on Rue Esquermoise (same window all week)."""
    schedule = Schedule(**{day: ["20:00-23:30"] for day in WEEKDAYS})
    return make_event(
        "cl-LILLE-2026-0051",
        now,
        segments=[segment(RUE_ESQUERMOISE)],
        description="Travaux de nuit sur les réseaux : rue fermée de 20 h à 23 h 30",
        starts_at=now - timedelta(days=1),
        ends_at=now + timedelta(days=6),
        schedule=schedule,
    )


def lane_closure(now: datetime) -> Event:
    """One of two lanes closed on the right, Boulevard de la Liberté (one-way); a `lane_closed` measure, as the
    normaliser records every team's closure (so the regulations feed carries it too)."""
    event = make_event(
        "cl-LILLE-2026-0077",
        now,
        segments=[segment(BOULEVARD_DE_LA_LIBERTE)],
        event_type=EventType.LANE_CLOSURE,
        description="Voie de droite neutralisée pour travaux de fibre optique",
        direction=Direction.ONE_DIRECTION,
        lanes={"closed": 1, "total": 2, "side": "RIGHT"},
    )
    return event.model_copy(update={"measure": Measure(type=MeasureType.LANE_CLOSED)})


def braderie_closure(now: datetime) -> Event:
    """Rue Nationale closed for the Braderie over three junction-to-junction runs."""
    return make_event(
        "cl-LILLE-2026-0100",
        now,
        segments=[segment(RUE_NATIONALE_WEST), segment(RUE_NATIONALE_MIDDLE), segment(RUE_NATIONALE_EAST)],
        cause=Cause.EVENT,
        description="Braderie de Lille : rue Nationale fermée à la circulation",
        starts_at=now - timedelta(hours=3),
        ends_at=now + timedelta(hours=30),
    )


def waze_accident(now: datetime) -> Event:
    """A minor accident reported through Waze: a point, matched to a 2-point run, no end."""
    run = segment(BOULEVARD_VAUBAN, 5, 7)
    return make_event(
        "wz-9b2d6c1e-53a4-4d6f-8f0e-2f1c7a9d0b11",
        now,
        segments=[run],
        event_type=EventType.ACCIDENT,
        cause=Cause.ACCIDENT,
        subtype="ACCIDENT_MINOR",
        description="Accident signalé, prudence",
        direction=Direction.UNKNOWN,
        starts_at=now - timedelta(minutes=12),
        open_ended=True,
        geometry=Point(type="Point", coordinates=[3.04975, 50.63542]),
        source=WAZE_SOURCE,
    )


def upcoming_closure(now: datetime) -> Event:
    """Planned: Rue de Paris closed next week."""
    return make_event(
        "cl-LILLE-2026-0120",
        now,
        segments=[segment(RUE_DE_PARIS)],
        description="Remplacement d'une canalisation d'eau potable",
        starts_at=now + timedelta(days=7),
        ends_at=now + timedelta(days=9),
    )


def ended_closure(now: datetime) -> Event:
    """Its period is over."""
    return make_event(
        "cl-LILLE-2026-0003",
        now,
        segments=[segment(RUE_DE_PARIS)],
        starts_at=now - timedelta(days=10),
        ends_at=now - timedelta(days=1),
    )


def cancelled_closure(now: datetime) -> Event:
    """Called off by its team while still in its period."""
    return make_event(
        "cl-LILLE-2026-0004",
        now,
        segments=[segment(RUE_ESQUERMOISE)],
        lifecycle=Lifecycle.CANCELLED,
    )


def lille_scenarios(now: datetime) -> list[Event]:
    """Every scenario above, current or not."""
    return [
        scheduled_closure(now),
        nightly_closure(now),
        lane_closure(now),
        braderie_closure(now),
        waze_accident(now),
        upcoming_closure(now),
        ended_closure(now),
        cancelled_closure(now),
    ]


# --- Hypothesis: random valid events inside MEL ------------------------------------------------

_WAZE_SUBTYPES = (
    "ACCIDENT_MAJOR",
    "HAZARD_ON_ROAD_OBJECT",
    "HAZARD_WEATHER_FOG",
    "JAM_HEAVY_TRAFFIC",
    "ROAD_CLOSED_EVENT",
    "POLICE_VISIBLE",
    "",
)


@st.composite
def mel_segments(draw: st.DrawFn) -> Segment:
    """A walk of 1-8 steps inside MEL: first step 40-600 m, later ones 10-600 m (35 m-10 km)."""
    lon = draw(st.floats(2.85, 3.25))
    lat = draw(st.floats(50.55, 50.80))
    points = [(lon, lat)]
    steps = draw(st.lists(st.tuples(st.floats(10, 600), st.floats(0, 360)), min_size=0, max_size=7))
    for distance, azimuth in [(draw(st.floats(40, 600)), draw(st.floats(0, 360))), *steps]:
        lon, lat, _ = _geod().fwd(lon, lat, azimuth, distance)
        points.append((lon, lat))
    return Segment(
        street=draw(st.sampled_from(STREET_NAMES)),
        coordinates=points,
        length_m=geodesic_length(points),
    )


def _windows() -> st.SearchStrategy[list[str]]:
    def window(start: int, length: int) -> str:
        end = min(start + length, 24 * 60)
        return f"{start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}"

    return st.lists(st.builds(window, st.integers(0, 23 * 60), st.integers(15, 600)), min_size=1, max_size=3)


def _schedules() -> st.SearchStrategy[Schedule | None]:
    days = st.dictionaries(st.sampled_from(WEEKDAYS), _windows(), min_size=1)
    return st.none() | st.builds(lambda windows: Schedule(**windows), days)


@st.composite
def mel_events(draw: st.DrawFn, now: datetime) -> Event:
    """A random event that is current at `now` and that Waze should accept."""
    segments = draw(st.lists(mel_segments(), min_size=1, max_size=3))
    # Steps in real time (UTC), shown in `now`'s zone: wall-clock steps can land in the hour a DST
    # change skips, which makes a one-hour closure last no time at all.
    utc = now.astimezone(UTC)
    start_utc = utc + timedelta(
        seconds=draw(st.integers(-30 * 86400, 30 * 86400)), microseconds=draw(st.integers(0, 999_999))
    )
    end_utc = max(start_utc, utc) + timedelta(seconds=draw(st.integers(60, 60 * 86400)))
    start, end = start_utc.astimezone(now.tzinfo), end_utc.astimezone(now.tzinfo)
    event_type = draw(st.sampled_from([kind for kind in EventType if kind is not EventType.OTHER]))
    open_ended = event_type is not EventType.CLOSURE and draw(st.booleans())
    lanes = {"closed": 1, "total": 3, "side": draw(st.sampled_from(["LEFT", "MIDDLE", "RIGHT"]))}
    return make_event(
        draw(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:/-]{2,40}", fullmatch=True)),
        now,
        segments=segments,
        event_type=event_type,
        cause=draw(st.sampled_from(Cause)),
        subtype=draw(st.none() | st.sampled_from(_WAZE_SUBTYPES)),
        description="Chantier : " + draw(st.text(max_size=700)),
        direction=draw(st.sampled_from(Direction)),
        starts_at=start,
        ends_at=end,
        open_ended=open_ended,
        schedule=draw(_schedules()),
        lanes=draw(st.none() | st.just(lanes)),
        source=draw(st.sampled_from([ROADWORKS_TEAM, WAZE_SOURCE])),
    )


# --- more scenarios for the DATEX II, WZDx and open-data feeds ----------------------------------

DATEX2_CONNECTOR = "datex2-dir-nord"


def conflated_accident(now: datetime) -> Event:
    """An accident seen by Waze users and by the DIR Nord DATEX II feed, confirmed by an operator."""
    base = make_event(
        "ev-acc-2026-0315",
        now,
        segments=[segment(BOULEVARD_VAUBAN, 3, 7)],
        event_type=EventType.ACCIDENT,
        cause=Cause.ACCIDENT,
        subtype="ACCIDENT_MAJOR",
        description="Collision entre deux véhicules, voie de droite encombrée",
        direction=Direction.ONE_DIRECTION,
        starts_at=now - timedelta(minutes=25),
        open_ended=True,
        geometry=Point(type="Point", coordinates=[3.0501604, 50.6357963]),
        source=WAZE_SOURCE,
    )
    datex = SourceReport(
        source=DATEX2_CONNECTOR,
        source_id="DIRN-SIT-88412_REC-1",
        kind="datex2-record",
        received_at=now - timedelta(minutes=18),
        said={"accidentType": "collision"},
    )
    return base.model_copy(update={"sources": [*base.sources, datex], "verification": "confirmed", "version": 3})


def waze_jam(now: datetime) -> Event:
    """Stand-still traffic on Rue de Paris, from Waze only."""
    return make_event(
        "wz-jam-5f0c2a77",
        now,
        segments=[segment(RUE_DE_PARIS)],
        event_type=EventType.JAM,
        cause=Cause.OTHER,
        subtype="JAM_STAND_STILL_TRAFFIC",
        description="Circulation à l'arrêt",
        direction=Direction.ONE_DIRECTION,
        starts_at=now - timedelta(minutes=8),
        open_ended=True,
        source=WAZE_SOURCE,
    )


def fog_warning(now: datetime) -> Event:
    """Dense fog reported by the DIR Nord DATEX II feed at a point of Boulevard de la Liberté."""
    event = make_event(
        "dx-DIRN-SIT-88500",
        now,
        segments=[segment(BOULEVARD_DE_LA_LIBERTE, 4, 6)],
        event_type=EventType.WEATHER,
        cause=Cause.HAZARD,
        subtype="HAZARD_WEATHER_FOG",
        description="Brouillard dense, visibilité réduite",
        direction=Direction.UNKNOWN,
        starts_at=now - timedelta(hours=2),
        ends_at=now + timedelta(hours=4),
        geometry=Point(type="Point", coordinates=[3.0536186, 50.6362186]),
    )
    report = event.sources[0].model_copy(update={"source": DATEX2_CONNECTOR, "kind": "datex2-record"})
    return event.model_copy(update={"sources": [report]})


def roadworks_beside_road(now: datetime) -> Event:
    """Roadworks on the pavement of Rue Esquermoise, traffic not closed."""
    return make_event(
        "cl-LILLE-2026-0133",
        now,
        segments=[segment(RUE_ESQUERMOISE)],
        event_type=EventType.ROADWORKS,
        description="Réfection du trottoir & des bordures <côté pair>",
        direction=Direction.BOTH_DIRECTIONS,
    )


def lane_closure_without_counts(now: datetime) -> Event:
    """A deliberately bad lane closure: the lane counts contradict each other (3 closed of 2)."""
    return make_event(
        "cl-LILLE-2026-0140",
        now,
        segments=[segment(BOULEVARD_DE_LA_LIBERTE)],
        event_type=EventType.LANE_CLOSURE,
        description="Voies neutralisées",
        direction=Direction.ONE_DIRECTION,
        lanes={"closed": 3, "total": 2, "side": "RIGHT"},
    )


def degenerate_closure(now: datetime) -> Event:
    """A deliberately bad closure whose line has one distinct point (drawn by a double click)."""
    point = [3.0538867, 50.6333447]
    return make_event(
        "cl-LILLE-2026-0150",
        now,
        segments=[segment(RUE_NATIONALE_MIDDLE)],
        geometry=LineString(type="LineString", coordinates=[point, list(point)]),
    )


def partner_scenarios(now: datetime) -> list[Event]:
    """`lille_scenarios` plus the sources and types the partner feeds also carry (no bad items)."""
    return [*lille_scenarios(now), conflated_accident(now), waze_jam(now), fog_warning(now), roadworks_beside_road(now)]


@st.composite
def mel_varied_events(draw: st.DrawFn, now: datetime) -> Event:
    """`mel_events` whose geometry is sometimes a point or a multi-line, sources sometimes several."""
    event = draw(mel_events(now))
    shape = draw(st.sampled_from(["line", "point", "multi"]))
    geometry: Point | LineString | MultiLineString = event.geometry
    if shape == "point":
        lon, lat = event.segments[0].coordinates[0]
        geometry = Point(type="Point", coordinates=[lon, lat])
    elif shape == "multi":
        geometry = MultiLineString(
            type="MultiLineString", coordinates=[[list(p) for p in part.coordinates] for part in event.segments]
        )
    sources = list(event.sources)
    if draw(st.booleans()):
        sources.append(
            SourceReport(source=DATEX2_CONNECTOR, source_id="X-1", kind="datex2-record", received_at=event.created_at)
        )
    return event.model_copy(update={"geometry": geometry, "sources": sources, "version": draw(st.integers(1, 500))})
