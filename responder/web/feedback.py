"""``/feedback/{token}``: a resident rates finished work, from the link in the completion
message. No sign-in: the signed token (``domain/feedback``) is the credential.

- ``GET``: what was reported and what was done, in resident words only (the task type,
  the address, the completion date in the council's time zone, the outcome's resident
  words), and the form: a rating 1-5 (radios in a fieldset) and an optional comment.
- ``POST``: the site's CSRF middleware leaves ``/feedback/`` alone (there is no session),
  so the form carries a field bound to the token (``form_binding``) and an ``Origin``
  header, when the browser sends one, must be this site's; then
  ``commands.feedback.record_feedback``. One rating per report: a second post changes
  nothing and says so, politely.

A token that is malformed, forged, made under another key, for a report that no longer
exists or whose task is not completed: one 404 page. A genuine token past its date: 410.
Every answer is ``no-store`` and ``Referrer-Policy: no-referrer`` (the token is in the
URL; the access log cuts it, ``responder/access_log.py``). ``Origin: null`` is accepted:
a browser sends exactly that when posting a form from a no-referrer page, and the form
binding, not the origin, is what a forger cannot make.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from aiohttp import web

from responder.commands.feedback import Recorded, record_feedback
from responder.config.model import Council
from responder.domain.feedback import (
    COMMENT_MAX,
    FEEDBACK_PURPOSE,
    FORM_FIELD,
    FORM_PURPOSE,
    RATINGS,
    FeedbackForm,
    FeedbackLinks,
    TokenState,
    binding_ok,
    form_binding,
    rating_label,
    read_form,
    read_token,
    sentence_case,
)
from responder.domain.reference import format_reference
from responder.domain.vocabulary import outcome_words
from responder.notify.personalisation import NO_ADDRESS, report_date
from responder.queries.feedback import ReportForFeedback, report_for_feedback
from responder.web import clock_key, db_key
from responder.web.render import error_page, page
from responder.web.session import derive_key

if TYPE_CHECKING:
    from responder.web.routes import WebContext

# A feedback form is a rating and 1,000 characters; past this the post is not read at all.
MAX_POST = 256 * 1024
_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")
RESIDENT_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex, nofollow",
}


def feedback_links(secret: str, public_url: str) -> FeedbackLinks:
    """What the Notify sender signs completion messages' links with (``app.py``)."""
    return FeedbackLinks(derive_key(secret, FEEDBACK_PURPOSE), public_url.rstrip("/"))


