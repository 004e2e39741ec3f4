"""The web pages in a real browser: Responder on a TCP port of 127.0.0.1, driven by
Playwright in Debian's Chromium (``/usr/bin/chromium``, or ``$CHROMIUM``; nothing here
downloads a browser), with axe-core from tests/render/node_modules.

Used by tests/test_web_browser.py and tests/screenshots.py:

- ``start_site(folder)``: the real app (``build_app``, background work on, a SQLite file)
  in an aiohttp ``AppRunner`` on 127.0.0.1, a council file whose ``map.tiles`` points at a
  fake tile server on 127.0.0.1 (a small PNG for every tile), and tasks seeded through the
  intake API (``POST /api/tasks``), two in each ward.
- ``signed_in(browser, site, person)``: a fresh browser context signed in through
  ``/auth/dev?as=<person>``, with a ``Watch`` on its page.
- ``Watch``: console errors, uncaught page errors and Content-Security-Policy violations
  (the ``securitypolicyviolation`` event, recorded by an init script, and Chromium's console
  report of a blocked resource).
- ``Audit.check(page, label)``: axe-core (WCAG 2.0/2.1 A and AA) at 390 px and 1280 px
  wide, horizontal overflow at 390 px, and the Watch's problems, all written down by page
  so one run lists every failure.

axe-core is evaluated in the page through the DevTools protocol (``page.evaluate`` of its
source): that is not subject to the page's CSP, so the same context that checks for CSP
violations runs axe, and nothing bypasses the policy.
"""

from __future__ import annotations

import os
import socket
import struct
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy import select
from support import INTAKE_SECRET, ROOT, write_council

from responder.app import build_app
from responder.settings import Settings

AXE = ROOT / "tests" / "render" / "node_modules" / "axe-core" / "axe.min.js"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
WIDTHS = (PHONE, DESKTOP)
# Who signs in as what (the example council's people).
ROLES = {
    "manager": "alice",
    "officer": "bob",
    "councillor": "cllr-hughes",  # Northgate
    "councillor-south": "cllr-patel",  # Southmere and Riverside
}
# A point well inside each ward of examples/wards.geojson (0.02-degree squares).
WARD_POINTS = {
    "Northgate": (51.9100, 0.8900),
    "Eastwood": (51.9100, 0.9100),
    "Southmere": (51.8900, 0.8900),
    "Riverside": (51.8900, 0.9100),
}
SECRET_KEY = "browser-tests-secret-key-0123456789abcdef"


def chromium() -> str:
    return os.environ.get("CHROMIUM", "/usr/bin/chromium")


def unavailable() -> str | None:
    """Why this machine cannot run the browser tests (a skip's reason), or None.

    RESPONDER_RENDER=off says this machine renders nothing (as for the cards); no Chromium
    is a skip too. CI has both, and ``npm ci --prefix tests/render`` for axe-core."""
    if os.environ.get("RESPONDER_RENDER") == "off":
        return "RESPONDER_RENDER=off: no browser on this machine"
    if not Path(chromium()).exists():
        return f"no Chromium at {chromium()} (apt-get install -y chromium)"
    return None


def axe_missing() -> str | None:
    if not AXE.exists():
        return f"no {AXE.relative_to(ROOT)}: npm ci --prefix tests/render"
    return None


# --- A tile server on 127.0.0.1 -------------------------------------------------------


