"""Composition root: settings -> council -> database -> routes -> background work."""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import logging
from datetime import UTC, datetime

import aiohttp
from aiohttp import web

from responder.bot.attachment_policy import AttachmentPolicy
from responder.bot.connector import Connector, TokenProvider
from responder.bot.delivery import TeamsDelivery
from responder.bot.endpoint import TeamsEndpoint
from responder.bot.handler import ResponderBot
from responder.bot.pacing import TeamsPacer
from responder.bot.photos import PhotoInbox
from responder.bot.runtime import make_runtime
from responder.commands.digest import send_digests
from responder.commands.erase import purge
from responder.commands.escalate import run_escalations
from responder.config import Council, load_council
from responder.domain.context import Domain
from responder.domain.geocode import WardGeocoder
from responder.export.routes import setup_export
from responder.fetching.photos import PhotoFetcher
from responder.incidents import keep_data_out_of_logs
from responder.intake import api as intake
from responder.intake import forms as form_intake
from responder.intake import photos as photo_files
from responder.intake.open311 import routes as open311
from responder.jobs.dispatcher import Dispatcher
from responder.jobs.scheduler import Cron, Every, Job, Scheduler
from responder.notify import receipts
from responder.notify.sender import NotifySender
from responder.pages import routes as page_routes
from responder.settings import CREDENTIAL_NAMES, AuthType, Settings
from responder.store.db import Database
from responder.store.migrate import upgrade
from responder.store.sync import sync_council
from responder.web import clock_key, db_key, domain_key, intake_keys_key, json_errors
from responder.web.feedback import feedback_links
from responder.web.routes import WebStartupError, middlewares, setup_web
from responder.web.session import secret_key
from responder.webhooks.delivery import WebhookSender, secrets_problem

log = logging.getLogger("responder")
dispatcher_key = web.AppKey("dispatcher", Dispatcher)
notify_key = web.AppKey("notify", NotifySender)
connector_key = web.AppKey("connector", Connector)
http_session_key = web.AppKey("http_session", aiohttp.ClientSession)
photos_key = web.AppKey("photos", PhotoInbox)
scheduler_key = web.AppKey("scheduler", Scheduler)


class StartupError(RuntimeError):
    """A setting combination the service must not run with."""


def utc_now() -> datetime:
    return datetime.now(UTC)


async def healthz(request: web.Request) -> web.Response:
    try:
        await request.app[db_key].ping()
    except Exception as exc:  # noqa: BLE001 - health reports the failure instead of raising
        return web.json_response(
            {"status": "unavailable", "database": type(exc).__name__}, status=503
        )
    council = request.app[domain_key].council
    return web.json_response({"status": "ok", "database": "ok", "council": council.info.name})


def scheduled_jobs(app: web.Application, db: Database, council: Council) -> list[Job]:
    """Responder's periodic work, run by the scheduler (one instance per job, see its doc).

    Add a job here: ``Job(name, Cron(expr, council.tz) or Every(seconds), run)`` where
    ``async def run(now, slot, since)``; ``since`` is the slot that last ran. The name keys
    its ``job_leases`` row: keep it stable. Things made at start-up (``app[notify_key]``,
    ...) can be looked up in ``app`` when the job runs.
    """

    async def purge_contacts(now: datetime, slot: datetime, since: datetime | None) -> None:
        await purge(db, council, now=now)  # what `responder purge` runs

    async def digest(now: datetime, slot: datetime, since: datetime | None) -> None:
        # The slot is the digest's end: the same slot again (another instance) sends nothing.
        await send_digests(db, app[domain_key], slot)

    async def escalate(now: datetime, slot: datetime, since: datetime | None) -> None:
        # Windows on the slot grid: each task crosses each threshold in exactly one window.
        await run_escalations(db, council, slot, since)

    async def statistics(now: datetime, slot: datetime, since: datetime | None) -> None:
        await db.refresh_statistics()  # the query planner's view of growing tables

    return [
        Job("purge", Cron("30 3 * * *", council.tz), purge_contacts),
        Job("statistics", Cron("45 3 * * *", council.tz), statistics),
        Job("digest", Cron(council.file.digest.schedule, council.tz), digest),
        Job("escalations", Every(60), escalate),
    ]


