"""Understanding what people type: kept for existing imports; see ``intents``.

``parse(text)`` still works with one argument (no ward names, prefix RSP); code that
knows the council should build ``Parser(ward_names, prefix)`` once and reuse it.
"""

from __future__ import annotations

from responder.dialogs.intents import Command, Parser, normalise, parse

__all__ = ["Command", "Parser", "normalise", "parse"]
