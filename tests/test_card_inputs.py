"""Card clicks carrying what no card of ours sends: refused politely, nothing changed.

Through ``/api/messages`` on SQLite and PostgreSQL (where a NUL in a note used to break
the turn), and the pure reading of a click underneath.
"""

from __future__ import annotations

import pytest
from bot_harness import Bot, settings_for

from fakes.teams import card_action, message
from responder.app import build_app
from responder.bot.card_inputs import (
    NO_TASK_ID,
    UNKNOWN_FIELDS,
    UNKNOWN_VERB,
    UNREADABLE,
    VERBS,
    BadClick,
    read_click,
)
from responder.commands.act import NOTE_TOO_LONG, REASON_TOO_LONG
from responder.domain.visibility import MAX_TASK_ID
from responder.store.schema import task_events, tasks

CARD = "application/vnd.microsoft.card.adaptive"
BAD_IDS = [0, -1, 10**30, 2**63, MAX_TASK_ID + 1, "1", True, 1.5, None, [1], {"id": 1}]


@pytest.fixture
async def bot(aiohttp_client, database_url, connector) -> Bot:
    client = await aiohttp_client(build_app(settings_for(database_url, background=False)))
    bot = Bot(client, connector)
    await bot.install("bob", "carol", "cllr-hughes")
    return bot


async def raw_click(bot: Bot, person: str, verb: object, data: object) -> dict:
    resp = await bot.send(card_action(person, verb, data, bot.url))  # type: ignore[arg-type]
    assert resp.status == 200, await resp.text()
    return await resp.json()


def card_text(answer: dict) -> str:
    return str(answer["value"])


async def accepted_task(bot: Bot) -> dict:
    task = await bot.report()
    await bot.click(task["assignee"], "accept", task, version=1)
    return task


async def state(bot: Bot):
    return [tuple(r) for r in await bot.rows(tasks)], len(await bot.rows(task_events))


@pytest.mark.parametrize(
    ("inputs", "words"),
    [
        ({"note": "call 07700 900123\x00 today"}, "The note can't contain control characters."),
        ({"note": "bell\x07"}, "The note can't contain control characters."),
        ({"note": "del\x7f"}, "The note can't contain control characters."),
        ({"note": "c1\x85"}, "The note can't contain control characters."),
        ({"note": "lone \ud800"}, "This card sent a note I couldn't read"),
        ({"note": "n" * 1001}, NOTE_TOO_LONG),
        ({"note": 42}, "This card sent a note I couldn't read"),
        ({"note": ["a"]}, "This card sent a note I couldn't read"),
        ({"note": "ok", "version": "2"}, "This card sent a card version I couldn't read"),
        ({"note": "ok", "version": 2**64}, "This card sent a card version I couldn't read"),
        ({"note": "ok", "version": True}, "This card sent a card version I couldn't read"),
        ({"note": "ok", "surprise": 1}, UNKNOWN_FIELDS),
        ({"note": "ok", "msteams": {"x": 1}}, UNKNOWN_FIELDS),
    ],
)
async def test_bad_update_inputs_are_refused_on_the_card(bot, inputs, words):
    task = await accepted_task(bot)
    before = await state(bot)
    answer = await raw_click(bot, task["assignee"], "update", {"taskId": task["id"], **inputs})
    assert answer["statusCode"] == 200 and answer["type"] == CARD
    assert words in card_text(answer)
    assert task["reference"] in card_text(answer)  # the task card, with why
    assert await state(bot) == before


async def test_other_inputs_are_checked_too(bot):
    task = await accepted_task(bot)
    owner = task["assignee"]
    before = await state(bot)
    for verb, inputs, words in [
        ("handback", {"reason": "r" * 501}, REASON_TOO_LONG),
        ("handback", {"reason": "tab\tok\x1b[31m"}, "The reason can't contain control"),
        ("complete", {"outcome": "o" * 65}, "The outcome is too long"),
        ("complete", {"outcome": 3}, "This card sent a outcome I couldn't read"),
        ("reassign", {"officer": "x" * 65}, "The officer choice is too long"),
    ]:
        answer = await raw_click(bot, owner, verb, {"taskId": task["id"], **inputs})
        assert words in card_text(answer), (verb, answer)
    assert await state(bot) == before


