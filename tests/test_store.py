"""Migrations and config sync against the real databases."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic.script import ScriptDirectory
from sqlalchemy import inspect, select, update
from support import EXAMPLES, write_council

from responder.config import load_council
from responder.store import migrate
from responder.store.db import Database, async_url
from responder.store.schema import metadata, people, teams
from responder.store.sync import sync_council

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


async def _tables(db: Database) -> set[str]:
    async with db.engine.connect() as conn:
        return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))


async def test_migrations_upgrade_an_empty_database_and_downgrade_again(empty_database_url):
    db = Database(empty_database_url)
    try:
        assert await migrate.current(db) is None
        await migrate.upgrade(db)
        head = ScriptDirectory.from_config(migrate.alembic_config()).get_current_head()
        assert head is not None and await migrate.current(db) == head
        assert await _tables(db) >= set(metadata.tables)
        # Upgrading again is harmless (every instance runs it on start-up).
        await migrate.upgrade(db)
        await migrate.downgrade(db, "base")
        assert await migrate.current(db) is None
        assert await _tables(db) <= {"alembic_version"}
    finally:
        await db.dispose()


async def test_migration_matches_the_models(empty_database_url):
    """The migration creates exactly what schema.py declares (no drift)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    db = Database(empty_database_url)
    try:
        await migrate.upgrade(db)
        async with db.engine.connect() as conn:
            diff = await conn.run_sync(
                lambda c: compare_metadata(MigrationContext.configure(c), metadata)
            )
        assert diff == []
    finally:
        await db.dispose()


async def test_sync_keeps_runtime_state_and_marks_departures(database_url, tmp_path):
    db = Database(database_url)
    try:
        await migrate.upgrade(db)
        council = load_council(EXAMPLES / "council.yaml")
        await sync_council(db, council, NOW)
        async with db.write() as conn:
            await conn.execute(update(people).where(people.c.id == "bob").values(on_duty=False))

        def drop_carol(data: dict) -> None:
            data["people"] = [p for p in data["people"] if p["id"] != "carol"]
            data["teams"][0]["officers"] = ["bob"]

        await sync_council(db, load_council(write_council(tmp_path, drop_carol)), NOW)
        async with db.read() as conn:
            state = {r.id: (r.on_duty, r.active) for r in await conn.execute(select(people))}
            team_rows = (await conn.execute(select(teams))).all()
        assert state["bob"] == (False, True)  # still off duty after a reload
        assert state["carol"] == (True, False)  # kept for history, inactive
        assert {t.code for t in team_rows} == {"sc-north", "sc-south", "green"}
    finally:
        await db.dispose()


def test_database_urls_map_to_async_drivers():
    assert async_url("sqlite:///x.db") == "sqlite+aiosqlite:///x.db"
    assert async_url("postgresql://u:p@h:5432/d") == "postgresql+asyncpg://u:p@h:5432/d"
    assert async_url("postgresql+asyncpg://h/d") == "postgresql+asyncpg://h/d"
    import pytest

    with pytest.raises(ValueError, match="unsupported database 'mysql'"):
        async_url("mysql://h/d")
