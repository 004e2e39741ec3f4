"""The service as a process, its reports and its outbox, for the crash and fault scenarios.

Shared by ``tests/test_durability.py`` (which asserts) and ``bench.resilience`` (which
counts); moved here from the test so that the benchmark needs no pytest. The names keep
the test's leading underscores, so neither caller changed.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import create_engine, select, update

from fakes import EXAMPLES, ROOT
from fakes.connector import FakeConnector
from fakes.notify import FakeNotify
from responder.store.schema import outbox

INTAKE_SECRET = "test-secret-forms"  # the same as tests/support.py's
AUTH = {"Authorization": f"Bearer {INTAKE_SECRET}"}

# Everyone in the example council installs the bot, so no card is parked as unreachable.
PEOPLE = (
    "alice",
    "frank",
    "bob",
    "carol",
    "dan",
    "erin",
    "grace",
    "henry",
    "cllr-hughes",
    "cllr-patel",
)


FAULT_SECONDS = 60.0  # the minute of faults
REPORTS_PER_SECOND = 2.5  # 150 reports over the minute: distinct places, no duplicates


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _location(i: int) -> dict[str, Any]:
    """Spread over the four wards, 2.5e-3 degrees apart: never duplicates of each other."""
    row, col = divmod(i % 225, 15)
    return {
        "lat": round(51.8815 + row * 0.0025, 6),
        "lon": round(0.8815 + col * 0.0025, 6),
        "address": f"{i} High Street",
    }


def _email(tag: str, i: int) -> str:
    return f"resident-{tag}-{i}@example.com"


def _report(tag: str, i: int) -> dict[str, Any]:
    return {
        "type": "fly-tipping",
        "description": "Mattress by the bus stop",
        "location": _location(i),
        "external_id": f"{tag}-{i}",
        "reporter": {"name": "A Resident", "email": _email(tag, i), "updates": ["email"]},
    }


def _task_ids(card: dict | None) -> set[int]:
    """The task ids a card's actions carry (``data.taskId``)."""
    found: set[int] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "taskId" in node:
                found.add(int(node["taskId"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(card)
    return found


def _posted_cards(connector: FakeConnector) -> Counter[tuple[int, str]]:
    """How many cards were POSTed (sent afresh, not updated) per (task, conversation)."""
    counts: Counter[tuple[int, str]] = Counter()
    for r in connector.received:
        if r.method == "POST" and r.card is not None:
            for task_id in _task_ids(r.card):
                counts[task_id, r.conversation_id] += 1
    return counts


def _outbox_rows(database_url: str) -> list:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(select(outbox)))
    finally:
        engine.dispose()


class Process:
    """``python app.py`` on a free port, logging to a file (no pipe to fill up)."""

    def __init__(self, tmp_path: Path, database_url: str, notify: FakeNotify) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp_path / "service.log"
        drop = ("MicrosoftAppId", "MicrosoftAppPassword", "RESPONDER_BACKGROUND", "RESPONDER_ENV")
        self.env = {k: v for k, v in os.environ.items() if k not in drop}
        self.env.update(
            DATABASE_URL=database_url,
            PORT=str(self.port),
            HOST="127.0.0.1",
            RESPONDER_INTAKE_KEYS=f"forms:{INTAKE_SECRET}",
            # Only the burst's messages are counted: no digest at start-up.
            RESPONDER_SCHEDULER="off",
            RESPONDER_CONFIG=str(EXAMPLES / "council.yaml"),
            NOTIFY_API_KEY=notify.api_key(),
            NOTIFY_BASE_URL=notify.url,
        )
        self.proc: subprocess.Popen | None = None

    async def start(self, session: aiohttp.ClientSession, within: float = 30.0) -> None:
        self._spawn()
        assert self.proc is not None
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"service exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}"
                )
            try:
                async with session.get(f"{self.url}/healthz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
        raise AssertionError(f"service did not answer /healthz within {within} s")

    def _spawn(self) -> None:
        with self.log.open("a") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "app.py"], cwd=ROOT, env=self.env, stdout=out, stderr=out
            )

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
                self.proc.wait(timeout=10)


def _end_leases(database_url: str) -> int:
    """What 120 s of waiting would do: rows claimed by the killed process become due now.

    The dispatcher's lease (``lease_seconds``, 120 s, not settable from the environment)
    is the only thing that frees a row claimed by a crashed process; this test does not
    wait that long. Only safe while no service is running.
    """
    engine = create_engine(database_url)
    try:
        with engine.begin() as conn:
            from datetime import UTC, datetime

            result = conn.execute(
                update(outbox)
                .where(outbox.c.status == "pending")
                .values(next_attempt_at=datetime.now(UTC))
            )
            return result.rowcount
    finally:
        engine.dispose()


async def _settle_db(database_url: str, within: float) -> list:
    deadline = time.monotonic() + within
    rows: list = []
    while time.monotonic() < deadline:
        rows = await asyncio.to_thread(_outbox_rows, database_url)
        if rows and not [r for r in rows if r.status == "pending"]:
            return rows
        await asyncio.sleep(0.25)
    pending = [(r.id, r.kind, r.attempts, r.last_error) for r in rows if r.status == "pending"]
    raise AssertionError(
        f"outbox did not settle within {within} s: {len(pending)} pending, {pending[:10]}"
    )
