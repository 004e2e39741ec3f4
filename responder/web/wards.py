"""``GET /wards/{ward}``: a councillor's ward at a glance, live, with the map.

The summary is the chat's ward summary (``queries.cases.ward_summary`` turned into words by
``dialogs.chat.ward_view``, the same values and words as ``cards.cases.ward_summary_card``),
refreshed by htmx every 60 seconds: the same URL asked by htmx answers only the summary's
fragment. Below it, the ward's open cases (``queries.wards``), each linking to its task
page, and the map (``static/map.js`` reads ``/map/data?ward=`` and the ward's boundary).

Who may see it: the ward's councillors, and staff whose teams cover the ward
(``Scope.ward_allowed``); staff's counts and list hold only their teams' work there
(``queries.scope.in_ward``). Anyone else, and any ward that does not exist, get the one
``not_found`` answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

from aiohttp import web

from responder.cards.cases import (
    NOTHING_OPEN,
    ward_more_overdue,
    ward_overdue_heading,
    ward_restricted,
    ward_title,
    ward_types,
)
from responder.dialogs.chat import case_row, ward_view
from responder.queries import cases
from responder.queries.wards import ward_open_cases
from responder.web import clock_key, db_key, domain_key
from responder.web.access import require_viewer
from responder.web.render import not_found, page

if TYPE_CHECKING:
    from responder.web.routes import WebContext

REFRESH_SECONDS = 60
MAX_WARD = 200


def setup(app: web.Application, ctx: WebContext) -> None:
    app.router.add_get("/wards/{ward}", ward_page)


async def ward_page(request: web.Request) -> web.StreamResponse:
    viewer = require_viewer(request)
    domain = request.app[domain_key]
    council = domain.council
    asked = request.match_info["ward"]
    ward = next((w.name for w in council.wards if w.name == asked), None)
    if len(asked) > MAX_WARD or ward is None or not viewer.scope.ward_allowed(council, ward):
        return not_found(request)
    scope = viewer.scope
    now = request.app[clock_key]()

    def read(conn):
        summary = cases.ward_summary(conn, domain, scope, ward, now)
        listed = ward_open_cases(conn, domain, scope, ward)
        return summary, listed

    summary, listed = await request.app[db_key].query(read)
    view = ward_view(domain, scope, summary, now)
    path = "/wards/" + quote(ward, safe="")
    map_cfg = council.file.map
    context = {
        "ward": ward,
        "ward_path": path,
        "view": view,
        "title": ward_title(view),
        "restricted": ward_restricted(view),
        "overdue_heading": ward_overdue_heading(view),
        "more_overdue": ward_more_overdue(view),
        "types": ward_types(view),
        "nothing_open": NOTHING_OPEN,
        "cases": [case_row(domain, task, now) for task in listed.cases],
        "cases_total": listed.total,
        "tasks_link": "/tasks?" + "ward=" + quote(ward, safe=""),
        "map": {
            "src": "/map/data?ward=" + quote(ward, safe=""),
            "wards": "/map/wards.geojson?ward=" + quote(ward, safe=""),
            "tiles": "/tiles/{z}/{x}/{y}.png",
            "attribution": map_cfg.attribution,
            "min_zoom": map_cfg.min_zoom,
            "max_zoom": map_cfg.max_zoom,
        },
        "refresh": REFRESH_SECONDS,
        "updated": f"{now.astimezone(council.tz):%H:%M}",
    }
    return page(request, "wards/page.html", context, fragment="wards/_summary.html")
