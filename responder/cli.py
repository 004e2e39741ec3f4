"""The responder command: serve (the default), check-config, db, backup, app-package, purge,
digest."""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import os
import socket
import sys
from collections.abc import Mapping
from datetime import date
from pathlib import Path

from responder import __version__
from responder.access_log import AccessLogger
from responder.config import ConfigError, validate_council_file
from responder.settings import Settings, SettingsError
from responder.store.db import DatabaseUnreachable

DESCRIPTION = """\
Responder: street-care tasks from residents' reports to council officers in Microsoft Teams.
With no command (or only serve's options) it runs the service, as "responder serve" does.
"""
EPILOG = """\
Settings come from the environment or a .env file: PORT, HOST, DATABASE_URL,
RESPONDER_CONFIG, RESPONDER_LOG_LEVEL and the rest (see the README's Configuration).
Run "responder COMMAND --help" for a command's own options.
"""
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class CannotListen(Exception):
    """The service cannot take its port; the message says why in one line."""


def listen(host: str, port: int, origin: str) -> list[socket.socket]:
    """Listening sockets for HOST and PORT, taken before anything else starts, so a port in
    use is one clear line and not a traceback after migrations, purges and deliveries ran.
    ``origin`` names the setting that chose the port (``PORT=3978`` or ``--port 3978``)."""
    where = f"port {port} on {host or 'every address'}"
    if not 0 <= port <= 65535:
        raise CannotListen(f"{origin}: a port is a number from 0 to 65535")
    try:
        found = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror:
        raise CannotListen(f"cannot listen on HOST={host}: no such address") from None
    sockets: list[socket.socket] = []
    seen: set[tuple[int, object]] = set()
    try:
        for family, kind, proto, _, address in found:
            if (family, address) in seen:
                continue
            seen.add((family, address))
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            if os.name == "posix":  # as asyncio does: restart at once after a stop
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(128)
    except OSError as exc:
        for sock in sockets:
            sock.close()
        if exc.errno == errno.EADDRINUSE:
            message = f"{where} is in use ({origin})"
        elif exc.errno == errno.EACCES:
            message = (
                f"not allowed to listen on {where} ({origin}; ports below 1024 need privileges)"
            )
        elif exc.errno == errno.EADDRNOTAVAIL:
            message = f"cannot listen on {where}: HOST={host} is not an address of this machine"
        else:
            message = f"cannot listen on {where}: {exc.strerror or exc}"
        raise CannotListen(message) from None
    return sockets


def _serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    from responder.app import StartupError, build_app, settle_heap

    settings = Settings.from_env()
    port = settings.port if args.port is None else args.port
    origin = f"--port {port}" if args.port is not None else f"PORT={port}"
    try:
        sockets = listen(settings.host, port, origin)
    except CannotListen as exc:
        print(f"responder: {exc}", file=sys.stderr)
        return 1
    try:
        try:
            app = build_app(settings)
        except ConfigError as exc:
            print(f"{settings.config_path}: the council file is invalid:", file=sys.stderr)
            for problem in exc.problems:
                print(f"  {problem}", file=sys.stderr)
            return 2
        except StartupError as exc:
            print(f"refusing to start: {exc}", file=sys.stderr)
            return 2
        app.on_startup.append(settle_heap)  # after the cleanup contexts: start-up is done
        listening = ", ".join(_address(sock) for sock in sockets)

        async def started(app: web.Application) -> None:
            logging.getLogger("responder").info(
                "Responder %s on %s, council file %s", __version__, listening, settings.config_path
            )

        app.on_startup.append(started)
        web.run_app(app, sock=sockets, print=None, access_log_class=AccessLogger)
    finally:
        for sock in sockets:
            sock.close()
    return 0


