"""The service as a user runs it: real processes, real ports."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from support import EXAMPLES, ROOT, write_council

RESPONDER = Path(sys.executable).with_name("responder")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RESPONDER_CONFIG", "DATABASE_URL")}
    env.update(DATABASE_URL=f"sqlite:///{tmp_path / 'svc.db'}", HOST="127.0.0.1", **extra)
    return env


def _wait_healthy(port: int, proc: subprocess.Popen, seconds: float = 30) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"service exited with {proc.returncode}: {proc.stderr.read()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                return json.load(r)
        except OSError:
            time.sleep(0.1)
    raise AssertionError("service did not answer /healthz")


def test_python_app_py_serves_with_embedded_defaults(tmp_path):
    port = _free_port()
    env = _env(tmp_path, PORT=str(port), RESPONDER_INTAKE_KEYS="forms:local-secret-1")
    proc = subprocess.Popen(
        [sys.executable, "app.py"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert _wait_healthy(port, proc)["council"] == "Sample Borough Council"
        body = json.dumps({"type": "litter", "location": {"lat": 51.905, "lon": 0.889}}).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/tasks",
            data=body,
            method="POST",
            headers={"Authorization": "Bearer local-secret-1", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as r:
            assert r.status == 201
            assert json.load(r)["ward"] == "Northgate"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert (tmp_path / "svc.db").exists()


def test_responder_command_refuses_an_invalid_council_file(tmp_path):
    bad = write_council(tmp_path, lambda d: d["teams"][1]["wards"].__setitem__(0, "Hill Parc"))
    env = _env(tmp_path, RESPONDER_CONFIG=str(bad), PORT=str(_free_port()))
    run = subprocess.run([str(RESPONDER)], env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert "teams[1].wards[0]: unknown ward 'Hill Parc'" in run.stderr
    assert not (tmp_path / "svc.db").exists()  # refused before touching the database


def test_check_config_accepts_the_example(tmp_path):
    run = subprocess.run(
        [str(RESPONDER), "check-config", str(EXAMPLES / "council.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stdout
    assert "OK (Sample Borough Council: 4 wards, 14 task types, 3 teams, 10 people)" in run.stdout


def test_check_config_lists_every_problem(tmp_path):
    def break_it(data: dict) -> None:
        data["teams"][1]["wards"][0] = "Hill Parc"
        data["task_types"][0]["priority"] = "urgentt"
        data["digest"]["schedule"] = "every morning"

    bad = write_council(tmp_path, break_it)
    run = subprocess.run(
        [str(RESPONDER), "check-config", str(bad)], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 1
    assert "teams[1].wards[0]: unknown ward 'Hill Parc'" in run.stdout
    assert "task_types[0].priority: unknown priority 'urgentt'" in run.stdout
    assert "digest.schedule" in run.stdout


def test_bad_settings_are_refused_clearly(tmp_path):
    env = _env(tmp_path, RESPONDER_INTAKE_KEYS="forms-without-secret")
    run = subprocess.run([str(RESPONDER)], env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert "RESPONDER_INTAKE_KEYS[0]: expected name:secret" in run.stderr


def test_packaged_defaults_are_the_examples():
    packaged = ROOT / "responder" / "defaults"
    for name in ("council.yaml", "wards.geojson"):
        assert (packaged / name).read_bytes() == (EXAMPLES / name).read_bytes()
    shared = ROOT.parent / "shared" / "examples"
    if shared.is_dir():  # beside a checkout, the project's source of truth
        for name in ("council.yaml", "wards.geojson"):
            assert (shared / name).read_bytes() == (EXAMPLES / name).read_bytes()


def test_schemas_match_shared():
    shared = ROOT.parent / "shared" / "schemas"
    if shared.is_dir():
        for name in ("adaptive-card-1.5.json", "teams-manifest-1.24.json"):
            assert (shared / name).read_bytes() == (ROOT / "tests" / "schemas" / name).read_bytes()
