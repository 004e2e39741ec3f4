"""A small council's week of work for the performance and ward pages' tests: tasks made by
the intake API and moved by the cards' own command (``commands.act``), on a settable
clock, so every figure the pages show can be counted by hand.

``NOW`` is Monday 23 Nov 2026, 12:00 UTC (12:00 in London). The tasks:

====  ==========================  =========  =========================================
name  type / ward                 team       what happens (T0 = Fri 20 Nov 09:00 UTC)
====  ==========================  =========  =========================================
A     fly-tipping / Northgate     sc-north   created T0, completed T0+2 h (in time)
B     fly-tipping / Northgate     sc-north   created T0, completed T0+30 h (late)
C     fly-tipping / Southmere     sc-south   created T0, open (overdue now)
D     fly-tipping / Eastwood      sc-north   created T0+1 d, cancelled T0+1 d 1 h
E     grass-cutting / Northgate   green      created T0, open (queue; due in 10 days)
F     fly-tipping / Riverside     sc-south   created 1 Sep (before the period), open
G     fly-tipping / Northgate     sc-north   created T0, accepted and started: in progress
====  ==========================  =========  =========================================

Residents rated A 4 (T0+3 h) and B 2 (T0+31 h); a rating of F 5 on 2 Sep is outside the
default period.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select
from support import AUTH

from responder.commands.act import ActionRequest, act
from responder.domain.lifecycle import Action
from responder.store.schema import feedback, reports
from responder.web import db_key, domain_key

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

PLACES = {
    "Northgate": (51.905, 0.885),
    "Eastwood": (51.905, 0.905),
    "Southmere": (51.885, 0.885),
    "Riverside": (51.885, 0.905),
}


@dataclass
class Made:
    id: int
    reference: str
    team: str
    ward: str
    assignee: str | None


async def make_task(client, clock, type_: str, ward: str, at: datetime, n: int) -> Made:
    clock.now = at
    lat, lon = PLACES[ward]
    body = {
        "type": type_,
        "description": f"Test task {n}",
        "location": {"lat": lat + n * 0.001, "lon": lon, "address": f"{n} Test Street"},
        "source": "web-form",
        "external_id": f"perf-{n}",
    }
    response = await client.post("/api/tasks", json=body, headers=AUTH)
    assert response.status == 201, await response.text()
    task = await response.json()
    assert task["ward"] == ward, task
    return Made(task["id"], task["reference"], task["team"], task["ward"], task.get("assignee"))


async def do(client, clock, task: Made, action: Action, person: str | None, at: datetime, **kw):
    clock.now = at
    app = client.server.app
    result = await act(
        app[db_key],
        app[domain_key],
        ActionRequest(task.id, action, person, None, **kw),
        at,
    )
    assert result.applied, result.notice
    return result.task


async def rate(client, task: Made, rating: int, at: datetime) -> None:
    db = client.server.app[db_key]

    def write(conn):
        report_id = conn.execute(
            select(reports.c.id).where(reports.c.task_id == task.id)
        ).scalar_one()
        conn.execute(
            insert(feedback).values(
                report_id=report_id, task_id=task.id, rating=rating, created_at=at
            )
        )

    await db.run(write)


async def build_week(client, clock) -> dict[str, Made]:
    t: dict[str, Made] = {}
    t["A"] = await make_task(client, clock, "fly-tipping", "Northgate", T0, 1)
    t["B"] = await make_task(client, clock, "fly-tipping", "Northgate", T0, 2)
    t["C"] = await make_task(client, clock, "fly-tipping", "Southmere", T0, 3)
    t["E"] = await make_task(client, clock, "grass-cutting", "Northgate", T0, 5)
    t["G"] = await make_task(client, clock, "fly-tipping", "Northgate", T0, 7)
    t["D"] = await make_task(client, clock, "fly-tipping", "Eastwood", T0 + timedelta(days=1), 4)
    t["F"] = await make_task(
        client, clock, "fly-tipping", "Riverside", datetime(2026, 9, 1, 9, tzinfo=UTC), 6
    )
    for name in "ABG":
        person = t[name].assignee
        await do(client, clock, t[name], Action.ACCEPT, person, T0 + timedelta(hours=1))
    await do(
        client,
        clock,
        t["A"],
        Action.COMPLETE,
        t["A"].assignee,
        T0 + timedelta(hours=2),
        outcome="resolved",
    )
    await do(
        client,
        clock,
        t["B"],
        Action.COMPLETE,
        t["B"].assignee,
        T0 + timedelta(hours=30),
        outcome="resolved",
    )
    await do(client, clock, t["G"], Action.START, t["G"].assignee, T0 + timedelta(hours=3))
    await do(
        client,
        clock,
        t["D"],
        Action.CANCEL,
        "alice",
        T0 + timedelta(days=1, hours=1),
        reason="Duplicate of a phone report",
    )
    await rate(client, t["A"], 4, T0 + timedelta(hours=3))
    await rate(client, t["B"], 2, T0 + timedelta(hours=31))
    await rate(client, t["F"], 5, datetime(2026, 9, 2, tzinfo=UTC))
    clock.now = NOW
    return t
