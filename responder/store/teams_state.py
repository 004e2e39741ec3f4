"""What the Teams edge remembers: how to reach people and channels, and the cards it sent."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update
from sqlalchemy.dialects import postgresql, sqlite

from responder.store.schema import conversations, deliveries, people, teams


@dataclass(frozen=True)
class Address:
    key: str
    conversation_id: str
    service_url: str


@dataclass(frozen=True)
class SentCard:
    recipient: str
    conversation_id: str
    service_url: str
    activity_id: str
    version: int


def _upsert(conn: Connection, table, index: list[str]):
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table), index


def save_conversation(conn: Connection, key: str, reference: dict[str, Any], now: datetime) -> None:
    values = {
        "key": key,
        "conversation_id": reference["conversation"]["id"],
        "service_url": reference["serviceUrl"],
        "tenant_id": (reference["conversation"].get("tenantId") or None),
        "bot_id": (reference.get("bot") or {}).get("id"),
        "reference": reference,
        "updated_at": now,
    }
    stmt, index = _upsert(conn, conversations, ["key"])
    stmt = stmt.values(values)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=index, set_={k: stmt.excluded[k] for k in values if k != "key"}
        )
    )


def address(conn: Connection, key: str) -> Address | None:
    row = (
        conn.execute(
            select(conversations.c.conversation_id, conversations.c.service_url).where(
                conversations.c.key == key
            )
        )
    ).first()
    return Address(key, row.conversation_id, row.service_url) if row else None


def set_teams_user_id(conn: Connection, person_id: str, teams_user_id: str) -> None:
    conn.execute(
        update(people)
        .where(people.c.id == person_id, people.c.teams_user_id.is_distinct_from(teams_user_id))
        .values(teams_user_id=teams_user_id)
    )


def teams_user_ids(conn: Connection, person_ids: list[str]) -> dict[str, str]:
    if not person_ids:
        return {}
    rows = conn.execute(
        select(people.c.id, people.c.teams_user_id).where(
            people.c.id.in_(person_ids), people.c.teams_user_id.is_not(None)
        )
    )
    return {r.id: r.teams_user_id for r in rows}


def link_channel(conn: Connection, team_code: str, channel_key: str) -> None:
    conn.execute(update(teams).where(teams.c.code == team_code).values(channel=channel_key))


def team_channel(conn: Connection, team_code: str) -> str | None:
    return (
        conn.execute(select(teams.c.channel).where(teams.c.code == team_code))
    ).scalar_one_or_none()


def sent_cards(conn: Connection, task_id: int) -> list[SentCard]:
    rows = conn.execute(
        select(
            deliveries.c.recipient,
            deliveries.c.conversation_id,
            deliveries.c.service_url,
            deliveries.c.activity_id,
            deliveries.c.version,
        ).where(deliveries.c.task_id == task_id)
    )
    return [SentCard(*r) for r in rows]


def record_card(conn: Connection, task_id: int, card: SentCard, now: datetime) -> None:
    values = {
        "task_id": task_id,
        "recipient": card.recipient,
        "conversation_id": card.conversation_id,
        "service_url": card.service_url,
        "activity_id": card.activity_id,
        "version": card.version,
        "created_at": now,
        "updated_at": now,
    }
    stmt, index = _upsert(conn, deliveries, ["task_id", "recipient"])
    stmt = stmt.values(values)
    changed = ("conversation_id", "service_url", "activity_id", "version", "updated_at")
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=index, set_={k: stmt.excluded[k] for k in changed}
        )
    )
