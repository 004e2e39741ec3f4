"""How problems in the council file are worded: values shown, and the name probably meant."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Sequence
from typing import Any


def shown(value: Any) -> str:
    """A value as a problem line quotes it; containers by kind, not by content."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def nearest(value: str, known: Sequence[str]) -> str | None:
    """The known name ``value`` was probably meant to be, if one is close enough.

    Case is ignored (``northgate`` means ``Northgate``). The cutoff is above difflib's
    default 0.6, which offers 'grounds' for 'roads': a wrong guess misleads a new user
    more than no guess, and typos (``recieved``, ``hgh``, ``Norhtgate``) score 0.85 or more.
    """
    by_folded = {name.casefold(): name for name in reversed(known)}  # first spelling wins
    close = difflib.get_close_matches(value.casefold(), list(by_folded), n=1, cutoff=0.75)
    return by_folded[close[0]] if close else None


def hint(value: str, known: Sequence[str] | None, list_known: bool = True) -> str:
    """`` (did you mean 'x'?)``, else `` (known: a, b)`` when asked to list them, else ``""``."""
    if not known:
        return " (known: none)" if list_known and known is not None else ""
    close = nearest(value, known)
    if close is not None:
        return f" (did you mean {close!r}?)"
    return f" (known: {', '.join(known)})" if list_known else ""


def duplicates(
    entries: Iterable[tuple[str, str]], what: str, casefold: bool = False
) -> Iterator[str]:
    """entries are (key path, value); report every value already seen."""
    first: dict[str, str] = {}
    for path, value in entries:
        key = value.casefold() if casefold else value
        if key in first:
            yield f"{path}: duplicate {what} {value!r} (also {first[key]})"
        else:
            first[key] = path
