"""Photos sources link to, fetched through the outbox (``fetch.photo``), safely.

An Open311 ``media_url`` or a form's photo link is not fetched while the report is taken
(a slow host would hold up intake): ``commands/create`` owes a ``fetch.photo`` row per link,
delivered in the dispatcher's ``fetch`` lane (a slow host holds only that lane), and
``PhotoFetcher`` delivers it:

1. The source must still be in the council file; its ``photo_hosts`` say where its photos
   may come from (a host matches itself and its subdomains).
2. The URL goes through the SSRF guard (``responder.fetching.guard``): https only, no
   credentials, a host among the source's ``photo_hosts``, public addresses only (IP
   literals here, names on the very addresses connected to, after DNS), and every redirect
   is checked again, at most three of them. ``RESPONDER_DEV_ATTACHMENT_ORIGINS`` (refused in
   production) exempts exact development origins, as for officers' photos.
3. The body is streamed and dropped past 10 MB; the bytes must be a JPEG, PNG, GIF or
   WebP picture whatever the host says they are (``sniff``).
4. ``commands/source_photos`` adds it to the task (served at ``/api/photos/{token}``), or
   records a ``photo_failed`` event saying why in words safe to show (never the URL; a
   host at most).

What cannot succeed by trying again (a refused URL or address, not a picture, too big, 404,
410 and other 4xx, too many redirects, a source removed from the file) is recorded at once
and never retried. What may (a timeout, a refused or broken connection, 408, 429, 5xx) is
retried by the dispatcher, after ``Retry-After`` when the host sends one; a photo still
failing ``GIVE_UP_AFTER`` after it was owed is recorded as not fetched. The dispatcher
itself parks a row only after a day of failures, so this is shorter: the task's history
always says what became of a photo. A task deleted meanwhile has nothing to record on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

import aiohttp

from responder.commands.source_photos import add_source_photo, record_photo_failure
from responder.domain.context import Domain
from responder.domain.photos import NewPhoto
from responder.fetching.fetch import (
    MAX_REDIRECTS,
    Answered,
    FetchFailed,
    GuardedClient,
    Refused,
    TooBig,
    TooManyRedirects,
    Unreachable,
    sniff,
)
from responder.fetching.guard import HostPolicy, host_suffix
from responder.jobs.dispatcher import Done, Handler, Message, Outcome, Retry
from responder.messages import PhotoFetch
from responder.settings import Settings
from responder.store.db import Database

log = logging.getLogger("responder.fetching.photos")

MAX_BYTES = 10 * 1024 * 1024
# Per request: a photo host that takes longer is tried again later (the lane's 8 slots
# are not held for ever).
TIMEOUT = aiohttp.ClientTimeout(total=60, connect=10, sock_read=20)
# A photo still failing (transiently) this long after it was owed is recorded as not
# fetched. Shorter than the dispatcher's own give_up_after (a day), so that it is we who
# record it, on the task, and the row is not parked unexplained.
GIVE_UP_AFTER = timedelta(hours=12)

NOT_IMAGE = "the file is not a JPEG, PNG, GIF or WebP picture"
TOO_BIG = f"the file is over {MAX_BYTES // (1024 * 1024)} MB"
REDIRECTS = f"the link redirected more than {MAX_REDIRECTS} times"
# What the guard refused, as the link itself (first) and as where it redirected (second).
INTERNAL = (
    "the link leads to an internal address, which is never fetched",
    "the link redirects to an internal address, which is never fetched",
)
NOT_HTTPS = ("the link is not https", "the link redirects to a link that is not https")
NOT_WEB = (
    "the link is not a web address (http or https)",
    "the link redirects to something that is not a web address (http or https)",
)
CREDENTIALS = (
    "the link has a user name or password in it",
    "the link redirects to a link with a user name or password in it",
)
MALFORMED = (
    "the link is not a valid web address",
    "the link redirects to something that is not a valid web address",
)


# The guard's reasons for an address it never connects to (``guard.address_refusal``).
_INTERNAL = frozenset(
    f"{kind} address"
    for kind in (
        "unspecified", "loopback", "link-local", "multicast", "private", "reserved", "non-public"
    )
)  # fmt: skip


def refusal_words(exc: Refused, source: str) -> str:
    """A guard refusal as the task's history says it (a host at most, never the URL)."""
    reason = exc.reason
    if reason == "host not allowed":
        where = "redirects to" if exc.redirected else "is on"
        return f"the link {where} {exc.host or 'a host'}, not a host {source} may send photos from"
    if reason.removeprefix("resolved to ") in _INTERNAL:  # as given, or after DNS
        words = INTERNAL
    elif reason == "not https":
        words = NOT_HTTPS
    elif reason == "not an http(s) URL":
        words = NOT_WEB
    elif reason == "credentials in URL":
        words = CREDENTIALS
    else:
        words = MALFORMED
    return words[exc.redirected]


