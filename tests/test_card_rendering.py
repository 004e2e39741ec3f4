"""Every card the bot sends, rendered as Teams on a phone would: 390 px wide, light and dark.

The cards are not written by hand: a scenario drives Responder itself through /api/messages,
intake, the escalation run and the digest (a fake Bot Connector records what is sent; card
actions' answers are kept too), and each distinct card is named by who sees it and when,
e.g. ``officer-task-started`` or ``manager-escalation``.

tests/render/render.mjs then renders each with Microsoft's ``adaptivecards`` renderer (npm,
pinned in tests/render/package.json) in headless Chromium (Debian's ``/usr/bin/chromium``,
or ``$CHROMIUM``), with Teams' own host configs and container CSS for the light and the dark
theme (from the ``adaptivecards-designer`` package: "Microsoft Teams - Light/Dark"; Liberation
Sans stands in for Segoe UI), and checks, with every show card and the overflow menu ("...")
opened in turn:

- (a) no action button's label is cut short (ellipsis, overflow, pushed outside the card),
  and no action is left out for being beyond the host's maxActions;
- (b) every visible text's colour against its effective background is at least 4.5:1
  (WCAG relative luminance, backgrounds composited up to the card's own).

Screenshots: bench/results/cards/<theme>/<kind>.png, and <kind>--<button>.png with that
show card open; the cards as rendered are in bench/results/cards/cards.json and the
measurements in bench/results/cards/results.json. CI keeps bench/results/ as artefacts.

Needs Node, ``npm ci --prefix tests/render`` and Chromium (.ci/run installs both); it fails
when they are missing. RESPONDER_RENDER=off skips it, for a machine without a browser.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from bot_harness import Bot, settings_for
from sqlalchemy import update
from support import EXAMPLES, ROOT

from fakes.teams import card_action
from responder.app import build_app
from responder.commands.digest import send_digests
from responder.commands.escalate import REMIND_BEFORE, run_escalations
from responder.store.schema import tasks
from responder.web import db_key, domain_key

RENDER = ROOT / "tests" / "render"
RESULTS = ROOT / "bench" / "results" / "cards"
CARD = "application/vnd.microsoft.card.adaptive"
ROLES = {
    p["id"]: p["role"] for p in yaml.safe_load((EXAMPLES / "council.yaml").read_text())["people"]
}
# Points in Northgate, a few metres apart (further than the duplicate distance).
SPOTS = [(51.9051 + i * 0.0009, 0.8873 + i * 0.0009) for i in range(8)]


@pytest.fixture
def database_url(tmp_path) -> str:
    """SQLite only: what a card looks like does not depend on the database."""
    return f"sqlite:///{tmp_path / 'responder.db'}"


@pytest.fixture
async def bot(aiohttp_client, database_url, connector) -> Bot:
    client = await aiohttp_client(build_app(settings_for(database_url)))
    return Bot(client, connector)


class Cards:
    """The distinct cards seen, by name (role, then what the card is for)."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot
        self.kinds: dict[str, dict[str, Any]] = {}
        self._shapes: set[str] = set()
        self._mark = 0

    def add(self, name: str, card: dict[str, Any]) -> None:
        shape = _shape(card)
        if shape in self._shapes:
            return  # the same card again (a PUT of what an action answered, a second officer)
        self._shapes.add(shape)
        unique, n = name, 2
        while unique in self.kinds:
            unique, n = f"{name}-{n}", n + 1
        self.kinds[unique] = card

    async def sent(self, label: str, after_click: bool = False) -> None:
        """Name what the bot sent since the last call ``<role>-<label>``; after a card action,
        ``-copy`` for a copy already in a chat updated in place, ``-message`` for a new one."""
        await self.bot.settle()
        new = self.bot.connector.received[self._mark :]
        self._mark = len(self.bot.connector.received)
        for item in new:
            if item.card is not None:
                suffix = ("-copy" if item.method == "PUT" else "-message") if after_click else ""
                self.add(f"{_role(item.conversation_id)}-{label}{suffix}", item.card)

    async def click(self, person: str, verb: str, task: dict | None, label: str, **inputs) -> None:
        """A card action by ``person``; the card it answers with is ``<role>-<label>``."""
        version = inputs.pop("version", "current")
        data: dict[str, Any] = dict(inputs)
        if task is not None:
            data["taskId"] = task["id"]
            if version == "current":
                version = (await _task(self.bot, task["id"])).version
            if version is not None:
                data["version"] = version
        resp = await self.bot.send(card_action(person, verb, data, self.bot.url))
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        if body.get("type") == CARD:
            self.add(f"{ROLES.get(person, 'stranger')}-{label}", body["value"])
        await self.sent(label, after_click=True)

    async def say(self, person: str, text: str, label: str, **kw) -> None:
        await self.bot.say(person, text, **kw)
        await self.sent(label)


