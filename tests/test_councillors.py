"""Councillors (and staff) chatting with the bot, through /api/messages and a fake connector."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from bot_harness import NORTHGATE, Bot, settings_for
from sqlalchemy import update
from support import assert_valid_card
from support import card_words as words

from fakes.teams import card_action, message, personal_conversation
from responder.app import build_app
from responder.store.schema import follows, tasks
from responder.web import db_key

SOUTHMERE = (51.8850, 0.8850)
CARD = "application/vnd.microsoft.card.adaptive"


@pytest.fixture
async def bot(aiohttp_client, database_url, connector) -> Bot:
    client = await aiohttp_client(build_app(settings_for(database_url)))
    bot = Bot(client, connector)
    await bot.install("cllr-hughes", "cllr-patel", "bob", "carol", "alice")
    return bot


async def ask(bot: Bot, person: str, text: str) -> tuple[str, list[dict]]:
    """Send a message; the text and the (validated) cards the bot answered with."""
    before = len(bot.connector.received)
    resp = await bot.send(message(person, text, bot.url))
    assert resp.status == 200, await resp.text()
    # Replies are sent before the turn's 200; cards for others may arrive meanwhile.
    conv = personal_conversation(person)
    new = [r for r in bot.connector.received[before:] if r.conversation_id == conv]
    assert new, f"no answer to {text!r}"
    cards = [r.card for r in new if r.card is not None]
    for card in cards:
        assert_valid_card(card)
    return "\n".join(r.text or "" for r in new if r.text), cards


async def click(bot: Bot, person: str, verb: str, data: dict) -> dict:
    resp = await bot.send(card_action(person, verb, data, bot.url))
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["statusCode"] == 200, body
    assert body["type"] == CARD
    assert_valid_card(body["value"])
    return body["value"]


DATE = r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun) \d{1,2} [A-Z][a-z]{2}( \d{4})?, \d\d:\d\d"


# -- my cases ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "phrase",
    ["status of my cases", "My cases", "my cases?", "staus of my cases", "  STATUS OF MY CASES!"],
)
async def test_my_cases_phrasings(bot, phrase):
    task = await bot.report()
    await click(bot, "cllr-hughes", "follow", {"taskId": task["id"]})
    _, [card] = await ask(bot, "cllr-hughes", phrase)
    text = words(card)
    assert "Your cases" in text and task["reference"] in text
    assert "With an officer" in text  # status, in words
    assert "Due " in text and "Reported" in text  # due time and the last public event


async def test_my_cases_newest_first_and_only_mine(bot):
    first = await bot.report(at=NORTHGATE)
    second = await bot.report("graffiti", at=(51.9060, 0.8880))
    await bot.report("litter", at=(51.9040, 0.8860))  # not followed
    for t in (first, second):
        await click(bot, "cllr-hughes", "follow", {"taskId": t["id"]})
    _, [card] = await ask(bot, "cllr-hughes", "my cases")
    text = words(card)
    assert text.index(second["reference"]) < text.index(first["reference"])
    assert set(re.findall(r"RSP-\d+", text)) == {first["reference"], second["reference"]}


async def test_no_cases_yet(bot):
    _, [card] = await ask(bot, "cllr-hughes", "my cases")
    assert "You don't follow any cases yet" in words(card)


# -- ward summary --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "phrase",
    ["what's open in Northgate", "whats open in northgate?", "Northgate summary", "northgate"],
)
async def test_ward_summary_counts_match_the_tasks(bot, phrase):
    made = [
        await bot.report("fly-tipping", at=(51.9051, 0.8873)),
        await bot.report("fly-tipping", at=(51.9061, 0.8883)),
        await bot.report("graffiti", at=(51.9041, 0.8863)),
    ]
    await bot.report("fly-tipping", at=SOUTHMERE)  # another ward: not counted
    # One of them is overdue.
    async with bot.client.app[db_key].write() as conn:
        await conn.execute(
            update(tasks)
            .where(tasks.c.id == made[2]["id"])
            .values(due_at=datetime.now(UTC) - timedelta(hours=3))
        )
    _, [card] = await ask(bot, "cllr-hughes", phrase)
    text = words(card)
    assert "Northgate: 3 open cases" in text
    assert "Overdue: 1" in text
    # Overdue first: the graffiti task is listed before the others.
    assert text.index(made[2]["reference"]) < text.index(made[0]["reference"])
    by_type = card["body"]
    facts = {
        f["title"]: f["value"]
        for block in by_type
        if block["type"] == "FactSet"
        for f in block["facts"]
    }
    assert facts["Fly-tipping"] == "2" and facts["Graffiti"] == "1"
    assert facts["Assigned, not yet accepted"] == "3"


async def test_ward_summary_counts_each_open_task_once(bot):
    made = [await bot.report("fly-tipping", at=(51.9051 + i * 0.001, 0.8873)) for i in range(4)]
    owner = {t["id"]: t["assignee"] for t in made}
    await click(bot, owner[made[0]["id"]], "accept", {"taskId": made[0]["id"], "version": 1})
    await click(bot, owner[made[1]["id"]], "accept", {"taskId": made[1]["id"], "version": 1})
    await click(bot, owner[made[1]["id"]], "start", {"taskId": made[1]["id"], "version": 2})
    _, [card] = await ask(bot, "cllr-hughes", "what's open in Northgate")
    by_status = next(
        block["facts"]
        for i, block in enumerate(card["body"])
        if block["type"] == "FactSet" and card["body"][i - 1].get("text") == "By status"
    )
    counts = {f["title"]: int(f["value"]) for f in by_status}
    # Each open task in exactly one line ("With an officer" used to include the accepted).
    assert counts == {
        "Assigned, not yet accepted": 2,
        "Accepted, not yet started": 1,
        "Being worked on": 1,
    }
    assert "Northgate: 4 open cases" in words(card)
    assert sum(counts.values()) == 4


async def test_ward_they_do_not_represent_is_refused(bot):
    await bot.report("fly-tipping", at=SOUTHMERE)
    text, cards = await ask(bot, "cllr-hughes", "what's open in Southmere")
    assert cards == []
    assert "only show you wards you represent: Northgate" in text
    text, cards = await ask(bot, "cllr-hughes", "what's open in Hill Parc")
    assert cards == [] and "don't know a ward called" in text


# -- one case ------------------------------------------------------------------------------


async def test_case_card_shows_public_history_only(bot):
    task = await bot.report()
    await click(bot, "bob", "accept", {"taskId": task["id"], "version": 1})
    await click(
        bot, "bob", "handback", {"taskId": task["id"], "version": 2, "reason": "back hurts"}
    )
    for phrase in (f"case {task['reference']}", f"case {task['id'] + 1000}", task["reference"]):
        _, [card] = await ask(bot, "cllr-hughes", phrase)
        text = words(card)
        assert task["reference"] in text and "History" in text
        assert "Reported" in text and "Accepted by the team" in text
        assert "back hurts" not in text and "Bob" not in text  # internal detail stays in
        assert "Follow" in text
        # Newest first, as on the officers' cards, in the one date format.
        history = text.split("\n")[text.split("\n").index("History") + 1 :]
        firsts = [h for h in history if "Accepted by the team" in h or h.endswith("Reported")]
        assert "Accepted by the team" in firsts[0] and firsts[-1].endswith("Reported")
        assert re.match(
            r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun) \d{1,2} [A-Z][a-z]{2}, \d\d:\d\d · ", firsts[0]
        )


async def test_case_outside_their_wards_is_not_found(bot):
    task = await bot.report("fly-tipping", at=SOUTHMERE)
    text, cards = await ask(bot, "cllr-hughes", f"case {task['reference']}")
    assert cards == [] and f"can't find a case {task['reference']}" in text
    text, _ = await ask(bot, "cllr-hughes", f"follow {task['reference']}")
    assert "can't find" in text


async def test_officer_asking_for_a_case_gets_the_task_card(bot):
    task = await bot.report()
    await bot.settle()  # bob's own copy has arrived: the next card is the answer
    _, [card] = await ask(bot, "bob", f"case {task['reference']}")
    assert "Accept" in words(card)  # bob's own actions


# -- follow and the proactive update -------------------------------------------------------


async def test_follow_then_status_change_tells_the_councillor(bot):
    task = await bot.report()
    text, _ = await ask(bot, "cllr-hughes", f"follow {task['reference']}")
    assert f"You're following {task['reference']}" in text
    text, _ = await ask(bot, "cllr-hughes", f"follow {task['reference']}")
    assert "already following" in text

    conv = personal_conversation("cllr-hughes")
    await click(bot, "bob", "accept", {"taskId": task["id"], "version": 1})
    [notice] = await bot.connector.wait_for(
        lambda r: r.conversation_id == conv and r.card and "Now accepted" in words(r.card)
    )
    assert_valid_card(notice.card)
    assert task["reference"] in words(notice.card)
    view = notice.card["actions"][0]
    assert (view["verb"], view["data"]) == ("case", {"taskId": task["id"]})
    # Tapping it opens the case.
    card = await click(bot, "cllr-hughes", "case", view["data"])
    assert "Accepted" in words(card)

    # An update note is not a status change: no message. Unfollow: no more messages.
    await click(bot, "bob", "update", {"taskId": task["id"], "version": 2, "note": "on my way"})
    text, _ = await ask(bot, "cllr-hughes", f"unfollow {task['reference']}")
    assert "stopped following" in text
    await click(bot, "bob", "complete", {"taskId": task["id"], "version": 3, "outcome": "resolved"})
    await bot.settle()
    notices = [r for r in bot.connector.received if r.conversation_id == conv and r.card]
    assert sum("Now " in words(r.card) for r in notices) == 1


async def test_follow_button_on_the_case_card(bot):
    task = await bot.report()
    card = await click(bot, "cllr-hughes", "follow", {"taskId": task["id"]})
    assert "You're following this case" in words(card)
    assert [a["verb"] for a in card["actions"] if a["type"] == "Action.Execute"][0] == "unfollow"
    rows = await bot.rows(follows, follows.c.task_id == task["id"])
    assert [r.person_id for r in rows] == ["cllr-hughes"]
    card = await click(bot, "cllr-hughes", "unfollow", {"taskId": task["id"]})
    assert "stopped following" in words(card)
    assert await bot.rows(follows, follows.c.task_id == task["id"]) == []


# -- raising a task ---------------------------------------------------------------------------


async def test_raise_through_the_card(bot):
    text, [form] = await ask(bot, "cllr-hughes", "raise a task")
    assert [i["id"] for i in form["body"] if i["type"].startswith("Input.")] == [
        "type",
        "location",
        "description",
    ]
    assert "What kind of problem is it?" in text  # the text path is offered beside it
    card = await click(
        bot,
        "cllr-hughes",
        "raise",
        {"type": "graffiti", "location": "Northgate, by the park gates", "description": "Tags"},
    )
    text = words(card)
    assert "Raised RSP-" in text and "You're following it" in text
    [task] = await bot.rows(tasks)
    assert (task.raised_by, task.raised_by_person, task.type) == (
        "councillor",
        "cllr-hughes",
        "graffiti",
    )
    assert task.priority == "high"  # the council's rule for councillors' reports
    assert task.ward == "Northgate" and task.address == "Northgate, by the park gates"
    assert [r.person_id for r in await bot.rows(follows)] == ["cllr-hughes"]
    # The chat questions were dropped when the form was used: "my cases" is answered.
    _, [mine] = await ask(bot, "cllr-hughes", "my cases")
    assert "Your cases" in words(mine)


async def test_raise_card_with_a_bad_answer_comes_back_with_the_reason(bot):
    await ask(bot, "cllr-hughes", "raise a task")
    card = await click(
        bot,
        "cllr-hughes",
        "raise",
        {"type": "graffiti", "location": "51.5, -0.1", "description": "x"},
    )
    text = words(card)
    assert "Raise a task" in text and "outside" in text
    assert "51.5, -0.1" in text  # what they typed is kept
    assert await bot.rows(tasks) == []


async def test_raise_by_text_survives_a_restart(
    aiohttp_client, database_url, connector, teams_runtime
):
    """Started on one runtime, finished after a restart on the other: the state is theirs
    to share (plain JSON), as when a council moves from botbuilder to the Agents SDK."""
    other = "botbuilder" if teams_runtime == "agents" else "agents"
    first = await aiohttp_client(build_app(settings_for(database_url, teams_runtime=teams_runtime)))
    bot = Bot(first, connector)
    await bot.install("cllr-hughes")
    text, _ = await ask(bot, "cllr-hughes", "raise a task")
    assert "What kind of problem is it?" in text
    text, _ = await ask(bot, "cllr-hughes", "flytipping")
    assert "Where is it?" in text
    await first.close()  # the service stops between two answers

    second = Bot(
        await aiohttp_client(build_app(settings_for(database_url, teams_runtime=other))),
        connector,
    )
    text, _ = await ask(second, "cllr-hughes", "somewhere nice")
    assert "Where is it?" in text  # refused, asked again
    text, _ = await ask(second, "cllr-hughes", f"{NORTHGATE[0]}, {NORTHGATE[1]}")
    assert "What is wrong?" in text
    text, cards = await ask(second, "cllr-hughes", "Sofa and bags on the verge")
    assert "Raised RSP-" in text
    [task] = await second.rows(tasks)
    assert (task.type, task.raised_by_person) == ("fly-tipping", "cllr-hughes")
    assert task.description == "Sofa and bags on the verge"
    assert "Sofa and bags" in words(cards[0])
    # The dialog is over: the next message is a command again.
    _, [mine] = await ask(second, "cllr-hughes", "my cases")
    assert task.id + 1000 == int(words(mine).split("RSP-")[1][:4])


async def test_raise_by_text_can_be_cancelled(bot):
    await ask(bot, "cllr-hughes", "raise a task")
    text, _ = await ask(bot, "cllr-hughes", "cancel")
    assert "Nothing was raised" in text
    text, _ = await ask(bot, "cllr-hughes", "help")
    assert "status of my cases" in text
    assert await bot.rows(tasks) == []


# -- who may ask -----------------------------------------------------------------------------


async def test_a_stranger_gets_a_polite_refusal_and_no_data(bot):
    task = await bot.report()
    for phrase in ("my cases", f"case {task['reference']}", "what's open in Northgate", "raise"):
        text, cards = await ask(bot, "someone-else", phrase)
        assert cards == [] and "I don't know you yet" in text
    resp = await bot.send(card_action("someone-else", "case", {"taskId": task["id"]}, bot.url))
    body = await resp.json()
    assert "I don't know you yet" in words(body["value"])
    assert task["reference"] not in words(body["value"])


@pytest.mark.parametrize("phrase", ["help", "what can you do", "blah blah"])
async def test_help_and_not_understood(bot, phrase):
    text, _ = await ask(bot, "cllr-hughes", phrase)
    assert "status of my cases" in text and "raise a task" in text
    if phrase == "blah blah":
        assert text.startswith("Sorry, I didn't understand")


async def test_a_reply_teams_refuses_does_not_fail_the_turn(bot, caplog):
    bot.connector.failures.append((503, None))
    resp = await bot.send(message("cllr-hughes", "my cases", bot.url))
    assert resp.status == 200  # Teams must not re-send the message
    assert "reply not delivered: Teams answered 503" in caplog.text
    _, [card] = await ask(bot, "cllr-hughes", "my cases")  # asking again works
    assert "Your cases" in words(card)


async def test_raise_with_control_characters_is_refused_like_intake(bot):
    """A NUL (PostgreSQL cannot store it) or another control character in the form is
    refused with the form shown again, as intake refuses it; nothing is raised."""
    answers = {"type": "litter", "location": "Northgate\x00, by the gates", "description": "ab"}
    card = await click(bot, "cllr-hughes", "raise", answers)
    assert "The location can't contain control characters." in words(card)
    assert "Raise task" in words(card)  # the form again, the readable answers kept
    assert "ab" in words(card).split("\n") and "Northgate\x00" not in words(card)
    answers = {"type": "litter", "location": "Northgate", "description": "a\x07b"}
    card = await click(bot, "cllr-hughes", "raise", answers)
    assert "The description can't contain control characters." in words(card)
    assert await bot.rows(tasks) == []
    answers = {"type": "litter", "location": "Northgate", "description": "tab\there\nline"}
    card = await click(bot, "cllr-hughes", "raise", answers)
    assert "Raised RSP-" in words(card)  # tabs and line breaks are ordinary text


async def test_case_without_an_address_names_the_nearest_known_one_and_time_left(bot):
    await bot.report()  # "1 High Street", at NORTHGATE
    lat, lon = NORTHGATE
    task = await bot.report("graffiti", location={"lat": lat + 0.0004, "lon": lon})
    await click(bot, "cllr-hughes", "follow", {"taskId": task["id"]})
    card = await click(bot, "cllr-hughes", "case", {"taskId": task["id"]})
    facts = {
        f["title"]: f["value"] for b in card["body"] if b["type"] == "FactSet" for f in b["facts"]
    }
    assert facts["Where"] == "Near 1 High Street (about 40 m)"
    _, [listed] = await ask(bot, "cllr-hughes", "my cases")
    assert re.search("Due " + DATE + r" · due in \d+ (day|h)", words(listed)), words(listed)
