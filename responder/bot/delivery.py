"""Outbox handlers for Teams: send each task card once, then keep every copy up to date."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from weakref import WeakValueDictionary

import aiohttp
from sqlalchemy import Connection

from responder.bot.connector import Connector, ConnectorReply, card_activity
from responder.bot.pacing import TeamsPacer
from responder.bot.views import Viewer, render
from responder.cards.cases import reminder_words, status_notice_card
from responder.cards.digest import digest_card, digest_view
from responder.commands.delivery_log import record_undelivered
from responder.dialogs.chat import STATUS_WORDS
from responder.domain.context import Domain
from responder.domain.lifecycle import OPEN_STATUSES, Status
from responder.domain.vocabulary import outcome_words
from responder.jobs.dispatcher import Done, Message, Outcome, Park, Retry
from responder.messages import CardRefresh, DigestDelivery, Notice, TaskCard
from responder.queries.digest import build_digest, digest_period
from responder.queries.tasks import load_task
from responder.store.db import Database
from responder.store.teams_state import (
    Address,
    SentCard,
    address,
    record_card,
    sent_cards,
    team_channel,
)

# 412 comes back when a card is updated concurrently: worth another go, like a 5xx.
_RETRYABLE = {408, 412, 500, 502, 503, 504}


class TeamsDelivery:
    def __init__(
        self,
        db: Database,
        domain: Domain,
        connector: Connector,
        pacer: TeamsPacer,
        clock: Callable[[], datetime],
    ) -> None:
        self.db = db
        self.domain = domain
        self.connector = connector
        self.pacer = pacer
        self.clock = clock
        # One refresh of a task at a time here, so an older render never lands last.
        # Weak: a lock lives only while someone holds or waits for it (no growth per task).
        self._task_locks: WeakValueDictionary[int, asyncio.Lock] = WeakValueDictionary()
        self._conversation_locks: WeakValueDictionary[str, asyncio.Lock] = WeakValueDictionary()

    def handlers(self) -> dict:
        return {
            TaskCard.KIND: self.card,
            CardRefresh.KIND: self.refresh,
            Notice.KIND: self.notice,
            DigestDelivery.KIND: self.digest,
        }

    def _lock(self, task_id: int) -> asyncio.Lock:
        return self._task_locks.setdefault(task_id, asyncio.Lock())

    async def card(self, message: Message) -> Outcome:
        owed = TaskCard.read(message.payload)
        task_id, person, team = owed.task_id, owed.person, owed.team
        viewer = Viewer(person_id=person) if person else Viewer(channel_team=team)
        # An escalation: the card comes with why it came, as a new message that alerts.
        notice, alert = owed.notice, owed.alert
        now = self.clock()

        def read(conn: Connection):
            if person:
                target = address(conn, f"person:{person}")
            else:
                assert team is not None  # a card goes to a person or a team's channel
                channel = team_channel(conn, team)
                if channel is None:
                    return None
                target = address(conn, channel)
            existing = {c.recipient: c for c in sent_cards(conn, task_id)}
            return target, existing, render(conn, self.domain, task_id, viewer, now, notice)

        async with self._lock(task_id):
            found = await self.db.query(read)
            if found is None:
                return Done(f"team {team} has no linked channel")
            target, existing, rendered = found
            if rendered is None:
                return Done("the task no longer exists")
            if target is None:
                return await self._unreachable(task_id, person or f"channel of {team}")
            task, card = rendered
            sent = existing.get(viewer.recipient)
            if sent is not None and sent.conversation_id == target.conversation_id and not alert:
                return await self._update(task_id, sent, task.version, card)
            return await self._send(task_id, viewer.recipient, target, task.version, card)

    async def notice(self, message: Message) -> Outcome:
        """A case someone follows changed status: one short message, with a way to open it."""
        owed = Notice.read(message.payload)
        person, task_id = owed.person, owed.task_id
        status = Status(owed.status or Status.ASSIGNED)

        def read(conn: Connection):
            return address(conn, f"person:{person}"), load_task(conn, self.domain, task_id)

        target, task = await self.db.query(read)
        if task is None:
            return Done("the task no longer exists")
        if target is None:
            return Park(f"{person} has not installed Responder in Teams")
        council = self.domain.council
        task_type = council.task_type(task.type)
        if owed.reminder:
            if task.status not in OPEN_STATUSES or task.assignee != person:
                return Done("no longer theirs to do")
            local = task.due_at.astimezone(council.tz)
            count = len(council.priority_names)
            known = task.priority in council.priority_names
            rank = council.priority_rank(task.priority) if known else count
            words = reminder_words(task.priority, rank, count, local, self.clock())
        else:
            words = f"Now {STATUS_WORDS[status].lower()}"
            if status is Status.COMPLETED and task.outcome:
                outcomes = council.outcomes_for(task.type)  # the council's own words
                words += f" ({outcome_words(outcomes, task.outcome, 'councillor')})"
        card = status_notice_card(
            task.reference,
            task_type.name if task_type else task.type,
            words + ".",
            task.address or f"{task.lat:.5f}, {task.lon:.5f}",
            task.id,
        )
        reply = await self._call(
            target.conversation_id,
            self.connector.send(target.service_url, target.conversation_id, card_activity(card)),
        )
        if isinstance(reply, ConnectorReply) and reply.ok:
            return Done()
        return self._failure(reply, target.conversation_id)

    async def digest(self, message: Message) -> Outcome:
        """A team's digest to one manager, or to the team's channel: built now, from the
        period stored with it (open and overdue figures are as of sending)."""
        owed = DigestDelivery.read(message.payload)
        digest_id, team, person = owed.digest_id, owed.team, owed.person
        now = self.clock()
        if self.domain.council.team(team) is None:
            return Done(f"team {team} is no longer in the council file")

        def read(conn: Connection):
            period = digest_period(conn, digest_id)
            if period is None:
                return "the digest no longer exists"
            if person:
                target = address(conn, f"person:{person}")
            else:
                channel = team_channel(conn, team)
                if channel is None:
                    return f"team {team} has no linked channel"
                target = address(conn, channel)
            _, since, until = period
            return target, build_digest(conn, self.domain, team, since, until, now)

        found = await self.db.query(read)
        if isinstance(found, str):
            return Done(found)
        target, built = found
        if target is None:
            who = self.domain.council.person(person) if person else None
            name = who.name if who else (person or f"the channel of {team}")
            return Park(f"{name} has not installed Responder in Teams")
        card = digest_card(digest_view(built, self.domain.council))
        reply = await self._call(
            target.conversation_id,
            self.connector.send(target.service_url, target.conversation_id, card_activity(card)),
        )
        if isinstance(reply, ConnectorReply) and reply.ok:
            return Done()
        return self._failure(reply, target.conversation_id)

    async def refresh(self, message: Message) -> Outcome:
        task_id = CardRefresh.read(message.payload).task_id
        now = self.clock()

        def read(conn: Connection) -> list[tuple[SentCard, int, dict]]:
            renders = []
            for copy in sent_cards(conn, task_id):
                rendered = render(conn, self.domain, task_id, Viewer.of(copy.recipient), now)
                if rendered is not None and rendered[0].version > copy.version:
                    renders.append((copy, rendered[0].version, rendered[1]))
            return renders

        async with self._lock(task_id):
            renders = await self.db.query(read)
            outcomes = await asyncio.gather(
                *(self._update(task_id, copy, version, card) for copy, version, card in renders)
            )
        failures = [o for o in outcomes if not isinstance(o, Done)]
        if not failures:
            return Done()
        retry_after = [o.after for o in failures if isinstance(o, Retry) and o.after]
        if all(isinstance(o, Park) for o in failures):
            return Park("; ".join(o.error for o in failures))
        # Copies already updated are skipped next time (their version has caught up).
        return Retry("; ".join(o.error for o in failures), max(retry_after, default=None))

    async def _send(
        self, task_id: int, recipient: str, target: Address, version: int, card: dict
    ) -> Outcome:
        reply = await self._call(
            target.conversation_id,
            self.connector.send(target.service_url, target.conversation_id, card_activity(card)),
        )
        if isinstance(reply, ConnectorReply) and reply.ok:
            activity_id = reply.body.get("id")
            if not activity_id:
                return Park("Teams accepted the card but gave no activity id to update it by")
            sent = SentCard(
                recipient, target.conversation_id, target.service_url, str(activity_id), version
            )
            await self.db.run(lambda conn: record_card(conn, task_id, sent, self.clock()))
            return Done()
        return self._failure(reply, target.conversation_id)

    async def _update(self, task_id: int, sent: SentCard, version: int, card: dict) -> Outcome:
        reply = await self._call(
            sent.conversation_id,
            self.connector.update(
                sent.service_url, sent.conversation_id, sent.activity_id, card_activity(card)
            ),
        )
        if isinstance(reply, ConnectorReply) and reply.ok:
            updated = SentCard(
                sent.recipient, sent.conversation_id, sent.service_url, sent.activity_id, version
            )
            await self.db.run(lambda conn: record_card(conn, task_id, updated, self.clock()))
            return Done()
        if isinstance(reply, ConnectorReply) and reply.status == 404:
            # The message was deleted in Teams: send the card afresh.
            target = Address(sent.recipient, sent.conversation_id, sent.service_url)
            return await self._send(task_id, sent.recipient, target, version, card)
        return self._failure(reply, sent.conversation_id)

    async def _call(self, conversation_id: str, request) -> ConnectorReply | str:
        # One request in flight per conversation: the next one leaves only once this one's
        # answer is in, so a 429's Retry-After pauses it before it goes (and updates to a
        # conversation arrive in order).
        lock = self._conversation_locks.setdefault(conversation_id, asyncio.Lock())
        async with lock:
            await self.pacer.acquire(conversation_id)
            try:
                return await request
            except (aiohttp.ClientError, TimeoutError) as exc:
                return f"could not reach Teams ({type(exc).__name__})"

    def _failure(self, reply: ConnectorReply | str, conversation_id: str) -> Outcome:
        if isinstance(reply, str):
            return Retry(reply)
        error = reply.body.get("error", {}) if isinstance(reply.body, dict) else {}
        detail = error.get("message") or error.get("code") or ""
        text = f"Teams answered {reply.status}" + (f": {detail}" if detail else "")
        if reply.status == 429:
            wait = reply.retry_after if reply.retry_after is not None else 1.0
            self.pacer.pause(conversation_id, wait)
            return Retry(text, wait)
        if reply.status in _RETRYABLE or reply.status >= 500:
            return Retry(text)
        return Park(text)

    async def _unreachable(self, task_id: int, who: str) -> Outcome:
        person = self.domain.council.person(who)
        name = person.name if person else who
        note = f"{name} has not installed Responder in Teams, so the card could not be sent."
        await record_undelivered(self.db, task_id, note, self.clock())
        return Park(note)
