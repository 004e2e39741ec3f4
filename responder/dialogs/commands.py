"""Understanding what officers and managers type: forgiving of case and punctuation."""

from __future__ import annotations

import re
from dataclasses import dataclass

_JUNK = re.compile(r"[^\w\s-]+")
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class Command:
    name: str  # my_tasks | on_duty | off_duty | help | link_team | unknown
    argument: str = ""


def normalise(text: str) -> str:
    return _SPACES.sub(" ", _JUNK.sub(" ", text.lower())).strip()


_PHRASES: dict[str, tuple[str, ...]] = {
    "my_tasks": ("my tasks", "my task", "tasks", "my jobs", "jobs", "show my tasks", "list"),
    "off_duty": ("off duty", "offduty", "off-duty", "going off duty", "clock off", "finish"),
    "on_duty": ("on duty", "onduty", "on-duty", "back on duty", "clock on", "start shift"),
    "help": ("help", "hi", "hello", "what can you do", "commands", "?"),
}


def parse(text: str | None) -> Command:
    words = normalise(text or "")
    if words.startswith("link team"):
        return Command("link_team", words.removeprefix("link team").strip())
    for name, phrases in _PHRASES.items():
        if words in phrases:
            return Command(name)
    return Command("help" if not words else "unknown", words)
