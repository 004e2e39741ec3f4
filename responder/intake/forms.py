"""Form packages' own payloads at ``POST /api/intake/{source}`` (issue 17).

A source in the council file with ``form:`` (config/forms.py) posts here in its package's
own shape, as JSON or as a form post (``application/x-www-form-urlencoded``); its mapping
turns the payload into the JSON API's intake body, validated by the same rules
(``intake.schema``), and ``create_task`` makes the task. docs/intake-forms.md has it all.

The order of checks tells an unauthenticated caller nothing but that it is not let in:
the source (404: names are not secret), a declared body over 1 MB (413), who is calling
(401 / 403), then the body (415, 400, 422), then the replay guard (409) and the task.

Who is calling, per source (``auth``):

- ``bearer``: ``Authorization: Bearer <the source's intake key>``. Another intake key
  (the JSON API's, another source's) is recognised but refused here (403).
- ``hmac``: ``X-Responder-Timestamp: <unix seconds>`` and ``X-Responder-Signature:
  sha256=<hex HMAC-SHA256 of timestamp + "." + body, keyed by the source's intake key>``.
  The timestamp must be within 5 minutes of our clock, either way; the signature is
  compared in constant time; a signature already accepted is refused (409, see below).

A replayed signed request is answered 409, not 401: its credentials are good (the
signature is the source's), what is wrong is that the same request was accepted before,
and a 401 would send whoever reads the sender's log to rotate a key that did not leak
anywhere. Nothing is created either way.
"""

from __future__ import annotations

import hmac
import logging
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from hashlib import sha256
from urllib.parse import parse_qsl

from aiohttp import web
from pydantic import ValidationError

from responder.commands.create import ReplayConflict, create_task
from responder.commands.replays import Replayed, create_signed_task, replay_digest
from responder.config.forms import resolve
from responder.config.sources import Source
from responder.domain.records import CreateResult, NewReport
from responder.domain.routing import RoutingError
from responder.intake.api import MAX_BODY, authenticate, decode_json
from responder.intake.form_mapping import Problem, map_payload, translate
from responder.intake.schema import IntakeBody, problems_of
from responder.intake.views import task_json
from responder.web import clock_key, db_key, domain_key, error_response, intake_keys_key

log = logging.getLogger("responder.intake.forms")

TIMESTAMP_HEADER = "X-Responder-Timestamp"
SIGNATURE_HEADER = "X-Responder-Signature"
WINDOW = timedelta(minutes=5)
MAX_FORM_FIELDS = 1000
_SIGNATURE = re.compile(r"sha256=([0-9a-fA-F]{64})")
_TIMESTAMP = re.compile(r"[0-9]{1,10}")  # unix seconds, up to the year 2286


def _source(request: web.Request, name: str) -> Source | None:
    source = request.app[domain_key].council.file.sources.get(name)
    return source if source is not None and source.form is not None else None


def _unauthorized(message: str, scheme: str) -> web.Response:
    challenge = (
        'Bearer realm="responder"' if scheme == "bearer" else 'HMAC-SHA256 realm="responder"'
    )
    return error_response(401, "unauthorized", message, headers={"WWW-Authenticate": challenge})


def _bearer(request: web.Request, name: str) -> web.Response | None:
    """None when the caller holds this source's key; else the answer (401 or 403)."""
    if SIGNATURE_HEADER in request.headers and "Authorization" not in request.headers:
        return _unauthorized(
            f"Source {name!r} posts with its key as 'Authorization: Bearer <key>', not signed.",
            "bearer",
        )
    key_name = authenticate(request)
    if isinstance(key_name, web.Response):
        return key_name
    if key_name != name:
        return error_response(
            403,
            "forbidden",
            f"The intake key {key_name!r} may not post to form source {name!r}: each form"
            " source posts with its own key (RESPONDER_INTAKE_KEYS, named after the source).",
        )
    return None


def _signed(
    request: web.Request, name: str, raw: bytes, now: datetime
) -> tuple[str, datetime] | web.Response:
    """(replay digest, when it expires) for a good signature in its window; else a 401."""
    stamp = request.headers.get(TIMESTAMP_HEADER, "").strip()
    given = request.headers.get(SIGNATURE_HEADER, "").strip()
    if not stamp or not given:
        missing = " and ".join(
            h for h, v in ((TIMESTAMP_HEADER, stamp), (SIGNATURE_HEADER, given)) if not v
        )
        return _unauthorized(
            f"Source {name!r} signs its posts: send {missing} ({TIMESTAMP_HEADER}: unix"
            f" seconds; {SIGNATURE_HEADER}: sha256=<hex HMAC-SHA256 of timestamp + '.' +"
            " body>). A bearer key is not accepted for this source.",
            "hmac",
        )
    if not _TIMESTAMP.fullmatch(stamp):
        return _unauthorized(
            f"{TIMESTAMP_HEADER} must be a time in whole seconds since 1970 (unix time).", "hmac"
        )
    match = _SIGNATURE.fullmatch(given)
    if match is None:
        return _unauthorized(
            f"{SIGNATURE_HEADER} must be 'sha256=' followed by 64 hex digits.", "hmac"
        )
    secret = request.app[intake_keys_key].get(name)
    if secret is None:
        log.warning("form source %s has no key in RESPONDER_INTAKE_KEYS", name)
        return _unauthorized(f"No key is configured for source {name!r}.", "hmac")
    expected = hmac.new(secret.encode(), stamp.encode() + b"." + raw, sha256).hexdigest()
    if not hmac.compare_digest(expected, match.group(1).lower()):
        return _unauthorized(
            f"The signature does not match: sign the timestamp, a '.', and the body exactly"
            f" as sent, with HMAC-SHA256 and source {name!r}'s key.",
            "hmac",
        )
    signed_at = datetime.fromtimestamp(int(stamp), UTC)
    age = (now - signed_at).total_seconds()
    limit = int(WINDOW.total_seconds())
    if age > limit:
        return _unauthorized(
            f"The timestamp is {int(age)} seconds old; a signed post must arrive within"
            f" {limit} seconds of its {TIMESTAMP_HEADER} (sign each post when it is sent,"
            " and check the sender's clock).",
            "hmac",
        )
    if -age > limit:
        return _unauthorized(
            f"The timestamp is {int(-age)} seconds in the future; it may be at most {limit}"
            " seconds ahead of our clock (check the sender's clock).",
            "hmac",
        )
    return replay_digest(name, match.group(1)), signed_at + WINDOW


