"""Officers working tasks in Teams, through /api/messages and a fake Bot Connector."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import datetime, timedelta

import aiohttp
import pytest
from bot_harness import APP_ID, NORTHGATE, Bot, signed_settings
from bot_harness import settings_for as _settings
from cryptography.hazmat.primitives.asymmetric import rsa
from fake_openid import FakeOpenId
from sqlalchemy import select, update
from support import AUTH, assert_valid_card
from support import card_words as texts

from fakes.teams import TENANT, card_action, message, user
from responder.app import StartupError, build_app, dispatcher_key
from responder.bot.connector import Connector, TokenProvider, TokenUnavailable
from responder.store.schema import conversations, deliveries, outbox, people, task_events, tasks
from responder.web import db_key


@pytest.fixture
async def bot(aiohttp_client, database_url, connector, teams_runtime) -> Bot:
    client = await aiohttp_client(build_app(_settings(database_url, teams_runtime=teams_runtime)))
    return Bot(client, connector)


def verbs(card: dict) -> set[str]:
    found: set[str] = set()

    def walk(node):
        if isinstance(node, dict):
            if node.get("type") == "Action.Execute" and node.get("verb") != "refresh":
                found.add(node["verb"])
            for key, value in node.items():
                if key != "refresh":
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(card)
    return found


# -- install and the first card --------------------------------------------------------------


async def test_installed_officer_gets_the_card_in_place(bot):
    await bot.install("bob")
    welcome = await bot.connector.wait_for(lambda r: r.text and "Hello Bob" in r.text)
    assert welcome
    task = await bot.report()
    assert task["assignee"] == "bob"
    [sent] = await bot.card_for("bob")
    card = sent.card
    assert_valid_card(card)
    assert sent.activity.get("text") is None  # cards travel alone: updatable by id
    assert "Fly-tipping" in texts(card) and task["reference"] in texts(card)
    assert verbs(card) == {"accept", "handback"}
    assert card["refresh"]["action"]["verb"] == "refresh"
    assert card["refresh"]["userIds"] == ["29:user-bob"]
    await bot.settle()
    [row] = await bot.rows(deliveries)
    assert (row.recipient, row.activity_id, row.version) == ("person:bob", sent.activity_id, 1)


async def test_unreachable_officer_is_recorded_on_the_task(bot):
    task = await bot.report()
    await bot.settle()
    [row] = await bot.rows(outbox, outbox.c.kind == "teams.card")
    assert row.status == "parked" and "has not installed Responder" in row.last_error
    resp = await bot.client.get(f"/api/tasks/{task['id']}", headers=AUTH)
    history = (await resp.json())["history"]
    assert history[-1]["action"] == "undelivered"
    assert "Bob Warden has not installed Responder" in history[-1]["note"]
    assert bot.connector.received == []


# -- card actions ---------------------------------------------------------------------------


async def test_officer_works_a_task_from_the_card(bot):
    await bot.install("bob")
    task = await bot.report()
    [first] = await bot.card_for("bob")

    answer = await bot.click("bob", "accept", task, version=1)
    assert answer["statusCode"] == 200
    assert verbs(answer["value"]) == {"start", "update", "complete", "handback"}
    # On a phone: the next step first and styled so, three buttons at most, the rest "…".
    actions = answer["value"]["actions"]
    shown = [a for a in actions if a.get("mode") != "secondary"]
    assert [a["title"] for a in shown] == ["Start", "Complete", "Add update"]
    assert shown[0]["verb"] == "start" and shown[0]["style"] == "positive"
    assert "Hand back" in [a["title"] for a in actions if a.get("mode") == "secondary"]
    # The copy already in the chat is updated in place, not sent again.
    [put] = await bot.connector.wait_for(lambda r: r.method == "PUT")
    assert put.activity_id == first.activity_id
    assert verbs(put.card) == {"start", "update", "complete", "handback"}

    answer = await bot.click("bob", "start", task, version=2)
    assert verbs(answer["value"]) == {"update", "complete", "handback"}
    answer = await bot.click("bob", "update", task, version=3, note="Bags removed, mattress next")
    assert "Bags removed" in texts(answer["value"])
    answer = await bot.click("bob", "complete", task, version=4, outcome="resolved", note="Done")
    assert verbs(answer["value"]) == set()
    # Readable in sunlight: no Teams colour (Good green is 2:1 on white), words and signs.
    assert '"color"' not in str(answer["value"]).replace("'", '"')
    assert "\u2705" in texts(answer["value"])
    await bot.settle()

    [row] = await bot.rows(tasks)
    assert (row.status, row.outcome, row.version) == ("completed", "resolved", 5)
    events = await bot.rows(task_events)
    assert [(e.action, e.actor) for e in events] == [
        ("created", "intake:forms"),
        ("accept", "bob"),
        ("start", "bob"),
        ("update", "bob"),
        ("complete", "bob"),
    ]
    puts = [r for r in bot.connector.received if r.method == "PUT"]
    assert {p.activity_id for p in puts} == {first.activity_id}
    assert len([r for r in bot.connector.received if r.method == "POST" and r.card]) == 1


async def test_someone_else_cannot_act_and_nothing_changes(bot):
    await bot.install("bob", "carol")
    task = await bot.report()
    await bot.card_for("bob")
    for person, verb in [
        ("carol", "accept"),
        ("carol", "handback"),
        ("alice", "accept"),
    ]:
        answer = await bot.click(person, verb, task, version=1, reason="not mine")
        assert answer["statusCode"] == 200
        assert "Only" in texts(answer["value"]), (person, verb)
    # The ward's councillor may see the case (its public card), not work it.
    answer = await bot.click("cllr-hughes", "accept", task, version=1)
    assert "you can follow this one" in texts(answer["value"])
    assert "Bob" not in texts(answer["value"])  # the public card names no officer
    # Another team's officer may not even see it: the answer for a task that isn't there.
    answer = await bot.click("dan", "accept", task, version=1)
    assert answer == await bot.click("dan", "accept", {"id": 10**6}, version=1)
    assert answer["statusCode"] == 404 and task["reference"] not in str(answer)
    answer = await bot.click("stranger", "accept", task, version=1)
    assert "don't know you" in texts(answer["value"])
    await bot.settle()
    [row] = await bot.rows(tasks)
    assert (row.status, row.version) == ("assigned", 1)
    assert [e.action for e in await bot.rows(task_events)] == ["created"]


async def test_stale_and_repeated_clicks_apply_once(bot):
    await bot.install("bob")
    task = await bot.report()
    await bot.card_for("bob")
    answers = await asyncio.gather(
        *(bot.click("bob", "accept", task, version=1) for _ in range(10))
    )
    assert all(a["statusCode"] == 200 for a in answers)
    events = await bot.rows(task_events, task_events.c.action == "accept")
    assert len(events) == 1
    [row] = await bot.rows(tasks)
    assert row.version == 2
    # A click on the old card later: nothing applied, the current card comes back.
    answer = await bot.click("bob", "handback", task, version=1, reason="too big")
    assert "out of date" in texts(answer["value"]) or "already" in texts(answer["value"])
    assert verbs(answer["value"]) == {"start", "update", "complete", "handback"}
    [row] = await bot.rows(tasks)
    assert (row.status, row.version) == ("accepted", 2)


async def test_hand_back_reroutes_and_updates_the_old_card(bot):
    await bot.install("bob", "carol")
    task = await bot.report()
    [bobs] = await bot.card_for("bob")
    answer = await bot.click("bob", "handback", task, version=1, reason="Needs a van")
    assert verbs(answer["value"]) == set()
    [carols] = await bot.card_for("carol")
    assert verbs(carols.card) == {"accept", "handback"}
    [put] = await bot.connector.wait_for(
        lambda r: r.method == "PUT" and r.activity_id == bobs.activity_id
    )
    assert "Carol Warden" in texts(put.card)
    assert verbs(put.card) == set()
    [row] = await bot.rows(tasks)
    assert (row.assignee, row.status) == ("carol", "assigned")
    handback = (await bot.rows(task_events, task_events.c.action == "handback"))[0]
    assert handback.note == "Needs a van" and handback.actor == "bob"


async def test_handback_without_reason_is_refused(bot):
    await bot.install("bob")
    task = await bot.report()
    answer = await bot.click("bob", "handback", task, version=1)
    assert "why" in texts(answer["value"]).lower()
    [row] = await bot.rows(tasks)
    assert row.assignee == "bob"


async def test_queue_task_is_offered_to_the_team_and_first_accept_takes_it(bot):
    await bot.install("grace", "henry")
    task = await bot.report("fallen-tree")
    [graces] = await bot.card_for("grace")
    [henrys] = await bot.card_for("henry")
    assert verbs(graces.card) == {"accept"} == verbs(henrys.card)
    first, second = await asyncio.gather(
        bot.click("grace", "accept", task, version=1), bot.click("henry", "accept", task, version=1)
    )
    [row] = await bot.rows(tasks)
    winner = "grace" if row.assignee == "grace" else "henry"
    loser_answer = second if winner == "grace" else first
    name = "Grace Arborist" if winner == "grace" else "Henry Gardener"
    assert name in texts(loser_answer["value"])
    loser_card = henrys if winner == "grace" else graces
    [put] = await bot.connector.wait_for(
        lambda r: r.method == "PUT" and r.activity_id == loser_card.activity_id
    )
    assert name in texts(put.card) and verbs(put.card) == set()
    assert len(await bot.rows(task_events, task_events.c.action == "accept")) == 1


async def test_manager_reassigns_from_the_card(bot):
    await bot.install("bob", "carol", "alice")
    task = await bot.report()
    [bobs] = await bot.card_for("bob")
    answer = await bot.click("alice", "refresh", task, version=1)
    assert "reassign" in verbs(answer["value"])
    assert "Carol Warden" in texts(answer["value"])
    answer = await bot.click("carol", "reassign", task, version=1, officer="carol")
    assert "manager" in texts(answer["value"])
    answer = await bot.click("alice", "reassign", task, version=1, officer="carol")
    assert answer["statusCode"] == 200
    await bot.card_for("carol")
    await bot.connector.wait_for(lambda r: r.method == "PUT" and r.activity_id == bobs.activity_id)
    [row] = await bot.rows(tasks)
    assert row.assignee == "carol"
    [event] = await bot.rows(task_events, task_events.c.action == "reassign")
    assert event.actor == "alice"


async def test_a_manager_changes_priority_and_cancels_from_the_card(bot):
    """Managers' own buttons: change priority (the due time follows, the officer's card
    is updated in place) and cancel with a reason; officers get neither."""
    await bot.install("bob", "carol", "alice")
    task = await bot.report()
    [officers] = await bot.card_for(task["assignee"])
    assert not {"priority", "cancel"} & verbs(officers.card)
    managers = (await bot.click("alice", "refresh", task, version=1))["value"]
    assert {"priority", "cancel", "reassign"} <= verbs(managers)
    assert "handback" not in verbs(managers)  # a manager moves work by reassigning

    refused = await bot.click(task["assignee"], "priority", task, version=1, priority="urgent")
    assert "Only a manager of the team can change this task's priority." in texts(refused["value"])
    for bad in ("critical", "x" * 65, "urgent\x00"):
        answer = await bot.click("alice", "priority", task, version=1, priority=bad)
        assert answer["statusCode"] == 200
    [row] = await bot.rows(tasks)
    assert (row.priority, row.version) == (task["priority"], 1)  # nothing changed
    assert task["priority"] != "urgent"

    answer = await bot.click("alice", "priority", task, version=1, priority="urgent")
    assert "Now Urgent priority." in texts(answer["value"])
    [row] = await bot.rows(tasks)
    assert row.priority == "urgent" and row.due_at < datetime.fromisoformat(task["due_at"])
    await bot.connector.wait_for(
        lambda r: r.method == "PUT" and r.activity_id == officers.activity_id
    )
    [event] = await bot.rows(task_events, task_events.c.action == "priority")
    assert (event.actor, event.data) == ("alice", {"from": task["priority"], "to": "urgent"})

    no_reason = await bot.click("alice", "cancel", task, version=2, cancelReason="  ")
    assert "Say why you are cancelling it" in texts(no_reason["value"])
    answer = await bot.click("alice", "cancel", task, version=2, cancelReason="Duplicate")
    assert answer["statusCode"] == 200
    [row] = await bot.rows(tasks)
    assert row.status == "cancelled"
    [event] = await bot.rows(task_events, task_events.c.action == "cancel")
    assert (event.actor, event.note) == ("alice", "Duplicate")


async def test_bad_card_actions_get_a_clear_answer(bot):
    await bot.install("bob")
    task = await bot.report()
    resp = await bot.send(card_action("bob", "accept", {"version": 1}, bot.url))
    body = await resp.json()
    assert body["statusCode"] == 400 and body["type"] == "application/vnd.microsoft.error"
    resp = await bot.send(card_action("bob", "explode", {"taskId": task["id"]}, bot.url))
    assert (await resp.json())["statusCode"] == 400
    resp = await bot.send(card_action("bob", "accept", {"taskId": 99999}, bot.url))
    assert (await resp.json())["statusCode"] == 404
    [row] = await bot.rows(tasks)
    assert row.status == "assigned"


# -- delivery under Teams' limits ----------------------------------------------------------


async def test_429_retry_after_is_honoured(bot):
    await bot.install("bob")
    bot.connector.failures.extend([(429, 1.0), (503, None)])
    started = time.monotonic()
    await bot.report()
    [sent] = await bot.card_for("bob")
    assert sent.at - started >= 1.0
    assert bot.connector.retry_after_violations == 0


async def test_a_card_that_keeps_failing_is_parked_with_its_reason(bot):
    await bot.install("bob")
    dispatcher = bot.client.app[dispatcher_key]
    dispatcher.give_up_after = timedelta(seconds=1)
    dispatcher.max_backoff = 0.2
    bot.connector.failures.extend([(500, None)] * 1000)
    task = await bot.report()
    for _ in range(200):
        [row] = await bot.rows(outbox, outbox.c.kind == "teams.card")
        if row.status == "parked":
            break
        await asyncio.sleep(0.05)
    assert row.status == "parked" and row.attempts >= 2
    assert row.last_error.startswith(f"gave up after {row.attempts} tries")
    assert "Teams answered 500" in row.last_error
    assert [r for r in bot.connector.received if r.card] == []
    assert task["id"] == row.task_id


async def test_cards_to_one_conversation_stay_inside_teams_limits(bot):
    await bot.install("bob")
    async with bot.client.app[db_key].write() as conn:
        await conn.execute(update(people).where(people.c.id == "carol").values(on_duty=False))
    for i in range(12):
        await bot.report("litter", at=(51.9005 + i * 0.0009, 0.8805))
    sent = await bot.card_for("bob", count=12)
    times = sorted(r.at for r in sent)
    for i, t in enumerate(times):
        assert len([u for u in times[i:] if u - t < 1.0]) <= 7
        assert len([u for u in times[i:] if u - t < 2.0]) <= 8


# -- the endpoint ---------------------------------------------------------------------------


async def test_requests_from_another_tenant_are_refused(
    aiohttp_client, database_url, connector, openid, teams_runtime
):
    settings = signed_settings(
        database_url,
        openid.metadata_url,
        teams_runtime=teams_runtime,
    )
    client = await aiohttp_client(build_app(settings))
    token = {"Authorization": "Bearer " + openid.token(APP_ID, connector.url)}
    for tenant in ("other-tenant", None):
        activity = message("bob", "my tasks", connector.url, tenant=tenant)
        resp = await client.post("/api/messages", json=activity, headers=token)
        assert resp.status == 403
        assert (await resp.json())["error"] == "forbidden"
    assert connector.received == []
    async with client.app[db_key].read() as conn:
        assert (await conn.execute(select(conversations))).all() == []


async def test_without_an_app_id_any_tenant_is_served_for_local_use(bot):
    """Agents Playground sends its own tenant: with no app id nothing is authenticated, so a
    tenant could be claimed anyway; the quick start must reach the bot."""
    playground = message("bob", "help", bot.url, tenant="00000000-0000-0000-0000-0000000000001")
    assert "my tasks" in await bot.say_activity(playground)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ("{nope", 400),
        ('{"text": "no type"}', 400),
        ("[]", 400),
        ('{"type": "message", "text": "hi"}', 400),
    ],
)
async def test_malformed_activities_are_4xx(bot, body, status):
    resp = await bot.client.post(
        "/api/messages", data=body, headers={"Content-Type": "application/json"}
    )
    assert resp.status == status
    assert (await resp.json())["error"]


async def test_with_an_app_id_only_valid_tokens_are_processed(
    aiohttp_client, database_url, connector, openid, teams_runtime
):
    settings = signed_settings(
        database_url,
        openid.metadata_url,
        background=False,
        teams_runtime=teams_runtime,
    )
    client = await aiohttp_client(build_app(settings))
    # A card refresh answers in the HTTP response: no outgoing call, so no token needed.
    activity = card_action("bob", "refresh", {"taskId": 1}, connector.url)
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    refused = {
        "missing": {},
        "not bearer": {"Authorization": "Basic eDp5"},
        "garbage": {"Authorization": "Bearer not-a-jwt"},
        "forged": {"Authorization": "Bearer " + openid.token(APP_ID, connector.url, key=other_key)},
        "unknown key": {
            "Authorization": "Bearer "
            + openid.token(APP_ID, connector.url, key=other_key, kid="k9")
        },
        "expired": {"Authorization": "Bearer " + openid.token(APP_ID, connector.url, expired=True)},
        "other bot": {"Authorization": "Bearer " + openid.token("another-app", connector.url)},
        "other issuer": {
            "Authorization": "Bearer "
            + openid.token(APP_ID, connector.url, issuer="https://evil.example")
        },
        "other service url": {
            "Authorization": "Bearer " + openid.token(APP_ID, "https://elsewhere.example/")
        },
        "same host, other path": {
            "Authorization": "Bearer " + openid.token(APP_ID, connector.url + "elsewhere/")
        },
        "no service url": {"Authorization": "Bearer " + openid.token(APP_ID, None)},
    }
    for why, headers in refused.items():
        resp = await client.post("/api/messages", json=activity, headers=headers)
        assert resp.status == 401, why
        assert (await resp.json())["error"] == "unauthorized"
    async with client.app[db_key].read() as conn:
        assert (await conn.execute(select(conversations))).all() == []

    valid = {"Authorization": "Bearer " + openid.token(APP_ID, connector.url)}
    resp = await client.post("/api/messages", json=activity, headers=valid)
    assert resp.status == 200
    assert (await resp.json())["statusCode"] == 404  # authenticated; task 1 does not exist
    async with client.app[db_key].read() as conn:
        assert len((await conn.execute(select(conversations))).all()) == 1


async def test_when_the_signing_keys_cannot_be_fetched_nothing_is_processed(
    aiohttp_client, database_url, connector, teams_runtime
):
    """Bot Framework's key endpoint is down: a 503 (Teams retries), not a 401, and no turn."""
    closed = FakeOpenId()
    metadata_url = closed.metadata_url
    token = closed.token(APP_ID, connector.url)
    closed.close()  # nothing listens there any more
    settings = signed_settings(
        database_url,
        metadata_url,
        background=False,
        teams_runtime=teams_runtime,
    )
    client = await aiohttp_client(build_app(settings))
    activity = card_action("bob", "refresh", {"taskId": 1}, connector.url)
    resp = await client.post(
        "/api/messages", json=activity, headers={"Authorization": "Bearer " + token}
    )
    assert resp.status == 503
    assert (await resp.json())["error"] == "unavailable"
    async with client.app[db_key].read() as conn:
        assert (await conn.execute(select(conversations))).all() == []


