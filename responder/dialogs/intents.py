"""Understanding what people type to the bot: a message in, one ``Command`` out.

Forgiving of case, punctuation, extra spaces, polite openings ("please", "can you",
"show me") and small typos ("staus of my cases", "folow 1042", "whats opne in northgte"),
but not loose: a message must be a known phrasing, give or take a typo or two in
proportion to its length, so ordinary sentences ("the bins are overflowing") stay
``unknown``.

Build one ``Parser`` per council (it precomputes its tables) and call ``parse`` for each
message: a few microseconds for a phrasing as listed, tens for one with typos or for
an ordinary sentence (tests/test_intents.py holds it under 0.2 ms). Pure: no I/O, no
Teams types.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from rapidfuzz import process
from rapidfuzz.distance import OSA

from responder.domain.reference import REFERENCE_OFFSET, format_reference


@dataclass(frozen=True)
class Command:
    """What a message asks for.

    ``name`` is one of: my_tasks, on_duty, off_duty, help, link_team (argument: the team
    code), my_cases, ward_summary (argument: the council's own spelling of the ward if
    recognised, else the words typed, lower-cased; "" when no ward was named), case,
    follow, unfollow (argument: the canonical reference, e.g. "RSP-1042", or what was
    typed, upper-cased, when it cannot be one; "" when none was given), raise, cancel,
    unknown (argument: the normalised message).
    """

    name: str
    argument: str = ""


_APOSTROPHES = str.maketrans(dict.fromkeys("'\u2018\u2019`\u00b4"))
_JUNK = re.compile(r"[^\w\s-]+")


def normalise(text: str) -> str:
    """Lower case, apostrophes dropped ("what's" -> "whats"), other punctuation as spaces
    (hyphens inside words kept: "off-duty", "rsp-1042"), single spaces, trimmed."""
    words = (w.strip("-") for w in _JUNK.sub(" ", text.lower().translate(_APOSTROPHES)).split())
    return " ".join(w for w in words if w)


def typos_allowed(length: int) -> int:
    """Edits (insert, delete, substitute, swap two neighbours) forgiven in a phrase of
    ``length`` characters: none in very short words, then about one in seven."""
    if length <= 3:
        return 0
    if length <= 8:
        return 1
    if length <= 14:
        return 2
    return 3


# -- phrase tables (normalised form) ---------------------------------------------------------

# Whole messages that are a command with no argument. A typo as close to one command's
# phrase as to another's ("clock of") matches neither.
_PHRASES: dict[str, tuple[str, ...]] = {
    "my_tasks": (
        "my tasks",
        "my task",
        "tasks",
        "my jobs",
        "jobs",
        "show my tasks",
        "list",
        "list my tasks",
        "my work",
        "my open tasks",
    ),
    "off_duty": (
        "off duty",
        "offduty",
        "off-duty",
        "going off duty",
        "clock off",
        "finish",
        "im off duty",
    ),
    "on_duty": (
        "on duty",
        "onduty",
        "on-duty",
        "back on duty",
        "clock on",
        "start shift",
        "im on duty",
    ),
    "help": (
        "help",
        "hi",
        "hello",
        "hey",
        "hiya",
        "hi there",
        "hello there",
        "what can you do",
        "commands",
        "menu",
        "help me",
        "good morning",
        "good afternoon",
    ),
    "my_cases": (
        "my cases",
        "my case",
        "cases",
        "case",
        "my reports",
        "reports",
        "status of my cases",
        "status of my case",
        "status of my reports",
        "my case status",
        "my cases status",
        "whats happening with my cases",
        "whats happening with my case",
        "what is happening with my cases",
        "whats happening with my reports",
        "how are my cases",
        "how are my cases doing",
        "update on my cases",
        "updates on my cases",
        "any updates on my cases",
        "my open cases",
        "my followed cases",
        "cases i follow",
        "cases im following",
        "what am i following",
    ),
    "raise": (
        "raise",
        "raise a task",
        "raise task",
        "raise a new task",
        "raise an issue",
        "raise a case",
        "raise a job",
        "new task",
        "new case",
        "new job",
        "new report",
        "report",
        "report something",
        "report an issue",
        "report a problem",
        "report issue",
        "report a task",
        "log a task",
        "log an issue",
        "create a task",
        "create task",
    ),
    "cancel": (
        "cancel",
        "cancel that",
        "stop",
        "stop it",
        "quit",
        "exit",
        "abort",
        "never mind",
        "nevermind",
        "forget it",
    ),
    # Without a reference: the bot can ask for one.
    "follow": ("follow", "follow case", "follow a case"),
    "unfollow": ("unfollow", "unfollow case", "stop following"),
}

# Words before a reference ("case 1042", "stop following RSP-1042").
_REFERENCE_HEADS: dict[str, tuple[str, ...]] = {
    "case": (
        "",
        "case",
        "show",
        "show case",
        "open",
        "open case",
        "view",
        "view case",
        "find",
        "find case",
        "look up",
        "look up case",
        "status",
        "status of",
        "status of case",
        "case status",
        "history",
        "history of",
        "history of case",
        "case history",
        "details",
        "details of",
        "details of case",
        "details for case",
        "update on",
        "update on case",
        "any update on",
        "progress on",
        "where is",
        "whats happening with",
        "whats happening with case",
        "what is happening with",
        "what about",
        "case number",
        "case ref",
        "ref",
        "reference",
    ),
    "follow": (
        "follow",
        "follow case",
        "start following",
        "start following case",
        "watch",
        "watch case",
        "track",
        "track case",
        "subscribe to",
        "keep me updated on",
        "keep me posted on",
        "notify me about",
    ),
    "unfollow": (
        "unfollow",
        "unfollow case",
        "stop following",
        "stop following case",
        "dont follow",
        "stop watching",
        "unwatch",
        "stop tracking",
        "unsubscribe from",
        "stop updates on",
        "stop updates for",
    ),
}
# Words after a reference ("RSP-1042 status").
_REFERENCE_TAILS = ("status", "history", "details", "update", "progress")

# Ward questions. "Strong" phrasings are ward questions whatever follows (so an unknown
# ward is still answered as one); "weak" ones only with a ward the council has.
_STRONG_WARD_HEADS = (
    "whats open in",
    "what is open in",
    "whats open",
    "what is open",
    "whats happening in",
    "what is happening in",
    "whats going on in",
    "what is going on in",
    "open cases in",
    "open tasks in",
    "summary",
    "summary for",
    "summary of",
    "ward summary",
    "ward summary for",
    "show ward",
    "ward",
)
_WEAK_WARD_HEADS = (
    "open in",
    "open",
    "cases in",
    "tasks in",
    "issues in",
    "problems in",
    "reports in",
    "anything open in",
    "whats new in",
)
_STRONG_WARD_TAILS = ("summary", "ward summary")
_WEAK_WARD_TAILS = ("ward", "cases", "open", "tasks", "whats open")
_WARD_LEAD = ("in", "for", "of", "at", "the")
_WARD_TRAIL = ("ward", "area")
_MAX_RAW_WARD_WORDS = 4
# Longer messages are never commands: no need to look for one in them.
_LONGEST_COMMAND = 120

_LINK_TEAM = "link team"

# Politeness around a command, dropped when something is left.
_LEADING = (
    ("please",),
    ("pls",),
    ("plz",),
    ("plese",),
    ("pleas",),
    ("can", "you"),
    ("could", "you"),
    ("would", "you"),
    ("can", "i", "see"),
    ("can", "i", "have"),
    ("could", "i", "see"),
    ("can", "i"),
    ("show", "me"),
    ("tell", "me"),
    ("give", "me"),
    ("i", "want", "to"),
    ("i", "would", "like", "to"),
    ("id", "like", "to"),
    ("i", "need", "to"),
    ("let", "me"),
    ("hi",),
    ("hello",),
    ("hey",),
    ("ok",),
    ("okay",),
)
_TRAILING = (
    ("please",),
    ("pls",),
    ("plz",),
    ("thanks",),
    ("thank", "you"),
    ("thx",),
    ("ta",),
)


_LEADING_BY_WORD: dict[str, list[tuple[str, ...]]] = {}
for _words in sorted(_LEADING, key=len, reverse=True):  # longest first: "can i see"
    _LEADING_BY_WORD.setdefault(_words[0], []).append(_words)
_TRAILING_BY_WORD: dict[str, list[tuple[str, ...]]] = {}
for _words in _TRAILING:
    _TRAILING_BY_WORD.setdefault(_words[-1], []).append(_words)


def _strip_politeness(tokens: list[str]) -> list[str]:
    """Without politeness at either end, unless nothing else would be left."""
    while len(tokens) > 1 and tokens[0] in _LEADING_BY_WORD:
        ways = _LEADING_BY_WORD[tokens[0]]
        lead = next((len(w) for w in ways if tuple(tokens[: len(w)]) == w), 0)
        if not lead or len(tokens) == lead:
            break
        tokens = tokens[lead:]
    while len(tokens) > 1 and tokens[-1] in _TRAILING_BY_WORD:
        ways = _TRAILING_BY_WORD[tokens[-1]]
        trail = next((len(w) for w in ways if tuple(tokens[-len(w) :]) == w), 0)
        if not trail or len(tokens) == trail:
            break
        tokens = tokens[:-trail]
    return tokens


class _Table:
    """Phrase -> value, matched exactly or within ``typos_allowed`` edits (rapidfuzz OSA,
    so a swapped pair of letters counts once). The closest phrase wins; a tie between
    phrases of different values matches nothing."""

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        self.exact: dict[str, str] = {}
        for phrase, value in pairs:
            self.exact.setdefault(phrase, value)
        self.keys = list(self.exact)
        # Only phrases whose length is within reach of the text's can match: by length
        # of text, those phrases (and nothing for lengths no phrase is within reach of).
        self._reach: dict[int, list[str]] = {}
        for size in range(max(map(len, self.keys), default=0) + 4):
            allowed = typos_allowed(size)
            near = [k for k in self.keys if allowed and abs(len(k) - size) <= allowed]
            if near:
                self._reach[size] = near

    def match(self, text: str, fuzzy: bool = True) -> tuple[str, int] | None:
        """(value, edits) of the closest phrase within reach, or None."""
        value = self.exact.get(text)
        if value is not None:
            return value, 0
        near = self._reach.get(len(text)) if fuzzy else None
        if not near:
            return None
        allowed = typos_allowed(len(text))
        best: str | None = None
        edits = allowed + 1
        tied = False
        if len(near) > 4:  # one call into rapidfuzz beats many from Python
            found = process.extract(
                text, near, scorer=OSA.distance, score_cutoff=allowed, limit=None
            )
            scored = [(key, d) for key, d, _ in found]
        else:
            scored = [(key, OSA.distance(text, key, score_cutoff=allowed)) for key in near]
        for key, d in scored:
            if d < edits:
                best, edits, tied = self.exact[key], d, False
            elif d == edits <= allowed and self.exact[key] != best:
                tied = True
        if best is None or tied:
            return None  # nothing close, or as close to another meaning ("clock of")
        return best, edits


def _ward_key(name: str) -> str:
    return normalise(name).replace("-", " ")


def _trim(tokens: Sequence[str], keep: int) -> list[str]:
    """Without leading "in"/"for"/"the" and trailing "ward"/"area", keeping ``keep`` words."""
    inner = list(tokens)
    while len(inner) > keep and inner[0] in _WARD_LEAD:
        inner = inner[1:]
    while len(inner) > keep and inner[-1] in _WARD_TRAIL:
        inner = inner[:-1]
    return inner


class Parser:
    """The parser for one council: its ward names and reference prefix. Build once."""

    def __init__(self, wards: Sequence[str] = (), prefix: str = "RSP") -> None:
        self.prefix = prefix
        self._phrases = _Table((p, name) for name, ps in _PHRASES.items() for p in ps)
        self._ref_heads = _Table((h, name) for name, hs in _REFERENCE_HEADS.items() for h in hs)
        self._ref_tails = frozenset(_REFERENCE_TAILS)
        self._ward_heads = _Table(
            [(h, "strong") for h in _STRONG_WARD_HEADS] + [(h, "weak") for h in _WEAK_WARD_HEADS]
        )
        self._ward_tails = _Table(
            [(t, "strong") for t in _STRONG_WARD_TAILS] + [(t, "weak") for t in _WEAK_WARD_TAILS]
        )
        self._max_head_words = max(len(h.split()) for h in self._ward_heads.keys)
        self._max_tail_words = max(len(t.split()) for t in self._ward_tails.keys)
        self._wards = _Table((_ward_key(w), w) for w in wards if _ward_key(w))
        p = re.escape(prefix.lower())
        # A reference at the end ("case rsp 1042") or the start ("RSP-1042 status").
        self._ref_end = re.compile(rf"(?:^|\s)((?:({p})[\s_-]*)?(\d+))$", re.ASCII)
        self._ref_start = re.compile(rf"^((?:({p})[\s_-]*)?(\d+))(?:\s(.*))?$", re.ASCII)

    def parse(self, text: str | None) -> Command:
        words = normalise(text or "")
        found = self._phrases.exact.get(words)  # before politeness: "hi there"
        if found is not None:
            return Command(found)
        tokens = _strip_politeness(words.split())
        if not tokens:
            return Command("help")
        words = " ".join(tokens)
        found = self._phrases.exact.get(words)
        if found is not None:
            return Command(found)
        if words == _LINK_TEAM or words.startswith(_LINK_TEAM + " "):
            return Command("link_team", words.removeprefix(_LINK_TEAM).strip())
        if len(words) > _LONGEST_COMMAND:
            return Command("unknown", words)
        # Word for word first (most messages, and cheap), then forgiving typos.
        return (
            self._understand(tokens, words, False)
            or self._understand(tokens, words, True)
            or Command("unknown", words)
        )

    # -- pieces -------------------------------------------------------------------------------

    def _understand(self, tokens: list[str], words: str, fuzzy: bool) -> Command | None:
        if fuzzy and len(tokens) > 2:
            head = " ".join(tokens[:2])
            if OSA.distance(head, _LINK_TEAM, score_cutoff=1) <= 1:
                return Command("link_team", " ".join(tokens[2:]))
        command = self._reference(words, fuzzy)
        if command is not None:
            return command
        ward, raw = self._ward_question(tokens, fuzzy)
        if ward is not None:
            return Command("ward_summary", ward)
        if not fuzzy:
            return None  # an unknown ward is only final once typos of known ones are ruled out
        close = self._phrases.match(words)
        if close is not None:
            return Command(close[0])
        if raw is not None:
            return Command("ward_summary", raw)
        return None

    def _canonical(self, whole: str, has_prefix: bool, digits: str) -> str | None:
        number = int(digits)
        if number > REFERENCE_OFFSET:
            return format_reference(self.prefix, number - REFERENCE_OFFSET)
        return whole.upper() if has_prefix else None

    def _reference(self, words: str, fuzzy: bool) -> Command | None:
        end = self._ref_end.search(words)
        if end is not None:
            whole, prefix, digits = end.groups()
            head = words[: end.start()].strip()
            intent = self._ref_heads.match(head, fuzzy)
            if intent is not None:
                reference = self._canonical(whole, prefix is not None, digits)
                if reference is None:
                    if not head:  # a small bare number is not a reference of ours
                        return None
                    reference = whole.upper()
                return Command(intent[0], reference)
        start = self._ref_start.match(words)
        if start is not None and start.group(4) in self._ref_tails:
            whole, prefix, digits, _ = start.groups()
            reference = self._canonical(whole, prefix is not None, digits) or whole.upper()
            return Command("case", reference)
        return None

    def _ward(self, tokens: Sequence[str], fuzzy: bool) -> str | None:
        """The council's name for the ward these words name (allowing small typos when
        ``fuzzy``), also without a leading "in"/"the" or a trailing "ward"."""
        if not tokens or not self._wards.keys:
            return None
        found = self._wards.match(" ".join(tokens).replace("-", " "), fuzzy)
        if found is None:
            inner = _trim(tokens, 1)
            if len(inner) < len(tokens):
                found = self._wards.match(" ".join(inner).replace("-", " "), fuzzy)
        return found[0] if found is not None else None

    def _ward_question(self, tokens: list[str], fuzzy: bool) -> tuple[str | None, str | None]:
        """(the ward asked about, or None; else the unknown ward of a clear ward question,
        "" when none was named, or None)."""
        ward = self._ward(tokens, fuzzy)
        if ward is not None:  # the ward's name alone
            return ward, None
        raw: tuple[int, str] | None = None  # (edits, words): the closest phrasing wins
        n = len(tokens)
        for i in range(min(n, self._max_head_words), 0, -1):  # longest head first
            head = self._ward_heads.match(" ".join(tokens[:i]), fuzzy)
            if head is None:
                continue
            rest = tokens[i:]
            ward = self._ward(rest, fuzzy)
            if ward is not None:
                return ward, None
            strong = head[0] == "strong" and len(rest) <= _MAX_RAW_WARD_WORDS
            if strong and (raw is None or head[1] < raw[0]):
                raw = (head[1], " ".join(_trim(rest, 0)))  # "" if no ward named: bot asks
        for i in range(min(n - 1, self._max_tail_words), 0, -1):
            tail = self._ward_tails.match(" ".join(tokens[n - i :]), fuzzy)
            if tail is None:
                continue
            rest = tokens[: n - i]
            ward = self._ward(rest, fuzzy)
            if ward is not None:
                return ward, None
            named = " ".join(_trim(rest, 0))
            strong = tail[0] == "strong" and len(rest) <= _MAX_RAW_WARD_WORDS and bool(named)
            if strong and (raw is None or tail[1] < raw[0]):
                raw = (tail[1], named)
        return None, raw[1] if raw is not None else None


@lru_cache(maxsize=16)
def _parser(wards: tuple[str, ...], prefix: str) -> Parser:
    return Parser(wards, prefix)


def parse(text: str | None, wards: Sequence[str] = (), prefix: str = "RSP") -> Command:
    """Parse one message; builds (and caches) the council's ``Parser``. Long-lived code
    should hold its own ``Parser(wards, prefix)`` instead."""
    return _parser(tuple(wards), prefix).parse(text)
