"""SQLite's planner statistics: refreshed at start-up and by a daily job, so the planner
fetches a page's tasks by id rather than walking every task of a status."""

from __future__ import annotations

import sqlite3

from support import AUTH, EXAMPLES, INTAKE_SECRET

from responder.app import build_app, scheduler_key
from responder.settings import Settings


async def test_statistics_are_refreshed_at_start_up_and_every_night(aiohttp_client, tmp_path):
    path = tmp_path / "stats.db"
    settings = Settings(
        database_url=f"sqlite:///{path}",
        config_path=EXAMPLES / "council.yaml",
        intake_keys={"forms": INTAKE_SECRET},
        background=False,
    )
    app = build_app(settings)
    client = await aiohttp_client(app)
    body = {
        "type": "graffiti",
        "description": "Tag on the bus shelter",
        "location": {"lat": 51.9051, "lon": 0.8873},
        "source": "web-form",
    }
    for n in range(3):
        answer = await client.post(
            "/api/tasks", json=body | {"external_id": f"S-{n}"}, headers=AUTH
        )
        assert answer.status in (200, 201)  # 200: linked to an earlier task
    jobs = {job.name: job for job in app[scheduler_key].jobs}
    await jobs["statistics"].run(None, None, None)  # what the scheduler runs at 03:45
    conn = sqlite3.connect(path)
    try:
        stats = dict(conn.execute("SELECT idx, stat FROM sqlite_stat1 WHERE tbl = 'tasks'"))
        count = conn.execute("SELECT count(*) FROM tasks").fetchone()[0]
    finally:
        conn.close()
    # One line per index of tasks, each starting with the table's row count.
    assert "ix_tasks_team_status_due_at_id" in stats
    assert count >= 1
    assert all(stat.split()[0] == str(count) for stat in stats.values()), stats