async def test_production_refuses_signing_keys_from_elsewhere(database_url, openid):
    settings = signed_settings(database_url, openid.metadata_url, environment="production")
    with pytest.raises(StartupError, match="BOT_OPENID_METADATA_URL"):
        build_app(settings)


async def test_production_refuses_to_run_without_an_app_id(database_url):
    with pytest.raises(StartupError, match="MicrosoftAppId"):
        build_app(_settings(database_url, environment="production"))


async def test_a_sender_without_an_entra_id_is_looked_up_once(bot):
    """Teams leaves from.aadObjectId out of some activities: the bot asks the Bot Connector
    for the member's profile (once per process), and knows them by it."""
    await bot.install("bob")
    bare = message("bob", "my tasks", bot.url)
    del bare["from"]["aadObjectId"]
    bob = user("bob")
    bot.connector.members[bob["id"]] = {**bob, "userPrincipalName": "bob@example.gov.uk"}
    for _ in range(2):
        resp = await bot.send(dict(bare, id=f"f:{time.monotonic_ns()}"))
        assert resp.status == 200
    said = [r for r in bot.connector.received if r.conversation_id == bare["conversation"]["id"]]
    assert all("don't know you" not in (r.text or "") for r in said)
    assert bot.connector.member_requests == [(bare["conversation"]["id"], bob["id"])]

    stranger = message("someone-else", "my tasks", bot.url)
    del stranger["from"]["aadObjectId"]
    assert "I don't know you yet" in await bot.say_activity(stranger)  # 404: a stranger


