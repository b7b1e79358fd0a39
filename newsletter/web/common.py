"""Responses and helpers shared by the page modules: error pages, form reading."""

from __future__ import annotations

import logging

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from newsletter.web.context import context_of
from newsletter.web.pages import N_

log = logging.getLogger("newsletter.web")

Form = dict[str, list[str]]


async def read_form(request: Request) -> Form | None:
    """The posted form (urlencoded or multipart) as lists of values, or None when the body
    is not a form or cannot be parsed."""
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
        log.info("unreadable form body on %s: %s", request.url.path, exc)
        return None
    try:
        return {key: [v for v in form.getlist(key) if isinstance(v, str)] for key in form}
    finally:
        await form.close()


def first(form: Form, key: str, default: str = "") -> str:
    """The first value of ``key`` in a form, or ``default``."""
    values = form.get(key)
    return values[0] if values else default


def invalid_link(request: Request) -> Response:
    """400: a tampered, expired, wrong-purpose or unknown token, in the visitor's language."""
    ctx = context_of(request)
    return ctx.pages.message(
        request,
        ctx.pages.negotiate(request),
        N_("This link is not valid"),
        [
            N_(
                "The link may be incomplete or out of date. Please use the link in the most "
                "recent email you received."
            )
        ],
        status=400,
    )


def bad_request(request: Request, reason: str, locale: str | None = None) -> Response:
    """400 for a malformed request; ``reason`` goes to the log, not to the visitor."""
    ctx = context_of(request)
    log.info("bad request on %s: %s", request.url.path, reason)
    return ctx.pages.message(
        request,
        locale or ctx.pages.negotiate(request),
        N_("Bad request"),
        [N_("The request could not be understood.")],
        status=400,
    )


def csrf_failed(request: Request, locale: str) -> Response:
    """403: the form's CSRF token is missing, expired or for another form."""
    ctx = context_of(request)
    log.info("CSRF check failed on %s", request.url.path)
    return ctx.pages.message(
        request,
        locale,
        N_("The form has expired"),
        [N_("Please reload the page and submit the form again.")],
        status=403,
    )
