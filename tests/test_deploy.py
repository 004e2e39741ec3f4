"""The deploy files: the wheel installed the way deploy/Dockerfile installs it, served and
health-checked; the image itself where a container engine can build and run it; and the
compose file, the systemd unit and the Azure guide checked for what they promise.

The install test builds a wheel from the files the Dockerfile copies, installs it into a
fresh virtual environment (its dependencies from the configured package index, as the
image does), and runs ``responder`` from there on SQLite: it is what would break if a
module, a migration or a template were left out of the package. It runs everywhere (CI
included) in about 30 s.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml
from support import EXAMPLES, ROOT

from responder.notify.personalisation import EVENT_FIELDS
from responder.notify.receipts import PATH as NOTIFY_CALLBACK_PATH

DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
COMPOSE = DEPLOY / "compose.yaml"
UNIT = DEPLOY / "responder.service"
ENV_EXAMPLE = DEPLOY / "responder.env.example"
AZURE = ROOT / "docs" / "deploy-azure.md"
SETTINGS_SOURCE = (ROOT / "responder" / "settings.py").read_text()


# --- reading the Dockerfile ------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    lines, joined = [], ""
    for raw in DOCKERFILE.read_text().splitlines():
        if not joined and raw.lstrip().startswith("#"):
            continue
        joined += raw.rstrip()
        if joined.endswith("\\"):
            joined = joined[:-1] + " "
            continue
        if joined.strip():
            word, _, rest = joined.strip().partition(" ")
            lines.append((word.upper(), " ".join(rest.split())))
        joined = ""
    return lines


def stages() -> list[list[tuple[str, str]]]:
    found: list[list[tuple[str, str]]] = []
    for instruction in dockerfile_instructions():
        if instruction[0] == "FROM":
            found.append([])
        found[-1].append(instruction)
    return found


def healthcheck_command() -> list[str]:
    [args] = [a for i, a in dockerfile_instructions() if i == "HEALTHCHECK"]
    command = json.loads(args[args.index("CMD ") + 4 :])
    assert isinstance(command, list)
    return command


def build_stage_copies() -> list[str]:
    """What the build stage copies from the context, e.g. pyproject.toml, responder."""
    sources = []
    for instruction, args in stages()[0]:
        if instruction == "COPY":
            *names, _dest = args.split()
            sources += [n for n in names if not n.startswith("--")]
    return sources


def test_dockerfile_is_multi_stage_slim_and_non_root():
    build, runtime = stages()
    assert build[0] == ("FROM", "python:3.11-slim AS build")
    assert runtime[0][0] == "FROM" and runtime[0][1].startswith("python:3.11-slim")
    assert any(i == "RUN" and "pip wheel --no-deps" in a for i, a in build)
    # The runtime gets the wheel only, not the source tree.
    runtime_copies = [a for i, a in runtime if i == "COPY"]
    assert runtime_copies == ["--from=build /wheels /wheels"]
    [user] = [a for i, a in runtime if i == "USER"]
    assert user not in ("root", "0") and not user.startswith("0:")
    assert any(i == "RUN" and f"useradd --system --gid {user}" in a for i, a in runtime)
    assert ("EXPOSE", "3978") in runtime
    assert ("ENTRYPOINT", '["responder"]') in runtime
    assert ("CMD", '["serve"]') in runtime


def test_dockerfile_healthcheck_uses_python_not_curl():
    command = healthcheck_command()
    assert command[:2] == ["python", "-c"]
    assert "/healthz" in command[2] and "curl" not in DOCKERFILE.read_text().split("HEALTHCHECK")[1]
    [args] = [a for i, a in dockerfile_instructions() if i == "HEALTHCHECK"]
    assert "--interval=" in args and "--timeout=" in args


def test_dockerignore_keeps_secrets_and_the_venv_out():
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    for name in (".git", ".venv", ".env", "*.db"):
        assert name in ignored
    for source in build_stage_copies():
        assert source not in ignored


# --- the install steps, in a fresh virtual environment -----------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _clean_env(**extra: str) -> dict[str, str]:
    """No credentials or settings of the developer's: the service's defaults, plus extra."""
    prefixes = ("Microsoft", "RESPONDER_", "CONNECTIONS__", "NOTIFY_", "DATABASE_URL", "PORT")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env.pop("VIRTUAL_ENV", None)
    env.update(extra)
    return env


def _get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A new virtual environment with Responder installed from a freshly built wheel."""
    work = tmp_path_factory.mktemp("deploy")
    src = work / "src"
    src.mkdir()
    for name in build_stage_copies():  # exactly what the Dockerfile's build stage copies
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(
                source, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
            )
        else:
            shutil.copy(source, src / name)
    run = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "--wheel-dir", "wheels", "./src"],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    [wheel] = (work / "wheels").glob("responder-*.whl")
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=60)
    run = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)],
        capture_output=True,
        text=True,
        timeout=240,
        env=_clean_env(),
    )
    assert run.returncode == 0, run.stderr
    return venv


