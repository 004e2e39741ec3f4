"""Constants and helpers shared by the tests (importable, unlike conftest)."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import yaml
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
# The PostgreSQL server the tests use, named by a database on it to connect to for creating
# the run's own database. RESPONDER_TEST_PG=off runs the SQLite half only (for a machine
# without PostgreSQL).
PG_SERVER = os.environ.get("RESPONDER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
# Each run (each process, so each xdist worker too) has a database of its own on that
# server, created when a test first needs it and dropped when the run ends: two runs on one
# machine never reset each other's schema. PG_URL names it.
PG_DATABASE = f"test_{os.getpid()}_{secrets.token_hex(4)}"
PG_URL = (
    "off"
    if PG_SERVER == "off"
    else make_url(PG_SERVER).set(database=PG_DATABASE).render_as_string(hide_password=False)
)
INTAKE_SECRET = "test-secret-forms"
AUTH = {"Authorization": f"Bearer {INTAKE_SECRET}"}

BACKENDS = ["sqlite"] if PG_URL == "off" else ["sqlite", "postgresql"]


_pg_created = False


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def _server_dsn() -> str:
    return _dsn(PG_SERVER)


async def create_pg_database() -> None:
    """Create this run's database (PG_URL) the first time it is asked for."""
    global _pg_created
    if _pg_created or PG_URL == "off":
        return
    import asyncpg

    conn = await asyncpg.connect(_server_dsn())
    try:
        await conn.execute(f'CREATE DATABASE "{PG_DATABASE}"')
    finally:
        await conn.close()
    _pg_created = True


def drop_pg_database() -> None:
    """Drop this run's database, if it was created (at the end of the run)."""
    global _pg_created
    if not _pg_created:
        return
    import asyncpg

    async def drop() -> None:
        conn = await asyncpg.connect(_server_dsn())
        try:
            # FORCE: a connection a test left open must not keep the database alive.
            await conn.execute(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(drop())
    _pg_created = False


# Migrated templates (conftest's ``database_url``): each process (each xdist worker) runs
# the current migrations once, on a SQLite file and on its PostgreSQL database, and every
# test then gets a copy of the result instead of migrating an empty database itself, which
# was most of the suite's time. The app still runs upgrade() on start and finds the copy at
# head. tests/test_store.py migrates an empty database (``empty_database_url``) on each
# backend, so the migrations themselves stay tested.


async def _migrate(url: str) -> None:
    from responder.store import migrate
    from responder.store.db import Database

    db = Database(url)
    try:
        await migrate.upgrade(db)
    finally:
        await db.dispose()


def migrated_sqlite(path: Path) -> Path:
    """A SQLite file at ``path`` brought to head by the migrations."""
    asyncio.run(_migrate(f"sqlite:///{path}"))
    # The last connection closed checkpointed the WAL: the file alone is the database.
    assert not path.with_name(path.name + "-wal").exists()
    return path


def migrated_postgres() -> str:
    """SQL that rebuilds this run's database (PG_URL) as the migrations leave an empty one:
    the migrations are run on it, then pg_dump (the server's own, from the same major
    version) writes out its public schema and the rows they made (alembic_version's)."""
    asyncio.run(_rebuild_public())
    asyncio.run(_migrate(PG_URL))
    dump = subprocess.run(
        ["pg_dump", "--schema=public", "--inserts", "--no-owner", "--no-privileges", _dsn(PG_URL)],
        capture_output=True,
        text=True,
        check=True,
    )
    # Lines like \restrict are psql's meta-commands, not SQL for the server.
    return "\n".join(line for line in dump.stdout.splitlines() if not line.startswith("\\"))


async def _rebuild_public(template: str = "CREATE SCHEMA public") -> None:
    """This run's database (PG_URL, created if need be) with its public schema dropped and
    made again by ``template``, in one transaction: empty by default."""
    import asyncpg

    await create_pg_database()
    conn = await asyncpg.connect(_dsn(PG_URL))
    try:
        async with conn.transaction():
            await conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
            await conn.execute(template)
    finally:
        await conn.close()


def restore_postgres(template: str) -> None:
    """This run's database as ``migrated_postgres()`` found it after the migrations."""
    asyncio.run(_rebuild_public(template))


def write_council(tmp_path: Path, change: Callable[[dict], None] | None = None) -> Path:
    """A copy of the example council, changed by ``change``, with its wards beside it."""
    data = yaml.safe_load((EXAMPLES / "council.yaml").read_text())
    if change is not None:
        change(data)
    folder = tmp_path / "council"
    folder.mkdir(exist_ok=True)
    shutil.copy(EXAMPLES / "wards.geojson", folder / "wards.geojson")
    path = folder / "council.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


# Copies of ../shared/schemas (MIT, unchanged), so the suite runs from any clone;
# test_schemas_match_shared keeps them identical to the shared ones.
SCHEMAS = Path(__file__).resolve().parent / "schemas"


_card_validators: dict[str, object] = {}


def _card_schema_path() -> Path:
    """The suite's copy (tests/schemas) if present, else the shared one beside the repo."""
    name = "adaptive-card-1.5.json"
    local = Path(__file__).resolve().parent / "schemas" / name
    if local.exists():
        return local
    return Path(__file__).resolve().parents[2] / "shared" / "schemas" / name


def assert_valid_card(card: dict) -> None:
    """Fail unless ``card`` is a valid Adaptive Card 1.5 (schemas/adaptive-card-1.5.json).

    The validator follows the schema's own ``$schema`` draft (draft-06).
    """
    import json

    import jsonschema

    if "1.5" not in _card_validators:
        schema = json.loads(_card_schema_path().read_text())
        _card_validators["1.5"] = jsonschema.validators.validator_for(schema)(schema)
    validator = _card_validators["1.5"]
    errors = [
        f"{'/'.join(map(str, e.absolute_path)) or '(card)'}: {e.message}"
        for e in validator.iter_errors(card)  # type: ignore[attr-defined]
    ]
    assert not errors, "invalid Adaptive Card:\n" + "\n".join(errors[:20])
    assert card.get("type") == "AdaptiveCard", card.get("type")
    assert card.get("version") == "1.5", card.get("version")
    json.dumps(card)  # plain JSON data: nothing the bot could not send


def card_words(card: dict) -> str:
    """All the words on a card (texts, titles, values, labels, placeholders), one a line,
    for asserting what a person sees."""
    found: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            for key in ("text", "title", "value", "label", "placeholder"):
                if isinstance(node.get(key), str):
                    found.append(node[key])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(card)
    return "\n".join(found)
