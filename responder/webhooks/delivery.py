"""Signed webhooks to subscribers, delivered through the outbox (``webhook.event``).

A command that writes a history event a subscriber wants also writes, in the same
transaction, one ``webhook.event`` row per subscriber naming the event
(``commands/subscribers.py``; the row's key ``webhook:<subscriber>:<event id>`` makes it
owed once). The dispatcher claims it in the ``webhook`` lane, a task's rows in the order
they were written, and ``WebhookSender.deliver`` posts it:

- the body is read now (``queries/webhooks``, ``webhooks/body``): the task as it is and
  the event as it was, nothing personal; signed with the subscriber's secret
  (``webhooks/signing``: ``Responder-Signature: t=<ts>,v1=<hmac>``);
- 2xx: done. No redirect is followed (a 3xx is the subscriber's misconfiguration).
- 408, 429, 5xx, no connection, no answer within ``timeout``: retried by the dispatcher,
  backing off with jitter, or after the subscriber's ``Retry-After`` (at most an hour);
  it gives up (parks) after a day of this.
- any other answer (a 4xx: the subscriber refuses it): retried ``refusals`` times in all,
  in case it was a passing fault (a deploy, a secret being changed), then parked with the
  status and a short, sanitised excerpt of the answer.
- a subscriber gone from the council file, or with no secret in
  ``RESPONDER_WEBHOOK_SECRETS``: parked at once with that reason (nothing is sent unsigned).

At least once: a crash after the subscriber took it but before the row was marked done
sends it again when the lease ends, with the same event id (``Responder-Event-Id``, the
body's ``id``), by which the receiver drops the repeat.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import datetime

import aiohttp

from responder.config.model import Council
from responder.config.subscribers import Subscriber
from responder.domain.context import Domain
from responder.jobs.dispatcher import Done, Handler, Message, Outcome, Park, Retry
from responder.messages import WebhookEvent
from responder.queries.webhooks import webhook_facts
from responder.retry_after import retry_after as read_retry_after
from responder.settings import Settings
from responder.store.db import Database
from responder.webhooks.body import webhook_body
from responder.webhooks.signing import headers

log = logging.getLogger("responder.webhooks")

TIMEOUT = 10.0  # seconds for the whole exchange with a subscriber
REFUSALS = 5  # tries that end in a refusal (a 4xx) before the row is parked
MAX_RETRY_AFTER = 3600.0  # a longer Retry-After is taken as an hour
# A shorter one is taken as a second: waiting for Retry-After uses up no try, so "0" again
# and again would otherwise be a tight loop against the subscriber.
MIN_RETRY_AFTER = 1.0
EXCERPT = 120  # characters of a refusing answer kept in the outbox row's last_error
_TRANSIENT = frozenset({408, 425, 429})
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")


class WebhookSender:
    def __init__(
        self,
        db: Database,
        domain: Domain,
        settings: Settings,
        clock: Callable[[], datetime],
        *,
        timeout: float = TIMEOUT,
        refusals: int = REFUSALS,
    ) -> None:
        self.db, self.domain, self.settings, self.clock = db, domain, settings, clock
        self.timeout, self.refusals = timeout, refusals
        self._subscribers = {s.name: s for s in domain.council.file.subscribers}
        self._session: aiohttp.ClientSession | None = None

    def handlers(self) -> dict[str, Handler]:
        return {WebhookEvent.KIND: self.deliver}

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                # No cookies: each delivery stands alone, signed.
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    async def deliver(self, message: Message) -> Outcome:
        owed = WebhookEvent.read(message.payload)
        name = owed.subscriber
        subscriber = self._subscribers.get(name)
        if subscriber is None:
            return Park(f"subscriber {name!r} is no longer in the council file")
        secret = self.settings.webhook_secrets.get(name)
        if not secret:
            return Park(f"no signing secret for subscriber {name!r} in RESPONDER_WEBHOOK_SECRETS")
        council, domain = self.domain.council, self.domain
        facts = await self.db.query(
            lambda conn: webhook_facts(conn, domain, owed.task_id, owed.event_id)
        )
        if facts is None:
            return Park(f"event {owed.event_id} of task {owed.task_id} is not in the database")
        if not subscriber.wants(facts.event.action):
            # The council file changed since: the subscriber no longer asks for these.
            return Done(f"not sent: {name!r} no longer asks for {facts.event.action!r} events")
        body = webhook_body(facts, council)
        timestamp = int(self.clock().timestamp())
        sent = headers(secret, str(facts.event.id), timestamp, body)
        return await self._post(subscriber, body, sent, message.attempts)

    async def _post(
        self, subscriber: Subscriber, body: bytes, sent: dict[str, str], attempts: int
    ) -> Outcome:
        name = subscriber.name
        try:
            async with self._client().post(
                subscriber.url, data=body, headers=sent, allow_redirects=False
            ) as resp:
                status, reason = resp.status, resp.reason or ""
                if 200 <= status < 300:
                    return Done()
                wait = retry_after(resp.headers.get("Retry-After"), self.clock())
                location = resp.headers.get("Location", "")
                excerpt = _clean(await _read_some(resp))
        except TimeoutError:
            return Retry(f"{name}: no answer within {self.timeout:g} s")
        except aiohttp.ClientConnectorError as exc:
            why = exc.os_error.strerror or type(exc.os_error).__name__
            return Retry(f"{name}: cannot connect ({why})")
        except aiohttp.ClientError as exc:
            return Retry(f"{name}: {type(exc).__name__}")

        answered = f"{name} answered {status} {_clean(reason)}".rstrip()
        if status in _TRANSIENT or 500 <= status < 600:
            return Retry(answered + _quoted(excerpt), wait)
        if 300 <= status < 400:
            answered += f" to {_clean(location)[:200]!r} (redirects are not followed: set its url)"
        else:
            answered += _quoted(excerpt)
        if attempts >= self.refusals:
            return Park(f"refused {attempts} times: {answered}")
        return Retry(f"refused: {answered}")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def missing_secrets(council: Council, settings: Settings) -> list[str]:
    """The council file's subscribers with no secret in RESPONDER_WEBHOOK_SECRETS."""
    return [s.name for s in council.file.subscribers if not settings.webhook_secrets.get(s.name)]


