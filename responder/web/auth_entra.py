"""(Being built: issue 18.)"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from responder.web.routes import WebContext


def setup(app: web.Application, ctx: WebContext) -> None:
    pass
