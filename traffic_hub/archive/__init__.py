"""The history archive (issue 19): every version of every event and every report, in PostgreSQL/PostGIS.

The archiver is a consumer of `{prefix}.reports` and `{prefix}.events`; it stores the consumed offsets in
the same transaction as the rows, so a crash or a replay never loses or doubles a row.
"""

from traffic_hub.archive.service import Archiver

__all__ = ["Archiver"]