def png(width: int = 256, height: int = 256, rgb: tuple[int, int, int] = (226, 232, 222)) -> bytes:
    """A plain PNG of one colour (what a map tile looks like to the page)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + bytes(rgb) * width
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


TILE = png()


class TileServer:
    """Answers every ``/{z}/{x}/{y}.png`` with the same tile, and counts what was asked."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.runner: web.AppRunner | None = None
        self.origin = ""

    async def tile(self, request: web.Request) -> web.Response:
        self.requests.append(request.path)
        return web.Response(body=TILE, content_type="image/png")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/{z}/{x}/{y}.png", self.tile)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        sock = _listening_socket()
        await web.SockSite(self.runner, sock).start()
        self.origin = f"http://127.0.0.1:{sock.getsockname()[1]}"

    async def close(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


def _listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


# --- The site ---------------------------------------------------------------------------


@dataclass
class Site:
    base: str
    app: web.Application
    runner: web.AppRunner
    tiles: TileServer
    folder: Path
    # What intake answered for each seeded task, by ward (two each: a street-cleansing
    # task and a grounds one), in the order posted.
    tasks: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return self.base + path

    def reference(self, ward: str, index: int = 0) -> str:
        return self.tasks[ward][index]["reference"]

    async def post_task(self, body: dict[str, Any]) -> dict[str, Any]:
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                self.url("/api/tasks"),
                json=body,
                headers={"Authorization": f"Bearer {INTAKE_SECRET}"},
            ) as response,
        ):
            answer = await response.json()
            assert response.status == 201, answer
            return answer

    async def complete(self, task: dict[str, Any], officer: str) -> None:
        """``officer`` starts and finishes ``task`` (what the card's buttons do)."""
        from responder.commands.act import ActionRequest, act
        from responder.domain.lifecycle import Action
        from responder.web import db_key, domain_key

        db, domain = self.app[db_key], self.app[domain_key]
        steps = (
            (Action.ACCEPT, {}),
            (Action.START, {}),
            (Action.COMPLETE, {"outcome": "resolved"}),
        )
        for action, extra in steps:
            done = await act(
                db,
                domain,
                ActionRequest(task["id"], action, officer, None, **extra),
                datetime.now(UTC),
            )
            assert done.applied, done.notice

    async def feedback_link(self, task: dict[str, Any]) -> str:
        """The resident's link to rate ``task``'s work, as the completion message has it."""
        from responder.domain.feedback import FEEDBACK_PURPOSE, FeedbackLinks
        from responder.store.schema import reports
        from responder.web import db_key
        from responder.web.session import derive_key

        async with self.app[db_key].read() as conn:
            report_id = (
                await conn.execute(select(reports.c.id).where(reports.c.task_id == task["id"]))
            ).scalar_one()
        links = FeedbackLinks(derive_key(SECRET_KEY, FEEDBACK_PURPOSE), self.base)
        return links.link(report_id, datetime.now(UTC))

    async def close(self) -> None:
        await self.runner.cleanup()
        await self.tiles.close()