async def test_a_token_that_cannot_be_had_is_a_failed_call_not_a_crash(connector):
    """Entra unreachable or the sign-in refused: the call fails like a network failure
    (the dispatcher retries, a reply is logged as not delivered), naming only the type."""

    async def refused() -> str:
        raise ValueError("AADSTS7000215: Invalid client secret provided: s3cret")

    async with aiohttp.ClientSession() as session:
        client = Connector(session, TokenProvider(refused))
        with pytest.raises(aiohttp.ClientError) as failed:
            await client.send(connector.url, "a:conv", {"type": "message", "text": "hi"})
    assert isinstance(failed.value, TokenUnavailable)
    assert "s3cret" not in str(failed.value) and "AADSTS" not in str(failed.value)
    assert connector.received == []


# -- officer chat ---------------------------------------------------------------------------


async def test_my_tasks_names_the_nearest_known_address_for_a_report_without_one(bot):
    await bot.install("bob", "carol")
    await bot.say("carol", "off duty")  # both tasks go to bob
    await bot.report()  # 1 High Street, at NORTHGATE
    lat, lon = NORTHGATE[0] + 0.0002, NORTHGATE[1]  # about 22 m north, no address given
    await bot.report("graffiti", location={"lat": lat, "lon": lon})
    await bot.say("bob", "my tasks")
    [listing] = [r for r in bot.connector.received if r.card and "Your open tasks" in texts(r.card)]
    words = texts(listing.card)
    assert "Near 1 High Street (about 20 m)" in words
    assert f"{lat:.5f}" not in words


