"""Open311 GeoReport v2 at ``/open311/v2/``, as FixMyStreet's client speaks it.

- ``services.{xml,json}``, ``services/{code}.{xml,json}``: the council's task types (their
  codes are the service codes), groups, keywords, the council's extra questions and the
  attributes FixMyStreet fills in itself (``automated: server_set``).
- ``requests.{xml,json}`` POST (``api_key``): a report → a task (``commands.create``);
  ``attribute[fixmystreet_id]`` is its external id, so a resend answers the same
  ``service_request_id`` (the task reference), whatever it says.
- ``requests.{xml,json}`` GET, ``requests/{id}.{xml,json}``, ``tokens/{token}.{xml,json}``:
  public fields to anyone; the description too with a valid ``api_key``.
- ``servicerequestupdates.{xml,json}`` GET (``api_key``): the window's updates for that
  source's reports (``domain.open311``); POST: a resident's update
  (``commands.citizen_updates``).

Errors are ``<errors><error><code/><description/></error></errors>`` (a JSON list with
``.json``), with the HTTP status as the code and the field named in the description.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

from aiohttp import web
from multidict import MultiDict

from responder.commands.citizen_updates import CitizenUpdate, record_citizen_update
from responder.commands.create import ReplayConflict, create_task
from responder.commands.source_photos import add_source_photo
from responder.config.model import Council
from responder.config.open311 import EXTENDED_STATUSES, SERVER_SET_ATTRIBUTES
from responder.domain.context import Domain
from responder.domain.open311 import (
    DEFAULT_WINDOW,
    MAX_REQUESTS,
    MAX_UPDATES,
    MAX_WINDOW,
    STATUS_WORDS,
    Update,
    extended_status,
    open_or_closed,
    parse_w3c,
    updates_for,
    w3c,
)
from responder.domain.photos import NewPhoto
from responder.domain.reference import format_reference, parse_reference
from responder.domain.routing import RoutingError
from responder.intake.open311 import reading
from responder.intake.open311.wire import FORMATS, Group, Open311Error, answer, error_answer
from responder.queries.open311 import (
    RequestFilter,
    find_requests,
    officer_photos,
    report_for_task,
    reported_by,
    task_of_report,
    update_rows,
)
from responder.web import clock_key, db_key, domain_key

PREFIX = "/open311/v2"
# Where uploaded pictures are served ({public_url}/api/photos/...), on each request.
PUBLIC_URL = web.RequestKey("open311_public_url", str)
_Handler = Callable[[web.Request, str], Awaitable[web.Response]]


def _endpoint(handler: _Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The format from the path's suffix; every Open311Error as an ``<errors>`` answer."""

    async def run(request: web.Request) -> web.Response:
        fmt = request.match_info.get("fmt", "xml").lower()
        if fmt not in FORMATS:
            return error_answer("xml", Open311Error(404, "format: use .xml or .json"))
        try:
            return await handler(request, fmt)
        except Open311Error as exc:
            return error_answer(fmt, exc)

    return run


# -- services ----------------------------------------------------------------------------


def _service(council: Council, code: str) -> dict[str, Any]:
    task_type = council.task_type(code)
    assert task_type is not None
    extra = council.file.open311.services.get(code)
    service = council.service(task_type.service)
    groups = (extra.group if extra and extra.group else None) or [
        service.name if service else task_type.service
    ]
    return {
        "service_code": code,
        "service_name": task_type.name,
        "description": (extra.description if extra else None) or task_type.name,
        "metadata": True,
        "type": "realtime",
        "keywords": ",".join(extra.keywords) if extra else "",
        "group": groups[0],  # GeoReport's one group; FixMyStreet reads them all from groups
        "groups": Group("group", groups),
    }


async def services(request: web.Request, fmt: str) -> web.Response:
    reading.identify(request, request.query, key_required=False)
    council = request.app[domain_key].council
    body = [_service(council, t.code) for t in council.file.task_types]
    return answer(fmt, "services", "service", body)


