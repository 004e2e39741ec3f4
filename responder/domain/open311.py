"""Open311 GeoReport v2 decisions, as FixMyStreet reads them: pure functions over plain values.

- Which extended status (mySociety's words) a task's status or outcome reads as, from the
  council file's ``open311.statuses`` over the defaults below.
- Which history events become ``servicerequestupdates`` for a source, and what each says:
  status changes (accept, start, complete, cancel), another report linked, and citizen
  updates that came from *another* source. Officers' update notes, hand-back and cancel
  reasons, reassignment and priority changes are internal and never become updates; the
  description is the public wording of the status.
- A task with several reports from the same source: the first of them follows the task;
  each later one (linked as a duplicate) hears ``DUPLICATE`` once, when it was linked.
- W3C datetimes in and out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any

from responder.config.open311 import EXTENDED_STATUSES

# Outcome codes (vocabulary.DEFAULT_OUTCOMES) and task statuses -> extended status.
DEFAULT_STATUSES: dict[str, str] = {
    "resolved": "FIXED",
    "no-action": "NO_FURTHER_ACTION",
    "referred": "NOT_COUNCILS_RESPONSIBILITY",
    "private-land": "NOT_COUNCILS_RESPONSIBILITY",
    "accepted": "ACTION_SCHEDULED",
    "in_progress": "IN_PROGRESS",
    "cancelled": "CLOSED",
}
# A completion with an outcome the file does not map: closed, without claiming it is fixed.
UNMAPPED_OUTCOME = "CLOSED"
assert set(DEFAULT_STATUSES.values()) <= set(EXTENDED_STATUSES)

# Public wording of each extended status: the update's description.
STATUS_WORDS: dict[str, str] = {
    "OPEN": "The council has this report.",
    "INVESTIGATING": "The council is looking into this report.",
    "ACTION_SCHEDULED": "The council has scheduled work on this report.",
    "IN_PROGRESS": "Work on this report has started.",
    "FIXED": "The council has dealt with this report.",
    "NO_FURTHER_ACTION": "The council looked into this report; no further action is needed.",
    "NOT_COUNCILS_RESPONSIBILITY": "This is not the council's to deal with; it has been passed on "
    "or the landowner is responsible.",
    "INTERNAL_REFERRAL": "The council has passed this report to another of its teams.",
    "DUPLICATE": "This problem had already been reported; updates follow on the first report.",
    "CLOSED": "The council has closed this report.",
    "CANCELLED": "The council has closed this report.",
    "REOPEN": "The council has reopened this report.",
}

# Events that become updates (the rest are internal, or the source's own doing).
PUBLIC_ACTIONS = frozenset({"accept", "start", "complete", "cancel", "duplicate_linked"})
CITIZEN_UPDATE = "citizen_update"

MAX_WINDOW = timedelta(days=7)
DEFAULT_WINDOW = timedelta(hours=2)  # FixMyStreet's own default when it sends no dates
MAX_UPDATES = 1000
MAX_REQUESTS = 1000

_FMS_ID = re.compile(r"[0-9]{1,18}")


def extended_status(
    statuses: Mapping[str, str], task_status: str, outcome: str | None = None
) -> str:
    """The extended Open311 status of a task in ``task_status`` (``outcome`` if completed)."""
    if task_status == "completed":
        key = outcome or ""
        return statuses.get(key) or DEFAULT_STATUSES.get(key) or UNMAPPED_OUTCOME
    if task_status in ("accepted", "in_progress", "cancelled"):
        return statuses.get(task_status) or DEFAULT_STATUSES[task_status]
    return "OPEN"


def open_or_closed(task_status: str) -> str:
    """GeoReport v2's own two statuses."""
    return "closed" if task_status in ("completed", "cancelled") else "open"


def fixmystreet_id(attributes: Mapping[str, Any] | None) -> str | None:
    """The report's FixMyStreet id, when it is one FixMyStreet accepts (digits only)."""
    value = (attributes or {}).get("fixmystreet_id")
    return value if isinstance(value, str) and _FMS_ID.fullmatch(value) else None


# -- updates ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class UpdateRow:
    """One history event in the window joined with one report of the source on its task."""

    event_id: int
    task_id: int
    at: datetime
    action: str
    to_status: str | None
    note: str | None
    data: Mapping[str, Any] | None
    actor: str
    report_id: int
    report_received_at: datetime
    report_duplicate: bool
    report_attributes: Mapping[str, Any] | None


@dataclass(frozen=True)
class Update:
    """One ``request_update`` as FixMyStreet reads it."""

    update_id: str
    service_request_id: str
    status: str
    updated_datetime: datetime
    description: str
    external_status_code: str
    fixmystreet_id: str | None = None
    media_urls: tuple[str, ...] = field(default_factory=tuple)