def report(type_: str, ward: str, n: int, **extra: Any) -> dict[str, Any]:
    """An intake report at a point inside ``ward`` (the n-th, ~150 m from the others)."""
    lat, lon = WARD_POINTS[ward]
    body = {
        "type": type_,
        "description": f"{type_.replace('-', ' ').capitalize()} reported near number {n + 1}",
        "location": {
            "lat": lat + (n % 3) * 0.0014,
            "lon": lon + (n // 3) * 0.0014,
            "address": f"{n + 1} {ward} Road",
        },
        "reporter": {"name": "A Resident", "email": f"resident{n}@example.com"},
        "source": "web-form",
    }
    body.update(extra)
    return body


def _council_file(folder: Path, change: Callable[[dict], None]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return write_council(folder, change)


async def start_site(folder: Path, change: Callable[[dict], None] | None = None) -> Site:
    """Responder on 127.0.0.1 with its tile server, and two tasks in each ward."""
    tiles = TileServer()
    await tiles.start()
    sock = _listening_socket()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"

    def council(data: dict) -> None:
        data["map"] = {
            "tiles": tiles.origin + "/{z}/{x}/{y}.png",
            "attribution": "Test tiles",
            "min_zoom": 7,
            "max_zoom": 19,
        }
        data["council"]["public_url"] = base
        if change is not None:
            change(data)

    settings = Settings(
        database_url=f"sqlite:///{folder / 'responder.db'}",
        config_path=_council_file(folder, council),
        intake_keys={"forms": INTAKE_SECRET},
        background=True,
        scheduler=False,
        public_url=base,
        secret_key=SECRET_KEY,
        # The tile server is on this machine: let a proxy that guards its fetches reach it.
        dev_attachment_origins=(tiles.origin,),
    )
    app = build_app(settings)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    site = Site(base, app, runner, tiles, folder)
    n = 0
    for ward in WARD_POINTS:
        for type_ in ("fly-tipping", "grass-cutting"):
            site.tasks.setdefault(ward, []).append(await site.post_task(report(type_, ward, n)))
            n += 1
    return site


# --- Watching a page -------------------------------------------------------------------

# Recorded from the first script of every document, before the page's own.
CSP_LISTENER = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__cspViolations.push(e.violatedDirective + ' blocked ' + (e.blockedURI || 'inline')
    + ' at ' + (e.sourceFile || document.location.pathname) + ':' + e.lineNumber);
});
"""


class Watch:
    """What went wrong in a page's console since the last ``take()``."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.errors: list[str] = []
        self.favicon_missing = False
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))

    def _console(self, message: Any) -> None:
        if message.type not in ("error", "assert"):
            return
        where = (message.location or {}).get("url", "")
        if where.endswith("/favicon.ico"):
            # The browser's own request, not the page's: test_signed_out_and_error_pages
            # checks the icon once, so every page does not fail for it.
            self.favicon_missing = True
            return
        self.errors.append(f"console {message.type}: {message.text} ({where})")

    async def take(self, expected_status_url: str | None = None) -> list[str]:
        """The errors seen, then forgotten. A page that is itself an error (a 404 page)
        makes Chromium log the failed load of the document: ``expected_status_url``
        excuses that one line."""
        seen, self.errors = self.errors, []
        try:
            csp = await self.page.evaluate("() => (window.__cspViolations || []).splice(0)")
        except Exception as error:  # the page navigated away meanwhile
            csp = [f"(could not read CSP violations: {error})"]
        problems = [f"CSP violation: {v}" for v in csp]
        for line in seen:
            if (
                expected_status_url is not None
                and "Failed to load resource" in line
                and line.endswith(f"({expected_status_url})")
            ):
                continue
            problems.append(line)
        return _fold(problems)


def _fold(lines: list[str], keep: int = 2) -> list[str]:
    """The same error for many resources (say, every map tile) said twice, then counted."""
    out: list[str] = []
    seen: dict[str, int] = {}
    for line in lines:
        key = line.rsplit(" (", 1)[0]
        seen[key] = seen.get(key, 0) + 1
        if seen[key] <= keep:
            out.append(line)
    out.extend(f"... and {n - keep} more: {key}" for key, n in seen.items() if n > keep)
    return out


async def new_context(browser: Any, site: Site, viewport: dict | None = None) -> Any:
    context = await browser.new_context(
        base_url=site.base, viewport=viewport or PHONE, locale="en-GB", timezone_id="UTC"
    )
    await context.add_init_script(CSP_LISTENER)
    return context


@dataclass
class Visitor:
    """A browser context (signed in, or not) and its one page, watched."""

    context: Any
    page: Any
    watch: Watch
    person: str | None

    async def close(self) -> None:
        await self.context.close()


async def another_tab(v: Visitor) -> Visitor:
    """A second page in the same context (the same session), watched."""
    page = await v.context.new_page()
    return Visitor(v.context, page, Watch(page), v.person)


async def visitor(browser: Any, site: Site, person: str | None = None) -> Visitor:
    """A fresh context; signed in as ``person`` through the development sign-in if given."""
    context = await new_context(browser, site)
    page = await context.new_page()
    watch = Watch(page)
    if person is not None:
        response = await page.goto(f"/auth/dev?as={person}&next=/auth/signed-out")
        assert response is not None and response.ok, f"sign-in as {person} failed"
        await watch.take()
    return Visitor(context, page, watch, person)


# --- Checking a page ---------------------------------------------------------------------

AXE_RUN = """async (tags) => {
  const result = await axe.run(document, {runOnly: {type: 'tag', values: tags}});
  return result.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map((n) => ({target: n.target.join(' '), html: n.html.slice(0, 160),
                                summary: (n.failureSummary || '').split('\\n').slice(1, 3)
                                  .join(' ').trim()}))
  }));
}"""

