"""``/tasks``: the work list. The tasks the viewer may see (their teams' for managers and
officers, their wards' and followed cases for councillors: all through their ``Scope``),
filtered by a GET form so a list is a link one can bookmark or share, a keyset page at a
time.

The filter is ``domain/task_filter.py``'s, the rows ``queries/task_list.py``'s (the map,
the task API and the exports read the same ones). A parameter the filter cannot read is a
400 page with an error summary naming it, never a list that looks filtered but is not.
htmx updates the results in place (``hx-get``, ``hx-target="#results"``,
``hx-push-url``); without JavaScript the form and links load the whole page.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from aiohttp import web

from responder.config.model import Council
from responder.domain.context import Domain
from responder.domain.lifecycle import Status
from responder.domain.task_filter import (
    CLOSED,
    LIST_PARAMS,
    MAX_QUERY,
    OPEN,
    SINGLE_PARAMS,
    SORT_WORDS,
    UNASSIGNED,
    Problem,
    TaskFilter,
    parse_filter,
)
from responder.domain.vocabulary import STATUS_WORDS, priority_words
from responder.queries.task_list import TaskRow, list_tasks
from responder.web import clock_key, db_key, domain_key
from responder.web.access import require_viewer
from responder.web.render import error_page, page
from responder.web.session import Viewer

if TYPE_CHECKING:
    from responder.web.routes import WebContext

STATUS_CHOICES: tuple[tuple[str, str], ...] = (
    ("open", "Open (not done or cancelled)"),
    ("closed", "Closed (done or cancelled)"),
    ("all", "All"),
    *((s.value, STATUS_WORDS[s.value]) for s in Status),
)


def too_long(request: web.Request) -> bool:
    return len(request.query_string.encode()) > MAX_QUERY


def read_filter(request: web.Request, council: Council) -> TaskFilter | list[Problem]:
    """The request's filter, or its problems (a query string over 4 KB is one, too)."""
    if too_long(request):
        return [Problem("query", f"is longer than {MAX_QUERY} bytes")]
    return parse_filter(request.query.items(), council)


def when(moment: datetime | None, council: Council) -> dict[str, str] | None:
    """A time as the page shows it: in the council's zone, and machine-readable."""
    if moment is None:
        return None
    local = moment.astimezone(council.tz)
    return {
        "iso": local.isoformat(timespec="minutes"),
        "text": local.strftime("%a %-d %b %Y, %H:%M"),
        "date": local.strftime("%-d %b %Y"),
    }


def row_view(row: TaskRow, council: Council) -> dict[str, Any]:
    return {
        "reference": row.reference,
        "type": row.type_name,
        "priority": row.priority,
        "priority_words": priority_words(row.priority),
        "priority_class": row.priority if row.priority in ("urgent", "high") else "",
        "status": STATUS_WORDS.get(row.status, row.status),
        "closed": row.status not in OPEN,
        "ward": row.ward,
        "team": row.team_name,
        "officer": row.assignee_name or row.assignee,
        "address": row.address,
        "due": when(row.due_at, council),
        "created": when(row.created_at, council),
        "overdue": row.overdue,
    }


def _visible_teams(viewer: Viewer, council: Council) -> list[Any]:
    if viewer.scope.everything:
        return list(council.file.teams)
    return [t for t in council.file.teams if t.code in viewer.scope.teams]


def form_options(viewer: Viewer, council: Council) -> dict[str, Any]:
    """What the form offers: the viewer's own teams and wards (and their teams' people)
    where that makes sense; everything the council file names otherwise."""
    teams = _visible_teams(viewer, council)
    wards = [w.name for w in council.wards]
    if not viewer.scope.everything:
        own = set(viewer.scope.wards) | {w for t in teams for w in t.wards}
        wards = [w for w in wards if w in own] or wards
    people = {p.id: p for p in council.file.people}
    officers: list[tuple[str, str]] = []
    for team in teams:
        for pid in (*team.officers, *team.managers):
            if pid in people and all(pid != o for o, _ in officers):
                officers.append((pid, people[pid].name))
    if viewer.person.role != "councillor" and all(viewer.id != o for o, _ in officers):
        officers.insert(0, (viewer.id, viewer.person.name))
    return {
        "statuses": STATUS_CHOICES,
        "priorities": [(p, priority_words(p)) for p in council.priority_names],
        "types": [(t.code, t.name) for t in council.file.task_types],
        "wards": [(w, w) for w in wards],
        "teams": [(t.code, t.name) for t in teams],
        "officers": [(UNASSIGNED, "Nobody yet (unassigned)"), *officers],
        "sorts": list(SORT_WORDS.items()),
    }


