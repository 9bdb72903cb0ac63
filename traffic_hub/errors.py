"""The hub's errors, mapped to HTTP once, in `traffic_hub.api.problems`.

    TrafficHubError
     ├── InvalidInput        422  a field is wrong; names the field
     ├── Unauthenticated     401  no key, or a key nobody has
     ├── Forbidden           403  wrong role, or outside the principal's communes
     ├── NotFound            404
     ├── Conflict            409
     ├── PreconditionFailed  412  If-Match does not match the current version
     ├── PayloadTooLarge     413
     └── Unavailable         503  Kafka cannot take a write now (retry after a moment)
          └── WriteRejected  503  Kafka refused these records for good (too large, invalid): never retry them

Kafka errors are classified where they are raised (`traffic_hub.kafka.publisher`): a retriable one
(broker down, leader moving, timeout) is a plain `Unavailable` and the same write may succeed later; a
permanent one for the records themselves is `WriteRejected`, naming which records, so a caller that
writes data it did not make (the connector runner) dead-letters them and moves on instead of retrying
forever. `WriteRejected` stays an `Unavailable` so callers that only know 503 keep working.
"""

from __future__ import annotations


class TrafficHubError(Exception):
    status = 500
    title = "Internal error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidInput(TrafficHubError):
    status = 422
    title = "Invalid input"

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(f"{field}: {detail}")
        self.field = field
        self.reason = detail


class Unauthenticated(TrafficHubError):
    status = 401
    title = "Authentication required"


class Forbidden(TrafficHubError):
    status = 403
    title = "Forbidden"


class NotFound(TrafficHubError):
    status = 404
    title = "Not found"


class Conflict(TrafficHubError):
    status = 409
    title = "Conflict"


class PreconditionFailed(TrafficHubError):
    status = 412
    title = "Precondition failed"


class PayloadTooLarge(TrafficHubError):
    status = 413
    title = "Payload too large"


class Unavailable(TrafficHubError):
    status = 503
    title = "Service unavailable"

    def __init__(self, detail: str, retry_after_s: int = 1) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class WriteRejected(Unavailable):
    """Kafka (or the producer before sending) refused some records permanently; retrying them cannot succeed.

    `indexes` are the positions of the refused records in the sequence given to `send_many`; the other
    records of that call were not written (the caller may send them again).
    """

    def __init__(self, detail: str, indexes: tuple[int, ...]) -> None:
        super().__init__(detail, retry_after_s=2)
        self.indexes = indexes
