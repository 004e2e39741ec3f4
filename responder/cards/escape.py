"""Make outside text safe to show in an Adaptive Card.

Residents' reports, notes and even names from the council file end up in TextBlock
text, which Teams renders as a subset of Markdown (CommonMark: bold, italic, lists,
links) and in which it expands ``{{DATE(...)}}`` / ``{{TIME(...)}}`` functions. ``text``
makes such a value show literally: nobody can bold, list, link or template their way
onto an officer's card.

Bare URLs are left alone: some clients turn them into links, but such a link shows its
own target, unlike a Markdown link whose words can say anything.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import urlsplit

MAX_TEXT = 1500
ELLIPSIS = "…"

# Characters that start inline Markdown anywhere in a line: escape, emphasis, code,
# link/image brackets, strikethrough, autolinks and HTML.
_INLINE = re.compile(r"([\\*_`\[\]~<])")
# An entity reference (&amp; &#42; &#x2A;) would be decoded; show it as typed.
_ENTITY = re.compile(r"&(?=#?\w+;)")
# Block syntax only counts at the start of a line: headings, quotes, bullets, setext
# underlines, tables; and "1. " / "1) " ordered lists (not "50.5").
_LINE_START = re.compile(r"^([#>+\-=|])", re.MULTILINE)
_ORDERED = re.compile(r"^(\d{1,9})([.)])(?=[ \t]|$)", re.MULTILINE)
# Leading blanks would make an indented code block or a nested list.
_INDENT = re.compile(r"^[ \t]+", re.MULTILINE)
# "{{" opens a Teams text function; a zero-width space between the braces defuses it.
_TEMPLATE = re.compile(r"\{(?=\{)")
_ZWSP = "\u200b"

# Bidi embeddings, overrides and isolates can make text read differently from what it is.
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# Unicode line and paragraph separators: treated as the newlines they look like.
_NEWLINES = str.maketrans({"\r": "\n", "\u2028": "\n", "\u2029": "\n", "\t": " "})

_MAX_URL = 2048
# Characters a URL never needs raw, and which could break out of or disguise it.
_URL_FORBIDDEN = re.compile(r"[\s\"'`<>\\{}|^]")


# Control characters (Unicode category Cc: C0 and C1, but the newline) and bidi controls.
# One regex pass: a per-character category check cost milliseconds per card.
_DROP = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f" + "".join(sorted(_BIDI)) + "]")


def clean(value: str, limit: int = MAX_TEXT) -> str:
    """Newlines normalised, control characters dropped, at most ``limit`` characters."""
    value = value.replace("\r\n", "\n").translate(_NEWLINES)
    value = _DROP.sub("", value).strip()
    if len(value) > limit:
        value = value[: limit - len(ELLIPSIS)].rstrip() + ELLIPSIS
    return value


# Text made only of these, not starting with a digit or "-" (a list item), is something no
# rule above changes (but for trimming): most of a card's text (names, times, references)
# is like that, and skips the seven passes (a list card has ~50 strings; a test checks the
# result is the same).
_PLAIN = re.compile(r"(?![-0-9])[A-Za-z0-9 ,.:;!?'\"()/@%£·…’-]*")


def text(value: str, limit: int = MAX_TEXT) -> str:
    """``value`` as TextBlock text that renders literally (see the module docstring)."""
    trimmed = value.strip()
    if len(trimmed) <= limit and _PLAIN.fullmatch(trimmed):
        return trimmed
    return _escape(value, limit)


def _escape(value: str, limit: int) -> str:
    value = _INDENT.sub("", clean(value, limit))
    value = _INLINE.sub(r"\\\1", value)
    value = _ENTITY.sub(r"\\&", value)
    value = _LINE_START.sub(r"\\\1", value)
    value = _ORDERED.sub(r"\1\\\2", value)
    return _TEMPLATE.sub("{" + _ZWSP, value)


def url_safe_https(url: str | None) -> str | None:
    """``url`` if it is a plain https:// URL with a host, else None (for images, links)."""
    if not url or len(url) > _MAX_URL or url[:8].lower() != "https://":
        return None
    if _URL_FORBIDDEN.search(url) or any(unicodedata.category(ch) in ("Cc", "Cf") for ch in url):
        return None
    try:
        parts = urlsplit(url)
        host, user = parts.hostname, parts.username
    except ValueError:
        return None
    # "https://council.gov.uk@elsewhere.example" is not the council's.
    return url if host and user is None else None
