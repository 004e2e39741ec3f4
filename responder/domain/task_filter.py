"""Which tasks a list, a map or an export asks for: the filter, read from query parameters.

``parse_filter(pairs, council)`` reads a query string's (name, value) pairs into a
``TaskFilter`` (plain values, frozen) or a list of ``Problem``s, each naming the parameter
that is wrong and saying why, so a page can show an error summary and an API a 400. The
work list (``/tasks``), the map (``/map/data``), the task API and the exports all read
their filters here, and ``queries/task_list.py`` turns a filter into SQL, always inside the
viewer's ``Scope``: a filter narrows what the viewer may see, it never widens it (asking
for another ward's tasks gives nothing, not those tasks).

Parameters (a blank value counts as not given, as a form's "Any" option sends it):

- ``status``: repeated or comma-separated; a status or a group: ``open`` (the default),
  ``closed``, ``all``.
- ``priority``, ``type``, ``ward``, ``team``, ``source``: repeated or comma-separated;
  each must be one the council file names (``source`` is any short name).
- ``officer``: a person id from the council file, or ``none`` for unassigned tasks.
- ``created_from``/``created_to``, ``due_from``/``due_to``, ``closed_from``/``closed_to``:
  dates (YYYY-MM-DD) in the council's time zone; ``to`` is inclusive.
- ``overdue``: ``1``/``true``/``yes``/``on``: open tasks due before now.
- ``q``: a task reference (RSP-1042, #1042) matches that task; otherwise words, each of
  which must appear in the description or the address (case-insensitive), at most 200
  characters.
- ``sort``: one of ``SORTS``; ``after``: the cursor a page gave for the next one;
  ``limit``: 1 to 200 (default 50).

Unknown values (a status or a team that does not exist) are problems, not empty results.
Other parameter names are ignored (pages carry their own, such as ``in=teams``).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from responder.config.model import Council
from responder.domain.lifecycle import OPEN_STATUSES, Status
from responder.domain.reference import parse_reference

MAX_QUERY = 4096  # bytes of query string; longer is a 414
MAX_PAIRS = 100  # parameters in one query string
MAX_VALUES = 50  # values of one list parameter
MAX_VALUE = 200  # characters of one value
MAX_Q = 200
MAX_WORDS = 10
MAX_CURSOR = 300
DEFAULT_LIMIT = 50
MAX_LIMIT = 200

OPEN = tuple(s.value for s in Status if s in OPEN_STATUSES)
CLOSED = (Status.COMPLETED.value, Status.CANCELLED.value)
ALL = tuple(s.value for s in Status)
STATUS_GROUPS: Mapping[str, tuple[str, ...]] = {"open": OPEN, "closed": CLOSED, "all": ALL}
UNASSIGNED = "none"

# sort name -> the column it orders by, and whether descending. ``priority``: the council's
# order (most urgent first), then due time.
SORTS: Mapping[str, tuple[str, bool]] = {
    "due": ("due_at", False),
    "-due": ("due_at", True),
    "created": ("created_at", False),
    "-created": ("created_at", True),
    "updated": ("updated_at", False),
    "-updated": ("updated_at", True),
    "priority": ("priority", False),
}
SORT_WORDS: Mapping[str, str] = {
    "due": "Due soonest first",
    "-due": "Due latest first",
    "created": "Oldest first",
    "-created": "Newest first",
    "updated": "Least recently changed first",
    "-updated": "Most recently changed first",
    "priority": "Most urgent first",
}
DEFAULT_SORT = "due"

_SOURCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
LIST_PARAMS = ("status", "priority", "type", "ward", "team", "source", "officer")
SINGLE_PARAMS = (
    "created_from",
    "created_to",
    "due_from",
    "due_to",
    "closed_from",
    "closed_to",
    "overdue",
    "q",
    "sort",
    "after",
    "limit",
)
PARAMS = LIST_PARAMS + SINGLE_PARAMS


@dataclass(frozen=True)
class Problem:
    param: str
    message: str


@dataclass(frozen=True)
class Cursor:
    """Where the next page starts: after the row with this sort key and id."""

    sort: str
    key: tuple[int | str, ...]  # the sort key's values (ISO datetimes, a priority rank)
    id: int

    def encode(self) -> str:
        raw = json.dumps([self.sort, list(self.key), self.id], separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


@dataclass(frozen=True)
class TaskFilter:
    statuses: tuple[str, ...] = OPEN
    priorities: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    wards: tuple[str, ...] = ()
    teams: tuple[str, ...] = ()
    officers: tuple[str, ...] = ()  # person ids; UNASSIGNED for tasks nobody holds
    sources: tuple[str, ...] = ()
    created_from: date | None = None
    created_to: date | None = None
    due_from: date | None = None
    due_to: date | None = None
    closed_from: date | None = None
    closed_to: date | None = None
    overdue: bool = False
    q: str = ""
    reference_id: int | None = None  # q was a task reference
    words: tuple[str, ...] = ()  # q's words, lower-cased, otherwise
    sort: str = DEFAULT_SORT
    after: Cursor | None = None
    limit: int = DEFAULT_LIMIT
    # The status values as given (``open``, ``closed``...), to show the form as it was.
    status_given: tuple[str, ...] = field(default=(), compare=False)

    def query_pairs(self, *, with_after: bool = False) -> list[tuple[str, str]]:
        """The filter as query parameters again (for links: sort, next page, the map)."""
        pairs: list[tuple[str, str]] = []
        if self.status_given:
            pairs += [("status", s) for s in self.status_given]
        for name, values in (
            ("priority", self.priorities),
            ("type", self.types),
            ("ward", self.wards),
            ("team", self.teams),
            ("officer", self.officers),
            ("source", self.sources),
        ):
            pairs += [(name, v) for v in values]
        for name in ("created_from", "created_to", "due_from", "due_to"):
            value = getattr(self, name)
            if value is not None:
                pairs.append((name, value.isoformat()))
        for name in ("closed_from", "closed_to"):
            value = getattr(self, name)
            if value is not None:
                pairs.append((name, value.isoformat()))
        if self.overdue:
            pairs.append(("overdue", "1"))
        if self.q:
            pairs.append(("q", self.q))
        if self.sort != DEFAULT_SORT:
            pairs.append(("sort", self.sort))
        if self.limit != DEFAULT_LIMIT:
            pairs.append(("limit", str(self.limit)))
        if with_after and self.after is not None:
            pairs.append(("after", self.after.encode()))
        return pairs


def day_start(day: date, tz: tzinfo) -> datetime:
    """Midnight at the start of ``day`` in the council's time zone, in UTC."""
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def day_bounds(
    start: date | None, end: date | None, tz: tzinfo
) -> tuple[datetime | None, datetime | None]:
    """[from, to] in days as a half-open UTC range: ``to`` inclusive, so < the next midnight."""
    return (
        day_start(start, tz) if start is not None else None,
        day_start(end + timedelta(days=1), tz) if end is not None else None,
    )


