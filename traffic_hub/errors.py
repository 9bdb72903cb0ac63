"""The hub's errors, classified by behaviour: what the caller should do, not which HTTP status it is.

    TrafficHubError
     ├── BadInput               the caller's input is wrong: fix it, never retry it as is
     │    ├── InvalidInput      a field is wrong; names the field
     │    └── PayloadTooLarge
     ├── Unauthenticated        no key, or a key nobody has
     ├── Forbidden              wrong role, or outside the principal's communes
     ├── NotFound
     ├── Conflict               the state forbids it (a reference in use …)
     │    └── PreconditionFailed  If-Match does not match the current version
     ├── Unavailable            retriable: a dependency (Kafka) cannot take the write now; the same
     │                          write may succeed after `retry_after_s`
     └── WriteRejected          permanent: Kafka (or the producer before sending) refused these records
                                for good (too large, invalid); dead-letter or drop them, never retry

`retriable` says which is which, as aiokafka's errors do. Kafka errors are classified where they are
raised (`traffic_hub.kafka.publisher`). HTTP is the edge's business: `traffic_hub.api.problems` maps
each class to its status and title, once; nothing else in the hub knows a status code.
"""

from __future__ import annotations


class TrafficHubError(Exception):
    retriable = False

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class BadInput(TrafficHubError):
    """The input cannot be used as it is."""


class InvalidInput(BadInput):
    def __init__(self, field: str, detail: str) -> None:
        super().__init__(f"{field}: {detail}")
        self.field = field
        self.reason = detail


class PayloadTooLarge(BadInput):
    pass


class Unauthenticated(TrafficHubError):
    pass


class Forbidden(TrafficHubError):
    pass


class NotFound(TrafficHubError):
    pass


class Conflict(TrafficHubError):
    pass


class PreconditionFailed(Conflict):
    pass


class Unavailable(TrafficHubError):
    """Retriable: the same write may succeed after `retry_after_s` seconds."""

    retriable = True

    def __init__(self, detail: str, retry_after_s: int = 1) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class WriteRejected(TrafficHubError):
    """Permanent: Kafka (or the producer before sending) refused some records; retrying them cannot succeed.

    `indexes` are the positions of the refused records in the sequence given to `send_many`; the other
    records of that call were not written (the caller may send them again).
    """

    def __init__(self, detail: str, indexes: tuple[int, ...]) -> None:
        super().__init__(detail)
        self.indexes = indexes
        self.retry_after_s = 2
