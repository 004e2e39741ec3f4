"""Engine set-up and the write path.

SQLite (WAL) by default; PostgreSQL (asyncpg) when DATABASE_URL says so.

Hot commands are plain synchronous functions of a ``Connection`` run by ``run()``:
on SQLite in one writer thread with a synchronous engine (one thread hop per command,
where the async driver costs a hop per cursor call: ~300 us a statement against ~30 us),
on PostgreSQL through ``run_sync`` over asyncpg. SQLite allows one writer at a time, so
this process serialises its write transactions instead of colliding into SQLITE_BUSY.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Connection, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

DEFAULT_URL = "sqlite:///responder.db"
T = TypeVar("T")


class DatabaseUnreachable(Exception):
    """The database could not be reached or opened. The message names it without a password
    and says why in a few words, fit for one line on stderr."""


# Query parameters of a URL that can carry a secret (libpq's and asyncpg's names).
_SECRET_PARAMS = ("password", "sslpassword", "passfile")


def display_url(url: str) -> str:
    """``url`` as it may be shown or logged: the plain driver name and no password (in the
    URL or its query), followed by "(password hidden)" when there was one."""
    parsed = make_url(url)
    hidden = parsed.password is not None
    if parsed.drivername.startswith("postgresql+"):
        parsed = parsed.set(drivername="postgresql")
    elif parsed.drivername.startswith("sqlite+"):
        parsed = parsed.set(drivername="sqlite")
    secret = [key for key in parsed.query if key.lower() in _SECRET_PARAMS]
    if secret:
        hidden = True
        parsed = parsed.difference_update_query(secret)
    # URL.set() takes None as "unchanged": the named tuple's _replace removes it.
    shown = parsed._replace(password=None).render_as_string(hide_password=False)
    return f"{shown} (password hidden)" if hidden else shown


def _reason(exc: BaseException) -> str:
    """Why a connection failed, in a few words (no traceback, no statement)."""
    import socket

    from sqlalchemy.exc import DBAPIError

    if isinstance(exc, socket.gaierror):
        return "host not found"
    if isinstance(exc, ConnectionRefusedError) or "Connect call failed" in str(exc):
        return "connection refused"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        exc = exc.orig
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[0].lower() + exc.strerror[1:]
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def unreachable(url: str, exc: BaseException) -> DatabaseUnreachable:
    """The error to raise when connecting to ``url`` failed with ``exc``."""
    reason = _reason(exc)
    password = make_url(url).password
    if password:
        reason = reason.replace(str(password), "***")
    verb = "open" if make_url(url).get_backend_name() == "sqlite" else "reach"
    return DatabaseUnreachable(f"cannot {verb} the database at {display_url(url)}: {reason}")


def async_url(url: str) -> str:
    """Map plain URLs onto the async drivers: sqlite:// -> aiosqlite, postgresql:// -> asyncpg."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite" and parsed.drivername == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif backend in ("postgresql", "postgres") and parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    elif backend not in ("sqlite", "postgresql"):
        raise ValueError(
            f"DATABASE_URL: unsupported database '{backend}' (use sqlite or postgresql)"
        )
    return parsed.render_as_string(hide_password=False)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL mode: a committed transaction survives a process crash (SIGKILL);
    # only an OS crash or power cut can lose the last commits, never corrupt the file.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    # Erased personal data must be gone from the file, not just unlinked.
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()


def _sync_sqlite_engine(url, begin: str):
    engine = create_engine(url, connect_args={"check_same_thread": False}, pool_size=4)

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, record) -> None:
        _sqlite_pragmas(dbapi_connection, record)
        # Let SQLAlchemy, not the driver, begin transactions: savepoints are then reliable
        # (SQLAlchemy's documented recipe for pysqlite).
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(conn) -> None:
        conn.exec_driver_sql(begin)

    return engine


