"""The web pages in headless Chromium (Debian's, driven by Playwright; tests/browser_support.py):
every page and state as each role sees it, at 390 px and 1280 px wide, with axe-core's
WCAG 2.1 A/AA rules, no console errors, no Content-Security-Policy violations and no
sideways scrolling on a phone; the work list and the task page by keyboard alone; a
councillor kept to their wards whatever the URL.

One browser and one running Responder (a SQLite file, tasks seeded through intake, two in
each ward) serve the whole module; each role gets a fresh browser context. Each test goes
through several pages and reports every page's problems at once (``Audit``).
RESPONDER_RENDER=off, or no Chromium at /usr/bin/chromium ($CHROMIUM), skips the module with
the reason.
"""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest
import pytest_asyncio
from browser_support import (
    ROLES,
    Audit,
    Site,
    Visitor,
    another_tab,
    axe_missing,
    chromium,
    report,
    start_site,
    unavailable,
    visitor,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

TASK_LINK = 'main a[href^="/tasks/RSP-"]'
# Whether the focused element shows it: an outline or a box shadow (app.css draws both).
FOCUS_VISIBLE = """() => {
  const el = document.activeElement, style = getComputedStyle(el);
  const outline = style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0;
  return outline || style.boxShadow !== 'none';
}"""


@pytest.fixture(scope="module")
def _browser_machine() -> None:
    if (reason := unavailable()) is not None:
        pytest.skip(reason)
    if (missing := axe_missing()) is not None:
        pytest.fail(f"cannot check the pages: {missing} (RESPONDER_RENDER=off skips)")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser(_browser_machine):
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium())
        yield browser
        await browser.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def site(_browser_machine, tmp_path_factory):
    site = await start_site(tmp_path_factory.mktemp("browser"))
    yield site
    await site.close()


async def as_role(browser, site: Site, role: str | None) -> Visitor:
    return await visitor(browser, site, ROLES[role] if role else None)


async def goto(v: Visitor, path: str, status: int = 200) -> None:
    response = await v.page.goto(path)
    assert response is not None, path
    assert response.status == status, f"{path}: {response.status}, not {status}"


async def task_refs(page) -> set[str]:
    """The task references linked from the page's main content."""
    hrefs = await page.eval_on_selector_all(TASK_LINK, "els => els.map(e => e.pathname)")
    return {h.rsplit("/", 1)[1] for h in hrefs if re.fullmatch(r"/tasks/RSP-\d+", h)}


def refs(site: Site, *wards: str) -> set[str]:
    return {t["reference"] for w in wards for t in site.tasks[w]}


async def test_sign_in_signed_out_and_error_pages(browser, site: Site):
    """The pages anyone may reach (sign-in, signed out, an error page) and the one refusal
    (404) as a signed-in manager sees it."""
    audit = Audit()
    anonymous = await as_role(browser, site, None)
    try:
        await goto(anonymous, "/auth/sign-in?next=/tasks")
        # Outside production the development sign-in is offered, with a labelled choice.
        await anonymous.page.get_by_label("Person").select_option("alice")
        await audit.check(anonymous, "/auth/sign-in (anonymous)")

        # Sign-in with Microsoft asked for where it is not set up: a page saying so.
        await goto(anonymous, "/auth/start?next=/tasks", 503)
        assert "not set up" in await anonymous.page.locator("h1").inner_text()
        await audit.check(anonymous, "/auth/start not set up (anonymous)", error_page=True)

        await goto(anonymous, "/auth/signed-out")
        await audit.check(anonymous, "/auth/signed-out (anonymous)")

        # A page for signed-in people sends the visitor to sign in, and back afterwards.
        await goto(anonymous, "/tasks")
        assert urlsplit(anonymous.page.url).path == "/auth/sign-in"
        assert parse_qs(urlsplit(anonymous.page.url).query)["next"] == ["/tasks"]

        await goto(anonymous, "/auth/dev?as=nobody", 404)
        assert "No such person" in await anonymous.page.title()
        await audit.check(anonymous, "error page (anonymous)", error_page=True)

        # The development sign-in's form, as a person would use it: back to where they were.
        await goto(anonymous, "/auth/sign-in?next=/performance")
        await anonymous.page.get_by_label("Person").select_option("frank")
        await anonymous.page.get_by_role("button", name="Sign in as this person").click()
        await anonymous.page.wait_for_url("**/performance")
        assert "Frank Manager" in await anonymous.page.locator("header").inner_text()
    finally:
        await anonymous.close()

    manager = await as_role(browser, site, "manager")
    try:
        await goto(manager, "/tasks/RSP-999999", 404)
        assert "Page not found" in await manager.page.title()
        # Signed in, the layout has the navigation and the sign-out form.
        assert await manager.page.get_by_role("button", name="Sign out").count() == 1
        await audit.check(manager, "404 /tasks/RSP-999999 (manager)", error_page=True)
    finally:
        await manager.close()
    print(audit.timing())
    assert not audit.problems, audit.report()