def form_values(request: web.Request) -> dict[str, Any]:
    """The form as the person filled it in (also when it had problems): each parameter's
    values as given, bounded, for the inputs to show again."""
    values: dict[str, list[str]] = {}
    for name, value in list(request.query.items())[:100]:
        values.setdefault(name, []).append(value[:300])
    multi = {
        name: [v.strip() for raw in values.get(name, []) for v in raw.split(",") if v.strip()]
        for name in LIST_PARAMS
    }
    single = {
        name: (values.get(name) or [""])[0]
        for name in SINGLE_PARAMS
        if name not in ("after", "limit")  # the pager's, not the form's
    }
    return {**multi, **single, "source_text": ", ".join(multi["source"])}


def page_links(task_filter: TaskFilter, base: str, next_cursor: str | None) -> dict[str, Any]:
    pairs = task_filter.query_pairs()
    first = base + ("?" + urlencode(pairs) if pairs else "")
    return {
        "next": base + "?" + urlencode([*pairs, ("after", next_cursor)]) if next_cursor else None,
        "first": first if task_filter.after is not None else None,
        "map": "/map" + ("?" + urlencode(pairs) if pairs else ""),
        "list": first,
    }


def describe(task_filter: TaskFilter) -> str:
    """The statuses shown, in words, for the table's caption."""
    statuses = task_filter.statuses
    if task_filter.overdue:
        return "Overdue tasks"
    if statuses == OPEN:
        return "Open tasks"
    if statuses == CLOSED:
        return "Closed tasks"
    if set(statuses) == {s.value for s in Status}:
        return "All tasks"
    return "Tasks: " + ", ".join(STATUS_WORDS.get(s, s).lower() for s in statuses)


def problem_context(problems: list[Problem]) -> list[dict[str, str]]:
    labels = {
        "status": "Status",
        "priority": "Priority",
        "type": "Type",
        "ward": "Ward",
        "team": "Team",
        "officer": "Officer",
        "source": "Source",
        "created_from": "Created from",
        "created_to": "Created to",
        "due_from": "Due from",
        "due_to": "Due to",
        "closed_from": "Closed from",
        "closed_to": "Closed to",
        "overdue": "Overdue only",
        "q": "Search",
        "sort": "Sort by",
        "after": "Page",
        "limit": "Tasks per page",
        "query": "The address",
    }
    return [
        {"param": p.param, "label": labels.get(p.param, p.param), "message": p.message}
        for p in problems
    ]


def address_too_long(request: web.Request, what: str) -> web.Response:
    """The 414 page for a list or map whose query string is over ``MAX_QUERY``."""
    return error_page(
        request,
        414,
        "Address too long",
        f"The address of this {what} is longer than {MAX_QUERY} bytes. Clear the filters "
        "and choose fewer.",
    )


def form_context(
    request: web.Request, viewer: Viewer, domain: Domain, action: str, htmx_target: str | None
) -> dict[str, Any]:
    """What the filter form (``tasks/_filters.html``) needs, on /tasks and on /map."""
    return {
        "prefix": domain.prefix,
        "action": action,
        "htmx_target": htmx_target,
        "options": form_options(viewer, domain.council),
        "form": form_values(request),
        "problems": [],
    }


async def tasks_page(request: web.Request) -> web.StreamResponse:
    viewer = require_viewer(request)
    domain = request.app[domain_key]
    council = domain.council
    if too_long(request):
        return address_too_long(request, "list")
    context: dict[str, Any] = {
        **form_context(request, viewer, domain, "/tasks", "#results"),
        "rows": [],
        "links": None,
        "caption": "Tasks",
        "sort_words": "",
        "first_page": True,
    }
    task_filter = read_filter(request, council)
    if isinstance(task_filter, list):
        context["problems"] = problem_context(task_filter)
        return page(request, "tasks/list.html", context, status=400, fragment="tasks/_results.html")
    now = request.app[clock_key]()
    scope = viewer.scope
    f = task_filter
    result = await request.app[db_key].query(lambda conn: list_tasks(conn, domain, scope, f, now))
    context.update(
        rows=[row_view(r, council) for r in result.rows],
        links=page_links(f, "/tasks", result.next_cursor),
        caption=describe(f),
        sort_words=SORT_WORDS[f.sort],
        first_page=f.after is None,
    )
    return page(request, "tasks/list.html", context, fragment="tasks/_results.html")


def setup(app: web.Application, ctx: WebContext) -> None:
    app.router.add_get("/tasks", tasks_page)