async def test_my_tasks_duty_and_help(bot):
    await bot.install("bob")
    task = await bot.report()
    await bot.card_for("bob")
    before = len(bot.connector.received)
    resp = await bot.send(message("bob", "My tasks!", bot.url))
    assert resp.status == 200
    [listing] = (await bot.connector.wait_for(lambda r: r.card is not None, count=2))[1:]
    assert_valid_card(listing.card)
    assert task["reference"] in texts(listing.card)
    assert len(bot.connector.received) == before + 1

    assert "off duty" in (await bot.say("bob", "off duty")).lower()
    second = await bot.report("litter", at=(51.9100, 0.8950))
    assert second["assignee"] == "carol"
    assert "on duty" in (await bot.say("bob", "On duty")).lower()
    assert "my tasks" in (await bot.say("bob", "help"))
    assert "didn't understand" in (await bot.say("bob", "make me a sandwich"))
    assert "don't know you" in (await bot.say("stranger", "my tasks"))


async def test_manager_links_a_team_channel(bot):
    reply = await bot.say("bob", "link team green", channel_team="grounds")
    assert "Only a manager" in reply
    reply = await bot.say("frank", "link team green", channel_team="grounds")
    assert "now gets Grounds and Trees" in reply
    await bot.install("grace")
    task = await bot.report("fallen-tree")
    channel = await bot.connector.wait_for(
        lambda r: r.conversation_id.startswith("19:grounds") and r.card is not None
    )
    assert verbs(channel[0].card) == {"accept"}
    assert task["team"] == "green"
    # The shared copy refreshes per person: the team's people are listed.
    assert "29:user-grace" in channel[0].card["refresh"]["userIds"]
    assert TENANT


