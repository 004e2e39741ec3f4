"""GOV.UK Notify delivery receipts through ``POST /api/notify/callback``, and the channel
fallback, on SQLite and PostgreSQL.

The sender is another part of the service; here a message Notify "accepted" is a
``notifications`` row written as the sender writes it (status ``sending``, Notify's id).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import delete, insert, select
from support import AUTH

from responder.app import build_app
from responder.store.schema import contacts, notifications, outbox, reports, task_events
from responder.web import clock_key, db_key

TOKEN = "notify-callback-token-0123456789"
CALLBACK = "/api/notify/callback"
NOTIFY_AUTH = {"Authorization": f"Bearer {TOKEN}"}
EMAIL = "resident.receipts@example.com"
PHONE = "07700900456"
TEMPLATES = {  # examples/council.yaml
    ("received", "email"): "2c6b6b4e-1f4d-4a4e-9a56-0d7f1f6a1001",
    ("received", "sms"): "2c6b6b4e-1f4d-4a4e-9a56-0d7f1f6a1002",
}


@pytest.fixture
def settings(settings):
    """The shared settings, with the callback token Notify was given."""
    return replace(settings, notify_callback_token=TOKEN)


def report_body(updates: list[str], email: str | None = EMAIL, phone: str | None = PHONE) -> dict:
    reporter: dict = {"name": "A Resident", "updates": updates}
    if email:
        reporter["email"] = email
    if phone:
        reporter["phone"] = phone
    return {
        "type": "fly-tipping",
        "description": "Mattress and bags dumped by the bus stop",
        "location": {"lat": 51.9051, "lon": 0.8873, "address": "1 High Street"},
        "reporter": reporter,
        "source": "web-form",
    }


async def new_task(client, updates: list[str], **contact) -> tuple[int, int]:
    """POST a report; returns (task id, report id)."""
    resp = await client.post("/api/tasks", json=report_body(updates, **contact), headers=AUTH)
    assert resp.status == 201, await resp.text()
    task_id = (await resp.json())["id"]
    async with client.app[db_key].read() as conn:
        report_id = (
            await conn.execute(select(reports.c.id).where(reports.c.task_id == task_id))
        ).scalar_one()
    return task_id, report_id


async def sent(
    client,
    task_id: int,
    report_id: int,
    channel: str,
    *,
    event: str = "received",
    reference: str | None = None,
) -> tuple[str, str]:
    """Record a message as the sender does once Notify accepts it: (reference, notify id)."""
    reference = reference or f"notify:{report_id}:{event}:{channel}"
    notify_id = str(uuid.uuid4())
    now = client.app[clock_key]()

    def write(conn):
        conn.execute(
            insert(notifications).values(
                reference=reference,
                task_id=task_id,
                report_id=report_id,
                event=event,
                channel=channel,
                notify_id=notify_id,
                status="sending",
                created_at=now,
                updated_at=now,
            )
        )

    await client.app[db_key].run(write)
    return reference, notify_id


def receipt(notify_id: str, reference: str | None, status: str, channel: str) -> dict:
    """A delivery receipt as GOV.UK Notify posts it."""
    return {
        "id": notify_id,
        "reference": reference,
        "to": PHONE if channel == "sms" else EMAIL,
        "status": status,
        "created_at": "2026-11-23T09:00:01.000000Z",
        "completed_at": "2026-11-23T09:00:05.000000Z",
        "sent_at": "2026-11-23T09:00:02.000000Z",
        "notification_type": channel,
        "template_id": TEMPLATES[("received", channel)],
        "template_version": 1,
    }


async def call_back(client, body, headers=NOTIFY_AUTH):
    resp = await client.post(CALLBACK, json=body, headers=headers)
    return resp.status, await resp.json()


async def select_all(client, table, *where):
    async with client.app[db_key].read() as conn:
        return (await conn.execute(select(table).where(*where).order_by(table.c.id))).all()


async def history(client, task_id: int) -> list[dict]:
    resp = await client.get(f"/api/tasks/{task_id}", headers=AUTH)
    assert resp.status == 200
    return (await resp.json())["history"]


async def notify_events(client, task_id: int) -> list[dict]:
    return [e for e in await history(client, task_id) if e["action"] == "notify_status"]


# -- authentication ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": TOKEN},
        {"Authorization": "Basic " + TOKEN},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer wrong-token-0123456789"},
        {"Authorization": f"Bearer {TOKEN}x"},
    ],
    ids=["missing", "no-scheme", "basic", "empty", "wrong", "longer"],
)
async def test_callback_refuses_a_missing_or_wrong_token(client, headers):
    task_id, report_id = await new_task(client, ["sms"])
    reference, notify_id = await sent(client, task_id, report_id, "sms")
    status, body = await call_back(
        client, receipt(notify_id, reference, "delivered", "sms"), headers
    )
    assert status == 401 and body["error"] == "unauthorized"
    [row] = await select_all(client, notifications)
    assert row.status == "sending"
    assert await notify_events(client, task_id) == []


async def test_callback_without_a_configured_token_refuses_everything(
    aiohttp_client, settings, clock
):
    app = build_app(replace(settings, notify_callback_token=""), clock=clock)
    client = await aiohttp_client(app)
    task_id, report_id = await new_task(client, ["sms"])
    reference, notify_id = await sent(client, task_id, report_id, "sms")
    for headers in ({}, {"Authorization": "Bearer "}, NOTIFY_AUTH):
        status, body = await call_back(
            client, receipt(notify_id, reference, "delivered", "sms"), headers
        )
        assert status == 401
        assert "NOTIFY_CALLBACK_TOKEN is not set" in body["message"]
    [row] = await select_all(client, notifications)
    assert row.status == "sending"


# -- bad bodies ----------------------------------------------------------------------------


async def test_malformed_json_is_a_400_without_echoing_the_body(client):
    resp = await client.post(
        CALLBACK,
        data=b'{"id": "x", "to": "' + EMAIL.encode() + b'", ',
        headers={**NOTIFY_AUTH, "Content-Type": "application/json"},
    )
    assert resp.status == 400
    body = await resp.json()
    assert body["error"] == "malformed_json"
    assert EMAIL not in await resp.text()


async def test_a_body_over_64_kb_is_a_413(client):
    big = receipt(str(uuid.uuid4()), "notify:1:received:sms", "delivered", "sms")
    big["padding"] = "x" * (64 * 1024)
    status, body = await call_back(client, big)
    assert status == 413 and body["error"] == "request_entity_too_large"

    async def chunks():  # no Content-Length: the limit holds while reading
        yield b'{"padding": "'
        for _ in range(20):
            yield b"x" * 4096
        yield b'"}'

    resp = await client.post(CALLBACK, data=chunks(), headers=NOTIFY_AUTH)
    assert resp.status == 413


@pytest.mark.parametrize(
    "change, fields",
    [
        (lambda r: r.pop("id"), ["id"]),
        (lambda r: r.update(id="not-a-uuid"), ["id"]),
        (lambda r: r.pop("status"), ["status"]),
        (lambda r: r.update(status="opened"), ["status"]),
        (lambda r: r.update(reference=12345), ["reference"]),
        (lambda r: r.update(to=["list"], notification_type="fax"), ["to", "notification_type"]),
        (lambda r: r.update(completed_at="yesterday", sent_at=5), ["completed_at", "sent_at"]),
        (lambda r: r.update(template_version="one"), ["template_version"]),
    ],
    ids=[
        "no-id",
        "bad-id",
        "no-status",
        "bad-status",
        "bad-reference",
        "bad-to-type",
        "bad-times",
        "bad-version",
    ],
)
async def test_invalid_receipts_are_422s_naming_the_fields(client, change, fields):
    task_id, report_id = await new_task(client, ["sms"])
    reference, notify_id = await sent(client, task_id, report_id, "sms")
    body = receipt(notify_id, reference, "delivered", "sms")
    change(body)
    status, answer = await call_back(client, body)
    assert status == 422 and answer["error"] == "invalid_receipt"
    assert [p["field"] for p in answer["problems"]] == fields
    assert EMAIL not in str(answer) and PHONE not in str(answer)
    [row] = await select_all(client, notifications)
    assert row.status == "sending"


async def test_a_body_that_is_not_an_object_is_a_422(client):
    status, answer = await call_back(client, [receipt(str(uuid.uuid4()), None, "delivered", "sms")])
    assert status == 422 and answer["problems"] == [
        {"field": "body", "problem": "must be a JSON object"}
    ]


# -- storing statuses ----------------------------------------------------------------------


async def test_delivered_is_stored_and_shown_in_the_task_history(client, clock, caplog):
    caplog.set_level(logging.DEBUG)
    task_id, report_id = await new_task(client, ["sms", "email"])
    reference, notify_id = await sent(client, task_id, report_id, "sms")
    clock.now += timedelta(minutes=1)
    status, body = await call_back(client, receipt(notify_id, reference, "delivered", "sms"))
    assert status == 200
    assert body == {
        "reference": reference,
        "status": "delivered",
        "changed": True,
        "fallback": None,
    }
    [row] = await select_all(client, notifications)
    assert (row.status, row.notify_id, row.fallback_reference) == ("delivered", notify_id, None)
    assert row.updated_at == clock.now
    [event] = await notify_events(client, task_id)
    assert event == {
        "at": clock.now.isoformat().replace("+00:00", "Z"),
        "actor": "notify",
        "action": "notify_status",
        "from": None,
        "to": None,
        "note": "Text message 'received' delivered",
    }
    # The resident's address is neither stored with the event nor logged.
    [stored] = await select_all(client, task_events, task_events.c.action == "notify_status")
    assert PHONE not in str(stored.data) and PHONE not in str(stored.note)
    assert stored.data["status"] == "delivered" and stored.data["reference"] == reference
    assert PHONE not in caplog.text and EMAIL not in caplog.text
    assert reference in caplog.text


async def test_email_permanent_failure_note(client):
    task_id, report_id = await new_task(client, ["email"], phone=None)
    reference, notify_id = await sent(client, task_id, report_id, "email")
    status, body = await call_back(
        client, receipt(notify_id, reference, "permanent-failure", "email")
    )
    assert status == 200 and body["status"] == "permanent-failure"
    [event] = await notify_events(client, task_id)
    assert event["note"] == (
        "Email 'received' could not be delivered (permanent failure); "
        "no fallback: the reporter gave no phone number"
    )


async def test_repeated_and_out_of_order_receipts_change_nothing(client, clock):
    task_id, report_id = await new_task(client, ["sms"])
    reference, notify_id = await sent(client, task_id, report_id, "sms")

    status, body = await call_back(
        client, receipt(notify_id, reference, "temporary-failure", "sms")
    )
    assert (status, body["status"], body["changed"]) == (200, "temporary-failure", True)
    clock.now += timedelta(minutes=5)
    status, body = await call_back(client, receipt(notify_id, reference, "delivered", "sms"))
    assert (status, body["status"], body["changed"]) == (200, "delivered", True)
    # Notify retrying both receipts, late and in any order: delivered stays.
    for late in ("delivered", "temporary-failure", "technical-failure", "delivered"):
        clock.now += timedelta(minutes=5)
        status, body = await call_back(client, receipt(notify_id, reference, late, "sms"))
        assert (status, body["status"], body["changed"]) == (200, "delivered", False)
    [row] = await select_all(client, notifications)
    assert row.status == "delivered"
    notes = [e["note"] for e in await notify_events(client, task_id)]
    assert notes == [
        "Text message 'received' could not be delivered (temporary failure)",
        "Text message 'received' delivered",
    ]


async def test_a_final_status_never_moves(client):
    task_id, report_id = await new_task(client, ["sms"])
    reference, notify_id = await sent(client, task_id, report_id, "sms")
    await call_back(client, receipt(notify_id, reference, "delivered", "sms"))
    status, body = await call_back(
        client, receipt(notify_id, reference, "permanent-failure", "sms")
    )
    assert (status, body["status"], body["changed"]) == (200, "delivered", False)
    assert await select_all(client, outbox, outbox.c.idempotency_key.like("%:fallback")) == []


async def test_matched_by_reference_when_the_id_was_not_recorded(client):
    task_id, report_id = await new_task(client, ["sms"])
    reference, _ = await sent(client, task_id, report_id, "sms")

    def forget_id(conn):
        conn.execute(notifications.update().values(notify_id=None))

    await client.app[db_key].run(forget_id)
    notify_id = str(uuid.uuid4())
    status, body = await call_back(client, receipt(notify_id, reference, "delivered", "sms"))
    assert (status, body["status"]) == (200, "delivered")
    [row] = await select_all(client, notifications)
    assert (row.status, row.notify_id) == ("delivered", notify_id)
    # Another Notify message claiming the same reference does not touch ours.
    status, body = await call_back(
        client, receipt(str(uuid.uuid4()), reference, "permanent-failure", "sms")
    )
    assert (status, body) == (200, {"ignored": "another message has this reference"})


async def test_unknown_messages(client):
    task_id, report_id = await new_task(client, ["sms"])
    # Ours, still being sent (the outbox row exists, the sender has not recorded it yet):
    # not 2xx, so Notify tries again later.
    status, body = await call_back(
        client,
        receipt(str(uuid.uuid4()), f"notify:{report_id}:received:sms", "delivered", "sms"),
    )
    assert status == 404 and body["error"] == "not_found"
    # Never ours: 200, so Notify stops retrying; nothing is stored.
    for reference in ("someone-elses-ref", None, f"notify:{report_id}:completed:sms"):
        status, body = await call_back(
            client, receipt(str(uuid.uuid4()), reference, "delivered", "sms")
        )
        assert (status, body) == (200, {"ignored": "unknown reference"})
    assert await select_all(client, notifications) == []
    assert await notify_events(client, task_id) == []


# -- falling back to the other channel -----------------------------------------------------


async def test_sms_permanent_failure_falls_back_to_email_once(client, clock):
    task_id, report_id = await new_task(client, ["sms"])  # an email address given too
    reference, notify_id = await sent(client, task_id, report_id, "sms")
    failed = receipt(notify_id, reference, "permanent-failure", "sms")

    status, body = await call_back(client, failed)
    fallback = f"{reference}:fallback"
    assert status == 200
    assert body == {
        "reference": reference,
        "status": "permanent-failure",
        "changed": True,
        "fallback": fallback,
    }
    [message] = await select_all(client, outbox, outbox.c.idempotency_key == fallback)
    assert (message.kind, message.status, message.task_id) == ("notify", "pending", task_id)
    assert message.payload == {
        "report_id": report_id,
        "task_id": task_id,
        "event": "received",
        "channel": "email",
        "template_id": TEMPLATES[("received", "email")],
    }
    assert EMAIL not in str(message.payload)
    [row] = await select_all(client, notifications)
    assert row.fallback_reference == fallback
    assert row.detail == (
        "Text message 'received' could not be delivered (permanent failure); "
        "sending it by email instead"
    )
    [event] = await notify_events(client, task_id)
    assert event["note"] == (
        "Text message 'received' could not be delivered (permanent failure); "
        "sending it by email instead"
    )

    # Notify repeats the receipt: no second fallback, no second event.
    clock.now += timedelta(minutes=5)
    status, body = await call_back(client, failed)
    assert (status, body["changed"], body["fallback"]) == (200, False, None)
    assert len(await select_all(client, outbox, outbox.c.idempotency_key.like("%fallback%"))) == 1
    assert len(await notify_events(client, task_id)) == 1

    # The fallback email fails permanently too: it does not fall back again.
    # (the sender records it under the outbox row's key, as its reference)
    _, fb_id = await sent(client, task_id, report_id, "email", reference=fallback)
    status, body = await call_back(client, receipt(fb_id, fallback, "permanent-failure", "email"))
    assert (status, body["status"], body["fallback"]) == (200, "permanent-failure", None)
    assert len(await select_all(client, outbox, outbox.c.idempotency_key.like("%fallback%"))) == 1
    notes = [e["note"] for e in await notify_events(client, task_id)]
    assert notes[-1] == (
        "Email 'received' could not be delivered (permanent failure); "
        "no further fallback: this message was itself the fallback"
    )


async def test_email_permanent_failure_falls_back_to_sms(client):
    task_id, report_id = await new_task(client, ["email"])  # a phone number given too
    reference, notify_id = await sent(client, task_id, report_id, "email")
    status, body = await call_back(
        client, receipt(notify_id, reference, "permanent-failure", "email")
    )
    assert (status, body["fallback"]) == (200, f"{reference}:fallback")
    [message] = await select_all(client, outbox, outbox.c.idempotency_key == body["fallback"])
    assert message.payload["channel"] == "sms"
    assert message.payload["template_id"] == TEMPLATES[("received", "sms")]
    [event] = await notify_events(client, task_id)
    assert event["note"].endswith("sending it by text message instead")


@pytest.mark.parametrize(
    "updates, contact, channel, why",
    [
        (["sms"], {"email": None}, "sms", "no fallback: the reporter gave no email address"),
        (["email"], {"phone": None}, "email", "no fallback: the reporter gave no phone number"),
        (
            ["sms", "email"],
            {},
            "sms",
            "no fallback: the reporter gets this message by email already",
        ),
    ],
    ids=["no-email", "no-phone", "both-asked-for"],
)
async def test_no_fallback_without_another_way_to_reach_them(
    client, updates, contact, channel, why
):
    task_id, report_id = await new_task(client, updates, **contact)
    before = len(await select_all(client, outbox))
    reference, notify_id = await sent(client, task_id, report_id, channel)
    status, body = await call_back(
        client, receipt(notify_id, reference, "permanent-failure", channel)
    )
    assert (status, body["status"], body["fallback"]) == (200, "permanent-failure", None)
    assert len(await select_all(client, outbox)) == before
    [event] = await notify_events(client, task_id)
    assert event["note"].endswith(f"(permanent failure); {why}")
    [row] = await select_all(client, notifications)
    assert row.fallback_reference is None


async def test_no_fallback_once_contact_details_are_erased(client):
    task_id, report_id = await new_task(client, ["sms"])
    reference, notify_id = await sent(client, task_id, report_id, "sms")

    def erase(conn):
        conn.execute(delete(contacts).where(contacts.c.report_id == report_id))

    await client.app[db_key].run(erase)
    status, body = await call_back(
        client, receipt(notify_id, reference, "permanent-failure", "sms")
    )
    assert (status, body["fallback"]) == (200, None)
    [event] = await notify_events(client, task_id)
    assert event["note"].endswith("no fallback: the reporter's contact details are no longer held")


async def test_no_fallback_without_a_template_for_the_other_channel(
    aiohttp_client, settings, clock, tmp_path
):
    from support import write_council

    def email_only(data):
        for event in data["notify"]["events"].values():
            event.pop("email_template")

    path = write_council(tmp_path, email_only)
    app = build_app(replace(settings, config_path=path), clock=clock)
    client = await aiohttp_client(app)
    task_id, report_id = await new_task(client, ["sms"])
    reference, notify_id = await sent(client, task_id, report_id, "sms")
    status, body = await call_back(
        client, receipt(notify_id, reference, "permanent-failure", "sms")
    )
    assert (status, body["fallback"]) == (200, None)
    [event] = await notify_events(client, task_id)
    assert event["note"].endswith("no fallback: the council has no email template for 'received'")


async def test_the_fallback_is_the_same_message_by_the_other_channel(client):
    """The fallback is a typed Notify message (messages.ResidentUpdate): same report, task
    and event, the other channel and its template, under the original's key + ':fallback'."""
    task_id, report_id = await new_task(client, ["sms"])
    reference, notify_id = await sent(client, task_id, report_id, "sms")
    _, body = await call_back(client, receipt(notify_id, reference, "permanent-failure", "sms"))
    assert body["fallback"] == reference + ":fallback"
    [message] = await select_all(client, outbox, outbox.c.idempotency_key == body["fallback"])
    assert message.kind == "notify"
    assert message.payload == {
        "report_id": report_id,
        "task_id": task_id,
        "event": "received",
        "channel": "email",
        "template_id": TEMPLATES[("received", "email")],
    }
