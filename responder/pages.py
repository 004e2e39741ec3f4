"""The privacy notice and terms of use at ``GET /privacy`` and ``GET /terms``.

The Teams app package links to them (``developer.privacyUrl`` / ``termsOfUseUrl``) unless
the council file names the council's own pages (``council.privacy_url`` / ``terms_url``).
Their text is the council's (``council.privacy_text`` / ``terms_text``, blank lines between
paragraphs) or a default naming the council and its ``council.contact``.

Both pages are rendered once, when the app is built: plain HTML, every value escaped, one
inline style sheet (allowed by its hash in the Content-Security-Policy) and nothing fetched
from anywhere, readable on a 390 px wide phone. A page for which the council gave only a URL
redirects there. They take no parameters: a query string is ignored, a long one refused.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from html import escape

from aiohttp import web

from responder.config import Council
from responder.web import error_response

# A query string longer than this is refused (414); the pages take none.
MAX_QUERY = 1024
_EMAIL = re.compile(r"^[^@\s<>\"']+@[^@\s<>\"']+\.[^@\s<>\"']+$")

STYLE = (
    "html{-webkit-text-size-adjust:100%}"
    "body{margin:0;padding:1rem;font:1.0625rem/1.5 system-ui,-apple-system,'Segoe UI',"
    "Roboto,Arial,sans-serif;color:#0b0c0c;background:#fff}"
    "main{max-width:40rem;margin:0 auto}"
    "h1{font-size:1.5rem;line-height:1.25;margin:0 0 1rem}"
    "h2{font-size:1.1875rem;margin:1.5rem 0 .5rem}"
    "p,li{overflow-wrap:anywhere}"
    "a{color:#1d70b8}a:focus{outline:3px solid #fd0;background:#fd0;color:#0b0c0c}"
    "footer{margin-top:2rem;font-size:.9375rem;color:#505a5f}"
)
_STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
HEADERS = {
    "Content-Security-Policy": (
        f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "public, max-age=300",
}


@dataclass(frozen=True)
class Page:
    path: str
    title: str
    html: bytes | None  # None: the council has only its own page, at redirect
    redirect: str | None = None


def contact_html(contact: str | None) -> str:
    """The council's contact as a link where it is an address or a web page."""
    if not contact:
        return ""
    text = escape(contact)
    if _EMAIL.match(contact):
        return f'<a href="mailto:{escape(contact, quote=True)}">{text}</a>'
    if contact.lower().startswith("https://"):
        return f'<a href="{escape(contact, quote=True)}">{text}</a>'
    return text


def paragraphs(text: str) -> str:
    """Plain text as HTML: blank lines separate paragraphs, a single newline breaks a line."""
    blocks = [b.strip() for b in re.split(r"\n\s*\n", text.replace("\r\n", "\n"))]
    return "\n".join(
        "<p>" + "<br>".join(escape(line.strip()) for line in block.split("\n")) + "</p>"
        for block in blocks
        if block
    )


def _ask(council: Council) -> str:
    name = escape(council.info.name)
    contact = contact_html(council.info.contact)
    if contact:
        return f"<p>Questions, or a request to see or correct your information: {contact}.</p>"
    return (
        f"<p>Questions, or a request to see or correct your information: contact {name} "
        "through its usual data protection contact, listed on its website.</p>"
    )


def default_privacy(council: Council) -> str:
    name = escape(council.info.name)
    days = council.file.notify.retention_days
    return f"""<p>{name} runs Responder to get reports of street-care problems to the council
officers who deal with them, in Microsoft Teams, and to keep the people who reported them
informed. {name} is the data controller for the personal information it holds.</p>
<h2>If you report a problem</h2>
<p>Responder keeps what you report: what the problem is, where it is and any photos. If you
ask for updates it also keeps your name and email address or mobile phone number, and uses
them only to send you updates about that report through GOV.UK Notify, the government's
messaging service. Your contact details are kept apart from the report, are not shown to the
officers who do the work, and are erased {days} days after the report is closed.</p>
<h2>If you work for or represent the council</h2>
<p>Responder keeps your name, your Microsoft Teams identity and the tasks you act on, to send
you work and to keep a record of who did what and when.</p>
<h2>Contact</h2>
{_ask(council)}"""


def default_terms(council: Council) -> str:
    name = escape(council.info.name)
    return f"""<p>Responder is provided by {name} for its officers, managers and councillors to
handle street-care work in Microsoft Teams.</p>
<ul>
<li>Use it for council business only, and in line with {name}'s policies on the use of IT
and information.</li>
<li>Residents' personal information in it is there to deal with their reports: do not copy
it anywhere else.</li>
<li>What you do in Responder (accepting, updating, completing and reassigning tasks) is
recorded with your name and the time.</li>
</ul>
<p>Responder is open-source software, provided under the MIT licence without warranty.</p>
<h2>Contact</h2>
{_ask(council)}"""


def render(council: Council, title: str, body: str) -> bytes:
    name = escape(council.info.name)
    return f"""<!doctype html>
<html lang="en-GB">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{escape(title)} – Responder – {name}</title>
<style>{STYLE}</style>
</head>
<body>
<main>
<h1>{escape(title)}</h1>
{body}
<footer><p>Responder, run by {name}.
<a href="/privacy">Privacy</a> · <a href="/terms">Terms of use</a></p></footer>
</main>
</body>
</html>
""".encode()


def pages(council: Council) -> tuple[Page, Page]:
    info = council.info
    made = []
    for path, title, text, url, default in (
        ("/privacy", "Privacy notice", info.privacy_text, info.privacy_url, default_privacy),
        ("/terms", "Terms of use", info.terms_text, info.terms_url, default_terms),
    ):
        if text is None and url:
            made.append(Page(path, title, None, redirect=url))
        else:
            body = paragraphs(text) if text is not None else default(council)
            made.append(Page(path, title, render(council, title, body)))
    return made[0], made[1]


def _handler(page: Page) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        if len(request.query_string) > MAX_QUERY:
            return error_response(
                414,
                "uri_too_long",
                f"These pages take no query string ({MAX_QUERY} bytes at most).",
            )
        if page.html is None:
            assert page.redirect is not None
            raise web.HTTPFound(page.redirect, headers={"Referrer-Policy": "no-referrer"})
        return web.Response(
            body=page.html, content_type="text/html", charset="utf-8", headers=HEADERS
        )

    return handle


def routes(council: Council) -> list[web.RouteDef]:
    """``GET`` (and so ``HEAD``) ``/privacy`` and ``/terms``; other methods get 405."""
    return [web.get(page.path, _handler(page)) for page in pages(council)]
