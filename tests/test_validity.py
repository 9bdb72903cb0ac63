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
