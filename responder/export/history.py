"""``GET /api/tasks/{id}/history`` (JSON) and ``.../history.csv``: a task's full history
as a document for FOI requests and complaints. See docs/data-out.md.

What a key is shown:

- every key: the task, the public events (reported, accepted, started, updates, photos,
  done, cancelled) with who did them as a role ("officer"), when (the council's time zone),
  from, to and the note; each report's source and time, and its **retention**: whether
  contact details were given, whether they are still held, and when they were erased;
  GOV.UK Notify messages' states (no addresses: Responder's records hold none);
- keys with ``internals`` (whole-council keys from ``RESPONDER_READ_KEYS``, and council-file
  keys that say ``internals: true``): every event (assignments, hand-backs with their
  reasons, priority changes, routing, internal notes), people by name, and the Teams cards
  delivered;
- keys with ``contacts: true`` (council file only): reporters' names, emails and phone
  numbers, for as long as they are held.

A task the key may not see is the same 404 as a task that does not exist.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

from aiohttp import web

from responder.config.model import Council
from responder.domain.reference import format_reference, parse_reference
from responder.domain.vocabulary import PUBLIC_EVENT_WORDS
from responder.export.keys import ReadKey, authenticate
from responder.export.rows import csv_text, local_iso, safe_cell
from responder.queries.history_document import HistoryDocument, history_document
from responder.web import db_key, domain_key, error_response

from .api import refuse

HISTORY_HEADER = ("kind", "at", "who", "action", "from", "to", "note")


def _who(actor: str, council: Council, internals: bool) -> str:
    if actor == "system":
        return "Responder"
    if actor.startswith("intake:"):
        return f"intake ({actor.removeprefix('intake:')})"
    person = council.person(actor)
    if person is None:
        return actor if internals else "council"
    return person.name if internals else person.role


def _recipient(recipient: str, council: Council) -> str:
    kind, _, ident = recipient.partition(":")
    if kind == "person":
        person = council.person(ident)
        return person.name if person else ident
    if kind == "channel":
        team = council.team(ident)
        return f"{team.name if team else ident} channel"
    return recipient


def document_json(doc: HistoryDocument, key: ReadKey, council: Council, prefix: str) -> dict:
    tz: tzinfo = council.tz
    t: Any = doc.task
    internals = key.internals

    def iso(moment: datetime | None) -> str | None:
        return local_iso(moment, tz)

    events = [
        {
            "at": iso(e.at),
            "who": _who(e.actor, council, internals),
            "action": e.action,
            "action_words": PUBLIC_EVENT_WORDS.get(e.action),
            "from": e.from_status,
            "to": e.to_status,
            "note": e.note,
        }
        for e in doc.events
        if internals or e.action in PUBLIC_EVENT_WORDS
    ]
    reports = []
    for r in doc.reports:
        held = r.has_contact and r.erased_at is None
        entry: dict[str, Any] = {
            "received_at": iso(r.received_at),
            "source": r.source,
            "duplicate": r.duplicate,
            "contact_given": r.has_contact,
            "contact_held": held,
            "contact_erased_at": iso(r.erased_at),
        }
        if key.contacts and held:
            entry["contact"] = {"name": r.name, "email": r.email, "phone": r.phone}
        reports.append(entry)
    task_type = council.task_type(t.type)
    team = council.team(t.team)
    body: dict[str, Any] = {
        "task": {
            "id": t.id,
            "reference": format_reference(prefix, t.id),
            "type": t.type,
            "type_name": task_type.name if task_type else t.type,
            "priority": t.priority,
            "status": t.status,
            "outcome": t.outcome,
            "ward": t.ward,
            "team": t.team,
            "team_name": team.name if team else t.team,
            "address": t.address,
            "source": t.source,
            "reported_at": iso(t.created_at),
            "due_at": iso(t.due_at),
            "closed_at": iso(t.closed_at),
        },
        "time_zone": council.info.timezone,
        "internals": internals,
        "contacts": key.contacts,
        "events": events,
        "reports": reports,
        "deliveries": {
            "notify": [
                {
                    "event": m.event,
                    "channel": m.channel,
                    "status": m.status,
                    "detail": m.detail if internals else None,
                    "created_at": iso(m.created_at),
                    "updated_at": iso(m.updated_at),
                }
                for m in doc.messages
            ],
            "teams": [
                {
                    "recipient": _recipient(c.recipient, council),
                    "version": c.version,
                    "sent_at": iso(c.created_at),
                    "updated_at": iso(c.updated_at),
                }
                for c in doc.cards
            ]
            if internals
            else [],
        },
    }
    if internals:
        body["task"]["officer"] = t.assignee
        person = council.person(t.assignee) if t.assignee else None
        body["task"]["officer_name"] = person.name if person else None
        body["task"]["description"] = t.description
    return body


def document_rows(body: dict) -> list[list[str]]:
    rows: list[list[str]] = [list(HISTORY_HEADER)]
    for e in body["events"]:
        rows.append(
            [
                "event",
                e["at"] or "",
                safe_cell(e["who"]),
                e["action"],
                e["from"] or "",
                e["to"] or "",
                safe_cell(e["note"] or ""),
            ]
        )
    for i, r in enumerate(body["reports"], start=1):
        if r["contact_erased_at"]:
            note = f"contact details erased at {r['contact_erased_at']}"
        elif r["contact_held"]:
            contact = r.get("contact")
            note = "contact details held" + (
                ": " + "; ".join(v for v in contact.values() if v) if contact else ""
            )
        else:
            note = "no contact details given"
        rows.append(
            [
                "report",
                r["received_at"] or "",
                safe_cell(r["source"]),
                f"report {i}",
                "",
                "",
                safe_cell(note),
            ]
        )
    for m in body["deliveries"]["notify"]:
        rows.append(
            [
                "notify",
                m["updated_at"] or "",
                "GOV.UK Notify",
                f"{m['event']} {m['channel']}",
                "",
                m["status"],
                safe_cell(m["detail"] or ""),
            ]
        )
    for c in body["deliveries"]["teams"]:
        rows.append(
            [
                "teams_card",
                c["updated_at"] or "",
                safe_cell(c["recipient"]),
                "card",
                "",
                f"version {c['version']}",
                "",
            ]
        )
    return rows


async def _document(request: web.Request) -> tuple[ReadKey, dict] | web.Response:
    key = authenticate(request, refuse)
    if not isinstance(key, ReadKey):
        return key  # type: ignore[return-value]
    domain = request.app[domain_key]
    ident = request.match_info["ident"]
    task_id = (
        int(ident)
        if ident.isascii() and ident.isdigit() and len(ident) < 19
        else parse_reference(ident, domain.prefix)
    )
    doc = None
    if task_id is not None and task_id >= 1:
        doc = await request.app[db_key].query(
            lambda conn: history_document(conn, key.scope, task_id)
        )
    if doc is None:
        return error_response(404, "not_found", "No such task among those this key may read.")
    return key, document_json(doc, key, domain.council, domain.prefix)


async def get_history(request: web.Request) -> web.Response:
    found = await _document(request)
    if isinstance(found, web.Response):
        return found
    return web.json_response(found[1], headers={"Cache-Control": "no-store"})


async def get_history_csv(request: web.Request) -> web.Response:
    found = await _document(request)
    if isinstance(found, web.Response):
        return found
    body = found[1]
    data = csv_text(document_rows(body))
    if request.query.get("excel", request.query.get("bom", "")).lower() in ("1", "true", "yes"):
        data = "\ufeff".encode() + data
    filename = f"{body['task']['reference']}-history.csv"
    return web.Response(
        body=data,
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )


def routes() -> list[web.RouteDef]:
    return [
        web.get("/api/tasks/{ident}/history", get_history, allow_head=False),
        web.get("/api/tasks/{ident}/history.csv", get_history_csv, allow_head=False),
    ]
