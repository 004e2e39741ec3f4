"""What the Open311 server says of the council's services: the council file's ``open311``.

Services are the file's task types (their codes are the Open311 service codes, so they
stay stable as long as the file's do); this section adds what FixMyStreet shows beside
them and how the council's outcomes read as Open311 statuses.
"""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import Field

from responder.config.base import Strict


class Open311Service(Strict):
    """Extras for one task type's Open311 service."""

    description: str | None = None
    group: list[str] | None = None  # default: the type's service name
    keywords: list[str] = Field(default_factory=list)


class Open311Config(Strict):
    services: dict[str, Open311Service] = Field(default_factory=dict)
    # Outcome code -> extended Open311 status (FIXED, NO_FURTHER_ACTION, ...).
    statuses: dict[str, str] = Field(default_factory=dict)


def check_open311(
    config: Open311Config | None, task_types: list[str] | None, outcomes: list[str] | None
) -> Iterator[str]:
    """Cross-reference problems of the ``open311`` section."""
    return iter(())