async def settle_heap(app: web.Application) -> None:
    """Once started, collect start-up's garbage and freeze what is left (the council, its
    polygons, SQLAlchemy's and the Teams SDK's modules: they live as long as the process), so
    the cyclic collector never walks them again. Without it a full collection stalled the
    event loop for up to ~90 ms in the middle of a burst of cards. For ``responder serve``;
    an app built per test would keep every frozen object alive."""
    gc.collect()
    gc.freeze()


def check_bot_credentials(settings: Settings) -> None:
    """Refuse what cannot work: no credentials in production, a runtime that is not
    installed, or a way of signing in that the chosen runtime cannot use."""
    client_id, secret, tenant, auth_type = (
        "{} (or {})".format(*names) for names in CREDENTIAL_NAMES.values()
    )
    if settings.teams_runtime == "botbuilder" and importlib.util.find_spec("botbuilder") is None:
        raise StartupError(
            "RESPONDER_TEAMS_RUNTIME=botbuilder, but botbuilder is not installed: "
            "pip install 'responder[botbuilder]' (or use the default Agents SDK runtime)"
        )
    if not settings.app_id:
        if settings.environment == "production":
            raise StartupError(
                f"{client_id} is not set: refusing to run the bot unauthenticated "
                "with RESPONDER_ENV=production"
            )
        log.warning(
            "*** %s is not set: /api/messages accepts activities WITHOUT "
            "authentication, from any tenant. Fine for local testing (Agents Playground), "
            "never for a real deployment. ***",
            client_id,
        )
        return
    if settings.teams_runtime == "botbuilder" and settings.auth_type is not AuthType.CLIENT_SECRET:
        raise StartupError(
            f"{auth_type}: {settings.auth_type.value} is not supported by the botbuilder "
            "runtime; use a client secret (MicrosoftAppType SingleTenant or MultiTenant, "
            "or AUTHTYPE ClientSecret), or the default Agents SDK runtime"
        )
    if settings.app_type == "SingleTenant" and not settings.app_tenant_id:
        raise StartupError(f"MicrosoftAppType=SingleTenant needs {tenant}")
    if (
        settings.auth_type is AuthType.CLIENT_SECRET
        and not settings.app_password
        and settings.environment == "production"
    ):
        raise StartupError(
            f"{secret} is not set: the bot cannot sign its messages to Teams "
            "with RESPONDER_ENV=production"
        )