def _address(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _check_config(args: argparse.Namespace) -> int:
    council, problems = validate_council_file(args.file)
    if problems:
        print(f"{args.file}: {len(problems)} problem{'s' if len(problems) != 1 else ''}:")
        for problem in problems:
            print(f"  {problem}")
        return 1
    assert council is not None
    print(
        f"{args.file}: OK ({council.info.name}: {len(council.wards)} wards, "
        f"{len(council.file.task_types)} task types, {len(council.file.teams)} teams, "
        f"{len(council.file.people)} people)"
    )
    return 0


def _db(args: argparse.Namespace) -> int:
    from responder.store import migrate
    from responder.store.db import Database

    async def run() -> None:
        db = Database(Settings.from_env().database_url)
        try:
            before = await migrate.current(db)
            if args.action == "upgrade":
                await migrate.upgrade(db, args.revision or "head")
            elif args.action == "downgrade":
                await migrate.downgrade(db, args.revision or "-1")
            after = await migrate.current(db)
            was = f" (was {before or '(empty)'})" if after != before else ""
            print(f"database at revision {after or '(empty)'}{was}")
        finally:
            await db.dispose()

    asyncio.run(run())
    return 0


def _backup(args: argparse.Namespace) -> int:
    from sqlalchemy.engine import make_url

    from responder.store.backup import BackupError, backup_sqlite, pg_dump_advice, sqlite_path
    from responder.store.db import display_url

    url = Settings.from_env().database_url
    backend = make_url(url).get_backend_name()
    if backend in ("postgresql", "postgres"):
        print(pg_dump_advice(url, str(args.out)), file=sys.stderr)
        return 2
    try:
        if backend != "sqlite":
            raise BackupError(f"cannot back up {display_url(url)}: not a SQLite database")
        source = sqlite_path(url)
        assert source is not None
        result = backup_sqlite(source, args.out)
    except BackupError as exc:
        print(f"responder: {exc}", file=sys.stderr)
        return 1
    tasks = (
        "" if result.tasks is None else f"{result.tasks} task{'s' if result.tasks != 1 else ''}, "
    )
    revision = f"schema revision {result.revision}, " if result.revision else ""
    print(f"wrote {result.path} ({tasks}{revision}{result.size / 1e6:.1f} MB)")
    print(
        f"To restore: stop the service, delete any {source}-wal and {source}-shm, "
        f"then copy it over {source}."
    )
    return 0


def _app_package(args: argparse.Namespace) -> int:
    from responder.apppackage import AppPackageError, build_package

    settings = Settings.from_env()
    config = args.config or settings.config_path
    council, problems = validate_council_file(config)
    if council is None:
        print(f"{config}: the council file is invalid:", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    try:
        out = build_package(settings, council, args.out, app_id=args.app_id)
    except AppPackageError as exc:
        print("cannot build the Teams app package:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    print(f"wrote {out} (Teams app package for {council.info.name}; upload it in Teams)")
    return 0


def _purge(args: argparse.Namespace) -> int:
    from responder.commands.erase import purge
    from responder.config import load_council
    from responder.store import migrate
    from responder.store.db import Database

    settings = Settings.from_env()
    try:
        council = load_council(settings.config_path)
    except ConfigError as exc:
        print(f"{settings.config_path}: the council file is invalid:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2

    async def run():
        db = Database(settings.database_url)
        try:
            await migrate.upgrade(db)
            return await purge(db, council, as_of=args.as_of)
        finally:
            await db.dispose()

    result = asyncio.run(run())
    print(result.summary())  # counts only: never a name or an address
    return 0 if result.wal_truncated is not False else 1


def _digest(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from responder.cards.common import when
    from responder.commands.digest import send_digests
    from responder.config import load_council
    from responder.domain.context import Domain
    from responder.store import migrate
    from responder.store.db import Database

    settings = Settings.from_env()
    try:
        council = load_council(settings.config_path)
    except ConfigError as exc:
        print(f"{settings.config_path}: the council file is invalid:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    if args.team is not None and council.team(args.team) is None:
        known = ", ".join(t.code for t in council.file.teams)
        print(f"no team '{args.team}' in {settings.config_path} (teams: {known})", file=sys.stderr)
        return 2

    async def run():
        db = Database(settings.database_url)
        try:
            await migrate.upgrade(db)
            return await send_digests(db, Domain.for_council(council), datetime.now(UTC), args.team)
        finally:
            await db.dispose()

    tz = council.tz
    for queued in asyncio.run(run()):
        period = f"{when(queued.since.astimezone(tz))} to {when(queued.until.astimezone(tz))}"
        to = [f"person:{m}" for m in queued.managers]
        to.append(f"channel ({queued.channel})" if queued.channel else "channel (none linked)")
        print(f"{queued.team}: digest {queued.digest_id} for {period} queued to {', '.join(to)}")
    print("The running service's dispatcher delivers them.")
    return 0


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="responder",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"responder {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    serve = sub.add_parser(
        "serve",
        help="run the service (the default)",
        description="Run the service: the Teams bot, the intake API and the background work.",
    )
    serve.add_argument("--port", type=int, help="the port to listen on (overrides PORT)")
    serve.set_defaults(func=_serve)
    check = sub.add_parser(
        "check-config",
        help="validate a council file",
        description="Validate a council file and its ward boundaries; list every problem.",
    )
    check.add_argument("file", type=Path, help="the council file (YAML) to check")
    check.set_defaults(func=_check_config)
    db = sub.add_parser(
        "db",
        help="apply or revert database migrations",
        description="Apply or revert the database's migrations (DATABASE_URL); the service "
        "applies them itself on start.",
    )
    db.add_argument(
        "action",
        choices=["upgrade", "downgrade", "current"],
        help="upgrade (to the newest, or REVISION), downgrade (one step, or to REVISION), "
        "or show the current revision",
    )
    db.add_argument(
        "revision",
        nargs="?",
        help="the revision to go to (default: head for upgrade, -1 for downgrade)",
    )
    db.set_defaults(func=_db)
    backup = sub.add_parser(
        "backup",
        help="copy the SQLite database consistently while the service runs",
        description="Copy the SQLite database (DATABASE_URL) with SQLite's online backup, "
        "consistent while the service runs, including what is still in its WAL file. "
        "For PostgreSQL it prints the pg_dump command to use instead.",
    )
    backup.add_argument(
        "out",
        type=Path,
        metavar="OUT",
        help="the file to write (replaced only once the copy is complete), or a folder to "
        "put a time-stamped file in",
    )
    backup.set_defaults(func=_backup)
    package = sub.add_parser(
        "app-package",
        help="build the Teams app package (a zip to upload)",
        description="Build the Teams app package from your settings and council file.",
    )
    package.add_argument("--out", type=Path, required=True, metavar="FILE", help="zip to write")
    package.add_argument("--config", type=Path, help="council file (overrides RESPONDER_CONFIG)")
    package.add_argument(
        "--app-id", metavar="GUID", help="the Teams app's id (default: MicrosoftAppId)"
    )
    package.set_defaults(func=_app_package)
    purge = sub.add_parser(
        "purge",
        help="erase reporters' contact details past the council's retention period",
        description="Erase reporters' contact details past the council's retention period "
        "(the service also does this on its schedule).",
    )
    purge.add_argument(
        "--as-of",
        type=_date,
        metavar="YYYY-MM-DD",
        help="the date to count from (default: today in the council's time zone)",
    )
    purge.set_defaults(func=_purge)
    digest = sub.add_parser(
        "digest",
        help="send the managers' digest now (through the outbox)",
        description="Queue each team's managers' digest now; the running service delivers it.",
    )
    digest.add_argument(
        "--now",
        action="store_true",
        required=True,
        help="queue it now, covering the time since each team's last digest",
    )
    digest.add_argument("--team", metavar="CODE", help="only this team (default: every team)")
    digest.set_defaults(func=_digest)
    return p


def configure_logging(env: Mapping[str, str]) -> None:
    """Log lines to stderr at RESPONDER_LOG_LEVEL (default INFO). Alembic's migration steps
    show only at DEBUG; aiosqlite's statements never (responder.incidents)."""
    raw = env.get("RESPONDER_LOG_LEVEL") or "INFO"
    level = raw.strip().upper()
    if level not in LOG_LEVELS:
        choices = ", ".join(name.lower() for name in LOG_LEVELS)
        raise SettingsError(f"RESPONDER_LOG_LEVEL={raw!r}: use one of {choices}")
    logging.basicConfig(level=level, format=LOG_FORMAT, stream=sys.stderr)
    logging.getLogger("alembic").setLevel(logging.INFO if level == "DEBUG" else logging.WARNING)


def main(argv: list[str] | None = None) -> None:
    from dotenv import load_dotenv

    argv = list(sys.argv[1:] if argv is None else argv)
    p = parser()
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")):
        argv = ["serve", *argv]  # serve is the default command, options and all
    args = p.parse_args(argv)
    try:
        load_dotenv(override=False)  # as Settings.from_env does, for RESPONDER_LOG_LEVEL
        configure_logging(os.environ)
        sys.exit(args.func(args))
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        sys.exit(2)
    except DatabaseUnreachable as exc:
        print(f"responder: {exc}", file=sys.stderr)
        sys.exit(1)
