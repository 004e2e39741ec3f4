"""Host names as the council file and the fetch guard read them (pure syntax, no DNS)."""

from __future__ import annotations

import re
from collections.abc import Iterable

MAX_HOST = 253
_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def host_name(host: str) -> str | None:
    """A DNS name in lower case without its trailing dot, or None when it is not one."""
    name = host.lower()
    if name.endswith("."):  # "x.sharepoint.com." is the same host, fully qualified
        name = name[:-1]
    if not name or len(name) > MAX_HOST:
        return None
    labels = name.split(".")
    if not all(_LABEL.match(label) for label in labels):
        return None
    if labels[-1].isdigit():  # "127.1", "2130706433": numbers resolvers read as IPv4
        return None
    return name


def host_suffix(value: str) -> str:
    """One allowed host: ``sharepoint.com`` or ``*.sharepoint.com`` (the same thing)."""
    entry = value.strip().lower()
    for prefix in ("*.", "."):
        entry = entry.removeprefix(prefix)
    name = host_name(entry)
    if name is None:
        raise ValueError(f"not a host name: {value!r}")
    return name


def parse_host_suffixes(value: str) -> tuple[str, ...]:
    """A comma-separated list of host suffixes; empty entries are ignored."""
    return tuple(dict.fromkeys(host_suffix(v) for v in value.split(",") if v.strip()))


def suffix_match(host: str, suffixes: Iterable[str]) -> bool:
    """``a.sharepoint.com`` matches ``sharepoint.com``; ``evilsharepoint.com`` does not."""
    return any(host == s or host.endswith("." + s) for s in suffixes)