def build_app(settings: Settings, *, clock=utc_now) -> web.Application:
    """The aiohttp application. The council file is loaded now, so a bad one stops start-up."""
    council = load_council(settings.config_path)
    keep_data_out_of_logs()
    if settings.dev_attachment_origins and settings.environment == "production":
        # They may serve photos over http and from internal addresses: a test double's door.
        raise StartupError(
            "RESPONDER_DEV_ATTACHMENT_ORIGINS is set: refusing to fetch photos from "
            "development origins with RESPONDER_ENV=production"
        )
    if settings.bot_openid_metadata_url and settings.environment == "production":
        raise StartupError(
            "BOT_OPENID_METADATA_URL is set: refusing to take Bot Framework's signing keys "
            "from anywhere else with RESPONDER_ENV=production"
        )
    check_bot_credentials(settings)
    if (problem := secrets_problem(council, settings)) is not None:
        raise StartupError(problem)
    attachments = AttachmentPolicy(settings.attachment_hosts, settings.dev_attachment_origins)
    domain = Domain.for_council(council)
    # Where officers' photos are served from: cards link there, so it must be reachable.
    public_url = (
        settings.public_url
        or (council.info.public_url or "").rstrip("/")
        or "http://localhost:3978"
    )
    db = Database(settings.database_url)
    app = web.Application(
        middlewares=[json_errors, *middlewares()], client_max_size=intake.MAX_BODY
    )
    app[domain_key] = domain
    app[intake_keys_key] = settings.intake_keys
    app[clock_key] = clock
    app[db_key] = db
    bot = ResponderBot(db, domain, clock, WardGeocoder(council, domain.locator))
    runtime = make_runtime(settings)
    teams = TeamsEndpoint(runtime, bot, council.info.tenant_id, authenticate=bool(settings.app_id))
    app.add_routes(
        [web.get("/healthz", healthz), web.post("/api/messages", teams.handle), *intake.routes()]
    )

    app.add_routes(receipts.routes(settings.notify_callback_token, db, council, clock))
    app.add_routes(photo_files.routes(db))
    app.add_routes(open311.routes(public_url))  # /open311/v2/ (FixMyStreet)
    app.add_routes(form_intake.routes())  # POST /api/intake/{source} (forms packages)
    app.add_routes(page_routes(council))  # /privacy and /terms, linked from the app package
    try:  # /tasks, /map, /performance, /wards/, /feedback/, sign-in (responder/web/)
        setup_web(app, settings, council, public_url)
        setup_export(app, settings, council, public_url)  # /api/tasks GET, CSV, /odata/
    except WebStartupError as exc:
        raise StartupError(str(exc)) from None

    async def database(app: web.Application):
        await upgrade(db)
        await sync_council(db, council, clock())
        await db.refresh_statistics()
        yield
        await db.dispose()

    async def connector(app: web.Application):
        # One client for the Bot Connector: the bot's direct replies and the dispatcher's cards.
        session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        app[http_session_key] = session
        tokens = TokenProvider(runtime.access_token if settings.app_id else None)
        bot.connector = app[connector_key] = Connector(session, tokens)
        bot.photos = app[photos_key] = PhotoInbox(
            db, domain, clock, session, tokens, bot.connector, public_url, attachments
        )
        yield
        await bot.photos.close()
        await session.close()

    async def delivery(app: web.Application):
        connector = app[connector_key]
        handlers = TeamsDelivery(db, domain, connector, TeamsPacer(), clock).handlers()
        notify = app[notify_key] = NotifySender.from_settings(
            db, council, settings, clock, feedback=feedback_links(app[secret_key], public_url)
        )
        handlers |= notify.handlers()
        fetcher = PhotoFetcher(db, domain, settings, public_url, clock)
        handlers |= fetcher.handlers()
        webhooks = WebhookSender(db, domain, settings, clock)
        handlers |= webhooks.handlers()
        notify.start()
        dispatcher = Dispatcher(db, handlers, clock)
        app[dispatcher_key] = dispatcher
        db.on_commit(dispatcher.wake)
        runner = asyncio.create_task(dispatcher.run(), name="outbox-dispatcher")
        yield
        dispatcher.stop()
        await runner
        await notify.close()
        await fetcher.close()
        await webhooks.close()

    # Built even without background work, so a test can add jobs and call tick() itself.
    scheduler = app[scheduler_key] = Scheduler(db, scheduled_jobs(app, db, council), clock)

    async def scheduling(app: web.Application):
        runner = asyncio.create_task(scheduler.run(), name="scheduler")
        yield
        scheduler.stop()
        await runner

    app.cleanup_ctx.append(database)
    app.cleanup_ctx.append(connector)
    if settings.background:
        app.cleanup_ctx.append(delivery)
        if settings.scheduler:
            app.cleanup_ctx.append(scheduling)
    if not settings.intake_keys:
        log.warning("RESPONDER_INTAKE_KEYS is empty: POST /api/tasks will refuse every report")
    return app


def main() -> None:
    from responder.cli import main as cli_main

    cli_main(["serve"])


if __name__ == "__main__":
    main()
