"""The visibility rule as a pure test (domain/visibility.py) and as SQL (queries/scope.py)
agree: for tasks of every team, ward and assignee, followed or not, and every person of the
council (and a stranger, and a whole-council key), both say the same."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, select
from support import EXAMPLES

from responder.config import load_council
from responder.domain.visibility import (
    COUNCIL_WIDE,
    MAX_TASK_ID,
    NOBODY,
    Scope,
    scope_of,
    task_id_of,
)
from responder.queries.scope import visible
from responder.store import migrate
from responder.store.db import Database
from responder.store.schema import follows, tasks
from responder.store.sync import sync_council

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
COUNCIL = load_council(EXAMPLES / "council.yaml")
TEAMS = [t.code for t in COUNCIL.file.teams]
WARDS = [w.name for w in COUNCIL.wards]
PEOPLE = [p.id for p in COUNCIL.file.people]


def task_row(i: int, team: str, ward: str, assignee: str | None) -> dict:
    return {
        "id": i,
        "type": "litter",
        "status": "assigned" if assignee else "unassigned",
        "priority": "normal",
        "ward": ward,
        "team": team,
        "assignee": assignee,
        "lat": 51.9051,
        "lon": 0.8873,
        "description": "",
        "due_at": NOW,
        "created_at": NOW,
        "updated_at": NOW,
        "version": 1,
        "photos": [],
        "source": "test",
        "raised_by": "resident",
    }


@pytest.fixture
async def db(database_url):
    db = Database(database_url)
    await migrate.upgrade(db)
    await sync_council(db, COUNCIL, NOW)
    yield db
    await db.dispose()


async def test_the_rule_and_its_sql_agree(db):
    # Every combination of team x ward x assignee (nobody, each officer, a manager).
    cases = []
    assignees = [None, "bob", "dan", "grace", "alice"]
    for team in TEAMS:
        for ward in WARDS:
            for assignee in assignees:
                cases.append((len(cases) + 1, team, ward, assignee))
    followed = {(person, i) for i, *_ in cases for person in PEOPLE if (i + len(person)) % 7 == 0}

    def seed(conn):
        conn.execute(insert(tasks), [task_row(*c) for c in cases])
        conn.execute(
            insert(follows),
            [{"person_id": p, "task_id": i, "created_at": NOW} for p, i in sorted(followed)],
        )

    await db.run(seed)
    people = [COUNCIL.person(p) for p in PEOPLE] + [None]
    # Read keys (issue 19): scoped to wards, to teams, to both; an empty key sees nothing.
    keys = [
        Scope(None, wards=frozenset(WARDS[:1])),
        Scope(None, teams=frozenset(TEAMS[:1])),
        Scope(None, wards=frozenset(WARDS[1:3]), teams=frozenset(TEAMS[-1:])),
    ]
    scopes = [*keys, NOBODY] + [scope_of(COUNCIL, p) for p in people] + [COUNCIL_WIDE]
    for scope in scopes:
        in_sql = set(
            await db.query(
                lambda conn, scope=scope: conn.execute(
                    select(tasks.c.id).where(visible(scope))
                ).scalars()
            )
        )
        pure = {
            i
            for i, team, ward, assignee in cases
            if scope.may_see(ward, team, assignee, (scope.person_id, i) in followed)
        }
        assert in_sql == pure, scope
    assert scopes[-2].may_see(WARDS[0], TEAMS[0], None, False) is False  # a stranger: nothing
    assert NOBODY.may_see(WARDS[0], TEAMS[0], "bob", True) is False
    # A ward key sees its ward's tasks of every team, and no other ward's, followed or not.
    assert keys[0].may_see(WARDS[0], TEAMS[-1], None, False) is True
    assert keys[0].may_see(WARDS[1], TEAMS[0], None, True) is False


def test_task_ids_within_64_bits_only():
    assert [task_id_of(v) for v in (1, MAX_TASK_ID)] == [1, MAX_TASK_ID]
    for bad in (0, -1, MAX_TASK_ID + 1, 10**30, True, 1.0, "1", None):
        assert task_id_of(bad) is None, bad
