"""Writing outbox rows: idempotent by key, inside the caller's transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite

from responder.store.schema import outbox


def outbox_row(
    kind: str, key: str, payload: dict[str, Any], now: datetime, task_id: int | None = None
) -> dict[str, Any]:
    return {
        "kind": kind,
        "idempotency_key": key,
        "task_id": task_id,
        "payload": payload,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        "updated_at": now,
    }


# Insert unless the key is there already, per dialect; built once.
_ENQUEUE = {
    name: dialect.insert(outbox).on_conflict_do_nothing(index_elements=["idempotency_key"])
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}


def enqueue(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Insert rows; a key already present is kept as it is (a message is owed once)."""
    if rows:
        conn.execute(_ENQUEUE[conn.dialect.name], rows)
