"""The webhook's JSON body: pure, from what ``queries/webhooks`` read (docs/webhooks.md).

Compact and stable (the same facts give the same bytes; ASCII only, so a receiver's
signature check never trips over an encoding), and nothing personal: no reporter's
details, no description or address (residents' own words), no notes (officers' notes may
be internal). People appear only as the council file's person ids (staff and councillors).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from responder.config.model import Council
from responder.config.subscribers import event_type
from responder.queries.webhooks import WebhookFacts

# Actions whose data's from/to are the task's assignee, and those where they are priorities.
_OWNER_ACTIONS = frozenset({"assign", "accept", "reassign", "handback"})
_PRIORITY_ACTIONS = frozenset({"priority", "duplicate_linked"})


def iso(value: datetime | None) -> str | None:
    """UTC, ISO 8601 with a Z."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def webhook_body(facts: WebhookFacts, council: Council) -> bytes:
    task, event = facts.task, facts.event
    refs = [r for r in facts.reports if r.external_id is not None]
    first = next((r for r in facts.reports if not r.duplicate), None)
    body = {
        "id": str(event.id),
        "type": event_type(event.action),
        "occurred_at": iso(event.at),
        "task": {
            "id": task.id,
            "reference": task.reference,
            "type": task.type,
            "status": task.status.value,
            "priority": task.priority,
            "ward": task.ward,
            "team": task.team,
            "assignee": task.assignee,
            "due_at": iso(task.due_at),
            "created_at": iso(task.created_at),
            "closed_at": iso(task.closed_at),
            "outcome": task.outcome,
            "source": task.source,
            # The source's own id for the report that created the task: how a forms
            # package finds its case.
            "external_id": first.external_id if first is not None else None,
            # Every report behind the task that its source named (linked duplicates too).
            "reports": [{"source": r.source, "external_id": r.external_id} for r in refs],
            "report_count": task.report_count,
            "version": task.version,
        },
        "change": _change(facts, council),
    }
    return json.dumps(body, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def _change(facts: WebhookFacts, council: Council) -> dict[str, Any]:
    event, data = facts.event, facts.event.data
    change: dict[str, Any] = {
        "action": event.action,
        "from_status": event.from_status,
        "to_status": event.to_status,
        "actor": _actor(event.actor, council),
    }
    if event.action == "complete" and isinstance(data.get("outcome"), str):
        change["outcome"] = data["outcome"]
    pair = {key: data.get(key) for key in ("from", "to")}
    plain = all(value is None or isinstance(value, str) for value in pair.values())
    if plain and any(pair.values()):
        if event.action in _OWNER_ACTIONS:
            change["assignee"] = pair
        elif event.action in _PRIORITY_ACTIONS:
            change["priority"] = pair
    return change


def _actor(actor: str, council: Council) -> str | None:
    """Who did it, when that is a council person id, the system or an intake source;
    anything else (a name, an address a future writer might record) is left out."""
    if actor == "system" or actor.startswith("intake:") or council.person(actor) is not None:
        return actor
    return None
