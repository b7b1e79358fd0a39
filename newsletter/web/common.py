"""Responses and helpers shared by the page modules: error pages, form reading, and the
checks every POST from a subscriber's own page passes."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any, NamedTuple

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from newsletter.models import Subscriber
from newsletter.web.context import context_of
from newsletter.web.csrf import FIELD
from newsletter.web.hostile import has_control
from newsletter.web.pages import N_

log = logging.getLogger("newsletter.web")

Form = dict[str, list[str]]

#: heading and text (msgids) of the error page for an HTTP status; others get 400's
STATUS_TEXT: dict[int, tuple[str, str]] = {
    400: (N_("Bad request"), N_("The request could not be understood.")),
    403: (N_("The form has expired"), N_("Please reload the page and submit the form again.")),
    404: (N_("Page not found"), N_("There is nothing at this address.")),
    405: (N_("Bad request"), N_("The request could not be understood.")),
    413: (N_("Request too large"), N_("The form data is larger than this site accepts.")),
    429: (N_("Too many requests"), N_("Please wait a while and try again.")),
    500: (N_("Something went wrong"), N_("Please try again later.")),
    503: (N_("Something went wrong"), N_("Please try again later.")),
}


#: a path segment this long may be a link token: never written to a log
_LONG_SEGMENT = re.compile(r"[^/]{24,}")


def log_path(request: Request) -> str:
    """The request path as it may be logged: the matched route's pattern (tokens stay
    ``{token}``), else the path with every long segment masked.

    Page URLs carry subscriber tokens, and a preferences token never expires: whoever
    reads a log line with one could manage that person's subscription.
    """
    route = request.scope.get("route")
    pattern = getattr(route, "path", None)
    if isinstance(pattern, str) and pattern:
        return pattern
    return _LONG_SEGMENT.sub("…", request.url.path)


async def read_form(request: Request) -> Form | None:
    """The posted form (urlencoded or multipart) as lists of values, or None when the body
    is not a form, cannot be parsed or carries control characters."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        # an empty POST is an empty form (its checks then fail); any other body is not one
        return {} if not ctype and not await request.body() else None
    try:
        form = await request.form(max_files=0, max_fields=200)
    except ClientDisconnect:
        raise
    except Exception as exc:  # python-multipart raises several types for broken bodies
        if getattr(exc, "status_code", None) == 413:
            raise
        log.info("unreadable form body on %s: %s", log_path(request), exc)
        return None
    try:
        fields = {key: [v for v in form.getlist(key) if isinstance(v, str)] for key in form}
    finally:
        await form.close()
    # NUL and other controls: PostgreSQL refuses NUL in text, terminals run ESC sequences
    if any(has_control(k) or any(has_control(v) for v in vs) for k, vs in fields.items()):
        log.info("form with control characters on %s", log_path(request))
        return None
    return fields


def first(form: Form, key: str, default: str = "") -> str:
    """The first value of ``key`` in a form, or ``default``."""
    values = form.get(key)
    return values[0] if values else default


def notice(
    request: Request,
    title: str,
    paragraphs: Iterable[str],
    *,
    locale: str | None = None,
    **kwargs: Any,
) -> Response:
    """A message page (:meth:`Pages.message`) in ``locale``, else the visitor's language."""
    ctx = context_of(request)
    locale = locale or ctx.pages.negotiate(request)
    return ctx.pages.message(request, locale, title, paragraphs, **kwargs)


def error_page(request: Request, status: int, locale: str | None = None, **kwargs: Any) -> Response:
    """The localized error page for HTTP ``status`` (see :data:`STATUS_TEXT`)."""
    title, text = STATUS_TEXT.get(status, STATUS_TEXT[400])
    return notice(request, title, [text], locale=locale, status=status, **kwargs)


def invalid_link(request: Request) -> Response:
    """400: a tampered, expired, wrong-purpose or unknown token, in the visitor's language."""
    return notice(
        request,
        N_("This link is not valid"),
        [
            N_(
                "The link may be incomplete or out of date. Please use the link in the most "
                "recent email you received."
            )
        ],
        status=400,
    )


def use_email_link(request: Request, title: str) -> Response:
    """A page for a token-less ``/unsubscribe`` or ``/preferences`` (the archive copy's
    links): the link to use is at the end of every email."""
    return notice(
        request,
        title,
        [
            N_(
                "To unsubscribe or change your preferences, use the link at the end of "
                "any email you received from us."
            )
        ],
    )


def bad_request(request: Request, reason: str, locale: str | None = None) -> Response:
    """400 for a malformed request; ``reason`` goes to the log, not to the visitor."""
    log.info("bad request on %s: %s", log_path(request), reason)
    return error_page(request, 400, locale)


def csrf_failed(request: Request, locale: str) -> Response:
    """403: the form's CSRF token is missing, expired or for another form."""
    log.info("CSRF check failed on %s", log_path(request))
    return error_page(request, 403, locale)


def token_subscriber(
    request: Request, purpose: str, *, max_age: int | None = None
) -> Subscriber | None:
    """The subscriber the ``{token}`` path parameter names, if it is a genuine token for
    ``purpose`` (and younger than ``max_age`` seconds, when given)."""
    ctx = context_of(request)
    return ctx.subscriber(ctx.verify(purpose, request.path_params["token"], max_age=max_age))


class Posted(NamedTuple):
    """A checked POST from a subscriber's page: who, the page language, the form."""

    sub: Subscriber
    locale: str
    form: Form


async def read_posted(
    request: Request, purpose: str, form_purpose: str, *, max_age: int | None = None
) -> Posted | Response:
    """The subscriber named by the ``{token}`` path parameter (see :func:`token_subscriber`)
    and the posted form, once the form's CSRF token holds for ``form_purpose``; otherwise
    the error page to answer with."""
    ctx = context_of(request)
    sub = token_subscriber(request, purpose, max_age=max_age)
    if sub is None:
        return invalid_link(request)
    locale = ctx.pages.negotiate(request, sub.locale)
    form = await read_form(request)
    if form is None:
        return bad_request(request, "not a form", locale)
    if not ctx.csrf.check(first(form, FIELD), form_purpose, sub.id):
        return csrf_failed(request, locale)
    return Posted(sub, locale, form)


#: the largest id a store column holds (PostgreSQL INTEGER); larger ones are nobody's
MAX_ID = 2**31 - 1


def path_id(value: str) -> int | None:
    """A store id from a URL path segment, or None for anything that cannot be one.

    Plain ASCII digits only, and no larger than :data:`MAX_ID`: a 25-digit number would
    otherwise overflow the database driver and answer 500 instead of 404.
    """
    if not value.isascii() or not value.isdigit() or len(value) > len(str(MAX_ID)):
        return None
    number = int(value)
    return number if 0 < number <= MAX_ID else None
