"""Human task references (RSP-1042) derived from integer task ids."""

from __future__ import annotations

import re
from functools import lru_cache

# Added to the id so references look established from the first task (RSP-1001).
REFERENCE_OFFSET = 1000


def format_reference(prefix: str, task_id: int) -> str:
    return f"{prefix}-{task_id + REFERENCE_OFFSET}"


@lru_cache(maxsize=32)
def _pattern(prefix: str) -> re.Pattern[str]:
    # Optional '#', optional prefix, any separators people type, then ASCII digits.
    return re.compile(rf"#?\s*(?:{re.escape(prefix)}[\s\-_:#.]*)?(\d+)", re.IGNORECASE | re.ASCII)


def parse_reference(text: str, prefix: str) -> int | None:
    """The task id in ``text``, or None if it is not a reference with this prefix.

    Forgiving about case, separators and a leading '#': "RSP-1042", "rsp 1042",
    "RSP1042", "#1042" and "1042" all give 42. Numbers at or below the offset are not
    references of ours (ids start at 1).
    """
    match = _pattern(prefix).fullmatch(text.strip())
    if match is None or len(match.group(1).lstrip("0")) > 18:
        # Past 18 digits: beyond a 64-bit id (the database would overflow), so not ours.
        return None
    number = int(match.group(1))
    if number <= REFERENCE_OFFSET:
        return None
    return number - REFERENCE_OFFSET
