"""Conversation state on the database (round trips, compare-and-set etags, two instances),
and the raise-by-text dialog through /api/messages: concurrent answers, stale dialogs, rows
from older versions."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
from bot_harness import Bot, settings_for
from sqlalchemy import insert

from fakes.teams import message, personal_conversation
from responder.app import build_app
from responder.bot.state_storage import EtagConflict, StateStore, state_key
from responder.dialogs.raise_by_text import ABANDONED_AFTER
from responder.store import migrate
from responder.store.db import Database
from responder.store.schema import bot_state, tasks
from responder.web import db_key


@pytest.fixture
async def db(database_url):
    database = Database(database_url)
    await migrate.upgrade(database)
    yield database
    await database.dispose()


@pytest.fixture
def store(db, clock) -> StateStore:
    return StateStore(db, clock)


async def test_documents_round_trip_with_a_fresh_etag_each_write(store, clock):
    assert await store.read("nobody/conversations/none") is None
    document = {"n": 1, "nested": {"list": [1, "two", None], "flag": True}}
    first = await store.write("a", document, None)
    saved = await store.read("a")
    assert saved is not None and saved.document == document and saved.etag == first
    assert saved.updated_at == clock()
    second = await store.write("a", {"n": 2}, first)
    assert second != first
    assert (await store.read("a")).document == {"n": 2}


async def test_a_stale_or_missing_etag_is_refused_and_nothing_changes(store):
    first = await store.write("a", {"n": 1}, None)
    await store.write("a", {"n": 2}, first)
    with pytest.raises(EtagConflict):
        await store.write("a", {"n": 99}, first)  # read before the second write
    with pytest.raises(EtagConflict):
        await store.write("a", {"n": 99}, None)  # "there was nothing", but there is
    with pytest.raises(EtagConflict):
        await store.write("never-written", {"n": 1}, "an-etag")
    assert (await store.read("a")).document == {"n": 2}
    assert await store.read("never-written") is None


async def test_delete_only_with_the_current_etag_when_one_is_given(store):
    etag = await store.write("a", {"n": 1}, None)
    assert not await store.delete("a", "stale")
    assert await store.read("a") is not None
    assert await store.delete("a", etag)
    assert await store.read("a") is None
    assert not await store.delete("a")  # nothing there: nothing to do
    await store.write("b", {"n": 1}, None)
    assert await store.delete("b")  # no etag: whatever is there goes


@pytest.mark.parametrize("stored", [True, False], ids=["update", "insert"])
async def test_writers_with_the_same_etag_exactly_one_wins(database_url, db, clock, stored):
    """Two app instances (one Database each) race to save the same conversation."""
    other = Database(database_url)
    try:
        stores = [StateStore(db, clock), StateStore(other, clock)] * 3
        etag = await stores[0].write("a", {"n": -1}, None) if stored else None
        outcomes = await asyncio.gather(
            *(s.write("a", {"n": i}, etag) for i, s in enumerate(stores)),
            return_exceptions=True,
        )
        winners = [i for i, outcome in enumerate(outcomes) if isinstance(outcome, str)]
        assert len(winners) == 1, outcomes
        losers = [o for o in outcomes if not isinstance(o, str)]
        assert all(isinstance(o, EtagConflict) for o in losers), losers
        assert (await stores[1].read("a")).document == {"n": winners[0]}
    finally:
        await other.dispose()


# -- the raise dialog's state, through /api/messages ------------------------------------------


@pytest.fixture
async def bot(aiohttp_client, database_url, connector, clock):
    client = await aiohttp_client(build_app(settings_for(database_url), clock=clock))
    return Bot(client, connector)


def _key(person_id: str) -> str:
    return state_key("msteams", personal_conversation(person_id))


async def test_two_answers_at_once_move_the_dialog_one_step(bot):
    await bot.install("cllr-hughes")
    await bot.say("cllr-hughes", "raise a task")
    before = len(bot.connector.received)
    answers = await asyncio.gather(
        *(bot.send(message("cllr-hughes", "flytipping", bot.url)) for _ in range(4))
    )
    assert [r.status for r in answers] == [200] * 4
    said = [r.text for r in bot.connector.received[before:] if r.text]
    # One answer moved the dialog on; the others either lost the race (and were told) or
    # came after it, and were read as (refused) answers to the next question.
    moved = [t for t in said if t.startswith("Where is it?")]
    assert len(moved) == 1, said
    for text in said:
        assert (
            text in moved
            or "still taking your last answer" in text
            or ("Where is it?" in text and "Or say **cancel**" in text)
        ), text
    [row] = await bot.rows(bot_state, bot_state.c.key == _key("cllr-hughes"))
    state = json.loads(row.document)
    assert (state["step"], state["answers"]) == ("location", {"type": "flytipping"})


async def test_a_dialog_left_for_half_an_hour_is_dropped(bot, clock):
    await bot.install("cllr-hughes")
    await bot.say("cllr-hughes", "raise a task")
    clock.now += ABANDONED_AFTER + timedelta(seconds=1)
    text = await bot.say("cllr-hughes", "flytipping")
    assert "Where is it?" not in text  # a new command, not an answer
    assert await bot.rows(bot_state, bot_state.c.key == _key("cllr-hughes")) == []
    assert await bot.rows(tasks) == []


async def test_state_written_by_an_older_version_is_not_taken_for_a_dialog(bot, clock):
    """botbuilder-dialogs' pickled rows (before issue 15), or anything else unreadable."""
    await bot.install("cllr-hughes")
    old = '{"dialog":{"py/object":"botbuilder.dialogs.dialog_state.DialogState"}}'
    row = {"key": _key("cllr-hughes"), "etag": "old", "document": old, "updated_at": clock()}
    await bot.client.app[db_key].run(lambda conn: conn.execute(insert(bot_state).values(**row)))
    text = await bot.say("cllr-hughes", "help")
    assert "status of my cases" in text
    assert await bot.rows(bot_state) == []
