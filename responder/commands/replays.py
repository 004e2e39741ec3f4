"""Signed form posts are accepted once: the replay guard (``intake_replays``).

A form source that signs its posts (``auth: hmac``, docs/intake-forms.md) sends a timestamp
and an HMAC-SHA256 signature of ``timestamp + "." + body``. A signature is good only inside
the timestamp window, so remembering each accepted signature until its window closes is
enough to refuse the same request sent again. The signature is claimed in the same
transaction as the task it creates (``create_task(first=...)``): a post that fails for
any reason leaves no claim behind, so the sender may send it again; a post that succeeded
can never be accepted twice, even by two instances at once (the digest is the key).
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import Connection, delete
from sqlalchemy.dialects import postgresql, sqlite

from responder.commands.create import create_task
from responder.domain.context import Domain
from responder.domain.records import CreateResult, NewReport
from responder.store.db import Database
from responder.store.schema import intake_replays

_CLAIM = {
    name: dialect.insert(intake_replays).on_conflict_do_nothing(index_elements=["digest"])
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}


class Replayed(Exception):
    """This signed request was accepted before (inside its window). Nothing was written."""


def replay_digest(source: str, signature: str) -> str:
    """What is remembered of a signed request: SHA-256 hex of its source and signature."""
    return hashlib.sha256(f"{source}\n{signature.lower()}".encode()).hexdigest()


def claim(conn: Connection, source: str, digest: str, expires_at: datetime, now: datetime) -> None:
    """Remember ``digest`` until ``expires_at``; Replayed if it is remembered already.

    Rows whose window has closed are deleted first: a signature past its window is refused
    by its timestamp, so nothing older is worth keeping. (At exactly ``expires_at`` the
    signature is still good, so its row stays until the moment after.)
    """
    conn.execute(delete(intake_replays).where(intake_replays.c.expires_at < now))
    done = conn.execute(
        _CLAIM[conn.dialect.name],
        {"digest": digest, "source": source, "expires_at": expires_at},
    )
    if done.rowcount != 1:
        raise Replayed(source)


async def create_signed_task(
    db: Database,
    domain: Domain,
    report: NewReport,
    now: datetime,
    *,
    digest: str,
    expires_at: datetime,
) -> CreateResult:
    """``create_task`` for a signed post: the claim and the task commit together, or
    neither does. Raises Replayed (nothing written) for a request accepted before."""

    def first(conn: Connection) -> None:
        claim(conn, report.source, digest, expires_at, now)

    return await create_task(db, domain, report, now, first=first)
