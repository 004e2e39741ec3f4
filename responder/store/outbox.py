"""Writing outbox rows: idempotent by key, inside the caller's transaction.

Each row also carries what the dispatcher schedules it by (``responder/jobs/dispatcher.py``):

- ``lane``: the channel it goes out on, from its kind's prefix (``teams.*`` -> ``teams``,
  ``notify``/``notify.*`` -> ``notify``, ``fetch.*`` -> ``fetch``, ``webhook.*`` ->
  ``webhook``, anything else -> ``default``). Each lane is
  claimed and paced on its own, so a backlog in one never holds up another.
- ``deliver_by``: how urgent it is, as a deadline; within a lane the earliest goes first.
  A row about a task takes the task's due time (set from its priority: an urgent task is
  due in hours, a low one in days), read here in the same transaction; a row about no
  task (a digest) gets ``created_at`` + ``UNTIED_DEADLINE``. A caller that knows better
  passes ``deliver_by`` to ``outbox_row``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql, sqlite

from responder.store.schema import outbox, tasks

TEAMS_LANE = "teams"
NOTIFY_LANE = "notify"
FETCH_LANE = "fetch"  # photos fetched from sources' hosts: slow hosts wait apart
WEBHOOK_LANE = "webhook"  # progress posted to subscribers
DEFAULT_LANE = "default"
# The deadline of a row about no task: a day, as a high-priority task's card would have.
UNTIED_DEADLINE = timedelta(hours=24)


def lane_of(kind: str) -> str:
    """The dispatcher lane a kind of message goes out in: its channel."""
    prefix = kind.split(".", 1)[0]
    if prefix == TEAMS_LANE:
        return TEAMS_LANE
    if prefix in (NOTIFY_LANE, FETCH_LANE, WEBHOOK_LANE):
        return prefix
    return DEFAULT_LANE


def outbox_row(
    kind: str,
    key: str,
    payload: dict[str, Any],
    now: datetime,
    task_id: int | None = None,
    *,
    deliver_by: datetime | None = None,
) -> dict[str, Any]:
    """One message owed. ``deliver_by`` None: the task's due time, filled in by ``enqueue``."""
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
        "lane": lane_of(kind),
        "deliver_by": deliver_by,
    }


# Insert unless the key is there already, per dialect; built once.
_ENQUEUE = {
    name: dialect.insert(outbox).on_conflict_do_nothing(index_elements=["idempotency_key"])
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}


def _scheduled(conn: Connection, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows with ``lane`` and ``deliver_by`` set (rows made without them get them here)."""
    wanted = {
        r["task_id"] for r in rows if r.get("deliver_by") is None and r.get("task_id") is not None
    }
    due: dict[int, datetime] = {}
    if wanted:
        query = select(tasks.c.id, tasks.c.due_at).where(tasks.c.id.in_(wanted))
        due = {task_id: due_at for task_id, due_at in conn.execute(query)}
    scheduled = []
    for row in rows:
        deliver_by = row.get("deliver_by") or due.get(row.get("task_id"))  # type: ignore[arg-type]
        if deliver_by is None:
            deliver_by = row["created_at"] + UNTIED_DEADLINE
        scheduled.append(
            row | {"lane": row.get("lane") or lane_of(row["kind"]), "deliver_by": deliver_by}
        )
    return scheduled


def enqueue(
    conn: Connection, rows: list[dict[str, Any]], *, deliver_by: datetime | None = None
) -> None:
    """Insert rows; a key already present is kept as it is (a message is owed once).

    ``deliver_by``: the deadline of rows that have none, when the caller knows it (the
    task it just wrote); otherwise it is read from each row's task.
    """
    if rows:
        if deliver_by is not None:
            rows = [r if r.get("deliver_by") else r | {"deliver_by": deliver_by} for r in rows]
        conn.execute(_ENQUEUE[conn.dialect.name], _scheduled(conn, rows))