def test_the_wheel_installs_and_responder_help_runs(installed):
    run = subprocess.run(
        [str(installed / "bin" / "responder"), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env=_clean_env(),
    )
    assert run.returncode == 0, run.stderr
    for command in ("serve", "check-config", "db", "app-package", "purge", "digest"):
        assert command in run.stdout
    # Installed, not the checkout: the package comes from the venv's site-packages.
    where = subprocess.run(
        [str(installed / "bin" / "python"), "-c", "import responder; print(responder.__file__)"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=installed,
        env=_clean_env(),
    )
    assert str(installed) in where.stdout and str(ROOT) not in where.stdout


def test_the_installed_service_starts_on_sqlite_and_is_healthy(installed, tmp_path):
    port = _free_port()
    env = _clean_env(
        DATABASE_URL=f"sqlite:///{tmp_path / 'responder.db'}",
        RESPONDER_CONFIG=str(EXAMPLES / "council.yaml"),
        PORT=str(port),
        HOST="127.0.0.1",
        RESPONDER_ENV="development",
    )
    server = subprocess.Popen(
        [str(installed / "bin" / "responder")],  # serve is the default
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline, status, body = time.monotonic() + 45, 0, b""
        while time.monotonic() < deadline and server.poll() is None:
            try:
                status, body = _get(base + "/healthz")
            except OSError:
                time.sleep(0.2)
                continue
            if status == 200:
                break
            time.sleep(0.2)
        assert status == 200, (status, body, server.poll())
        assert json.loads(body) == {
            "status": "ok",
            "database": "ok",
            "council": "Sample Borough Council",
        }
        # The migrations came with the wheel: the database exists and was upgraded.
        assert (tmp_path / "responder.db").stat().st_size > 0
        # The pages the app package links to, from the installed package.
        status, body = _get(base + "/privacy")
        assert status == 200 and b"Sample Borough Council" in body
        # The image's HEALTHCHECK, run as Docker runs it, with this venv's python.
        check = healthcheck_command()
        healthy = subprocess.run(
            [str(installed / "bin" / check[0]), *check[1:]], env=env, timeout=30
        )
        assert healthy.returncode == 0
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            output = server.communicate(timeout=20)[0].decode(errors="replace")
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            output = server.communicate()[0].decode(errors="replace")
    assert server.returncode in (0, -signal.SIGTERM), output
    # Stopped: the health check now fails, as Docker would see it.
    check = healthcheck_command()
    unhealthy = subprocess.run(
        [str(installed / "bin" / check[0]), *check[1:]],
        env=env,
        timeout=30,
        capture_output=True,
    )
    assert unhealthy.returncode != 0


def test_the_installed_app_package_command(installed, tmp_path):
    out = tmp_path / "app.zip"
    run = subprocess.run(
        [str(installed / "bin" / "responder"), "app-package", "--out", str(out)],
        env=_clean_env(
            MicrosoftAppId="3f2504e0-4f89-41d3-9a0c-0305e82c3301",
            RESPONDER_CONFIG=str(EXAMPLES / "council.yaml"),
        ),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr  # the manifest template and icons were packaged
    assert out.stat().st_size > 0


# --- the image, where a container engine works ---------------------------------------------


def _engine() -> str | None:
    wanted = os.environ.get("RESPONDER_TEST_CONTAINER_ENGINE")
    for name in [wanted] if wanted else ["docker", "podman"]:
        if name and shutil.which(name):
            try:
                ok = subprocess.run([name, "info"], capture_output=True, timeout=30)
            except subprocess.TimeoutExpired:
                continue
            if ok.returncode == 0:
                return name
    return None


# What an engine says when the sandbox, not the Dockerfile, is the problem.
_NO_REGISTRY = re.compile(
    r"pinging container registry|no such host|dial tcp|TLS handshake timeout|"
    r"connection refused|network is unreachable|failed to resolve source metadata",
    re.I,
)
_NO_RUNTIME = re.compile(
    r"OCI runtime error|OCI permission denied|cgroups? .*not supported|"
    r"setrlimit|operation not permitted",
    re.I,
)


def test_the_image_builds_runs_and_is_healthy(tmp_path):
    engine = _engine()
    if engine is None:
        pytest.skip(
            "no container engine answers `docker info` or `podman info` here; "
            "the install test above performs the Dockerfile's steps in a virtual environment"
        )
    tag = f"localhost/responder-test:{os.getpid()}"
    build = subprocess.run(
        [engine, "build", "-f", str(DOCKERFILE), "-t", tag, str(ROOT)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if build.returncode != 0 and _NO_REGISTRY.search(build.stderr + build.stdout):
        reason = build.stderr.strip().splitlines()[-1][-300:]
        pytest.skip(f"{engine} cannot fetch the base image python:3.11-slim here: {reason}")
    assert build.returncode == 0, build.stderr[-3000:]
    port = _free_port()
    name = f"responder-test-{os.getpid()}"
    try:
        user = subprocess.run(
            [engine, "image", "inspect", "--format", "{{.Config.User}}", tag],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert user.stdout.strip() == "responder"
        started = subprocess.run(
            [
                engine,
                "run",
                "-d",
                "--name",
                name,
                "-p",
                f"127.0.0.1:{port}:3978",
                "-v",
                f"{EXAMPLES}:/etc/responder:ro",
                "-e",
                "RESPONDER_ENV=development",  # no bot credentials in a test
                tag,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if started.returncode != 0 and _NO_RUNTIME.search(started.stderr):
            reason = started.stderr.strip().splitlines()[-1][-300:]
            pytest.skip(f"{engine} cannot run containers here: {reason}")
        assert started.returncode == 0, started.stderr
        deadline, status = time.monotonic() + 60, 0
        while time.monotonic() < deadline:
            try:
                status, _ = _get(f"http://127.0.0.1:{port}/healthz")
            except OSError:
                status = 0
            if status == 200:
                break
            time.sleep(0.5)
        logs = subprocess.run([engine, "logs", name], capture_output=True, text=True, timeout=60)
        assert status == 200, logs.stdout + logs.stderr
        health = subprocess.run(
            [engine, "exec", name, *healthcheck_command()], capture_output=True, timeout=60
        )
        assert health.returncode == 0
        whoami = subprocess.run(
            [engine, "exec", name, "id", "-u"], capture_output=True, text=True, timeout=60
        )
        assert whoami.stdout.strip() not in ("", "0")
    finally:
        subprocess.run([engine, "rm", "-f", name], capture_output=True, timeout=120)
        subprocess.run([engine, "rmi", "-f", tag], capture_output=True, timeout=120)


# --- compose ---------------------------------------------------------------------------


def test_compose_file_parses_and_wires_postgres_to_the_service():
    compose = yaml.safe_load(COMPOSE.read_text())
    db, service = compose["services"]["db"], compose["services"]["responder"]
    assert db["image"] == "postgres:15"
    assert any(v.startswith("pgdata:") for v in db["volumes"])
    assert "pgdata" in compose["volumes"]
    assert "healthcheck" in db

    assert service["image"] == "responder:latest"
    assert service["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
    context = (COMPOSE.parent / service["build"]["context"]).resolve()
    assert context / service["build"]["dockerfile"] == DOCKERFILE
    assert service["env_file"] == ["responder.env"]
    assert service["depends_on"] == {"db": {"condition": "service_healthy"}}
    env = service["environment"]
    assert env["DATABASE_URL"].startswith("postgresql://responder:")
    assert env["DATABASE_URL"].endswith("@db:5432/responder")
    assert env["RESPONDER_ENV"] == "production"
    # The council file is in the mounted folder, read-only.
    [mount] = service["volumes"]
    host, container, mode = mount.split(":")
    assert mode == "ro" and env["RESPONDER_CONFIG"].startswith(container + "/")
    assert service["ports"] == ["127.0.0.1:3978:3978"]
    for name in env:
        assert f'"{name}"' in SETTINGS_SOURCE, f"{name} is not a setting Responder reads"


def test_the_env_example_names_only_real_settings():
    names = [
        line.split("=", 1)[0].lstrip("# ")
        for line in ENV_EXAMPLE.read_text().splitlines()
        if re.match(r"^#? ?[A-Za-z_]+=", line)
    ]
    assert {"MicrosoftAppId", "MicrosoftAppPassword", "NOTIFY_CALLBACK_TOKEN"} <= set(names)
    for name in names:
        assert f'"{name}"' in SETTINGS_SOURCE or name in SETTINGS_SOURCE, name
    # No values filled in: an example, not a secret.
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line and not line.startswith("#") and not line.startswith("MicrosoftAppType"):
            assert line.endswith("="), line


# --- systemd ---------------------------------------------------------------------------


def unit_settings() -> dict[str, dict[str, list[str]]]:
    """Section -> key -> every value given (systemd allows a key more than once)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for line in UNIT.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        assert current is not None, line
        current.setdefault(key, []).append(value)
    return sections


def test_systemd_unit_has_what_it_promises():
    unit = unit_settings()
    service = {k: v[-1] for k, v in unit["Service"].items()}
    assert service["User"] == service["Group"] == "responder"
    assert service["Restart"] == "on-failure"
    assert service["EnvironmentFile"] == "/etc/responder/responder.env"
    assert shlex.split(service["ExecStart"])[1:] == ["serve"]
    assert service["ExecStart"].startswith("/opt/responder/bin/responder")
    assert service["NoNewPrivileges"] == "yes"
    assert service["ProtectSystem"] == "strict"
    assert service["ProtectHome"] == "yes"
    assert service["PrivateTmp"] == "yes"
    assert service["CapabilityBoundingSet"] == ""
    # The one writable place is the state directory, and SQLite lives there.
    assert service["StateDirectory"] == "responder"
    assert service["WorkingDirectory"] == "/var/lib/responder"
    environment = dict(v.split("=", 1) for v in unit["Service"]["Environment"])
    assert environment["DATABASE_URL"] == "sqlite:////var/lib/responder/responder.db"
    assert environment["RESPONDER_CONFIG"].startswith("/etc/responder/")
    assert environment["RESPONDER_ENV"] == "production"
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]
    assert "network-online.target" in unit["Unit"]["After"][0]


def test_systemd_unit_verifies(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    copy = tmp_path / "responder.service"
    shutil.copy(UNIT, copy)
    run = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True, timeout=60)
    # The one thing it may say here: Responder is not installed at /opt/responder.
    complaints = [
        line
        for line in (run.stdout + run.stderr).splitlines()
        if line.strip() and "/opt/responder/bin/responder" not in line
    ]
    assert complaints == []


# --- the Azure guide -------------------------------------------------------------------


def test_azure_guide_covers_the_steps_and_the_real_names():
    guide = AZURE.read_text()
    for phrase in (
        "Single Tenant",
        "managed identity",
        "Key Vault",
        "@Microsoft.KeyVault(",
        "App Service",
        "Container Apps",
        "/api/messages",
        "responder app-package",
        "GOV.UK Notify",
        NOTIFY_CALLBACK_PATH,
        "NOTIFY_CALLBACK_TOKEN",
        "/healthz",
        "deploy/Dockerfile",
    ):
        assert phrase in guide, phrase
    # Every personalisation field Responder sends, as a Notify placeholder.
    for fields in EVENT_FIELDS.values():
        for field in fields:
            assert f"(({field}))" in guide, field
    for event in EVENT_FIELDS:
        assert f"`{event}`" in guide


def test_readme_links_to_the_azure_guide():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Deploying to Teams", 1)[1].split("\n## ", 1)[0]
    assert "docs/deploy-azure.md" in section