def secrets_problem(council: Council, settings: Settings) -> str | None:
    """What stops start-up about subscribers' secrets, or None.

    A subscriber without a secret cannot be sent anything (nothing goes out unsigned): in
    production that refuses to start (the returned line, for ``StartupError``); elsewhere it
    is a warning, and its webhooks are parked with that reason. A secret named for no
    subscriber (a typo?) is a warning in both.
    """
    names = {s.name for s in council.file.subscribers}
    unused = sorted(set(settings.webhook_secrets) - names)
    if unused:
        log.warning(
            "RESPONDER_WEBHOOK_SECRETS names %s, not a subscriber in the council file",
            ", ".join(repr(n) for n in unused),
        )
    missing = missing_secrets(council, settings)
    if not missing:
        return None
    what = (
        f"RESPONDER_WEBHOOK_SECRETS has no secret for subscriber"
        f"{'s' if len(missing) > 1 else ''} {', '.join(repr(n) for n in missing)} "
        "of the council file (name:secret, at least 8 characters)"
    )
    if settings.environment == "production":
        return f"{what}: their webhooks could not be signed"
    log.warning("%s: their webhooks are parked, never sent unsigned", what)
    return None


def retry_after(value: str | None, now: datetime) -> float | None:
    """Retry-After between ``MIN_RETRY_AFTER`` and ``MAX_RETRY_AFTER``; None if absent or
    unreadable (the dispatcher backs off instead)."""
    return read_retry_after(value, now, floor=MIN_RETRY_AFTER, cap=MAX_RETRY_AFTER)


async def _read_some(resp: aiohttp.ClientResponse) -> str:
    """The start of a refusing answer, for the operator (never the whole of it)."""
    try:
        data = await resp.content.read(512)
    except (aiohttp.ClientError, TimeoutError):
        return ""
    return data.decode("utf-8", errors="replace")


def _clean(text: str) -> str:
    """One line of printable text, at most ``EXCERPT`` characters."""
    line = " ".join(_CONTROL.sub(" ", text).split())
    return line if len(line) <= EXCERPT else line[: EXCERPT - 1] + "…"


def _quoted(excerpt: str) -> str:
    return f": {excerpt!r}" if excerpt else ""
