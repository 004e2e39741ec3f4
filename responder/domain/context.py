"""``Domain``: what commands, queries and the edges need to know about the council, built
once at start-up (the council file, and its wards indexed for point look-ups)."""

from __future__ import annotations

from dataclasses import dataclass

from responder.config.model import Council
from responder.domain.routing import WardLocator


@dataclass(frozen=True)
class Domain:
    """What the commands need to know about the council, built once at start-up."""

    council: Council
    locator: WardLocator

    @classmethod
    def for_council(cls, council: Council) -> Domain:
        return cls(council, WardLocator(council.wards))

    @property
    def prefix(self) -> str:
        return self.council.info.reference_prefix
