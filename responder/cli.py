"""The ``responder`` command: serve (the default), check-config, db, app-package, purge,
digest."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from datetime import date
from pathlib import Path

from responder.config import ConfigError, validate_council_file
from responder.settings import Settings, SettingsError


def _serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    from responder.app import StartupError, build_app, settle_heap

    settings = Settings.from_env()
    port = args.port or settings.port
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
    logging.getLogger("responder").info(
        "Responder on port %d, council file %s", port, settings.config_path
    )
    web.run_app(app, host=settings.host, port=port, print=None)
    return 0


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
            if args.action == "upgrade":
                await migrate.upgrade(db, args.revision or "head")
            elif args.action == "downgrade":
                await migrate.downgrade(db, args.revision or "-1")
            print(f"database at revision {await migrate.current(db) or '(empty)'}")
        finally:
            await db.dispose()

    asyncio.run(run())
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
    p = argparse.ArgumentParser(prog="responder", description=__doc__)
    sub = p.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="run the service (the default)")
    serve.add_argument("--port", type=int, help="override PORT")
    serve.set_defaults(func=_serve)
    check = sub.add_parser("check-config", help="validate a council file")
    check.add_argument("file", type=Path)
    check.set_defaults(func=_check_config)
    db = sub.add_parser("db", help="apply or revert database migrations")
    db.add_argument("action", choices=["upgrade", "downgrade", "current"])
    db.add_argument("revision", nargs="?")
    db.set_defaults(func=_db)
    package = sub.add_parser("app-package", help="build the Teams app package (a zip to upload)")
    package.add_argument("--out", type=Path, required=True, metavar="FILE", help="zip to write")
    package.add_argument("--config", type=Path, help="council file (overrides RESPONDER_CONFIG)")
    package.add_argument(
        "--app-id", metavar="GUID", help="the Teams app's id (default: MicrosoftAppId)"
    )
    package.set_defaults(func=_app_package)
    purge = sub.add_parser(
        "purge", help="erase reporters' contact details past the council's retention period"
    )
    purge.add_argument(
        "--as-of",
        type=_date,
        metavar="YYYY-MM-DD",
        help="the date to count from (default: today in the council's time zone)",
    )
    purge.set_defaults(func=_purge)
    digest = sub.add_parser("digest", help="send the managers' digest now (through the outbox)")
    digest.add_argument(
        "--now",
        action="store_true",
        required=True,
        help="queue it now, covering the time since each team's last digest",
    )
    digest.add_argument("--team", metavar="CODE", help="only this team (default: every team)")
    digest.set_defaults(func=_digest)
    return p


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    args = parser().parse_args(argv)
    if args.command is None:
        args = parser().parse_args(["serve", *(argv or sys.argv[1:])])
    try:
        sys.exit(args.func(args))
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        sys.exit(2)
