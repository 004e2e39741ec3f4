"""Server side of the benchmarks, run in its own process so the load generator cannot steal its CPU.

``python -m bench.server baseline --database PATH`` serves the bare one-INSERT handler;
``python -m bench.server responder --database URL --config FILE [--background]`` serves
Responder itself (with ``--background``, its outbox dispatcher delivers to Teams too);
``python -m bench.server echo`` serves a stock botbuilder echo bot on ``/api/messages``;
``python -m bench.server connector [--latency S]`` serves a fake Bot Connector
(``bench/connector.py``);
``python -m bench.server notify --service-id UUID --secret UUID [--latency S]`` serves the
fake GOV.UK Notify of ``fakes/notify.py`` (its JWT checks and rate-limit bucket), with
``GET /bench/notify`` for what it accepted and answered. Responder's ``--notify-url`` and
``--notify-key`` point its sender at such a fake; ``--lag-file FILE`` resets the sender's
loop-lag monitor once started, and on the way out writes the monitor's figures and the
sender's counters to FILE as JSON. Responder freezes its heap after start-up
(``responder.app.settle_heap``), as ``responder serve`` does.
Once listening, it prints ``PORT <n>`` on stdout; SIGTERM or SIGINT stops it cleanly.
With ``--profile FILE`` the whole serving period runs under cProfile and the stats are
written to FILE on the way out; with ``--profile-on-signal`` too, only the stretches between
SIGUSR1 (start) and SIGUSR2 (stop) are profiled, in the event loop's thread and in the
worker threads of thread pools (where Responder runs its SQLite queries), see
``SignalProfiler``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import logging
import pstats
import signal
import sys
import threading
from concurrent.futures import thread as futures_thread
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import aiohttp
import aiosqlite
from aiohttp import web

BENCH_KEY_NAME = "bench"
BENCH_KEY_SECRET = "bench-secret-123"

baseline_db_key = web.AppKey("baseline_db", aiosqlite.Connection)
baseline_lock_key = web.AppKey("baseline_lock", asyncio.Lock)
SESSION = web.AppKey("session", aiohttp.ClientSession)

_BASELINE_SCHEMA = """
CREATE TABLE IF NOT EXISTS reports (
    id INTEGER PRIMARY KEY,
    type TEXT NOT NULL,
    description TEXT NOT NULL,
    lat REAL NOT NULL,
    lon REAL NOT NULL,
    external_id TEXT,
    received_at TEXT NOT NULL
)
"""

_BASELINE_INSERT = (
    "INSERT INTO reports (type, description, lat, lon, external_id, received_at)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)


async def baseline_post(request: web.Request) -> web.Response:
    """Parse the JSON body, INSERT one row, commit, answer 201 with the id."""
    data = await request.json()
    location = data["location"]
    values = (
        data["type"],
        data.get("description", ""),
        location["lat"],
        location["lon"],
        data.get("external_id"),
        datetime.now(UTC).isoformat(),
    )
    db = request.app[baseline_db_key]
    # One transaction per request, as Responder's per-process write lock gives it: without
    # the lock, interleaved requests on the shared connection would share commits.
    async with request.app[baseline_lock_key]:
        cursor = await db.execute(_BASELINE_INSERT, values)
        await db.commit()
    return web.json_response({"id": cursor.lastrowid}, status=201)


def build_baseline_app(database: Path) -> web.Application:
    app = web.Application()
    app.router.add_post("/api/tasks", baseline_post)

    async def connection(app: web.Application):
        db = await aiosqlite.connect(database)
        # The same pragmas as responder/store/db.py.
        for pragma in (
            "PRAGMA journal_mode=WAL",
            "PRAGMA synchronous=NORMAL",
            "PRAGMA foreign_keys=ON",
            "PRAGMA busy_timeout=10000",
            "PRAGMA secure_delete=ON",
        ):
            await db.execute(pragma)
        await db.execute(_BASELINE_SCHEMA)
        await db.commit()
        app[baseline_db_key] = db
        app[baseline_lock_key] = asyncio.Lock()
        yield
        await db.close()

    app.cleanup_ctx.append(connection)
    return app


def build_responder_app(
    database_url: str,
    config: Path,
    background: bool,
    notify_url: str | None = None,
    notify_key: str | None = None,
    *,
    scheduler: bool = True,
    max_backoff: float | None = None,
    runtime: str = "agents",
) -> web.Application:
    from responder.app import build_app, dispatcher_key, settle_heap
    from responder.settings import Settings

    options: dict[str, object] = {}
    if "background" in {f.name for f in fields(Settings)}:
        # Off: intake only, no outbox delivery (which would try to reach Teams and Notify).
        # On: cards go to the serviceUrl of each installed officer (a fake connector).
        options["background"] = background
    if "teams_runtime" in {f.name for f in fields(Settings)}:  # not before issue 15
        options["teams_runtime"] = runtime
    if notify_url:
        options["notify_base_url"] = notify_url
    if notify_key:
        options["notify_api_key"] = notify_key
    settings = Settings(
        database_url=database_url,
        config_path=config,
        intake_keys={BENCH_KEY_NAME: BENCH_KEY_SECRET},
        scheduler=scheduler,
        **options,
    )
    app = build_app(settings)
    if max_backoff is not None:

        async def cap_backoff(app: web.Application) -> None:
            # As tests/test_durability.py does: after a minute of 40 % failures, uncapped
            # full-jitter backoff can leave a row waiting up to 300 s.
            if dispatcher_key in app:
                app[dispatcher_key].max_backoff = max_backoff

        app.on_startup.append(cap_backoff)
    app.on_startup.append(settle_heap)  # as `responder serve` does
    return app


def build_notify_app(service_id: str, secret: str, latency: float) -> web.Application:
    """fakes/notify.py's FakeNotify with one live key, plus ``GET /bench/notify``:
    the ``time.monotonic()`` of each accepted message, the statuses answered, duplicates and
    requests that arrived inside a 429's Retry-After window."""
    from collections import Counter

    from fakes.notify import ApiKey, FakeNotify

    fake = FakeNotify(
        service_id=service_id, keys=[ApiKey("bench-live", "normal", secret)], latency=latency
    )

    async def stats(request: web.Request) -> web.Response:
        since = int(request.query.get("since", "0"))
        return web.json_response(
            {
                "accepted": len(fake.accepted),
                "accepted_at": [a.at for a in fake.accepted[since:]],
                "statuses": dict(Counter(str(a.status) for a in fake.arrivals)),
                "duplicates": len(fake.duplicates()),
                "retry_after_violations": fake.retry_after_violations,
            }
        )

    app = fake.app()
    app.router.add_get("/bench/notify", stats)
    return app


