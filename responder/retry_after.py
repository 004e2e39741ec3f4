"""An HTTP ``Retry-After`` header read once for every client here (Notify, photo hosts,
webhook subscribers): delta-seconds or an HTTP date (RFC 9110, section 10.2.3)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

# A longer wait is taken as an hour: a host's mistake must not park work for days.
MAX_RETRY_AFTER = 3600.0


def retry_after(
    value: str | None,
    now: datetime | None = None,
    *,
    floor: float = 0.0,
    cap: float = MAX_RETRY_AFTER,
) -> float | None:
    """Seconds to wait, between ``floor`` and ``cap``; None when there is no header or it is
    not one (a negative number, words): the caller then backs off its own way."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        seconds = float(value)
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if not math.isfinite(seconds):
        return None
    return min(cap, max(floor, seconds))
