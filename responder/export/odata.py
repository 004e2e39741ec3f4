"""The OData v4 feed at ``/odata/``, for Power BI (Get data -> OData feed) and any OData
client: the service document, ``$metadata`` (CSDL XML), and the entity sets Tasks, Events,
Wards, Teams and Officers (``queries/odata_sets.py``) with ``$select``, ``$filter``,
``$orderby``, ``$top``, ``$skip``, ``$count=true`` and server-driven paging (1,000 rows a
page, ``@odata.nextLink`` with a ``$skiptoken``: a keyset on the key when no ``$orderby``
is given). ``$expand``, ``$search``, ``$apply`` and ``$compute`` are a 501 (the feed has
no navigation properties); other unknown ``$`` options are a 400. Errors are OData's JSON
error format, naming the option. See docs/data-out.md.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import quoteattr

from aiohttp import web

from responder.export.keys import ReadKey, authenticate
from responder.export.rows import LocalTimes
from responder.queries.odata_sets import (
    PAGE_SIZE,
    EntitySet,
    Order,
    Prop,
    QueryProblem,
    entity_sets,
    filter_clause,
    read_page,
)
from responder.web import clock_key, db_key, domain_key

from .api import public_url_key

NAMESPACE = "Responder"
VERSION = {"OData-Version": "4.0"}
JSON_TYPE = "application/json;odata.metadata=minimal;odata.streaming=true;charset=utf-8"
MAX_QUERY = 4096
MAX_NUMBER = 2**31 - 1
SUPPORTED = frozenset(
    {"$select", "$filter", "$orderby", "$top", "$skip", "$count", "$skiptoken", "$format"}
)
NOT_IMPLEMENTED = frozenset({"$expand", "$search", "$apply", "$compute", "$levels"})
MAX_ORDER = 5
_SAFE = ",()'$:"  # kept as they are in a nextLink's options


def odata_error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None, target=None
) -> web.Response:
    error: dict[str, Any] = {"code": code, "message": message}
    if target:
        error["target"] = target
    return web.json_response(
        {"error": error}, status=status, headers={**VERSION, **(headers or {})}
    )


def refuse(status: int, error: str, message: str, headers: dict[str, str]) -> web.Response:
    return odata_error(status, error, message, headers)


def _key(request: web.Request) -> ReadKey | web.StreamResponse:
    return authenticate(request, refuse, allow_query=True)


def _sets(request: web.Request, key: ReadKey) -> dict[str, EntitySet]:
    now: datetime = request.app[clock_key]()
    return entity_sets(request.app[domain_key], key.scope, now, key.internals)


def _base(request: web.Request) -> str:
    return f"{request.app[public_url_key]}/odata"


async def service_document(request: web.Request) -> web.StreamResponse:
    key = _key(request)
    if not isinstance(key, ReadKey):
        return key
    base = _base(request)
    return web.json_response(
        {
            "@odata.context": f"{base}/$metadata",
            "value": [
                {"name": name, "kind": "EntitySet", "url": name} for name in _sets(request, key)
            ],
        },
        headers=VERSION,
        content_type="application/json",
    )


def metadata_xml(sets: dict[str, EntitySet]) -> str:
    lines = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<edmx:Edmx xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx" Version="4.0">',
        "  <edmx:DataServices>",
        f'    <Schema xmlns="http://docs.oasis-open.org/odata/ns/edm" Namespace="{NAMESPACE}">',
    ]
    for entity_set in sets.values():
        lines.append(f"      <EntityType Name={quoteattr(entity_set.type_name)}>")
        lines.append(f"        <Key><PropertyRef Name={quoteattr(entity_set.key)}/></Key>")
        for prop in entity_set.props:
            nullable = "" if prop.nullable else ' Nullable="false"'
            lines.append(
                f"        <Property Name={quoteattr(prop.name)} Type={quoteattr(prop.edm)}"
                f"{nullable}/>"
            )
        lines.append("      </EntityType>")
    lines.append('      <EntityContainer Name="Container">')
    for entity_set in sets.values():
        lines.append(
            f"        <EntitySet Name={quoteattr(entity_set.name)} "
            f'EntityType="{NAMESPACE}.{entity_set.type_name}"/>'
        )
    lines += ["      </EntityContainer>", "    </Schema>", "  </edmx:DataServices>", "</edmx:Edmx>"]
    return "\n".join(lines) + "\n"


async def metadata(request: web.Request) -> web.StreamResponse:
    key = _key(request)
    if not isinstance(key, ReadKey):
        return key
    return web.Response(
        text=metadata_xml(_sets(request, key)),
        content_type="application/xml",
        charset="utf-8",
        headers=VERSION,
    )


def _number(option: str, text: str) -> int:
    if not (text.isascii() and text.isdigit() and len(text) <= 10) or int(text) > MAX_NUMBER:
        raise QueryProblem(option, f"must be a whole number from 0 to {MAX_NUMBER}")
    return int(text)


def _props(entity_set: EntitySet, names: str, option: str) -> list[Prop]:
    out: list[Prop] = []
    for raw in names.split(","):
        name = raw.strip()
        prop = entity_set.by_name.get(name)
        if prop is None:
            raise QueryProblem(option, f"{name!r} is not a property of {entity_set.name}")
        if prop not in out:
            out.append(prop)
    return out


def _orders(entity_set: EntitySet, text: str) -> list[Order]:
    items = [i.strip() for i in text.split(",")]
    if len(items) > MAX_ORDER:
        raise QueryProblem("$orderby", f"orders by at most {MAX_ORDER} properties")
    out = []
    for item in items:
        name, _, direction = item.partition(" ")
        direction = direction.strip().lower()
        if direction not in ("", "asc", "desc"):
            raise QueryProblem("$orderby", f"{item!r}: the direction must be asc or desc")
        [prop] = _props(entity_set, name, "$orderby")
        out.append(Order(prop, direction == "desc"))
    return out


def _token(value: Any) -> str:
    raw = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _read_token(text: str, key_type: str) -> dict[str, Any]:
    bad = QueryProblem("$skiptoken", "is not a token this feed gave: start again")
    if len(text) > 400:
        raise bad
    try:
        data = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError):
        raise bad from None
    if not isinstance(data, dict) or set(data) != {"a", "s"}:
        raise bad
    after, served = data["a"], data["s"]
    if isinstance(served, bool) or not isinstance(served, int) or not 0 <= served <= 2**40:
        raise bad
    if key_type == "Edm.Int64":
        ok = isinstance(after, int) and not isinstance(after, bool) and 0 <= after < 2**63
    else:
        ok = isinstance(after, str) and len(after) <= 300
    if not ok:
        raise bad
    return data


def _converters(selected: Sequence[Prop], tz: tzinfo) -> list[tuple[str, Any]]:
    """Each selected property's name and how its value is written in JSON."""
    local = LocalTimes(tz)

    def text(value: Any) -> Any:
        return None if value is None else local.text(value)

    def boolean(value: Any) -> Any:
        return None if value is None else bool(value)

    def number(value: Any) -> Any:
        return None if value is None else float(value)

    def whole(value: Any) -> Any:
        return None if value is None else int(value)

    kinds = {
        "Edm.DateTimeOffset": text,
        "Edm.Boolean": boolean,
        "Edm.Double": number,
        "Edm.Int64": whole,
        "Edm.Int32": whole,
    }
    return [(p.name, kinds.get(p.edm)) for p in selected]


