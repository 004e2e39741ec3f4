"""Typed outbox messages: every kind round-trips, and a payload that is not its kind's is
parked at once with the reason (not retried for a day)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from bot_harness import Bot, settings_for
from sqlalchemy import select

from responder.app import build_app, dispatcher_key
from responder.messages import (
    FALLBACK_SUFFIX,
    KINDS,
    CardRefresh,
    DigestDelivery,
    Notice,
    PhotoFetch,
    ResidentUpdate,
    TaskCard,
    UnreadablePayload,
    WebhookEvent,
)
from responder.store.outbox import enqueue, outbox_row
from responder.store.schema import outbox
from responder.web import db_key

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)

# One row of each kind, as producers make them, with the key each must have.
ROWS = [
    (TaskCard.to_person(7, "bob", 3, NOW), "card:7:bob:3"),
    (TaskCard.to_team(7, "sc-north", 3, NOW), "card:7:team:sc-north:3"),
    (TaskCard.alert_to(7, "alice", "Escalated", "escalate", NOW), "escalate:7:alice"),
    (CardRefresh.of(7, 4, NOW), "refresh:7:4"),
    (Notice.status_change(7, 4, "cllr-hughes", "accepted", NOW), "notice:7:4:cllr-hughes"),
    (
        Notice.due_soon(7, "bob", NOW + timedelta(hours=1), NOW),
        "remind:7:2026-11-23T10:00:00+00:00",
    ),
    (
        DigestDelivery.to(2, "sc-north", NOW, "alice", NOW),
        "digest:sc-north:2026-11-23T09:00:00+00:00:person:alice",
    ),
    (
        DigestDelivery.to(2, "sc-north", NOW, None, NOW),
        "digest:sc-north:2026-11-23T09:00:00+00:00:channel:sc-north",
    ),
    (
        ResidentUpdate(
            report_id=5, task_id=7, event="received", channel="sms", template_id="t"
        ).owed(NOW),
        "notify:5:received:sms",
    ),
    (
        PhotoFetch.of(
            7, "fixmystreet", "https://fms.example/p/1.jpeg", "photo:report:5:0", NOW, report_id=5
        ),
        "photo:report:5:0",
    ),
    (WebhookEvent.to("backoffice", 41, 7, NOW), "webhook:backoffice:41"),
]


@pytest.mark.parametrize(("row", "key"), ROWS, ids=[k for _, k in ROWS])
def test_every_kind_round_trips(row, key):
    assert row["idempotency_key"] == key
    kind = KINDS[row["kind"]]
    message = kind.read(row["payload"])
    assert message.row(key, NOW, row["task_id"])["payload"] == row["payload"]
    assert {type(KINDS[r["kind"]].read(r["payload"])) for r, _ in ROWS} == set(KINDS.values())


def test_the_notify_key_is_what_receipts_look_for():
    update = ResidentUpdate(
        report_id=5, task_id=7, event="completed", channel="email", template_id="t"
    )
    assert update.owed(NOW)["idempotency_key"] == ResidentUpdate.key(5, "completed", "email")
    fallback = update.fallback("notify:5:completed:sms", NOW)
    assert fallback["idempotency_key"] == "notify:5:completed:sms" + FALLBACK_SUFFIX


@pytest.mark.parametrize(
    ("kind", "payload"),
    [
        (TaskCard, {"person": "bob"}),  # no task
        (TaskCard, {"task_id": "7"}),  # a string is not an id
        (CardRefresh, {"task_id": 7}),  # no version
        (Notice, {"task_id": 7, "person": "bob", "colour": "red"}),  # a field no kind has
        (ResidentUpdate, {"report_id": 1, "task_id": 1, "event": "x", "channel": "sms"}),
        (DigestDelivery, None),
    ],
)
def test_a_payload_that_is_not_its_kinds_is_unreadable(kind, payload):
    with pytest.raises(UnreadablePayload) as refused:
        kind.read(payload)
    assert kind.KIND in str(refused.value)


async def test_an_unreadable_row_is_parked_at_once_with_the_reason(
    aiohttp_client, database_url, connector
):
    client = await aiohttp_client(build_app(settings_for(database_url)))
    bot = Bot(client, connector)
    await bot.install("bob")
    task = await bot.report()
    db = client.app[db_key]
    now = datetime.now(UTC)
    bad = outbox_row("teams.card", "card:broken", {"task_id": "not an id"}, now, task["id"])

    await db.run(lambda conn: enqueue(conn, [bad]))
    client.app[dispatcher_key].wake()
    for _ in range(200):
        async with db.read() as conn:
            row = (
                await conn.execute(select(outbox).where(outbox.c.idempotency_key == "card:broken"))
            ).one()
        if row.status != "pending":
            break
        await asyncio.sleep(0.05)
    assert row.status == "parked" and row.attempts == 1
    assert "unreadable teams.card payload" in row.last_error
    await bot.card_for("bob")  # the good card of the same task still went