async def service_definition(request: web.Request, fmt: str) -> web.Response:
    reading.identify(request, request.query, key_required=False)
    council = request.app[domain_key].council
    code = request.match_info["code"]
    if council.task_type(code) is None:
        raise Open311Error(404, f"service_code: unknown service {reading.clip(code)!r}")
    extra = council.file.open311.services.get(code)
    attributes: list[dict[str, Any]] = []
    for order, question in enumerate(extra.attributes if extra else [], start=1):
        attributes.append(
            {
                "variable": True,
                "code": question.code,
                "datatype": question.datatype,
                "required": question.required,
                "datatype_description": question.datatype_description or "",
                "order": order,
                "description": question.description,
                "values": Group(
                    "value", [{"key": k, "name": v} for k, v in question.values.items()]
                )
                if question.values
                else None,
            }
        )
    for name, words in SERVER_SET_ATTRIBUTES:
        attributes.append(
            {
                "variable": False,
                "code": name,
                "datatype": "string",
                "required": False,
                "datatype_description": "",
                "order": len(attributes) + 1,
                "description": words,
                "automated": "server_set",
            }
        )
    body = {"service_code": code, "attributes": Group("attribute", attributes)}
    return answer(fmt, "service_definition", None, body)


# -- requests ----------------------------------------------------------------------------


def _request_view(domain: Domain, row: Any, with_description: bool) -> dict[str, Any]:
    council = domain.council
    task_type = council.task_type(row.type)
    status = extended_status(council.file.open311.statuses, row.status, row.outcome)
    view: dict[str, Any] = {
        "service_request_id": format_reference(domain.prefix, row.id),
        "status": open_or_closed(row.status),
        "status_notes": STATUS_WORDS[status],
        "service_name": task_type.name if task_type else row.type,
        "service_code": row.type,
        "description": row.description if with_description else None,
        "agency_responsible": council.info.name,
        "requested_datetime": w3c(row.created_at, council.tz),
        "updated_datetime": w3c(row.updated_at, council.tz),
        "expected_datetime": w3c(row.due_at, council.tz),
        "address": row.address or "",
        "lat": row.lat,
        "long": row.lon,
    }
    if with_description:
        photos = [p for p in row.photos or [] if isinstance(p, str)]
        view["media_url"] = photos[0] if photos else None
    return view


def _with_own(
    conn: Any, caller: reading.Caller, rows: Sequence[Any]
) -> tuple[Sequence[Any], set[int]]:
    """The rows, and those of them the caller's source reported (it may read their text)."""
    if caller.source is None or not rows:
        return rows, set()
    return rows, reported_by(conn, caller.source, [row.id for row in rows])


def _comma_list(value: str | None, field: str, limit: int) -> list[str] | None:
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    if len(items) > limit:
        raise Open311Error(400, f"{field}: at most {limit:,} values")
    return items


def _date(fields: Any, name: str) -> datetime | None:
    raw = fields.get(name)
    if raw is None or raw == "":
        return None
    at = parse_w3c(raw) if len(raw) <= 40 else None
    if at is None:
        raise Open311Error(
            400, f"{name}: not a W3C datetime with a time zone, e.g. 2026-11-23T09:00:00Z"
        )
    return at


