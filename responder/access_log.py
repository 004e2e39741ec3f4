"""The HTTP access log: one line a request, without what the request carries.

aiohttp's default line is the whole request line, query string included. Open311 clients
send their ``api_key`` in the query string (FixMyStreet does, on every GET of
``servicerequestupdates``), and a photo's URL token is what keeps it private, so the
default line would write secrets to the log. This one writes the path without its query,
and cuts the secret segment of the paths that have one.
"""

from __future__ import annotations

import re

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse

# Paths whose last segment is a bearer secret: the segment is logged as "…".
_SECRET_SEGMENT = re.compile(r"^(/api/photos/|/feedback/)[^/]+")


def loggable_path(path: str) -> str:
    """``path`` with its secret segment cut (the query string is never passed in)."""
    return _SECRET_SEGMENT.sub(r"\1…", path)


class AccessLogger(AbstractAccessLogger):
    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        self.logger.info(
            '%s "%s %s" %s %s %.1f ms',
            request.remote,
            request.method,
            loggable_path(request.path),  # .path has no query string
            response.status,
            response.body_length,
            time * 1000,
        )
