"""``/map``: the work list's selection on a map, with a list of the same tasks below it
(the keyboard and screen-reader alternative), and the data the map reads.

- ``GET /map?<filters>``: the page (the filter form is the work list's).
- ``GET /map/data?<filters>``: the tasks as a GeoJSON FeatureCollection, at most
  ``MAP_CAP`` of them (``capped`` says when there were more); 400 naming the parameter for
  a filter it cannot read, 401 without a session. Every point through the viewer's Scope.
- ``GET /map/wards.geojson[?ward=]``: the ward boundaries from the council's ward file,
  simplified (with shapely) once at start-up to keep them small.

``static/map.js`` draws every element with class ``responder-map`` from its data
attributes (the ward page uses it too); see the top of that file.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from aiohttp import web
from shapely.geometry import mapping

from responder.config.model import Council
from responder.domain.task_filter import MAX_QUERY, TaskFilter
from responder.domain.vocabulary import STATUS_WORDS, priority_words
from responder.queries.task_list import MAP_CAP, MapPoint, MapPoints, list_tasks, map_points
from responder.web import clock_key, db_key, domain_key, error_response
from responder.web.access import require_viewer
from responder.web.render import page
from responder.web.session import viewer_of
from responder.web.tasks_list import (
    address_too_long,
    form_context,
    problem_context,
    read_filter,
    row_view,
    too_long,
)

if TYPE_CHECKING:
    from responder.web.routes import WebContext

# Ward boundaries are drawn at street scale: 0.0001 degrees is about 7-11 m.
SIMPLIFY_DEGREES = 0.0001
COORDINATE_DECIMALS = 5
LISTED_BELOW = 200  # rows in the list below the map; the task list has the rest
TILES_PATH = "/tiles/{z}/{x}/{y}.png"
wards_geojson_key = web.AppKey("wards_geojson", dict)


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, COORDINATE_DECIMALS)
    if isinstance(value, list | tuple):
        return [_rounded(v) for v in value]
    return value


def ward_features(council: Council) -> dict[str, dict[str, Any]]:
    """Each ward's boundary as a GeoJSON Feature, simplified and rounded."""
    features = {}
    for ward in council.wards:
        shape = ward.geometry.simplify(SIMPLIFY_DEGREES, preserve_topology=True)
        geometry = mapping(shape)
        features[ward.name] = {
            "type": "Feature",
            "properties": {"name": ward.name},
            "geometry": {
                "type": geometry["type"],
                "coordinates": _rounded(geometry["coordinates"]),
            },
        }
    return features


def feature_collection(points: MapPoints, council: Council) -> bytes:
    """The points as a GeoJSON FeatureCollection. Each feature carries only codes (its
    reference, type, priority, status, and whether it is overdue); the words for the codes
    come once, under ``words``. Up to 5,000 features make one answer, so each is written
    out directly (every string through ``json.dumps`` once per distinct value)."""
    # Every property but the reference, as one fragment per distinct (type, priority,
    # status, overdue): a few dozen of them, each quoted once, not 20,000 json.dumps calls.
    fragments: dict[tuple[str, str, str, bool], str] = {}

    def rest(p: MapPoint) -> str:
        key = (p.type, p.priority, p.status, p.overdue)
        text = fragments.get(key)
        if text is None:
            text = fragments[key] = ',"type":{},"priority":{},"status":{},"overdue":{}}}}}'.format(
                *(json.dumps(v, ensure_ascii=False) for v in key[:3]),
                "true" if p.overdue else "false",
            )
        return text

    # References are the council's prefix (A-Z, 0-9) and digits: nothing to escape.
    features = ",".join(
        f'{{"type":"Feature","geometry":{{"type":"Point","coordinates":[{float(p.lon)!r},'
        f'{float(p.lat)!r}]}},"properties":{{"reference":"{p.reference}"{rest(p)}'
        for p in points.points
    )
    words = {
        "types": {t.code: t.name for t in council.file.task_types},
        "priorities": {p: priority_words(p) for p in council.priority_names},
        "statuses": dict(STATUS_WORDS),
    }
    head = (
        '{"type":"FeatureCollection","capped":'
        + ("true" if points.capped else "false")
        + f',"cap":{MAP_CAP},"words":'
        + json.dumps(words, separators=(",", ":"), ensure_ascii=False)
        + ',"features":['
    )
    return (head + features + "]}").encode()


