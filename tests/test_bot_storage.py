"""botbuilder Storage on the database: round trips, eTags, and a dialog across a restart."""

from __future__ import annotations

import asyncio

import pytest
from botbuilder.core import ConversationState, MessageFactory, StoreItem, TurnContext
from botbuilder.core.adapters import TestAdapter
from botbuilder.dialogs import (
    DialogSet,
    DialogState,
    DialogTurnResult,
    DialogTurnStatus,
    WaterfallDialog,
    WaterfallStepContext,
)
from botbuilder.dialogs.prompts import PromptOptions, TextPrompt

from responder.bot.state_storage import DatabaseStorage, EtagConflict
from responder.store import migrate
from responder.store.db import Database


@pytest.fixture
async def db(database_url):
    database = Database(database_url)
    await migrate.upgrade(database)
    yield database
    await database.dispose()


@pytest.fixture
def storage(db, clock) -> DatabaseStorage:
    return DatabaseStorage(db, clock)


async def test_reading_missing_keys_gives_nothing(storage):
    assert await storage.read(["nobody/conversations/none"]) == {}
    assert await storage.read([]) == {}
    await storage.write({"a": {"n": 1}})
    assert set(await storage.read(["a", "missing"])) == {"a"}


async def test_dicts_and_objects_round_trip_with_a_fresh_etag_each_write(storage):
    await storage.write(
        {
            "dict": {"n": 1, "nested": {"list": [1, "two", None], "flag": True}},
            "object": StoreItem(name="Ada", tags=["a", "b"]),
        }
    )
    first = await storage.read(["dict", "object"])
    assert {k: v for k, v in first["dict"].items() if k != "e_tag"} == {
        "n": 1,
        "nested": {"list": [1, "two", None], "flag": True},
    }
    assert isinstance(first["object"], StoreItem)
    assert (first["object"].name, first["object"].tags) == ("Ada", ["a", "b"])
    assert first["dict"]["e_tag"] and first["object"].e_tag

    first["dict"]["n"] = 2
    await storage.write({"dict": first["dict"]})
    second = (await storage.read(["dict"]))["dict"]
    assert second["n"] == 2
    assert second["e_tag"] != first["dict"]["e_tag"]
    assert first["dict"]["e_tag"] != "*"  # the caller's item is left as it was


async def test_a_stale_etag_is_refused_and_nothing_changes(storage):
    await storage.write({"a": {"n": 1}})
    stale = (await storage.read(["a"]))["a"]
    current = dict(stale, n=2)
    await storage.write({"a": current})  # the matching etag: accepted
    before = (await storage.read(["a"]))["a"]

    stale["n"] = 99
    with pytest.raises(KeyError) as refused:
        await storage.write({"a": stale, "b": {"n": 1}})
    assert isinstance(refused.value, EtagConflict)
    # Neither item of the refused write was stored.
    assert await storage.read(["a", "b"]) == {"a": before}

    item = StoreItem(n=3, e_tag=stale["e_tag"])  # the same rule for objects
    with pytest.raises(EtagConflict):
        await storage.write({"a": item})
    with pytest.raises(Exception, match="etag missing"):
        await storage.write({"a": {"n": 4, "e_tag": ""}})
    assert (await storage.read(["a"]))["a"] == before


async def test_star_or_no_etag_overwrites(storage):
    await storage.write({"a": {"n": 1}})
    await storage.write({"a": {"n": 2}})  # no etag
    assert (await storage.read(["a"]))["a"]["n"] == 2
    await storage.write({"a": {"n": 3, "e_tag": "*"}})
    assert (await storage.read(["a"]))["a"]["n"] == 3
    # An etag for a key with nothing stored writes, as MemoryStorage does.
    await storage.write({"new": {"n": 1, "e_tag": "from-somewhere"}})
    assert (await storage.read(["new"]))["new"]["n"] == 1


async def test_delete_removes_the_keys_and_ignores_missing_ones(storage):
    await storage.write({"a": {"n": 1}, "b": {"n": 2}, "c": {"n": 3}})
    await storage.delete(["a", "c", "never-written"])
    await storage.delete([])
    assert set(await storage.read(["a", "b", "c"])) == {"b"}


@pytest.mark.parametrize("stored", [True, False], ids=["update", "insert"])
async def test_writers_with_the_same_etag_exactly_one_wins(database_url, db, clock, stored):
    """Two app instances (one Database each) race to save the same conversation."""
    other = Database(database_url)
    try:
        storages = [DatabaseStorage(db, clock), DatabaseStorage(other, clock)] * 3
        if stored:
            await storages[0].write({"a": {"n": 0}})
            etag = (await storages[0].read(["a"]))["a"]["e_tag"]
        else:
            etag = "read-before-a-delete"
        outcomes = await asyncio.gather(
            *(s.write({"a": {"n": i, "e_tag": etag}}) for i, s in enumerate(storages)),
            return_exceptions=True,
        )
        winners = [i for i, outcome in enumerate(outcomes) if outcome is None]
        assert len(winners) == 1, outcomes
        losers = [o for o in outcomes if o is not None]
        assert all(isinstance(o, EtagConflict) for o in losers), losers
        assert (await storages[1].read(["a"]))["a"]["n"] == winners[0]
    finally:
        await other.dispose()


def _bot(storage: DatabaseStorage):
    """A two-question waterfall; each turn loads and saves ConversationState in storage."""
    state = ConversationState(storage)
    dialogs = DialogSet(state.create_property("dialog"))
    dialogs.add(TextPrompt("name"))
    dialogs.add(TextPrompt("town"))

    async def ask_name(step: WaterfallStepContext) -> DialogTurnResult:
        return await step.prompt("name", PromptOptions(prompt=MessageFactory.text("Name?")))

    async def ask_town(step: WaterfallStepContext) -> DialogTurnResult:
        step.values["name"] = step.result
        return await step.prompt("town", PromptOptions(prompt=MessageFactory.text("Town?")))

    async def done(step: WaterfallStepContext) -> DialogTurnResult:
        await step.context.send_activity(f"{step.values['name']} from {step.result}")
        return await step.end_dialog()

    dialogs.add(WaterfallDialog("steps", [ask_name, ask_town, done]))

    async def turn(context: TurnContext) -> None:
        dc = await dialogs.create_context(context)
        result = await dc.continue_dialog()
        if result.status == DialogTurnStatus.Empty:
            await dc.begin_dialog("steps")
        await state.save_changes(context)

    return turn


async def test_a_waterfall_dialog_continues_after_a_restart(database_url, db, clock):
    adapter = TestAdapter(_bot(DatabaseStorage(db, clock)))
    flow = await (await adapter.send("hello")).assert_reply("Name?")
    await (await flow.send("Ada")).assert_reply("Town?")
    key = f"{adapter.template.channel_id}/conversations/{adapter.template.conversation.id}"
    await db.dispose()

    # A new process: its own Database, storage, state and dialogs; only the rows remain.
    restarted = Database(database_url)
    try:
        storage = DatabaseStorage(restarted, clock)
        saved = (await storage.read([key]))[key]
        assert isinstance(saved["dialog"], DialogState)
        assert [d.id for d in saved["dialog"].dialog_stack] == ["town", "steps"]

        adapter = TestAdapter(_bot(storage))
        flow = await (await adapter.send("Leeds")).assert_reply("Ada from Leeds")
        assert (await storage.read([key]))[key]["dialog"].dialog_stack == []
        await (await flow.send("again")).assert_reply("Name?")  # a fresh dialog starts
    finally:
        await restarted.dispose()