def _role(conversation_id: str) -> str:
    if conversation_id.startswith("a:personal-"):
        return ROLES.get(conversation_id.removeprefix("a:personal-"), "stranger")
    return "channel"


def _shape(card: dict[str, Any]) -> str:
    """A card without what differs between two copies of the same kind: ids, numbers, refresh."""
    copy = {k: v for k, v in card.items() if k != "refresh"}
    text = json.dumps(copy, sort_keys=True)
    return re.sub(r"\d+", "0", text)


async def _task(bot: Bot, task_id: int):
    [row] = await bot.rows(tasks, tasks.c.id == task_id)
    return row


async def _age(bot: Bot, task_id: int, by: timedelta) -> None:
    row = await _task(bot, task_id)
    async with bot.client.app[db_key].write() as conn:
        await conn.execute(
            update(tasks)
            .where(tasks.c.id == task_id)
            .values(created_at=row.created_at - by, due_at=row.due_at - by)
        )


async def _escalate(bot: Bot) -> None:
    app = bot.client.app
    now = datetime.now(UTC)
    await run_escalations(app[db_key], app[domain_key].council, now, now - timedelta(minutes=2))


@pytest.fixture
async def card_kinds(bot: Bot) -> dict[str, dict[str, Any]]:
    """Every kind of card Responder sends, from one working day driven through the bot."""
    cards = Cards(bot)
    await bot.install("alice", "frank", "bob", "carol", "grace", "henry")
    await bot.install("cllr-hughes", "cllr-patel")
    await cards.sent("welcome")
    await cards.say("frank", "link team green", "link-team", channel_team="grounds")

    # New tasks of each priority: high, urgent and normal to sc-north's officers; a low one
    # to the green team's queue (its officers and its channel).
    high = await bot.report("fly-tipping", at=SPOTS[0])
    await cards.sent("task-new-high")
    urgent = await bot.report("needles", at=SPOTS[1])
    await cards.sent("task-new-urgent")
    normal = await bot.report("litter", at=SPOTS[2])
    await cards.sent("task-new-normal")
    low = await bot.report("grass-cutting", at=SPOTS[3])
    await cards.sent("queue-task-new-low")

    # An officer works the high one through: accept, start, a note, complete.
    officer = high["assignee"]
    await cards.click(officer, "accept", high, "task-accepted")
    await cards.click(officer, "start", high, "task-started")
    await cards.click(officer, "update", high, "task-updated", note="Bags removed, mattress next")
    await cards.click(officer, "complete", high, "task-completed", outcome="resolved", note="Done")
    # A click on the old card, and someone else's click.
    await cards.click(officer, "accept", high, "stale-click", version=1)
    other = "carol" if normal["assignee"] == "bob" else "bob"
    await cards.click(other, "accept", normal, "not-yours")
    await cards.click("stranger", "accept", normal, "unknown-person")
    # Hand back: the old copy says who has it now; the next officer gets it.
    await cards.click(normal["assignee"], "handback", normal, "task-handed-back", reason="Van")
    # The queue: first to accept takes it; the other officer's copy says so.
    await cards.click("grace", "accept", low, "queue-task-accepted")
    await cards.click("henry", "accept", low, "queue-task-taken")

    # A manager looks at a task (with reassign) and moves it.
    await cards.click("alice", "refresh", urgent, "task-manager-view")
    move_to = "carol" if urgent["assignee"] == "bob" else "bob"
    await cards.click("alice", "reassign", urgent, "task-reassigned", officer=move_to)

    # Escalation (urgent, not accepted in 30 minutes), reminder before due, then overdue.
    late = await bot.report("needles", at=SPOTS[4])
    await cards.sent("task-new-urgent-2")
    await _age(bot, late["id"], timedelta(minutes=31))
    await _escalate(bot)
    await cards.sent("escalation")
    await cards.click(late["assignee"], "accept", late, "task-accepted-urgent")
    until_due = (await _task(bot, late["id"])).due_at - datetime.now(UTC)
    await _age(bot, late["id"], until_due - REMIND_BEFORE + timedelta(minutes=1))
    await _escalate(bot)
    await cards.sent("reminder")
    await _age(bot, late["id"], REMIND_BEFORE)
    await _escalate(bot)
    await cards.sent("overdue")

    # Officers' and managers' questions.
    await cards.say(officer, "my tasks", "my-tasks")
    await cards.say("henry", "my tasks", "my-tasks-none")
    await cards.say("alice", "my tasks", "my-tasks")
    await cards.say(officer, f"case {urgent['reference']}", "case-answer")

    # Councillors: follow, their cases, a ward, one case, raising a task.
    await cards.say("cllr-patel", "status of my cases", "my-cases-none")
    await cards.click("cllr-hughes", "follow", {"id": urgent["id"]}, "case-followed", version=None)
    await cards.say("cllr-hughes", f"follow {late['reference']}", "follow-by-text")
    await cards.say("cllr-hughes", "status of my cases", "my-cases")
    await cards.say("cllr-hughes", "what's open in Northgate", "ward-summary")
    await cards.say("cllr-hughes", f"case {urgent['reference']}", "case")
    await cards.click(
        move_to, "complete", urgent, "task-completed-followed", outcome="resolved", note="Gone"
    )
    await cards.say("cllr-hughes", "raise a task", "raise-form")
    await cards.click(
        "cllr-hughes",
        "raise",
        None,
        "raise-refused",
        type="graffiti",
        location="51.5, -0.1",
        description="Tags",
    )
    await cards.click(
        "cllr-hughes",
        "raise",
        None,
        "raised",
        type="graffiti",
        location="Northgate, by the park gates",
        description="Tags on the wall",
    )
    await cards.click(
        "cllr-hughes", "unfollow", {"id": urgent["id"]}, "case-unfollowed", version=None
    )

    # The managers' digest.
    db, domain = bot.client.app[db_key], bot.client.app[domain_key]
    await send_digests(db, domain, datetime.now(UTC) + timedelta(seconds=1), "sc-north")
    await cards.sent("digest")
    await send_digests(db, domain, datetime.now(UTC) + timedelta(seconds=2), "green")
    await cards.sent("digest-green")
    await cards.say("bob", "help", "help")
    return cards.kinds


