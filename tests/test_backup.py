"""``responder backup``, and each test run's PostgreSQL database of its own."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import _reset_postgres
from support import AUTH, EXAMPLES, INTAKE_SECRET, PG_SERVER, PG_URL, ROOT

from responder.app import build_app
from responder.cli import main
from responder.settings import Settings

RESPONDER = Path(sys.executable).with_name("responder")
PYTEST = Path(sys.executable).with_name("pytest")
NORTHGATE = (51.9051, 0.8873)

needs_pg = pytest.mark.skipif(PG_URL == "off", reason="needs the machine's PostgreSQL")


def _settings(db: Path) -> Settings:
    return Settings(
        database_url=f"sqlite:///{db}",
        config_path=EXAMPLES / "council.yaml",
        intake_keys={"forms": INTAKE_SECRET},
        background=False,
    )


async def _report(client, i: int) -> dict:
    # Points 0.002 degrees (over 100 m) apart, so no report is taken for another's duplicate.
    body = {
        "type": "litter",
        "description": f"Bags of rubbish by the gate, report {i}",
        "location": {"lat": NORTHGATE[0] + 0.002 * i, "lon": NORTHGATE[1]},
        "source": "web-form",
    }
    resp = await client.post("/api/tasks", json=body, headers=AUTH)
    assert resp.status == 201, await resp.text()
    return await resp.json()


def _task_ids(path: Path) -> set[int]:
    """The tasks a file holds on its own (opened without the live database's WAL)."""
    conn = sqlite3.connect(path)
    try:
        return {row[0] for row in conn.execute("SELECT id FROM tasks")}
    except sqlite3.OperationalError:  # not even the table reached the file yet
        return set()
    finally:
        conn.close()


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "RESPONDER_CONFIG")}
    env.update(extra)
    return env