def _options(request: web.Request) -> dict[str, str]:
    options: dict[str, str] = {}
    for name, value in request.query.items():
        if not name.startswith("$"):
            continue  # custom options (api_key) and the like
        if name in NOT_IMPLEMENTED:
            raise QueryProblem(name, f"{name} is not supported by this feed", status=501)
        if name not in SUPPORTED:
            raise QueryProblem(name, f"{name} is not a query option this feed knows")
        if name in options:
            raise QueryProblem(name, "is given more than once")
        options[name] = value
    return options


async def entity_collection(request: web.Request) -> web.StreamResponse:
    key = _key(request)
    if not isinstance(key, ReadKey):
        return key
    sets = _sets(request, key)
    name = request.match_info["set"]
    count_only = request.match_info.get("count") == "$count"
    entity_set = sets.get(name)
    if entity_set is None:
        return odata_error(404, "NotFound", f"No entity set {name[:100]!r}: see /odata/.")
    if len(request.query_string) > MAX_QUERY:
        return odata_error(414, "UriTooLong", f"The query is longer than {MAX_QUERY} bytes.")
    tz = request.app[domain_key].council.tz
    try:
        options = _options(request)
        answer = await _collection(request, entity_set, options, tz, count_only)
    except QueryProblem as problem:
        code = "NotImplemented" if problem.status == 501 else "BadRequest"
        return odata_error(
            problem.status, code, f"{problem.option}: {problem}", target=problem.option
        )
    return answer


