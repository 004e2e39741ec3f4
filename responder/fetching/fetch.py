"""Fetching one file through the guard: hop by hop, every redirect re-checked, capped.

``GuardedClient.get(url, check, ...)`` asks ``check`` (a policy's ``check``, see
``responder.fetching.guard``) about the URL, makes that one request without following
redirects, and asks ``check`` again about each ``Location`` (at most ``max_redirects``
of them). A checked hop goes out through a session whose resolver refuses internal
addresses on every connection (no DNS cache) and which ignores proxy settings from the
environment (a proxy would resolve the name instead of us); only a hop the policy exempts
(a development origin, a local Bot Connector) goes through the plain session.

The body is read as a stream and dropped as soon as it passes ``max_bytes``. Whatever a
file claims to be, ``sniff`` says what its first bytes are.

Failures are ``FetchFailed``s, whose ``reason`` is safe to log (no URL, no personal data)
and whose ``transient`` says whether trying again later could help (a timeout, a refused
connection, 408, 429 and 5xx answers) or not (a refused URL or address, too big, too many
redirects, any other answer).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import aiohttp
from yarl import URL

from responder.fetching.guard import AddressRefused, GuardedResolver, Hop, URLRefused
from responder.retry_after import retry_after

MAX_REDIRECTS = 3
CHUNK = 64 * 1024
REDIRECTS = frozenset({301, 302, 303, 307, 308})
# Answers worth asking again: the other side is busy or briefly broken.
TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
# The longest Retry-After honoured (seconds): a host asking for more is retried sooner.


class FetchFailed(Exception):
    """A file that could not be fetched; ``reason`` is safe to log."""

    transient = False

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Refused(FetchFailed):
    """The guard refused a hop: its URL, or the addresses its host resolved to."""

    def __init__(self, reason: str, host: str | None = None, redirected: bool = False) -> None:
        super().__init__(reason)
        self.host = host  # the refused hop's host, when it has one
        self.redirected = redirected  # refused on a redirect, not the URL as given


def _host(url: str | URL) -> str | None:
    try:
        return (url if isinstance(url, URL) else URL(url)).raw_host or None  # ASCII (IDNA)
    except (ValueError, TypeError):
        return None


class TooManyRedirects(FetchFailed):
    def __init__(self, limit: int) -> None:
        super().__init__(f"more than {limit} redirects")


class TooBig(FetchFailed):
    def __init__(self, limit: int) -> None:
        super().__init__(f"over {limit} bytes")
        self.limit = limit


class Answered(FetchFailed):
    """The host answered something other than the file (and no redirect)."""

    def __init__(self, status: int, retry_after: float | None = None) -> None:
        super().__init__(f"answered {status}")
        self.status = status
        self.retry_after = retry_after
        self.transient = status in TRANSIENT_STATUSES


class Unreachable(FetchFailed):
    """No answer: the connection failed, broke or timed out (``reason``: the error type)."""

    transient = True


@dataclass(frozen=True)
class Fetched:
    data: bytes
    claimed_type: str  # what the host said it is: never trusted (see ``sniff``)
    hops: int  # requests made (1: no redirect)


def sniff(data: bytes) -> str | None:
    """The image type the bytes really are (JPEG, PNG, GIF, WebP), or None."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


Check = Callable[[str | URL], Hop]
Headers = Callable[[Hop], Awaitable[Mapping[str, str]]]


class GuardedClient:
    """The two sessions a guarded fetch needs, and the fetch itself (module docstring)."""

    def __init__(
        self,
        plain: aiohttp.ClientSession | None = None,
        timeout: aiohttp.ClientTimeout | None = None,
    ) -> None:
        self._resolver = GuardedResolver()
        self.guarded = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(resolver=self._resolver, use_dns_cache=False),
            timeout=timeout or aiohttp.ClientTimeout(total=30),
            trust_env=False,
        )
        self._own_plain = plain is None
        # For exempt hops only (development origins, a local Bot Connector).
        self.plain = plain or aiohttp.ClientSession(
            timeout=timeout or aiohttp.ClientTimeout(total=30), trust_env=False
        )

    async def close(self) -> None:
        await self.guarded.close()
        await self._resolver.close()  # the connector does not close a resolver it was given
        if self._own_plain:
            await self.plain.close()

    async def get(
        self,
        url: str | URL,
        check: Check,
        *,
        max_bytes: int,
        max_redirects: int = MAX_REDIRECTS,
        headers: Headers | None = None,
    ) -> Fetched:
        """The file at ``url``, or a ``FetchFailed`` saying why not."""
        target: str | URL = url
        for hop_number in range(1, max_redirects + 2):
            try:
                hop = check(target)
            except URLRefused as exc:
                raise Refused(exc.reason, _host(target), hop_number > 1) from None
            sent = dict(await headers(hop)) if headers is not None else {}
            session = self.guarded if hop.guarded else self.plain
            try:
                async with session.get(hop.url, headers=sent, allow_redirects=False) as resp:
                    if resp.status in REDIRECTS and "Location" in resp.headers:
                        try:
                            target = hop.url.join(URL(resp.headers["Location"]))
                        except ValueError:
                            raise Refused("malformed redirect", redirected=True) from None
                        continue
                    if resp.status != 200:
                        raise Answered(resp.status, retry_after(resp.headers.get("Retry-After")))
                    if (resp.content_length or 0) > max_bytes:
                        raise TooBig(max_bytes)
                    data = bytearray()
                    async for chunk in resp.content.iter_chunked(CHUNK):
                        data += chunk
                        if len(data) > max_bytes:
                            raise TooBig(max_bytes)
                    return Fetched(bytes(data), resp.content_type or "", hop_number)
            except aiohttp.ClientConnectorError as exc:
                if isinstance(exc.os_error, AddressRefused):  # GuardedResolver, after DNS
                    raise Refused(exc.os_error.reason, hop.url.raw_host, hop_number > 1) from None
                raise Unreachable(type(exc).__name__) from None
            except aiohttp.InvalidURL:  # passed the guard, yet aiohttp cannot request it
                raise Refused("malformed URL", hop.url.raw_host, hop_number > 1) from None
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise Unreachable(type(exc).__name__) from None
        raise TooManyRedirects(max_redirects)
