"""Logs never carry what people typed or sent: every hostile case, both databases.

Each scenario sends something with a unique marker (notes, reasons, emails, phone numbers,
field names, descriptions) through the front doors (``/api/messages`` and ``/api/tasks``),
including a real database failure whose error text quotes the row being written, and then
searches everything logged, at every level, for every marker.
"""

from __future__ import annotations

import json
import logging

import pytest
from bot_harness import Bot, settings_for
from sqlalchemy import select, text
from support import AUTH, write_council

from fakes.teams import card_action, message
from responder.access_log import AccessLogger
from responder.app import build_app
from responder.settings import Settings
from responder.store.schema import task_events
from responder.web import db_key

# Distinct enough that a hit can only be a leak.
PHONE = "07700900456"
EMAIL = "zq-reporter@example.com"


@pytest.fixture
async def bot(aiohttp_client, database_url, connector) -> Bot:
    client = await aiohttp_client(build_app(settings_for(database_url)))
    bot = Bot(client, connector)
    await bot.install("bob", "carol", "cllr-hughes", "dan")
    return bot


async def invoke(bot: Bot, person: str, verb: str, data: object) -> dict:
    resp = await bot.send(card_action(person, verb, data, bot.url))  # type: ignore[arg-type]
    assert resp.status == 200, await resp.text()  # never a 5xx, never an empty body
    return await resp.json()


async def refuse_marked_notes(bot: Bot) -> None:
    """Make the database itself refuse notes containing 'zqfail', as a real failure would:
    PostgreSQL's error quotes the whole failing row; SQLite's driver error carries the SQL
    parameters. Either way the exception's text holds what was typed."""
    async with bot.client.app[db_key].write() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(
                text(
                    "ALTER TABLE task_events ADD CONSTRAINT refuse_marked_notes "
                    "CHECK (note IS NULL OR note NOT LIKE '%zqfail%')"
                )
            )
        else:
            await conn.execute(
                text(
                    "CREATE TRIGGER refuse_marked_notes BEFORE INSERT ON task_events "
                    "WHEN NEW.note LIKE '%zqfail%' "
                    "BEGIN SELECT RAISE(ABORT, 'refused'); END"
                )
            )


