"""Plain values the rest of the code sees for tasks and their history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from responder.domain.lifecycle import Status


@dataclass(frozen=True)
class ReporterContact:
    name: str | None
    email: str | None
    phone: str | None
    updates: tuple[str, ...]  # channels the reporter asked for: "email", "sms"


@dataclass(frozen=True)
class NewReport:
    """A validated report, from intake or from a person in chat."""

    type: str
    description: str
    lat: float
    lon: float
    address: str | None
    photos: tuple[str, ...]
    source: str
    external_id: str | None
    reporter: ReporterContact | None
    raised_by: str = "resident"
    raised_by_person: str | None = None
    # Who handed it to us, for the audit trail: 'intake:<key name>' or a person id.
    actor: str = "system"
    # What makes a resend the same report (a hash, no personal data): a source +
    # external_id seen before with other content is a conflict, not the old task.
    content_hash: str | None = None
    # What the source said beyond the report (Open311 attribute[...], a form's extra
    # answers), as text; never contact details. Kept on the report row.
    attributes: tuple[tuple[str, str], ...] = ()
    # Photo links to fetch through the outbox (the source's photo_hosts decide), unlike
    # ``photos``, which are shown as they are.
    fetch_photos: tuple[str, ...] = ()


@dataclass(frozen=True)
class TaskRecord:
    id: int
    reference: str
    type: str
    description: str
    lat: float
    lon: float
    address: str | None
    ward: str
    team: str
    assignee: str | None
    status: Status
    priority: str
    due_at: datetime
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    source: str
    raised_by: str
    raised_by_person: str | None
    photos: tuple[str, ...]
    priority_reasons: tuple[str, ...]
    routing_reasons: tuple[str, ...]
    report_count: int
    outcome: str | None
    version: int

    @classmethod
    def from_row(cls, row: Any, prefix: str) -> TaskRecord:
        from responder.domain.reference import format_reference

        m = row._mapping
        return cls(
            id=m["id"],
            reference=format_reference(prefix, m["id"]),
            type=m["type"],
            description=m["description"],
            lat=m["lat"],
            lon=m["lon"],
            address=m["address"],
            ward=m["ward"],
            team=m["team"],
            assignee=m["assignee"],
            status=Status(m["status"]),
            priority=m["priority"],
            due_at=m["due_at"],
            created_at=m["created_at"],
            updated_at=m["updated_at"],
            closed_at=m["closed_at"],
            source=m["source"],
            raised_by=m["raised_by"],
            raised_by_person=m["raised_by_person"],
            photos=tuple(m["photos"] or ()),
            priority_reasons=tuple(m["priority_reasons"] or ()),
            routing_reasons=tuple(m["routing_reasons"] or ()),
            report_count=m["report_count"],
            outcome=m["outcome"],
            version=m["version"],
        )


@dataclass(frozen=True)
class EventRecord:
    at: datetime
    actor: str
    action: str
    from_status: str | None
    to_status: str | None
    note: str | None
    data: dict[str, Any] | None


@dataclass(frozen=True)
class CreateResult:
    task: TaskRecord
    created: bool  # False: the same source + external_id was seen before, or a duplicate
    duplicate_of: int | None = None  # set when this report was linked to an open task