class FeedbackPages:
    def __init__(self, council: Council, secret: str, public_url: str) -> None:
        self.council = council
        self.key = derive_key(secret, FEEDBACK_PURPOSE)
        self.form_key = derive_key(secret, FORM_PURPOSE)
        parts = urlsplit(public_url)
        self.origin = f"{parts.scheme}://{parts.netloc}".lower()

    # -- handlers ---------------------------------------------------------------------------

    async def show(self, request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        found = await self._report(request, token)
        if isinstance(found, web.Response):
            return found
        if found.rated is not None:
            return self._already(request, found, status=200)
        return self._form(request, token, found, read_form([], []), status=200, errors=False)

    async def rate(self, request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        found = await self._report(request, token)
        if isinstance(found, web.Response):
            return found
        if not self._same_site(request):
            return _refused(request)
        if request.content_length is not None and request.content_length > MAX_POST:
            return _resident(
                error_page(
                    request,
                    413,
                    "Your feedback is too long to send",
                    f"Keep your comment to {COMMENT_MAX:,} characters or fewer, then go back "
                    "and send it again. Nothing has been recorded yet.",
                )
            )
        if request.content_type not in _FORMS:
            return _refused(request)
        form = await request.post()
        sent = form.getall(FORM_FIELD, [])
        binding = sent[0] if len(sent) == 1 and isinstance(sent[0], str) else None
        if not binding_ok(self.form_key, token, binding):
            return _refused(request)
        if found.rated is not None:
            return self._already(request, found, status=409)
        answer = read_form(
            [v for v in form.getall("rating", []) if isinstance(v, str)],
            [v for v in form.getall("comment", []) if isinstance(v, str)],
        )
        if not answer.ok:
            return self._form(request, token, found, answer, status=422, errors=True)
        assert answer.rating is not None
        now = request.app[clock_key]()
        result = await record_feedback(
            request.app[db_key], self.council, found.report_id, answer.rating, answer.comment, now
        )
        if result.outcome is Recorded.NOT_FOUND:  # the task moved on since it was read
            return _unknown(request)
        if result.outcome is Recorded.ALREADY:  # another post got there first
            return self._already(request, found, status=409)
        return _resident(page(request, "feedback/thanks.html", {"council": self.council.info.name}))

    # -- steps ------------------------------------------------------------------------------

    async def _report(self, request: web.Request, token: str) -> ReportForFeedback | web.Response:
        """The report the token names, or the page refusing it (404 or 410)."""
        now = request.app[clock_key]()
        check = read_token(self.key, token, now)
        if check.state is TokenState.EXPIRED:
            return _resident(
                error_page(
                    request,
                    410,
                    "This feedback link has expired",
                    "Feedback links work for 30 days after the work is done. Thank you for "
                    "wanting to tell us how it went. If the problem is back, please report it "
                    "again.",
                )
            )
        if check.state is not TokenState.VALID or check.report_id is None:
            return _unknown(request)
        report_id = check.report_id
        found = await request.app[db_key].query(lambda conn: report_for_feedback(conn, report_id))
        if found is None:
            return _unknown(request)
        return found

    def _same_site(self, request: web.Request) -> bool:
        """No Origin (older browsers), ``null`` (a form posted from a no-referrer page), or
        this site (the public address, or the host the request came to)."""
        origin = request.headers.get("Origin")
        if origin is None or origin == "null":
            return True
        origin = origin.lower()
        host = request.host.lower()
        return origin in (self.origin, f"https://{host}", f"http://{host}")

    def _facts(self, found: ReportForFeedback) -> dict[str, Any]:
        council = self.council
        task_type = council.task_type(found.type)
        outcome = outcome_words(council.outcomes_for(found.type), found.outcome, "resident")
        return {
            "council": council.info.name,
            "reference": format_reference(council.info.reference_prefix, found.task_id),
            "type_name": task_type.name if task_type else found.type.replace("-", " "),
            "address": (found.address or "").strip() or sentence_case(NO_ADDRESS),
            "completed_on": report_date(found.completed_at, council),
            "outcome": sentence_case(outcome) if outcome else None,
        }

    def _form(
        self,
        request: web.Request,
        token: str,
        found: ReportForFeedback,
        answer: FeedbackForm,
        *,
        status: int,
        errors: bool,
    ) -> web.Response:
        context = self._facts(found) | {
            "action": f"/feedback/{token}",
            "form_field": FORM_FIELD,
            "binding": form_binding(self.form_key, token),
            "ratings": [(r, rating_label(r)) for r in RATINGS],
            "errors": answer.errors if errors else {},
            "typed_rating": answer.typed_rating if errors else "",
            "typed_comment": answer.typed_comment if errors else "",
            "comment_max": f"{COMMENT_MAX:,}",
        }
        return _resident(page(request, "feedback/form.html", context, status=status))

    def _already(self, request: web.Request, found: ReportForFeedback, *, status: int):
        return _resident(page(request, "feedback/already.html", self._facts(found), status=status))


def _resident(response: web.Response) -> web.Response:
    response.headers.update(RESIDENT_HEADERS)
    return response


def _unknown(request: web.Request) -> web.Response:
    return _resident(
        error_page(
            request,
            404,
            "This feedback link does not work",
            "Check that you used the whole link from the message we sent you. If it still "
            "does not work, the report may no longer be open for feedback. Nothing has been "
            "recorded.",
        )
    )


def _refused(request: web.Request) -> web.Response:
    return _resident(
        error_page(
            request,
            403,
            "Your feedback could not be sent from here",
            "Please open the link in the message we sent you again and send your feedback "
            "from that page. Nothing has been recorded.",
        )
    )


def setup(app: web.Application, ctx: WebContext) -> None:
    pages = FeedbackPages(ctx.council, ctx.secret, ctx.public_url)
    app.router.add_get("/feedback/{token}", pages.show)
    app.router.add_post("/feedback/{token}", pages.rate)
