"""Completion outcomes are the council's: per service in the council file, the four
defaults when a file names none; offered on the card, checked by the action, recorded in
history and told to the resident in the council's words.

Through the front door: reports by ``POST /api/tasks``, clicks by ``POST /api/messages``
with the ``adaptiveCard/action`` invoke Teams sends, a fake Bot Connector for the cards
and a fake GOV.UK Notify (checking the JWT) for the resident's messages, on SQLite and
PostgreSQL.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from bot_harness import NORTHGATE, Bot
from support import AUTH, EXAMPLES, INTAKE_SECRET, assert_valid_card, write_council
from support import card_words as texts

from fakes.notify import FakeNotify
from fakes.teams import personal_conversation
from responder.app import build_app
from responder.cards.task_card import DEFAULT_OUTCOMES, outcome_choices
from responder.config import load_council
from responder.domain import vocabulary
from responder.domain.vocabulary import OutcomeWords, outcome_words
from responder.settings import Settings
from responder.store.schema import outbox, task_events, tasks

EMAIL = "resident@example.com"
COMPLETED_EMAIL = "2c6b6b4e-1f4d-4a4e-9a56-0d7f1f6a1003"  # examples/council.yaml
OWN_OUTCOMES = [
    {"code": "cleared", "name": "Cleared"},
    {
        "code": "passed-to-highways",
        "name": "Passed to Highways",
        "resident": "passed to the county's highways team",
    },
]


def own_outcomes(data: dict) -> None:
    """Street cleansing names its own outcomes; grounds and trees name none."""
    assert data["services"][0]["code"] == "street-cleansing"
    data["services"][0]["outcomes"] = OWN_OUTCOMES


def completion_choices(card: dict) -> list[tuple[str, str]]:
    """(value, title) of the outcome choice on the card's Complete form ([] without one)."""
    forms = [a for a in card.get("actions", []) if a.get("title") == "Complete"]
    if not forms:
        return []
    [form] = forms
    [choice] = [e for e in form["card"]["body"] if e.get("id") == "outcome"]
    return [(c["value"], c["title"]) for c in choice["choices"]]


# -- the council file and the vocabulary ---------------------------------------------------


def test_the_example_council_has_the_four_default_outcomes_everywhere():
    council = load_council(EXAMPLES / "council.yaml")
    assert all(s.outcomes is None for s in council.file.services)
    for task_type in council.file.task_types:
        assert council.outcomes_for(task_type.code) == vocabulary.DEFAULT_OUTCOMES
    assert council.outcomes_for("no-such-type") == vocabulary.DEFAULT_OUTCOMES
    assert (
        outcome_choices(vocabulary.DEFAULT_OUTCOMES)
        == DEFAULT_OUTCOMES
        == (
            ("resolved", "Cleared / fixed"),
            ("no-action", "Nothing found"),
            ("referred", "Referred elsewhere"),
            ("private-land", "On private land"),
        )
    )


def test_a_council_names_its_own_outcomes_per_service(tmp_path):
    council = load_council(write_council(tmp_path, own_outcomes))
    assert council.outcomes_for("fly-tipping") == (
        OutcomeWords("cleared", "Cleared", "cleared"),  # residents: the name, lower-cased
        OutcomeWords(
            "passed-to-highways", "Passed to Highways", "passed to the county's highways team"
        ),
    )
    assert council.outcomes_for("grass-cutting") == vocabulary.DEFAULT_OUTCOMES
    outcomes = council.outcomes_for("litter")
    assert outcome_words(outcomes, "passed-to-highways", "officer") == "Passed to Highways"
    assert outcome_words(outcomes, "passed-to-highways", "councillor") == "Passed to Highways"
    assert outcome_words(outcomes, "cleared", "resident") == "cleared"
    # A code the file has dropped since reads as itself.
    assert outcome_words(outcomes, "resolved", "manager") == "resolved"
    assert outcome_words(outcomes, "no-action", "resident") == "no action"


