"""``GET /performance``: open, overdue, created and completed (in time) by priority, team and
ward over a chosen period, with trends, the busiest types and wards, officers' loads (staff
only) and residents' ratings.

Query parameters: ``period=7|28|90`` or ``from=YYYY-MM-DD&to=YYYY-MM-DD`` (days in the
council's time zone; at most 366; the last 28 days by default), and ``team`` / ``ward`` to
narrow it to one of the viewer's own (a manager's or officer's teams and the wards they
cover; a councillor's wards and the teams working there). A wrong value is a 400 page naming
the parameter. Everything is counted over the tasks the viewer may see
(``queries.performance``); someone who has no teams and no wards gets the one
``not_found`` answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlencode

from aiohttp import web

from responder.domain.performance import PRESETS, Performance, PeriodError, parse_period
from responder.domain.visibility import Scope
from responder.queries.performance import Filters, read_performance
from responder.web import clock_key, db_key, domain_key
from responder.web.access import require_viewer
from responder.web.charts import Series, bar_chart, line_chart
from responder.web.render import error_page, not_found, page
from responder.web.session import Viewer

if TYPE_CHECKING:
    from responder.config import Council
    from responder.web.routes import WebContext

PARAMS = ("period", "from", "to", "team", "ward")
MAX_PARAM = 200


def setup(app: web.Application, ctx: WebContext) -> None:
    app.router.add_get("/performance", performance_page)


def may_see_performance(scope: Scope) -> bool:
    return scope.everything or bool(scope.teams or scope.wards)


def team_choices(council: Council, scope: Scope) -> list[tuple[str, str]]:
    """(code, name) of the teams this viewer may narrow to: their own, or (councillors)
    those working in their wards."""
    teams = [
        t
        for t in council.file.teams
        if t.code in scope.teams or any(w in scope.wards for w in t.wards) or scope.everything
    ]
    return sorted(((t.code, t.name) for t in teams), key=lambda pair: pair[1])


def ward_choices(council: Council, scope: Scope) -> list[str]:
    """The wards this viewer may narrow to: their own, or those their teams cover."""
    return [w.name for w in council.wards if scope.ward_allowed(council, w.name)]


class BadParameter(Exception):
    def __init__(self, param: str, message: str) -> None:
        super().__init__(param)
        self.param = param
        self.message = message


def _params(request: web.Request) -> dict[str, str]:
    """The page's parameters, each at most once and of a sane length; others are ignored."""
    found: dict[str, str] = {}
    for name in PARAMS:
        values = request.query.getall(name, [])
        if len(values) > 1:
            raise BadParameter(name, "give it once.")
        if values:
            if len(values[0]) > MAX_PARAM or any(ord(c) < 0x20 for c in values[0]):
                raise BadParameter(name, "that value is not one this page knows.")
            found[name] = values[0]
    return found


def _filters(params: dict[str, str], council: Council, scope: Scope) -> Filters:
    team = params.get("team") or None
    ward = params.get("ward") or None
    teams = team_choices(council, scope)
    if team is not None and team not in {code for code, _ in teams}:
        names = ", ".join(code for code, _ in teams) or "none"
        raise BadParameter("team", f"choose one of your teams ({names}).")
    wards = ward_choices(council, scope)
    if ward is not None and ward not in wards:
        raise BadParameter("ward", f"choose one of your wards ({', '.join(wards) or 'none'}).")
    return Filters(team=team, ward=ward)


async def performance_page(request: web.Request) -> web.StreamResponse:
    viewer = require_viewer(request)
    scope = viewer.scope
    if not may_see_performance(scope):
        return not_found(request)
    domain = request.app[domain_key]
    council = domain.council
    now = request.app[clock_key]()
    try:
        params = _params(request)
        period = parse_period(
            {k: v for k, v in params.items() if k in ("period", "from", "to")},
            now.astimezone(council.tz).date(),
            council.tz,
        )
        filters = _filters(params, council, scope)
    except (BadParameter, PeriodError) as exc:
        return error_page(
            request,
            400,
            "Check the address",
            f"The performance page could not use the parameter '{exc.param}': {exc.message}",
        )
    staff = viewer.role != "councillor"
    figures = await request.app[db_key].query(
        lambda conn: read_performance(
            conn, domain, scope, period, now, filters, with_officers=staff
        )
    )
    return page(request, "performance/page.html", _context(viewer, council, figures, filters))


def _context(viewer: Viewer, council: Council, figures: Performance, filters: Filters) -> dict:
    period = figures.period
    step = "day" if period.daily else "week"
    labels = [point.bucket.short_label() for point in figures.trend]
    created = tuple(point.created for point in figures.trend)
    completed = tuple(point.completed for point in figures.trend)
    in_time = [point.in_time_percent for point in figures.trend]
    span = f"{period.first:%-d %b %Y} to {period.last:%-d %b %Y}"
    volume_chart = bar_chart(
        "chart-volume",
        f"New and completed tasks per {step}",
        f"Tasks created and tasks completed each {step}, {span}. "
        f"{sum(created)} created and {sum(completed)} completed in all. "
        "The table below the chart has every number.",
        labels,
        [Series("Created", created), Series("Completed", completed)],
    )
    measured = [v for v in in_time if v is not None]
    in_time_chart = line_chart(
        "chart-in-time",
        f"Completed in time per {step}",
        f"The percentage of each {step}'s completed tasks that were completed by their due "
        f"time, {span}; no point where nothing was completed. "
        + (
            f"Between {min(measured)}% and {max(measured)}%. "
            if measured
            else "Nothing was completed. "
        )
        + "The table below the chart has every number.",
        labels,
        in_time,
        name="% completed in time",
    )
    keep = {"team": filters.team or "", "ward": filters.ward or ""}
    keep = {k: v for k, v in keep.items() if v}
    presets = [
        (n, "/performance?" + urlencode({"period": n, **keep}), period.preset == n) for n in PRESETS
    ]
    return {
        "figures": figures,
        "period": period,
        "step": step,
        "span": span,
        "volume_chart": volume_chart,
        "in_time_chart": in_time_chart,
        "presets": presets,
        "teams": team_choices(council, viewer.scope),
        "wards": ward_choices(council, viewer.scope),
        "filters": filters,
        "team_name": dict(team_choices(council, viewer.scope)).get(filters.team or "", ""),
        "now_text": f"{figures.now.astimezone(council.tz):%-d %b %Y, %H:%M}",
    }