def lag_figures(app: web.Application) -> dict[str, object] | None:
    """The Notify sender's loop-lag monitor and counters (None without a sender)."""
    from responder.app import notify_key

    sender = app.get(notify_key)
    if sender is None:
        return None
    lag = sender.loop_lag
    return {
        "interval_s": lag.interval,
        "samples": lag.count,
        "max_lag_ms": round(lag.max_lag * 1000, 3),
        "p50_lag_ms": round(lag.percentile(0.5) * 1000, 3),
        "p99_lag_ms": round(lag.percentile(0.99) * 1000, 3),
        "sender_stats": dict(sender.stats),
        # In order, one per interval (the latest ``keep`` of them).
        "lags_ms": [round(x * 1000, 3) for x in lag.samples],
    }


def write_lag_file(path: Path, app: web.Application) -> None:
    path.write_text(json.dumps(lag_figures(app), indent=2) + "\n")


def build_bare_bot_app() -> web.Application:
    """The least any bot can do with a message: read the JSON, POST one reply to the Bot
    Connector on a shared client session, answer 200. No SDK, no token check, no database:
    a floor for CPU per turn, beside the SDKs' echo bots."""

    async def messages(request: web.Request) -> web.StreamResponse:
        activity = await request.json()
        conversation = activity["conversation"]["id"]
        url = f"{activity['serviceUrl'].rstrip('/')}/v3/conversations/{conversation}/activities"
        reply = {"type": "message", "text": f"you said: {activity.get('text')}"}
        async with request.app[SESSION].post(url, json=reply) as resp:
            await resp.read()
        return web.Response(status=200)

    async def session(app: web.Application):
        app[SESSION] = aiohttp.ClientSession()
        yield
        await app[SESSION].close()

    app = web.Application()
    app.router.add_post("/api/messages", messages)
    app.cleanup_ctx.append(session)
    return app


def build_echo_app(runtime: str = "agents") -> web.Application:
    """The stock echo bot of the chosen SDK, with no app id (as Responder runs in the bench)."""
    if runtime == "agents":
        return build_agents_echo_app()
    return build_botbuilder_echo_app()


