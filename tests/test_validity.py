"""A validity's end must come after its start in real time, not on the wall clock of its zone."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from traffic_hub.model.validity import Validity

PARIS = ZoneInfo("Europe/Paris")


def test_an_hour_the_spring_change_skips_is_no_time_at_all() -> None:
    # 02:00 does not exist on 29 March 2026 in Paris: it is the instant 03:00 is.
    with pytest.raises(ValidationError, match="ends_at must be after starts_at"):
        Validity(starts_at=datetime(2026, 3, 29, 2, 0, tzinfo=PARIS), ends_at=datetime(2026, 3, 29, 3, 0, tzinfo=PARIS))


def test_the_repeated_autumn_hour_counts_in_real_time() -> None:
    # 02:30 summer time, then 02:10 winter time (the second 02:10): 40 minutes later.
    start = datetime(2026, 10, 25, 2, 30, tzinfo=PARIS)
    end = datetime(2026, 10, 25, 2, 10, fold=1, tzinfo=PARIS)
    assert Validity(starts_at=start, ends_at=end).ends_at == end
    with pytest.raises(ValidationError, match="ends_at must be after starts_at"):
        Validity(starts_at=end, ends_at=start)


def test_start_and_end_are_instants_also_when_now_shares_their_zone() -> None:
    """The repeated autumn hour: 02:30+02:00 comes before 02:10+01:00, although its wall clock is later."""
    first_0230 = datetime(2026, 10, 25, 2, 30, tzinfo=PARIS)  # fold=0: +02:00, 00:30 UTC
    second_0210 = datetime(2026, 10, 25, 2, 10, fold=1, tzinfo=PARIS)  # +01:00, 01:10 UTC
    validity = Validity(starts_at=first_0230, ends_at=second_0210)
    assert validity.has_started(datetime(2026, 10, 25, 2, 40, tzinfo=PARIS))  # 00:40 UTC
    assert not validity.has_ended(datetime(2026, 10, 25, 2, 40, tzinfo=PARIS))
    assert validity.has_ended(datetime(2026, 10, 25, 2, 15, fold=1, tzinfo=PARIS))  # 01:15 UTC
