"""One task as the exports show it: the fields a manager reports on, in the council's time
zone. Never reporters' contact details, never the description (residents' free text).

CSV cells are guarded against formula injection as OWASP advises: a text cell starting
with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading ``'``, so Excel
or LibreOffice shows it as text instead of running it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, tzinfo
from typing import Any

from responder.domain.context import Domain
from responder.domain.reference import REFERENCE_OFFSET, format_reference

CSV_HEADER = (
    "reference",
    "type",
    "priority",
    "ward",
    "team",
    "officer",
    "source",
    "status",
    "outcome",
    "reported",
    "accepted",
    "completed",
    "due",
    "in_time",
    "rating",
)
BOM = "\ufeff".encode()
_FORMULA = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_FIRST = frozenset(_FORMULA)


def local_iso(moment: datetime | None, tz: tzinfo) -> str | None:
    """ISO 8601 with the council's offset (``2026-12-06T09:30:00+00:00``), or None."""
    return moment.astimezone(tz).isoformat(timespec="seconds") if moment is not None else None


def in_time(status: str, closed_at: datetime | None, due_at: datetime) -> bool | None:
    """Completed by its due time; None while open (or cancelled)."""
    if status != "completed" or closed_at is None:
        return None
    return closed_at <= due_at


def safe_cell(value: str) -> str:
    """A text cell a spreadsheet will not run as a formula (OWASP's CSV injection advice)."""
    return "'" + value if value.startswith(_FORMULA) else value


class Names:
    """Codes to the words a manager reads, from the council file (cached per export)."""

    def __init__(self, domain: Domain) -> None:
        council = domain.council
        self.prefix = domain.prefix
        self.tz = council.tz
        self.people = {p.id: p.name for p in council.file.people}
        self.teams = {t.code: t.name for t in council.file.teams}
        self.types = {t.code: t.name for t in council.file.task_types}
        self._council = council
        self.local = LocalTimes(council.tz)
        self._outcomes: dict[tuple[str, str], str] = {}

    def outcome(self, type_code: str, code: str | None) -> str | None:
        if code is None:
            return None
        key = (type_code, code)
        if key not in self._outcomes:
            words = {o.code: o.name for o in self._council.outcomes_for(type_code)}
            self._outcomes[key] = words.get(code, code)
        return self._outcomes[key]


def task_fields(row: Any, names: Names) -> dict[str, Any]:
    """A task row of ``queries.export`` (or a work-list row with its extras) as JSON."""
    tz = names.tz
    completed = row.closed_at if row.status == "completed" else None
    rating = row.rating
    return {
        "id": row.id,
        "reference": format_reference(names.prefix, row.id),
        "type": row.type,
        "type_name": names.types.get(row.type, row.type),
        "priority": row.priority,
        "ward": row.ward,
        "team": row.team,
        "team_name": names.teams.get(row.team, row.team),
        "officer": row.assignee,
        "officer_name": names.people.get(row.assignee) if row.assignee else None,
        "source": row.source,
        "status": row.status,
        "outcome": row.outcome,
        "outcome_name": names.outcome(row.type, row.outcome),
        "reported_at": local_iso(row.created_at, tz),
        "accepted_at": local_iso(row.accepted_at, tz),
        "completed_at": local_iso(completed, tz),
        "closed_at": local_iso(row.closed_at, tz),
        "due_at": local_iso(row.due_at, tz),
        "in_time": in_time(row.status, row.closed_at, row.due_at),
        "rating": round(float(rating), 2) if rating is not None else None,
    }


def utc(value: datetime | str | None) -> datetime | None:
    """A time from ``queries.export``: a ``datetime``, or SQLite's UTC text."""
    if isinstance(value, str):
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    return value


