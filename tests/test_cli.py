"""The responder command as an operator meets it: real processes, real ports, real databases."""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest
from support import ROOT

from responder import __version__
from responder.cli import main, parser
from responder.store.db import display_url

RESPONDER = Path(sys.executable).with_name("responder")
LOG_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING) \S+ ")


def _free_port() -> int:
    """A port nothing listens on (bound for a moment, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    drop = ("DATABASE_URL", "RESPONDER_CONFIG", "RESPONDER_LOG_LEVEL", "PORT", "HOST")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'responder.db'}",
        HOST="127.0.0.1",
        RESPONDER_INTAKE_KEYS="forms:local-secret-1",
    )
    env.update(extra)
    return env


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(RESPONDER), *args], env=env, capture_output=True, text=True, timeout=60, cwd=ROOT
    )


def test_version_is_the_projects():
    run = _run(["--version"], dict(os.environ))
    assert run.returncode == 0
    assert run.stdout == f"responder {__version__}\n"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert __version__ == project["version"]


def test_help_is_plain_text_and_describes_every_argument(capsys):
    run = _run(["--help"], dict(os.environ))
    assert run.returncode == 0
    assert "``" not in run.stdout
    for command in ("serve", "check-config", "db", "backup", "app-package", "purge", "digest"):
        assert re.search(rf"^    {command}\b", run.stdout, re.M), command
    assert "RESPONDER_LOG_LEVEL" in run.stdout

    [commands] = [a for a in parser()._actions if isinstance(a, argparse._SubParsersAction)]
    for name, sub in commands.choices.items():
        for action in sub._actions:
            if not isinstance(action, argparse._HelpAction):
                assert action.help, f"responder {name}: {action.dest} has no help"
        with pytest.raises(SystemExit):
            main([name, "--help"])
        shown = capsys.readouterr().out
        assert shown.startswith(f"usage: responder {name}")
        assert "``" not in shown


def test_a_port_in_use_is_one_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = _run([], _env(tmp_path, PORT=str(port)))
        assert (run.returncode, run.stderr) == (
            1,
            f"responder: port {port} on 127.0.0.1 is in use (PORT={port})\n",
        )
        run = _run(["serve", "--port", str(port)], _env(tmp_path))
        assert (run.returncode, run.stderr) == (
            1,
            f"responder: port {port} on 127.0.0.1 is in use (--port {port})\n",
        )
    assert run.stdout == ""
    # Checked before anything else: no database was created, no migration ran.
    assert not (tmp_path / "responder.db").exists()


def test_an_unreachable_database_is_one_line_without_its_password(tmp_path):
    closed = _free_port()
    url = f"postgresql://responder:s3cret-pw@127.0.0.1:{closed}/responder"
    run = _run([], _env(tmp_path, PORT=str(_free_port()), DATABASE_URL=url))
    assert run.returncode == 1
    assert "s3cret" not in run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    *logged, last = run.stderr.splitlines()
    assert last == (
        f"responder: cannot reach the database at postgresql://responder@127.0.0.1:{closed}"
        "/responder (password hidden): connection refused"
    )
    for line in logged:  # start-up warnings (no app id, no Notify token), nothing else
        assert LOG_LINE.match(line), line

    run = _run(["db", "current"], _env(tmp_path, DATABASE_URL=url + "?password=s3cret-pw"))
    assert (run.returncode, run.stdout) == (1, "")
    assert run.stderr == f"{last}\n"


def test_display_url_never_shows_a_password():
    assert display_url("postgresql+asyncpg://u:pw@h:5432/d?sslmode=require") == (
        "postgresql://u@h:5432/d?sslmode=require (password hidden)"
    )
    assert display_url("postgresql://u@h/d?password=pw") == "postgresql://u@h/d (password hidden)"
    assert display_url("postgresql://u@h/d") == "postgresql://u@h/d"
    assert display_url("sqlite+aiosqlite:////var/lib/responder.db") == (
        "sqlite:////var/lib/responder.db"
    )


def test_start_up_logs_no_migration_steps(tmp_path):
    """Alembic's INFO lines (its plugins, each migration) are not printed when the service
    starts; RESPONDER_LOG_LEVEL=debug shows them."""
    port = _free_port()
    proc = subprocess.Popen(
        [str(RESPONDER), "--port", str(port)],  # serve's options without the word serve
        env=_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.communicate()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                    assert json.load(r)["status"] == "ok"
                    break
            except OSError:
                assert time.monotonic() < deadline, "the service did not answer /healthz"
                time.sleep(0.1)
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=15)
    assert "alembic" not in stderr
    assert f"INFO responder Responder {__version__} on http://127.0.0.1:{port}, council" in stderr

    run = _run(["db", "upgrade"], _env(tmp_path, RESPONDER_LOG_LEVEL="debug"))
    assert run.returncode == 0, run.stderr
    assert run.stdout == f"database at revision {_head(tmp_path)}\n"  # already there

    fresh = tmp_path / "fresh"
    fresh.mkdir()
    run = _run(["db", "upgrade"], _env(fresh))
    assert run.returncode == 0, run.stderr
    assert run.stdout == f"database at revision {_head(fresh)} (was (empty))\n"
    assert run.stderr == ""

    run = _run(["db", "downgrade"], _env(fresh, RESPONDER_LOG_LEVEL="DEBUG"))
    assert run.returncode == 0, run.stderr
    assert "INFO alembic.runtime.migration Running downgrade" in run.stderr


def _head(folder: Path) -> str:
    import sqlite3

    conn = sqlite3.connect(folder / "responder.db")
    try:
        return conn.execute("SELECT version_num FROM alembic_version").fetchone()[0]
    finally:
        conn.close()


def test_an_unknown_log_level_is_refused(tmp_path):
    run = _run(["db", "current"], _env(tmp_path, RESPONDER_LOG_LEVEL="loud"))
    assert (run.returncode, run.stdout) == (2, "")
    assert run.stderr == (
        "configuration error: RESPONDER_LOG_LEVEL='loud': use one of debug, info, warning, error\n"
    )


def test_warning_hides_info_lines(tmp_path):
    run = _run(["purge"], _env(tmp_path, RESPONDER_LOG_LEVEL="warning"))
    assert run.returncode == 0, run.stderr
    assert " INFO " not in run.stderr
    run = _run(["purge"], _env(tmp_path))
    assert " INFO responder.commands.erase purge as of " in run.stderr
