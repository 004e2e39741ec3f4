"""The outbox handler for ``notify`` rows: hands each message to GOV.UK Notify, once.

Each row names a report, an event (``received``, ``completed``), a channel and a template;
the reporter's address is read from ``contacts`` at send time (so erasing the contact row
erases it everywhere) and is never logged or stored anywhere else. Notify's ``reference``
is the row's idempotency key: unique per message, no personal data.

The official client (``notifications-python-client``) is synchronous and not thread-safe,
so sends run in a small pool of worker threads, each with its own client (and its own
HTTP connection), never on the event loop; ``loop_lag`` measures the loop meanwhile.

What Notify answers decides what becomes of the row:

- 201: done; a ``notifications`` row (status ``sending``, Notify's id) and a history event.
- 400, 403 (and other 4xx): final. Parked with Notify's message, recorded as ``not-sent``.
- 429: retried after its Retry-After (60 s without one); every send pauses meanwhile.
- 5xx, no answer: retried with backoff by the dispatcher.

At most once: a row being retried may have reached Notify the first time (a timeout, or
a crash after Notify accepted it but before we wrote that down), and Notify does not
deduplicate references. So before sending a row again, Notify is asked whether it holds
a message with that reference; if it does, that one is adopted rather than sent again.

With no ``NOTIFY_API_KEY`` every message is recorded as not sent, with that reason, on
the task's history: nothing fails silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from notifications_python_client.errors import APIError, InvalidResponse
from notifications_python_client.notifications import NotificationsAPIClient

from responder.commands.notify_records import record_notification
from responder.config.model import Council
from responder.domain.feedback import FeedbackLinks
from responder.domain.resident_updates import CHANNEL_WORDS, Job
from responder.jobs.dispatcher import Done, Message, Outcome, Park, Retry
from responder.messages import ResidentUpdate
from responder.notify.lag import LoopLagMonitor
from responder.notify.pacing import NotifyPacer
from responder.notify.personalisation import FEEDBACK_EVENTS, UnknownEvent, personalise
from responder.queries.notify import read_snapshot
from responder.retry_after import retry_after
from responder.settings import Settings
from responder.store.db import Database

log = logging.getLogger("responder.notify")

NOT_SET = "NOTIFY_API_KEY is not set"
BAD_KEY = (
    "NOTIFY_API_KEY is not a GOV.UK Notify API key (expected <key name>-<service id>-<secret>)"
)
# Without a Retry-After, a 429 waits this long (Notify's limits are per minute).
DEFAULT_RETRY_AFTER = 60.0
_RETRYABLE = {408, 409, 425}
# <key name>-<service id (uuid)>-<secret (uuid)>: the client slices the last 73 characters.
_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_KEY = re.compile(rf".+-{_UUID}-{_UUID}")


@dataclass(frozen=True)
class Reply:
    """What came back from one call to Notify, made plain in the worker thread."""

    status: int | None  # None: no answer (connection refused, timeout, not JSON)
    body: Any = None
    message: str = ""  # Notify's error message(s), or what went wrong on the way
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class NotifySender:
    def __init__(
        self,
        db: Database,
        council: Council,
        clock: Callable[[], datetime],
        *,
        api_key: str,
        base_url: str,
        per_minute: int,
        threads: int = 8,
        timeout: float = 20.0,
        max_wait: float = 15.0,
        feedback: FeedbackLinks | None = None,
    ) -> None:
        self.db = db
        # Signs 'completed' messages' ((feedback_link)); None: no link is sent.
        self.feedback = feedback
        self.council = council
        self.clock = clock
        self.base_url = base_url
        self.timeout = timeout
        # Longer than this in the pacer and the row is handed back to the dispatcher with
        # a due time instead, so a claimed row never outlives its lease while waiting.
        self.max_wait = max_wait
        self._api_key = api_key.strip()
        if not self._api_key:
            self.key_problem: str | None = NOT_SET
        elif not _KEY.fullmatch(self._api_key):
            self.key_problem = BAD_KEY
        else:
            self.key_problem = None
        self.pacer = NotifyPacer(per_minute)
        self.loop_lag = LoopLagMonitor()
        self.stats: Counter[str] = Counter()
        self._threads = ThreadPoolExecutor(threads, thread_name_prefix="notify")
        self._local = threading.local()

    @classmethod
    def from_settings(
        cls,
        db: Database,
        council: Council,
        settings: Settings,
        clock: Callable[[], datetime],
        *,
        feedback: FeedbackLinks | None = None,
    ) -> NotifySender:
        return cls(
            db,
            council,
            clock,
            api_key=settings.notify_api_key,
            base_url=settings.notify_base_url,
            per_minute=settings.notify_per_minute,
            feedback=feedback,
        )

    def handlers(self) -> dict:
        return {ResidentUpdate.KIND: self.send}

    def start(self) -> None:
        if self.key_problem is not None:
            log.warning(
                "%s: residents' emails and texts will be recorded as not sent", self.key_problem
            )
        self.loop_lag.start()
        if self.key_problem is None:
            self._warm_up()

    def _warm_up(self) -> None:
        """Start every worker thread and its client now, not during the first burst.

        Threads created on demand are started from the event loop while it is sending,
        which showed as its largest lag (20-60 ms) in bench.notify.
        """
        workers = self._threads._max_workers
        ready = threading.Barrier(workers)

        def warm() -> None:
            self._client()
            # Holding each thread until all exist makes the pool start all of them; a slow
            # start (a broken barrier) only means a thread is created later, on demand.
            with contextlib.suppress(threading.BrokenBarrierError):
                ready.wait(timeout=5)

        for _ in range(workers):
            self._threads.submit(warm)

    async def close(self) -> None:
        await self.loop_lag.stop()
        # The dispatcher has finished its handlers by now: no send is in flight.
        self._threads.shutdown(wait=False, cancel_futures=True)

    # -- the handler --------------------------------------------------------------------------

    async def send(self, message: Message) -> Outcome:
        owed = ResidentUpdate.read(message.payload)
        job = Job(
            message.key, owed.task_id, owed.report_id, owed.event, owed.channel, owed.template_id
        )
        if job.channel not in CHANNEL_WORDS:
            return await self._not_sent(job, f"unknown channel '{job.channel}'")
        if self.key_problem is not None:
            return await self._not_sent(job, self.key_problem)

        snap = await self.db.query(lambda conn: read_snapshot(conn, job))
        if snap is None:
            return Done("the task no longer exists")
        if snap.notify_id is not None:
            return Done(f"already handed to GOV.UK Notify as {snap.notify_id}")
        if snap.unreachable is not None:
            return await self._not_sent(job, snap.unreachable)
        link = None
        if self.feedback is not None and job.event in FEEDBACK_EVENTS:
            # Valid for LINK_DAYS from now: the message is made now, whenever the task closed.
            link = self.feedback.link(job.report_id, self.clock())
        try:
            fields = personalise(self.council, job.event, snap.facts, feedback_link=link)
        except UnknownEvent as exc:
            return await self._not_sent(job, str(exc))
        if fields.problem is not None:
            return await self._not_sent(job, fields.problem)

        if message.attempts > 1:
            adopted = await self._adopt(job)
            if adopted is not None:
                return adopted
        reply = await self._call(self._post, job, snap.recipient, fields.values)
        if isinstance(reply, Retry):
            return reply
        if reply.ok:
            notify_id = reply.body.get("id") if isinstance(reply.body, dict) else None
            await self._record(job, "sending", notify_id=notify_id and str(notify_id))
            self.stats["sent"] += 1
            return Done(f"GOV.UK Notify id {notify_id}")
        return await self._failure(job, reply)

    async def _adopt(self, job: Job) -> Outcome | None:
        """A retried row may have reached Notify before: adopt that message if it did."""
        reply = await self._call(self._lookup, job.reference)
        if isinstance(reply, Retry):
            return reply
        if not reply.ok:
            return await self._failure(job, reply, looking_up=True)
        found = [
            n
            for n in (reply.body or {}).get("notifications") or []
            if n.get("reference") == job.reference
        ]
        if not found:
            return None
        notify_id = str(found[0].get("id"))
        await self._record(job, "sending", notify_id=notify_id)
        self.stats["adopted"] += 1
        return Done(f"GOV.UK Notify already had it, as {notify_id}")

    async def _failure(self, job: Job, reply: Reply, *, looking_up: bool = False) -> Outcome:
        if reply.status is None:
            self.stats["retried"] += 1
            return Retry(f"could not reach GOV.UK Notify ({reply.message})")
        text = f"GOV.UK Notify answered {reply.status}" + (
            f": {reply.message}" if reply.message else ""
        )
        if looking_up:
            text += " (looking for an earlier attempt)"
        if reply.status == 429:
            wait = reply.retry_after if reply.retry_after is not None else DEFAULT_RETRY_AFTER
            self.pacer.pause(wait)
            self.stats["rate_limited"] += 1
            return Retry(text, wait)
        if reply.status >= 500 or reply.status in _RETRYABLE:
            self.stats["retried"] += 1
            return Retry(text)
        return await self._not_sent(job, text)

    async def _not_sent(self, job: Job, reason: str) -> Park:
        """Final: recorded against the message and on the task's history, then parked."""
        await self._record(job, "not-sent", detail=reason)
        self.stats["not_sent"] += 1
        return Park(reason)

    async def _record(
        self, job: Job, status: str, *, notify_id: str | None = None, detail: str | None = None
    ) -> None:
        now = self.clock()
        await self.db.run(
            lambda conn: record_notification(conn, job, status, notify_id, detail, now)
        )

    # -- calls to Notify, in worker threads ----------------------------------------------------

    async def _call(self, fn: Callable[..., Reply], *args: Any) -> Reply | Retry:
        wait = await self.pacer.acquire(self.max_wait)
        if wait > 0:
            return Retry("paused by GOV.UK Notify's rate limit", wait)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._threads, fn, *args)

    def _client(self) -> NotificationsAPIClient:
        client = getattr(self._local, "client", None)
        if client is None:  # one per thread: the client (a requests.Session) is not thread-safe
            client = NotificationsAPIClient(
                self._api_key, base_url=self.base_url, timeout=self.timeout
            )
            self._local.client = client
        return client

    def _post(self, job: Job, recipient: str | None, personalisation: dict[str, str]) -> Reply:
        def call(client: NotificationsAPIClient) -> Any:
            if job.channel == "email":
                return client.send_email_notification(
                    email_address=recipient,
                    template_id=job.template_id,
                    personalisation=personalisation,
                    reference=job.reference,
                )
            return client.send_sms_notification(
                phone_number=recipient,
                template_id=job.template_id,
                personalisation=personalisation,
                reference=job.reference,
            )

        return self._guarded(call, 201)

    def _lookup(self, reference: str) -> Reply:
        return self._guarded(lambda client: client.get_all_notifications(reference=reference), 200)

    def _guarded(self, call: Callable[[NotificationsAPIClient], Any], ok: int) -> Reply:
        """Run ``call`` with this thread's client; every failure becomes a plain Reply.

        Messages carry Notify's words or an exception's type, never the exception text,
        which could quote the request.
        """
        try:
            return Reply(ok, call(self._client()))
        except InvalidResponse as exc:  # an answer, but not JSON: unclear, so try again
            status = getattr(exc.response, "status_code", None)
            return Reply(None, message=f"answer {status} was not JSON")
        except APIError as exc:
            response = exc.response
            if response is None:  # no answer at all
                cause = exc.__cause__ or exc.__context__
                return Reply(None, message=type(cause or exc).__name__)
            return Reply(
                response.status_code,
                _json(response),
                _error_text(_json(response)) or str(response.reason or ""),
                retry_after(response.headers.get("Retry-After"), cap=math.inf),
            )
        except Exception as exc:  # noqa: BLE001 - a bug or transport failure: retried
            return Reply(None, message=type(exc).__name__)


# -- Notify's answers ---------------------------------------------------------------------------


def _json(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _error_text(body: Any) -> str:
    """Notify's error body ``{"status_code": 400, "errors": [{"error", "message"}]}``."""
    if not isinstance(body, dict):
        return ""
    errors = body.get("errors")
    if isinstance(errors, list):
        messages = [str(e.get("message")) for e in errors if isinstance(e, dict)]
        return "; ".join(m for m in messages if m)
    return str(body.get("message") or "")


__all__ = ["BAD_KEY", "NOT_SET", "NotifySender", "Reply"]
