"""The append-only task history: every entry is written through here."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert

from responder.store.schema import task_events

_INSERT_EVENT = insert(task_events)


def append_event(
    conn: Connection,
    task_id: int,
    at: datetime,
    actor: str,
    action: str,
    *,
    note: str | None = None,
    data: dict[str, Any] | None = None,
    from_status: str | None = None,
    to_status: str | None = None,
) -> int:
    """One history entry: who (a person id, 'system', 'notify', 'intake:<key>'), when, what.

    Returns its id (a webhook's event id)."""
    done = conn.execute(
        _INSERT_EVENT,
        {
            "task_id": task_id,
            "at": at,
            "actor": actor,
            "action": action,
            "note": note,
            "data": data,
            "from_status": from_status,
            "to_status": to_status,
        },
    )
    key = done.inserted_primary_key
    assert key is not None  # an INSERT of one row always has its key
    return int(key[0])
