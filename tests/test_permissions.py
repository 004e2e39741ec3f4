"""The permission matrix: who may see and who may change a task, on every path that shows one.

Every card verb (``refresh`` included) and the chat's read paths, for one of each kind of
person relative to the task, on an open (assigned), a queued (offered to a team) and a
completed task, through ``/api/messages`` on SQLite and PostgreSQL:

- whoever may see the task gets content (a card naming it);
- everyone else gets exactly what they would get for a task that does not exist, with
  no content at all;
- only the people the lifecycle allows change anything; nobody else's click changes a
  single row.

The machine-to-machine doors have their rows beside their tests, each row a test: Open311
(``tests/test_open311.py``: no key, a wrong key, a key without ``open311:``, a wrong
jurisdiction, the source itself, on every endpoint), forms packages
(``tests/test_intake_forms.py``: each source's key posts to its own source only, signatures,
replays) and subscribers (``tests/test_webhooks.py``: nothing unsigned, nothing personal).

The web pages and the data out have theirs beside their tests too, each role the same as
here (assignee, team officer, other team's officer, team manager, other team's manager,
councillor of the ward, of another ward, a person not in the council file, nobody signed
in), with the same one refusal for "not yours" and "does not exist":
``tests/test_web_task_page.py`` (the task page and every action from it),
``tests/test_web_tasks.py`` and ``tests/test_task_filter.py`` (the work list, every filter
inside the scope), ``tests/test_web_map.py`` (the map's data, wards and tiles),
``tests/test_web_performance.py``, ``tests/test_web_wards.py``, ``tests/test_feedback.py``
(residents' links: tampered, expired, forged), ``tests/test_web_auth.py`` (Entra and the
Teams tab's tokens), ``tests/test_web_browser.py`` (a councillor never sees another ward's
task by any URL, in a real browser), and for read keys ``tests/test_export_api.py``,
``tests/test_odata.py`` and ``tests/test_history_document.py`` (scoped keys, intake keys
refused, read keys cannot write).
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest
from bot_harness import Bot, settings_for
from sqlalchemy import func, insert, select
from support import AUTH, assert_valid_card

from fakes.teams import card_action, message, personal_conversation
from responder.app import build_app
from responder.store.schema import follows, task_events, tasks
from responder.web import db_key

ROLES = (
    "assignee",
    "team officer",
    "other team's officer",
    "team manager",
    "other team's manager",
    "ward councillor",
    "other ward's councillor",
    "follower from another team",
    "stranger",
)
# Who may see a task of any status: its team, its assignee, its ward's councillor, and
# anyone following it (e.g. an officer who raised it in another team's area).
SEES = {"assignee", "team officer", "team manager", "ward councillor", "follower from another team"}
# Who sees the task card (officers' names, internal history): the team and the assignee.
# The others who may see it get the public case card.
INTERNALS = {"assignee", "team officer", "team manager"}
KINDS = ("open", "queued", "completed")
VERBS = (
    "accept",
    "start",
    "update",
    "complete",
    "handback",
    "reassign",
    "priority",
    "cancel",
    "refresh",
    "open",
    "case",
    "follow",
    "unfollow",
    "attach",
)
MANAGING = ("priority", "cancel")  # a manager's own buttons
# Who changes state with each verb (the lifecycle table, written out as a reader checks
# it); following is a change too, open to whoever may see the case.
CHANGES: dict[tuple[str, str], set[str]] = {
    ("open", "accept"): {"assignee"},
    ("open", "handback"): {"assignee", "team manager"},
    ("open", "reassign"): {"team manager"},
    ("queued", "accept"): {"team officer"},
    ("queued", "reassign"): {"team manager"},
    **{(kind, verb): {"team manager"} for kind in ("open", "queued") for verb in MANAGING},
    **{(kind, "follow"): SEES - {"follower from another team"} for kind in KINDS},
    **{(kind, "unfollow"): {"follower from another team"} for kind in KINDS},
}
CARD = "application/vnd.microsoft.card.adaptive"

_points = itertools.count()


def northgate_point() -> tuple[float, float]:
    """A new point in Northgate, 34 m or more from every other (no duplicates)."""
    i = next(_points)
    return (51.9005 + (i // 30) * 0.0005, 0.8810 + (i % 30) * 0.0005)


def cast(kind: str, assignee: str | None) -> dict[str, str | None]:
    """The person in each role for a task of this kind (sc-north's, or green's queue)."""
    if kind == "queued":  # Grounds and Trees: routing "queue", all Northgate's wards
        team = {"team officer": "grace", "team manager": "frank"}
        others = {"other team's officer": "bob", "other team's manager": "alice"}
    else:  # Street Cleansing North, assigned to bob or carol (least loaded)
        other = "carol" if assignee == "bob" else "bob"
        team = {"team officer": other, "team manager": "alice"}
        others = {"other team's officer": "dan", "other team's manager": "frank"}
    return {
        "assignee": assignee,
        **team,
        **others,
        "ward councillor": "cllr-hughes",
        "other ward's councillor": "cllr-patel",
        "follower from another team": "erin",  # sc-south's officer; green's too for a queue
        "stranger": "stranger",
    }


@pytest.fixture
async def bot(aiohttp_client, database_url, connector, teams_runtime) -> Bot:
    settings = settings_for(database_url, background=False, teams_runtime=teams_runtime)
    client = await aiohttp_client(build_app(settings))
    bot = Bot(client, connector)
    people = ("alice", "frank", "bob", "carol", "dan", "erin", "grace", "henry")
    await bot.install(*people, "cllr-hughes", "cllr-patel")
    return bot


async def make_task(bot: Bot, kind: str) -> dict:
    type_ = "fallen-tree" if kind == "queued" else "fly-tipping"
    at = northgate_point()
    body = {
        "type": type_,
        "description": f"Matrix {kind} task",
        "location": {"lat": at[0], "lon": at[1], "address": "7 Matrix Row"},
    }
    resp = await bot.client.post("/api/tasks", json=body, headers=AUTH)
    assert resp.status == 201, await resp.text()
    task = await resp.json()
    async with bot.client.app[db_key].write() as conn:  # as if erin had raised it
        await conn.execute(
            insert(follows).values(
                person_id="erin", task_id=task["id"], created_at=datetime.now(UTC)
            )
        )
    if kind == "completed":
        for verb, extra in (("accept", {}), ("complete", {"outcome": "resolved"})):
            done = await invoke(bot, task["assignee"], verb, task["id"], extra)
            assert done["statusCode"] == 200
    expected = {"open": "assigned", "queued": "unassigned", "completed": "completed"}[kind]
    state = await current(bot, task["id"])
    assert state is not None and state[0][0] == expected, state
    return task


async def invoke(bot: Bot, person: str, verb: str, task_id: int, extra: dict) -> dict:
    state = await current(bot, task_id)
    data = {"taskId": task_id, **extra}
    if verb != "attach":  # what our cards send: the photo choice card carries no version
        data["version"] = state[0][2] if state else 1
    resp = await bot.send(card_action(person, verb, data, bot.url))
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    if body["type"] == CARD:
        assert_valid_card(body["value"])
    return body


async def current(bot: Bot, task_id: int):
    """Everything a click could change about one task."""
    async with bot.client.app[db_key].read() as conn:
        row = (
            await conn.execute(
                select(tasks.c.status, tasks.c.assignee, tasks.c.version, tasks.c.priority).where(
                    tasks.c.id == task_id
                )
            )
        ).first()
        if row is None:
            return None
        events = await conn.scalar(
            select(func.count()).select_from(task_events).where(task_events.c.task_id == task_id)
        )
        followers = (
            await conn.execute(
                select(follows.c.person_id)
                .where(follows.c.task_id == task_id)
                .order_by(follows.c.person_id)
            )
        ).all()
    return (tuple(row), events, tuple(f.person_id for f in followers))


def inputs(verb: str, roles: dict[str, str | None]) -> dict:
    return {
        "update": {"note": "Matrix note"},
        "complete": {"outcome": "resolved"},
        "handback": {"reason": "Not for me"},
        "reassign": {"officer": roles["team officer"]},
        "priority": {"priority": "low"},  # neither matrix task is low to begin with
        "cancel": {"cancelReason": "Matrix cancel"},
        "attach": {"photos": ["no-such-photo"]},
    }.get(verb, {})


@pytest.mark.parametrize("kind", KINDS)
async def test_every_card_verb_for_every_kind_of_person(bot, kind):
    shared = await make_task(bot, kind)  # for those who may not see it: nothing may change
    for role, verb in itertools.product(ROLES, VERBS):
        task = shared if role not in SEES else await make_task(bot, kind)
        roles = cast(kind, task["assignee"])
        person = roles[role]
        if person is None:
            continue  # a queued task has no assignee
        before = await current(bot, task["id"])
        answer = await invoke(bot, person, verb, task["id"], inputs(verb, roles))
        after = await current(bot, task["id"])
        where = (kind, role, person, verb)
        if role in SEES:
            assert answer["statusCode"] == 200 and answer["type"] == CARD, (where, answer)
            if verb != "attach":  # "no photos to add" may be all there is to say
                assert task["reference"] in str(answer["value"]), where
            if role not in INTERNALS:  # the public case card: no officer is named
                names = ("Bob Warden", "Carol Warden", "Grace Arborist", "Henry Gardener")
                assert not any(n in str(answer) for n in names), (where, answer)
        else:
            absent = await invoke(bot, person, verb, 10**9, inputs(verb, roles))
            assert answer == absent, (where, answer, absent)
            assert task["reference"] not in str(answer) and "Matrix" not in str(answer), where
        changed = before != after
        assert changed == (role in CHANGES.get((kind, verb), set())), (where, before, after)


@pytest.mark.parametrize("kind", KINDS)
async def test_chat_reads_follow_the_same_rule(bot, kind):
    task = await make_task(bot, kind)
    roles = cast(kind, task["assignee"])
    for role, person in roles.items():
        if person is None:
            continue
        for text in (f"case {task['reference']}", f"follow {task['reference']}"):
            before = len(bot.connector.received)
            resp = await bot.send(message(person, text, bot.url))
            assert resp.status == 200
            conv = personal_conversation(person)
            said = [r for r in bot.connector.received[before:] if r.conversation_id == conv]
            content = " ".join(str(r.card) + (r.text or "") for r in said)
            if role in SEES:
                assert task["reference"] in content and "can't find" not in content, (role, text)
            else:
                assert "Matrix" not in content and "7 Matrix Row" not in content, (role, text)
                assert "can't find" in content or "don't know you" in content, (role, text)
    # The same refusal for a case that does not exist.
    before = len(bot.connector.received)
    await bot.send(message("dan", "case RSP-999999", bot.url))
    absent = bot.connector.received[before:][0].text
    await bot.send(message("dan", f"case {task['reference']}", bot.url))
    refused = bot.connector.received[-1].text
    assert refused.replace(task["reference"], "RSP-999999") == absent


async def test_the_public_case_card_for_those_outside_the_team(bot):
    """A councillor of the ward (or an officer following a case outside their team) sees
    the public case card: no officer's name, no internal history."""
    task = await make_task(bot, "open")
    officer = "Bob Warden" if task["assignee"] == "bob" else "Carol Warden"
    answer = await invoke(bot, "cllr-hughes", "refresh", task["id"], {})
    assert task["reference"] in str(answer) and officer not in str(answer)
    answer = await invoke(bot, task["assignee"], "refresh", task["id"], {})
    assert officer in str(answer)  # the team's own card names who has it


async def test_the_task_api_sees_everything_with_an_intake_key(bot):
    task = await make_task(bot, "open")
    resp = await bot.client.get(f"/api/tasks/{task['id']}", headers=AUTH)
    assert resp.status == 200 and (await resp.json())["reference"] == task["reference"]
    for ident in ("0", "-1", str(2**63), str(10**30), "RSP-" + "9" * 30):
        resp = await bot.client.get(f"/api/tasks/{ident}", headers=AUTH)
        assert resp.status == 404, ident
    resp = await bot.client.get(f"/api/tasks/{task['id']}")
    assert resp.status == 401 and "Matrix" not in await resp.text()
