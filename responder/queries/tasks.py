"""Reads of tasks and their history (writes live in ``responder/commands``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, select

from responder.domain.context import Domain
from responder.domain.geo import bbox, haversine_m
from responder.domain.lifecycle import OPEN_STATUSES
from responder.domain.records import EventRecord, TaskRecord
from responder.store.db import Database
from responder.store.schema import task_events, tasks

_LOAD_TASK = select(tasks).where(tasks.c.id == bindparam("id"))


def load_task(conn: Connection, domain: Domain, task_id: int) -> TaskRecord | None:
    """The task as it is now (whoever asks: callers decide visibility, see queries.cases)."""
    row = conn.execute(_LOAD_TASK, {"id": task_id}).first()
    return TaskRecord.from_row(row, domain.prefix) if row is not None else None


def recent_events(
    conn: Connection, task_id: int, actions: Sequence[str], limit: int
) -> Sequence[Any]:
    """The task's latest events of these ``actions``, newest first (at, action, actor,
    note, data): filtered in SQL, so system lines never push people's out of the limit."""
    return conn.execute(
        select(
            task_events.c.at,
            task_events.c.action,
            task_events.c.actor,
            task_events.c.note,
            task_events.c.data,
        )
        .where(task_events.c.task_id == task_id, task_events.c.action.in_(sorted(actions)))
        .order_by(task_events.c.at.desc(), task_events.c.id.desc())
        .limit(limit)
    ).all()


NEAR_M = 150  # how far a known address may be to stand in for a report's missing one


def nearest_address(
    conn: Connection, lat: float, lon: float, within_m: float = NEAR_M
) -> tuple[str, float] | None:
    """The nearest address (and its distance in metres) given on any report already in the
    database within ``within_m`` of the spot; None when there is none. No network look-up:
    only what residents and staff have written before."""
    min_lat, max_lat, min_lon, max_lon = bbox(lat, lon, within_m)
    rows = conn.execute(
        select(tasks.c.lat, tasks.c.lon, tasks.c.address)
        .where(
            tasks.c.lat.between(min_lat, max_lat),
            tasks.c.lon.between(min_lon, max_lon),
            tasks.c.address.is_not(None),
            tasks.c.address != "",
        )
        .limit(500)
    ).all()
    best: tuple[str, float] | None = None
    for r in rows:
        metres = haversine_m(lat, lon, r.lat, r.lon)
        if metres <= within_m and (best is None or metres < best[1]):
            best = (r.address.strip(), metres)
    return best


async def task_history(db: Database, task_id: int) -> list[EventRecord]:
    def read(conn: Connection) -> list[EventRecord]:
        rows = conn.execute(
            select(task_events)
            .where(task_events.c.task_id == task_id)
            .order_by(task_events.c.at, task_events.c.id)
        )
        return [
            EventRecord(r.at, r.actor, r.action, r.from_status, r.to_status, r.note, r.data)
            for r in rows
        ]

    return await db.query(read)


async def open_tasks_for(db: Database, domain: Domain, person_id: str) -> list[TaskRecord]:
    """A person's open tasks, most urgent due time first."""

    def read(conn: Connection) -> list[TaskRecord]:
        rows = conn.execute(
            select(tasks)
            .where(
                tasks.c.assignee == person_id, tasks.c.status.in_([s.value for s in OPEN_STATUSES])
            )
            .order_by(tasks.c.due_at, tasks.c.id)
        )
        return [TaskRecord.from_row(r, domain.prefix) for r in rows]

    return await db.query(read)
