"""Signing in to the pages: Entra ID's authorization code flow with PKCE (against
tests/fake_entra.py, a real OpenID provider on 127.0.0.1), the Teams tab's SSO token,
sessions and their end, CSRF on sign-out, ``next`` kept on this site, production's
refusals, and the tab's pages.

SQLite only: nothing here depends on the database.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import time
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from cryptography.fernet import Fernet
from fake_entra import CLIENT_SECRET, FakeEntra, s256
from support import EXAMPLES, write_council
from web_support import sign_in as dev_sign_in

from responder.app import StartupError, build_app
from responder.settings import Settings
from responder.web.session import COOKIE, derive_key

SECRET = "a-test-secret-key-that-is-long-enough-0123456789"
PUBLIC_URL = "https://responder.sample-borough.gov.uk"
CALLBACK = f"{PUBLIC_URL}/auth/callback"
ALICE_OID = "0a11ce00-0000-4000-8000-000000000001"
PATEL_OID = "0c11b000-0000-4000-8000-00000000000a"
STRANGER_OID = "deadbeef-0000-4000-8000-0000000000ff"
OTHER_TENANT = "99999999-0000-4000-8000-000000000000"
BOT_ID = "00000000-0000-4000-8000-00000000b007"


@pytest.fixture
def entra():
    fake = FakeEntra()
    yield fake
    fake.close()


@pytest.fixture(autouse=True)
def _issuer_over_http(monkeypatch):
    # oauthlib's own switch for an authorization server on plain http: only the fake is.
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")


def web_settings(tmp_path, entra: FakeEntra | None = None, **changes) -> Settings:
    values: dict = dict(
        database_url=f"sqlite:///{tmp_path / 'r.db'}",
        config_path=EXAMPLES / "council.yaml",
        background=False,
        secret_key=SECRET,
    )
    if entra is not None:
        values |= dict(
            web_client_id=entra.client_id,
            web_client_secret=entra.client_secret,
            web_authority=entra.url,
        )
    return Settings(**(values | changes))


@pytest.fixture
async def client(aiohttp_client, tmp_path, entra):
    return await aiohttp_client(build_app(web_settings(tmp_path, entra)))


def set_cookies(response) -> dict[str, str]:
    """Set-Cookie headers of a response by cookie name (the whole header line)."""
    return {line.split("=", 1)[0]: line for line in response.headers.getall("Set-Cookie", [])}


def attributes(line: str) -> set[str]:
    return {part.strip().split("=")[0].lower() for part in line.split(";")[1:]}


async def authorize(entra: FakeEntra, location: str) -> str:
    """What the browser does at Entra: the fake's /authorize answers 302 to the callback."""
    async with (
        aiohttp.ClientSession() as browser,
        browser.get(location, allow_redirects=False) as response,
    ):
        assert response.status == 302
        back = response.headers["Location"]
    assert back.startswith(CALLBACK + "?"), back
    return back.removeprefix(PUBLIC_URL)  # the app under test is that public URL


async def begin(client, entra: FakeEntra, next_path: str = "/auth/signed-out") -> str:
    """Start a flow and pass Entra: the callback's path and query, ready to be requested."""
    start = await client.get("/auth/start", params={"next": next_path}, allow_redirects=False)
    assert start.status == 302, await start.text()
    return await authorize(entra, start.headers["Location"])


async def page_of(client, path: str = "/auth/signed-out", **kwargs) -> str:
    response = await client.get(path, **kwargs)
    return await response.text()


def signed_in_as(page: str) -> str | None:
    match = re.search(r'<span class="who">([^<]+)</span>', page)
    return match.group(1) if match else None


def flow_of(response) -> dict:
    """The sealed flow cookie /auth/start set, opened with the test's key."""
    value = set_cookies(response)["responder_oidc"].split(";")[0].split("=", 1)[1]
    fernet = Fernet(base64.urlsafe_b64encode(derive_key(SECRET, "oidc-flow")))
    return json.loads(fernet.decrypt(value))


def session_cookie(person: str, via: str = "entra", *, at: float | None = None) -> str:
    """A session cookie as Sessions seals it, at a chosen time."""
    fernet = Fernet(base64.urlsafe_b64encode(derive_key(SECRET, "responder-session-v1")))
    data = json.dumps({"p": person, "v": via, "c": "csrf-token-of-the-test"}).encode()
    return fernet.encrypt_at_time(data, int(at if at is not None else time.time())).decode()