def like_pattern(word: str) -> str:
    """``%word%`` for LIKE ... ESCAPE '\\', with the word's own %, _ and \\ taken literally."""
    escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _values(raw: list[str]) -> list[str]:
    """Repeated and comma-separated values, blanks dropped, order kept, no repeats."""
    out: list[str] = []
    for value in raw:
        for part in value.split(","):
            part = part.strip()
            if part and part not in out:
                out.append(part)
    return out


def _printable(value: str) -> bool:
    return not any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in value)


def _date(name: str, value: str, problems: list[Problem]) -> date | None:
    if not _DATE.fullmatch(value):
        problems.append(Problem(name, "must be a date written YYYY-MM-DD"))
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        problems.append(Problem(name, "is not a date in the calendar"))
        return None
    if not 2000 <= day.year <= 2999:
        problems.append(Problem(name, "must be a date between the years 2000 and 2999"))
        return None
    return day


def _cursor(value: str, sort: str, problems: list[Problem]) -> Cursor | None:
    bad = Problem("after", "is not a page this list gave: go back to the first page")
    if len(value) > MAX_CURSOR:
        problems.append(bad)
        return None
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        data = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError):
        problems.append(bad)
        return None
    if (
        not isinstance(data, list)
        or len(data) != 3
        or not isinstance(data[0], str)
        or not isinstance(data[1], list)
        or isinstance(data[2], bool)
        or not isinstance(data[2], int)
        or not 0 <= data[2] < 2**63
    ):
        problems.append(bad)
        return None
    if data[0] != sort:
        problems.append(
            Problem("after", "belongs to another sort order: go back to the first page")
        )
        return None
    key = data[1]
    expected = 2 if sort == "priority" else 1
    if len(key) != expected:
        problems.append(bad)
        return None
    if sort == "priority" and (
        isinstance(key[0], bool) or not isinstance(key[0], int) or not 0 <= key[0] < 1000
    ):
        problems.append(bad)
        return None
    stamp = key[-1]
    if not isinstance(stamp, str) or len(stamp) > 40:
        problems.append(bad)
        return None
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        problems.append(bad)
        return None
    if moment.tzinfo is None:
        problems.append(bad)
        return None
    return Cursor(sort, tuple(key), data[2])


def cursor_after(sort: str, rank: int | None, moment: datetime, task_id: int) -> Cursor:
    """The cursor for the page after a row (its sort key and id)."""
    stamp = moment.astimezone(UTC).isoformat()
    key: tuple[int | str, ...] = (
        (rank if rank is not None else 0, stamp) if sort == "priority" else (stamp,)
    )
    return Cursor(sort, key, task_id)


