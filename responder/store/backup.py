"""``responder backup``: a consistent copy of a SQLite database while the service runs.

SQLite in WAL mode keeps recent commits in ``responder.db-wal`` until a checkpoint moves
them into ``responder.db``, so copying the file alone can miss them (or catch a checkpoint
halfway). SQLite's online backup API (``sqlite3.Connection.backup``) copies the database as
one read transaction sees it, WAL included, while the service goes on writing.

PostgreSQL is backed up with its own tools (``pg_dump``); ``pg_dump_advice`` says how.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from sqlalchemy.engine import make_url

from responder.store.db import display_url


class BackupError(Exception):
    """The backup was not made; the message says why in one line."""


@dataclass(frozen=True)
class BackupResult:
    path: Path
    size: int  # bytes
    revision: str | None  # the schema's Alembic revision
    tasks: int | None


def sqlite_path(url: str) -> Path | None:
    """The file behind a SQLite DATABASE_URL; None for any other database."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    if not parsed.database or parsed.database == ":memory:":
        raise BackupError("DATABASE_URL is an in-memory SQLite database: there is no file")
    return Path(parsed.database)


def _target(source: Path, out: Path) -> Path:
    if out.is_dir():
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        out = out / f"{source.stem}-{stamp}{source.suffix or '.db'}"
    live = source.resolve()
    companions = {live, *(live.with_name(live.name + s) for s in ("-wal", "-shm", "-journal"))}
    if out.resolve() in companions:
        raise BackupError(f"{out} is the live database itself: choose another file")
    if not out.parent.is_dir():
        raise BackupError(f"no folder {out.parent} to write the backup into")
    return out


def backup_sqlite(source: Path, out: Path) -> BackupResult:
    """Copy the SQLite database at ``source`` to ``out`` (a file, or a folder to put a
    time-stamped file in), consistently, while other processes may be writing to it.

    The copy is written beside ``out`` and renamed over it only once complete and checked,
    so a failed backup never replaces a good one. It is readable by its owner only: it holds
    residents' contact details.
    """
    if not source.is_file():
        raise BackupError(f"no database at {source}")
    out = _target(source, out)
    partial = out.with_name(f".{out.name}.{os.getpid()}.partial")
    # Created empty (a valid empty database) with owner-only permissions before SQLite opens it.
    os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
    try:
        # mode=rw: never create an empty database where the live one was expected.
        src = sqlite3.connect(f"file:{quote(str(source))}?mode=rw", uri=True, timeout=30)
        try:
            dst = sqlite3.connect(partial)
            try:
                src.backup(dst)  # all pages in one step: one read transaction, one snapshot
                result = _check(dst)
            finally:
                dst.close()
        finally:
            src.close()
        with open(partial, "rb") as f:
            os.fsync(f.fileno())
        os.replace(partial, out)
        _fsync_dir(out.parent)
    except sqlite3.Error as exc:
        raise BackupError(f"cannot back up {source}: {exc}") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    revision, tasks = result
    return BackupResult(out, out.stat().st_size, revision, tasks)


def _check(dst: sqlite3.Connection) -> tuple[str | None, int | None]:
    """Check the copy (quick_check) and read what the summary line reports."""
    (verdict,) = dst.execute("PRAGMA quick_check").fetchone()
    if verdict != "ok":
        raise BackupError(f"the copy failed SQLite's check: {verdict}")
    names = {row[0] for row in dst.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    revision = None
    if "alembic_version" in names:
        row = dst.execute("SELECT version_num FROM alembic_version").fetchone()
        revision = row[0] if row else None
    tasks = dst.execute("SELECT count(*) FROM tasks").fetchone()[0] if "tasks" in names else None
    return revision, tasks


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every file system lets a folder be opened
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def pg_dump_advice(url: str, out: str) -> str:
    """What to run instead, for a PostgreSQL DATABASE_URL (never with its password)."""
    parsed = make_url(url)
    plain = parsed.set(drivername="postgresql")._replace(password=None)  # set() ignores None
    secret = [key for key in plain.query if key.lower() in ("password", "sslpassword")]
    conninfo = plain.difference_update_query(secret).render_as_string(hide_password=False)
    return "\n".join(
        [
            f"DATABASE_URL is PostgreSQL ({display_url(url)}): `responder backup` copies "
            "SQLite only; back PostgreSQL up with its own pg_dump (it is consistent while "
            "the service runs):",
            f"  pg_dump --format=custom --file={out} '{conninfo}'",
            "Restore it with the service stopped (--clean replaces what is there):",
            f"  pg_restore --clean --if-exists --no-owner --dbname='{conninfo}' {out}",
            "Give the password through PGPASSWORD or ~/.pgpass; it is not shown here.",
        ]
    )