async def test_teams_tab_pages_outside_teams(browser, site: Site):
    """/tab and /tab/config opened in a plain browser: no console errors or CSP violations
    (the Teams library's own requests included), and the way on for a person outside Teams."""
    audit = Audit()
    anonymous = await as_role(browser, site, None)
    try:
        # The Teams tab outside Teams: it says Teams could not sign the visitor in, and
        # offers the ordinary sign-in; its configuration page (a team tab's) is a form.
        await goto(anonymous, "/tab?next=/tasks")
        await anonymous.page.locator("#tab-failed").wait_for(timeout=10000)
        link = anonymous.page.get_by_role("link", name="Sign in in a new window")
        assert await link.get_attribute("href") == "/auth/sign-in?next=/tasks"
        await audit.check(anonymous, "/tab outside Teams (anonymous)")
        await goto(anonymous, "/tab/config")
        assert await anonymous.page.get_by_label("The map").count() == 1
        await audit.check(anonymous, "/tab/config outside Teams (anonymous)")
    finally:
        await anonymous.close()
    print(audit.timing())
    assert not audit.problems, audit.report()


async def test_no_page_leaves_the_browser_asking_for_a_missing_icon(browser, site: Site):
    """Browsers ask every site for /favicon.ico unless the page names an icon: a 404 there is
    a console error on each first visit."""
    anonymous = await as_role(browser, site, None)
    try:
        await goto(anonymous, "/auth/signed-out")
        names_icon = await anonymous.page.locator('head link[rel~="icon"]').count() > 0
        served = (await anonymous.context.request.get("/favicon.ico")).status
        assert names_icon or served == 200, (
            f"no icon: the layout names none and /favicon.ico is a {served}, so the browser's "
            "own request for it logs an error on every first visit; base.html could name one, "
            'e.g. <link rel="icon" href="data:,">, or the site serve /favicon.ico'
        )
    finally:
        await anonymous.close()


