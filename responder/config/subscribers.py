"""Systems told of every status change by signed webhook: the council file's ``subscribers``.

Each subscriber's signing secret is in the environment (``RESPONDER_WEBHOOK_SECRETS``,
``name:secret`` pairs), never in the file.
"""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import Field

from responder.config.base import Strict


class Subscriber(Strict):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    url: str = Field(min_length=1, max_length=2048)


def check_subscribers(subscribers: list[Subscriber] | None) -> Iterator[str]:
    """Cross-reference problems of ``subscribers``."""
    return iter(())
