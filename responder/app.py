"""Composition root: settings -> council -> database -> routes -> background work."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import aiohttp
from aiohttp import web

from responder.bot.connector import Connector, TokenProvider
from responder.bot.delivery import TeamsDelivery
from responder.bot.endpoint import TeamsEndpoint
from responder.bot.handler import ResponderBot
from responder.bot.pacing import TeamsPacer
from responder.config import load_council
from responder.intake import api as intake
from responder.intake.errors import json_errors
from responder.jobs.dispatcher import Dispatcher
from responder.notify import receipts
from responder.notify.sender import NotifySender
from responder.settings import Settings
from responder.store.db import Database
from responder.store.migrate import upgrade
from responder.store.sync import sync_council
from responder.tasks.commands import Domain

log = logging.getLogger("responder")
dispatcher_key = web.AppKey("dispatcher", Dispatcher)
notify_key = web.AppKey("notify", NotifySender)


class StartupError(RuntimeError):
    """A setting combination the service must not run with."""


def utc_now() -> datetime:
    return datetime.now(UTC)


async def healthz(request: web.Request) -> web.Response:
    try:
        await request.app[intake.db_key].ping()
    except Exception as exc:  # noqa: BLE001 - health reports the failure instead of raising
        return web.json_response(
            {"status": "unavailable", "database": type(exc).__name__}, status=503
        )
    council = request.app[intake.domain_key].council
    return web.json_response({"status": "ok", "database": "ok", "council": council.info.name})


def build_app(settings: Settings, *, clock=utc_now) -> web.Application:
    """The aiohttp application. The council file is loaded now, so a bad one stops start-up."""
    council = load_council(settings.config_path)
    if not settings.app_id:
        if settings.environment == "production":
            raise StartupError(
                "MicrosoftAppId is not set: refusing to run the bot unauthenticated "
                "with RESPONDER_ENV=production"
            )
        log.warning(
            "*** MicrosoftAppId is not set: /api/messages accepts activities WITHOUT "
            "authentication. Fine for local testing, never for a real deployment. ***"
        )
    domain = Domain.for_council(council)
    db = Database(settings.database_url)
    app = web.Application(middlewares=[json_errors], client_max_size=intake.MAX_BODY)
    app[intake.domain_key] = domain
    app[intake.intake_keys_key] = settings.intake_keys
    app[intake.clock_key] = clock
    app[intake.db_key] = db
    teams = TeamsEndpoint(settings, ResponderBot(db, domain, clock), council.info.tenant_id)
    app.add_routes(
        [web.get("/healthz", healthz), web.post("/api/messages", teams.handle), *intake.routes()]
    )

    app.add_routes(receipts.routes(settings.notify_callback_token, db, council, clock))

    async def database(app: web.Application):
        await upgrade(db)
        await sync_council(db, council, clock())
        yield
        await db.dispose()

    async def delivery(app: web.Application):
        session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        connector = Connector(
            session, TokenProvider(settings.app_id, settings.app_password, settings.app_tenant_id)
        )
        handlers = TeamsDelivery(db, domain, connector, TeamsPacer(), clock).handlers()
        notify = app[notify_key] = NotifySender.from_settings(db, council, settings, clock)
        handlers |= notify.handlers()
        notify.start()
        dispatcher = Dispatcher(db, handlers, clock)
        app[dispatcher_key] = dispatcher
        db.on_commit(dispatcher.wake)
        runner = asyncio.create_task(dispatcher.run(), name="outbox-dispatcher")
        yield
        dispatcher.stop()
        await runner
        await notify.close()
        await session.close()

    app.cleanup_ctx.append(database)
    if settings.background:
        app.cleanup_ctx.append(delivery)
    if not settings.intake_keys:
        log.warning("RESPONDER_INTAKE_KEYS is empty: POST /api/tasks will refuse every report")
    return app


def main() -> None:
    from responder.cli import main as cli_main

    cli_main(["serve"])


if __name__ == "__main__":
    main()