def _payload(request: web.Request, raw: bytes) -> object | web.Response:
    """The body as JSON or as a form post's fields (a flat dict; a repeated key: a list)."""
    ctype = request.content_type
    accepted = "Send the report as application/json or application/x-www-form-urlencoded"
    if "Content-Type" not in request.headers:
        return error_response(415, "unsupported_media_type", f"{accepted}.")
    if ctype == "application/json" or ctype.endswith("+json"):
        return decode_json(raw)
    if ctype != "application/x-www-form-urlencoded":
        return error_response(
            415, "unsupported_media_type", f"{accepted}, not another content type."
        )
    try:
        text = raw.decode("utf-8")
        pairs = parse_qsl(
            text,
            keep_blank_values=True,
            strict_parsing=False,
            max_num_fields=MAX_FORM_FIELDS,
        )
    except UnicodeDecodeError:
        return error_response(400, "malformed_form", "The form post is not UTF-8 text.")
    except ValueError:
        return error_response(
            400, "malformed_form", f"The form post has more than {MAX_FORM_FIELDS} fields."
        )
    fields: dict[str, object] = {}
    for key, value in pairs:
        if key in fields:
            held = fields[key]
            fields[key] = [*held, value] if isinstance(held, list) else [held, value]
        else:
            fields[key] = value
    return fields


def _invalid(problems: list[Problem]) -> web.Response:
    count = len(problems)
    message = f"The form's report has {count} problem{'s' if count != 1 else ''}."
    return error_response(422, "invalid_report", message, problems)


async def post_form(request: web.Request) -> web.Response:
    name = request.match_info["source"]
    source = _source(request, name)
    if source is None or source.form is None:
        shown = name if len(name) <= 64 else name[:64] + "…"
        return error_response(404, "not_found", f"No form source {shown!r}.")
    if request.content_length is not None and request.content_length > MAX_BODY:
        return error_response(
            413, "request_entity_too_large", "The request body is larger than 1 MB."
        )
    now = request.app[clock_key]()
    claim: tuple[str, datetime] | None = None
    if source.auth == "bearer":
        refused = _bearer(request, name)
        if refused is not None:
            return refused
        raw = await request.read()  # aiohttp enforces client_max_size: 413 past 1 MB
    else:
        raw = await request.read()
        signed = _signed(request, name, raw, now)
        if isinstance(signed, web.Response):
            return signed
        claim = signed

    payload = _payload(request, raw)
    if isinstance(payload, web.Response):
        return payload
    if not isinstance(payload, dict):
        return _invalid([{"field": "body", "problem": "must be a JSON object"}])

    domain = request.app[domain_key]
    task_types = [t.code for t in domain.council.file.task_types]
    mapped = map_payload(payload, resolve(source.form), task_types)
    if isinstance(mapped, list):
        return _invalid(mapped)
    try:
        body = IntakeBody.model_validate(mapped.body)
    except ValidationError as exc:
        return _invalid(translate(problems_of(exc), mapped))
    report = replace(
        body.to_report(name),
        photos=(),  # links to fetch (the source's photo_hosts decide), not to show as sent
        fetch_photos=tuple(body.photos),
        attributes=mapped.attributes,
    )
    try:
        result = await _create(request, report, now, claim)
    except RoutingError as exc:
        field = mapped.where.get(exc.field) or mapped.where.get(f"{exc.field}.lat")
        return _invalid(
            [{"field": field or exc.field, "problem": exc.problem, "report_field": exc.field}]
        )
    except Replayed:
        return error_response(
            409,
            "replayed",
            "This signed request was accepted before: the same signature is accepted once."
            " Sign each post afresh, with the time it is sent. Nothing was created.",
        )
    except ReplayConflict as exc:
        return error_response(
            409,
            "conflict",
            f"external_id {exc.external_id!r} from source {exc.source!r} was already used"
            f" for {exc.reference} with different content. Send the same content again to"
            " get that task, or use a new case reference for a new report.",
        )
    body_out = task_json(result.task)
    body_out["duplicate_of"] = result.duplicate_of
    status = 201 if result.created else 200
    headers = {"Location": f"/api/tasks/{result.task.id}"}
    return web.json_response(body_out, status=status, headers=headers)


async def _create(
    request: web.Request, report: NewReport, now: datetime, claim: tuple[str, datetime] | None
) -> CreateResult:
    db, domain = request.app[db_key], request.app[domain_key]
    if claim is None:
        return await create_task(db, domain, report, now)
    digest, expires_at = claim
    return await create_signed_task(db, domain, report, now, digest=digest, expires_at=expires_at)


def routes() -> list[web.RouteDef]:
    return [web.post("/api/intake/{source}", post_form)]
