"""Screenshots of every web page, per role, at phone and desktop width (run by hand; pytest
does not collect it):

    .venv/bin/python tests/screenshots.py /tmp/shots

The same harness as tests/test_web_browser.py (tests/browser_support.py): Responder on
127.0.0.1 with a fake tile server and tasks seeded through intake, Debian's Chromium driven
by Playwright. Each page is captured whole (full page) at 390x844 and 1280x900, named by its
path, the role and the width: ``tasks__manager__390.png``, ``tasks_RSP-1001__manager__1280.png``,
``feedback__resident__390.png``. A page that does not answer 200 is captured all the same
and named in the summary printed at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
import tempfile
from pathlib import Path

from browser_support import (
    DESKTOP,
    PHONE,
    ROLES,
    Site,
    Visitor,
    chromium,
    start_site,
    unavailable,
    visitor,
)

# Pages whose query makes a state of its own, named for it (else the path names the picture).
STATES = {"/tasks?ward=Northgate&created_from=not-a-date": "tasks_filter-error"}


def shot_name(path: str, role: str, width: int) -> str:
    """``/tasks/RSP-1001`` as manager at 390 -> ``tasks_RSP-1001__manager__390.png``."""
    stem = STATES.get(path) or path.split("?", 1)[0].strip("/").replace("/", "_") or "home"
    stem = re.sub(r"[^A-Za-z0-9_.-]", "-", stem)
    return f"{stem}__{role}__{width}.png"


def pages_for(site: Site) -> dict[str, list[str]]:
    """Each role's pages (the resident's feedback pages are taken separately)."""
    north = site.reference("Northgate", 0)
    south = site.reference("Southmere", 0)
    return {
        "anonymous": ["/auth/sign-in", "/auth/signed-out", "/tab", "/tab/config"],
        "manager": [
            "/tasks",
            "/tasks?ward=Northgate&created_from=not-a-date",
            "/map",
            f"/tasks/{north}",
            f"/tasks/{south}",
            "/performance",
            "/tasks/RSP-999999",
        ],
        "officer": ["/tasks", "/map", f"/tasks/{north}", "/performance"],
        "councillor": ["/tasks", "/map", f"/tasks/{north}", "/wards/Northgate", "/performance"],
        "councillor-south": ["/tasks", "/map", "/wards/Southmere", f"/tasks/{south}"],
    }


async def settle(v: Visitor) -> None:
    """Let the map draw its markers and tiles before the picture is taken."""
    page = v.page
    if await page.locator(".leaflet-container").count():
        with contextlib.suppress(Exception):  # a map without tiles is pictured as it is
            await page.wait_for_selector(".leaflet-tile-loaded", timeout=3000)
    await page.wait_for_load_state("networkidle")


async def capture(v: Visitor, path: str, role: str, out: Path, notes: list[str]) -> list[str]:
    written = []
    for viewport in (PHONE, DESKTOP):
        await v.page.set_viewport_size(viewport)
        response = await v.page.goto(path)
        status = response.status if response is not None else 0
        if status != 200 and viewport is PHONE:
            notes.append(f"{path} as {role}: HTTP {status}")
        await settle(v)
        name = shot_name(path, role, viewport["width"])
        await v.page.screenshot(path=str(out / name), full_page=True)
        written.append(name)
    return written


async def take(out: Path) -> tuple[list[str], list[str]]:
    from playwright.async_api import async_playwright

    written: list[str] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory() as folder:
        site = await start_site(Path(folder))
        try:
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(executable_path=chromium())
                for role, paths in pages_for(site).items():
                    v = await visitor(browser, site, None if role == "anonymous" else ROLES[role])
                    try:
                        for path in paths:
                            written += await capture(v, path, role, out, notes)
                    finally:
                        await v.close()
                written += await resident(browser, site, out, notes)
                await browser.close()
        finally:
            await site.close()
    return written, notes


async def resident(browser, site: Site, out: Path, notes: list[str]) -> list[str]:
    """The completion message's feedback page, and its thank-you page once sent."""
    task = site.tasks["Riverside"][0]
    await site.complete(task, task["assignee"])
    link = await site.feedback_link(task)
    written = []
    for viewport in (PHONE, DESKTOP):
        v = await visitor(browser, site)
        try:
            await v.page.set_viewport_size(viewport)
            response = await v.page.goto(link)
            if response is None or response.status != 200:
                notes.append(f"/feedback/{{token}}: HTTP {response.status if response else 0}")
            name = f"feedback__resident__{viewport['width']}.png"
            await v.page.screenshot(path=str(out / name), full_page=True)
            written.append(name)
            if viewport is DESKTOP:
                continue  # one rating per report: the thank-you page is sent for once
            await v.page.get_by_label(re.compile("good", re.I)).first.check()
            await v.page.get_by_role("button", name="Send feedback").click()
            await v.page.wait_for_load_state("networkidle")
            for thanks_viewport in (PHONE, DESKTOP):
                await v.page.set_viewport_size(thanks_viewport)
                name = f"feedback_thanks__resident__{thanks_viewport['width']}.png"
                await v.page.screenshot(path=str(out / name), full_page=True)
                written.append(name)
        finally:
            await v.close()
    return written


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.split("\n\n")[1] if __doc__ else "", file=sys.stderr)
        return 2
    if (reason := unavailable()) is not None:
        print(f"cannot take screenshots: {reason}", file=sys.stderr)
        return 1
    out = Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    written, notes = asyncio.run(take(out))
    for name in written:
        print(out / name)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