async def get_requests(request: web.Request, fmt: str) -> web.Response:
    caller = reading.identify(request, request.query, key_required=False)
    domain = request.app[domain_key]
    query = request.query
    ids = _comma_list(query.get("service_request_id"), "service_request_id", MAX_REQUESTS)
    where = RequestFilter()
    if ids is not None:
        task_ids = []
        for ident in ids:
            task_id = parse_reference(ident, domain.prefix)
            if task_id is None:
                raise Open311Error(
                    400, f"service_request_id: {reading.clip(ident)!r} is not a request id"
                )
            task_ids.append(task_id)
        where = RequestFilter(ids=tuple(task_ids))
    else:
        codes = _comma_list(query.get("service_code"), "service_code", 100)
        for code in codes or ():
            if domain.council.task_type(code) is None:
                raise Open311Error(400, f"service_code: unknown service {reading.clip(code)!r}")
        start, end = _date(query, "start_date"), _date(query, "end_date")
        if start and end and start > end:
            raise Open311Error(400, "start_date: after end_date")
        statuses = None
        wanted = _comma_list(query.get("status"), "status", 2)
        if wanted:
            statuses = []
            for word in wanted:
                if word.lower() == "open":
                    statuses += ["unassigned", "assigned", "accepted", "in_progress"]
                elif word.lower() == "closed":
                    statuses += ["completed", "cancelled"]
                else:
                    raise Open311Error(400, "status: open or closed")
        where = RequestFilter(
            service_codes=tuple(codes) if codes else None,
            start=start,
            end=end,
            statuses=tuple(statuses) if statuses else None,
        )
    rows, own = await request.app[db_key].query(
        lambda conn: _with_own(conn, caller, find_requests(conn, where, MAX_REQUESTS))
    )
    body = [_request_view(domain, row, row.id in own) for row in rows]
    return answer(fmt, "service_requests", "request", body)


async def get_request(request: web.Request, fmt: str) -> web.Response:
    caller = reading.identify(request, request.query, key_required=False)
    domain = request.app[domain_key]
    ident = request.match_info["id"]
    task_id = parse_reference(ident, domain.prefix)
    rows: Sequence[Any] = []
    own: set[int] = set()
    if task_id is not None:
        where = RequestFilter(ids=(task_id,))
        rows, own = await request.app[db_key].query(
            lambda conn: _with_own(conn, caller, find_requests(conn, where, 1))
        )
    if not rows:
        raise Open311Error(404, f"service_request_id: no request {reading.clip(ident)!r}")
    body = [_request_view(domain, rows[0], rows[0].id in own)]
    return answer(fmt, "service_requests", "request", body)


async def post_request(request: web.Request, fmt: str) -> web.Response:
    posted = await reading.read_fields(request)
    fields = posted.fields
    caller = reading.identify(request, fields, key_required=True)
    assert caller.source is not None
    domain = request.app[domain_key]
    report = reading.new_report(domain.council, caller.source, fields)
    task_id, status = await _task_for(request, report)
    await _keep_uploads(request, task_id, report.source, posted.photos)
    return _created(domain, fmt, task_id, report.external_id, status)


async def _task_for(request: web.Request, report: Any) -> tuple[int, int]:
    """The task the report made or joined, and the answer's status (201: a new report)."""
    domain, db = request.app[domain_key], request.app[db_key]

    async def first_answer() -> int | None:
        # A resend (FixMyStreet retries until it hears an id): the task it made, whatever
        # this copy says, so FixMyStreet never files the same report twice. Looked up only
        # when create_task could not answer it itself: its unique key already turns the same
        # report again into the task it made (one query less on every new report).
        if report.external_id is None:
            return None
        external_id = report.external_id
        return await db.query(lambda conn: task_of_report(conn, report.source, external_id))

    try:
        result = await create_task(db, domain, report, request.app[clock_key]())
    except RoutingError as exc:
        found = await first_answer()  # e.g. the council's wards changed since the first
        if found is not None:
            return found, 200
        field = {"location": "lat/long", "type": "service_code"}.get(exc.field, exc.field)
        raise Open311Error(422, f"{field}: {exc.problem}") from None
    except ReplayConflict:
        # Sent again with other content (FixMyStreet's report was edited): the first answer.
        found = await first_answer()
        assert found is not None
        return found, 200
    # 201 for a new report, a new task or linked to one already open (a duplicate).
    return result.task.id, 201 if result.created or result.duplicate_of is not None else 200


