"""Logging an unexpected failure without what caused it: no message, no arguments, no data.

An exception's text can quote whatever reached the code: a resident's phone number in a
note, SQL parameters in a database error, a URL with a token. The log gets the exception's
type, an incident id the person is shown, and where it happened (file, line and function
of the innermost frames), which is enough to find the bug and carries no input.
"""

from __future__ import annotations

import logging
import traceback
import uuid
from pathlib import Path

_FRAMES = 4  # the innermost frames, where the failure is


def where(exc: BaseException) -> str:
    """The innermost frames as ``file:line in function``, outermost first."""
    frames = traceback.extract_tb(exc.__traceback__)[-_FRAMES:]
    return " <- ".join(f"{Path(f.filename).name}:{f.lineno} in {f.name}" for f in reversed(frames))


def log_incident(log: logging.Logger, what: str, exc: BaseException) -> str:
    """Log ``what`` failed with ``exc`` (type and place only); returns the incident id."""
    incident = uuid.uuid4().hex[:12]
    cause = exc.__cause__ or exc.__context__
    caused_by = f" (from {type(cause).__name__})" if cause is not None else ""
    log.error(
        "%s: %s%s, incident %s, at %s",
        what,
        type(exc).__name__,
        caused_by,
        incident,
        where(exc) or "?",
    )
    return incident


# Libraries that log the data they handle at DEBUG: aiosqlite logs every statement with
# its parameters (notes, contact details). Held at INFO even when an operator turns
# debugging on, so no log level puts what people typed in the log.
_DATA_LOGGERS = ("aiosqlite",)


def keep_data_out_of_logs() -> None:
    for name in _DATA_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level < logging.INFO:
            logger.setLevel(logging.INFO)