class Database:
    """The engine plus a write path that commits and then tells listeners (e.g. the dispatcher)."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = async_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        kwargs: dict = {"echo": echo}
        if self.is_sqlite:
            database = make_url(self.url).database
            if database and database != ":memory:":
                try:
                    Path(database).parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise unreachable(self.url, exc) from exc
        else:
            kwargs.update(pool_size=10, max_overflow=20, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
            sync_url = make_url(self.url).set(drivername="sqlite")
            self._sync_engine = _sync_sqlite_engine(sync_url, "BEGIN")
            # The writer takes the write lock at BEGIN (waiting up to busy_timeout for
            # another process) so a transaction never fails halfway on SQLITE_BUSY.
            self._writer_engine = _sync_sqlite_engine(sync_url, "BEGIN IMMEDIATE")
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")
            self._readers = ThreadPoolExecutor(2, thread_name_prefix="sqlite-reader")
            self._batch: list[tuple[Callable[[Connection], object], asyncio.Future]] = []
        self._commit_listeners: list[Callable[[], None]] = []

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def on_commit(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` after every write transaction commits (cheap, synchronous)."""
        self._commit_listeners.append(listener)

    @asynccontextmanager
    async def write(self, *, tell: bool = True) -> AsyncIterator[AsyncConnection]:
        """One write transaction: commits on success, rolls back on error.

        ``tell=False`` for bookkeeping that can owe nothing new (the dispatcher's own
        claims and results): telling the listeners would wake the dispatcher to claim
        again, whose commit would wake it again, a busy loop on an idle service.
        """
        if self._write_lock is None:
            async with self.engine.begin() as conn:
                yield conn
        else:
            async with self._write_lock, self.engine.begin() as conn:
                yield conn
        if tell:
            for listener in self._commit_listeners:
                listener()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn:
            yield conn

    async def run(self, command: Callable[[Connection], T]) -> T:
        """Run ``command(conn)`` in one write transaction; commit, then tell listeners."""
        if self._write_lock is None:
            async with self.engine.begin() as conn:
                result = await conn.run_sync(command)
        else:
            result = await self._group_commit(command)
        for listener in self._commit_listeners:
            listener()
        return result

    async def _group_commit(self, command: Callable[[Connection], T]) -> T:
        """Queue the command; the first waiter runs everything queued in one transaction.

        Each command gets a savepoint, so one that fails is rolled back alone; every caller
        hears back only after the shared commit. Under load this saves a commit per task.
        """
        assert self._write_lock is not None  # group commit is SQLite's path
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self._batch.append((command, future))
        async with self._write_lock:
            if not future.done():
                batch, self._batch = self._batch, []
                loop = asyncio.get_running_loop()
                try:
                    outcomes = await loop.run_in_executor(self._writer, self._write_batch, batch)
                except BaseException as exc:  # the commit itself failed: nobody's work stands
                    for _, waiting in batch:
                        if not waiting.done():
                            waiting.set_exception(exc)
                else:
                    for (_, waiting), (ok, value) in zip(batch, outcomes, strict=True):
                        if not waiting.done():
                            if ok:
                                waiting.set_result(value)
                            else:
                                assert isinstance(value, BaseException)
                                waiting.set_exception(value)
        return await future

    def _write_batch(self, batch: list) -> list[tuple[bool, object]]:
        if len(batch) == 1:
            # Alone in its transaction: a failure rolls back only its own work, so the
            # savepoint (two more statements) is not needed.
            command, _ = batch[0]
            try:
                return [(True, self._write_sync(command))]
            except Exception as exc:
                return [(False, exc)]
        outcomes: list[tuple[bool, object]] = []
        with self._writer_engine.begin() as conn:
            for command, _ in batch:
                savepoint = conn.begin_nested()
                try:
                    outcomes.append((True, command(conn)))
                    savepoint.commit()
                except Exception as exc:
                    savepoint.rollback()
                    outcomes.append((False, exc))
        return outcomes

    def _write_sync(self, command: Callable[[Connection], T]) -> T:
        with self._writer_engine.begin() as conn:
            return command(conn)

    async def query(self, reader: Callable[[Connection], T]) -> T:
        """Run ``reader(conn)`` on a read connection (no transaction is committed)."""
        if not self.is_sqlite:
            async with self.engine.connect() as conn:
                return await conn.run_sync(reader)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, self._read_sync, reader)

    def _read_sync(self, reader: Callable[[Connection], T]) -> T:
        with self._sync_engine.connect() as conn:
            return reader(conn)

    async def connect(self) -> AsyncConnection:
        """A connection (close it), or DatabaseUnreachable saying in one line why not."""
        try:
            return await self.engine.connect()
        except Exception as exc:
            raise unreachable(self.url, exc) from exc

    async def refresh_statistics(self) -> None:
        """SQLite's planner statistics (``ANALYZE``, sampled: about half a second over a
        million tasks). Without them SQLite guesses every index equally selective and may walk
        every task of a status rather than fetch fifty by id (a work list page: 1.2 s instead
        of 2 ms over a million tasks). Run at start-up and daily, as the tables grow.
        PostgreSQL's autovacuum keeps its own statistics: nothing to do there."""
        if not self.is_sqlite:
            return
        async with self.write(tell=False) as conn:
            await conn.exec_driver_sql("PRAGMA analysis_limit=1000")
            await conn.exec_driver_sql("ANALYZE")

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.is_sqlite:
            self._writer.shutdown(wait=True)
            self._readers.shutdown(wait=True)
            self._sync_engine.dispose()
            self._writer_engine.dispose()
