"""Queueing managers' digests: record the period and owe the message to each recipient.

One transaction per team; the same slot again finds its digest recorded and sends
nothing twice. What a digest says is read when it is sent (``queries/digest.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

from sqlalchemy import Connection, func, insert, select

from responder.domain.context import Domain
from responder.domain.digest import UnknownTeam
from responder.messages import DigestDelivery
from responder.queries.digest import DEFAULT_PERIOD
from responder.store.db import Database
from responder.store.outbox import enqueue
from responder.store.schema import digests
from responder.store.teams_state import team_channel


@dataclass(frozen=True)
class QueuedDigest:
    """What ``enqueue_digest`` wrote (or found already written for this slot)."""

    digest_id: int
    team: str
    since: datetime
    until: datetime
    managers: tuple[str, ...]  # person ids with a message owed
    channel: str | None  # the team's linked channel now (None: the channel row will say so)
    repeat: bool  # this slot had been queued before: nothing new is sent


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("naive datetime given for a digest period")
    return moment.astimezone(UTC)


def enqueue_digest(
    conn: Connection,
    domain: Domain,
    team_code: str,
    since: datetime | None,
    until: datetime,
    now: datetime,
) -> QueuedDigest:
    """Record the digest of [since, until) for the team and owe it to each manager and the
    team's channel, in the caller's transaction.

    ``since`` None: from the end of the team's previous digest (or 24 hours before
    ``until`` for the first). The same ``until`` again finds the digest already recorded
    and sends nothing twice.
    """
    team = domain.council.team(team_code)
    if team is None:
        raise UnknownTeam(team_code)
    until = _utc(until)
    existing = conn.execute(
        select(digests.c.id, digests.c.period_start)
        .where(digests.c.team == team_code, digests.c.period_end == until)
        .order_by(digests.c.id)
        .limit(1)
    ).first()
    if existing is not None:
        digest_id, since, repeat = existing.id, existing.period_start, True
    else:
        if since is None:
            previous = conn.execute(
                select(func.max(digests.c.period_end)).where(
                    digests.c.team == team_code, digests.c.period_end < until
                )
            ).scalar_one_or_none()
            since = previous if previous is not None else until - DEFAULT_PERIOD
        since = _utc(since)
        if since >= until:
            raise ValueError(f"the digest period must end after it starts ({since} >= {until})")
        digest_id = conn.execute(
            insert(digests).returning(digests.c.id),
            {"team": team_code, "period_start": since, "period_end": until, "created_at": now},
        ).scalar_one()
        repeat = False
    recipients: list[str | None] = [*team.managers, None]  # None: the team's channel
    enqueue(conn, [DigestDelivery.to(digest_id, team_code, until, p, now) for p in recipients])
    return QueuedDigest(
        digest_id=digest_id,
        team=team_code,
        since=since,
        until=until,
        managers=tuple(team.managers),
        channel=team_channel(conn, team_code),
        repeat=repeat,
    )


def _enqueue_now(conn: Connection, *, domain: Domain, team: str, now: datetime) -> QueuedDigest:
    """The digest up to ``now`` since the team's last one (a partial, for ``db.run``)."""
    return enqueue_digest(conn, domain, team, None, now, now)


async def send_digests(
    db: Database, domain: Domain, now: datetime, team: str | None = None
) -> list[QueuedDigest]:
    """Queue the digest up to ``now`` for every team of the council file (or just ``team``).

    ``now`` is the slot: the scheduler passes the scheduled time, so running the same slot
    again (another instance, a restart) sends nothing twice. One transaction per team.
    ``UnknownTeam`` for a team code the council file does not have.
    """
    council = domain.council
    if team is not None and council.team(team) is None:
        raise UnknownTeam(team)
    codes = [team] if team is not None else [t.code for t in council.file.teams]
    queued = []
    for code in codes:
        queued.append(await db.run(partial(_enqueue_now, domain=domain, team=code, now=now)))
    return queued
