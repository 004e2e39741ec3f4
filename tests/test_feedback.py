"""Residents rate finished work: the completion message's signed link, ``/feedback/{token}``.

The whole path goes through the front doors: a report in through ``POST /api/tasks``, the
work completed by the officers' command, the completion email taken by the fake Notify
(tests/../fakes/notify.py checks the JWT, the template and its placeholders, here one with
``((feedback_link))``), then the link followed and the form posted through the app over
real HTTP. The command that writes a rating runs on both databases; pages on SQLite only.
"""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update
from support import AUTH, EXAMPLES, INTAKE_SECRET
from web_support import sign_in

from fakes.notify import FakeNotify, Template, example_templates
from responder.access_log import AccessLogger
from responder.app import build_app
from responder.commands.act import ActionRequest, act
from responder.commands.erase import purge
from responder.commands.feedback import Recorded, record_feedback
from responder.domain.feedback import (
    COMMENT_MAX,
    FEEDBACK_PURPOSE,
    FORM_PURPOSE,
    TokenState,
    clean_comment,
    expiry_for,
    form_binding,
    make_token,
    read_form,
    read_token,
)
from responder.domain.lifecycle import Action
from responder.settings import Settings
from responder.store.schema import feedback, task_events, tasks
from responder.web import db_key, domain_key
from responder.web.session import derive_key

SECRET = "feedback-tests-secret-0123456789abcdef"
OTHER_SECRET = "another-deployments-secret-0123456789ab"
PUBLIC = "https://responder.sample-borough.gov.uk"  # examples/council.yaml
EMAIL = "zq-rater@example.com"
LONDON = ZoneInfo("Europe/London")
COMPLETED_EMAIL = "2c6b6b4e-1f4d-4a4e-9a56-0d7f1f6a1003"
_BINDING = re.compile(r'name="form" value="([^"]+)"')


def _key(secret: str = SECRET) -> bytes:
    return derive_key(secret, FEEDBACK_PURPOSE)


def _binding(token: str, secret: str = SECRET) -> str:
    return form_binding(derive_key(secret, FORM_PURPOSE), token)


def _b36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while number:
        number, digit = divmod(number, 36)
        out = digits[digit] + out
    return out


def _today() -> str:
    now = datetime.now(LONDON)
    return f"{now.day} {now:%B %Y}"


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'r.db'}"


def _settings(database_url: str, **kw) -> Settings:
    values = {
        "database_url": database_url,
        "config_path": EXAMPLES / "council.yaml",
        "intake_keys": {"forms": INTAKE_SECRET},
        "secret_key": SECRET,
        "scheduler": False,
        **kw,
    }
    return Settings(**values)


async def _report(client, *, updates=("email",), lat=51.9051, lon=0.8873) -> dict:
    body = {
        "type": "fly-tipping",
        "description": "zq-description Mattress by the bus stop",
        "location": {"lat": lat, "lon": lon, "address": "1 High Street"},
        "reporter": {"name": "zq-Resident Name", "email": EMAIL, "updates": list(updates)},
    }
    resp = await client.post("/api/tasks", json=body, headers=AUTH)
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def _complete(app, task: dict, outcome: str = "resolved") -> None:
    db, domain, officer = app[db_key], app[domain_key], task["assignee"]
    now = datetime.now(UTC)
    for action, extra in ((Action.ACCEPT, {}), (Action.COMPLETE, {"outcome": outcome})):
        result = await act(
            db, domain, ActionRequest(task["id"], action, officer, None, **extra), now
        )
        assert result.applied, result.notice


async def _report_id(app, task_id: int) -> int:
    from responder.store.schema import reports

    async with app[db_key].read() as conn:
        return (
            await conn.execute(select(reports.c.id).where(reports.c.task_id == task_id))
        ).scalar_one()


