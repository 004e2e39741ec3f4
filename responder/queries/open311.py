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


def update_rows(
    conn: Connection, source: str, start: datetime, end: datetime, limit: int
) -> list[UpdateRow] | None:
    """Public-looking events with ``start <= at <= end`` on tasks with a report from
    ``source``, once for each such report on its task; None when there are more than
    ``limit`` (ask for a shorter window).

    One statement that walks ``task_events`` by its index on ``at`` and joins each event's
    task to its reports by ``reports.task_id``. The source is compared as ``source || ''``
    on purpose: given ``source = ?`` SQLite's planner (without table statistics) would start
    from the (source, external_id) index, every report the source ever sent, which took
    1.5 s a window over a million tasks; the expression keeps it on the time index, and
    PostgreSQL plans it the same way (bench.open311: 4 ms a two-hour window there)."""
    e, r = task_events, reports
    rows = conn.execute(
        select(
            e.c.id,
            e.c.task_id,
            e.c.at,
            e.c.action,
            e.c.to_status,
            e.c.note,
            e.c.data,
            e.c.actor,
            r.c.id.label("report_id"),
            r.c.received_at,
            r.c.duplicate,
            r.c.attributes,
        )
        .join(r, r.c.task_id == e.c.task_id)
        .where(
            e.c.at >= start,
            e.c.at <= end,
            e.c.action.in_(_ACTIONS),
            r.c.source.concat("") == source,
        )
        .order_by(e.c.at, e.c.id, r.c.id)
        .limit(limit + 1)
    ).all()
    if len(rows) > limit:
        return None
    return [
        UpdateRow(
            event_id=row.id,
            task_id=row.task_id,
            at=row.at,
            action=row.action,
            to_status=row.to_status,
            note=row.note,
            data=row.data,
            actor=row.actor,
            report_id=row.report_id,
            report_received_at=row.received_at,
            report_duplicate=bool(row.duplicate),
            report_attributes=row.attributes,
        )
        for row in rows
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
