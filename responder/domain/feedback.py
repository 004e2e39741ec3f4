"""Residents' feedback on finished work (pure): the signed link's token, its expiry, the
form binding, and the words and limits of a rating.

The token is the resident's only credential (no sign-in), so it is signed, short and
expires. Its text is ``<report id>.<expiry>.<mac>``: the report id and the expiry (unix
seconds) in base 36, and the first 16 bytes of HMAC-SHA256 over ``<report id>.<expiry>``
under a key derived for this purpose only (``FEEDBACK_PURPOSE``), in unpadded base64url:
about 35 characters, every one URL-safe. The MAC is compared in constant time; a token
whose MAC is wrong is unknown (404), whatever it says, and only a genuine one can be
expired (410).

The form posted back from the page carries a second value, ``form_binding(token)``: an
HMAC of the token under another derived key (``FORM_PURPOSE``). The page is outside the
signed-in CSRF check (no session), so this is what a cross-site form cannot make without
knowing the token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import Enum

# derive_key(secret, purpose) purposes: one key for the links, another for the forms.
FEEDBACK_PURPOSE = "feedback-v1"
FORM_PURPOSE = "feedback-form-v1"
FORM_FIELD = "form"  # the form's hidden field carrying the binding

LINK_DAYS = 30  # a link works for this long after the completion message is made
TOKEN_MAX = 64  # longer than any token we make: refused before any work
COMMENT_MAX = 1000  # characters, after line endings are made one character each
# A comment longer than this is not echoed back into the form in full (the page stays small).
COMMENT_ECHO_MAX = 10 * COMMENT_MAX

RATINGS = (1, 2, 3, 4, 5)
RATING_WORDS = {
    1: "very poor",
    2: "poor",
    3: "neither good nor poor",
    4: "good",
    5: "very good",
}

RATING_MISSING = "Choose how you would rate the work, from 1 (very poor) to 5 (very good)"
COMMENT_TOO_LONG = f"Keep your comment to {COMMENT_MAX:,} characters or fewer"

_MAC_BYTES = 16
_TOKEN = re.compile(r"([1-9a-z][0-9a-z]{0,12})\.([1-9a-z][0-9a-z]{0,6})\.([A-Za-z0-9_-]{22})")
_ID_MAX = 2**63 - 1  # a BIGINT
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


class TokenState(Enum):
    VALID = "valid"
    UNKNOWN = "unknown"  # malformed, forged, another key's: 404
    EXPIRED = "expired"  # genuine but past its time: 410


@dataclass(frozen=True)
class TokenCheck:
    state: TokenState
    report_id: int | None = None
    expires_at: datetime | None = None


def _b36(number: int) -> str:
    if number <= 0:
        raise ValueError("only positive numbers go into a feedback token")
    out = ""
    while number:
        number, digit = divmod(number, 36)
        out = _DIGITS[digit] + out
    return out


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _mac(key: bytes, message: str) -> str:
    return _b64(hmac.new(key, message.encode("ascii"), hashlib.sha256).digest()[:_MAC_BYTES])


def expiry_for(made_at: datetime) -> datetime:
    """When a link made at ``made_at`` stops working (to the second)."""
    return (made_at + timedelta(days=LINK_DAYS)).replace(microsecond=0)


def make_token(key: bytes, report_id: int, expires_at: datetime) -> str:
    body = f"{_b36(report_id)}.{_b36(int(expires_at.timestamp()))}"
    return f"{body}.{_mac(key, body)}"


def read_token(key: bytes, token: str, now: datetime) -> TokenCheck:
    """What ``token`` says, if it is ours: VALID, EXPIRED or UNKNOWN (never an exception)."""
    if len(token) > TOKEN_MAX:
        return TokenCheck(TokenState.UNKNOWN)
    match = _TOKEN.fullmatch(token)
    if match is None:
        return TokenCheck(TokenState.UNKNOWN)
    report, expires, mac = match.groups()
    if not hmac.compare_digest(_mac(key, f"{report}.{expires}").encode(), mac.encode()):
        return TokenCheck(TokenState.UNKNOWN)
    report_id = int(report, 36)
    if report_id > _ID_MAX:  # only ever signed by mistake: no row could have it
        return TokenCheck(TokenState.UNKNOWN)
    expires_at = datetime.fromtimestamp(int(expires, 36), UTC)
    if now >= expires_at:
        return TokenCheck(TokenState.EXPIRED, report_id, expires_at)
    return TokenCheck(TokenState.VALID, report_id, expires_at)


def form_binding(form_key: bytes, token: str) -> str:
    """The value the feedback form carries for this token (see the module's doc)."""
    return _mac(form_key, token)


def binding_ok(form_key: bytes, token: str, sent: str | None) -> bool:
    if sent is None or len(sent) > TOKEN_MAX or not sent.isascii():
        return False
    return hmac.compare_digest(form_binding(form_key, token).encode(), sent.encode())


@dataclass(frozen=True)
class FeedbackLinks:
    """Makes the links that completion messages carry (``((feedback_link))``)."""

    key: bytes = field(repr=False)
    public_url: str  # no trailing slash

    def link(self, report_id: int, made_at: datetime) -> str:
        return f"{self.public_url}/feedback/{make_token(self.key, report_id, expiry_for(made_at))}"


# -- the form ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeedbackForm:
    """What the resident sent, read strictly: a rating or why not, a comment or why not."""

    rating: int | None
    comment: str | None  # cleaned; None when empty
    errors: dict[str, str]  # field -> message, in the order the page shows them
    typed_rating: str = ""  # what to re-show
    typed_comment: str = ""

    @property
    def ok(self) -> bool:
        return not self.errors


def clean_comment(text: str) -> str:
    """Line endings made ``\\n``; control characters (NUL among them, which PostgreSQL's text
    cannot hold) and lone surrogates (which no database can encode) dropped, tabs and new
    lines kept; surrounding space trimmed."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    kept = "".join(
        ch for ch in text if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cs")
    )
    return kept.strip()


def read_form(ratings: list[str], comments: list[str]) -> FeedbackForm:
    """The rating (exactly one of '1'..'5') and the optional comment (at most COMMENT_MAX
    characters once cleaned) from the posted form's values."""
    errors: dict[str, str] = {}
    typed_rating = ratings[0] if len(ratings) == 1 else ""
    rating = int(typed_rating) if typed_rating in {str(r) for r in RATINGS} else None
    if rating is None:
        errors["rating"] = RATING_MISSING
        typed_rating = ""
    typed_comment = comments[0] if len(comments) == 1 else "\n".join(comments)
    comment = clean_comment(typed_comment)
    if len(comment) > COMMENT_MAX:
        errors["comment"] = COMMENT_TOO_LONG
    return FeedbackForm(
        rating,
        comment or None,
        errors,
        typed_rating,
        typed_comment[:COMMENT_ECHO_MAX],
    )


def rating_label(rating: int) -> str:
    """'4 – good' (the radio's label)."""
    return f"{rating} – {RATING_WORDS[rating]}"


def rating_note(rating: int) -> str:
    """The history event's note: 'Resident rated the work 4 out of 5 (good)'."""
    return f"Resident rated the work {rating} out of 5 ({RATING_WORDS[rating]})"


def sentence_case(words: str) -> str:
    """Words written to sit inside a sentence, shown on their own: 'dealt with' -> 'Dealt
    with'."""
    return words[:1].upper() + words[1:]


__all__ = [
    "COMMENT_MAX",
    "FEEDBACK_PURPOSE",
    "FORM_FIELD",
    "FORM_PURPOSE",
    "LINK_DAYS",
    "RATINGS",
    "RATING_WORDS",
    "FeedbackForm",
    "FeedbackLinks",
    "TokenCheck",
    "TokenState",
    "binding_ok",
    "clean_comment",
    "expiry_for",
    "form_binding",
    "make_token",
    "rating_label",
    "rating_note",
    "read_form",
    "read_token",
    "sentence_case",
]