def build_agents_echo_app() -> web.Application:
    """The Agents SDK's own echo sample (``test_samples/app_style/empty_agent.py`` served by
    ``shared/start_server.py`` in microsoft/Agents-for-python), as a council would start from:
    an AgentApplication with MemoryStorage behind CloudAdapter and the SDK's JWT middleware.
    Only the console transcript logger is left out (it prints every activity)."""
    from microsoft_agents.activity import load_configuration_from_env
    from microsoft_agents.authentication.msal import MsalConnectionManager
    from microsoft_agents.hosting.aiohttp import (
        CloudAdapter,
        jwt_authorization_middleware,
        start_agent_process,
    )
    from microsoft_agents.hosting.core import (
        AgentApplication,
        Authorization,
        MemoryStorage,
        TurnContext,
        TurnState,
    )

    config = load_configuration_from_env(
        {"CONNECTIONS__SERVICE_CONNECTION__SETTINGS__ANONYMOUS_ALLOWED": "true"}
    )
    storage = MemoryStorage()
    connection_manager = MsalConnectionManager(**config)
    adapter = CloudAdapter(connection_manager=connection_manager)
    authorization = Authorization(storage, connection_manager, **config)
    agent = AgentApplication[TurnState](
        storage=storage, adapter=adapter, authorization=authorization, **config
    )

    @agent.activity("message")
    async def on_message(context: TurnContext, _state: TurnState) -> None:
        await context.send_activity(f"you said: {context.activity.text}")

    async def messages(request: web.Request) -> web.StreamResponse:
        return await start_agent_process(request, request.app["agent_app"], request.app["adapter"])

    app = web.Application(middlewares=[jwt_authorization_middleware])
    app.router.add_post("/api/messages", messages)
    app["agent_configuration"] = connection_manager.get_default_connection_configuration()
    app["agent_app"] = agent
    app["adapter"] = adapter
    return app


def build_botbuilder_echo_app() -> web.Application:
    """The botbuilder echo sample: an ActivityHandler behind CloudAdapter, no app id."""
    from botbuilder.core import ActivityHandler, MessageFactory, TurnContext
    from botbuilder.integration.aiohttp import (
        CloudAdapter,
        ConfigurationBotFrameworkAuthentication,
    )

    class EchoBot(ActivityHandler):
        async def on_message_activity(self, turn_context: TurnContext) -> None:
            text = turn_context.activity.text
            await turn_context.send_activity(MessageFactory.text(f"Echo: {text}"))

    config = SimpleNamespace(APP_ID="", APP_PASSWORD="", APP_TYPE="MultiTenant", APP_TENANTID="")
    adapter = CloudAdapter(ConfigurationBotFrameworkAuthentication(config))
    bot = EchoBot()

    async def messages(request: web.Request) -> web.StreamResponse:
        return await adapter.process(request, bot)

    app = web.Application()
    app.router.add_post("/api/messages", messages)
    return app


class SignalProfiler:
    """cProfile switched on by SIGUSR1 and off by SIGUSR2 (see ``serve``).

    cProfile sees only the thread that enables it, and Responder runs its SQLite queries in
    thread pools (``Database.query``/``run``); so while it is on, each work item a
    ``concurrent.futures`` pool runs is profiled too, by a profiler of that worker thread's
    own. ``dump`` merges all of them. Times are wall-clock, as cProfile's are: a worker
    waiting for the GIL counts as busy."""

    def __init__(self) -> None:
        self.on = False
        self.main = cProfile.Profile()
        self._workers: dict[int, cProfile.Profile] = {}
        self._lock = threading.Lock()
        run = futures_thread._WorkItem.run
        switch = self

        def profiled_run(item) -> None:
            if not switch.on:
                return run(item)
            profiler = switch._worker_profiler()
            profiler.enable()
            try:
                return run(item)
            finally:
                profiler.disable()

        futures_thread._WorkItem.run = profiled_run  # type: ignore[method-assign]

    def _worker_profiler(self) -> cProfile.Profile:
        ident = threading.get_ident()
        with self._lock:
            return self._workers.setdefault(ident, cProfile.Profile())

    def start(self) -> None:
        self.on = True
        self.main.enable()

    def stop(self) -> None:
        self.main.disable()
        self.on = False

    def dump(self, path: Path) -> None:
        stats: pstats.Stats | None = None
        for profiler in (self.main, *self._workers.values()):
            profiler.create_stats()
            if not profiler.stats:  # type: ignore[attr-defined]
                continue
            if stats is None:
                stats = pstats.Stats(profiler)
            else:
                stats.add(profiler)
        if stats is not None:
            stats.dump_stats(path)