async def _stored(app, task_id: int) -> tuple[list, list]:
    async with app[db_key].read() as conn:
        rows = (await conn.execute(select(feedback).where(feedback.c.task_id == task_id))).all()
        events = (
            await conn.execute(
                select(task_events).where(
                    task_events.c.task_id == task_id, task_events.c.action == "feedback"
                )
            )
        ).all()
    return rows, events


# -- the whole path ------------------------------------------------------------------------------


@pytest.fixture
async def notify(aiohttp_server) -> FakeNotify:
    templates = example_templates()
    # The council's completion email links to the feedback page: the fake Notify refuses a
    # message that does not fill every placeholder, so the link must be there.
    templates[COMPLETED_EMAIL] = Template(
        COMPLETED_EMAIL,
        "email",
        "Your report ((reference)) is ((status)): ((outcome)). How did we do? ((feedback_link))",
        "Report ((reference)) ((status))",
    )
    fake = FakeNotify(templates=templates)
    server = await aiohttp_server(fake.app())
    fake.url = str(server.make_url("/")).rstrip("/")
    return fake


async def test_a_resident_rates_the_work_from_the_completion_email(
    aiohttp_server, aiohttp_client, sqlite_url, notify, caplog
):
    settings = _settings(sqlite_url, notify_api_key=notify.api_key(), notify_base_url=notify.url)
    server = await aiohttp_server(build_app(settings), access_log_class=AccessLogger)
    client = await aiohttp_client(server)
    app = client.app

    task = await _report(client)
    [received] = await notify.wait_for(lambda a: a.template_id.endswith("1001"))
    assert "feedback_link" not in received.personalisation  # only the completion message
    await _complete(app, task)
    [done] = await notify.wait_for(lambda a: a.template_id == COMPLETED_EMAIL)
    link = done.personalisation["feedback_link"]
    assert done.to == EMAIL and link.startswith(f"{PUBLIC}/feedback/")
    path = urlsplit(link).path
    token = path.removeprefix("/feedback/")
    assert len(token) < 48 and re.fullmatch(r"[0-9a-z]+\.[0-9a-z]+\.[A-Za-z0-9_-]+", token)
    assert len(await notify.wait_for(lambda a: True, count=2)) == 2  # nothing else was sent
    check = read_token(_key(), token, datetime.now(UTC))
    assert check.state is TokenState.VALID
    assert check.report_id == await _report_id(app, task["id"])
    assert check.expires_at is not None
    assert timedelta(days=29, hours=23) < check.expires_at - datetime.now(UTC) <= timedelta(days=30)

    with caplog.at_level(logging.INFO, "aiohttp.access"):
        page = await client.get(path)
        html = await page.text()
        assert page.status == 200, html
        assert page.headers["Cache-Control"] == "no-store"
        assert page.headers["Referrer-Policy"] == "no-referrer"
        for words in ("Fly-tipping", "1 High Street", task["reference"], _today(), "Dealt with"):
            assert words in html
        # Resident words only: no officer, no description or internal detail, no contact.
        officer = app[domain_key].council.person(task["assignee"])
        assert officer is not None and officer.name not in html
        assert "zq-" not in html and EMAIL not in html and "Cleared / fixed" not in html
        assert "<legend" in html and "How would you rate the work?" in html
        for value, words in ((1, "very poor"), (3, "neither good nor poor"), (5, "very good")):
            assert f'id="rating-{value}" name="rating" value="{value}"' in html
            assert f'<label class="fb-radio__label" for="rating-{value}">{value} – {words}' in html
        assert '<label class="fb-label" for="comment">' in html
        assert 'aria-describedby="comment-hint"' in html and 'id="comment-hint"' in html
        binding = _BINDING.search(html)
        assert binding is not None and binding.group(1) == _binding(token)

        form = {"form": binding.group(1), "rating": "4", "comment": "Quick work,\r\nthank you"}
        thanks = await client.post(path, data=form, headers={"Origin": "null"})
        assert thanks.status == 200, await thanks.text()
        assert "Thank you for your feedback" in await thanks.text()
        assert thanks.headers["Referrer-Policy"] == "no-referrer"

        again = await client.post(path, data=form | {"rating": "1", "comment": "changed"})
        assert again.status == 409
        assert "You have already rated this work – thank you" in await again.text()
        revisit = await client.get(path)
        assert revisit.status == 200 and "already rated" in await revisit.text()

    # The token never reaches the access log; the path does, cut.
    lines = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
    assert any('"GET /feedback/…" 200' in line for line in lines)
    assert any('"POST /feedback/…" 409' in line for line in lines)
    assert token not in caplog.text and token.split(".")[2] not in caplog.text

    rows, events = await _stored(app, task["id"])
    assert [(r.rating, r.comment) for r in rows] == [(4, "Quick work,\nthank you")]
    [event] = events
    assert (event.actor, event.data, event.from_status, event.to_status) == (
        "resident",
        {"rating": 4},
        "completed",
        "completed",
    )
    assert "thank you" not in (event.note or "")  # the comment stays out of the history
    history = (await (await client.get(f"/api/tasks/{task['id']}", headers=AUTH)).json())["history"]
    assert history[-1]["action"] == "feedback"
    assert history[-1]["note"] == "Resident rated the work 4 out of 5 (good)"
    assert notify.duplicates() == []


