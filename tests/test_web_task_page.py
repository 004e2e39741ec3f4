"""The task page, /tasks/{reference}: who sees what, and managers' and officers' changes
through it (the same command as the cards', so the cards are refreshed), over HTTP."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, insert, select
from support import AUTH, INTAKE_SECRET, write_council
from web_support import sign_in

from responder.app import build_app
from responder.settings import Settings
from responder.store.schema import (
    feedback,
    follows,
    notifications,
    outbox,
    photos,
    reports,
    task_events,
    tasks,
)
from responder.web import db_key

NORTHGATE = (51.9051, 0.8873)
REPORTER = {
    "name": "Rosalind Reporter",
    "email": "rosalind.reporter@example.com",
    "phone": "07700900999",
    "updates": ["email", "sms"],
}
HTMX = {"HX-Request": "true"}


def report(type_: str = "fly-tipping", **extra) -> dict:
    body = {
        "type": type_,
        "description": "Mattress and bags dumped by the bus stop",
        "location": {"lat": NORTHGATE[0], "lon": NORTHGATE[1], "address": "1 High Street"},
        "photos": ["https://forms.example/uploads/abc.jpg"],
        "reporter": REPORTER,
        "source": "web-form",
    }
    body.update(extra)
    return body


async def new_task(client, type_: str = "fly-tipping", **extra) -> dict:
    response = await client.post("/api/tasks", json=report(type_, **extra), headers=AUTH)
    assert response.status == 201, await response.text()
    return await response.json()


@pytest.fixture
def sqlite_settings(tmp_path) -> Settings:
    """Page and permission tests: the database does not matter, SQLite only."""
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'r.db'}",
        config_path=write_council(tmp_path),
        intake_keys={"forms": INTAKE_SECRET},
        background=False,
    )


@pytest.fixture
async def page_client(aiohttp_client, sqlite_settings, clock):
    return await aiohttp_client(build_app(sqlite_settings, clock=clock))


def main_of(html: str) -> str:
    """What the page says, without the layout (whose header names the signed-in person and
    carries their CSRF token)."""
    inner = html.split("<main", 1)[1].split(">", 1)[1]
    return inner.split("</main>", 1)[0]


async def task_row(client, task_id: int):
    async with client.app[db_key].read() as conn:
        return (await conn.execute(select(tasks).where(tasks.c.id == task_id))).one()


async def events_of(client, task_id: int):
    async with client.app[db_key].read() as conn:
        return (
            await conn.execute(
                select(task_events)
                .where(task_events.c.task_id == task_id)
                .order_by(task_events.c.id)
            )
        ).all()


async def refreshes(client, task_id: int) -> set[str]:
    async with client.app[db_key].read() as conn:
        rows = await conn.execute(
            select(outbox.c.idempotency_key).where(
                outbox.c.task_id == task_id, outbox.c.kind == "teams.refresh"
            )
        )
        return set(rows.scalars())


async def post_act(client, reference: str, csrf: str | None, htmx: bool = False, **fields):
    data = {"csrf": csrf, **fields} if csrf is not None else dict(fields)
    return await client.post(
        f"/tasks/{reference}/act", data=data, allow_redirects=False, headers=HTMX if htmx else {}
    )


# -- who sees what ---------------------------------------------------------------------------


async def test_each_role_sees_the_task_as_theirs_and_everyone_else_the_same_404(page_client, clock):
    client = page_client
    created = await new_task(client, external_id="CAS-77")
    ref, assignee = created["reference"], created["assignee"]
    assert assignee in ("bob", "carol")
    officer_name = {"bob": "Bob Warden", "carol": "Carol Warden"}[assignee]
    task_id = created["id"]
    # An officer's photo, a Notify delivery and a resident's rating, as their commands write them.
    async with client.app[db_key].write() as conn:
        report_id = (
            await conn.execute(select(reports.c.id).where(reports.c.task_id == task_id))
        ).scalar_one()
        now = (await conn.execute(select(tasks.c.created_at))).scalar_one()
        await conn.execute(
            insert(photos).values(
                token="tok_" + "a" * 40,
                task_id=task_id,
                person_id=assignee,
                content_type="image/jpeg",
                data=b"\xff\xd8\xff",
                created_at=now,
            )
        )
        await conn.execute(
            insert(notifications).values(
                reference=f"notify:{task_id}:x",
                task_id=task_id,
                report_id=report_id,
                event="received",
                channel="email",
                status="delivered",
                created_at=now,
                updated_at=now,
            )
        )
        await conn.execute(
            insert(feedback).values(
                report_id=report_id,
                task_id=task_id,
                rating=4,
                comment="Cleared quickly",
                created_at=now,
            )
        )
    personal = [REPORTER["name"], REPORTER["email"], REPORTER["phone"], "Rosalind"]

    # Not signed in: to sign in, and back here afterwards.
    response = await client.get(f"/tasks/{ref}", allow_redirects=False)
    assert response.status == 302
    location = response.headers["Location"]
    assert location.startswith("/auth/sign-in?next=") and location.endswith(ref)

    # The team's manager: everything the card shows, the history and the rest, and the forms.
    await sign_in(client, "alice")
    response = await client.get(f"/tasks/{ref}")
    html = await response.text()
    assert response.status == 200, html
    assert response.headers["Cache-Control"] == "no-store"
    for words in (
        "Fly-tipping",
        ref,
        f"Assigned to {officer_name}",
        "High priority",
        "1 High Street",
        "Northgate",
        "Street Cleansing North",
        "Mattress and bags dumped by the bus stop",
        "https://www.google.com/maps/dir/?api=1&amp;destination=51.905100,0.887300",
        "Due Tue 24 Nov, 09:00",  # 24 h after Monday 09:00 UTC, in London (GMT)
        "CAS-77",
        "web-form",
        'src="/api/photos/tok_' + "a" * 40 + '"',
        'alt="Photo 1 of 1: Fly-tipping at 1 High Street"',
        "https://forms.example/uploads/abc.jpg",
        "delivered",
        "4 out of 5",
        "Cleared quickly",
        'name="action" value="reassign"',
        'name="action" value="priority"',
        'name="action" value="cancel"',
        "This task has not been accepted yet.",  # why no note yet, the lifecycle's sentence
        '<th scope="col">Who</th>',
    ):
        assert words in html, words
    assert 'value="accept"' not in html  # the assignee's, not the manager's
    for words in personal:
        assert words not in html
    manager_main = main_of(html)

    # The assignee: the same task, with the officer's next step.
    await sign_in(client, assignee)
    html = await (await client.get(f"/tasks/{ref.lower()}")).text()  # forgiving about case
    assert f"Assigned to {officer_name}" in html and 'name="action" value="accept"' in html
    assert 'value="cancel"' not in html and 'value="reassign"' not in html
    assert all(words not in html for words in personal)

    # The ward's councillor: the public case view, no officers' names, no internals.
    await sign_in(client, "cllr-hughes")
    response = await client.get(f"/tasks/{ref}")
    html = await response.text()
    assert response.status == 200
    assert "Follow this case" in html and "With an officer" in html and "Reported" in html
    for words in (
        officer_name,
        "Bob Warden",
        "Carol Warden",
        "CAS-77",
        "out of 5",
        'name="action"',
        *personal,
    ):
        assert words not in html, words

    # Everyone else, and every address that is not a task of theirs: the same 404.
    bodies = set()
    for person, path in (
        ("dan", f"/tasks/{ref}"),  # an officer of another team
        ("frank", f"/tasks/{ref}"),  # a manager of another team
        ("cllr-patel", f"/tasks/{ref}"),  # a councillor of another ward
        ("alice", "/tasks/RSP-99999"),
        ("alice", "/tasks/RSP-99999999999999999999"),
        ("alice", "/tasks/not-a-task"),
        ("alice", "/tasks/RSP-%D9%A1%D9%A0%D9%A4%D9%A2"),  # Arabic-Indic digits
        ("alice", "/tasks/RSP-%EF%BC%91%EF%BC%90%EF%BC%94%EF%BC%92"),  # fullwidth digits
        ("alice", "/tasks/..%2F..%2Fetc"),
        ("alice", "/tasks/" + "1" * 300),
    ):
        await sign_in(client, person)
        response = await client.get(path)
        assert response.status == 404, (person, path)
        bodies.add(main_of(await response.text()))
    assert len(bodies) == 1
    assert "There is no such page, or it is not one you can see" in bodies.pop()
    assert manager_main  # (the manager's page was a page, not the refusal)

    # Late, in words (not colour alone), for staff and councillors alike.
    clock.now += timedelta(days=2)
    await sign_in(client, "alice")
    html = await (await client.get(f"/tasks/{ref}")).text()
    assert "Overdue: 1 day late · was due Tue 24 Nov, 09:00" in html
    await sign_in(client, "cllr-hughes")
    assert ">Overdue</span>" in await (await client.get(f"/tasks/{ref}")).text()


async def test_a_councillor_follows_and_unfollows_a_case_of_their_ward(page_client):
    client = page_client
    created = await new_task(client)
    ref, task_id = created["reference"], created["id"]

    async def following() -> int:
        async with client.app[db_key].read() as conn:
            count = select(func.count()).select_from(follows)
            return (await conn.execute(count.where(follows.c.task_id == task_id))).scalar_one()

    csrf = await sign_in(client, "cllr-patel")  # not their ward: as if it did not exist
    response = await client.post(f"/tasks/{ref}/follow", data={"csrf": csrf, "follow": "on"})
    assert response.status == 404 and await following() == 0

    csrf = await sign_in(client, "cllr-hughes")
    response = await client.post(
        f"/tasks/{ref}/follow", data={"csrf": csrf, "follow": "on"}, allow_redirects=False
    )
    assert response.status == 303
    assert response.headers["Location"] == f"/tasks/{ref}?done=follow"
    html = await (await client.get(response.headers["Location"])).text()
    assert "You&#39;re following this case" in html and "Stop following" in html
    assert await following() == 1

    response = await client.post(f"/tasks/{ref}/follow", data={"csrf": csrf, "follow": "sideways"})
    assert response.status == 400 and await following() == 1
    response = await client.post(f"/tasks/{ref}/follow", data={"follow": "off"})  # no token
    assert response.status == 403 and await following() == 1

    response = await client.post(
        f"/tasks/{ref}/follow", data={"csrf": csrf, "follow": "off"}, headers=HTMX
    )
    html = await response.text()
    assert response.status == 200 and html.startswith('<div id="task-panel"')
    assert "stopped following" in html and "Follow this case" in html
    assert await following() == 0

    # A councillor may see the case but not change the task.
    version = str(created.get("version", (await task_row(client, task_id)).version))
    response = await post_act(client, ref, csrf, action="cancel", version=version, reason="x")
    assert response.status == 403
    assert "Only the team" in await response.text()
    assert (await task_row(client, task_id)).status == "assigned"


# -- changes ---------------------------------------------------------------------------------


async def test_managers_change_a_task_through_the_page_and_the_cards_follow(
    aiohttp_client, settings, clock
):
    client = await aiohttp_client(build_app(settings, clock=clock))
    created = await new_task(client)
    ref, task_id, assignee = created["reference"], created["id"], created["assignee"]
    other = "carol" if assignee == "bob" else "bob"
    csrf = await sign_in(client, "alice")

    async def check(verb: str, before: int, actor: str = "alice", **fields) -> object:
        response = await post_act(client, ref, csrf, action=verb, version=str(before), **fields)
        assert response.status == 303, await response.text()
        assert response.headers["Location"] == f"/tasks/{ref}?done={verb}"
        row = await task_row(client, task_id)
        assert row.version == before + 1
        last = (await events_of(client, task_id))[-1]
        assert (last.actor, last.action) == (actor, verb if verb != "assign" else "reassign")
        assert last.data["via"] == "web"
        assert f"refresh:{task_id}:{before + 1}" in await refreshes(client, task_id)
        return row

    row = await check("priority", 1, priority="urgent")
    assert row.priority == "urgent"
    assert row.due_at == row.created_at + timedelta(hours=4)
    row = await check("reassign", 2, officer=other)
    assert row.assignee == other and row.status == "assigned"
    page = await (await client.get(f"/tasks/{ref}?done=reassign")).text()
    assert "Reassigned." in page and "from the web page" in page

    # The officer accepts it on the page; then the manager may add a note.
    officer_csrf = await sign_in(client, other)
    response = await post_act(client, ref, officer_csrf, htmx=True, action="accept", version="3")
    html = await response.text()
    assert response.status == 200 and "You accepted this task." in html
    assert html.startswith('<div id="task-panel"')
    assert (await task_row(client, task_id)).status == "accepted"
    csrf = await sign_in(client, "alice")
    row = await check("update", 4, note="Bring the van round the back")
    assert (await events_of(client, task_id))[-1].note == "Bring the van round the back"
    row = await check("cancel", 5, reason="A duplicate of another task")
    assert row.status == "cancelled"
    assert (await events_of(client, task_id))[-1].note == "A duplicate of another task"

    # Assign: a queue task nobody has taken, by its team's manager.
    queued = await new_task(client, "fallen-tree")
    assert queued["assignee"] is None
    csrf = await sign_in(client, "frank")
    ref, task_id = queued["reference"], queued["id"]
    html = await (await client.get(f"/tasks/{ref}")).text()
    assert 'name="action" value="assign"' in html and "Assign to" in html
    row = await check("assign", 1, "frank", officer="grace")
    assert (row.assignee, row.status) == ("grace", "assigned")


async def test_the_assigned_officer_works_the_task_from_the_page(page_client):
    client = page_client
    created = await new_task(client)
    ref, task_id, assignee = created["reference"], created["id"], created["assignee"]
    csrf = await sign_in(client, assignee)
    for verb, version in (("accept", 1), ("start", 2)):
        response = await post_act(client, ref, csrf, action=verb, version=str(version))
        assert response.status == 303
    html = await (await client.get(f"/tasks/{ref}?done=start")).text()
    assert "You started this task." in html and 'id="complete-outcome"' in html
    outcome = re.search(r'id="complete-outcome" name="outcome">\s*<option value="([^"]+)"', html)
    assert outcome is not None
    response = await post_act(client, ref, csrf, action="handback", version="3", reason="")
    assert response.status == 422 and "Say why you are handing it back." in await response.text()
    response = await post_act(
        client, ref, csrf, action="complete", version="3", outcome=outcome.group(1), note="Done"
    )
    assert response.status == 303
    row = await task_row(client, task_id)
    assert (row.status, row.outcome) == ("completed", outcome.group(1))
    last = (await events_of(client, task_id))[-1]
    assert (last.actor, last.action, last.data["via"]) == (assignee, "complete", "web")
    html = await (await client.get(f"/tasks/{ref}?done=complete")).text()
    assert "Completed." in html and "<dt>Closed</dt>" in html and "Done (" in html
    # Nothing left to do to a finished task, and a note says why not.
    assert 'name="action"' not in html and "This task is already completed." in html


async def test_stale_forged_hostile_and_unauthorised_changes_change_nothing(page_client):
    client = page_client
    created = await new_task(client)
    ref, task_id, assignee = created["reference"], created["id"], created["assignee"]
    csrf = await sign_in(client, "alice")
    before_row = await task_row(client, task_id)
    before_events = len(await events_of(client, task_id))
    before_refreshes = await refreshes(client, task_id)

    cases = [
        # (fields, status, words on the page)
        (
            {"action": "priority", "version": "0", "priority": "urgent"},
            409,
            "This page was out of date; here is the task as it is now.",
        ),
        ({"action": "priority", "version": "2", "priority": "urgent"}, 409, "out of date"),
        ({"action": "explode", "version": "1"}, 400, "There is no such action"),
        ({"version": "1"}, 400, "There is no such action"),
        ({"action": "priority", "version": "one", "priority": "urgent"}, 400, "which version"),
        ({"action": "priority", "version": "\u0661", "priority": "urgent"}, 400, "which version"),
        ({"action": "priority", "version": "9" * 40, "priority": "urgent"}, 400, "which version"),
        ({"action": "priority", "version": "1", "priority": "whenever"}, 422, "Choose a priority."),
        (
            {"action": "priority", "version": "1", "priority": "x" * 10_000},
            422,
            "Choose a priority.",
        ),
        (
            {"action": "reassign", "version": "1", "officer": "nobody"},
            422,
            "Choose an officer of the team",
        ),
        (
            {"action": "reassign", "version": "1", "officer": "dan"},
            422,  # another team's
            "Choose an officer of the team",
        ),
        (
            {"action": "reassign", "version": "1", "officer": assignee},
            422,  # already theirs
            "Choose an officer of the team",
        ),
        ({"action": "cancel", "version": "1", "reason": "   "}, 422, "Say why you are cancelling"),
        (
            {"action": "cancel", "version": "1", "reason": "r" * 501},
            422,
            "Keep the reason to 500 characters or fewer.",
        ),
        (
            {"action": "priority", "version": "1", "priority": "urgent", "note": "n" * 1001},
            422,
            "Keep the note to 1000 characters or fewer.",
        ),
        (
            {"action": "update", "version": "1", "note": "hello"},
            403,
            "This task has not been accepted yet.",
        ),
        ({"action": "accept", "version": "1"}, 403, "Only the assigned officer can accept"),
    ]
    for fields, status, words in cases:
        response = await post_act(client, ref, csrf, **fields)
        html = await response.text()
        assert response.status == status, (fields, html)
        assert words in html, (fields, words)
        assert "Nothing was changed" in html or "out of date" in html
    # With htmx, a refusal is the panel, still with its status.
    response = await post_act(client, ref, csrf, htmx=True, action="explode", version="1")
    assert response.status == 400
    assert (await response.text()).startswith('<div id="task-panel"')

    # No token, a wrong token, or not signed in: the middleware's 403 before anything runs.
    good = {"action": "priority", "version": "1", "priority": "urgent"}
    assert (await post_act(client, ref, None, **good)).status == 403
    assert (await post_act(client, ref, "forged-token", **good)).status == 403
    client.session.cookie_jar.clear()
    assert (await post_act(client, ref, csrf, **good)).status == 403

    # People who may not see the task, and references that are none: the one 404.
    for person in ("dan", "frank", "cllr-patel"):
        other_csrf = await sign_in(client, person)
        response = await post_act(client, ref, other_csrf, **good)
        assert response.status == 404, person
    csrf = await sign_in(client, "alice")
    for path in ("RSP-99999999999999999999", "RSP-99999", "..%2F", "RSP-%D9%A1%D9%A0%D9%A4"):
        response = await post_act(client, path, csrf, **good)
        assert response.status == 404, path

    assert await task_row(client, task_id) == before_row
    assert len(await events_of(client, task_id)) == before_events
    assert await refreshes(client, task_id) == before_refreshes