def citizen_source(actor: str, data: Mapping[str, Any] | None) -> str | None:
    """The source a citizen update came from."""
    source = (data or {}).get("source")
    if isinstance(source, str):
        return source
    return actor.removeprefix("intake:") if actor.startswith("intake:") else None


def updates_for(
    rows: Iterable[UpdateRow],
    source: str,
    statuses: Mapping[str, str],
    reference: Any,
    photos: Mapping[int, Sequence[str]] | None = None,
) -> list[Update]:
    """The updates ``source`` is owed for these rows (every report of the source on each
    event's task is among them), in event order. ``reference(task_id)`` names the task;
    ``photos[task_id]`` are the officers' photos on completed tasks."""
    by_event: dict[int, list[UpdateRow]] = {}
    for row in rows:
        by_event.setdefault(row.event_id, []).append(row)
    found: list[Update] = []
    for event_rows in by_event.values():
        update = _update(event_rows, source, statuses, reference, photos or {})
        if update is not None:
            found.append(update)
    found.sort(key=lambda u: (u.updated_datetime, int(u.update_id)))
    return found


def _update(
    rows: list[UpdateRow],
    source: str,
    statuses: Mapping[str, str],
    reference: Any,
    photos: Mapping[int, Sequence[str]],
) -> Update | None:
    rows = sorted(rows, key=lambda r: r.report_id)
    event, first = rows[0], rows[0]
    action = event.action
    task_status = event.to_status or ""
    status = extended_status(statuses, task_status, _outcome(event))
    target = first
    description = STATUS_WORDS[status]
    external = _outcome(event) if task_status == "completed" else task_status
    media: tuple[str, ...] = ()

    if action == "duplicate_linked":
        linked = [r for r in rows if r.report_duplicate and r.report_received_at == event.at]
        if not linked:
            return None  # another source's report joined the task
        target = linked[-1]
        if target.report_id != first.report_id:
            status, external = "DUPLICATE", "duplicate"
            description = STATUS_WORDS["DUPLICATE"]
        else:  # the source's first report on a task someone else reported
            description = f"This problem had already been reported. {description}"
    elif action == CITIZEN_UPDATE:
        if citizen_source(event.actor, event.data) == source or not (event.note or "").strip():
            return None  # its own update: not echoed back
        description = (event.note or "").strip()
    elif action in PUBLIC_ACTIONS:
        if action == "complete":
            media = tuple(photos.get(event.task_id, ()))
    else:
        return None
    if event.at < target.report_received_at:
        return None  # before the source's report was with us
    return Update(
        update_id=str(event.event_id),
        service_request_id=reference(event.task_id),
        status=status,
        updated_datetime=event.at,
        description=description,
        external_status_code=external or "open",
        fixmystreet_id=fixmystreet_id(target.report_attributes),
        media_urls=media,
    )


def _outcome(row: UpdateRow) -> str | None:
    outcome = (row.data or {}).get("outcome")
    return outcome if isinstance(outcome, str) else None


# What a resident's site says of a report when they comment: these mean "it is not done".
_NOT_DONE = frozenset({"OPEN", "REOPEN", "INVESTIGATING", "IN_PROGRESS", "ACTION_SCHEDULED"})


def still_there(task_open: bool, status: str | None) -> bool:
    """A resident's update on a closed task says the problem is still there, unless their
    site says the report is done (a thank-you on a fixed report is just a comment)."""
    return not task_open and (status is None or status in _NOT_DONE)


# -- datetimes --------------------------------------------------------------------------------

_W3C = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:?\d{2}))?"
)


def parse_w3c(text: str) -> datetime | None:
    """A W3C datetime (``2026-11-23T09:00:00Z``, ``...+01:00``, or a date: its midnight,
    UTC), in UTC; None when it is not one. A time without a zone is refused (which zone?)."""
    match = _W3C.fullmatch(text.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        if hour is None:
            return datetime(int(year), int(month), int(day), tzinfo=UTC)
        micro = int((fraction or "0")[:6].ljust(6, "0"))
        at = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second or 0), micro
        )
        # In UTC: a time the database (and Python) can hold, or None. 0001-01-01T00:00+01:00
        # is a moment in the year 0, which no datetime holds (it was a 500 once).
        return at.replace(tzinfo=_zone(zone)).astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def _zone(zone: str) -> tzinfo:
    if zone == "Z":
        return UTC
    sign = -1 if zone[0] == "-" else 1
    digits = zone[1:].replace(":", "")
    offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return timezone(sign * offset)


def w3c(at: datetime, tz: tzinfo) -> str:
    """A time as Open311 sends it: seconds, with the zone's offset (``+00:00``)."""
    return at.astimezone(tz).replace(microsecond=0).isoformat()
