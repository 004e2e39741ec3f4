"""How a forms package's payload becomes a report: ``sources.<name>.form``."""

from __future__ import annotations

from collections.abc import Iterator

from responder.config.base import Strict


class FormMapping(Strict):
    """A field mapping (see docs/intake-forms.md)."""

    preset: str | None = None


def check_form(at: str, form: FormMapping, task_types: list[str] | None) -> Iterator[str]:
    """Cross-reference problems of one mapping (unknown task types, presets...)."""
    return iter(())
