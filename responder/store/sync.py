"""Mirror the council file's people, teams and wards into the database.

The file is the source of truth for who exists; the database keeps what changes at run
time (who is on duty, the round-robin cursor) and keeps departed people and teams, marked
inactive, so history still names them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select, update

from responder.config.model import Council
from responder.store.db import Database
from responder.store.schema import people, teams, wards


async def sync_council(db: Database, council: Council, now: datetime) -> None:
    async with db.write() as conn:
        known = set((await conn.execute(select(people.c.id))).scalars())
        # Free AAD ids first so a file that moves an id between people does not collide.
        await conn.execute(update(people).values(aad_object_id=None, active=False))
        for p in council.file.people:
            values = {
                "name": p.name,
                "role": p.role,
                "active": True,
                "updated_at": now,
                "aad_object_id": p.aad_object_id.lower() if p.aad_object_id else None,
            }
            if p.id in known:
                await conn.execute(update(people).where(people.c.id == p.id).values(values))
            else:
                await conn.execute(insert(people).values(id=p.id, on_duty=True, **values))

        known = set((await conn.execute(select(teams.c.code))).scalars())
        await conn.execute(update(teams).values(active=False))
        for t in council.file.teams:
            values = {"name": t.name, "routing": t.routing, "active": True}
            if t.code in known:
                await conn.execute(update(teams).where(teams.c.code == t.code).values(values))
            else:
                await conn.execute(insert(teams).values(code=t.code, **values))

        known = set((await conn.execute(select(wards.c.name))).scalars())
        await conn.execute(update(wards).values(active=False))
        for w in council.wards:
            if w.name in known:
                await conn.execute(update(wards).where(wards.c.name == w.name).values(active=True))
            else:
                await conn.execute(insert(wards).values(name=w.name, active=True))
