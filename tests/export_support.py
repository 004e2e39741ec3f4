"""Shared by the export tests (issue 19): a council with read keys, tasks seeded straight
into the database (any ward, team, status and time), and the keys' headers."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert
from support import INTAKE_SECRET, write_council

from responder.settings import Settings
from responder.store.schema import contacts, feedback, reports, task_events, tasks

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
SECRETS = {
    "bi": "read-secret-bi-0001",  # whole council: RESPONDER_READ_KEYS only
    "northgate": "read-secret-north-01",  # wards: [Northgate]
    "south-team": "read-secret-south-01",  # teams: [sc-south]
    "foi": "read-secret-foi-0001",  # everything, internals, contacts
}
READ_KEYS = [
    {"name": "northgate", "wards": ["Northgate"]},
    {"name": "south-team", "teams": ["sc-south"]},
    {"name": "foi", "everything": True, "internals": True, "contacts": True},
]
INTAKE = {"Authorization": f"Bearer {INTAKE_SECRET}"}
WARD_TEAMS = [
    ("Northgate", "sc-north"),
    ("Eastwood", "sc-north"),
    ("Southmere", "sc-south"),
    ("Riverside", "sc-south"),
    ("Northgate", "green"),
    ("Southmere", "green"),
]


def bearer(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {SECRETS[name]}"}


def basic(name: str, secret: str | None = None) -> dict[str, str]:
    raw = f"{name}:{secret or SECRETS[name]}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def council_with_keys(tmp_path: Path) -> Path:
    return write_council(tmp_path, lambda data: data.__setitem__("read_keys", READ_KEYS))


def export_settings(database_url: str, council_path: Path, **extra) -> Settings:
    values: dict = {
        "database_url": database_url,
        "config_path": council_path,
        "intake_keys": {"forms": INTAKE_SECRET},
        "read_keys": dict(SECRETS),
        "background": False,
        "scheduler": False,
    }
    return Settings(**(values | extra))


def task_row(i: int, ward: str, team: str, **extra) -> dict:
    created = NOW - timedelta(hours=i)
    row = {
        "id": i,
        "type": "litter" if team != "green" else "grass-cutting",
        "status": "assigned",
        "priority": "normal",
        "ward": ward,
        "team": team,
        "assignee": {"sc-north": "bob", "sc-south": "dan", "green": "grace"}[team],
        "lat": 51.9051,
        "lon": 0.8873,
        "description": "seeded",
        "address": f"{i} High Street",
        "due_at": created + timedelta(days=2),
        "created_at": created,
        "updated_at": created,
        "version": 1,
        "photos": [],
        "source": "test",
        "raised_by": "resident",
        "closed_at": None,
        "outcome": None,
    }
    row.update(extra)
    return row


def seed(count: int, start: int = 1, **extra) -> list[dict]:
    return [
        task_row(i, *WARD_TEAMS[i % len(WARD_TEAMS)], **extra) for i in range(start, start + count)
    ]


def insert_tasks(rows: list[dict]):
    def write(conn):
        conn.execute(insert(tasks), rows)
        conn.execute(
            insert(task_events),
            [
                {
                    "task_id": r["id"],
                    "at": r["created_at"],
                    "actor": "intake:forms",
                    "action": "created",
                    "to_status": "unassigned",
                }
                for r in rows
            ],
        )

    return write


def insert_report(task_id: int, report_id: int, *, rating: int | None = None, erased=None):
    """A report with its reporter's contact details (and a rating, if given)."""

    def write(conn):
        conn.execute(
            insert(reports),
            {
                "id": report_id,
                "task_id": task_id,
                "type": "litter",
                "lat": 51.9051,
                "lon": 0.8873,
                "received_at": NOW - timedelta(hours=1),
                "source": "forms",
            },
        )
        conn.execute(
            insert(contacts),
            {
                "report_id": report_id,
                "name": None if erased else "Rita Reporter",
                "email": None if erased else "rita@example.com",
                "phone": None if erased else "07700900999",
                "updates": ["email"],
                "erased_at": erased,
            },
        )
        if rating is not None:
            conn.execute(
                insert(feedback),
                {"report_id": report_id, "task_id": task_id, "rating": rating, "created_at": NOW},
            )

    return write