async def _keep_uploads(
    request: web.Request, task_id: int, source: str, uploaded: Sequence[NewPhoto]
) -> None:
    """Pictures uploaded with a report or update, added to the task like a fetched photo.

    Each is keyed by the task and its bytes, so a resend (FixMyStreet's, after a crash
    between the task's commit and this) adds each picture once."""
    for photo in uploaded:
        digest = hashlib.sha256(photo.data).hexdigest()[:32]
        key = f"upload:{source}:{task_id}:{digest}"
        await add_source_photo(
            request.app[db_key],
            request.app[domain_key],
            task_id,
            source,
            key,
            photo,
            request[PUBLIC_URL],
            request.app[clock_key](),
        )


def _created(
    domain: Domain, fmt: str, task_id: int, token: str | None, status: int
) -> web.Response:
    body = [
        {
            "service_request_id": format_reference(domain.prefix, task_id),
            "token": token,
            "service_notice": "",
        }
    ]
    return answer(fmt, "service_requests", "request", body, status=status)


_TOKEN = re.compile(r"[A-Za-z0-9_.:-]{1,200}")


async def get_token(request: web.Request, fmt: str) -> web.Response:
    """A token is the source's own id for the report (``attribute[fixmystreet_id]``)."""
    caller = reading.identify(request, request.query, key_required=False)
    council = request.app[domain_key].council
    token = request.match_info["token"]
    if not _TOKEN.fullmatch(token):  # never sent to the database (NUL, odd bytes, length)
        raise Open311Error(404, f"token: no request for token {reading.clip(token)!r}")
    sources = [caller.source] if caller.source else _open311_sources(council, request.query)
    db = request.app[db_key]

    def find(conn: Any) -> int | None:
        for source in sources:
            task_id = task_of_report(conn, source, token)
            if task_id is not None:
                return task_id
        return None

    found = await db.query(find)
    if found is not None:
        reference = format_reference(request.app[domain_key].prefix, found)
        body = [{"service_request_id": reference, "token": token}]
        return answer(fmt, "service_requests", "request", body)
    raise Open311Error(404, f"token: no request for token {reading.clip(token)!r}")


def _open311_sources(council: Council, query: Any) -> list[str]:
    jurisdiction = query.get("jurisdiction_id")
    return [
        name
        for name, s in council.file.sources.items()
        if s.open311 is not None
        and (not jurisdiction or s.open311.jurisdiction_id in (None, jurisdiction))
    ]


# -- updates -----------------------------------------------------------------------------


def _update_view(update: Update, council: Council) -> dict[str, Any]:
    return {
        "update_id": update.update_id,
        "service_request_id": update.service_request_id,
        "fixmystreet_id": update.fixmystreet_id,
        "status": update.status,
        "updated_datetime": w3c(update.updated_datetime, council.tz),
        "description": update.description,
        "media_url": list(update.media_urls) or None,
        "external_status_code": update.external_status_code,
    }


async def get_updates(request: web.Request, fmt: str) -> web.Response:
    caller = reading.identify(request, request.query, key_required=True)
    source = caller.source
    assert source is not None
    domain = request.app[domain_key]
    start, end = _date(request.query, "start_date"), _date(request.query, "end_date")
    if (start is None) != (end is None):
        missing = "end_date" if end is None else "start_date"
        raise Open311Error(400, f"{missing}: send start_date and end_date together")
    if start is None or end is None:
        end = request.app[clock_key]()
        start = end - DEFAULT_WINDOW
    if start > end:
        raise Open311Error(400, "start_date: after end_date")
    if end - start > MAX_WINDOW:
        raise Open311Error(400, "start_date/end_date: the window may span at most 7 days")
    event_limit = MAX_UPDATES * 5
    statuses = domain.council.file.open311.statuses

    def read(conn: Any) -> tuple[list[Any] | None, dict[int, list[str]]]:
        rows = update_rows(conn, source, start, end, event_limit)
        completed = sorted({r.task_id for r in rows or () if r.action == "complete"})
        return rows, officer_photos(conn, completed)

    rows, photos = await request.app[db_key].query(read)
    if rows is None:
        raise Open311Error(
            400, "start_date/end_date: too many changes in this window; ask for a shorter one"
        )
    found = updates_for(
        rows, source, statuses, lambda task_id: format_reference(domain.prefix, task_id), photos
    )
    if len(found) > MAX_UPDATES:
        raise Open311Error(
            400,
            f"start_date/end_date: more than {MAX_UPDATES:,} updates in this window; "
            "ask for a shorter one",
        )
    body = [_update_view(u, domain.council) for u in found]
    return answer(fmt, "service_request_updates", "request_update", body)


