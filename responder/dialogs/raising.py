"""Raising a task from chat: check the three answers, then the same command as intake.

Used by the form card and by the question-at-a-time text path alike, so both refuse the
same things with the same words.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from responder.commands.create import create_task
from responder.config.model import Council, Person, TaskType
from responder.domain.context import Domain
from responder.domain.geocode import GeocodeError, Geocoder
from responder.domain.records import CreateResult, NewReport
from responder.domain.routing import RoutingError
from responder.store.db import Database

MAX_DESCRIPTION = 2000
MAX_LOCATION = 300


class RaiseError(Exception):
    """A polite refusal naming the answer to fix: ``field`` is type, location or description."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def match_type(council: Council, answer: str) -> TaskType | None:
    """A task type from its code or name, forgiving case, spaces, hyphens and small typos."""
    wanted = _squash(answer)
    if not wanted:
        return None
    names: dict[str, TaskType] = {}
    for t in council.file.task_types:
        names[_squash(t.code)] = t
        names[_squash(t.name)] = t
    if wanted in names:
        return names[wanted]
    close = difflib.get_close_matches(wanted, list(names), n=1, cutoff=0.8)
    return names[close[0]] if close else None


def _squash(value: str) -> str:
    return "".join(ch for ch in value.lower() if ch.isalnum())


def _plain(answer: str | None) -> str:
    """Trimmed, without NUL characters (PostgreSQL cannot store them in text)."""
    return (answer or "").replace("\x00", "").strip()


def check_description(answer: str | None) -> str:
    text = _plain(answer)
    if not text:
        raise RaiseError("description", "Please describe the problem.")
    if len(text) > MAX_DESCRIPTION:
        raise RaiseError(
            "description", f"Please keep the description under {MAX_DESCRIPTION} characters."
        )
    return text


def check_type(council: Council, answer: str | None) -> TaskType:
    found = match_type(council, answer or "")
    if found is None:
        raise RaiseError("type", f"I don't know the type '{(answer or '').strip()}'.")
    return found


@dataclass(frozen=True)
class Located:
    lat: float
    lon: float
    address: str | None


def check_location(geocoder: Geocoder, answer: str | None) -> Located:
    text = _plain(answer)
    if not text:
        raise RaiseError("location", "Please say where it is.")
    if len(text) > MAX_LOCATION:
        raise RaiseError("location", f"Please keep the place under {MAX_LOCATION} characters.")
    try:
        place = geocoder.locate(text)
    except GeocodeError as exc:
        raise RaiseError("location", str(exc)) from None
    return Located(place.lat, place.lon, place.address)


async def raise_task(
    db: Database,
    domain: Domain,
    geocoder: Geocoder,
    person: Person,
    answers: Mapping[str, str | None],
    key: str,
    now: datetime,
) -> CreateResult:
    """Create the task as intake would, raised by ``person``, who then follows it.

    ``key`` makes a repeat harmless: the same key again answers with the same task.
    Raises RaiseError for an answer to fix.
    """
    council = domain.council
    task_type = check_type(council, answers.get("type"))
    where = check_location(geocoder, answers.get("location"))
    description = check_description(answers.get("description"))
    report = NewReport(
        type=task_type.code,
        description=description,
        lat=where.lat,
        lon=where.lon,
        address=where.address,
        photos=(),
        source="teams",
        external_id=f"{person.id}:{key}"[:200],
        reporter=None,
        raised_by=person.role,
        raised_by_person=person.id,
        actor=person.id,
    )
    try:
        return await create_task(db, domain, report, now)
    except RoutingError as exc:
        field = "location" if exc.field in ("location", "lat", "lon") else "type"
        raise RaiseError(field, f"I can't route that: {exc.problem}.") from None