def map_settings(council: Council, task_filter: TaskFilter | None) -> dict[str, Any]:
    pairs = task_filter.query_pairs() if task_filter is not None else []
    cfg = council.file.map
    return {
        "src": "/map/data" + ("?" + urlencode(pairs) if pairs else ""),
        "wards": "/map/wards.geojson",
        "tiles": TILES_PATH,
        "attribution": cfg.attribution,
        "min_zoom": cfg.min_zoom,
        "max_zoom": cfg.max_zoom,
        "list": "/tasks" + ("?" + urlencode(pairs) if pairs else ""),
    }


async def map_page(request: web.Request) -> web.StreamResponse:
    viewer = require_viewer(request)
    domain = request.app[domain_key]
    council = domain.council
    if too_long(request):
        return address_too_long(request, "map")
    context: dict[str, Any] = {
        **form_context(request, viewer, domain, "/map", None),
        "rows": [],
        "more": False,
        "map": map_settings(council, None),
    }
    task_filter = read_filter(request, council)
    if isinstance(task_filter, list):
        context["problems"] = problem_context(task_filter)
        return page(request, "map/page.html", context, status=400)
    now = request.app[clock_key]()
    scope = viewer.scope
    # The list below the map: the first page of the same selection (the task list has
    # the rest), as the work list shows it.
    first = replace(task_filter, after=None, limit=LISTED_BELOW)
    listed = await request.app[db_key].query(
        lambda conn: list_tasks(conn, domain, scope, first, now)
    )
    rows = [row_view(r, council) for r in listed.rows]
    context.update(
        rows=rows,
        more=listed.next_cursor is not None,
        map=map_settings(council, task_filter),
        cap=MAP_CAP,
        listed=LISTED_BELOW,
    )
    return page(request, "map/page.html", context)


async def map_data(request: web.Request) -> web.StreamResponse:
    viewer = viewer_of(request)
    if viewer is None:
        return error_response(401, "unauthorised", "Sign in to see the map.")
    domain = request.app[domain_key]
    council = domain.council
    if too_long(request):
        return error_response(414, "uri_too_long", f"The query is longer than {MAX_QUERY} bytes.")
    task_filter = read_filter(request, council)
    if isinstance(task_filter, list):
        return error_response(
            400,
            "bad_filter",
            "These filters cannot be read: "
            + "; ".join(f"{p.param} {p.message}" for p in task_filter),
            problems=[{"field": p.param, "message": p.message} for p in task_filter],
        )
    now = request.app[clock_key]()
    scope, f = viewer.scope, task_filter
    # Rows to bytes in the database's thread: up to 5,000 features never hold up the loop.
    body = await request.app[db_key].query(
        lambda conn: feature_collection(map_points(conn, domain, scope, f, now, MAP_CAP), council)
    )
    response = web.Response(
        body=body,
        content_type="application/json",
        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
    )
    # Up to a megabyte of GeoJSON: gzip makes it about a tenth for a phone on 4G (to a
    # client that accepts it; aiohttp compresses a large body off the event loop).
    response.enable_compression()
    return response


async def wards_geojson(request: web.Request) -> web.StreamResponse:
    if viewer_of(request) is None:
        return error_response(401, "unauthorised", "Sign in to see the map.")
    features = request.app[wards_geojson_key]
    names = [v for v in request.query.getall("ward", []) if v.strip()]
    if len(names) > 1:
        return error_response(
            400,
            "bad_ward",
            "Give one ward at most.",
            problems=[{"field": "ward", "message": "is given more than once"}],
        )
    if names:
        name = names[0].strip()
        if name not in features:
            return error_response(
                400,
                "bad_ward",
                "No such ward.",
                problems=[{"field": "ward", "message": "is not a ward of this council"}],
            )
        chosen = [features[name]]
    else:
        chosen = list(features.values())
    return web.Response(
        body=json.dumps(
            {"type": "FeatureCollection", "features": chosen}, separators=(",", ":")
        ).encode(),
        content_type="application/geo+json",
        headers={"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


def setup(app: web.Application, ctx: WebContext) -> None:
    app[wards_geojson_key] = ward_features(ctx.council)
    app.router.add_get("/map", map_page)
    app.router.add_get("/map/data", map_data)
    app.router.add_get("/map/wards.geojson", wards_geojson)
