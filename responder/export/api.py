"""``GET /api/tasks`` (JSON, keyset pages) and ``GET /api/tasks.csv`` (streamed), for read
keys. The work list's filter (``domain/task_filter.py``) and its query
(``queries/task_list.py``), always inside the key's scope. See docs/data-out.md."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from contextlib import suppress
from datetime import datetime
from functools import partial
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from sqlalchemy import Connection

from responder.domain.task_filter import MAX_QUERY, Problem, TaskFilter, parse_filter
from responder.export.keys import ReadKey, authenticate
from responder.export.rows import BOM, CSV_HEADER, CsvRows, Names, csv_text, task_fields
from responder.queries import export as export_query
from responder.queries.export import export_batch, extras, unpaged
from responder.queries.task_list import list_tasks
from responder.web import clock_key, db_key, domain_key, error_response

public_url_key = web.AppKey("export_public_url", str)
_TRUE = {"1", "true", "yes", "on"}


def refuse(status: int, error: str, message: str, headers: dict[str, str]) -> web.Response:
    return error_response(status, error, message, headers=headers or None)


def problems_response(problems: list[Problem]) -> web.Response:
    count = len(problems)
    return error_response(
        400,
        "invalid_query",
        f"The query has {count} problem{'s' if count != 1 else ''}.",
        [{"parameter": p.param, "message": p.message} for p in problems],
    )


def read_filter(
    request: web.Request, ignore: tuple[str, ...] = ()
) -> tuple[ReadKey, TaskFilter] | web.Response:
    """The key and the filter, or the refusal (401/403, 414, 400 naming each parameter)."""
    key = authenticate(request, refuse)
    if not isinstance(key, ReadKey):
        return key  # type: ignore[return-value]
    if len(request.query_string) > MAX_QUERY:
        return error_response(
            414, "uri_too_long", f"The query string is longer than {MAX_QUERY} bytes."
        )
    pairs = [(k, v) for k, v in request.query.items() if k not in ignore]
    task_filter = parse_filter(pairs, request.app[domain_key].council)
    if isinstance(task_filter, list):
        return problems_response(task_filter)
    return key, task_filter


async def get_tasks(request: web.Request) -> web.Response:
    read = read_filter(request)
    if isinstance(read, web.Response):
        return read
    key, task_filter = read
    domain = request.app[domain_key]
    now: datetime = request.app[clock_key]()

    def query(conn):
        page = list_tasks(conn, domain, key.scope, task_filter, now)
        return page, extras(conn, (r.id for r in page.rows))

    page, more = await request.app[db_key].query(query)
    names = Names(domain)
    out = []
    for row in page.rows:
        extra = more.get(row.id)
        if extra is None:  # gone between the two reads: leave it to the next request
            continue
        merged = SimpleNamespace(
            **{f: getattr(row, f) for f in row.__dataclass_fields__},
            outcome=extra.outcome,
            accepted_at=extra.accepted_at,
            rating=extra.rating,
        )
        fields = task_fields(merged, names)
        fields["address"] = row.address
        fields["report_count"] = extra.report_count
        fields["updated_at"] = merged.updated_at.astimezone(names.tz).isoformat(timespec="seconds")
        fields["overdue"] = row.overdue
        out.append(fields)
    next_url = None
    if page.next_cursor is not None:
        pairs = [*task_filter.query_pairs(), ("after", page.next_cursor)]
        next_url = f"{request.app[public_url_key]}/api/tasks?{urlencode(pairs)}"
    return web.json_response({"tasks": out, "next": next_url})


async def get_tasks_csv(request: web.Request) -> web.StreamResponse:
    read = read_filter(request, ignore=("excel", "bom", "after", "limit"))
    if isinstance(read, web.Response):
        return read
    key, task_filter = read
    task_filter = unpaged(task_filter)
    bom = any(request.query.get(name, "").lower() in _TRUE for name in ("excel", "bom"))
    domain = request.app[domain_key]
    db = request.app[db_key]
    now: datetime = request.app[clock_key]()
    names = Names(domain)
    stamp = now.astimezone(names.tz).strftime("%Y-%m-%d-%H%M")
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="tasks-{stamp}.csv"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        }
    )
    response.enable_chunked_encoding()
    await response.prepare(request)
    await response.write((BOM if bom else b"") + csv_text([CSV_HEADER]))

    rows_csv = CsvRows(names)
    size = export_query.BATCH  # read now, so a test can make batches small

    def batch(conn: Connection, after: int) -> Sequence[Sequence[Any]]:
        return export_batch(conn, domain, key.scope, task_filter, now, after, size)

    def rendered(conn: Connection, after: int) -> tuple[int, int, bytes]:
        """One batch read and written as CSV: (its rows, the last id, the bytes)."""
        rows = batch(conn, after)
        return len(rows), rows[-1][0] if rows else after, rows_csv.csv(rows)

    async def next_batch(after: int) -> tuple[int, int, bytes]:
        if db.is_sqlite:  # the reader's own thread reads and writes the batch
            return await db.query(partial(rendered, after=after))
        # PostgreSQL reads on the event loop (asyncpg): the CSV is written in a thread.
        rows = await db.query(partial(batch, after=after))
        body = await asyncio.to_thread(rows_csv.csv, rows) if rows else b""
        return len(rows), rows[-1][0] if rows else after, body

    # Pipelined: the next batch is read and written as CSV (a database thread) while the
    # loop sends this one; one batch is held at a time besides the one being sent.
    fetching = asyncio.ensure_future(next_batch(0))
    try:
        while True:
            count, last, body = await fetching
            if not count:
                break
            more = count == size
            if more:
                fetching = asyncio.ensure_future(next_batch(last))
            await response.write(body)
            if not more:
                break
    finally:
        if not fetching.done():
            fetching.cancel()
            with suppress(asyncio.CancelledError, Exception):
                await fetching
    await response.write_eof()
    return response


def routes() -> list[web.RouteDef]:
    return [
        web.get("/api/tasks", get_tasks, allow_head=False),
        web.get("/api/tasks.csv", get_tasks_csv, allow_head=False),
    ]