async def test_an_idle_dispatcher_waits_for_work_instead_of_spinning(bot):
    """Its own claims must not wake it: that loop burnt a core while nothing was due."""
    dispatcher = bot.client.app[dispatcher_key]
    claims = 0
    claim = dispatcher.claim

    async def counting(limit: int):
        nonlocal claims
        claims += 1
        return await claim(limit)

    dispatcher.claim = counting
    await asyncio.sleep(1.5)  # poll_seconds is 1: one or two claims, not hundreds
    assert claims <= 3, claims
    await bot.install("bob")
    await bot.report()
    await bot.card_for("bob")  # and a commit that owes something still wakes it at once


# -- what each viewer's card lists (issue 16) -------------------------------------------------


def _recent(card: dict) -> list[str]:
    """The lines under the card's "Recent" heading."""
    words = texts(card).split("\n")
    after = words[words.index("Recent") + 1 :] if "Recent" in words else []
    return [w for w in after if " · " in w]


async def test_officers_see_what_people_did_and_managers_see_delivery_problems(bot):
    await bot.install("bob", "alice")
    reporter = {"name": "A Resident", "email": "a@example.com", "updates": ["email"]}
    task = await bot.report(reporter=reporter)
    await bot.card_for("bob")
    await bot.settle()
    # Without NOTIFY_API_KEY the reporter's email was recorded as not sent.
    notes = [e.note or "" for e in await bot.rows(task_events)]
    assert any("NOTIFY_API_KEY" in n for n in notes)
    await bot.click("bob", "accept", task, version=1)

    officer = (await bot.click("bob", "refresh", task, version=2))["value"]
    lines = _recent(officer)
    assert any("Accepted by Bob Warden" in line for line in lines)
    assert not any("Notify" in line or "not sent" in line for line in lines), lines
    assert "NOTIFY_API_KEY" not in texts(officer)

    manager = (await bot.click("alice", "refresh", task, version=2))["value"]
    lines = _recent(manager)
    assert any("Accepted by Bob Warden" in line for line in lines)
    problem = next(line for line in lines if "not sent" in line)
    assert "The reporter's email ('received') was not sent" in problem
    assert "ask whoever runs Responder" in problem and "NOTIFY_API_KEY" not in problem