async def serve(
    app: web.Application,
    lag_file: Path | None = None,
    profiler: SignalProfiler | None = None,
) -> None:
    """Serve on a free 127.0.0.1 port until SIGTERM/SIGINT; report the port on stdout.

    With ``lag_file``: after start-up the Notify sender's loop-lag monitor is reset, and
    its figures are written to ``lag_file`` on the way out."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if profiler is not None:
        loop.add_signal_handler(signal.SIGUSR1, profiler.start)
        loop.add_signal_handler(signal.SIGUSR2, profiler.stop)
    # No access log on either side: it would cost both the same and measure neither.
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    port = runner.addresses[0][1]
    if lag_file is not None:
        from responder.app import notify_key

        if notify_key in app:
            app[notify_key].loop_lag.reset()
    print(f"PORT {port}", flush=True)
    try:
        await stop.wait()
    finally:
        if lag_file is not None:
            write_lag_file(lag_file, app)
        await runner.cleanup()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.server", description=__doc__)
    p.add_argument(
        "kind", choices=("baseline", "responder", "echo", "bare-bot", "connector", "notify")
    )
    p.add_argument(
        "--runtime",
        choices=("agents", "botbuilder"),
        default="agents",
        help="responder, echo: the Teams SDK (RESPONDER_TEAMS_RUNTIME; default agents)",
    )
    p.add_argument("--database", help="SQLite file (baseline) or database URL (responder)")
    p.add_argument("--config", type=Path, help="council file (responder)")
    p.add_argument("--background", action="store_true", help="responder: run the outbox dispatcher")
    p.add_argument(
        "--no-scheduler", action="store_true", help="responder: no scheduled jobs (digest, ...)"
    )
    p.add_argument(
        "--max-backoff",
        type=float,
        help="responder: longest wait between a failed delivery's tries (default 300 s)",
    )
    p.add_argument(
        "--latency", type=float, default=0.0, help="connector, notify: seconds before each answer"
    )
    p.add_argument("--notify-url", help="responder: NOTIFY_BASE_URL (a fake Notify)")
    p.add_argument("--notify-key", help="responder: NOTIFY_API_KEY")
    p.add_argument(
        "--lag-file", type=Path, help="responder: write the Notify sender's loop lag here"
    )
    p.add_argument("--service-id", help="notify: the fake service's id (a UUID)")
    p.add_argument("--secret", help="notify: the secret of its live API key (a UUID)")
    p.add_argument(
        "--log-level",
        default="WARNING",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        help="the root logger's level (default WARNING; `responder serve` logs at INFO)",
    )
    p.add_argument("--profile", type=Path, help="write cProfile stats of the run to this file")
    p.add_argument(
        "--profile-on-signal",
        action="store_true",
        help="with --profile: profile only between SIGUSR1 and SIGUSR2, thread-pool workers too",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Warnings and errors (e.g. a 500's incident log) go to stderr, marked as the server's.
    logging.basicConfig(
        level=getattr(logging, args.log_level),
        format=f"[bench.server {args.kind}] %(levelname)s %(name)s: %(message)s",
    )
    if args.kind in ("baseline", "responder") and args.database is None:
        print(f"{args.kind} needs --database", file=sys.stderr)
        return 2
    if args.kind == "baseline":
        app = build_baseline_app(Path(args.database))
    elif args.kind == "responder":
        if args.config is None:
            print("responder needs --config", file=sys.stderr)
            return 2
        app = build_responder_app(
            args.database,
            args.config,
            args.background,
            args.notify_url,
            args.notify_key,
            scheduler=not args.no_scheduler,
            max_backoff=args.max_backoff,
            runtime=args.runtime,
        )
    elif args.kind == "echo":
        app = build_echo_app(args.runtime)
    elif args.kind == "bare-bot":
        app = build_bare_bot_app()
    elif args.kind == "notify":
        if not (args.service_id and args.secret):
            print("notify needs --service-id and --secret", file=sys.stderr)
            return 2
        gc.disable()  # as for the connector: its arrival times must be prompt
        app = build_notify_app(args.service_id, args.secret, args.latency)
    else:
        from bench.connector import BenchConnector

        # Its arrival times must be prompt: a cyclic collection stalled the loop for ~30 ms,
        # and nothing it keeps forms a cycle (reference counting frees what it drops).
        gc.disable()
        app = BenchConnector(args.latency).app()
    if args.profile is None:
        asyncio.run(serve(app, args.lag_file))
        return 0
    if args.profile_on_signal:
        switch = SignalProfiler()
        try:
            asyncio.run(serve(app, args.lag_file, switch))
        finally:
            switch.stop()
            switch.dump(args.profile)
        return 0
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        asyncio.run(serve(app, args.lag_file))
    finally:
        profiler.disable()
        profiler.dump_stats(args.profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
