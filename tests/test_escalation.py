"""Escalations, overdue alerts, reminders and reassigning from the manager's card."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from bot_harness import NORTHGATE, Bot, settings_for
from sqlalchemy import update
from support import assert_valid_card

from fakes.teams import personal_conversation
from responder.app import build_app
from responder.commands.escalate import REMIND_BEFORE, run_escalations
from responder.store.schema import outbox, task_events, tasks
from responder.web import db_key, domain_key

CARD = "application/vnd.microsoft.card.adaptive"


@pytest.fixture
async def bot(aiohttp_client, database_url, connector) -> Bot:
    client = await aiohttp_client(build_app(settings_for(database_url)))
    bot = Bot(client, connector)
    await bot.install("alice", "bob", "carol")
    return bot


def words(card: dict) -> str:
    found: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            for key in ("text", "title", "value", "label"):
                if isinstance(node.get(key), str):
                    found.append(node[key])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(card)
    return "\n".join(found)


async def escalate(bot: Bot, window: timedelta = timedelta(minutes=2)):
    """A scheduler run over the last ``window`` of real time (so what it enqueues is due at
    once). Tests age tasks (``age``) instead of moving the clock on."""
    app = bot.client.app
    now = datetime.now(UTC)
    return await run_escalations(app[db_key], app[domain_key].council, now, now - window)


async def age(bot: Bot, task_id: int, by: timedelta) -> None:
    """Move a task's creation and due times back, as if it had waited ``by`` already."""
    row = await task_row(bot, task_id)
    async with bot.client.app[db_key].write() as conn:
        await conn.execute(
            update(tasks)
            .where(tasks.c.id == task_id)
            .values(created_at=row.created_at - by, due_at=row.due_at - by)
        )


async def task_row(bot: Bot, task_id: int):
    [row] = await bot.rows(tasks, tasks.c.id == task_id)
    return row


async def test_urgent_task_unaccepted_is_escalated_once_to_the_manager(bot):
    task = await bot.report("needles")  # urgent: escalates after 30 minutes
    await age(bot, task["id"], timedelta(minutes=27))
    found = await escalate(bot)  # its 30 minutes end after this window
    assert found.unaccepted == 0
    await age(bot, task["id"], timedelta(minutes=4))
    found = await escalate(bot)  # the window in which the 30 minutes passed
    assert found.unaccepted == 1
    [sent] = await bot.card_for("alice")
    text = words(sent.card)
    assert "Escalated: not accepted within 30 minutes." in text
    assert task["reference"] in text
    assert "Reassign" in text and "Carol Warden" in text  # the on-duty officers to choose
    # The same window again (another instance, a retry): nothing new.
    await escalate(bot)
    await bot.settle()
    rows = await bot.rows(outbox)
    keys = [r.idempotency_key for r in rows if r.idempotency_key.startswith("escalate")]
    assert keys == [f"escalate:{task['id']}:alice"]
    # Later windows: nothing either.
    await age(bot, task["id"], timedelta(minutes=10))
    assert (await escalate(bot)).unaccepted == 0


async def test_high_priority_waits_longer_and_normal_never_escalates(bot):
    high = await bot.report("fly-tipping")  # high: 240 minutes
    normal = await bot.report("litter", at=(51.9060, 0.8880))
    for t in (high, normal):
        await age(bot, t["id"], timedelta(minutes=200))
    assert (await escalate(bot, timedelta(minutes=60))).unaccepted == 0
    for t in (high, normal):
        await age(bot, t["id"], timedelta(minutes=41))
    assert (await escalate(bot)).unaccepted == 1
    keys = {r.idempotency_key for r in await bot.rows(outbox)}
    assert f"escalate:{high['id']}:alice" in keys
    assert not any(k.startswith(f"escalate:{normal['id']}:") for k in keys)


async def test_an_accepted_task_is_not_escalated(bot):
    task = await bot.report("needles")
    await bot.click("bob" if task["assignee"] == "bob" else "carol", "accept", task)
    await age(bot, task["id"], timedelta(minutes=31))
    assert (await escalate(bot)).unaccepted == 0


