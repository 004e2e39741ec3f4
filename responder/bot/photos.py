"""Photos sent to the bot in Teams: find them on the message, fetch them, hand them on.

How Teams delivers them:

- A picture pasted or taken in the compose box arrives as an attachment with an image
  content type (``image/png``, ``image/jpeg``, or just ``image/*``) whose ``contentUrl`` is
  on the Bot Connector service (``{serviceUrl}/v3/attachments/{id}/views/original``); it
  needs the bot's own Bearer token.
- A file attached with the paperclip (personal chat, manifest ``supportsFiles``) arrives as
  ``application/vnd.microsoft.teams.file.download.info`` with ``content: {downloadUrl,
  uniqueId, fileType}``; the download URL is short-lived and pre-authorised: no token.
- Every message also carries a ``text/html`` copy of its body, which is ignored.

Where a file may be fetched from, hop by hop through up to three redirects, is for
``responder.bot.attachment_policy`` to say: https from the Teams hosts that serve
attachments, never from an internal address (checked on the addresses actually connected
to). The fetch itself is the one every photo of ours goes through
(``responder.fetching.fetch``, shared with the photos sources link to). The bot's token
goes only to URLs with the same origin (scheme, host, port) as the activity's
``serviceUrl``, so it never leaks to a file host.
Whatever the attachment claims to be, only real JPEG, PNG, GIF and WebP files (by their
first bytes) of up to 10 MB are kept. Every file of a message is fetched before anything
is stored: a message is taken whole or not at all.

What happens next is the domain's (``responder.commands.photos``): one task in hand, and the
photo is added at once; several, and a small card asks which (verb ``attach``); none, and
nothing is kept.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp
from microsoft_teams.cards import ActionSet, AdaptiveCard, CardElement, Container

from responder.bot.attachment_policy import AttachmentPolicy
from responder.bot.attachment_policy import Hop as TeamsHop
from responder.bot.connector import Connector, TokenProvider, card_activity
from responder.bot.turn import Turn
from responder.bot.views import Viewer, render
from responder.cards.common import execute, line, to_dict
from responder.cards.lists import notice_card
from responder.commands.photos import (
    PhotosRefused,
    add_photos,
    attach_photos,
    forget_pending,
    keep_pending,
)
from responder.config.model import Person
from responder.dialogs.chat import STRANGER
from responder.domain.context import Domain
from responder.domain.photos import MAX_CHOICES, NewPhoto, photo_words
from responder.domain.records import TaskRecord
from responder.fetching.fetch import (
    Answered,
    FetchFailed,
    GuardedClient,
    Refused,
    TooBig,
    TooManyRedirects,
    sniff,
)
from responder.fetching.guard import Hop
from responder.queries.photos import tasks_for_photos
from responder.store.db import Database

log = logging.getLogger("responder.bot.photos")

ATTACH = "attach"  # the choice card's verb
FILE_INFO = "application/vnd.microsoft.teams.file.download.info"
MAX_BYTES = 10 * 1024 * 1024
MAX_FILES = 10  # per message
DOWNLOAD_SECONDS = 10.0  # for all of a message's files: Teams waits ~15 s for our answer
MAX_REDIRECTS = 3

COUNCILLOR = (
    "Thanks, but I can only add photos to officers' tasks, so I haven't kept it. To report "
    "something, say **raise a task**."
)
STRANGER_PHOTO = f"{STRANGER} I haven't kept the photo."
NO_TASK = (
    "You have no open tasks to add a photo to, so I haven't kept it. Send it again once "
    "you've accepted the task it's for."
)
TOO_MANY = f"Send up to {MAX_FILES} photos at a time: I haven't kept any of these."
NOT_A_PHOTO = (
    "That doesn't look like a photo I can use (JPEG, PNG, GIF or WebP pictures, up to "
    f"{MAX_BYTES // (1024 * 1024)} MB), so nothing was added."
)
TOO_BIG = f"That file is over {MAX_BYTES // (1024 * 1024)} MB, so nothing was added."
FAILED = (
    "Sorry, I couldn't fetch that photo from Teams just now, so nothing was added. "
    "Please send it again."
)
NOT_ADDED = "Nothing was added to {}: {}"


@dataclass(frozen=True)
class Incoming:
    """One file on a message: where to fetch it and what it says it is."""

    url: str
    claimed_type: str


class DownloadError(Exception):
    """A file that cannot be kept; ``message`` is what to tell the sender."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def incoming_files(turn: Turn) -> list[Incoming]:
    """Image and file attachments of a message (not its text/html copy, not cards)."""
    found: list[Incoming] = []
    for attachment in turn.attachments or ():
        kind = (attachment.content_type or "").lower()
        content = attachment.content if isinstance(attachment.content, dict) else {}
        if kind.startswith("image/"):
            url = attachment.content_url or content.get("downloadUrl")
        elif kind == FILE_INFO:
            url = content.get("downloadUrl")
        else:
            continue
        found.append(Incoming(url if isinstance(url, str) else "", kind))
    return found


