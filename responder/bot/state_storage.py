"""Conversation state that survives restarts: one JSON document per conversation key.

Used for the raise-a-task dialog (``dialogs/raise_by_text.py``). Plain JSON, no pickled
SDK classes, so either Teams runtime reads what the other wrote.

Writes are compare-and-set on an etag: a write names the etag it read (or None for "there
was nothing"), and fails with ``EtagConflict`` if someone else wrote meanwhile; each write
stores a fresh etag. The check and the write are one statement, so instances sharing a
PostgreSQL database cannot both win.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from responder.store.db import Database
from responder.store.schema import bot_state


class EtagConflict(KeyError):
    """The item was changed by someone else since it was read (nothing was written)."""


@dataclass(frozen=True)
class Saved:
    document: Any  # what was written (None if the row no longer parses)
    etag: str
    updated_at: datetime


def state_key(channel_id: str | None, conversation_id: str) -> str:
    """A conversation's key (Bot Framework's ConversationState format, as rows always had)."""
    return f"{channel_id or 'msteams'}/conversations/{conversation_id}"


def _parse(document: str) -> Any:
    try:
        return json.loads(document)
    except ValueError:
        return None


class StateStore:
    """Rows of the ``bot_state`` table, one per key."""

    def __init__(self, db: Database, clock: Callable[[], datetime]) -> None:
        self.db = db
        self.clock = clock

    async def read(self, key: str) -> Saved | None:
        def load(conn: Connection) -> Any:
            query = select(bot_state.c.etag, bot_state.c.document, bot_state.c.updated_at)
            return conn.execute(query.where(bot_state.c.key == key)).first()

        row = await self.db.query(load)
        if row is None:
            return None
        return Saved(_parse(row.document), row.etag, row.updated_at)

    async def write(self, key: str, document: Any, expected: str | None) -> str:
        """Store ``document`` if the row's etag is still ``expected`` (None: no row); the
        new etag, or ``EtagConflict`` with nothing written."""
        etag = uuid.uuid4().hex
        values = {
            "etag": etag,
            "document": json.dumps(document, separators=(",", ":")),
            "updated_at": self.clock(),
        }

        def save(conn: Connection) -> None:
            if expected is None:
                insert = (postgresql if conn.dialect.name == "postgresql" else sqlite).insert
                stmt = insert(bot_state).values(key=key, **values).on_conflict_do_nothing()
                changed = conn.execute(stmt).rowcount
            else:
                # On PostgreSQL a concurrent writer waits for the row lock, then sees the
                # new etag and matches nothing.
                changed = conn.execute(
                    update(bot_state)
                    .where(bot_state.c.key == key, bot_state.c.etag == expected)
                    .values(**values)
                ).rowcount
            if not changed:
                raise EtagConflict(key)

        await self.db.run(save)
        return etag

    async def delete(self, key: str, expected: str | None = None) -> bool:
        """Remove the row (only if its etag is ``expected``, when given); whether it went."""

        def remove(conn: Connection) -> bool:
            stmt = delete(bot_state).where(bot_state.c.key == key)
            if expected is not None:
                stmt = stmt.where(bot_state.c.etag == expected)
            return bool(conn.execute(stmt).rowcount)

        return await self.db.run(remove)