async def test_work_list_filters_and_map_for_each_role(browser, site: Site):
    """/tasks plain, filtered through its form, updated in place by htmx, and with a filter
    it cannot read; /map with Leaflet's markers from /map/data and its list alternative."""
    audit = Audit()
    manager = await as_role(browser, site, "manager")
    try:
        page = manager.page
        await goto(manager, "/tasks")
        # alice manages sc-north and sc-south: the street-cleansing task of every ward.
        shown = await task_refs(page)
        assert {site.reference(w, 0) for w in site.tasks} <= shown, shown
        await audit.check(manager, "/tasks (manager)")

        # Filters through the form (htmx swaps the results in; the page is not reloaded,
        # as a mark left on window shows, and the address follows the filters).
        await page.evaluate("() => { window.__stayed = true; }")
        # On a phone the form folds behind a button (it would fill the first screen),
        # open by itself once a filter is in use.
        toggle = page.get_by_role("button", name="Show filters")
        assert await toggle.get_attribute("aria-expanded") == "false"
        assert not await page.get_by_label("Ward", exact=True).is_visible()
        await toggle.click()
        shown_toggle = page.get_by_role("button", name="Hide filters")
        assert await shown_toggle.get_attribute("aria-expanded") == "true"
        await page.get_by_label("Ward", exact=True).select_option("Northgate")
        await page.get_by_role("button", name="Apply filters").click()
        await page.wait_for_url(re.compile(r"ward=Northgate"))
        await page.wait_for_function(
            "n => document.querySelectorAll('main a[href^=\"/tasks/RSP-\"]').length === n",
            arg=1,
        )
        assert await task_refs(page) == {site.reference("Northgate", 0)}
        audit.expect(
            "/tasks htmx update",
            await page.evaluate("() => window.__stayed === true"),
            "applying a filter reloaded the whole page (no htmx partial update)",
        )
        await audit.check(manager, "/tasks after an htmx update (manager)")

        # The same address loaded afresh (a bookmark): the same tasks, the form as it was.
        await page.reload()
        assert await task_refs(page) == {site.reference("Northgate", 0)}
        assert await page.get_by_label("Ward", exact=True).input_value() == "Northgate"
        await audit.check(manager, "/tasks?ward=Northgate (manager)")

        # A filter it cannot read: said on the page, nothing listed as if it were read.
        await goto(manager, "/tasks?created_from=not-a-date", 400)
        summary = page.locator(".error-summary")
        assert re.search(r"date", await summary.inner_text(), re.I)
        assert await task_refs(page) == set()
        await audit.check(manager, "/tasks with a filter error (manager)", error_page=True)

        await map_page(manager, audit, "manager", shown_all(site, 0), site.tiles.requests)
    finally:
        await manager.close()

    councillor = await as_role(browser, site, "councillor")
    try:
        await goto(councillor, "/tasks")
        shown = await task_refs(councillor.page)
        assert shown == refs(site, "Northgate"), shown
        await audit.check(councillor, "/tasks (councillor)")
        await map_page(
            councillor, audit, "councillor", refs(site, "Northgate"), site.tiles.requests
        )
    finally:
        await councillor.close()

    officer = await as_role(browser, site, "officer")
    try:
        await goto(officer, "/tasks")
        assert site.reference("Northgate", 0) in await task_refs(officer.page)
        await audit.check(officer, "/tasks (officer)")

        # The session ends while the page is open: the next htmx update sends the whole
        # page to sign in (HX-Redirect), and back to the list afterwards.
        await officer.context.clear_cookies()
        await officer.page.get_by_role("button", name="Show filters").click()
        await officer.page.get_by_role("button", name="Apply filters").click()
        await officer.page.wait_for_url(re.compile(r"/auth/sign-in\?next="))
        assert parse_qs(urlsplit(officer.page.url).query)["next"][0].startswith("/tasks")
        # Chromium logs the htmx request's 401; nothing else may go wrong.
        left = [e for e in await officer.watch.take() if "status of 401" not in e]
        assert not left, left
    finally:
        await officer.close()
    print(audit.timing())
    assert not audit.problems, audit.report()


def shown_all(site: Site, index: int) -> set[str]:
    return {site.reference(w, index) for w in site.tasks}