class PhotoInbox:
    """The bot's side of officers' photos (see the module docstring)."""

    def __init__(
        self,
        db: Database,
        domain: Domain,
        clock: Callable[[], datetime],
        session: aiohttp.ClientSession,
        tokens: TokenProvider,
        connector: Connector,
        public_url: str,
        policy: AttachmentPolicy | None = None,
    ) -> None:
        self.db = db
        self.domain = domain
        self.clock = clock
        self.session = session  # the Bot Connector's: only for the policy's exempt origins
        self.tokens = tokens
        self.connector = connector
        self.public_url = public_url.rstrip("/")
        self.policy = policy or AttachmentPolicy()
        # Everything else through the guard's own session: a resolver that refuses
        # internal addresses, asked on every connection (no DNS cache), no proxy.
        self.client = GuardedClient(plain=session)

    async def close(self) -> None:
        await self.client.close()

    # -- a message with photos -----------------------------------------------------------

    async def handle(self, turn: Turn, person: Person | None) -> bool:
        """Deal with a message's photos; False when it has none (it is chat, then)."""
        files = incoming_files(turn)
        if not files:
            return False
        if person is None:
            await self._say(turn, STRANGER_PHOTO)
        elif person.role == "councillor":
            await self._say(turn, COUNCILLOR)
        elif len(files) > MAX_FILES:
            await self._say(turn, TOO_MANY)
        else:
            await self._take(turn, person, files)
        return True

    async def _take(self, turn: Turn, person: Person, files: list[Incoming]) -> None:
        choices = await tasks_for_photos(self.db, self.domain, person.id)
        if not choices:
            await self._say(turn, NO_TASK)
            return
        try:
            new = await self.fetch_all(turn.service_url, files)
        except DownloadError as exc:
            await self._say(turn, exc.message)
            return
        now = self.clock()
        if len(choices) == 1:
            task = choices[0]
            try:
                result = await add_photos(
                    self.db, self.domain, person.id, task.id, new, self.public_url, now
                )
            except (PhotosRefused, LookupError) as exc:  # it moved on since we looked
                reason = exc.result.notice if isinstance(exc, PhotosRefused) else "it was removed."
                await self._say(turn, NOT_ADDED.format(task.reference, reason))
                return
            await self._say(
                turn, f"Added {photo_words(result.added)} to {self._describe(result.task)}."
            )
            return
        tokens = await keep_pending(self.db, person.id, new, now)
        card = self.choice_card(choices, tokens)
        await self._send(turn, card_activity(card))

    def _type_name(self, task: TaskRecord) -> str:
        task_type = self.domain.council.task_type(task.type)
        return task_type.name if task_type else task.type

    def _describe(self, task: TaskRecord) -> str:
        """RSP-1042 (Fly-tipping, 1 High Street)."""
        return f"{task.reference} ({self._type_name(task)}, {task.address or task.ward})"

    def choice_card(
        self, choices: Sequence[TaskRecord], tokens: Sequence[str], notice: str | None = None
    ) -> dict[str, Any]:
        """Which task are these photos for? One button per task (verb ``attach``)."""
        body: list[CardElement] = []
        if notice:
            body.append(Container(style="emphasis", items=[line(notice, weight="Bolder")]))
        question = (
            "Which task is this photo for?"
            if len(tokens) == 1
            else f"Which task are these {len(tokens)} photos for?"
        )
        body.append(line(question, size="Medium", weight="Bolder", style="heading"))
        for task in choices[:MAX_CHOICES]:
            data = {"taskId": task.id, "photos": list(tokens)}
            body.append(
                Container(
                    separator=True,
                    items=[
                        line(f"{self._type_name(task)} · {task.reference}", weight="Bolder"),
                        line(task.address or task.ward, size="Small", is_subtle=True),
                        ActionSet(actions=[execute(ATTACH, data, f"Add to {task.reference}")]),
                    ],
                )
            )
        keep = "I'll keep it" if len(tokens) == 1 else "I'll keep them"
        body.append(line(f"{keep} for a day while you choose.", size="Small", is_subtle=True))
        return to_dict(AdaptiveCard(body=body))

    # -- the choice card's button ----------------------------------------------------------

    async def attach_click(self, person: Person | None, data: dict[str, Any]) -> dict[str, Any]:
        """The card to show in place of the choice card after a click."""
        if person is None:
            return notice_card(STRANGER)
        task_id = data.get("taskId")
        tokens = data.get("photos")
        if (
            not isinstance(task_id, int)
            or isinstance(task_id, bool)
            or not isinstance(tokens, list)
            or not 0 < len(tokens) <= MAX_FILES
            or not all(isinstance(t, str) and 0 < len(t) <= 64 for t in tokens)
        ):
            return notice_card("This card has no photos to add.")
        now = self.clock()
        try:
            result = await attach_photos(
                self.db, self.domain, person.id, task_id, tokens, self.public_url, now
            )
        except LookupError:
            return await self._choose_again(person, tokens, "That task no longer exists.")
        if result.refused:
            return await self._choose_again(person, tokens, result.notice, exclude=task_id)
        rendered = await self.db.query(
            lambda conn: render(
                conn, self.domain, result.task, Viewer(person.id), now, result.notice
            )
        )
        assert rendered is not None
        return rendered[1]

    async def _choose_again(
        self, person: Person, tokens: list[str], notice: str, exclude: int | None = None
    ) -> dict[str, Any]:
        """The choice card again, with why; or, with nowhere left to put them, let go."""
        choices = [
            t for t in await tasks_for_photos(self.db, self.domain, person.id) if t.id != exclude
        ]
        if choices:
            return self.choice_card(choices, tokens, notice)
        dropped = await forget_pending(self.db, person.id, tokens)
        return notice_card(f"{notice} Nothing was added." if dropped else notice)

    # -- fetching --------------------------------------------------------------------------

    async def fetch_all(self, service_url: str, files: Sequence[Incoming]) -> list[NewPhoto]:
        """Every file as a photo, or DownloadError for the first that cannot be one."""
        try:
            async with asyncio.timeout(DOWNLOAD_SECONDS), asyncio.TaskGroup() as group:
                jobs = [group.create_task(self.fetch(service_url, f)) for f in files]
        except TimeoutError:
            log.warning("photo download timed out")
            raise DownloadError(FAILED) from None
        except ExceptionGroup as failed:  # the first refusal speaks; the rest were cancelled
            refusal = next((e for e in failed.exceptions if isinstance(e, DownloadError)), None)
            if refusal is None:
                raise
            raise refusal from None
        return [job.result() for job in jobs]

    async def fetch(self, service_url: str, item: Incoming) -> NewPhoto:
        data = await self._download(item.url, service_url)
        kind = sniff(data)
        if kind is None:
            raise DownloadError(NOT_A_PHOTO)
        return NewPhoto(kind, data)

    async def _download(self, url: str, service_url: str) -> bytes:
        """The file, through the guard (``responder.fetching.fetch``), or DownloadError."""
        try:
            fetched = await self.client.get(
                url,
                lambda target: self.policy.check(target, service_url),
                max_bytes=MAX_BYTES,
                max_redirects=MAX_REDIRECTS,
                headers=self._headers,
            )
        except Refused as exc:
            log.warning("photo URL refused: %s", exc.reason)
            raise DownloadError(FAILED) from None
        except TooBig:
            raise DownloadError(TOO_BIG) from None
        except Answered as exc:
            log.warning("photo download answered %s", exc.status)
            raise DownloadError(FAILED) from None
        except TooManyRedirects:
            log.warning("photo download redirected too often")
            raise DownloadError(FAILED) from None
        except FetchFailed as exc:
            log.warning("photo download failed: %s", exc.reason)
            raise DownloadError(FAILED) from None
        return fetched.data

    async def _headers(self, hop: Hop) -> dict[str, str]:
        return await self._token_for() if isinstance(hop, TeamsHop) and hop.token else {}

    async def _token_for(self) -> dict[str, str]:
        try:
            return await self.tokens.header()
        except Exception as exc:  # noqa: BLE001 - MSAL raises several types
            log.warning("no Bot Framework token for a photo: %s", type(exc).__name__)
            raise DownloadError(FAILED) from None

    # -- answering ---------------------------------------------------------------------------

    async def _say(self, turn: Turn, text: str) -> None:
        await self._send(turn, {"type": "message", "text": text, "textFormat": "markdown"})

    async def _send(self, turn: Turn, body: dict[str, Any]) -> None:
        reply = await self.connector.send(turn.service_url, turn.conversation_id, body)
        if not reply.ok:
            log.warning("photo reply not delivered: %s", reply.status)
