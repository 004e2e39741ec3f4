"""botbuilder's ``Storage`` on our database: dialog and user state that survives restarts.

Items are serialised as botbuilder-azure's Cosmos DB and Blob storages do: jsonpickle's
``Pickler().flatten`` (class names kept, so a ``DialogState`` comes back as one) without
the ``e_tag``, then JSON; reading restores with ``Unpickler`` and puts the row's etag back.
Documents are only ever ones this class wrote, so restoring classes from them is safe.

eTags follow botbuilder's contract (``MemoryStorage``): an item carrying an ``e_tag``
other than ``"*"`` is written only if it matches the stored one, else ``EtagConflict``
(a ``KeyError``, as ``MemoryStorage`` raises); ``"*"`` or no ``e_tag`` overwrites. Each
write stores a fresh etag. The check and the write are one statement, so instances
sharing a PostgreSQL database cannot both win.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from botbuilder.core import Storage
from jsonpickle.pickler import Pickler
from jsonpickle.unpickler import Unpickler
from sqlalchemy import Connection, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from responder.store.db import Database
from responder.store.schema import bot_state


class EtagConflict(KeyError):
    """The item was changed by someone else since it was read (nothing was written)."""


def _etag_of(item: object) -> str | None:
    if isinstance(item, dict):
        return item.get("e_tag")
    return getattr(item, "e_tag", None)


def _dump(item: object) -> str:
    document = Pickler().flatten(item)
    if isinstance(document, dict):
        document.pop("e_tag", None)  # the etag lives in its own column
    return json.dumps(document, separators=(",", ":"))


def _load(document: str, etag: str) -> object:
    data = json.loads(document)
    if isinstance(data, dict):
        data["e_tag"] = etag  # restored as a dict key or an attribute, as it was written
    return Unpickler().restore(data)


class DatabaseStorage(Storage):
    """Bot state in the ``bot_state`` table, one row per storage key."""

    def __init__(self, db: Database, clock: Callable[[], datetime]) -> None:
        super().__init__()
        self.db = db
        self.clock = clock

    async def read(self, keys: list[str]) -> dict[str, object]:
        if not keys:
            return {}
        wanted = list(keys)

        def load(conn: Connection) -> list[Any]:
            query = select(bot_state.c.key, bot_state.c.etag, bot_state.c.document)
            return list(conn.execute(query.where(bot_state.c.key.in_(wanted))))

        rows = await self.db.query(load)
        return {row.key: _load(row.document, row.etag) for row in rows}

    async def write(self, changes: dict[str, object]) -> None:
        if changes is None:
            raise Exception("Changes are required when writing")
        if not changes:
            return
        now = self.clock()
        # Serialise here, not in the writer thread: items are the caller's live objects.
        rows = []
        for key, item in changes.items():
            etag = _etag_of(item)
            if etag == "":
                raise Exception("DatabaseStorage.write(): etag missing")
            rows.append((key, None if etag == "*" else etag, _dump(item)))

        def save(conn: Connection) -> None:
            insert = (postgresql if conn.dialect.name == "postgresql" else sqlite).insert
            # One transaction: a conflict on any item leaves every item as it was.
            for key, expected, document in rows:
                values = {"etag": uuid.uuid4().hex, "document": document, "updated_at": now}
                stmt = insert(bot_state).values(key=key, **values)
                if expected is None:
                    conn.execute(stmt.on_conflict_do_update(index_elements=["key"], set_=values))
                    continue
                # Compare-and-set in one statement: on PostgreSQL a concurrent writer waits
                # for the row lock, then sees the new etag and matches nothing.
                changed = conn.execute(
                    update(bot_state)
                    .where(bot_state.c.key == key, bot_state.c.etag == expected)
                    .values(**values)
                ).rowcount
                # Nothing stored yet writes anyway (MemoryStorage does); a row that exists,
                # or appears meanwhile from another instance, is a conflict, not an error.
                if not changed and not conn.execute(stmt.on_conflict_do_nothing()).rowcount:
                    raise EtagConflict(f"Etag conflict on {key!r}: {expected} is not current")

        await self.db.run(save)

    async def delete(self, keys: list[str]) -> None:
        if not keys:
            return
        doomed = list(keys)
        await self.db.run(
            lambda conn: conn.execute(delete(bot_state).where(bot_state.c.key.in_(doomed)))
        )
