"""Due times: priority hours turned into a deadline the way people read them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo


def due_at(reported_at: datetime, hours: float, tz: ZoneInfo) -> datetime:
    """When a task reported at ``reported_at`` with ``hours`` to complete is due (aware UTC).

    Whole days count as calendar days in the council's local time, so "72 hours" from
    09:00 means 09:00 three days later even across a clock change (what an officer or
    resident expects); the hours left over are elapsed time.

    A wall time that does not exist (the spring-forward gap) moves forward by the
    gap; one that happens twice (the autumn fold) takes the first occurrence. Both
    follow from zoneinfo's ``fold=0`` and are normalised through UTC.
    """
    if reported_at.tzinfo is None or reported_at.utcoffset() is None:
        raise ValueError("reported_at must be timezone-aware")
    if hours < 0:
        raise ValueError(f"hours must not be negative, got {hours}")
    whole_days = int(hours // 24)
    remainder = timedelta(hours=hours - whole_days * 24)
    start = reported_at.astimezone(UTC)
    if whole_days == 0:
        # No calendar arithmetic: keep the exact instant (even inside a fold).
        return start + remainder
    wall = reported_at.astimezone(tz).replace(tzinfo=None) + timedelta(days=whole_days)
    day_due = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    return day_due + remainder
