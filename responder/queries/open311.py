"""Reads for the Open311 server (``responder/intake/open311``).

The updates window is the hot one (FixMyStreet asks every few minutes for the last two
hours): it walks ``task_events`` by its index on ``at`` first, joins each event's task to
the reports *of that source* (``reports.task_id`` is indexed), and stops at a limit, so
its cost follows the events in the window, not the size of the history.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from responder.domain.open311 import CITIZEN_UPDATE, PUBLIC_ACTIONS, UpdateRow
from responder.store.schema import photos, reports, task_events, tasks

_ACTIONS = sorted(PUBLIC_ACTIONS | {CITIZEN_UPDATE})
OFFICER_PHOTO_PATH = "/api/photos/"


_WINDOW_EVENTS = select(
    task_events.c.id,
    task_events.c.task_id,
    task_events.c.at,
    task_events.c.action,
    task_events.c.to_status,
    task_events.c.note,
    task_events.c.data,
    task_events.c.actor,
).order_by(task_events.c.at, task_events.c.id)


def update_rows(
    conn: Connection, source: str, start: datetime, end: datetime, limit: int
) -> list[UpdateRow] | None:
    """Public-looking events with ``start <= at <= end`` on tasks with a report from
    ``source``, each with every report of that source on its task; None when the window
    holds more than ``limit`` such events (of any source: ask for a shorter window).

    Two indexed reads, in this order on every backend: the window's events by
    ``task_events.at``, then the reports of just those tasks by ``reports.task_id`` (the
    source is compared here, not in SQL: given ``source = ?`` SQLite's planner would walk
    the (source, external_id) index, every report the source ever sent)."""
    e = task_events
    events = conn.execute(
        _WINDOW_EVENTS.where(e.c.at >= start, e.c.at <= end, e.c.action.in_(_ACTIONS)).limit(
            limit + 1
        )
    ).all()
    if len(events) > limit:
        return None
    task_ids = sorted({event.task_id for event in events})
    by_task: dict[int, list[Any]] = {}
    for chunk in range(0, len(task_ids), 900):
        for report in conn.execute(
            select(
                reports.c.id,
                reports.c.task_id,
                reports.c.source,
                reports.c.received_at,
                reports.c.duplicate,
                reports.c.attributes,
            ).where(reports.c.task_id.in_(task_ids[chunk : chunk + 900]))
        ):
            if report.source == source:
                by_task.setdefault(report.task_id, []).append(report)
    return [
        UpdateRow(
            event_id=event.id,
            task_id=event.task_id,
            at=event.at,
            action=event.action,
            to_status=event.to_status,
            note=event.note,
            data=event.data,
            actor=event.actor,
            report_id=report.id,
            report_received_at=report.received_at,
            report_duplicate=bool(report.duplicate),
            report_attributes=report.attributes,
        )
        for event in events
        for report in by_task.get(event.task_id, ())
    ]


def officer_photos(conn: Connection, task_ids: Sequence[int]) -> dict[int, list[str]]:
    """The photos officers added to these tasks, by task: not the ones a source sent
    (fetched or uploaded, owned by ``intake:<source>``), which the resident already has."""
    if not task_ids:
        return {}
    officers = {
        (row.task_id, row.token)
        for row in conn.execute(
            select(photos.c.task_id, photos.c.token).where(
                photos.c.task_id.in_(task_ids), photos.c.person_id.not_like("intake:%")
            )
        )
    }
    found: dict[int, list[str]] = {}
    for row in conn.execute(select(tasks.c.id, tasks.c.photos).where(tasks.c.id.in_(task_ids))):
        found[row.id] = [
            url
            for url in row.photos or []
            if isinstance(url, str)
            and OFFICER_PHOTO_PATH in url
            and (row.id, url.rsplit("/", 1)[-1]) in officers
        ]
    return found


@dataclass(frozen=True)
class RequestFilter:
    ids: tuple[int, ...] | None = None
    service_codes: tuple[str, ...] | None = None
    start: datetime | None = None
    end: datetime | None = None
    statuses: tuple[str, ...] | None = None  # task statuses


_REQUEST_COLUMNS = (
    tasks.c.id,
    tasks.c.type,
    tasks.c.status,
    tasks.c.outcome,
    tasks.c.description,
    tasks.c.lat,
    tasks.c.lon,
    tasks.c.address,
    tasks.c.created_at,
    tasks.c.updated_at,
    tasks.c.due_at,
    tasks.c.photos,
)


def find_requests(conn: Connection, where: RequestFilter, limit: int) -> Sequence[Any]:
    """Tasks as service requests, newest first, at most ``limit``."""
    query = select(*_REQUEST_COLUMNS)
    if where.ids is not None:
        query = query.where(tasks.c.id.in_(where.ids))
    if where.service_codes:
        query = query.where(tasks.c.type.in_(where.service_codes))
    if where.start is not None:
        query = query.where(tasks.c.created_at >= where.start)
    if where.end is not None:
        query = query.where(tasks.c.created_at <= where.end)
    if where.statuses:
        query = query.where(tasks.c.status.in_(where.statuses))
    return conn.execute(query.order_by(tasks.c.id.desc()).limit(limit)).all()


def reported_by(conn: Connection, source: str, task_ids: Sequence[int]) -> set[int]:
    """Those of ``task_ids`` with a report from ``source``."""
    rows = conn.execute(
        select(reports.c.task_id)
        .where(reports.c.source == source, reports.c.task_id.in_(list(task_ids)))
        .distinct()
    )
    return set(rows.scalars())


def task_of_report(conn: Connection, source: str, external_id: str) -> int | None:
    """The task a report from ``source`` with ``external_id`` belongs to."""
    return conn.execute(
        select(reports.c.task_id).where(
            reports.c.source == source, reports.c.external_id == external_id
        )
    ).scalar_one_or_none()


def task_of_report_id(conn: Connection, report_id: int) -> int | None:
    """The task of the report with this id (Open311 tokens name reports)."""
    return conn.execute(
        select(reports.c.task_id).where(reports.c.id == report_id)
    ).scalar_one_or_none()


def report_for_task(conn: Connection, source: str, task_id: int) -> int | None:
    """The first report of ``source`` on the task (None: the source never reported it)."""
    return conn.execute(
        select(reports.c.id)
        .where(reports.c.task_id == task_id, reports.c.source == source)
        .order_by(reports.c.id)
        .limit(1)
    ).scalar_one_or_none()


def report_id_of(conn: Connection, source: str, external_id: str) -> int | None:
    return conn.execute(
        select(reports.c.id).where(reports.c.source == source, reports.c.external_id == external_id)
    ).scalar_one_or_none()