# -- refusals --------------------------------------------------------------------------------------


async def test_bad_links_and_forged_posts_change_nothing(aiohttp_client, sqlite_url):
    client = await aiohttp_client(build_app(_settings(sqlite_url, background=False)))
    app = client.app
    task = await _report(client)
    report_id = await _report_id(app, task["id"])
    later = datetime.now(UTC) + timedelta(days=10)
    token = make_token(_key(), report_id, later)
    path = f"/feedback/{token}"
    good = {"form": _binding(token), "rating": "5"}

    # Not completed yet: the same refusal as a link that never was.
    open_get = await client.get(path)
    open_text = await open_get.text()
    assert open_get.status == 404 and "This feedback link does not work" in open_text
    assert (await client.post(path, data=good)).status == 404
    await _complete(app, task)

    mac = token.split(".")[2]
    tampered_mac = token[:-1] + ("A" if token[-1] != "A" else "B")
    other_report = ".".join([_b36(report_id + 1), *token.split(".")[1:]])
    refused = {
        "tampered": tampered_mac,
        "another report, same mac": other_report,
        "another key": make_token(_key(OTHER_SECRET), report_id, later),
        "no such report": make_token(_key(), 999_999, later),
        "malformed": "not-a-token",
        "upper case": token.upper(),
        "mac only": mac,
        "7 KB": "a" * 7000,
        "odd bytes": "%00%FF..",
    }
    for name, bad in refused.items():
        for method in ("GET", "POST"):
            resp = await client.request(method, f"/feedback/{bad}", data=good)
            text = await resp.text()
            assert resp.status == 404, (name, method, text[:200])
            assert "This feedback link does not work" in text, name
            assert resp.headers["Referrer-Policy"] == "no-referrer"
            assert "<form" not in text and "Fly-tipping" not in text
    # 10 KB in the request line: aiohttp refuses the line itself, before any handler.
    huge = await client.get("/feedback/" + "a" * 10_240)
    assert huge.status == 400

    expired = make_token(_key(), report_id, datetime.now(UTC) - timedelta(seconds=1))
    for method in ("GET", "POST"):
        resp = await client.request(
            method, f"/feedback/{expired}", data={"form": _binding(expired), "rating": "5"}
        )
        assert resp.status == 410 and "This feedback link has expired" in await resp.text()

    # Forged posts: no binding, another token's, another key's, a foreign Origin, not a form.
    forged = [
        ({"rating": "5"}, {}),
        ({"rating": "5", "form": ""}, {}),
        ({"rating": "5", "form": _binding(expired)}, {}),
        ({"rating": "5", "form": _binding(token, OTHER_SECRET)}, {}),
        ({"rating": "5", "form": [good["form"], good["form"]]}, {}),
        (good, {"Origin": "https://evil.example"}),
        (good, {"Origin": PUBLIC + ".evil.example"}),
    ]
    for data, headers in forged:
        if isinstance(data.get("form"), list):
            body = [("rating", "5"), ("form", good["form"]), ("form", good["form"])]
            resp = await client.post(path, data=body, headers=headers)
        else:
            resp = await client.post(path, data=data, headers=headers)
        text = await resp.text()
        assert resp.status == 403, (data, headers, text[:200])
        assert "Your feedback could not be sent from here" in text
    as_json = await client.post(path, json=good)
    assert as_json.status == 403

    # Hostile answers: the form again, with an error summary; nothing stored.
    for rating in ("0", "6", "five", "", " 5", "5.0", "-1", "٥"):
        resp = await client.post(path, data={"form": good["form"], "rating": rating})
        text = await resp.text()
        assert resp.status == 422, rating
        assert "There is a problem" in text and 'href="#rating-1"' in text
        assert "Error: Tell us how we did" in text and 'aria-describedby="rating-error"' in text
    missing = await client.post(path, data={"form": good["form"], "comment": "no rating"})
    assert missing.status == 422 and "no rating" in await missing.text()  # kept for the resident
    two = await client.post(path, data=[("form", good["form"]), ("rating", "4"), ("rating", "5")])
    assert two.status == 422
    long_comment = "x" * 100_000
    resp = await client.post(path, data=good | {"comment": long_comment})
    text = await resp.text()
    assert resp.status == 422 and 'href="#comment"' in text
    assert "Keep your comment to 1,000 characters or fewer" in text
    assert "checked" in text and len(text) < 30_000  # the rating kept, the echo bounded
    just_over = await client.post(path, data=good | {"comment": "y" * (COMMENT_MAX + 1)})
    assert just_over.status == 422
    oversized = await client.post(path, data=good | {"comment": "z" * 400_000})
    assert oversized.status == 413 and "too long" in await oversized.text()
    assert await _stored(app, task["id"]) == ([], [])

    # A signed-in member of staff is no one special here: a bad link is refused all the same,
    # and the session's CSRF token is not the form's binding.
    csrf = await sign_in(client, "alice")
    staff = await client.get(f"/feedback/{tampered_mac}")
    assert staff.status == 404 and "This feedback link does not work" in await staff.text()
    staff_post = await client.post(path, data={"csrf": csrf, "rating": "1"})
    assert staff_post.status == 403
    assert await _stored(app, task["id"]) == ([], [])

    # After all that, the resident's own post still works, exactly once.
    edge = "\x00Fine\u0007 " + "w" * (COMMENT_MAX - 5) + "\r\n"  # exactly the most, cleaned
    ok = await client.post(path, data=good | {"comment": edge}, headers={"Origin": PUBLIC})
    assert ok.status == 200, await ok.text()
    rows, events = await _stored(app, task["id"])
    assert [(r.rating, r.comment) for r in rows] == [(5, "Fine " + "w" * (COMMENT_MAX - 5))]
    assert len(events) == 1