# --- Entra ID: the whole flow -----------------------------------------------------------


async def test_signing_in_with_entra_from_the_sign_in_page_to_a_signed_in_page(client, entra):
    page = await page_of(client, "/auth/sign-in?next=/tasks%3Fstatus%3Dopen")
    assert "Sign in with your council Microsoft account" in page
    assert 'href="/auth/start?next=/tasks%3Fstatus%3Dopen"' in page
    assert 'action="/auth/dev"' in page and '<label for="dev-as">' in page  # not production
    assert "Alice Manager (manager)" in page

    start = await client.get(
        "/auth/start", params={"next": "/auth/signed-out?from=sso"}, allow_redirects=False
    )
    assert start.status == 302
    location = urlsplit(start.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{entra.url}/authorize"
    query = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert query["response_type"] == "code"
    assert query["client_id"] == entra.client_id
    assert query["redirect_uri"] == CALLBACK
    assert query["scope"] == "openid profile"
    assert query["response_mode"] == "query"
    assert query["code_challenge_method"] == "S256"
    assert len(query["state"]) >= 32 and len(query["nonce"]) >= 32
    flow_line = set_cookies(start)["responder_oidc"]
    assert {"httponly", "samesite", "path", "max-age"} <= attributes(flow_line)
    assert "SameSite=Lax" in flow_line and "Path=/auth" in flow_line
    assert "Max-Age=600" in flow_line
    flow = flow_of(start)
    assert flow["s"] == query["state"] and flow["n"] == query["nonce"]
    assert s256(flow["v"]) == query["code_challenge"]  # the verifier never left the cookie
    assert flow["x"] == "/auth/signed-out?from=sso"
    assert query["code_challenge"] not in start.headers["Set-Cookie"]  # sealed, not readable

    back = await authorize(entra, start.headers["Location"])
    done = await client.get(back, allow_redirects=False)
    assert done.status == 302, await done.text()
    assert done.headers["Location"] == "/auth/signed-out?from=sso"
    cookies = set_cookies(done)
    session = cookies[COOKIE]
    assert {"httponly", "samesite", "path", "max-age"} <= attributes(session)
    assert "SameSite=Lax" in session and "Path=/" in session
    assert "secure" not in attributes(session)  # plain http outside production
    assert "Max-Age=0" in cookies["responder_oidc"]  # the flow is over
    # The fake checked PKCE: S256(code_verifier) was the challenge, with the app's secret.
    [request] = entra.token_requests
    assert request["code_verifier"] == flow["v"]
    assert request["client_secret"] == CLIENT_SECRET
    assert entra.grants[0].used
    assert signed_in_as(await page_of(client, done.headers["Location"])) == "Alice Manager"

    # The same callback again, even with the flow's cookie put back: nobody is signed in.
    replay_client_cookie = start.cookies["responder_oidc"].value
    again = await client.get(
        back, allow_redirects=False, headers={"Cookie": f"responder_oidc={replay_client_cookie}"}
    )
    assert again.status == 400
    assert "already been used" in await again.text()
    assert COOKIE not in set_cookies(again)

    # Entra rolls its signing key over: the next sign-in fetches the keys once more.
    fetches = entra.key_fetches
    entra.rotate()
    entra.user_oid = PATEL_OID
    done = await client.get(await begin(client, entra), allow_redirects=False)
    assert done.status == 302
    assert entra.key_fetches == fetches + 1
    assert signed_in_as(await page_of(client)) == "Cllr Patel"


async def test_without_a_tenant_any_organisations_account_in_the_council_file(
    aiohttp_client, tmp_path, entra
):
    """No tenant configured: the authority is multi-tenant (Entra's issuer is a template,
    ``{tenantid}``, filled from the token's tid) and the council file decides who is in."""
    council = write_council(tmp_path, lambda d: d["council"].pop("tenant_id"))
    entra.multi_tenant = True
    client = await aiohttp_client(
        build_app(web_settings(tmp_path, entra, config_path=council, web_tenant_id=""))
    )
    entra.user_tid = OTHER_TENANT
    done = await client.get(await begin(client, entra), allow_redirects=False)
    assert done.status == 302, await done.text()
    assert signed_in_as(await page_of(client)) == "Alice Manager"
    # The issuer must still be the template filled with the token's own tenant.
    client.session.cookie_jar.clear()
    entra.id_token_overrides = {"iss": f"{entra.url}/{entra.tenant}/v2.0"}
    back = await begin(client, entra)
    await refused(client, back, 401, "did not pass")
    tab = await client.post("/auth/teams", json={"token": entra.tab_token(tid=OTHER_TENANT)})
    assert tab.status == 200


async def refused(client, path: str, status: int, words: str) -> None:
    response = await client.get(path, allow_redirects=False)
    text = await response.text()
    assert response.status == status, text
    assert words in text, text
    assert response.content_type == "text/html"
    assert COOKIE not in set_cookies(response)
    assert 'href="/auth/sign-in?next=' in text  # a way to start again


async def test_entra_refusals_set_no_session(client, entra, aiohttp_client, tmp_path):
    # A callback whose state is not the flow's.
    back = await begin(client, entra)
    await refused(client, back.replace("state=", "state=x"), 400, "not for the sign-in")
    # A callback without its code, or with one no issuer sends (oversized); a refusal ends
    # the flow, so each starts one of its own.
    for query, words in (
        ("", "no sign-in code"),
        (f"&code={'c' * 5000}", "no sign-in code"),
    ):
        state = parse_qs(urlsplit(await begin(client, entra)).query)["state"][0]
        await refused(client, f"/auth/callback?state={state}{query}", 400, words)
    await begin(client, entra)
    await refused(client, f"/auth/callback?code=x&state={'s' * 5000}", 400, "not for the sign")
    back = await begin(client, entra)
    # No flow cookie at all (another browser, or cookies cleared).
    client.session.cookie_jar.clear()
    await refused(client, back, 400, "Your sign-in has expired")
    # A flow sealed eleven minutes ago.
    start = await client.get("/auth/start", allow_redirects=False)
    back = await authorize(entra, start.headers["Location"])
    fernet = Fernet(base64.urlsafe_b64encode(derive_key(SECRET, "oidc-flow")))
    stale = fernet.encrypt_at_time(
        json.dumps(flow_of(start)).encode(), int(time.time()) - 660
    ).decode()
    client.session.cookie_jar.clear()
    client.session.cookie_jar.update_cookies({"responder_oidc": stale})
    await refused(client, back, 400, "Your sign-in has expired")
    # Entra says no.
    entra.authorize_error = "access_denied"
    await refused(client, await begin(client, entra), 403, "cancelled or refused")
    entra.authorize_error = "server_error"
    await refused(client, await begin(client, entra), 400, "server_error")
    entra.authorize_error = None
    # Someone Entra knows but the council file does not.
    entra.user_oid = STRANGER_OID
    await refused(
        client,
        await begin(client, entra),
        403,
        "Your account is not in this council&#39;s Responder; ask your manager to add you.",
    )
    # Alice's oid, but from another organisation's tenant (from the council's issuer: the
    # tid is checked whatever the issuer says).
    entra.user_oid, entra.user_tid = ALICE_OID, OTHER_TENANT
    entra.id_token_overrides = {"iss": entra.issuer}
    await refused(client, await begin(client, entra), 403, "another organisation")
    entra.id_token_overrides = {}
    await refused(client, await begin(client, entra), 401, "did not pass")  # its own issuer
    entra.user_tid = entra.tenant
    # ID tokens that fail the checks.
    for wrong in (
        {"aud": "someone-elses-app"},
        {"nonce": "not-the-flows-nonce"},
        {"nonce": None},
        {"iss": "https://login.microsoftonline.com/other/v2.0"},
        {"exp": int(time.time()) - 3600},
        {"oid": None},
    ):
        entra.id_token_overrides = wrong
        await refused(client, await begin(client, entra), 401, "did not pass")
    entra.id_token_overrides = {}
    # The token endpoint refuses the app (a wrong secret).
    wrong_secret = await aiohttp_client(
        build_app(web_settings(tmp_path, entra, web_client_secret="not-the-secret"))
    )
    await refused(wrong_secret, await begin(wrong_secret, entra), 400, "code was refused")
    assert signed_in_as(await page_of(client)) is None
    assert signed_in_as(await page_of(wrong_secret)) is None


# --- the Teams tab --------------------------------------------------------------------


async def test_a_teams_tab_token_signs_in_and_bad_ones_are_refused(client, entra):
    for token in (entra.tab_token(), entra.tab_token(version="2.0")):
        response = await client.post("/auth/teams", json={"token": token})
        assert response.status == 200, await response.text()
        assert await response.json() == {"signedIn": True}
        line = set_cookies(response)[COOKIE]
        assert {"httponly", "secure", "samesite", "partitioned"} <= attributes(line)
        assert "SameSite=None" in line
        value = line.split(";")[0].split("=", 1)[1]
        page = await page_of(client, headers={"Cookie": f"{COOKIE}={value}"})
        assert signed_in_as(page) == "Alice Manager"
        assert 'class="in-teams"' in page
    client.session.cookie_jar.clear()

    async def refused(status: int, error: str, **kwargs) -> None:
        response = await client.post("/auth/teams", **kwargs)
        body = await response.json()
        assert response.status == status, body
        assert body["error"] == error and body["message"]
        assert COOKIE not in set_cookies(response)

    for token in (
        entra.tab_token(audience="api://responder.sample-borough.gov.uk/another-app"),
        entra.tab_token(audience="https://graph.microsoft.com"),
        entra.tab_token(issuer=f"https://login.microsoftonline.com/{OTHER_TENANT}/v2.0"),
        entra.tab_token(issuer="https://evil.example/"),
        entra.tab_token(issuer=entra.issuer),  # the fake's own: not Entra's tab issuer
        entra.tab_token(expired=True),
        entra.tab_token(other_key=True),  # the same key id, another key: bad signature
        entra.tab_token(other_key=True, kid="never-published"),
        entra.tab_token() + "x",
        "not.a.jwt",
    ):
        await refused(401, "invalid_token", json={"token": token})
    await refused(403, "not_in_council", json={"token": entra.tab_token(STRANGER_OID)})
    await refused(403, "other_tenant", json={"token": entra.tab_token(tid=OTHER_TENANT)})
    for body in ("", "not json", "[]", '{"token": 42}', '{"tokens": "x"}', '{"token": ""}'):
        await refused(400, "malformed", data=body, headers={"Content-Type": "application/json"})
    await refused(415, "unsupported_media_type", data=f"token={entra.tab_token()}")
    big = json.dumps({"token": "x" * (17 * 1024)})
    await refused(413, "too_large", data=big, headers={"Content-Type": "application/json"})

    async def chunks():
        for _ in range(20):
            yield b"x" * 1024

    await refused(413, "too_large", data=chunks(), headers={"Content-Type": "application/json"})
    assert signed_in_as(await page_of(client)) is None


async def test_the_tab_pages_can_be_framed_by_teams_only_and_next_stays_on_the_site(client):
    for target in (
        "//evil.example",
        "https://evil.example/x",
        "/\\evil.example",
        "evil.example",
        "/%0d%0aSet-Cookie:x",
    ):
        start = await client.get("/auth/start", params={"next": target}, allow_redirects=False)
        expected = "/tasks" if not target.startswith("/%") else target
        assert flow_of(start)["x"] == expected
        page = await page_of(client, "/auth/sign-in", params={"next": target})
        assert "evil.example" not in page
        tab = await page_of(client, "/tab", params={"next": target})
        assert "evil.example" not in tab

    tab = await client.get("/tab", params={"next": "/map?ward=Northgate"})
    page = await tab.text()
    assert tab.status == 200
    csp = tab.headers["Content-Security-Policy"]
    assert "frame-ancestors 'self' https://teams.microsoft.com" in csp
    assert "script-src 'self';" in csp
    assert "connect-src 'self' https://res.cdn.office.net;" in csp  # the Teams library's
    assert 'data-teams-js="/static/vendor/teams-js/MicrosoftTeams.min.js' in page
    assert 'src="/static/tab.js' in page
    assert 'data-next="/map?ward=Northgate"' in page
    assert "<script>" not in page  # no inline script
    config = await client.get("/tab/config")
    page = await config.text()
    assert (
        "frame-ancestors 'self' https://teams.microsoft.com"
        in (config.headers["Content-Security-Policy"])
    )
    assert f'data-public-url="{PUBLIC_URL}"' in page
    for choice in ("/tasks", "/map", "/performance", "ward"):
        assert f'value="{choice}"' in page
    assert '<option value="Northgate">Northgate</option>' in page
    assert "<legend>What should this tab show?</legend>" in page
    script = await client.get("/static/tab.js")
    text = await script.text()
    for call in (
        "microsoftTeams.app.initialize()",
        'getAttribute("data-teams-js")',
        "microsoftTeams.authentication.getAuthToken()",
        "microsoftTeams.pages.config.registerOnSaveHandler",
        "microsoftTeams.pages.config.setConfig",
        "microsoftTeams.pages.config.setValidityState",
        "location.replace(next)",
    ):
        assert call in text


# --- sessions -------------------------------------------------------------------------


async def test_sessions_end_and_sign_out_needs_the_csrf_token(client):
    eleven_hours_ago = time.time() - 11 * 3600
    old = session_cookie("alice", at=eleven_hours_ago)
    assert signed_in_as(await page_of(client, headers={"Cookie": f"{COOKIE}={old}"})) is None
    recent = session_cookie("alice", at=time.time() - 9 * 3600)
    page = await page_of(client, headers={"Cookie": f"{COOKIE}={recent}"})
    assert signed_in_as(page) == "Alice Manager"
    forged = session_cookie("alice").replace("A", "B", 1)
    assert signed_in_as(await page_of(client, headers={"Cookie": f"{COOKIE}={forged}"})) is None

    csrf = await dev_sign_in(client, "frank")
    no_token = await client.post("/auth/sign-out", data={}, allow_redirects=False)
    assert no_token.status == 403
    assert COOKIE not in set_cookies(no_token)
    wrong = await client.post("/auth/sign-out", data={"csrf": "nope"}, allow_redirects=False)
    assert wrong.status == 403
    assert signed_in_as(await page_of(client)) == "Frank Manager"
    out = await client.post("/auth/sign-out", data={"csrf": csrf}, allow_redirects=False)
    assert out.status == 303
    assert "Max-Age=0" in set_cookies(out)[COOKIE]
    assert signed_in_as(await page_of(client)) is None


# --- production -----------------------------------------------------------------------


def production(tmp_path, **changes) -> Settings:
    return web_settings(
        tmp_path,
        environment="production",
        app_id=BOT_ID,
        app_password="a-client-secret",
        **changes,
    )


async def test_production(aiohttp_client, tmp_path, entra, caplog):
    with pytest.raises(StartupError, match="RESPONDER_SECRET_KEY is not set"):
        build_app(production(tmp_path, secret_key=""))
    with pytest.raises(StartupError, match="RESPONDER_WEB_AUTHORITY is set"):
        build_app(production(tmp_path, web_authority=entra.url, web_client_id=BOT_ID))

    caplog.set_level(logging.INFO, "responder.web.sign_in")
    client = await aiohttp_client(build_app(production(tmp_path)))
    assert "Sign-in with Microsoft is not configured: set RESPONDER_WEB_CLIENT_ID" in caplog.text
    dev = await client.get("/auth/dev", params={"as": "alice"}, allow_redirects=False)
    assert dev.status == 404
    assert COOKIE not in set_cookies(dev)
    # No Entra app registration: the sign-in page says so, and the flow cannot start.
    page = await client.get("/auth/sign-in")
    text = await page.text()
    assert page.status == 503
    assert "Sign-in is not set up yet" in text
    assert "/auth/dev" not in text and "Sign in with your council" not in text
    start = await client.get("/auth/start", allow_redirects=False)
    assert start.status == 503
    tab = await client.post("/auth/teams", json={"token": entra.tab_token()})
    assert tab.status == 503
    # A session's cookies are Secure in production, even behind plain http.
    cookie = {"Cookie": f"{COOKIE}={session_cookie('alice')}"}
    assert signed_in_as(await page_of(client, headers=cookie)) == "Alice Manager"
    out = await client.post(
        "/auth/sign-out",
        data={"csrf": "csrf-token-of-the-test"},
        headers=cookie,
        allow_redirects=False,
    )
    assert out.status == 303
    line = set_cookies(out)[COOKIE]
    assert {"httponly", "secure", "samesite"} <= attributes(line) and "SameSite=Lax" in line

    # With an app registration (the bot's by default), the page offers Microsoft's sign-in.
    client = await aiohttp_client(
        build_app(production(tmp_path, web_client_id=BOT_ID, web_client_secret="s"))
    )
    page = await client.get("/auth/sign-in")
    assert page.status == 200
    assert "Sign in with your council Microsoft account" in await page.text()