_UPDATE_ID_MAX = 100


async def post_update(request: web.Request, fmt: str) -> web.Response:
    posted = await reading.read_fields(request)
    fields: MultiDict[str] = posted.fields
    caller = reading.identify(request, fields, key_required=True)
    source = caller.source
    assert source is not None
    domain = request.app[domain_key]
    ident = (fields.get("service_request_id") or "").strip()
    if not ident:
        raise Open311Error(400, "service_request_id: required")
    task_id = parse_reference(ident, domain.prefix)
    update_id = (fields.get("update_id") or "").strip()
    if not update_id:
        raise Open311Error(400, "update_id: required")
    if len(update_id) > _UPDATE_ID_MAX:
        raise Open311Error(400, f"update_id: longer than {_UPDATE_ID_MAX} characters")
    status = (fields.get("status") or "").strip().upper() or None
    if status is not None and status not in EXTENDED_STATUSES:
        raise Open311Error(400, f"status: not one of {', '.join(EXTENDED_STATUSES)}")
    _date(fields, "updated_datetime")  # checked, not trusted: the history says when we heard
    description = (fields.get("description") or "").strip()
    if len(description) > reading.MAX_DESCRIPTION:
        raise Open311Error(400, f"description: longer than {reading.MAX_DESCRIPTION:,} characters")
    urls = reading.media_urls(fields)
    if not description and not urls and not posted.photos:
        raise Open311Error(400, "description: required (or a media_url or a photo)")
    db = request.app[db_key]
    # Only a request the source itself sent: it may not comment on other people's reports.
    known = None
    if task_id is not None:
        known = await db.query(lambda conn: report_for_task(conn, source, task_id))
    if task_id is None or known is None:
        raise Open311Error(
            404, f"service_request_id: no request {reading.clip(ident)!r} from this source"
        )
    result = await record_citizen_update(
        db,
        domain.council,
        CitizenUpdate(task_id, source, update_id, description, urls, status),
        request.app[clock_key](),
    )
    await _keep_uploads(request, task_id, source, posted.photos)
    body = [{"update_id": str(result.event_id)}]
    return answer(
        fmt,
        "service_request_updates",
        "request_update",
        body,
        status=201 if result.created else 200,
    )


def routes(public_url: str = "http://localhost:3978") -> list[web.RouteDef]:
    """The endpoints; ``public_url`` is where uploaded pictures are served from (the app's)."""
    fmt = "{fmt:[A-Za-z0-9]+}"

    def endpoint(handler: _Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
        run = _endpoint(handler)

        async def with_url(request: web.Request) -> web.Response:
            request[PUBLIC_URL] = public_url.rstrip("/")  # this request's own storage
            return await run(request)

        return with_url

    return [
        web.get(f"{PREFIX}/services.{fmt}", endpoint(services)),
        web.get(f"{PREFIX}/services/{{code:[^/]+}}.{fmt}", endpoint(service_definition)),
        web.get(f"{PREFIX}/requests.{fmt}", endpoint(get_requests)),
        web.post(f"{PREFIX}/requests.{fmt}", endpoint(post_request)),
        web.get(f"{PREFIX}/requests/{{id:[^/]+}}.{fmt}", endpoint(get_request)),
        web.get(f"{PREFIX}/tokens/{{token:[^/]+}}.{fmt}", endpoint(get_token)),
        web.get(f"{PREFIX}/servicerequestupdates.{fmt}", endpoint(get_updates)),
        web.post(f"{PREFIX}/servicerequestupdates.{fmt}", endpoint(post_update)),
    ]
