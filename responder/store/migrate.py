"""Alembic migrations, run programmatically (on start-up, and by ``responder db``)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from responder.store.db import Database

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")


def quiet_alembic() -> None:
    """Alembic logs each migration step (and, on import, its plugins) at INFO on every start:
    held at WARNING unless someone set the "alembic" logger's level (the CLI does, to INFO,
    with RESPONDER_LOG_LEVEL=DEBUG). Alembic is imported after this, inside the functions."""
    logger = logging.getLogger("alembic")
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.WARNING)


quiet_alembic()


def alembic_config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


@asynccontextmanager
async def _begin(db: Database) -> AsyncIterator[AsyncConnection]:
    """One transaction; a database that cannot be reached is DatabaseUnreachable (one line)."""
    conn = await db.connect()
    try:
        async with conn.begin():
            yield conn
    finally:
        await conn.close()


async def _run(db: Database, step: Callable[[Config], None]) -> None:
    quiet_alembic()
    async with _begin(db) as conn:
        await conn.run_sync(lambda sync: step(alembic_config(sync)))


async def upgrade(db: Database, revision: str = "head") -> None:
    from alembic import command

    await _run(db, lambda cfg: command.upgrade(cfg, revision))


async def downgrade(db: Database, revision: str) -> None:
    from alembic import command

    await _run(db, lambda cfg: command.downgrade(cfg, revision))


async def current(db: Database) -> str | None:
    from alembic.runtime.migration import MigrationContext

    conn = await db.connect()
    try:
        return await conn.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_revision()
        )
    finally:
        await conn.close()