async def test_overdue_alerts_managers_and_assignee_is_reminded_before(bot):
    task = await bot.report("needles")
    officer = task["assignee"]
    await bot.click(officer, "accept", task)
    due = (await task_row(bot, task["id"])).due_at
    # The reminder: age it until "an hour before due" has just passed.
    until_due = due - datetime.now(UTC)
    await age(bot, task["id"], until_due - REMIND_BEFORE + timedelta(minutes=1))
    found = await escalate(bot)
    assert (found.reminders, found.overdue) == (1, 0)
    conv = personal_conversation(officer)
    [reminder] = await bot.connector.wait_for(
        lambda r: r.conversation_id == conv and r.card and "Reminder: " in words(r.card)
    )
    assert_valid_card(reminder.card)
    # The priority, and how long is left, beside the clock time.
    assert re.search(
        r"Reminder: \U0001f534 Urgent priority, due in (5[789]|60) min "
        r"\(\w{3} \d{1,2} \w{3}, \d\d:\d\d\)\.",
        words(reminder.card),
    ), words(reminder.card)
    # Overdue: the window in which the due time passes alerts alice once.
    await age(bot, task["id"], REMIND_BEFORE)
    found = await escalate(bot)
    assert (found.reminders, found.overdue) == (0, 1)
    [alert] = await bot.card_for("alice")
    # When it fell due, in the cards' one date format, in the alert's own line.
    assert re.search(
        r"Overdue: it was due \w{3} \d{1,2} \w{3}, \d\d:\d\d and is not done yet\.",
        words(alert.card),
    ), words(alert.card)
    # How late, under the title (and current whenever the card is opened again).
    assert re.search(r"Overdue: (under a minute|\d+ min) late · was due ", words(alert.card))
    # A manager who does not hold the task is not offered "Hand back".
    assert "Hand back" not in words(alert.card)
    assert '"verb": "handback"' not in json.dumps(alert.card)
    opened = (await bot.click("alice", "refresh", task, version=2))["value"]
    assert "Hand back" not in words(opened) and "Add update" in words(opened)
    held = (await bot.click(officer, "refresh", task, version=2))["value"]
    assert "Hand back" in words(held)


async def test_manager_reassigns_from_the_escalation_card(bot):
    task = await bot.report("needles")
    first = task["assignee"]
    other = "carol" if first == "bob" else "bob"
    await age(bot, task["id"], timedelta(minutes=31))
    await escalate(bot)
    await bot.card_for("alice")
    [old_copy] = await bot.card_for(first)

    # An officer may not reassign; nothing changes.
    body = await bot.click(first, "reassign", task, officer=other)
    assert "Only a manager" in words(body["value"])
    assert (await task_row(bot, task["id"])).assignee == first

    body = await bot.click("alice", "reassign", task, officer=other)
    name = "Carol Warden" if other == "carol" else "Bob Warden"
    assert f"Reassigned to {name}" in words(body["value"])
    assert (await task_row(bot, task["id"])).assignee == other
    [new_card] = await bot.card_for(other)
    assert task["reference"] in words(new_card.card)
    # The old officer's copy is updated in place (PUT to the same activity).
    updated = await bot.connector.wait_for(
        lambda r: r.method == "PUT" and r.activity_id == old_copy.activity_id
    )
    assert "Accept" not in words(updated[-1].card)
    [event] = await bot.rows(
        task_events, task_events.c.task_id == task["id"], task_events.c.action == "reassign"
    )
    assert (event.actor, event.data) == ("alice", {"from": first, "to": other})


async def test_reassign_by_a_manager_of_another_team_is_refused(bot):
    await bot.install("frank")
    task = await bot.report("needles", at=NORTHGATE)
    body = await bot.click("frank", "reassign", task, officer="carol")
    # Not his team's task: not even visible to him, so the answer for a task not there.
    assert body["statusCode"] == 404 and task["reference"] not in str(body)
    assert body == await bot.click("frank", "reassign", {"id": 10**6}, officer="carol")
    assert (await task_row(bot, task["id"])).assignee == task["assignee"]