# -- the command, both databases -------------------------------------------------------------------


async def test_one_rating_per_report_and_comments_go_at_retention(aiohttp_client, database_url):
    client = await aiohttp_client(build_app(_settings(database_url, background=False)))
    app = client.app
    db, council = app[db_key], app[domain_key].council
    now = datetime.now(UTC)
    first = await _report(client)
    other = await _report(client, lat=51.9005, lon=0.8805)
    report_id = await _report_id(app, first["id"])
    other_id = await _report_id(app, other["id"])

    # Not completed (still open), no such report: nothing to rate.
    assert (await record_feedback(db, council, report_id, 3, None, now)).outcome is (
        Recorded.NOT_FOUND
    )
    assert (await record_feedback(db, council, 10**12, 3, None, now)).outcome is (
        Recorded.NOT_FOUND
    )
    with pytest.raises(ValueError):
        await record_feedback(db, council, report_id, 6, None, now)
    with pytest.raises(ValueError):
        await record_feedback(db, council, report_id, 3, "c" * (COMMENT_MAX + 1), now)
    await _complete(app, first)
    await _complete(app, other)

    # Two posts at once (two instances, a double click): one rating, one event.
    results = await asyncio.gather(
        record_feedback(db, council, report_id, 2, "Left\x00 some bags", now),
        record_feedback(db, council, report_id, 5, "second", now),
    )
    assert sorted(r.outcome.value for r in results) == ["already", "recorded"]
    assert (await record_feedback(db, council, report_id, 1, None, now)).outcome is (
        Recorded.ALREADY
    )
    rows, events = await _stored(app, first["id"])
    [row] = rows
    assert row.rating in (2, 5) and len(events) == 1
    assert row.comment in ("Left some bags", "second")  # NUL dropped: PostgreSQL takes it
    assert events[0].data == {"rating": row.rating}

    # Retention: the first task closed long ago, the other just now. Its contacts and the
    # comment go; the rating stays. A comment that comes in after the contacts went goes
    # at the next run.
    long_ago = now - timedelta(days=200)
    async with db.write() as conn:
        await conn.execute(
            update(tasks).where(tasks.c.id == first["id"]).values(closed_at=long_ago)
        )
    recorded = await record_feedback(db, council, other_id, 4, "zq-kept for now", now)
    assert recorded.outcome is Recorded.RECORDED
    result = await purge(db, council, now=now)
    assert result.comments == 1 and first["id"] in result.task_ids
    assert "  feedback comments erased: 1" in result.summary()
    async with db.read() as conn:
        kept = {
            r.report_id: (r.rating, r.comment) for r in (await conn.execute(select(feedback))).all()
        }
    assert kept == {report_id: (row.rating, None), other_id: (4, "zq-kept for now")}
    async with db.write() as conn:
        await conn.execute(update(feedback).values(comment="zq-late"))  # as if sent late
        await conn.execute(
            update(tasks).where(tasks.c.id == other["id"]).values(closed_at=long_ago)
        )
    again = await purge(db, council, now=now)
    assert again.comments == 2
    async with db.read() as conn:
        comments = (await conn.execute(select(feedback.c.comment))).scalars().all()
    assert comments == [None, None]


