"""Officers' photos: sent to the bot in Teams, added to their task, shown on its card.

Through the front door: real Teams message activities with image attachments to
/api/messages, the images served by the fake Bot Connector (inline pictures, which need
the bot's token) and by a file host on 127.0.0.1 (paperclip files' pre-authorised
downloadUrl, which must never see the token; allowed as RESPONDER_DEV_ATTACHMENT_ORIGINS).
A listener on 127.0.0.1 stands for everything internal the bot must never be made to fetch.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from bot_harness import APP_ID, Bot, settings_for, signed_settings
from sqlalchemy import select, update
from support import assert_valid_card

from fakes.connector import FakeConnector
from fakes.teams import card_action, message, personal_conversation
from responder.app import StartupError, build_app, photos_key
from responder.bot.attachment_policy import DEFAULT_ATTACHMENT_HOSTS
from responder.bot.photos import COUNCILLOR, FAILED, NO_TASK, NOT_A_PHOTO, TOO_BIG
from responder.settings import Settings, SettingsError
from responder.store.schema import outbox, people, photos, task_events, tasks
from responder.web import db_key

PUBLIC = "https://responder.sample-borough.gov.uk"
FILE_INFO = "application/vnd.microsoft.teams.file.download.info"
CARD = "application/vnd.microsoft.card.adaptive"
# Real images as far as anyone can tell from their first bytes (that is all that is read).
JPEG = (
    b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + bytes(range(256)) * 8
)
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4
GIF = b"GIF89a\x01\x00\x01\x00\x80\x00\x00" + bytes(range(256))
WEBP = b"RIFF\x24\x08\x00\x00WEBPVP8 " + bytes(range(256)) * 2
HTML = b"<!doctype html><p>not a picture</p>"
TEN_MB = 10 * 1024 * 1024


# -- the other side: a file host for paperclip files ----------------------------------------


@dataclass
class FileHost:
    """OneDrive/SharePoint as far as a bot sees it: GET a pre-authorised download URL."""

    files: dict[str, tuple[str, bytes, bool]] = field(default_factory=dict)  # chunked?
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    # Names answered with a 302 to elsewhere, by target URL.
    redirects: dict[str, str] = field(default_factory=dict)
    url: str = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/files/{name}", self._get)
        return app

    async def _get(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        self.requests.append((name, request.headers.get("Authorization")))
        if name in self.redirects:
            raise web.HTTPFound(self.redirects[name])
        if name not in self.files:
            return web.Response(status=404)
        content_type, data, chunked = self.files[name]
        if not chunked:
            return web.Response(body=data, content_type=content_type)
        resp = web.StreamResponse()  # no Content-Length: the size shows only while reading
        resp.content_type = content_type
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        try:
            for i in range(0, len(data), 256 * 1024):
                await resp.write(data[i : i + 256 * 1024])
            await resp.write_eof()
        except ConnectionError:
            pass  # the bot stopped reading: that is the point
        return resp

    def attachment(self, name: str, data: bytes, file_type: str, **kw) -> dict:
        """A paperclip file as Teams puts it on the message (personal chat)."""
        self.files[name] = ("application/octet-stream", data, kw.get("chunked", False))
        return {
            "contentType": FILE_INFO,
            "contentUrl": f"https://sample-my.sharepoint.com/personal/bob/Documents/{name}",
            "name": name,
            "content": {
                "downloadUrl": f"{self.url}/files/{name}",
                "uniqueId": str(uuid.uuid4()),
                "fileType": file_type,
            },
        }


def inline(connector: FakeConnector, data: bytes, content_type: str = "image/*") -> dict:
    """A picture pasted or taken in the compose box: on the Bot Connector, by id."""
    aid = f"0-weu-d1-{uuid.uuid4().hex}"
    connector.attachments[aid] = ("image/jpeg", data)
    return {"contentType": content_type, "contentUrl": connector.attachment_url(aid)}


def html_copy() -> dict:
    """The text/html copy of the message body Teams adds to every message."""
    return {
        "contentType": "text/html",
        "content": '<p><img itemtype="http://schema.skype.com/AMSImage" src="https://eu-api.asm'
        '.skype.com/v1/objects/0-weu-d1-x/views/imgo" width="250" height="250"></p>',
    }


@pytest.fixture
async def files(aiohttp_server) -> FileHost:
    host = FileHost()
    server = await aiohttp_server(host.app())
    host.url = str(server.make_url("")).rstrip("/")
    return host


@dataclass
class Listener:
    """Something internal on 127.0.0.1: counts every connection and request it gets.

    It would answer with a JPEG, so a photo stored from it could not go unnoticed.
    """

    connections: int = 0
    requests: list[str] = field(default_factory=list)
    port: int = 0

    async def start(self) -> None:
        self._handler = web.Server(self._handle)

        def protocol():
            self.connections += 1  # before any byte is read: TLS or not, it was reached
            return self._handler()

        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(protocol, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _handle(self, request: web.BaseRequest) -> web.Response:
        self.requests.append(request.path_qs)
        return web.Response(body=JPEG, content_type="image/jpeg")

    async def close(self) -> None:
        self._server.close()
        await self._server.wait_closed()
        await self._handler.shutdown(1)


@pytest.fixture
async def listener():
    internal = Listener()
    await internal.start()
    yield internal
    await internal.close()


@pytest.fixture
async def bot(aiohttp_client, database_url, connector, files) -> Bot:
    settings = settings_for(database_url, public_url=PUBLIC, dev_attachment_origins=(files.url,))
    client = await aiohttp_client(build_app(settings))
    return Bot(client, connector)


async def send_photos(bot: Bot, person_id: str, attachments: list[dict], **kw) -> list:
    """Send a message carrying ``attachments``; what the bot posted back to that chat."""
    before = len(bot.connector.received)
    activity = message(person_id, "", bot.url, attachments=[*attachments, html_copy()])
    resp = await bot.send(activity, **kw)
    assert resp.status == 200, await resp.text()
    conv = personal_conversation(person_id)
    new = bot.connector.received[before:]
    return [r for r in new if r.conversation_id == conv and r.method == "POST"]


async def attach_click(bot: Bot, person_id: str, data: dict) -> dict:
    resp = await bot.send(card_action(person_id, "attach", data, bot.url))
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["statusCode"] == 200 and body["type"] == CARD, body
    assert_valid_card(body["value"])
    return body["value"]


def texts(card: dict) -> str:
    found: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            for key in ("text", "title", "altText"):
                if isinstance(node.get(key), str):
                    found.append(node[key])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(card)
    return "\n".join(found)


def executes(card: dict) -> list[dict]:
    found: list[dict] = []

    def walk(node):
        if isinstance(node, dict):
            if node.get("type") == "Action.Execute" and node.get("verb") != "refresh":
                found.append(node)
            for key, value in node.items():
                if key != "refresh":
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(card)
    return found


def images(card: dict) -> list[str]:
    return re.findall(rf"{re.escape(PUBLIC)}/api/photos/[A-Za-z0-9_-]+", json.dumps(card))


async def bob_takes_a_task(bot: Bot) -> tuple[dict, object]:
    """Bob has the bot and one fly-tipping task, accepted; returns it and its first card."""
    await bot.install("bob")
    task = await bot.report()
    assert task["assignee"] == "bob"
    [first] = await bot.card_for("bob")
    await bot.click("bob", "accept", task, version=1)
    await bot.settle()
    return task, first


# -- one task in hand: added at once ---------------------------------------------------------


async def test_photo_goes_on_the_one_task_in_hand_and_its_card(bot):
    task, first = await bob_takes_a_task(bot)
    [reply] = await send_photos(bot, "bob", [inline(bot.connector, JPEG)])
    assert reply.text == f"Added the photo to {task['reference']} (Fly-tipping, 1 High Street)."

    [row] = await bot.rows(photos)
    assert (row.task_id, row.person_id, row.content_type) == (task["id"], "bob", "image/jpeg")
    assert bytes(row.data) == JPEG and len(row.token) >= 43
    url = f"{PUBLIC}/api/photos/{row.token}"
    [t] = await bot.rows(tasks)
    assert (t.photos, t.version, t.status) == ([url], 3, "accepted")
    last = (await bot.rows(task_events))[-1]
    assert (last.action, last.actor, last.from_status, last.to_status) == (
        "photo",
        "bob",
        "accepted",
        "accepted",
    )
    [refresh] = await bot.rows(outbox, outbox.c.idempotency_key == f"refresh:{task['id']}:3")
    assert refresh.kind == "teams.refresh" and refresh.payload == {
        "task_id": task["id"],
        "version": 3,
    }

    # The card already in the chat is updated in place and shows the photo.
    [put] = await bot.connector.wait_for(
        lambda r: r.method == "PUT" and r.card is not None and url in json.dumps(r.card)
    )
    assert put.activity_id == first.activity_id
    assert_valid_card(put.card)
    assert images(put.card) == [url, url]  # the image and its tap-to-open link
    # No app id here, so no token to send; the picture came from the Bot Connector.
    assert [auth for _, auth in bot.connector.attachment_requests] == [None]

    # And the card's image is there to fetch, privately cached, never sniffed as HTML.
    resp = await bot.client.get(f"/api/photos/{row.token}")
    assert resp.status == 200
    assert await resp.read() == JPEG
    assert resp.headers["Content-Type"] == "image/jpeg"
    assert resp.headers["Cache-Control"] == "private, max-age=86400"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"


async def test_unknown_photo_tokens_are_404(bot):
    for token in ["A" * 43, "nope", "x" * 65, "..%2F..%2Fetc"]:
        resp = await bot.client.get(f"/api/photos/{token}")
        assert resp.status == 404, token
        assert (await resp.json())["error"] == "not_found"


# -- several tasks: the officer chooses -------------------------------------------------------


async def test_several_tasks_ask_which_then_the_click_attaches(bot, files):
    await bot.install("bob", "carol")
    async with bot.client.app[db_key].write() as conn:
        await conn.execute(update(people).where(people.c.id == "carol").values(on_duty=False))
    litter = await bot.report("fly-tipping")
    graffiti = await bot.report("graffiti")
    assert litter["assignee"] == graffiti["assignee"] == "bob"
    cards = await bot.card_for("bob", count=2)
    graffiti_card = next(r for r in cards if graffiti["reference"] in json.dumps(r.card))
    await bot.settle()

    # Neither accepted yet: both are open, so the bot asks. One pasted, one paperclip file.
    sent = await send_photos(
        bot, "bob", [inline(bot.connector, JPEG), files.attachment("IMG_0042.webp", WEBP, "webp")]
    )
    [choice] = [r for r in sent if r.card is not None]
    assert_valid_card(choice.card)
    assert "Which task are these 2 photos for?" in texts(choice.card)
    buttons = executes(choice.card)
    assert [b["verb"] for b in buttons] == ["attach", "attach"]
    assert {b["data"]["taskId"] for b in buttons} == {litter["id"], graffiti["id"]}
    tokens = buttons[0]["data"]["photos"]
    assert len(tokens) == 2 and all(b["data"]["photos"] == tokens for b in buttons)
    pending = await bot.rows(photos)
    assert {(p.token, p.task_id, p.person_id) for p in pending} == {
        (t, None, "bob") for t in tokens
    }
    assert {p.content_type for p in pending} == {"image/jpeg", "image/webp"}
    # Not on any task yet, so not served.
    assert (await bot.client.get(f"/api/photos/{tokens[0]}")).status == 404
    assert files.requests == [("IMG_0042.webp", None)]

    # Someone else's click with Bob's photos is refused and changes nothing.
    card = await attach_click(bot, "carol", {"taskId": graffiti["id"], "photos": tokens})
    assert "Only the assigned officer or a manager" in texts(card)
    assert all(p.task_id is None for p in await bot.rows(photos))

    card = await attach_click(bot, "bob", {"taskId": graffiti["id"], "photos": tokens})
    assert "2 photos added." in texts(card)
    urls = [f"{PUBLIC}/api/photos/{t}" for t in tokens]
    assert images(card) == [urls[0], urls[0], urls[1], urls[1]]
    rows = {r.id: r for r in await bot.rows(tasks)}
    assert (rows[graffiti["id"]].photos, rows[graffiti["id"]].version) == (urls, 2)
    assert (rows[litter["id"]].photos, rows[litter["id"]].version) == ([], 1)
    assert {p.task_id for p in await bot.rows(photos)} == {graffiti["id"]}
    [put] = await bot.connector.wait_for(
        lambda r: r.method == "PUT" and r.activity_id == graffiti_card.activity_id
    )
    assert_valid_card(put.card)
    assert images(put.card) == images(card)
    for token, data in zip(tokens, (JPEG, WEBP), strict=True):
        resp = await bot.client.get(f"/api/photos/{token}")
        assert (resp.status, await resp.read()) == (200, data)

    # The same click again, or on the other task: nothing more happens.
    card = await attach_click(bot, "bob", {"taskId": graffiti["id"], "photos": tokens})
    assert "Already added to this task." in texts(card)
    card = await attach_click(bot, "bob", {"taskId": litter["id"], "photos": tokens})
    assert f"Already added to {graffiti['reference']}." in texts(card)
    rows = {r.id: r for r in await bot.rows(tasks)}
    assert (rows[graffiti["id"]].version, rows[litter["id"]].version) == (2, 1)
    assert [e.action for e in await bot.rows(task_events)].count("photo") == 1

    # Once one task is in hand, a photo goes straight onto it.
    await bot.click("bob", "accept", litter, version=1)
    [reply] = await send_photos(bot, "bob", [inline(bot.connector, PNG, "image/png")])
    assert reply.text == f"Added the photo to {litter['reference']} (Fly-tipping, 1 High Street)."


async def test_a_task_closed_meanwhile_offers_the_others_again(bot):
    await bot.install("bob", "carol")
    async with bot.client.app[db_key].write() as conn:
        await conn.execute(update(people).where(people.c.id == "carol").values(on_duty=False))
    first = await bot.report("fly-tipping")
    second = await bot.report("graffiti")
    await bot.card_for("bob", count=2)
    [choice] = [r for r in await send_photos(bot, "bob", [inline(bot.connector, PNG)]) if r.card]
    tokens = executes(choice.card)[0]["data"]["photos"]
    await bot.click("bob", "accept", second, version=1)
    await bot.click("bob", "complete", second, version=2, outcome="resolved")

    card = await attach_click(bot, "bob", {"taskId": second["id"], "photos": tokens})
    assert "already completed" in texts(card)
    assert [b["data"]["taskId"] for b in executes(card)] == [first["id"]]
    card = await attach_click(bot, "bob", {"taskId": first["id"], "photos": tokens})
    assert "Photo added." in texts(card)


# -- nothing to add it to, or nobody to add it ------------------------------------------------


async def test_officer_with_no_task_is_told_and_nothing_is_kept(bot):
    await bot.install("dan")
    [reply] = await send_photos(bot, "dan", [inline(bot.connector, JPEG)])
    assert reply.text == NO_TASK
    assert await bot.rows(photos) == []
    assert bot.connector.attachment_requests == []  # not even fetched


async def test_councillors_and_strangers_get_an_answer_and_nothing_is_kept(bot, files):
    task = await bot.report()
    [reply] = await send_photos(bot, "cllr-hughes", [files.attachment("pothole.jpg", JPEG, "jpg")])
    assert reply.text == COUNCILLOR
    [reply] = await send_photos(bot, "stranger", [inline(bot.connector, JPEG)])
    assert "don't know you" in reply.text and "haven't kept the photo" in reply.text
    assert await bot.rows(photos) == []
    assert bot.connector.attachment_requests == [] and files.requests == []
    card = await attach_click(bot, "cllr-hughes", {"taskId": task["id"], "photos": ["x" * 43]})
    assert "Only the assigned officer or a manager" in texts(card)
    [row] = await bot.rows(tasks)
    assert (row.photos, row.version) == ([], 1)


# -- what is not a photo, or cannot be fetched ------------------------------------------------


async def test_non_images_big_files_and_failed_downloads_are_refused_whole(bot, files):
    task, _ = await bob_takes_a_task(bot)
    big = b"\xff\xd8\xff\xe0" + bytes(TEN_MB)  # a JPEG by its first bytes, one byte too many
    cases = [
        ([inline(bot.connector, HTML, "image/png")], NOT_A_PHOTO),  # claims PNG, is HTML
        ([files.attachment("report.pdf", b"%PDF-1.7\n" + bytes(500), "pdf")], NOT_A_PHOTO),
        ([files.attachment("huge.jpg", big, "jpg")], TOO_BIG),  # says so in Content-Length
        ([files.attachment("stream.jpg", big, "jpg", chunked=True)], TOO_BIG),  # only by reading
        (
            [files.attachment("svg.png", b"<svg xmlns='http://www.w3.org/2000/svg'/>", "png")],
            NOT_A_PHOTO,
        ),
        # One good photo with a bad one: neither is kept.
        (
            [inline(bot.connector, JPEG), files.attachment("notes.txt", b"hello", "txt")],
            NOT_A_PHOTO,
        ),
        # Gone from the Bot Connector (404), and a file host that is not there at all.
        (
            [{"contentType": "image/png", "contentUrl": bot.connector.attachment_url("gone")}],
            FAILED,
        ),
        (
            [{"contentType": FILE_INFO, "content": {"downloadUrl": "http://127.0.0.1:9/x.jpg"}}],
            FAILED,
        ),
        ([{"contentType": FILE_INFO, "content": {"fileType": "jpg"}}], FAILED),  # no URL
    ]
    for attachments, expected in cases:
        [reply] = await send_photos(bot, "bob", attachments)
        assert reply.text == expected, attachments
    assert await bot.rows(photos) == []
    [row] = await bot.rows(tasks)
    assert (row.photos, row.version) == ([], 2)
    assert [e.action for e in await bot.rows(task_events)] == ["created", "accept"]
    assert task["id"] == row.id


# -- the bot's token stays with the Bot Connector --------------------------------------------

BOT_TOKEN = "bot-framework-token-for-tests"


async def test_token_goes_to_the_bot_connector_only(
    aiohttp_client, database_url, connector, files, openid
):
    settings = signed_settings(
        database_url,
        openid.metadata_url,
        background=False,
        public_url=PUBLIC,
        dev_attachment_origins=(files.url,),
    )
    client = await aiohttp_client(build_app(settings))
    # Entra ID is out of reach from a test: give the bot's token provider its token.
    tokens = client.app[photos_key].tokens
    tokens._token, tokens._expires = BOT_TOKEN, time.monotonic() + 3600
    connector.attachment_token = BOT_TOKEN
    bot = Bot(client, connector)
    task = await bot.report()
    assert task["assignee"] == "bob"

    files.files["pasted.png"] = ("image/png", PNG, False)
    files.files["moved.gif"] = ("image/gif", GIF, False)
    foreign = {"contentType": "image/png", "contentUrl": f"{files.url}/files/pasted.png"}
    # The Bot Connector sends one picture on to another host: the token stays behind.
    connector.attachment_redirects["moved"] = f"{files.url}/files/moved.gif"
    moved = {"contentType": "image/*", "contentUrl": connector.attachment_url("moved")}
    attachments = [
        inline(connector, JPEG),
        foreign,
        files.attachment("IMG_1.jpg", JPEG, "jpg"),
        moved,
    ]
    signed = {"Authorization": "Bearer " + openid.token(APP_ID, connector.url)}
    [reply] = await send_photos(bot, "bob", attachments, headers=signed)
    assert reply.text == f"Added 4 photos to {task['reference']} (Fly-tipping, 1 High Street)."
    assert reply.authorization == f"Bearer {BOT_TOKEN}"
    assert [auth for _, auth in connector.attachment_requests] == [f"Bearer {BOT_TOKEN}"] * 2
    assert sorted(files.requests) == [
        ("IMG_1.jpg", None),
        ("moved.gif", None),
        ("pasted.png", None),
    ]
    async with client.app[db_key].read() as conn:
        rows = (await conn.execute(select(photos.c.task_id, photos.c.content_type))).all()
    assert sorted(rows) == sorted(
        [(task["id"], t) for t in ("image/jpeg", "image/png", "image/jpeg", "image/gif")]
    )


def test_public_url_setting():
    assert Settings().public_url is None  # then the council file's council.public_url
    env = {"RESPONDER_PUBLIC_URL": "https://responder.example.gov.uk/"}
    assert Settings.from_env(env).public_url == "https://responder.example.gov.uk"
    for bad in ("responder.example.gov.uk", "ftp://x.example", "https://x.example/?a=1"):
        with pytest.raises(SettingsError, match="RESPONDER_PUBLIC_URL"):
            Settings.from_env({"RESPONDER_PUBLIC_URL": bad})


# -- nothing internal is ever fetched ----------------------------------------------------------


def refusals(caplog) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "responder.bot.photos" and r.levelno >= logging.WARNING
    ]


def as_file(url: str) -> dict:
    return {"contentType": FILE_INFO, "content": {"downloadUrl": url, "fileType": "jpg"}}


def as_picture(url: str) -> dict:
    return {"contentType": "image/jpeg", "contentUrl": url}


@pytest.fixture
async def guarded_bot(aiohttp_client, database_url, connector, files) -> Bot:
    """A bot that also allows ``localhost`` as an attachment host (to prove DNS is checked)."""
    settings = settings_for(
        database_url,
        public_url=PUBLIC,
        dev_attachment_origins=(files.url,),
        attachment_hosts=(*DEFAULT_ATTACHMENT_HOSTS, "localhost"),
    )
    client = await aiohttp_client(build_app(settings))
    return Bot(client, connector)


async def test_internal_addresses_are_refused_and_never_reached(guarded_bot, listener, caplog):
    bot = guarded_bot
    await bob_takes_a_task(bot)
    port = listener.port
    assert f":{port}/" not in bot.url  # the listener is not the Bot Connector
    cases = [
        # Loopback on another port than the Bot Connector's, over http and https.
        (f"http://127.0.0.1:{port}/x.jpg", "not https"),
        (f"https://127.0.0.1:{port}/x.jpg", "loopback address"),
        # An allowed name that resolves to loopback: refused on the resolved address.
        (f"https://localhost:{port}/x.jpg", "resolved to loopback address"),
        (f"https://LocalHost:{port}/x.jpg", "resolved to loopback address"),
        # IP literals are never resolved, so they are checked before any connection; none
        # of these is ever attempted (the test needs no network).
        ("https://169.254.169.254/latest/meta-data", "link-local address"),
        (f"https://[::1]:{port}/x.jpg", "loopback address"),
        (f"https://[::ffff:127.0.0.1]:{port}/x.jpg", "loopback address"),
        ("https://10.0.0.1/x.jpg", "private address"),
        ("https://[fd00::1]/x.jpg", "private address"),
        # Not a Teams host: refused before any DNS lookup (which would log a DNS error).
        ("https://evil.example/x.jpg", "host not allowed"),
        ("https://evilsharepoint.com/x.jpg", "host not allowed"),
        ("https://bob:secret@sample-my.sharepoint.com/x.jpg", "credentials in URL"),
        ("http://sample-my.sharepoint.com/x.jpg", "not https"),
        ("file:///etc/passwd", "not an http(s) URL"),
    ]
    for i, (url, reason) in enumerate(cases):
        caplog.clear()
        attachment = as_file(url) if i % 2 else as_picture(url)
        with caplog.at_level(logging.WARNING, logger="responder.bot.photos"):
            [reply] = await send_photos(bot, "bob", [attachment])
        assert reply.text == FAILED, url
        assert refusals(caplog) == [f"photo URL refused: {reason}"], url
    assert (listener.connections, listener.requests) == (0, [])
    assert await bot.rows(photos) == []
    [row] = await bot.rows(tasks)
    assert (row.photos, row.version) == ([], 2)


async def test_a_redirect_to_an_internal_address_is_refused_on_that_hop(
    guarded_bot, files, listener, caplog
):
    bot = guarded_bot
    await bob_takes_a_task(bot)
    port = listener.port
    cases = [
        (f"http://127.0.0.1:{port}/x.jpg", "not https"),
        (f"https://localhost:{port}/x.jpg", "resolved to loopback address"),
        ("https://169.254.169.254/latest/meta-data", "link-local address"),
        (f"https://[::ffff:127.0.0.1]:{port}/", "loopback address"),
    ]
    for i, (target, reason) in enumerate(cases):
        # From the allowed dev file host (a paperclip file)...
        files.redirects[f"r{i}.jpg"] = target
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="responder.bot.photos"):
            [reply] = await send_photos(bot, "bob", [as_file(f"{files.url}/files/r{i}.jpg")])
        assert reply.text == FAILED, target
        assert refusals(caplog) == [f"photo URL refused: {reason}"], target
        # ...and from the (http, local) Bot Connector itself (a pasted picture).
        bot.connector.attachment_redirects[f"r{i}"] = target
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="responder.bot.photos"):
            [reply] = await send_photos(
                bot, "bob", [as_picture(bot.connector.attachment_url(f"r{i}"))]
            )
        assert reply.text == FAILED, target
        assert refusals(caplog) == [f"photo URL refused: {reason}"], target
    assert [name for name, _ in files.requests] == [f"r{i}.jpg" for i in range(len(cases))]
    assert (listener.connections, listener.requests) == (0, [])

    # Redirects stay capped at three: a file host sending the bot round in circles.
    files.requests.clear()
    files.redirects["loop.jpg"] = f"{files.url}/files/loop.jpg"
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="responder.bot.photos"):
        [reply] = await send_photos(bot, "bob", [as_file(f"{files.url}/files/loop.jpg")])
    assert reply.text == FAILED
    assert refusals(caplog) == ["photo download redirected too often"]
    assert len(files.requests) == 4
    assert await bot.rows(photos) == []


async def test_a_file_host_is_reachable_only_when_listed(
    aiohttp_client, database_url, connector, files
):
    """Without RESPONDER_DEV_ATTACHMENT_ORIGINS the local file host is refused unvisited."""
    settings = settings_for(database_url, public_url=PUBLIC)
    bot = Bot(await aiohttp_client(build_app(settings)), connector)
    await bob_takes_a_task(bot)
    [reply] = await send_photos(bot, "bob", [files.attachment("IMG_2.jpg", JPEG, "jpg")])
    assert reply.text == FAILED
    assert files.requests == []
    # The http Bot Connector the activity came from is still fine (the Emulator's case).
    [reply] = await send_photos(bot, "bob", [inline(bot.connector, JPEG)])
    assert reply.text.startswith("Added the photo to")


def test_dev_attachment_origins_are_refused_in_production(database_url):
    settings = settings_for(
        database_url,
        app_id=APP_ID,
        environment="production",
        dev_attachment_origins=("http://127.0.0.1:8080",),
    )
    with pytest.raises(StartupError, match="RESPONDER_DEV_ATTACHMENT_ORIGINS"):
        build_app(settings)


def test_attachment_settings():
    assert Settings().attachment_hosts == DEFAULT_ATTACHMENT_HOSTS
    assert Settings().dev_attachment_origins == ()
    env = {
        "RESPONDER_ATTACHMENT_HOSTS": " *.SharePoint.com, files.example.gov.uk., ,",
        "RESPONDER_DEV_ATTACHMENT_ORIGINS": "http://127.0.0.1:8080, HTTP://LocalHost:9000/",
    }
    settings = Settings.from_env(env)
    assert settings.attachment_hosts == ("sharepoint.com", "files.example.gov.uk")
    assert settings.dev_attachment_origins == ("http://127.0.0.1:8080", "http://localhost:9000")
    assert Settings.from_env({"RESPONDER_ATTACHMENT_HOSTS": ""}).attachment_hosts == (
        DEFAULT_ATTACHMENT_HOSTS
    )
    for bad in ("https://x.example", "x.example:443", "a..b", "exa mple.com"):
        with pytest.raises(SettingsError, match="RESPONDER_ATTACHMENT_HOSTS"):
            Settings.from_env({"RESPONDER_ATTACHMENT_HOSTS": bad})
    for bad in (
        "127.0.0.1:8080",
        "http://h:1/files",
        "http://u:p@h:1",
        "ftp://h:21",
        "http://h:1/?a",
    ):
        with pytest.raises(SettingsError, match="RESPONDER_DEV_ATTACHMENT_ORIGINS"):
            Settings.from_env({"RESPONDER_DEV_ATTACHMENT_ORIGINS": bad})