async def _collection(
    request: web.Request,
    entity_set: EntitySet,
    options: dict[str, str],
    tz: tzinfo,
    count_only: bool,
) -> web.Response:
    fmt = options.get("$format", "json").lower()
    if fmt not in ("json", "application/json"):
        raise QueryProblem("$format", "only json is offered")
    selected: Sequence[Prop] = entity_set.props
    select_text = options.get("$select", "").strip()
    if select_text and select_text != "*":
        selected = _props(entity_set, select_text, "$select")
    where = []
    if options.get("$filter", "").strip():
        where.append(filter_clause(entity_set, options["$filter"], tz))
    order = _orders(entity_set, options["$orderby"]) if options.get("$orderby") else []
    top = _number("$top", options["$top"]) if "$top" in options else None
    skip = _number("$skip", options["$skip"]) if "$skip" in options else 0
    count_text = options.get("$count", "false").lower()
    if count_text not in ("true", "false"):
        raise QueryProblem("$count", "must be true or false")
    key_prop = entity_set.by_name[entity_set.key]
    token = _read_token(options["$skiptoken"], key_prop.edm) if "$skiptoken" in options else None
    served = token["s"] if token else 0
    db = request.app[db_key]

    if count_only:
        _, total = await db.query(
            lambda conn: read_page(conn, entity_set, [key_prop], where, [], limit=0, count=True)
        )
        return web.Response(text=str(total), content_type="text/plain", headers=VERSION)

    remaining = PAGE_SIZE if top is None else max(0, min(PAGE_SIZE, top - served))
    after = token["a"] if token and not order else None
    offset = skip + served if order else (0 if token else skip)

    def read(conn):
        return read_page(
            conn,
            entity_set,
            selected,
            where,
            order,
            after=after,
            offset=offset,
            limit=remaining + 1 if remaining else 0,
            count=count_text == "true",
        )

    rows, total = await db.query(read)
    more = len(rows) > remaining and (top is None or top - served > remaining)
    rows = rows[:remaining]
    base = _base(request)
    context = f"{base}/$metadata#{entity_set.name}"
    if select_text and select_text != "*":
        context += "(" + ",".join(p.name for p in selected) + ")"
    body: dict[str, Any] = {"@odata.context": context}
    if total is not None:
        body["@odata.count"] = total
    converters = _converters(selected, tz)
    body["value"] = [
        {name: convert(row.get(name)) if convert else row.get(name) for name, convert in converters}
        for row in rows
    ]
    if more and rows:
        next_token = _token({"a": rows[-1][key_prop.name], "s": served + len(rows)})
        kept = [(k, v) for k, v in options.items() if k != "$skiptoken"]
        query = "&".join(f"{k}={quote(v, safe=_SAFE)}" for k, v in kept)
        link = f"{base}/{entity_set.name}?" + (f"{query}&" if query else "")
        body["@odata.nextLink"] = link + f"$skiptoken={next_token}"
    return web.json_response(body, headers=VERSION, content_type="application/json")


def routes() -> list[web.RouteDef]:
    return [
        web.get("/odata", service_document, allow_head=False),
        web.get("/odata/", service_document, allow_head=False),
        web.get("/odata/$metadata", metadata, allow_head=False),
        web.get(r"/odata/{set:[A-Za-z][A-Za-z0-9_]{0,63}}", entity_collection, allow_head=False),
        web.get(
            r"/odata/{set:[A-Za-z][A-Za-z0-9_]{0,63}}/{count:\$count}",
            entity_collection,
            allow_head=False,
        ),
    ]
