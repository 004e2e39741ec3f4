"""HTTP intake: ``POST /api/tasks`` and ``GET /api/tasks/{id or reference}``."""

from __future__ import annotations

import hmac
import json

from aiohttp import web
from pydantic import ValidationError

from responder.commands.create import ReplayConflict, create_task
from responder.domain.reference import parse_reference
from responder.domain.routing import RoutingError
from responder.domain.visibility import COUNCIL_WIDE
from responder.intake.schema import IntakeBody, problems_of
from responder.intake.views import event_json, task_json
from responder.queries.cases import find_case
from responder.queries.tasks import task_history
from responder.web import clock_key, db_key, domain_key, error_response, intake_keys_key

MAX_BODY = 1024 * 1024


def authenticate(request: web.Request) -> str | web.Response:
    """The intake key's name, or a 401 answer. Secrets are compared in constant time."""
    keys: dict[str, str] = request.app[intake_keys_key]
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    challenge = {"WWW-Authenticate": 'Bearer realm="responder"'}
    if scheme.lower() != "bearer" or not token.strip():
        return error_response(
            401,
            "unauthorized",
            "Send 'Authorization: Bearer <intake key secret>'.",
            headers=challenge,
        )
    token_bytes = token.strip().encode()
    matched = None
    for name, secret in keys.items():  # every key is compared: no early exit to time
        if hmac.compare_digest(token_bytes, secret.encode()):
            matched = name
    if matched is None:
        return error_response(
            401, "unauthorized", "The intake key is not recognised.", headers=challenge
        )
    return matched


async def _read_json(request: web.Request) -> object | web.Response:
    if request.content_length is not None and request.content_length > MAX_BODY:
        return error_response(
            413, "request_entity_too_large", "The request body is larger than 1 MB."
        )
    # JSON only, as the README promises: a form post or text is a client that is wrong.
    # (aiohttp reports a missing Content-Type as application/octet-stream.)
    ctype = request.content_type
    if "Content-Type" not in request.headers:
        return error_response(415, "unsupported_media_type", "Send the report as application/json.")
    if ctype != "application/json" and not ctype.endswith("+json"):
        return error_response(
            415,
            "unsupported_media_type",
            "Send the report as application/json, not another content type.",
        )
    raw = await request.read()  # aiohttp enforces client_max_size: 413 past 1 MB
    return decode_json(raw)


def decode_json(raw: bytes) -> object | web.Response:
    """The JSON document in ``raw``, or a 400 answer saying where it is broken."""
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        where = (
            f" (line {exc.lineno}, column {exc.colno})"
            if isinstance(exc, json.JSONDecodeError)
            else ""
        )
        return error_response(
            400,
            "malformed_json",
            f"The body is not valid JSON{where}: {exc.args[0].split(':')[0]}.",
        )
    except (ValueError, RecursionError):
        # ValueError: an integer past Python's 4300-digit limit; RecursionError: nesting.
        return error_response(
            400,
            "malformed_json",
            "The body is not valid JSON: it is nested too deeply or has a number too long.",
        )


async def post_task(request: web.Request) -> web.Response:
    key_name = authenticate(request)
    if isinstance(key_name, web.Response):
        return key_name
    data = await _read_json(request)
    if isinstance(data, web.Response):
        return data
    if not isinstance(data, dict):
        return error_response(
            422,
            "invalid_report",
            "The body must be a JSON object.",
            [{"field": "body", "problem": "must be a JSON object"}],
        )
    try:
        body = IntakeBody.model_validate(data)
    except ValidationError as exc:
        problems = problems_of(exc)
        return _invalid(problems)
    domain = request.app[domain_key]
    report = body.to_report(key_name)
    if domain.council.task_type(report.type) is None:
        known = ", ".join(t.code for t in domain.council.file.task_types)
        return _invalid([{"field": "type", "problem": f"unknown type; known types: {known}"}])
    try:
        result = await create_task(request.app[db_key], domain, report, request.app[clock_key]())
    except RoutingError as exc:
        return _invalid([{"field": exc.field, "problem": exc.problem}])
    except ReplayConflict as exc:
        return error_response(
            409,
            "conflict",
            f"external_id {exc.external_id!r} from source {exc.source!r} was already used"
            f" for {exc.reference} with different content. Send the same content again to"
            " get that task, or use a new external_id for a new report.",
        )
    body_out = task_json(result.task)
    body_out["duplicate_of"] = result.duplicate_of
    status = 201 if result.created else 200
    headers = {"Location": f"/api/tasks/{result.task.id}"}
    return web.json_response(body_out, status=status, headers=headers)


def _invalid(problems: list[dict[str, str]]) -> web.Response:
    count = len(problems)
    message = f"The report has {count} problem{'s' if count != 1 else ''}."
    return error_response(422, "invalid_report", message, problems)


async def get_task_view(request: web.Request) -> web.Response:
    key_name = authenticate(request)
    if isinstance(key_name, web.Response):
        return key_name
    domain = request.app[domain_key]
    ident = request.match_info["ident"]
    task_id = (
        int(ident)
        if ident.isascii() and ident.isdigit() and len(ident) < 19
        else parse_reference(ident, domain.prefix)
    )
    task = None
    db = request.app[db_key]
    if task_id is not None:
        # Intake keys are the council's own systems: they see every task, through the
        # same rule every other path uses (a scoped read key would narrow it).
        task = await db.query(lambda conn: find_case(conn, domain, COUNCIL_WIDE, task_id))
    if task is None:
        return error_response(404, "not_found", f"No task {ident!r}.")
    body = task_json(task)
    body["history"] = [event_json(e) for e in await task_history(db, task.id)]
    return web.json_response(body)


def routes() -> list[web.RouteDef]:
    return [
        web.post("/api/tasks", post_task),
        web.get("/api/tasks/{ident}", get_task_view),
    ]
