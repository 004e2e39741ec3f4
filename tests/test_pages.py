"""GET /privacy and GET /terms: the pages the Teams app package links to."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from aiohttp import web
from support import write_council

from responder.config import load_council
from responder.pages import MAX_QUERY, STYLE, routes
from responder.web import json_errors

COUNCIL = "Sample Borough Council"


@pytest.fixture
def database_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'pages.db'}"  # the pages read no database: SQLite only


@pytest.fixture
async def app_client(client):
    """The whole app (build_app), as Responder serves it."""
    return client


async def pages_client(aiohttp_client, path):
    """Only the pages and the shared error middleware, for a council file of the test's."""
    app = web.Application(middlewares=[json_errors])
    app.add_routes(routes(load_council(path)))
    return await aiohttp_client(app)


class Tags(HTMLParser):
    """Every start tag with its attributes, and the visible text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._skip += tag in ("style", "title")

    def handle_endtag(self, tag):
        self._skip -= tag in ("style", "title")

    def handle_data(self, data):
        if not self._skip:
            self.text.append(data)

    @property
    def words(self) -> str:
        return " ".join(" ".join(self.text).split())


def parse(body: str) -> Tags:
    tags = Tags()
    tags.feed(body)
    tags.close()
    return tags


def assert_self_contained(body: str) -> None:
    """No external assets: nothing fetched, no script; links only to our pages or contact."""
    tags = parse(body)
    names = {tag for tag, _ in tags.tags}
    assert not names & {"script", "img", "link", "iframe", "object", "embed", "form", "base"}
    for tag, attrs in tags.tags:
        assert "src" not in attrs and "style" not in attrs, (tag, attrs)
        for name in attrs:
            assert not name.startswith("on"), (tag, attrs)  # no event handlers
        if tag == "a":
            assert attrs["href"].startswith(("/privacy", "/terms", "mailto:", "https://")), attrs
    assert "url(" not in STYLE and "@import" not in STYLE


def assert_fits_a_phone(body: str) -> None:
    """Readable at 390 px: the viewport follows the device, nothing is wider than a phone,
    and long words (addresses, URLs) wrap."""
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in body
    for number, unit in re.findall(r"(\d*\.?\d+)(px|rem|em)", STYLE):
        size = float(number) * (16 if unit != "px" else 1)
        assert size <= 40 * 16, (number, unit)
    assert "max-width:40rem" in STYLE  # a measure, not a fixed width
    assert not re.search(r"(?<!max-)width:\d", STYLE)
    assert "overflow-wrap:anywhere" in STYLE
    assert "font:1.0625rem" in STYLE  # at least 16 px text


# --- the default pages, through the whole app -------------------------------------------


@pytest.mark.parametrize("path", ["/privacy", "/terms"])
async def test_default_pages_name_the_council(app_client, path):
    response = await app_client.get(path)
    assert response.status == 200
    assert response.content_type == "text/html"
    assert response.charset == "utf-8"
    body = await response.text()
    assert body.startswith("<!doctype html>")
    assert '<html lang="en-GB">' in body
    tags = parse(body)
    assert COUNCIL in tags.words
    assert f"Responder, run by {COUNCIL}." in tags.words
    # No contact in the example: the default says where to look instead.
    assert "usual data protection contact" in tags.words
    assert_self_contained(body)
    assert_fits_a_phone(body)


async def test_default_privacy_says_what_is_kept_and_for_how_long(app_client):
    words = parse(await (await app_client.get("/privacy")).text()).words
    assert words.startswith("Privacy notice ")
    assert f"{COUNCIL} is the data controller" in words
    assert "erased 90 days after the report is closed" in words  # notify.retention_days
    assert "GOV.UK Notify" in words


async def test_default_terms(app_client):
    words = parse(await (await app_client.get("/terms")).text()).words
    assert words.startswith("Terms of use ")
    assert f"in line with {COUNCIL}'s policies" in words


@pytest.mark.parametrize("path", ["/privacy", "/terms"])
async def test_security_headers(app_client, path):
    response = await app_client.get(path)
    csp = response.headers["Content-Security-Policy"]
    assert csp.startswith("default-src 'none'; style-src 'sha256-")
    assert "frame-ancestors 'none'" in csp and "script-src" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"


async def test_the_style_sheet_is_allowed_by_its_hash(app_client):
    import base64
    import hashlib

    response = await app_client.get("/privacy")
    body = await response.text()
    [style] = re.findall(r"<style>(.*?)</style>", body, re.S)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in response.headers["Content-Security-Policy"]


async def test_head_answers_like_get_without_a_body(app_client):
    response = await app_client.head("/terms")
    assert response.status == 200
    assert response.content_type == "text/html"
    assert await response.read() == b""


# --- hostile input -------------------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("path", ["/privacy", "/terms"])
async def test_other_methods_get_405_naming_get(app_client, method, path):
    response = await app_client.request(method, path, data=b"x" * 100)
    assert response.status == 405
    assert response.content_type == "application/json"
    assert set(response.headers["Allow"].split(",")) >= {"GET"}
    assert (await response.json())["error"] == "method_not_allowed"


@pytest.mark.parametrize(
    "path",
    [
        "/privacy/",
        "/terms/",
        "/privacy.html",
        "/PRIVACY",
        "/privacy/../../etc/passwd",
        "/terms%00",
        "/privacy-policy",
        "/privacy/<script>alert(1)</script>",
    ],
)
async def test_unknown_paths_are_404(app_client, path):
    response = await app_client.get(path)
    assert response.status == 404
    assert response.content_type == "application/json"
    body = await response.text()
    assert "<script>" not in body
    assert (await response.json())["error"] == "not_found"


async def test_a_short_query_string_is_ignored(app_client):
    plain = await (await app_client.get("/privacy")).read()
    response = await app_client.get("/privacy?utm_source=teams&x=<script>alert(1)</script>")
    assert response.status == 200
    assert await response.read() == plain  # nothing of the query is echoed


@pytest.mark.parametrize("path", ["/privacy", "/terms"])
async def test_a_long_query_string_is_414(app_client, path):
    response = await app_client.get(path + "?q=" + "a" * MAX_QUERY)
    assert response.status == 414
    assert response.content_type == "application/json"
    assert (await response.json())["error"] == "uri_too_long"


async def test_a_huge_query_string_is_refused(app_client):
    # Up to aiohttp's request-line limit (8190 bytes) the page answers 414 itself; beyond
    # it the server's parser answers 400 before any route is looked at.
    response = await app_client.get("/privacy?q=" + "a" * 8100)
    assert response.status == 414
    assert (await response.json())["error"] == "uri_too_long"
    response = await app_client.get("/privacy?q=" + "a" * 100_000)
    assert response.status == 400


# --- the council's own text, contact and pages -------------------------------------------


async def test_council_text_is_escaped_and_paragraphed(aiohttp_client, tmp_path):
    text = (
        "We are <b>Sample</b> & proud.\nSecond line of the first paragraph.\n\n"
        '<script>alert("x")</script> is just text.\n\n\n'
        "Third paragraph."
    )

    def change(d):
        d["council"]["privacy_text"] = text
        d["council"]["name"] = "Borough <i>of</i> Tests & Co"

    client = await pages_client(aiohttp_client, write_council(tmp_path, change))
    body = await (await client.get("/privacy")).text()
    assert "<script>" not in body and "<b>" not in body and "<i>" not in body
    assert "<p>We are &lt;b&gt;Sample&lt;/b&gt; &amp; proud.<br>Second line" in body
    assert "<p>&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; is just text.</p>" in body
    assert "<p>Third paragraph.</p>" in body
    assert "Borough &lt;i&gt;of&lt;/i&gt; Tests &amp; Co" in body
    tags = parse(body)
    assert [t for t, _ in tags.tags].count("p") == 4  # three paragraphs and the footer's
    assert_self_contained(body)
    # The terms page still has the default text, naming the council.
    terms = parse(await (await client.get("/terms")).text()).words
    assert "Borough <i>of</i> Tests & Co" in terms


@pytest.mark.parametrize(
    ("contact", "link"),
    [
        ("streetcare@sample-borough.gov.uk", "mailto:streetcare@sample-borough.gov.uk"),
        ("https://www.sample-borough.gov.uk/data-protection", None),
        ("Data Protection Officer, Town Hall, High Street", ""),
        ('"><script>alert(1)</script>@x.uk', ""),
        ("javascript:alert(1)", ""),
    ],
)
async def test_the_contact_is_shown_and_linked_only_when_safe(
    aiohttp_client, tmp_path, contact, link
):
    path = write_council(tmp_path, lambda d: d["council"].__setitem__("contact", contact))
    client = await pages_client(aiohttp_client, path)
    for page in ("/privacy", "/terms"):
        body = await (await client.get(page)).text()
        tags = parse(body)
        assert contact in tags.words
        assert "usual data protection contact" not in tags.words
        hrefs = [a["href"] for tag, a in tags.tags if tag == "a"]
        expected = contact if link is None else link
        if expected:
            assert expected in hrefs
        else:
            assert hrefs == ["/privacy", "/terms"]
        assert "<script>" not in body
        assert_self_contained(body)


async def test_a_council_url_without_text_redirects_there(aiohttp_client, tmp_path):
    own = "https://www.sample-borough.gov.uk/privacy-notice"

    def change(d):
        d["council"]["privacy_url"] = own

    client = await pages_client(aiohttp_client, write_council(tmp_path, change))
    response = await client.get("/privacy", allow_redirects=False)
    assert response.status == 302
    assert response.headers["Location"] == own
    assert (await client.get("/terms", allow_redirects=False)).status == 200  # still ours


async def test_council_text_wins_over_its_url_on_our_page(aiohttp_client, tmp_path):
    def change(d):
        d["council"]["terms_url"] = "https://www.sample-borough.gov.uk/terms"
        d["council"]["terms_text"] = "Our terms."

    client = await pages_client(aiohttp_client, write_council(tmp_path, change))
    response = await client.get("/terms", allow_redirects=False)
    assert response.status == 200
    assert "<p>Our terms.</p>" in await response.text()
