"""The performance page's arithmetic: which period, which buckets, what counts, percentages.

Pure: plain values in, plain values out. ``queries/performance.py`` reads the counts (a few
GROUP BY statements over the tasks the viewer may see) and adds them up here.

What the figures mean (the same words as the managers' digest, ``queries/digest.py``):

- **open now** / **overdue now**: tasks in an open status at the moment the page is built;
  overdue ones have ``due_at`` before that moment. They do not depend on the period.
- **created**: tasks whose ``created_at`` falls in the period.
- **completed**: tasks with status completed whose ``closed_at`` falls in the period
  (cancelled tasks are closed too, but they are not completed).
- **completed in time**: those of them closed at or before their ``due_at``.

A period is whole days in the council's time zone, from the first day's midnight to the
midnight after the last day, at most ``MAX_DAYS`` long. Its trend is counted per day up to
``DAILY_UP_TO`` days, else per week (seven-day steps from the first day; the last may be
shorter).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo

PRESETS = (7, 28, 90)
DEFAULT_DAYS = 28
MAX_DAYS = 366
DAILY_UP_TO = 31
MAX_BUSIEST = 10
# The earliest day a period may start: before it no task can exist, and far-off years
# are where date arithmetic overflows.
EARLIEST = date(2000, 1, 1)
_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


class PeriodError(ValueError):
    """A period the page cannot show: ``param`` names the query parameter to fix."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(f"{param}: {message}")
        self.param = param
        self.message = message


@dataclass(frozen=True)
class Period:
    first: date  # the first day, in the council's time zone
    last: date  # the last day (inclusive)
    start: datetime  # the first day's midnight, UTC
    end: datetime  # the midnight after the last day, UTC (exclusive)
    preset: int | None  # 7, 28 or 90 when chosen that way; None for from/to

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    @property
    def daily(self) -> bool:
        return self.days <= DAILY_UP_TO


def midnight(day: date, tz: tzinfo) -> datetime:
    """The moment ``day`` begins in ``tz``, in UTC."""
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def make_period(first: date, last: date, tz: tzinfo, preset: int | None = None) -> Period:
    return Period(first, last, midnight(first, tz), midnight(last + timedelta(days=1), tz), preset)


def _day(params: Mapping[str, str], name: str) -> date:
    raw = params.get(name, "").strip()
    if not _ISO_DAY.fullmatch(raw):
        raise PeriodError(name, "give a date as YYYY-MM-DD, like 2026-11-01.")
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise PeriodError(name, f"{raw} is not a date in the calendar.") from None
    if day < EARLIEST or day > date(9000, 1, 1):
        raise PeriodError(name, f"give a date from {EARLIEST.isoformat()} on.")
    return day


def parse_period(params: Mapping[str, str], today: date, tz: tzinfo) -> Period:
    """The period the query asks for: ``period=7|28|90`` (days up to today), or ``from`` and
    ``to`` (both, inclusive), or the last ``DEFAULT_DAYS`` days. ``PeriodError`` names the
    parameter that is wrong."""
    has_range = "from" in params or "to" in params
    if "period" in params:
        if has_range:
            raise PeriodError("period", "choose a period or give from and to, not both.")
        raw = params["period"].strip()
        if raw not in {str(n) for n in PRESETS}:
            choices = ", ".join(str(n) for n in PRESETS)
            raise PeriodError("period", f"choose {choices} (days).")
        days = int(raw)
        return make_period(today - timedelta(days=days - 1), today, tz, days)
    if has_range:
        if "from" not in params:
            raise PeriodError("from", "give the first day as well as the last (to).")
        if "to" not in params:
            raise PeriodError("to", "give the last day as well as the first (from).")
        first, last = _day(params, "from"), _day(params, "to")
        if last < first:
            raise PeriodError("to", "the last day is before the first.")
        if (last - first).days + 1 > MAX_DAYS:
            raise PeriodError("to", f"a period is at most {MAX_DAYS} days long.")
        return make_period(first, last, tz)
    return make_period(today - timedelta(days=DEFAULT_DAYS - 1), today, tz, DEFAULT_DAYS)


@dataclass(frozen=True)
class Bucket:
    """One step of a trend: a day or a week, as UTC moments and local days."""

    first: date
    last: date
    start: datetime
    end: datetime

    def label(self) -> str:
        """'Mon 23 Nov' for a day, '23–29 Nov' for a week."""
        if self.first == self.last:
            return f"{self.first:%a} {self.first.day} {self.first:%b}"
        if self.first.month == self.last.month:
            return f"{self.first.day}–{self.last.day} {self.last:%b}"
        return f"{self.first.day} {self.first:%b}–{self.last.day} {self.last:%b}"

    def short_label(self) -> str:
        """'23 Nov': the axis of a chart."""
        return f"{self.first.day} {self.first:%b}"


