"""Shared fixtures: real databases (a SQLite file and the machine's PostgreSQL) and the app."""

from __future__ import annotations

import asyncio
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fake_openid import FakeOpenId
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from support import (
    BACKENDS,
    EXAMPLES,
    INTAKE_SECRET,
    PG_URL,
    create_pg_database,
    drop_pg_database,
    migrated_postgres,
    migrated_sqlite,
    restore_postgres,
)

from fakes.connector import FakeConnector
from responder.app import build_app
from responder.settings import Settings


@pytest.fixture(scope="session", autouse=True)
def _own_postgres_database():
    """This run's PostgreSQL database (support.PG_URL) is dropped when the run ends; it is
    created by the first test that resets it."""
    yield
    drop_pg_database()


async def _reset_postgres(url: str) -> None:
    """An empty public schema in ``url`` (this run's own database, created if need be)."""
    if url == PG_URL:
        await create_pg_database()
    engine = create_async_engine(url.replace("postgresql://", "postgresql+asyncpg://", 1))
    try:
        async with engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
    finally:
        await engine.dispose()


@pytest.fixture(params=BACKENDS)
def empty_database_url(request, tmp_path) -> str:
    """An empty database of each kind (for the tests of the migrations themselves)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'responder.db'}"
    asyncio.run(_reset_postgres(PG_URL))
    return PG_URL


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory) -> Path:
    """This worker's SQLite file as the current migrations leave it (tests/support.py)."""
    return migrated_sqlite(tmp_path_factory.mktemp("template") / "migrated.db")


@pytest.fixture(scope="session")
def _postgres_template() -> str:
    """SQL that rebuilds this worker's PostgreSQL database as the current migrations leave
    it (tests/support.py)."""
    return migrated_postgres()


@pytest.fixture(params=BACKENDS)
def database_url(request, tmp_path) -> str:
    """A database of each kind as the migrations leave an empty one (at head), copied from
    this worker's template: quicker than migrating for every test."""
    if request.param == "sqlite":
        path = tmp_path / "responder.db"
        shutil.copyfile(request.getfixturevalue("_sqlite_template"), path)
        return f"sqlite:///{path}"
    restore_postgres(request.getfixturevalue("_postgres_template"))
    return PG_URL


class Clock:
    """A settable clock, so due times and windows can be checked exactly."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def openid():
    """Bot Framework's token signing, faked on 127.0.0.1 (tests/fake_openid.py)."""
    fake = FakeOpenId()
    yield fake
    fake.close()


@pytest.fixture(params=["agents", "botbuilder"])
def teams_runtime(request) -> str:
    """Each Teams runtime (RESPONDER_TEAMS_RUNTIME), for the protocol tests that take it."""
    return request.param


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 11, 23, 9, 0, tzinfo=UTC))  # a Monday morning


@pytest.fixture
def council_path() -> Path:
    return EXAMPLES / "council.yaml"


@pytest.fixture
def settings(database_url: str, council_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        config_path=council_path,
        intake_keys={"forms": INTAKE_SECRET, "fixmystreet": "test-secret-fms"},
        background=False,  # intake tests look at the outbox as written
    )


@pytest.fixture
async def connector(aiohttp_server) -> FakeConnector:
    """A fake Bot Connector on 127.0.0.1 that records what the bot sends (fakes/connector.py)."""
    fake = FakeConnector()
    server = await aiohttp_server(fake.app())
    fake.url = str(server.make_url("/"))
    return fake


@pytest.fixture
async def client(aiohttp_client, settings: Settings, clock: Clock):
    app = build_app(settings, clock=clock)
    return await aiohttp_client(app)
