"""Only the writer writes: no module outside ``responder/commands`` (and the table helpers
in ``responder/store``) inserts, updates or deletes task data.

The import contracts in pyproject.toml (run by ``lint-imports`` in .ci/run) keep decisions
pure and the Teams SDK in bot/; this test reads every module's syntax tree for the writes
themselves, which imports alone cannot show.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "responder"
# Tables that hold a task, its history, its reporters or what is owed about it.
TASK_DATA = {
    "tasks",
    "task_events",
    "reports",
    "contacts",
    "follows",
    "photos",
    "notifications",
    "digests",
    "outbox",
}
WRITES = {"insert", "update", "delete"}
# The dispatcher's own bookkeeping: claiming outbox rows and recording what became of them.
ALLOWED = {("jobs/dispatcher.py", "update", "outbox")}


def writes_in(path: Path) -> list[tuple[str, str, int]]:
    """(operation, table, line) of every insert/update/delete of a task-data table."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        table = node.args[0]
        if name in WRITES and isinstance(table, ast.Name) and table.id in TASK_DATA:
            found.append((name, table.id, node.lineno))
    return found


def test_only_commands_write_task_data():
    offending = []
    for path in sorted(ROOT.rglob("*.py")):
        where = path.relative_to(ROOT).as_posix()
        if where.startswith(("commands/", "store/")):
            continue
        for op, table, line in writes_in(path):
            if (where, op, table) not in ALLOWED:
                offending.append(f"{where}:{line}: {op}({table})")
    assert offending == [], "writes outside responder/commands:\n" + "\n".join(offending)


def test_the_check_sees_writes():
    """The reader finds the commands' own writes (so an empty answer above means something)."""
    found = {
        (op, table) for path in (ROOT / "commands").glob("*.py") for op, table, _ in writes_in(path)
    }
    assert {("insert", "tasks"), ("update", "tasks"), ("delete", "contacts")} <= found


def test_a_plain_install_brings_the_agents_sdk_and_not_botbuilder():
    """``pip install responder`` needs no archived SDK: botbuilder comes only with the
    ``botbuilder`` extra (read from the installed package's own metadata)."""
    from importlib.metadata import requires

    from packaging.requirements import Requirement

    plain, by_extra = set(), {}
    for line in requires("responder") or ():
        requirement = Requirement(line)
        marker = str(requirement.marker or "")
        if "extra" in marker:
            extra = marker.split("==")[-1].strip().strip("\"'")
            by_extra.setdefault(extra, set()).add(requirement.name)
        else:
            plain.add(requirement.name)
    assert {"microsoft-agents-hosting-core", "microsoft-agents-authentication-msal"} <= plain
    assert not {name for name in plain if name.startswith(("botbuilder", "botframework"))}
    assert "botbuilder-core" in by_extra["botbuilder"]
    assert not any("microsoft-agents-hosting-teams" in names for names in by_extra.values())
