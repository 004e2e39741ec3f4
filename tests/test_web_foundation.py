"""What every web page shares: sessions, CSRF, headers, the sign-in redirect, static files."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from support import EXAMPLES, INTAKE_SECRET
from web_support import sign_in

from responder.app import build_app
from responder.settings import Settings
from responder.web.render import CSP


@pytest.fixture
async def web(aiohttp_client, tmp_path, clock):
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'web.db'}",
        config_path=EXAMPLES / "council.yaml",
        intake_keys={"forms": INTAKE_SECRET},
        background=False,
    )
    return await aiohttp_client(build_app(settings, clock=clock))


async def test_pages_send_people_to_sign_in_and_htmx_to_a_whole_page_redirect(web):
    page = await web.get("/tasks?ward=Northgate", allow_redirects=False)
    assert page.status == 302
    location = urlsplit(page.headers["Location"])
    assert location.path == "/auth/sign-in"
    assert parse_qs(location.query) == {"next": ["/tasks?ward=Northgate"]}
    # An htmx request for a part of a page: the whole page must go to sign in, so the
    # header survives the JSON error middleware.
    part = await web.get("/tasks", headers={"HX-Request": "true"}, allow_redirects=False)
    assert part.status == 401
    assert urlsplit(part.headers["HX-Redirect"]).path == "/auth/sign-in"


async def test_every_change_needs_the_sessions_csrf_token(web):
    # Not signed in, or signed in without the token, or with another session's token:
    # the same 403 page, and the session goes on.
    refused = await web.post("/auth/sign-out", data={"csrf": "forged"})
    assert refused.status == 403
    assert "This form has expired" in await refused.text()
    first = await sign_in(web, "alice")
    for data in ({}, {"csrf": ""}, {"csrf": first + "x"}):
        refused = await web.post("/auth/sign-out", data=data, allow_redirects=False)
        assert refused.status == 403
        assert refused.headers["Content-Type"].startswith("text/html")
        assert "Set-Cookie" not in refused.headers
    # The header (htmx) does as well as the form field.
    done = await web.post("/auth/sign-out", headers={"X-CSRF-Token": first}, allow_redirects=False)
    assert done.status == 303
    assert "Max-Age=0" in done.headers["Set-Cookie"]


async def test_pages_carry_their_security_headers_and_sessions_their_cookie_flags(web):
    response = await web.get(
        "/auth/dev", params={"as": "alice", "next": "/tasks"}, allow_redirects=False
    )
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain http outside production: the quick start works
    page = await web.get("/tasks")
    assert page.status == 200
    assert page.headers["Content-Security-Policy"] == CSP
    assert "frame-ancestors 'self' https://teams.microsoft.com" in CSP
    assert "'unsafe-inline'" not in CSP
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["X-Content-Type-Options"] == "nosniff"


async def test_static_files_come_from_the_package_and_nothing_else(web):
    for path in (
        "/static/app.css",
        "/static/vendor/htmx/htmx.min.js",
        "/static/vendor/leaflet/leaflet.js",
        "/static/vendor/teams-js/MicrosoftTeams.min.js",
    ):
        assert (await web.get(path)).status == 200, path
    for path in ("/static/../settings.py", "/static/%2e%2e/web/routes.py", "/static/nope.js"):
        assert (await web.get(path)).status in (403, 404), path