DATE = r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun) \d{1,2} [A-Z][a-z]{2}( \d{4})?, \d\d:\d\d"


async def test_history_in_plain_words_newest_first_in_one_date_format(bot):
    await bot.install("bob", "carol")
    task = await bot.report()
    await bot.card_for("bob")
    await bot.click("bob", "handback", task, version=1, reason="Needs a van")
    [carols] = await bot.card_for("carol")
    lines = _recent(carols.card)
    assert " · Assigned to Carol Warden" in lines[0]  # newest first
    assert lines[1].endswith(" · Handed back by Bob Warden: Needs a van")
    assert lines[-1].endswith(" · Reported")
    for line in lines:
        assert re.match(DATE + " · ", line), line
    due = next(w for w in texts(carols.card).split("\n") if w.startswith("Due "))
    assert re.match("Due " + DATE, due), due

    listed = await bot.click("carol", "open", task, version=2)
    assert listed["statusCode"] == 200
    await bot.say("carol", "my tasks")
    [mine] = await bot.connector.wait_for(
        lambda r: r.card is not None and "Your open tasks" in texts(r.card)
    )
    row = next(w for w in texts(mine.card).split("\n") if "priority" in w)
    assert re.fullmatch(
        r"High priority · Assigned to you · Due " + DATE + r" · due in \d+ h( \d+ min)?", row
    ), row