async def test_nothing_typed_reaches_the_log(bot, caplog):
    caplog.set_level(logging.DEBUG)
    markers = [PHONE, EMAIL]
    report = await bot.report()
    task_id = report["id"]
    owner = report["assignee"]
    assert (await invoke(bot, owner, "accept", {"taskId": task_id, "version": 1}))[
        "statusCode"
    ] == 200

    # Card clicks: every hostile input a person (or a forged click) can send.
    hostile: list[tuple[str, str, object]] = [
        ("update", owner, {"taskId": task_id, "note": f"zqnul\x00 call {PHONE}"}),
        ("update", owner, {"taskId": task_id, "note": "zqbig" + "x" * 100_000}),
        ("handback", owner, {"taskId": task_id, "reason": "zqbell\x07 ring"}),
        ("update", owner, {"taskId": task_id, "note": "zqsurrogate \ud800"}),
        ("reassign", owner, {"taskId": task_id, "officer": "zqofficer" * 20}),
        ("update", owner, {"taskId": task_id, "note": "fine", "zqfield": "zqvalue"}),
        ("update", owner, {"taskId": "zqid", "note": "zqstringid"}),
        ("update", owner, {"taskId": 10**30, "note": "zqhuge"}),
        ("update", owner, {"taskId": 2**63, "note": "zqpgmax"}),
        ("follow", "cllr-hughes", {"taskId": 10**30}),
        ("update", owner, {"taskId": task_id, "version": 2**70, "note": "zqversion"}),
        ("zqverb", owner, {"taskId": task_id}),
        ("update", "dan", {"taskId": task_id, "note": f"zqother {EMAIL}"}),
        ("update", "stranger", {"taskId": task_id, "note": "zqstranger"}),
        ("raise", "cllr-hughes", {"type": "litter", "location": "zqloc\x00", "description": "x"}),
    ]
    for verb, person, data in hostile:
        answer = await invoke(bot, person, verb, data)
        assert answer["statusCode"] < 500, (verb, answer)
    markers += ["zqnul", "zqbig", "zqbell", "zqsurrogate", "zqofficer", "zqfield", "zqvalue"]
    markers += ["zqid", "zqstringid", "zqhuge", "zqpgmax", "zqversion", "zqverb", "zqother"]
    markers += ["zqstranger", "zqloc"]

    # A real database failure while storing a typed note: the error names the row.
    await refuse_marked_notes(bot)
    note = f"zqfail the resident on {PHONE} says hello"
    answer = await invoke(bot, owner, "update", {"taskId": task_id, "version": 2, "note": note})
    assert answer["statusCode"] == 500 and "incident" in answer["value"]["message"]
    assert "card action failed" in caplog.text  # logged: type, place and incident id
    markers.append("zqfail")
    assert await bot.rows(task_events, task_events.c.note.is_not(None)) == []

    # Chat: references that are not, a raise through the questions, typed contact details.
    for words in (
        f"case zqcase {PHONE}",
        "follow RSP-" + "9" * 40,
        f"zqhello my number is {PHONE}",
    ):
        resp = await bot.send(message("cllr-hughes", words, bot.url))
        assert resp.status == 200
    markers.append("zqcase")
    markers.append("zqhello")

    # Intake: hostile bodies carrying contact details.
    reporter = {"name": "zqname", "email": EMAIL, "phone": PHONE}
    bodies = [
        {"type": "litter", "location": {"lat": True, "lon": 0.88}, "reporter": reporter},
        {"type": "litter", "location": {"lat": "51.9", "lon": 0.88}, "reporter": reporter},
        {"type": "zqtype", "location": {"lat": 51.9051, "lon": 0.8873}, "reporter": reporter},
        {
            "type": "litter",
            "description": "zqintake\x00",
            "location": {"lat": 51.9051, "lon": 0.8873},
            "reporter": {**reporter, "email": "zqbad@@example"},
        },
    ]
    for body in bodies:
        resp = await bot.client.post("/api/tasks", json=body, headers=AUTH)
        assert resp.status == 422
    resp = await bot.client.post(
        "/api/tasks",
        data=json.dumps(bodies[0]).encode(),
        headers={**AUTH, "Content-Type": "text/plain"},
    )
    assert resp.status == 415
    markers += ["zqname", "zqtype", "zqintake", "zqbad"]

    await bot.settle()
    logged = caplog.text + "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    leaked = [m for m in markers if m in logged]
    assert leaked == [], leaked
    # What was typed is nowhere in the database either (all of it was refused).
    async with bot.client.app[db_key].read() as conn:
        notes = (await conn.execute(select(task_events.c.note))).scalars().all()
    assert not [n for n in notes if n and "zq" in n]


async def test_the_access_log_keeps_keys_and_photo_tokens_out(
    aiohttp_server, aiohttp_client, database_url, tmp_path, caplog
):
    """Open311 clients send their api_key in the query string, and a photo's URL token is
    what keeps it private: the access log (the one ``responder serve`` uses) writes the
    path without its query and cuts the token."""

    def fixmystreet(data: dict) -> None:
        data["sources"] = {"fixmystreet": {"open311": {}}}

    secret = "zq-open311-api-key"
    settings = Settings(
        database_url=database_url,
        config_path=write_council(tmp_path, fixmystreet),
        intake_keys={"fixmystreet": secret},
        background=False,
    )
    server = await aiohttp_server(build_app(settings), access_log_class=AccessLogger)
    client = await aiohttp_client(server)
    with caplog.at_level(logging.INFO, "aiohttp.access"):
        resp = await client.get(
            "/open311/v2/servicerequestupdates.xml",
            params={
                "api_key": secret,
                "start_date": "2026-12-06T08:00:00Z",
                "end_date": "2026-12-06T09:00:00Z",
            },
        )
        assert resp.status == 200, await resp.text()
        assert (await client.get("/api/photos/zq-photo-token")).status == 404
    lines = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
    assert any('"GET /open311/v2/servicerequestupdates.xml" 200' in line for line in lines)
    assert any('"GET /api/photos/…" 404' in line for line in lines)
    assert secret not in caplog.text and "zq-photo-token" not in caplog.text
    assert "start_date" not in caplog.text
