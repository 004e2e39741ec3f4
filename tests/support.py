"""Constants and helpers shared by the tests (importable, unlike conftest)."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
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


def _server_dsn() -> str:
    return PG_SERVER.replace("postgresql+asyncpg://", "postgresql://", 1)


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
