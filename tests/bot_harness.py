"""The service with its dispatcher running, driven through /api/messages and intake."""

from __future__ import annotations

import asyncio

from sqlalchemy import select
from support import AUTH, EXAMPLES, INTAKE_SECRET, assert_valid_card

from fakes.connector import FakeConnector
from fakes.teams import card_action, install, message, personal_conversation
from responder.settings import Settings
from responder.store.schema import outbox
from responder.web import db_key

NORTHGATE = (51.9051, 0.8873)


class Bot:
    """The service with its dispatcher running, and a fake Bot Connector beside it."""

    def __init__(self, client, connector: FakeConnector) -> None:
        self.client = client
        self.connector = connector

    @property
    def url(self) -> str:
        return self.connector.url

    async def send(self, activity: dict, headers: dict | None = None):
        return await self.client.post("/api/messages", json=activity, headers=headers or {})

    async def install(self, *person_ids: str) -> None:
        for person_id in person_ids:
            resp = await self.send(install(person_id, self.url))
            assert resp.status == 200

    async def say(self, person_id: str, text: str, **kw) -> str:
        return await self.say_activity(message(person_id, text, self.url, **kw))

    async def say_activity(self, activity: dict) -> str:
        """Send a message activity; the text of what the bot answered."""
        before = len(self.connector.received)
        resp = await self.send(activity)
        assert resp.status == 200
        new = self.connector.received[before:]
        return "\n".join(r.text or "" for r in new if r.text)

    async def report(self, type_: str = "fly-tipping", at=NORTHGATE, **extra) -> dict:
        body = {
            "type": type_,
            "description": "Mattress by the bus stop",
            "location": {"lat": at[0], "lon": at[1], "address": "1 High Street"},
            **extra,
        }
        resp = await self.client.post("/api/tasks", json=body, headers=AUTH)
        assert resp.status == 201, await resp.text()
        return await resp.json()

    async def click(
        self, person_id: str, verb: str, task: dict, version: int | None = None, **inputs
    ) -> dict:
        data = {"taskId": task["id"], "version": version or 1, **inputs}
        resp = await self.send(card_action(person_id, verb, data, self.url))
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        if body["type"] == "application/vnd.microsoft.card.adaptive":
            assert_valid_card(body["value"])
        return body

    async def card_for(self, person_id: str, count: int = 1):
        conv = personal_conversation(person_id)
        received = await self.connector.wait_for(
            lambda r: r.conversation_id == conv and r.card is not None, count=count
        )
        for item in received:
            assert_valid_card(item.card)
        return received

    async def rows(self, table, *where):
        async with self.client.app[db_key].read() as conn:
            return (await conn.execute(select(table).where(*where))).all()

    async def settle(self) -> None:
        """Wait until the outbox has nothing left that is due."""
        for _ in range(200):
            pending = await self.rows(outbox, outbox.c.status == "pending")
            if not pending:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"outbox did not settle: {pending}")


APP_ID = "00000000-0000-4000-8000-00000000b07d"  # the bot's client id when tokens are checked


def signed_settings(database_url: str, metadata_url: str, **kw) -> Settings:
    """Settings of a bot with an app id, whose tokens are checked against the keys
    published at ``metadata_url`` (tests/fake_openid.py)."""
    return settings_for(
        database_url,
        app_id=APP_ID,
        app_password="not-used",
        bot_openid_metadata_url=metadata_url,
        **kw,
    )


def settings_for(database_url: str, **kw) -> Settings:
    return Settings(
        database_url=database_url,
        intake_keys={"forms": INTAKE_SECRET},
        # Scheduled digests and escalations are driven by their own tests.
        **{"scheduler": False, "config_path": EXAMPLES / "council.yaml", **kw},
    )
