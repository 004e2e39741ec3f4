"""A photo host on 127.0.0.1 for the photos sources link to, and an "internal" service.

``FakePhotoHost`` stands in for where FixMyStreet's ``media_url``s and a forms package's
upload links point: ``GET /files/{name}`` answers what it holds, and misbehaves on cue:

- ``photo.jpg``, ``photo.png``: real pictures, as far as their first bytes tell;
- ``page.html``: an HTML page that claims to be ``image/jpeg``;
- ``huge.jpg``: a JPEG of more than 10 MB, streamed with no Content-Length (the size shows
  only while reading); ``huge-declared.jpg`` says its size up front;
- ``slow.jpg``: sends its first bytes, then a byte every ``slow_seconds``, forever;
- ``held.jpg``: answers only once ``release()`` is called (a host slower than intake);
- ``missing.jpg`` 404, ``gone.jpg`` 410, ``error.jpg`` 500, ``busy.jpg`` 429 with
  ``Retry-After: 1``;
- any name in ``redirects``: a 302 to that URL (itself, another port, 169.254.169.254,
  a ``file://`` URL...);
- any name in ``scripted``: the statuses queued there first (429 with ``Retry-After``),
  then what it holds.

It records every request (``requests``, by name) and every connection made to it
(``connections``, counted before any byte is read), so a test can show what was never
fetched.

``InternalService`` is something on 127.0.0.1 that must never be reached: it would answer
any request with a JPEG, so a photo stored from it could not go unnoticed, and counts
connections and requests.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field

from aiohttp import web

# Real pictures as far as anyone can tell from their first bytes (all that is read).
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
JPEG += bytes(range(256)) * 8
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4
HTML = b"<!doctype html><title>Log in</title><p>not a picture</p>"
HUGE = 10 * 1024 * 1024 + 1  # one byte over the cap
STATUSES = {"missing.jpg": 404, "gone.jpg": 410, "error.jpg": 500, "busy.jpg": 429}


class _Counted:
    """An aiohttp low-level server on 127.0.0.1 that counts connections as they come."""

    def __init__(self, handler) -> None:
        self._handler = web.Server(handler)
        self.connections = 0
        self.port = 0

    async def start(self) -> None:
        def protocol():
            self.connections += 1  # before any byte is read: TLS or not, it was reached
            return self._handler()

        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(protocol, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        self._server.close()
        await self._server.wait_closed()
        await self._handler.shutdown(0.2)  # keep-alive connections need not linger


@dataclass
class FakePhotoHost:
    files: dict[str, tuple[str, bytes]] = field(
        default_factory=lambda: {
            "photo.jpg": ("image/jpeg", JPEG),
            "photo.png": ("image/png", PNG),
            "held.jpg": ("image/jpeg", JPEG),
            "page.html": ("image/jpeg", HTML),  # says it is a photo; it is not
        }
    )
    redirects: dict[str, str] = field(default_factory=dict)
    scripted: dict[str, deque[int]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    slow_seconds: float = 0.5
    retry_after: str = "1"
    _server: _Counted | None = None
    _held: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        assert self._server is not None, "start() it first"
        return f"http://127.0.0.1:{self._server.port}"

    @property
    def connections(self) -> int:
        return self._server.connections if self._server else 0

    def link(self, name: str) -> str:
        return f"{self.url}/files/{name}"

    def release(self) -> None:
        self._held.set()

    async def start(self) -> None:
        self._server = _Counted(self._handle)
        await self._server.start()

    async def close(self) -> None:
        self._held.set()
        if self._server is not None:
            await self._server.close()

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        path = request.path
        if not path.startswith("/files/"):
            return web.Response(status=404)
        name = path.removeprefix("/files/")
        self.requests.append(name)
        if name in self.redirects:
            return web.Response(status=302, headers={"Location": self.redirects[name]})
        queued = self.scripted.get(name)
        if queued:
            return self._status(queued.popleft())
        if name in STATUSES:
            return self._status(STATUSES[name])
        if name == "huge.jpg":
            return await self._stream(request, JPEG[:20] + bytes(HUGE), chunked=True)
        if name == "huge-declared.jpg":
            return web.Response(body=JPEG[:20] + bytes(HUGE), content_type="image/jpeg")
        if name == "slow.jpg":
            return await self._slow(request)
        if name == "held.jpg":
            await self._held.wait()
        if name not in self.files:
            return web.Response(status=404)
        content_type, data = self.files[name]
        return web.Response(body=data, content_type=content_type)

    def _status(self, status: int) -> web.Response:
        headers = {"Retry-After": self.retry_after} if status in (429, 503) else {}
        return web.Response(status=status, text="not now", headers=headers)

    async def _stream(
        self, request: web.BaseRequest, data: bytes, *, chunked: bool
    ) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.content_type = "image/jpeg"
        if chunked:
            resp.enable_chunked_encoding()
        await resp.prepare(request)
        try:
            for i in range(0, len(data), 256 * 1024):
                await resp.write(data[i : i + 256 * 1024])
            await resp.write_eof()
        except ConnectionError:
            pass  # the fetcher stopped reading: that is the point
        return resp

    async def _slow(self, request: web.BaseRequest) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.content_type = "image/jpeg"
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        try:
            await resp.write(JPEG[:20])
            while True:
                await asyncio.sleep(self.slow_seconds)
                await resp.write(b"\x00")
        except ConnectionError:
            pass  # the fetcher gave up on it
        return resp


@dataclass
class InternalService:
    """Something internal on 127.0.0.1 (see the module docstring)."""

    requests: list[str] = field(default_factory=list)
    _server: _Counted | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.port

    @property
    def connections(self) -> int:
        return self._server.connections if self._server else 0

    async def start(self) -> None:
        self._server = _Counted(self._handle)
        await self._server.start()

    async def close(self) -> None:
        if self._server is not None:
            await self._server.close()

    async def _handle(self, request: web.BaseRequest) -> web.Response:
        self.requests.append(request.path_qs)
        return web.Response(body=JPEG, content_type="image/jpeg")