async def test_where_is_under_the_title_and_a_missing_address_is_the_nearest_known(bot):
    await bot.install("bob", "carol")
    await bot.report()  # "1 High Street", at NORTHGATE
    lat, lon = NORTHGATE
    spot = {"lat": lat + 0.0004, "lon": lon}  # about 45 m north, no address given
    task = await bot.report("graffiti", location=spot)
    card = (await bot.click(task["assignee"], "refresh", task, version=1))["value"]
    top = [n.get("text") for n in card["body"][:4]]
    near = "\U0001f4cd Near 1 High Street (about 40 m)"
    assert top == ["Graffiti", task["reference"], near, None]  # then the Directions button
    [directions] = [a for n in card["body"] if n["type"] == "ActionSet" for a in n["actions"]]
    assert directions["url"] == (
        f"https://www.google.com/maps/dir/?api=1&destination={lat + 0.0004:.6f},{lon:.6f}"
    )
    # Nothing known within 150 m: the coordinates, never a network look-up.
    far = await bot.report("graffiti", location={"lat": lat + 0.01, "lon": lon})
    card = (await bot.click(far["assignee"], "refresh", far, version=1))["value"]
    assert f"\U0001f4cd {lat + 0.01:.5f}, {lon:.5f}" in texts(card)


async def test_photos_first_full_width_described_and_opened_by_a_tap(bot):
    await bot.install("bob")
    photos = ["https://forms.example/uploads/a.jpg", "https://forms.example/uploads/b.jpg"]
    task = await bot.report(photos=photos)
    [sent] = await bot.card_for("bob")
    images = []

    def walk(node):
        if isinstance(node, dict):
            if node.get("type") == "Image":
                images.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(sent.card["body"])
    assert [i["url"] for i in images] == photos
    first = images[0]
    assert first["size"] == "Stretch"
    assert first["altText"] == "Photo 1 of 2 from the report: Fly-tipping at 1 High Street"
    assert first["selectAction"] == {
        "type": "Action.OpenUrl",
        "title": "Open photo 1",
        "url": photos[0],
    }
    assert task["reference"] in texts(sent.card)


async def test_each_form_has_its_own_input_ids_and_old_cards_still_work(bot):
    await bot.install("bob")
    task = await bot.report()
    await bot.card_for("bob")
    card = (await bot.click("bob", "accept", task, version=1))["value"]
    ids: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            if str(node.get("type", "")).startswith("Input."):
                ids.append(node["id"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(card)
    assert sorted(ids) == ["completeNote", "outcome", "reason", "updateNote"]
    # The new ids are read as the note; "note" (cards sent before) still is.
    await bot.click("bob", "update", task, version=2, updateNote="Bags out")
    await bot.click("bob", "update", task, version=3, note="From an old card")
    await bot.click("bob", "complete", task, version=4, outcome="resolved", completeNote="Done")
    notes = [
        (e.action, e.note)
        for e in await bot.rows(task_events)
        if e.action in ("update", "complete")
    ]
    assert notes == [("update", "Bags out"), ("update", "From an old card"), ("complete", "Done")]