def buckets(period: Period, tz: tzinfo) -> tuple[Bucket, ...]:
    step = 1 if period.daily else 7
    found = []
    first = period.first
    while first <= period.last:
        last = min(first + timedelta(days=step - 1), period.last)
        found.append(Bucket(first, last, midnight(first, tz), midnight(last + timedelta(1), tz)))
        first = last + timedelta(days=1)
    return tuple(found)


def percent(part: int, whole: int) -> int | None:
    """``part`` of ``whole`` as a whole percentage (half up), or None when there is none."""
    if whole <= 0:
        return None
    return (200 * part + whole) // (2 * whole)


def percent_text(part: int, whole: int) -> str:
    value = percent(part, whole)
    return "–" if value is None else f"{value}%"


@dataclass
class Line:
    """One row of a breakdown (a priority, team or ward), or the totals."""

    key: str
    name: str
    open: int = 0
    overdue: int = 0
    created: int = 0
    completed: int = 0
    in_time: int = 0

    @property
    def in_time_percent(self) -> int | None:
        return percent(self.in_time, self.completed)

    @property
    def empty(self) -> bool:
        return not (self.open or self.overdue or self.created or self.completed)


@dataclass
class TrendPoint:
    bucket: Bucket
    created: int = 0
    completed: int = 0
    in_time: int = 0

    @property
    def in_time_percent(self) -> int | None:
        return percent(self.in_time, self.completed)


@dataclass(frozen=True)
class OfficerLoad:
    person_id: str
    name: str
    open: int
    in_progress: int
    overdue: int


@dataclass
class Rating:
    key: str
    name: str
    count: int = 0
    total: int = 0  # the sum of the ratings

    @property
    def average(self) -> float | None:
        return self.total / self.count if self.count else None

    @property
    def average_text(self) -> str:
        average = self.average
        return "–" if average is None else f"{average:.1f}"


@dataclass
class Performance:
    period: Period
    now: datetime
    totals: Line
    by_priority: list[Line]
    by_team: list[Line]
    by_ward: list[Line]
    trend: list[TrendPoint]
    busiest_types: list[tuple[str, int]]
    busiest_wards: list[tuple[str, int]]
    officers: list[OfficerLoad] | None  # None: not shown to this viewer
    ratings: list[Rating]
    ratings_total: Rating = field(default_factory=lambda: Rating("", "All teams"))


class Tally:
    """Adds grouped counts into the breakdowns (priority, team, ward) and the trend."""

    def __init__(
        self,
        period: Period,
        bucket_list: tuple[Bucket, ...],
        names: Mapping[str, Mapping[str, str]],
        orders: Mapping[str, list[str]],
    ) -> None:
        self.period = period
        self.bucket_list = bucket_list
        self.names = names  # "priority"|"team"|"ward" -> key -> name
        self.orders = orders  # "priority"|"team"|"ward" -> keys in the council's order
        self.totals = Line("", "All")
        self.lines: dict[str, dict[str, Line]] = {"priority": {}, "team": {}, "ward": {}}
        self.trend = [TrendPoint(b) for b in bucket_list]

    def _each(self, priority: str, team: str, ward: str) -> Iterable[Line]:
        yield self.totals
        for kind, key in (("priority", priority), ("team", team), ("ward", ward)):
            lines = self.lines[kind]
            if key not in lines:
                lines[key] = Line(key, self.names[kind].get(key, key))
            yield lines[key]

    def add_open(self, priority: str, team: str, ward: str, n: int, late: int) -> None:
        for line in self._each(priority, team, ward):
            line.open += n
            line.overdue += late

    def add_created(self, priority: str, team: str, ward: str, bucket: int | None, n: int) -> None:
        for line in self._each(priority, team, ward):
            line.created += n
        if bucket is not None and 0 <= bucket < len(self.trend):
            self.trend[bucket].created += n

    def add_completed(
        self, priority: str, team: str, ward: str, bucket: int | None, n: int, in_time: int
    ) -> None:
        for line in self._each(priority, team, ward):
            line.completed += n
            line.in_time += in_time
        if bucket is not None and 0 <= bucket < len(self.trend):
            self.trend[bucket].completed += n
            self.trend[bucket].in_time += in_time

    def breakdown(self, kind: str, always: Iterable[str] = ()) -> list[Line]:
        """The lines of one kind in the council's order (unknown keys after, by name);
        ``always`` keys are listed even with nothing in them."""
        lines = self.lines[kind]
        for key in always:
            if key not in lines:
                lines[key] = Line(key, self.names[kind].get(key, key))
        order = {key: i for i, key in enumerate(self.orders[kind])}
        return sorted(lines.values(), key=lambda line: (order.get(line.key, len(order)), line.name))


def busiest(counts: Mapping[str, int], names: Mapping[str, str]) -> list[tuple[str, int]]:
    """The top ``MAX_BUSIEST`` by count (then by name), as (name, count)."""
    ranked = sorted(
        ((names.get(key, key), n) for key, n in counts.items() if n), key=lambda p: (-p[1], p[0])
    )
    return ranked[:MAX_BUSIEST]