async def map_page(
    v: Visitor, audit: Audit, role: str, expected: set[str], tiles: list[str]
) -> None:
    """/map: Leaflet draws a marker for each task of /map/data (tiles from the council's
    tile service, through the proxy), and the same tasks are listed as links."""
    page = v.page
    await goto(v, "/map")

    async def markers_drawn(page) -> None:
        await page.wait_for_selector(".leaflet-marker-icon, .leaflet-interactive", timeout=5000)

    await markers_drawn(page)
    data = await page.evaluate(
        "async () => (await fetch('/map/data', {headers: {Accept: 'application/json'}})).json()"
    )
    features = data.get("features", [])
    in_data = {f["properties"].get("reference") for f in features}
    assert expected <= in_data, (role, in_data)
    # The list alternative: every task on the map is a link too.
    listed = await task_refs(page)
    audit.expect(
        f"/map ({role})",
        expected <= listed,
        f"the map's list alternative lacks {sorted(expected - listed)}",
    )
    audit.expect(
        f"/map ({role})",
        await page.locator(".leaflet-tile-loaded").count() > 0,
        "no map tile loaded through /tiles/",
    )
    # A marker opens a popup linking to its task (a cluster first zooms in to its markers).
    single = page.locator(".leaflet-marker-icon:not(.marker-cluster)")
    if await single.count() == 0:
        await page.locator(".marker-cluster").first.click()
        await single.first.wait_for(timeout=5000)
    await single.first.click()
    popup_link = page.locator(".leaflet-popup-content a")
    await popup_link.first.wait_for(timeout=5000)
    href = await popup_link.first.get_attribute("href") or ""
    assert href.rsplit("/", 1)[-1] in expected, href
    # The tiles came from the council file's tile service, through Responder's proxy.
    audit.expect(f"/map ({role})", bool(tiles), "the tile service was never asked for a tile")
    await audit.check(v, f"/map ({role})", settle=markers_drawn)


async def test_task_page_reassign_performance_and_ward(browser, site: Site):
    """The task page as a manager (every action form) and after a reassignment made through
    its form; as the ward's councillor (the case view); /performance; /wards/{ward}."""
    audit = Audit()
    task = site.tasks["Eastwood"][0]  # sc-north's: bob or carol has it
    ref = task["reference"]
    manager = await as_role(browser, site, "manager")
    try:
        page = manager.page
        await goto(manager, f"/tasks/{ref}")
        assert ref in await page.locator("h1").inner_text()
        for form in ("Reassign", "Change priority", "Cancel task"):
            assert await page.get_by_role("form", name=form).count() == 1, form
        await audit.check(manager, f"/tasks/{ref} (manager)")

        # A second tab on the same task, left as it is while the first one changes it.
        stale = await another_tab(manager)
        await goto(stale, f"/tasks/{ref}")

        before = task["assignee"]
        after = "carol" if before == "bob" else "bob"
        name = {"bob": "Bob Warden", "carol": "Carol Warden"}[after]
        form = page.get_by_role("form", name="Reassign")
        await form.get_by_label("Reassign to").select_option(after)
        await form.get_by_role("button", name="Reassign").click()
        officer = page.locator(".task-facts div", has=page.locator("dt", has_text="Officer"))
        await officer.locator("dd", has_text=name).wait_for(timeout=5000)
        history = page.locator("table.task-history")
        await history.locator("tr", has_text=re.compile("reassign", re.I)).first.wait_for(
            timeout=5000
        )
        assert "Alice Manager" in await history.inner_text()
        await audit.check(manager, f"/tasks/{ref} after reassigning (manager)")
        # Reloaded, the change is still there: it was written, not only drawn.
        await goto(manager, f"/tasks/{ref}")
        assert name in await officer.inner_text()

        # The other tab's form is now out of date: it changes nothing (409), says so, shows
        # the task as it is now, and puts focus on what it says.
        form = stale.page.get_by_role("form", name="Change priority")
        await form.get_by_label(re.compile("New priority")).select_option("urgent")
        await form.get_by_role("button", name="Change priority").click()
        notice = stale.page.locator("#task-panel .notice")
        await notice.get_by_text("out of date").wait_for(timeout=5000)
        assert await stale.page.evaluate("() => !!document.activeElement.closest('.notice')")
        assert name in await stale.page.locator(".task-facts").inner_text()
        assert "Urgent" not in await stale.page.locator(".task-facts").inner_text()
        await audit.check(
            stale,
            f"/tasks/{ref} after a stale form (manager)",
            expected_status_url=site.url(f"/tasks/{ref}/act"),
        )

        await goto(manager, "/performance")
        assert await page.locator("main table caption").count() >= 1
        await audit.check(manager, "/performance (manager)")
    finally:
        await manager.close()

    officer = await as_role(browser, site, "officer")
    try:
        mine = site.tasks["Northgate"][0]  # bob's, by least-loaded routing in sc-north
        assert mine["assignee"] == "bob"
        await goto(officer, f"/tasks/{mine['reference']}")
        assert await officer.page.get_by_role("button", name="Accept").count() == 1
        await audit.check(officer, f"/tasks/{mine['reference']} (officer)")
    finally:
        await officer.close()

    councillor = await as_role(browser, site, "councillor")
    try:
        page = councillor.page
        northgate = site.reference("Northgate", 0)
        await goto(councillor, f"/tasks/{northgate}")
        assert northgate in await page.locator("main").inner_text()
        # The case view: no staff action forms.
        assert await page.get_by_role("form", name="Reassign").count() == 0
        await audit.check(councillor, f"/tasks/{northgate} (councillor)")

        await goto(councillor, "/wards/Northgate")
        assert "Northgate" in await page.locator("h1").inner_text()

        async def ward_map(page) -> None:
            await page.wait_for_selector(".leaflet-container", timeout=5000)

        await ward_map(page)
        await audit.check(councillor, "/wards/Northgate (councillor)", settle=ward_map)

        # Their wards' figures: never another ward's name in the breakdowns.
        await goto(councillor, "/performance")
        assert "Southmere" not in await page.locator("main").inner_text()
        await audit.check(councillor, "/performance (councillor)")
    finally:
        await councillor.close()
    print(audit.timing())
    assert not audit.problems, audit.report()


