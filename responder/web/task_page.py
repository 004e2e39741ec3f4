"""``/tasks/{reference}``: one task, as the signed-in person may see it, and what they may
do to it from there.

Who sees what (``domain.visibility``, through ``queries.cases.find_case``):

- The team's officers and managers, and the assignee (``Scope.sees_internals``) see what
  the task card shows (``bot.views.task_view``, the same view) and the rest: the full
  history, photos, the reports linked to the task (when, source, external id: never a
  reporter's contact details), Notify's delivery states and residents' ratings.
- A councillor who sees the task as a case (their ward, or one they follow) sees the public
  case view (``dialogs.chat``'s, as on the case card) and may follow or unfollow it.
- Everyone else, an unknown reference or one that is not a reference at all: the one 404
  (``render.not_found``), the same words, so references cannot be walked.

Changes, each a form (CSRF token, and the task ``version`` the page showed):

- ``POST /tasks/{reference}/act`` with ``action`` = ``accept``, ``start``, ``update``,
  ``complete``, ``handback``, ``assign``, ``reassign``, ``priority`` or ``cancel`` (and
  its inputs: ``note``, ``reason``, ``officer``, ``priority``, ``outcome``) goes through
  ``commands.act.act`` exactly as a card click does (so every copy of the card is updated in
  place), with ``via="web"`` in the history. ``assign`` is the lifecycle's REASSIGN of a
  task nobody has (as the card's "Assign" button).
- ``POST /tasks/{reference}/follow`` with ``follow`` = ``on`` or ``off``.

Answers: without JavaScript, POST/redirect/GET to ``/tasks/{reference}?done=<verb>`` (the
page then says what was done; nothing personal in the URL); with htmx, the task panel as it
is now. A form from an older version of the task applies nothing: 409 and the task as it is
now. A refusal is 403 with the lifecycle's sentence; a bad input 400 (no such action, a
malformed version) or 422 (too long, unknown officer or priority...), saying what is wrong;
nothing is changed by any of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web
from sqlalchemy import Connection

from responder.bot.views import Viewer as CardViewer
from responder.bot.views import task_view
from responder.cards.cases import CaseView
from responder.cards.common import due_relative, priority_label, when
from responder.cards.escape import url_safe_https
from responder.cards.task_card import (
    TaskView,
    directions_url,
    map_url,
    place_words,
    status_text,
)
from responder.commands.act import (
    NEED_NOTE,
    NEED_OFFICER,
    NEED_OUTCOME,
    NEED_PRIORITY,
    NEED_REASON,
    ActionRequest,
    act,
)
from responder.commands.follows import set_following
from responder.config.model import Council
from responder.dialogs.chat import Chat
from responder.domain.lifecycle import Action, Relation, decide, relations
from responder.domain.records import EventRecord, TaskRecord
from responder.domain.reference import format_reference, parse_reference
from responder.domain.vocabulary import (
    EVENT_WORDS,
    NOTE_MAX,
    NOTE_TOO_LONG,
    OVERDUE_WORDS,
    REASON_MAX,
    REASON_TOO_LONG,
    STATUS_WORDS,
    outcome_words,
    priority_words,
)
from responder.queries.cases import find_case, is_following, public_history
from responder.queries.task_page import Internals, internals, photo_tokens
from responder.queries.tasks import nearest_address, task_history
from responder.web import clock_key, db_key, domain_key
from responder.web.access import require_viewer
from responder.web.render import is_htmx, not_found, page
from responder.web.session import Viewer

if TYPE_CHECKING:
    from responder.web.routes import WebContext

PAGE = "task/page.html"
PANEL = "task/_panel.html"

# A reference as typed in an address: "RSP-1042" and friends; anything longer is not one.
MAX_REFERENCE = 40
# Longest value of the one-line fields (officer ids, priority names, outcome codes).
MAX_CHOICE = 64
# The public history a councillor's page lists (the card shows a handful).
MAX_PUBLIC_HISTORY = 200

STALE_PAGE = "This page was out of date; here is the task as it is now."
NOT_STAFF = "Only the team's managers and the assigned officer can change this task."
NEED_CANCEL_REASON = "Say why you are cancelling it."
NO_SUCH_ACTION = "There is no such action. Use the buttons on the task's page."
BAD_VERSION = "The form did not say which version of the task it came from. Reload the page."
BAD_FOLLOW = "Choose to follow or to stop following."
NOBODY_ON_DUTY = "Nobody else in the team is on duty to take it."

# The page's verbs and the lifecycle's actions.
VERBS: dict[str, Action] = {
    "accept": Action.ACCEPT,
    "start": Action.START,
    "update": Action.UPDATE,
    "complete": Action.COMPLETE,
    "handback": Action.HANDBACK,
    "assign": Action.REASSIGN,  # a task nobody has: the card's "Assign"
    "reassign": Action.REASSIGN,
    "priority": Action.PRIORITY,
    "cancel": Action.CANCEL,
}

# What the page says after a change (``?done=<verb>``): words only, nothing personal.
DONE_WORDS: dict[str, str] = {
    "accept": "You accepted this task.",
    "start": "You started this task.",
    "update": "Update added.",
    "complete": "Completed.",
    "handback": "Handed back.",
    "assign": "Assigned.",
    "reassign": "Reassigned.",
    "priority": "Priority changed; the due time follows.",
    "cancel": "Cancelled.",
    "follow": "You're following this case: you'll be told when its status changes.",
    "unfollow": "You've stopped following this case.",
}

_chat_key = web.AppKey("task_page_chat", Chat)
_public_url_key = web.AppKey("task_page_public_url", str)


def setup(app: web.Application, ctx: WebContext) -> None:
    # The case view is the case card's (dialogs.chat), built by the same code.
    app[_chat_key] = Chat(app[db_key], app[domain_key], app[clock_key])
    app[_public_url_key] = ctx.public_url
    app.router.add_get("/tasks/{reference}", show)
    app.router.add_post("/tasks/{reference}/act", change)
    app.router.add_post("/tasks/{reference}/follow", follow)


# -- routes ----------------------------------------------------------------------------------


def _task_id(request: web.Request) -> int | None:
    text = request.match_info.get("reference", "")
    if not text or len(text) > MAX_REFERENCE:
        return None
    prefix = request.app[domain_key].council.info.reference_prefix
    return parse_reference(text, prefix)


async def show(request: web.Request) -> web.StreamResponse:
    viewer = require_viewer(request)
    task_id = _task_id(request)
    if task_id is None:
        return not_found(request)
    done = request.query.get("done", "")
    return await _page(request, viewer, task_id, notice=DONE_WORDS.get(done))


async def change(request: web.Request) -> web.StreamResponse:
    viewer = require_viewer(request)
    task_id = _task_id(request)
    if task_id is None:
        return not_found(request)
    seen = await _read(request, viewer, task_id)
    if seen is None:
        return not_found(request)
    form = await request.post()
    verb = _field(form, "action")
    if verb is None or verb not in VERBS:
        return await _page(request, viewer, task_id, error=NO_SUCH_ACTION, status=400)
    version = _version(_field(form, "version"))
    if version is None:
        return await _page(request, viewer, task_id, error=BAD_VERSION, status=400)
    if not isinstance(seen, _Staff):
        return await _page(request, viewer, task_id, error=NOT_STAFF, status=403)
    view = seen.view
    task = view.task
    if version != task.version:
        return await _page(request, viewer, task_id, notice=STALE_PAGE, status=409)
    action = VERBS[verb]
    values = {k: _field(form, k) for k in ("note", "reason", "officer", "priority", "outcome")}
    refusal = _refusal(request.app[domain_key].council, viewer, view, action)
    if refusal is not None:
        return await _page(request, viewer, task_id, error=refusal, status=403)
    problem = _problem(view, action, values)
    if problem is not None:
        return await _page(request, viewer, task_id, error=problem, status=422, form=(verb, values))
    result = await act(
        request.app[db_key],
        request.app[domain_key],
        ActionRequest(
            task_id=task.id,
            action=action,
            person_id=viewer.id,
            expected_version=version,
            note=values["note"],
            outcome=values["outcome"],
            reason=values["reason"],
            officer=values["officer"],
            priority=values["priority"],
            via="web",
        ),
        request.app[clock_key](),
    )
    if not result.applied:
        if result.task.version != version:
            words = STALE_PAGE if not result.notice else f"{STALE_PAGE} {result.notice}"
            return await _page(request, viewer, task_id, notice=words, status=409)
        return await _page(
            request, viewer, task_id, error=result.notice, status=422, form=(verb, values)
        )
    return await _done(request, viewer, task_id, verb, result.notice)


async def follow(request: web.Request) -> web.StreamResponse:
    viewer = require_viewer(request)
    task_id = _task_id(request)
    if task_id is None:
        return not_found(request)
    form = await request.post()
    on = {"on": True, "off": False}.get(_field(form, "follow") or "")
    if on is None:
        if await _read(request, viewer, task_id) is None:
            return not_found(request)
        return await _page(request, viewer, task_id, error=BAD_FOLLOW, status=400)
    app = request.app
    changed = await set_following(
        app[db_key], app[domain_key], viewer.scope, task_id, on, app[clock_key]()
    )
    if changed is None:
        return not_found(request)
    return await _done(request, viewer, task_id, "follow" if on else "unfollow")


async def _done(
    request: web.Request, viewer: Viewer, task_id: int, verb: str, notice: str | None = None
) -> web.StreamResponse:
    """htmx: the panel as it is now; otherwise POST/redirect/GET, the notice by its verb."""
    if is_htmx(request):
        return await _page(request, viewer, task_id, notice=notice or DONE_WORDS[verb])
    reference = format_reference(request.app[domain_key].council.info.reference_prefix, task_id)
    raise web.HTTPSeeOther(f"/tasks/{reference}?done={verb}")


def _field(form: Mapping[str, Any], name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) else None


def _version(text: str | None) -> int | None:
    if text is None or not text.isascii() or not text.isdigit() or len(text) > 18:
        return None
    return int(text)


def _refusal(council: Council, viewer: Viewer, view: TaskView, action: Action) -> str | None:
    """Why this person may not do ``action`` now (the lifecycle's sentence), or None."""
    if action in view.actions:
        return None
    task = view.task
    manager = frozenset({Relation.TEAM_MANAGER})
    if (
        action is Action.REASSIGN
        and _is_manager(council, viewer, task)
        and decide(task.status, action, manager).ok
    ):
        return NOBODY_ON_DUTY  # allowed, but the card's view had nobody to offer
    team = council.team(task.team)
    queue_task = team is not None and team.routing == "queue"
    rel = relations(viewer.id, council, task.team, task.assignee)
    reason = decide(task.status, action, rel, queue_task=queue_task).reason
    return reason or f"You can't do that to this task now ({action.value})."


def _is_manager(council: Council, viewer: Viewer, task: TaskRecord) -> bool:
    team = council.team(task.team)
    return team is not None and viewer.id in team.managers


def _problem(view: TaskView, action: Action, values: Mapping[str, str | None]) -> str | None:
    """What is wrong with the form's inputs for ``action``, or None (act checks again)."""
    note = (values["note"] or "").strip()
    reason = (values["reason"] or "").strip()
    if len(note) > NOTE_MAX:
        return NOTE_TOO_LONG
    if len(reason) > REASON_MAX:
        return REASON_TOO_LONG
    if action is Action.UPDATE and not note:
        return NEED_NOTE
    if action is Action.HANDBACK and not reason:
        return NEED_REASON
    if action is Action.CANCEL and not reason:
        return NEED_CANCEL_REASON
    if action is Action.REASSIGN:
        officer = values["officer"] or ""
        if len(officer) > MAX_CHOICE or officer not in dict(view.reassign_choices):
            return NEED_OFFICER
    if action is Action.PRIORITY:
        priority = values["priority"] or ""
        if len(priority) > MAX_CHOICE or priority not in dict(view.priority_choices):
            return NEED_PRIORITY
    if action is Action.COMPLETE and view.outcomes:
        outcome = values["outcome"] or ""
        if len(outcome) > MAX_CHOICE or outcome not in dict(view.outcomes):
            return NEED_OUTCOME
    return None


# -- reading ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Staff:
    view: TaskView
    more: Internals


@dataclass(frozen=True)
class _Case:
    view: CaseView
    tokens: tuple[str, ...]


async def _read(request: web.Request, viewer: Viewer, task_id: int) -> _Staff | _Case | None:
    """The task as this person may see it, or None (missing or not theirs: the same)."""
    app = request.app
    domain = app[domain_key]
    now = app[clock_key]()
    chat = app[_chat_key]

    def read(conn: Connection) -> _Staff | _Case | None:
        task = find_case(conn, domain, viewer.scope, task_id)
        if task is None:
            return None
        if viewer.scope.sees_internals(task.team, task.assignee):
            view = task_view(conn, domain, task, CardViewer(person_id=viewer.id), now)
            assert view is not None  # the task was just read
            return _Staff(view, internals(conn, task.id))
        outcomes = domain.council.outcomes_for(task.type)
        history = public_history(conn, task.id, MAX_PUBLIC_HISTORY, outcomes)
        near = None if (task.address or "").strip() else nearest_address(conn, task.lat, task.lon)
        following = is_following(conn, viewer.id, task.id)
        case = chat._case_view(task, following, history, now, None, near)
        return _Case(case, photo_tokens(conn, task.id))

    return await app[db_key].query(read)


async def _page(
    request: web.Request,
    viewer: Viewer,
    task_id: int,
    *,
    notice: str | None = None,
    error: str | None = None,
    status: int = 200,
    form: tuple[str, Mapping[str, str | None]] | None = None,
) -> web.StreamResponse:
    seen = await _read(request, viewer, task_id)
    if seen is None:
        return not_found(request)
    app = request.app
    council = app[domain_key].council
    now = app[clock_key]()
    context: dict[str, Any] = {
        "notice": notice,
        "error": error,
        "form_verb": form[0] if form else None,
        "form_values": dict(form[1]) if form else {},
        "note_max": NOTE_MAX,
        "reason_max": REASON_MAX,
    }
    if isinstance(seen, _Staff):
        events = await task_history(app[db_key], task_id)
        context |= _staff_context(council, viewer, seen, events, now, app[_public_url_key])
    else:
        context |= _case_context(seen, app[_public_url_key])
    return page(request, PAGE, context, status=status, fragment=PANEL)


# -- what the templates show -----------------------------------------------------------------


def _photos(
    urls: Sequence[str], tokens: Sequence[str], subject: str, public_url: str
) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """(images served here, links to photos elsewhere): officers' photos are shown from
    ``/api/photos/{token}`` (this site, as the page's CSP asks); a report's photo links to
    another site are links, opened there."""
    ours = {f"{public_url}/api/photos/{t}" for t in tokens}
    n = len(tokens)
    images = [
        {"src": f"/api/photos/{t}", "alt": f"Photo {i} of {n}: {subject}", "n": str(i)}
        for i, t in enumerate(tokens, 1)
    ]
    others = [u for u in (url_safe_https(url) for url in urls if url not in ours) if u]
    links = [
        {"href": u, "text": f"Photo {i} linked from the report"} for i, u in enumerate(others, 1)
    ]
    return images, links


def _name(council: Council, person_id: str | None) -> str | None:
    if person_id is None:
        return None
    person = council.person(person_id)
    return person.name if person else person_id


def _actor(council: Council, actor: str) -> str:
    if actor == "system":
        return "Responder"
    if actor.startswith("intake:"):
        return f"Intake ({actor.removeprefix('intake:')})"
    return _name(council, actor) or actor


def _details(council: Council, event: EventRecord, outcomes: Any) -> list[str]:
    """What the event's data says, in words: chosen keys only (never the data as it is)."""
    data = event.data if isinstance(event.data, dict) else {}
    words: list[str] = []
    if event.action == "priority":
        before, after = data.get("from"), data.get("to")
        if isinstance(before, str) and isinstance(after, str):
            words.append(f"{priority_words(before)} → {priority_words(after)}")
    elif event.action in ("assign", "reassign", "handback", "accept"):
        before, after = data.get("from"), data.get("to")
        if isinstance(before, str) and before and event.action != "accept":
            words.append(f"from {_name(council, before)}")
        if isinstance(after, str):
            words.append(f"to {_name(council, after)}")
    if event.action == "complete" and isinstance(data.get("outcome"), str):
        words.append(f"outcome: {outcome_words(outcomes, data['outcome'], 'officer')}")
    if event.action in ("notify", "notify_status"):
        for key in ("event", "channel", "status"):
            if isinstance(data.get(key), str):
                words.append(f"{key}: {data[key]}")
    if data.get("via") == "web":
        words.append("from the web page")
    return words


def _staff_context(
    council: Council,
    viewer: Viewer,
    seen: _Staff,
    events: Sequence[EventRecord],
    now: datetime,
    public_url: str,
) -> dict[str, Any]:
    view, more = seen.view, seen.more
    task = view.task
    tz = council.tz
    place = place_words(task.address, task.lat, task.lon, view.near)
    outcomes = council.outcomes_for(task.type)
    due = when(view.due_local, now)
    if view.overdue:
        due_words = f"{OVERDUE_WORDS}: {due_relative(view.due_local, now)} · was due {due}"
    elif view.is_open:
        due_words = f"Due {due} · {due_relative(view.due_local, now)}"
    elif task.closed_at is not None:
        due_words = f"Closed {when(task.closed_at.astimezone(tz), now)}"
    else:
        due_words = ""
    raised_by = _name(council, task.raised_by_person) if task.raised_by_person else None
    images, links = _photos(
        task.photos, more.photo_tokens, f"{view.type_name} at {place}", public_url
    )
    actions = {a.value for a in view.actions}
    # A note: the managers and the assignee, and where the lifecycle says no, its sentence.
    note_refusal = None
    rel = relations(viewer.id, council, task.team, task.assignee)
    if Action.UPDATE not in view.actions and rel & {Relation.TEAM_MANAGER, Relation.ASSIGNEE}:
        note_refusal = decide(task.status, Action.UPDATE, rel).reason
    history = [
        {
            "at": when(e.at.astimezone(tz), now),
            "iso": e.at.astimezone(tz).isoformat(timespec="minutes"),
            "who": _actor(council, e.actor),
            "what": EVENT_WORDS.get(e.action, e.action.replace("_", " ").capitalize()),
            "from_to": _from_to(e),
            "note": e.note,
            "details": _details(council, e, outcomes),
        }
        for e in events
    ]
    return {
        "staff": True,
        "reference": task.reference,
        "task": task,
        "type_name": view.type_name,
        "status_words": status_text(view),
        "priority_words": priority_label(task.priority, view.priority_rank, view.priority_count),
        "priority_reasons": task.priority_reasons,
        "overdue": view.overdue,
        "due_words": due_words,
        "due_label": "Due" if view.is_open else "Closed",
        "place": place,
        "directions_url": directions_url(task.lat, task.lon),
        "map_url": map_url(task.lat, task.lon),
        "team_name": view.team_name,
        "officer_name": view.assignee_name,
        "raised_words": _raised(task, raised_by),
        "reported": when(task.created_at.astimezone(tz), now),
        "images": images,
        "links": links,
        "actions": actions,
        "note_refusal": note_refusal,
        "reassign_choices": view.reassign_choices,
        "assign_verb": "assign" if task.assignee is None else "reassign",
        "priority_choices": view.priority_choices,
        "outcomes": view.outcomes,
        "history": history,
        "reports": [
            {
                "at": when(r.received_at.astimezone(tz), now),
                "source": r.source,
                "external_id": r.external_id,
                "kind": "Reported again" if r.duplicate else "First report",
            }
            for r in more.reports
        ],
        "deliveries": [
            {
                "at": when(d.at.astimezone(tz), now),
                "event": d.event.replace("_", " "),
                "channel": "Text message" if d.channel == "sms" else d.channel.capitalize(),
                "status": d.status.replace("-", " "),
            }
            for d in more.deliveries
        ],
        "ratings": [
            {"at": when(r.at.astimezone(tz), now), "rating": r.rating, "comment": r.comment}
            for r in more.ratings
        ],
    }


def _from_to(event: EventRecord) -> str:
    before, after = event.from_status, event.to_status
    if not before and not after:
        return ""
    if before == after or not before:
        return STATUS_WORDS.get(after or "", after or "")
    return f"{STATUS_WORDS.get(before, before)} → {STATUS_WORDS.get(after or '', after or '')}"


def _raised(task: TaskRecord, person: str | None) -> str:
    who = f" by {person}" if person else (f" by a {task.raised_by}" if task.raised_by else "")
    return f"{task.source}{who}"


def _case_context(seen: _Case, public_url: str) -> dict[str, Any]:
    view = seen.view
    images, links = _photos(
        view.photos, seen.tokens, f"{view.type_name} at {view.place}", public_url
    )
    return {
        "staff": False,
        "reference": view.reference,
        "case": view,
        "type_name": view.type_name,
        "overdue": view.overdue,
        "map_url": map_url(view.lat, view.lon),
        "images": images,
        "links": links,
    }


__all__ = ["setup"]