def failure_words(exc: FetchFailed, source: str, give_up: timedelta = GIVE_UP_AFTER) -> str:
    """Why a photo could not be fetched, safe to show (no URL; a host at most);
    ``give_up``: how long a transient failure was tried for."""
    if isinstance(exc, Refused):
        return refusal_words(exc, source)
    if isinstance(exc, TooBig):
        return TOO_BIG
    if isinstance(exc, TooManyRedirects):
        return REDIRECTS
    if isinstance(exc, Answered):
        if exc.status in (404, 410):
            return f"the photo is no longer there (the host answered {exc.status})"
        if exc.transient:
            return f"the host kept answering {exc.status} for {_hours(give_up)}"
        return f"the host refused it (it answered {exc.status})"
    if isinstance(exc, Unreachable):
        return f"the host could not be reached for {_hours(give_up)}"
    return MALFORMED[0]


def _hours(span: timedelta) -> str:
    hours = span.total_seconds() / 3600
    return f"{hours:g} hour" + ("" if hours == 1 else "s")


class NotAPicture(FetchFailed):
    def __init__(self) -> None:
        super().__init__("not a picture")


class PhotoFetcher:
    """The ``fetch.photo`` handler (the module docstring)."""

    def __init__(
        self,
        db: Database,
        domain: Domain,
        settings: Settings,
        public_url: str,
        clock: Callable[[], datetime],
        *,
        timeout: aiohttp.ClientTimeout = TIMEOUT,
        give_up_after: timedelta = GIVE_UP_AFTER,
    ) -> None:
        self.db, self.domain, self.settings = db, domain, settings
        self.public_url, self.clock = public_url.rstrip("/"), clock
        self.timeout = timeout
        self.give_up_after = give_up_after
        self._client: GuardedClient | None = None  # made in the running loop, when needed
        self._policies: dict[str, HostPolicy] = {}

    def handlers(self) -> dict[str, Handler]:
        return {PhotoFetch.KIND: self.fetch}

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    @property
    def client(self) -> GuardedClient:
        if self._client is None:
            self._client = GuardedClient(timeout=self.timeout)
        return self._client

    def policy(self, source: str) -> HostPolicy | None:
        """Where ``source``'s photos may come from; None when it is not a source (now)."""
        found = self.domain.council.file.sources.get(source)
        if found is None:
            return None
        policy = self._policies.get(source)
        if policy is None:
            hosts = []
            for entry in found.photo_hosts:
                try:
                    hosts.append(host_suffix(entry))
                except ValueError:  # never matches anything, so nothing is fetched from it
                    log.warning("sources.%s.photo_hosts: an entry is not a host name", source)
            policy = HostPolicy(tuple(hosts), self.settings.dev_attachment_origins)
            self._policies[source] = policy
        return policy

    async def fetch(self, message: Message) -> Outcome:
        job = PhotoFetch.read(message.payload)
        policy = self.policy(job.source)
        if policy is None:
            words = f"{job.source} is no longer a source in the council file"
            return await self._record(message, job, words, "source removed")
        try:
            fetched = await self.client.get(job.url, policy.check, max_bytes=MAX_BYTES)
            kind = sniff(fetched.data)
            if kind is None:
                raise NotAPicture()
        except NotAPicture as exc:
            return await self._record(message, job, NOT_IMAGE, exc.reason)
        except FetchFailed as exc:
            if exc.transient and not self._too_old(message):
                log.info("photo from %s not fetched yet: %s", job.source, exc.reason)
                after = exc.retry_after if isinstance(exc, Answered) else None
                return Retry(exc.reason, after)
            words = failure_words(exc, job.source, self.give_up_after)
            return await self._record(message, job, words, exc.reason)
        result = await add_source_photo(
            self.db,
            self.domain,
            job.task_id,
            job.source,
            message.key,
            NewPhoto(kind, fetched.data),
            self.public_url,
            self.clock(),
        )
        if result.outcome == "gone":
            return Done("the task is gone")
        if result.outcome == "failed":  # the task is full
            return Done("not added: the task has as many photos as it can hold")
        return Done()

    def _too_old(self, message: Message) -> bool:
        created = message.created_at
        return created is not None and self.clock() - created >= self.give_up_after

    async def _record(self, message: Message, job: PhotoFetch, words: str, reason: str) -> Outcome:
        """Record on the task that the photo could not be fetched: never retried."""
        log.warning("photo from %s not fetched: %s", job.source, reason)
        result = await record_photo_failure(
            self.db, self.domain, job.task_id, job.source, message.key, words, self.clock()
        )
        if result.outcome == "gone":
            return Done(f"not fetched ({reason}); the task is gone")
        return Done(f"not fetched: {reason}")