def parse_filter(pairs: Iterable[tuple[str, str]], council: Council) -> TaskFilter | list[Problem]:
    """The filter the query parameters ask for, or every problem with them at once."""
    problems: list[Problem] = []
    given: dict[str, list[str]] = {}
    count = 0
    for name, value in pairs:
        count += 1
        if count > MAX_PAIRS:
            return [Problem("query", f"has more than {MAX_PAIRS} parameters")]
        if name not in PARAMS:
            continue
        given.setdefault(name, []).append(value)

    for name, values in given.items():
        for value in values:
            limit = MAX_CURSOR if name == "after" else MAX_VALUE
            if len(value) > limit:
                problems.append(Problem(name, f"is longer than {limit} characters"))
                break
            if not _printable(value):
                problems.append(Problem(name, "contains control characters"))
                break
    if problems:
        return problems

    lists: dict[str, list[str]] = {}
    for name in LIST_PARAMS:
        values = _values(given.get(name, []))
        if len(values) > MAX_VALUES:
            problems.append(Problem(name, f"has more than {MAX_VALUES} values"))
            values = []
        lists[name] = values
    single: dict[str, str] = {}
    for name in SINGLE_PARAMS:
        values = [v for v in given.get(name, []) if v.strip()]
        if len(values) > 1:
            problems.append(Problem(name, "is given more than once"))
        elif values:
            single[name] = values[0].strip()

    # Status: groups and single statuses.
    statuses: list[str] = []
    for value in lists["status"]:
        key = value.lower()
        if key in STATUS_GROUPS:
            statuses += [s for s in STATUS_GROUPS[key] if s not in statuses]
        elif key in ALL:
            if key not in statuses:
                statuses.append(key)
        else:
            problems.append(
                Problem(
                    "status",
                    f"{value!r} is not a status (open, closed, all, or one of {', '.join(ALL)})",
                )
            )
    known = {
        "priority": set(council.priority_names),
        "type": {t.code for t in council.file.task_types},
        "ward": {w.name for w in council.wards},
        "team": {t.code for t in council.file.teams},
        "officer": {p.id for p in council.file.people} | {UNASSIGNED},
    }
    words_for = {
        "priority": "priority",
        "type": "task type",
        "ward": "ward",
        "team": "team",
        "officer": "person (or none, for unassigned)",
    }
    for name, names in known.items():
        for value in lists[name]:
            if value not in names:
                problems.append(
                    Problem(name, f"{value!r} is not a {words_for[name]} of this council")
                )
    for value in lists["source"]:
        if not _SOURCE.fullmatch(value):
            problems.append(Problem("source", f"{value!r} is not a source name"))

    dates: dict[str, date | None] = {}
    for name in ("created", "due", "closed"):
        start = (
            _date(f"{name}_from", single[f"{name}_from"], problems)
            if f"{name}_from" in single
            else None
        )
        end = (
            _date(f"{name}_to", single[f"{name}_to"], problems) if f"{name}_to" in single else None
        )
        if start is not None and end is not None and end < start:
            problems.append(Problem(f"{name}_to", f"is before {name}_from"))
        dates[f"{name}_from"], dates[f"{name}_to"] = start, end

    overdue = False
    if "overdue" in single:
        flag = single["overdue"].lower()
        if flag in _TRUE:
            overdue = True
        elif flag not in _FALSE:
            problems.append(Problem("overdue", "must be 1 (only overdue tasks) or 0"))

    q = single.get("q", "")
    reference_id: int | None = None
    words: tuple[str, ...] = ()
    if len(q) > MAX_Q:
        problems.append(Problem("q", f"is longer than {MAX_Q} characters"))
    elif q:
        prefix = council.info.reference_prefix
        looks_like_reference = q.startswith("#") or q.upper().startswith(prefix)
        reference_id = parse_reference(q, prefix) if looks_like_reference else None
        if reference_id is None:
            split = q.lower().split()
            if len(split) > MAX_WORDS:
                problems.append(Problem("q", f"has more than {MAX_WORDS} words"))
            words = tuple(dict.fromkeys(split))[:MAX_WORDS]

    sort = single.get("sort", DEFAULT_SORT)
    if sort not in SORTS:
        problems.append(Problem("sort", f"must be one of {', '.join(SORTS)}"))
        sort = DEFAULT_SORT

    limit = DEFAULT_LIMIT
    if "limit" in single:
        text = single["limit"]
        if (
            not (text.isascii() and text.isdigit() and len(text) <= 4)
            or not 1 <= int(text) <= MAX_LIMIT
        ):
            problems.append(Problem("limit", f"must be a whole number from 1 to {MAX_LIMIT}"))
        else:
            limit = int(text)

    after = _cursor(single["after"], sort, problems) if "after" in single else None

    if problems:
        return problems
    return TaskFilter(
        statuses=tuple(statuses) if lists["status"] else OPEN,
        priorities=tuple(lists["priority"]),
        types=tuple(lists["type"]),
        wards=tuple(lists["ward"]),
        teams=tuple(lists["team"]),
        officers=tuple(lists["officer"]),
        sources=tuple(lists["source"]),
        overdue=overdue,
        q=q,
        reference_id=reference_id,
        words=words,
        sort=sort,
        after=after,
        limit=limit,
        status_given=tuple(lists["status"]),
        **dates,
    )