@pytest.mark.parametrize("verb", sorted(VERBS - {"raise"}))
async def test_ids_no_database_holds_are_no_task_id(bot, verb):
    await bot.report()
    before = await state(bot)
    for bad in BAD_IDS:
        answer = await raw_click(bot, "bob", verb, {"taskId": bad, "note": "x", "photos": ["a"]})
        assert answer["statusCode"] == 400, (verb, bad, answer)
        assert answer["value"]["message"] == NO_TASK_ID
    answer = await raw_click(bot, "bob", verb, {"note": "x"})
    assert answer["value"]["message"] == NO_TASK_ID
    assert await state(bot) == before


async def test_unreadable_clicks(bot):
    for verb, data in [("zap", {"taskId": 1}), (7, {"taskId": 1}), ("v" * 1000, {})]:
        answer = await raw_click(bot, "bob", verb, data)
        assert (answer["statusCode"], answer["value"]["message"]) == (400, UNKNOWN_VERB)
    answer = await raw_click(bot, "bob", "accept", ["not", "an", "object"])
    assert (answer["statusCode"], answer["value"]["message"]) == (400, UNREADABLE)
    activity = card_action("bob", "accept", {"taskId": 1}, bot.url)
    activity["value"] = "a string"
    resp = await bot.send(activity)
    assert resp.status == 200 and (await resp.json())["value"]["message"] == UNREADABLE


async def test_following_a_reference_too_large_is_a_polite_answer(bot):
    for words in (
        "follow RSP-" + "9" * 30,
        "case RSP-" + "9" * 19,
        "unfollow 99999999999999999999",
    ):
        said = await bot.say("cllr-hughes", words)
        assert "doesn't look like a case reference" in said or "can't find" in said, said


async def test_a_stranger_gets_the_same_answer_whatever_the_click(bot):
    task = await bot.report()
    answers = [
        await raw_click(bot, "stranger", verb, data)
        for verb, data in [
            ("refresh", {"taskId": task["id"]}),
            ("accept", {"taskId": 10**6}),
            ("zap", {"taskId": "x"}),
            ("update", {"taskId": task["id"], "note": "\x00"}),
        ]
    ]
    assert all(a == answers[0] for a in answers)
    assert "don't know you" in card_text(answers[0])
    resp = await bot.send(message("stranger", f"case {task['reference']}", bot.url))
    assert resp.status == 200


# -- the pure reading of a click -------------------------------------------------------------


def execute(verb: object, data: object) -> dict:
    return {"action": {"type": "Action.Execute", "verb": verb, "data": data}, "trigger": "manual"}


def test_a_good_click_is_read_with_its_inputs():
    click = read_click(execute("update", {"taskId": 7, "version": 3, "note": "Done\nall"}))
    assert (click.verb, click.task_id, click.problem) == ("update", 7, None)
    assert click.fields == {"version": 3, "note": "Done\nall"}
    click = read_click(execute("raise", {"type": "litter", "location": "x", "description": "y"}))
    assert click.task_id is None and click.fields["type"] == "litter"


@pytest.mark.parametrize("value", [None, "x", [], {}, {"action": "x"}, {"action": []}])
def test_no_action_is_unreadable(value):
    with pytest.raises(BadClick) as refused:
        read_click(value)
    assert refused.value.message == UNREADABLE


def test_the_largest_id_is_a_task_id_and_one_more_is_not():
    assert read_click(execute("refresh", {"taskId": MAX_TASK_ID})).task_id == MAX_TASK_ID
    with pytest.raises(BadClick):
        read_click(execute("refresh", {"taskId": MAX_TASK_ID + 1}))