class LocalTimes:
    """UTC times written in the council's zone, ISO 8601 with its offset, to the second.

    SQLite's text (``2026-07-01 12:34:56.000000``, UTC) is rewritten by its hour: in a zone
    whose offsets are whole hours (the UK's +00:00 and +01:00) the local time differs from
    UTC in the date and hour only, and clocks change on the hour, so each UTC hour's local
    date, hour and offset are worked out once and the minutes and seconds copied. Anything
    else goes through ``datetime``."""

    def __init__(self, tz: tzinfo) -> None:
        self.tz = tz
        self._hours: dict[str, tuple[str, str] | None] = {}

    def text(self, value: datetime | str | None) -> str:
        if value is None:
            return ""
        if isinstance(value, str) and len(value) >= 19 and value[10] in " T":
            hour = value[:13]
            head = self._hours[hour] if hour in self._hours else self._hour(hour)
            if head is not None:
                return f"{head[0]}{value[13:19]}{head[1]}"
        moment = utc(value)
        assert moment is not None
        return moment.astimezone(self.tz).isoformat(timespec="seconds")

    def _hour(self, hour: str) -> tuple[str, str] | None:
        try:
            moment = datetime.fromisoformat(f"{hour[:10]}T{hour[11:13]}:00:00+00:00")
        except ValueError:
            head = None
        else:
            local = moment.astimezone(self.tz)
            offset = local.utcoffset()
            whole = offset is not None and offset.total_seconds() % 3600 == 0
            head = (local.strftime("%Y-%m-%dT%H"), local.isoformat()[-6:]) if whole else None
        self._hours[hour] = head
        return head


def csv_cells(row: Any, names: Names) -> list[str]:
    """One CSV row (written for speed: a million of these stream at tens of thousands a
    second, so no helper calls per cell but the times')."""
    local = names.local.text
    status = row.status
    closed, due = row.closed_at, row.due_at
    completed = closed if status == "completed" else None
    assignee = row.assignee
    rating = row.rating
    text = [
        f"{names.prefix}-{row.id + REFERENCE_OFFSET}",
        names.types.get(row.type, row.type),
        row.priority,
        row.ward,
        names.teams.get(row.team, row.team),
        (names.people.get(assignee) or assignee) if assignee else "",
        row.source,
        status,
        names.outcome(row.type, row.outcome) or "" if row.outcome else "",
    ]
    for i, cell in enumerate(text):
        if cell and cell[0] in _FORMULA_FIRST:
            text[i] = "'" + cell
    if completed is not None and due is not None:
        if completed.__class__ is not due.__class__:
            completed, due = utc(completed), utc(due)
        on_time = "yes" if completed <= due else "no"
    else:
        on_time = ""
    text += (
        local(row.created_at),
        local(row.accepted_at),
        local(completed),
        local(due),
        on_time,
        f"{float(rating):.1f}" if rating is not None else "",
    )
    return text


def _quoted(text: str) -> str:
    """``text`` as ``csv.writer`` writes it as one cell of a row (quoted where needed)."""
    if not text:
        return ""
    out = io.StringIO()
    csv.writer(out).writerow([text])
    return out.getvalue()[:-2]  # less the CRLF


_MEMO = 4096  # distinct values remembered per column and export


class _Cells(dict[Any, str]):
    """Values to finished CSV cells (named, guarded, quoted), each worked out once: an
    export's codes repeat (a few dozen wards, types, teams and people in a million rows).
    Holds at most ``_MEMO`` values; past that (free text) each is worked out again."""

    def __init__(self, cell: Callable[[Any], str]) -> None:
        super().__init__()
        self._cell = cell

    def __missing__(self, value: Any) -> str:
        cell = self._cell(value)
        if len(self) < _MEMO:
            self[value] = cell
        return cell


def _guarded(words: Callable[[Any], str | None]) -> Callable[[Any], str]:
    def cell(value: Any) -> str:
        text = words(value)
        return _quoted(safe_cell(text)) if text else ""

    return cell


def _same(value: Any) -> str | None:
    return value


