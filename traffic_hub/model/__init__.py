"""The canonical model: what every source is parsed into and every feed is rendered from.

Knows nothing of Kafka, HTTP, XML or geometry libraries beyond GeoJSON shapes.
"""

from traffic_hub.model.action import ActionIn, OperatorAction
from traffic_hub.model.closure import ClosureIn, ClosurePatch, ClosureState, Lanes, MeasureIn, MeasurePatch
from traffic_hub.model.event import Event, Normalised, Segment, SourceReport
from traffic_hub.model.geometry import Geometry, LineString, Point
from traffic_hub.model.incident import IncidentReport
from traffic_hub.model.measure import CritAir, Exemption, Measure, MeasureType, VehicleKind, Vehicles
from traffic_hub.model.report import Report, ReportKind
from traffic_hub.model.validity import Schedule, ScheduleExceptions, Validity
from traffic_hub.model.vocabulary import Cause, Direction, EventType, Lifecycle, Status

__all__ = [
    "ActionIn",
    "Cause",
    "ClosureIn",
    "ClosurePatch",
    "ClosureState",
    "CritAir",
    "Direction",
    "Event",
    "EventType",
    "Exemption",
    "Geometry",
    "IncidentReport",
    "Lanes",
    "Lifecycle",
    "LineString",
    "Measure",
    "MeasureIn",
    "MeasurePatch",
    "MeasureType",
    "Normalised",
    "OperatorAction",
    "Point",
    "Report",
    "ReportKind",
    "Schedule",
    "ScheduleExceptions",
    "Segment",
    "SourceReport",
    "Status",
    "Validity",
    "VehicleKind",
    "Vehicles",
]
