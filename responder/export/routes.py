"""Wires the read-only ways out (issue 19) into the application: read keys checked at
start-up (a ``WebStartupError`` stops it, as the web pages' settings do), then the routes."""

from __future__ import annotations

import logging

from aiohttp import web

from responder.config.model import Council
from responder.export import api, history, odata
from responder.export.keys import ReadKeyProblem, read_keys, read_keys_key
from responder.settings import Settings
from responder.web.startup import WebStartupError

log = logging.getLogger("responder.export")


def setup_export(app: web.Application, settings: Settings, council: Council, public_url: str):
    try:
        keys = read_keys(council, settings)
    except ReadKeyProblem as exc:
        raise WebStartupError(str(exc)) from None
    app[read_keys_key] = keys
    app[api.public_url_key] = public_url.rstrip("/")
    app.add_routes(api.routes())
    app.add_routes(history.routes())
    app.add_routes(odata.routes())
    if not keys.keys:
        log.info("RESPONDER_READ_KEYS is empty: GET /api/tasks, the CSV and /odata/ refuse all")