async def test_a_backup_taken_while_the_service_writes_holds_every_task(aiohttp_client, tmp_path):
    live = tmp_path / "live" / "responder.db"
    client = await aiohttp_client(build_app(_settings(live)))
    earlier = [await _report(client, i) for i in range(3)]
    # A reader holding its snapshot: no checkpoint can move what is committed after it into
    # the main file, so the next tasks are in responder.db-wal only, as between checkpoints.
    reader = sqlite3.connect(live)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM tasks").fetchone()
    try:
        later = [await _report(client, i) for i in range(3, 6)]
        assert live.with_name("responder.db-wal").stat().st_size > 0
        # What a plain copy of the file would have missed:
        plain = tmp_path / "plain.db"
        shutil.copyfile(live, plain)
        assert not {t["id"] for t in later} <= _task_ids(plain)

        out = tmp_path / "backups" / "responder-backup.db"
        out.parent.mkdir()
        proc = await asyncio.create_subprocess_exec(
            str(RESPONDER),
            "backup",
            str(out),
            env=_env(DATABASE_URL=f"sqlite:///{live}"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        stdout, stderr = await proc.communicate()
    finally:
        reader.close()
    assert proc.returncode == 0, stderr.decode()
    lines = stdout.decode().splitlines()
    assert re.fullmatch(rf"wrote {out} \(6 tasks, schema revision \w+, [\d.]+ MB\)", lines[0])
    assert lines[1] == (
        f"To restore: stop the service, delete any {live}-wal and {live}-shm, "
        f"then copy it over {live}."
    )
    assert stderr.decode() == ""
    assert stat.S_IMODE(out.stat().st_mode) == 0o600  # residents' contact details
    assert sorted(p.name for p in out.parent.iterdir()) == ["responder-backup.db"]
    await client.close()

    # A fresh service on the copy serves every task, the last ones included.
    restored = await aiohttp_client(build_app(_settings(out)))
    for task in earlier + later:
        resp = await restored.get(f"/api/tasks/{task['id']}", headers=AUTH)
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        assert body["reference"] == task["reference"]
        assert body["description"] == task["description"]


def test_backup_into_a_folder_names_the_file_by_time(tmp_path, monkeypatch, capsys):
    live = tmp_path / "responder.db"
    conn = sqlite3.connect(live)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE tasks (id INTEGER PRIMARY KEY)")
    conn.executemany("INSERT INTO tasks VALUES (?)", [(1,), (2,)])
    conn.commit()
    folder = tmp_path / "nightly"
    folder.mkdir()
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{live}")
    with pytest.raises(SystemExit) as exit:
        main(["backup", str(folder)])
    conn.close()
    assert exit.value.code == 0
    [copy] = folder.iterdir()
    assert re.fullmatch(r"responder-\d{8}T\d{6}Z\.db", copy.name)
    assert _task_ids(copy) == {1, 2}
    assert "(2 tasks, " in capsys.readouterr().out


def test_backup_never_writes_over_the_live_database(tmp_path, monkeypatch, capsys):
    live = tmp_path / "responder.db"
    sqlite3.connect(live).close()
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{live}")
    for out in (live, tmp_path / "responder.db-wal", tmp_path / "sub" / ".." / "responder.db"):
        with pytest.raises(SystemExit) as exit:
            main(["backup", str(out)])
        assert exit.value.code == 1
        err = capsys.readouterr().err
        assert err == f"responder: {out} is the live database itself: choose another file\n"


def test_backup_of_a_database_that_is_not_there_creates_nothing(tmp_path, monkeypatch, capsys):
    missing = tmp_path / "nowhere.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{missing}")
    with pytest.raises(SystemExit) as exit:
        main(["backup", str(tmp_path / "copy.db")])
    assert exit.value.code == 1
    assert capsys.readouterr().err == f"responder: no database at {missing}\n"
    assert sorted(tmp_path.iterdir()) == []


def test_backup_of_postgresql_points_at_pg_dump_without_the_password(monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", "postgresql://responder:hunter2-pw@db.internal:5432/council")
    with pytest.raises(SystemExit) as exit:
        main(["backup", "responder.dump"])
    assert exit.value.code == 2
    out = capsys.readouterr()
    assert out.out == ""
    assert "hunter2" not in out.err
    url = "postgresql://responder@db.internal:5432/council"
    assert f"  pg_dump --format=custom --file=responder.dump '{url}'\n" in out.err
    assert f"  pg_restore --clean --if-exists --no-owner --dbname='{url}' responder.dump\n" in (
        out.err
    )
    assert not Path("responder.dump").exists()


# Each run of the suite has a PostgreSQL database of its own (tests/support.py).

PROBE = os.environ.get("RESPONDER_PG_PROBE", "")


async def test_the_shared_fixtures_use_the_runs_own_database(client, database_url):
    """conftest's database_url (both backends) and the app on it, as every suite test has
    them: PostgreSQL's is this run's own database, not the server's shared one."""
    if database_url.startswith("postgresql"):
        assert database_url == PG_URL
        assert re.fullmatch(r"test_\d+_[0-9a-f]{8}", PG_URL.rsplit("/", 1)[1])
        assert PG_URL.rsplit("/", 1)[1] != PG_SERVER.rsplit("/", 1)[1]
    task = await _report(client, 0)
    resp = await client.get(f"/api/tasks/{task['reference']}", headers=AUTH)
    assert resp.status == 200
    assert (await resp.json())["id"] == task["id"]


@pytest.mark.skipif(not PROBE, reason="run by test_two_runs_at_once_have_a_database_each")
async def test_probe_a_run_of_its_own():
    """One of two runs at once: resets the schema, writes its name, waits for the other to
    do the same, then finds its own row. In one shared database the later reset would have
    dropped the earlier run's table."""
    import asyncpg

    me, other = (Path(p) for p in PROBE.split(","))
    await _reset_postgres(PG_URL)
    conn = await asyncpg.connect(PG_URL)
    try:
        await conn.execute("CREATE TABLE probe (run text)")
        await conn.execute("INSERT INTO probe VALUES ($1)", me.name)
        name = await conn.fetchval("SELECT current_database()")
        me.with_suffix(".tmp").write_text(name)
        me.with_suffix(".tmp").rename(me)
        deadline = time.monotonic() + 60
        while not other.exists():
            assert time.monotonic() < deadline, "the other run never got this far"
            await asyncio.sleep(0.05)
        assert [r["run"] for r in await conn.fetch("SELECT run FROM probe")] == [me.name]
    finally:
        await conn.close()


@needs_pg
async def test_two_runs_at_once_have_a_database_each(tmp_path):
    import asyncpg

    a, b = tmp_path / "a", tmp_path / "b"
    runs = [
        await asyncio.create_subprocess_exec(
            str(PYTEST),
            "-p",
            "no:cacheprovider",
            # One process a run, as a run without xdist (each xdist worker is a process with
            # a database of its own just the same): no workers to start for one test.
            "-n",
            "0",
            f"{Path(__file__).relative_to(ROOT)}::test_probe_a_run_of_its_own",
            cwd=ROOT,
            env=_env(RESPONDER_PG_PROBE=f"{me},{other}", RESPONDER_TEST_PG=PG_SERVER),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for me, other in ((a, b), (b, a))
    ]
    outputs = [(await run.communicate())[0].decode() for run in runs]
    for run, output in zip(runs, outputs, strict=True):
        assert run.returncode == 0, output
        assert "1 passed" in output
    names = [a.read_text(), b.read_text()]
    assert names[0] != names[1]
    for name in names:
        assert re.fullmatch(r"test_\d+_[0-9a-f]{8}", name)
    # Each run dropped its database at its end.
    conn = await asyncpg.connect(PG_SERVER)
    try:
        left = await conn.fetch("SELECT datname FROM pg_database WHERE datname = ANY($1)", names)
    finally:
        await conn.close()
    assert left == []