class CsvRows:
    """Rows of ``queries.export`` to CSV text, the same bytes as ``csv_text(csv_cells(...))``
    at a fraction of the cost: every text cell comes finished from a memo (see ``_Cells``),
    SQLite's UTC text becomes the council's time by its hour (``LocalTimes``), and each line
    is one f-string rather than a list through ``csv.writer``. One per export (not shared
    between threads)."""

    def __init__(self, names: Names) -> None:
        self.names = names
        self.types = _Cells(_guarded(lambda code: names.types.get(code, code)))
        self.teams = _Cells(_guarded(lambda code: names.teams.get(code, code)))
        self.people = _Cells(_guarded(lambda pid: (names.people.get(pid) or pid) if pid else ""))
        self.plain = _Cells(_guarded(_same))  # priority, ward, source, status
        self.outcomes = _Cells(_guarded(lambda key: names.outcome(*key) if key[1] else ""))
        self.ratings = _Cells(lambda r: f"{float(r):.1f}" if r is not None else "")
        sample = f"{names.prefix}-{REFERENCE_OFFSET + 1}"
        self._plain_references = _quoted(safe_cell(sample)) == sample

    def text(self, rows: Iterable[Sequence[Any]]) -> str:
        """The CSV lines (CRLF after each) of rows of ``EXPORT_COLUMNS``, accepted, rating."""
        names = self.names
        if not self._plain_references:  # a prefix needing quotes: the plain way
            return csv_text(csv_cells(_Row(r), names) for r in rows).decode("utf-8")
        prefix = f"{names.prefix}-"
        offset = REFERENCE_OFFSET
        types, teams, people, plain = self.types, self.teams, self.people, self.plain
        outcomes, ratings = self.outcomes, self.ratings
        local = names.local
        hours = local._hours
        slow = local.text

        def when(value: Any) -> str:
            if value.__class__ is str and len(value) >= 19:
                head = hours.get(value[:13])
                if head:
                    return f"{head[0]}{value[13:19]}{head[1]}"
            return slow(value)

        lines: list[str] = []
        add = lines.append
        for (
            task_id,
            type_code,
            priority,
            ward,
            team,
            assignee,
            source,
            status,
            outcome,
            created,
            due,
            closed,
            accepted,
            rating,
        ) in rows:
            if status == "completed" and closed is not None:
                completed = when(closed)
                if due is None:
                    on_time = ""
                elif closed.__class__ is due.__class__:
                    on_time = "yes" if closed <= due else "no"
                else:
                    on_time = "yes" if utc(closed) <= utc(due) else "no"  # type: ignore[operator]
            else:
                completed = on_time = ""
            add(
                f"{prefix}{task_id + offset},{types[type_code]},{plain[priority]},"
                f"{plain[ward]},{teams[team]},{people[assignee]},{plain[source]},"
                f"{plain[status]},{outcomes[type_code, outcome] if outcome else ''},"
                f"{when(created) if created is not None else ''},"
                f"{when(accepted) if accepted is not None else ''},{completed},"
                f"{when(due) if due is not None else ''},{on_time},{ratings[rating]}\r\n"
            )
        return "".join(lines)

    def csv(self, rows: Iterable[Sequence[Any]]) -> bytes:
        return self.text(rows).encode("utf-8")


_ROW_FIELDS = (
    "id",
    "type",
    "priority",
    "ward",
    "team",
    "assignee",
    "source",
    "status",
    "outcome",
    "created_at",
    "due_at",
    "closed_at",
    "accepted_at",
    "rating",
)


class _Row:
    """A plain tuple of ``queries.export`` read by name (``csv_cells``'s way)."""

    __slots__ = _ROW_FIELDS

    def __init__(self, values: Sequence[Any]) -> None:
        for name, value in zip(_ROW_FIELDS, values, strict=True):
            setattr(self, name, value)


def csv_text(rows: Iterable[Sequence[str]]) -> bytes:
    """Rows as CSV (RFC 4180: CRLF, quotes where needed), UTF-8."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")