async def test_resident_feedback_page_and_thanks(browser, site: Site):
    """The completion message's link: the form (no sign-in), an error for no rating, then
    the thank-you page."""
    audit = Audit()
    # A task of its own, so the other tests' lists do not depend on the order they run in.
    task = await site.post_task(report("fly-tipping", "Riverside", 8))
    await site.complete(task, task["assignee"])
    link = await site.feedback_link(task)
    resident = await as_role(browser, site, None)
    try:
        page = resident.page
        await goto(resident, link)
        assert await page.locator("h1").inner_text() == "Tell us how we did"
        await audit.check(resident, "/feedback/{token} (resident)")

        await page.get_by_role("button", name="Send feedback").click()
        await page.get_by_text("There is a problem").wait_for()
        await audit.check(resident, "/feedback/{token} with an error (resident)", error_page=True)

        await page.get_by_label(re.compile("good", re.I)).first.check()
        await page.get_by_label("Any comments? (optional)").fill("Quick work, thank you.")
        await page.get_by_role("button", name="Send feedback").click()
        await page.get_by_role("heading", name="Thank you for your feedback").wait_for()
        await audit.check(resident, "/feedback/{token} thank-you (resident)")

        # The link again: one rating per report, said kindly.
        await goto(resident, link)
        assert "already rated" in await page.locator("h1").inner_text()
        await audit.check(resident, "/feedback/{token} already rated (resident)")
    finally:
        await resident.close()

    # The rating is on the task page for its manager.
    manager = await as_role(browser, site, "manager")
    try:
        await goto(manager, f"/tasks/{task['reference']}")
        ratings = manager.page.get_by_role("region", name="Residents' ratings")
        assert "Quick work, thank you." in await ratings.inner_text()
    finally:
        await manager.close()
    print(audit.timing())
    assert not audit.problems, audit.report()