# Elements sticking out past the right edge, not inside something that scrolls sideways.
OVERFLOW = """() => {
  const width = document.documentElement.clientWidth;
  const out = [];
  for (const el of document.body.querySelectorAll('*')) {
    const box = el.getBoundingClientRect();
    if (box.width === 0 || box.right <= width + 0.5) continue;
    let scroller = el.parentElement, inside = false;
    while (scroller && scroller !== document.body) {
      const o = getComputedStyle(scroller).overflowX;
      if (o === 'auto' || o === 'scroll' || o === 'hidden') { inside = true; break; }
      scroller = scroller.parentElement;
    }
    if (inside) continue;
    const name = el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
      + (el.classList.length ? '.' + [...el.classList].join('.') : '');
    out.push(name + ' right=' + Math.round(box.right));
    if (out.length >= 5) break;
  }
  return {scrollWidth: document.documentElement.scrollWidth, width: width, culprits: out};
}"""


def axe_source() -> str:
    return AXE.read_text()


async def axe(page: Any) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.1 A/AA violations on the page as it is now."""
    if not await page.evaluate("() => typeof window.axe !== 'undefined'"):
        await page.evaluate(axe_source())
    return await page.evaluate(AXE_RUN, WCAG_TAGS)


def describe(violations: list[dict[str, Any]]) -> list[str]:
    lines = []
    for v in violations:
        for node in v["nodes"]:
            lines.append(
                f"axe {v['id']} ({v['impact']}): {v['help']} -- {node['target']} "
                f"{node['html']!r} {node['summary']}"
            )
    return lines


class Audit:
    """Problems by page and state, so one run reports every page's failures at once."""

    def __init__(self) -> None:
        self.problems: dict[str, list[str]] = {}
        self.checked: list[str] = []
        self.seconds: dict[str, float] = {}  # how long each check took (to keep them quick)

    def add(self, label: str, lines: list[str]) -> None:
        if lines:
            self.problems.setdefault(label, []).extend(lines)

    def expect(self, label: str, ok: bool, what: str) -> None:
        if not ok:
            self.add(label, [what])

    async def check(
        self,
        visitor: Visitor,
        label: str,
        *,
        error_page: bool = False,
        expected_status_url: str | None = None,
        settle: Callable[[Any], Any] | None = None,
    ) -> None:
        """axe at each width, overflow at 390 px, and no console errors or CSP violations.

        ``settle(page)`` is awaited after each resize (e.g. wait for the map's markers).
        ``error_page``: the page itself answered 4xx/5xx, as meant; ``expected_status_url``:
        a request of the page's own (an htmx form) did, and Chromium's log of it is no error."""
        page = visitor.page
        self.checked.append(label)
        started = time.monotonic()
        for viewport in WIDTHS:
            await page.set_viewport_size(viewport)
            if settle is not None:
                await settle(page)
            width = viewport["width"]
            self.add(f"{label} @{width}", describe(await axe(page)))
            if width == PHONE["width"]:
                o = await page.evaluate(OVERFLOW)
                if o["scrollWidth"] > PHONE["width"]:
                    self.add(
                        f"{label} @{width}",
                        [
                            f"page scrolls sideways: scrollWidth {o['scrollWidth']} > 390; "
                            f"sticking out: {', '.join(o['culprits']) or '?'}"
                        ],
                    )
        excused = expected_status_url or (page.url if error_page else None)
        self.add(label, await visitor.watch.take(excused))
        await page.set_viewport_size(PHONE)
        self.seconds[label] = time.monotonic() - started

    def timing(self) -> str:
        return "; ".join(f"{label} {s:.1f}s" for label, s in self.seconds.items())

    def report(self) -> str:
        lines = [f"{len(self.problems)} of {len(self.checked)} page states have problems:"]
        for label, problems in self.problems.items():
            lines.append(f"- {label}")
            lines.extend(f"    {p}" for p in problems)
        return "\n".join(lines)
