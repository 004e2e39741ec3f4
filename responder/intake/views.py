"""Tasks as the intake API shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from responder.domain.records import EventRecord, TaskRecord


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def task_json(task: TaskRecord) -> dict[str, Any]:
    return {
        "id": task.id,
        "reference": task.reference,
        "type": task.type,
        "status": task.status.value,
        "priority": task.priority,
        "ward": task.ward,
        "team": task.team,
        "assignee": task.assignee,
        "due_at": _iso(task.due_at),
        "created_at": _iso(task.created_at),
        "updated_at": _iso(task.updated_at),
        "closed_at": _iso(task.closed_at),
        "description": task.description,
        "location": {"lat": task.lat, "lon": task.lon, "address": task.address},
        "photos": list(task.photos),
        "source": task.source,
        "report_count": task.report_count,
        "outcome": task.outcome,
        "priority_reasons": list(task.priority_reasons),
        "routing_reasons": list(task.routing_reasons),
    }


def event_json(event: EventRecord) -> dict[str, Any]:
    return {
        "at": _iso(event.at),
        "actor": event.actor,
        "action": event.action,
        "from": event.from_status,
        "to": event.to_status,
        "note": event.note,
    }