async def test_work_list_and_task_page_by_keyboard_alone(browser, site: Site):
    """From the top of /tasks: Tab reaches the skip link first; after it, the filter form,
    then a task link, whose Enter opens the task page; there the reassign form is filled and
    sent with the keyboard alone."""
    manager = await as_role(browser, site, "manager")
    try:
        page = manager.page
        await goto(manager, "/tasks")
        await page.keyboard.press("Tab")
        focused = await page.evaluate("() => document.activeElement.textContent.trim()")
        assert focused == "Skip to main content"
        unseen = []  # focused elements with no visible focus indicator

        async def focus_shows() -> None:
            if not await page.evaluate(FOCUS_VISIBLE):
                unseen.append(await page.evaluate("() => document.activeElement.outerHTML"))

        await focus_shows()
        await page.keyboard.press("Enter")
        assert await page.evaluate("() => document.activeElement.id") == "main"

        async def tab_until(selector: str, limit: int = 60) -> list[str]:
            passed = []
            for _ in range(limit):
                await page.keyboard.press("Tab")
                if await page.evaluate(f"() => document.activeElement.matches({selector!r})"):
                    return passed
                passed.append(await page.evaluate("() => document.activeElement.outerHTML"))
            raise AssertionError(f"Tab never reached {selector}: {passed[:8]}")

        # The filter form comes first in the main content, then the tasks.
        await page.keyboard.press("Tab")
        assert await page.evaluate("() => !!document.activeElement.closest('main form')")
        await focus_shows()
        await tab_until(TASK_LINK)
        await focus_shows()
        href = await page.evaluate("() => document.activeElement.getAttribute('href')")
        await page.keyboard.press("Enter")
        await page.wait_for_url(f"**{href}")
        # The reassign form, by keyboard: focus its select, move to another officer with the
        # arrow keys, Tab to its button, Enter.
        await tab_until("#reassign-officer")
        await focus_shows()
        options = await page.evaluate(
            "() => [...document.activeElement.options].map(o => [o.value, o.text])"
        )
        now = await page.evaluate("() => document.activeElement.selectedIndex")
        target = (now + 1) % len(options)  # the only choice may be the one shown already
        key = "ArrowDown" if target > now else "ArrowUp"
        for _ in range(abs(target - now)):
            await page.keyboard.press(key)
        assert await page.evaluate("() => document.activeElement.value") == options[target][0]
        await page.keyboard.press("Tab")
        assert await page.evaluate("() => document.activeElement.textContent.trim()") == "Reassign"
        await focus_shows()
        await page.keyboard.press("Enter")
        officer = page.locator(".task-facts div", has=page.locator("dt", has_text="Officer"))
        await officer.locator("dd", has_text=options[target][1]).wait_for(timeout=5000)
        assert not await manager.watch.take()
        assert not unseen, f"focus not visible on: {unseen}"
    finally:
        await manager.close()


async def test_a_councillor_never_sees_another_wards_task(browser, site: Site):
    """cllr-hughes (Northgate) asks for a Southmere task by every URL: the same refusal each
    time, and its reference nowhere in what comes back."""
    other = site.tasks["Southmere"][0]
    ref = other["reference"]
    councillor = await as_role(browser, site, "councillor")
    try:
        page = councillor.page
        await goto(councillor, f"/tasks/{ref}", 404)
        assert "Page not found" in await page.title()
        assert ref not in await page.content()

        await goto(councillor, "/wards/Southmere", 404)
        assert "Page not found" in await page.title()
        assert ref not in await page.content()

        # The list and the map asked for the other ward, or for the task by name: whatever
        # they answer (an empty list, or a refusal), the task is not in it.
        for query in ("?ward=Southmere", f"?q={ref}", "?ward=Southmere&ward=Northgate"):
            for path in ("/tasks", "/map"):
                response = await page.goto(path + query)
                assert response is not None and response.status in (200, 400, 404), query
                # The form and its links say back what was asked (the search box's value, the
                # map link's query): those attributes aside, nothing on the page may name it.
                await page.evaluate(
                    """ref => { for (const el of document.querySelectorAll('*'))
                        for (const a of [...el.attributes])
                          if ((a.name === 'value' && a.value === ref)
                              || a.value.includes('q=' + ref)) el.removeAttribute(a.name); }""",
                    ref,
                )
                assert ref not in await page.content(), path + query

        mine = refs(site, "Northgate")
        for query in ("?ward=Southmere", f"?q={ref}", ""):
            data = await page.evaluate(
                "async (q) => { const r = await fetch('/map/data' + q); "
                "return {status: r.status, text: await r.text()}; }",
                query,
            )
            assert ref not in data["text"], query
            if data["status"] == 200:
                features = json.loads(data["text"]).get("features", [])
                shown = {f["properties"].get("reference") for f in features}
                assert shown <= mine, (query, shown)
                if query == "":
                    assert shown == mine, shown
    finally:
        await councillor.close()
