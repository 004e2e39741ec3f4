"""Signing in to the web pages in tests: the development sign-in, as the quick start does."""

from __future__ import annotations

import re

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


async def sign_in(client, person_id: str) -> str:
    """Sign ``client`` (an aiohttp test client) in as ``person_id``; returns the session's
    CSRF token, for the forms the test will post."""
    response = await client.get(
        "/auth/dev", params={"as": person_id, "next": "/auth/signed-out"}, allow_redirects=False
    )
    assert response.status == 302, await response.text()
    page = await (await client.get("/auth/signed-out")).text()
    match = _CSRF.search(page)
    assert match is not None, "signed in, the layout carries the sign-out form's token"
    return match.group(1)