def _browser() -> str:
    return os.environ.get("CHROMIUM", "/usr/bin/chromium")


def _failures(entry: dict[str, Any]) -> list[str]:
    lines = []
    if entry.get("error"):
        lines.append(f"did not render: {entry['error'].splitlines()[0]}")
    for t in entry["truncated"]:
        lines.append(f"button {t['label']!r} cut short: {t['reason']}")
    for d in entry["dropped"]:
        lines.append(f"button {d['label']!r} not shown: beyond the host's maxActions")
    for c in entry["contrast"]:
        lines.append(
            f"contrast {c['ratio']}:1 < 4.5:1 for {c['text']!r} "
            f"({c['shown_as']} on {c['background']}, {c['size']} weight {c['weight']})"
        )
    return lines


@pytest.fixture
def node() -> str:
    """Node, with tests/render's packages and a browser: a failure if any is missing (CI
    installs them), unless RESPONDER_RENDER=off says this machine renders nothing."""
    if os.environ.get("RESPONDER_RENDER") == "off":
        pytest.skip("RESPONDER_RENDER=off: cards are not rendered on this machine")
    node = shutil.which("node")
    problems = []
    if node is None:
        problems.append("node is not installed")
    if not Path(_browser()).exists():
        problems.append(f"no Chromium at {_browser()} (apt-get install -y chromium)")
    if not (RENDER / "node_modules" / "adaptivecards").is_dir():
        problems.append("tests/render has no node_modules (npm ci --prefix tests/render)")
    if problems or node is None:
        pytest.fail("cannot render cards: " + "; ".join(problems) + " (RESPONDER_RENDER=off skips)")
    return node


def test_every_card_reads_at_phone_width_in_both_themes(node, card_kinds):
    """See the module docstring; screenshots in bench/results/cards/<theme>/<kind>.png."""
    assert len(card_kinds) >= 20, sorted(card_kinds)
    if RESULTS.exists():
        shutil.rmtree(RESULTS)  # only today's cards: no screenshots of kinds since renamed
    RESULTS.mkdir(parents=True)
    cards_path, results_path = RESULTS / "cards.json", RESULTS / "results.json"
    cards_path.write_text(
        json.dumps([{"kind": k, "card": c} for k, c in card_kinds.items()], indent=2)
    )
    done = subprocess.run(
        [node, str(RENDER / "render.mjs"), str(cards_path), str(results_path), str(RESULTS)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"render.mjs failed:\n{done.stdout}\n{done.stderr}"
    results = json.loads(results_path.read_text())
    assert {(r["kind"], r["theme"]) for r in results} == {
        (k, theme) for k in card_kinds for theme in ("light", "dark")
    }

    report: dict[str, list[str]] = {}
    for entry in results:
        for line in _failures(entry):
            report.setdefault(entry["kind"], []).append(f"  [{entry['theme']}] {line}")
    summary = "\n".join(f"{kind}:\n" + "\n".join(lines) for kind, lines in sorted(report.items()))
    (RESULTS / "failures.txt").write_text(summary + "\n" if summary else "none\n")
    assert not report, (
        f"{len(report)} of {len(card_kinds)} card kinds fail at 390 px "
        f"(screenshots in {RESULTS.relative_to(ROOT)}/<theme>/<kind>.png):\n{summary}"
    )