def test_the_vocabulary_is_pure_values():
    tree = ast.parse(Path(vocabulary.__file__).read_text())
    imported = {
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert imported <= {"__future__", "collections.abc", "dataclasses", "typing"}, imported
    assert vocabulary.NOTE_MAX == 1000 and vocabulary.REASON_MAX == 500
    assert "1000" in vocabulary.NOTE_TOO_LONG and "500" in vocabulary.REASON_TOO_LONG


# -- through the front door ----------------------------------------------------------------


@pytest.fixture
async def notify(aiohttp_server) -> FakeNotify:
    fake = FakeNotify()
    server = await aiohttp_server(fake.app())
    fake.url = str(server.make_url("/")).rstrip("/")
    return fake


@pytest.fixture
async def bot(aiohttp_client, database_url, connector, notify, tmp_path) -> Bot:
    settings = Settings(
        database_url=database_url,
        config_path=write_council(tmp_path, own_outcomes),
        intake_keys={"forms": INTAKE_SECRET},
        notify_api_key=notify.api_key(),
        notify_base_url=notify.url,
        scheduler=False,
    )
    bot = Bot(await aiohttp_client(build_app(settings)), connector)
    await bot.install("bob", "carol", "cllr-hughes")
    return bot


async def snapshot(bot: Bot) -> tuple:
    return (
        [tuple(r) for r in await bot.rows(tasks)],
        [tuple(r) for r in await bot.rows(task_events)],
        sorted(r.idempotency_key for r in await bot.rows(outbox)),
    )


async def test_the_councils_outcomes_from_card_to_history_to_notify(bot, notify):
    reporter = {"name": "A Resident", "email": EMAIL, "updates": ["email"]}
    task = await bot.report("fly-tipping", reporter=reporter)
    officer = task["assignee"]
    await bot.say("cllr-hughes", f"follow {task['reference']}")  # hears when it moves
    [sent] = await bot.card_for(officer)
    assert completion_choices(sent.card) == []  # not accepted yet: no Complete form
    answer = await bot.click(officer, "accept", task, version=1)
    assert completion_choices(answer["value"]) == [
        ("cleared", "Cleared"),
        ("passed-to-highways", "Passed to Highways"),
    ]
    await bot.settle()

    # An outcome this council does not have (a default one) is refused; nothing changes.
    before = await snapshot(bot)
    for outcome in ("resolved", "Cleared", "passed to highways"):
        answer = await bot.click(officer, "complete", task, version=2, outcome=outcome)
        shown = texts(answer["value"])
        assert (
            "That isn't one of the outcomes for Street cleansing (Cleared or Passed to "
            "Highways), so nothing was changed." in shown
        ), shown
        assert completion_choices(answer["value"])  # the form is offered again
    await bot.settle()
    assert await snapshot(bot) == before

    answer = await bot.click(
        officer, "complete", task, version=2, outcome="passed-to-highways", note="Pothole too"
    )
    shown = texts(answer["value"])
    assert "Done (Passed to Highways)" in shown  # the status line
    assert "Done (Passed to Highways) by " in shown  # the card's recent history
    [row] = await bot.rows(tasks)
    assert (row.status, row.outcome, row.version) == ("completed", "passed-to-highways", 3)

    resp = await bot.client.get(f"/api/tasks/{task['id']}", headers=AUTH)
    body = await resp.json()
    assert body["outcome"] == "passed-to-highways"
    [done] = [e for e in body["history"] if e["action"] == "complete"]
    assert (done["to"], done["actor"], done["note"]) == ("completed", officer, "Pothole too")
    [event] = await bot.rows(task_events, task_events.c.action == "complete")
    assert event.data == {"outcome": "passed-to-highways"}

    # The resident hears it in the council's words for residents.
    [message] = await notify.wait_for(lambda a: a.template_id == COMPLETED_EMAIL)
    assert message.to == EMAIL
    assert message.personalisation["outcome"] == "passed to the county's highways team"
    assert message.personalisation["status"] == "completed"

    # The following councillor is told in the council's words too.
    conv = personal_conversation("cllr-hughes")
    [notice] = await bot.connector.wait_for(
        lambda r: r.conversation_id == conv and r.card and "Now done" in texts(r.card)
    )
    assert "Now done (Passed to Highways)." in texts(notice.card)

    # The ward's councillor sees the council's words in the case card and its history.
    before = len(bot.connector.received)
    await bot.say("cllr-hughes", f"case {task['reference']}")
    conv = personal_conversation("cllr-hughes")
    [case] = [r.card for r in bot.connector.received[before:] if r.conversation_id == conv]
    assert_valid_card(case)
    words = texts(case)
    assert "Done (Passed to Highways)" in words
    assert "passed-to-highways" not in words


async def test_a_service_naming_no_outcomes_keeps_the_defaults(bot, notify):
    """Grounds names none: its tasks offer the four defaults and refuse the others'."""
    await bot.install("grace", "henry")
    task = await bot.report("grass-cutting", at=NORTHGATE)
    # A queue team: whoever accepts first takes it.
    answer = await bot.click("grace", "accept", task, version=1)
    assert completion_choices(answer["value"]) == list(DEFAULT_OUTCOMES)
    await bot.settle()
    before = await snapshot(bot)
    answer = await bot.click("grace", "complete", task, version=2, outcome="cleared")
    assert "isn't one of the outcomes for Grounds maintenance and parks (Cleared / fixed," in texts(
        answer["value"]
    )
    await bot.settle()
    assert await snapshot(bot) == before
    answer = await bot.click("grace", "complete", task, version=2, outcome="no-action")
    assert "Done (Nothing found)" in texts(answer["value"])