# -- the pure parts --------------------------------------------------------------------------------


def test_tokens_forms_and_comments():
    key, now = _key(), datetime(2026, 12, 6, 9, tzinfo=UTC)
    token = make_token(key, 42, expiry_for(now))
    assert read_token(key, token, now).report_id == 42
    assert read_token(key, token, now + timedelta(days=30)).state is TokenState.EXPIRED
    assert read_token(key, token, now + timedelta(days=29, hours=23)).state is TokenState.VALID
    assert read_token(_key(OTHER_SECRET), token, now).state is TokenState.UNKNOWN
    assert read_token(key, token + "x", now).state is TokenState.UNKNOWN
    assert read_token(key, "1." + token, now).state is TokenState.UNKNOWN
    # The form binding is another key's: a token's binding is not a token, nor the reverse.
    assert form_binding(key, token) != token.split(".")[2]
    assert clean_comment(" a\r\nb\x00\u2028c\t \ud800") == "a\nb\u2028c"
    form = read_form(["3"], ["  fine  "])
    assert (form.rating, form.comment, form.ok) == (3, "fine", True)
    assert read_form([], []).errors.keys() == {"rating"}
    assert read_form(["3", "3"], []).errors.keys() == {"rating"}
    assert read_form(["2"], ["a" * 1001]).errors.keys() == {"comment"}
    assert read_form(["2"], ["a\r\n" * 500]).ok  # a line ending is one character
