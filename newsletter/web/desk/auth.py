"""Logging in and out of the desk.

An unknown address and a wrong password get the same answer, and cost the same time (a
dummy hash is verified). Attempts are limited per client IP and per account address
(``[desk] login_limit_*``); the account limit counts attempts for known and unknown
addresses alike, so it reveals nothing either. A login always starts a new session id.
"""

from __future__ import annotations

import logging

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from newsletter.audience.subscribers import normalize_email
from newsletter.errors import SubscriberError
from newsletter.web.common import first, read_form
from newsletter.web.context import context_of
from newsletter.web.desk.core import Visit, desk_locale, desk_of, guarded, href, render
from newsletter.web.desk.users import MAX_PASSWORD, verify_password
from newsletter.web.pages import N_

log = logging.getLogger("newsletter.web.desk")

LOGIN_PURPOSE = "desk-login"


def _next_target(request: Request, raw: str) -> str:
    """Where to go after login: a path inside the desk only (no open redirect)."""
    root = href(request, "")
    if raw.startswith(root + "/") and not raw.startswith("//") and "\\" not in raw:
        return raw
    return root + "/"


def _login_page(
    request: Request,
    locale: str,
    *,
    status: int = 200,
    error: str | None = None,
    email: str = "",
    next_path: str = "",
) -> Response:
    ctx = context_of(request)
    return render(
        request,
        locale,
        "desk/login.html",
        status=status,
        user=None,
        csrf_token=ctx.csrf.issue(LOGIN_PURPOSE, 0),
        error=ctx.pages.gettext(locale, error) if error else None,
        email=email,
        next_path=next_path,
    )


async def login_form(request: Request) -> Response:
    """GET /desk/login."""
    ctx = context_of(request)
    locale = desk_locale(request)
    if desk_of(request).sessions.current(request, ctx.clock()) is not None:
        return RedirectResponse(href(request, "/"), status_code=303)
    return _login_page(request, locale, next_path=request.query_params.get("next", ""))


async def login(request: Request) -> Response:
    """POST /desk/login: check the limits, then the password; a new session on success."""
    ctx = context_of(request)
    desk = desk_of(request)
    cfg = ctx.settings.desk
    locale = desk_locale(request)
    form = await read_form(request)
    if form is None or not ctx.csrf.check(first(form, "csrf_token"), LOGIN_PURPOSE, 0):
        return _login_page(
            request,
            locale,
            status=403,
            error=N_("Please reload the page and submit the form again."),
        )
    raw_email = first(form, "email").strip()[:320]
    password = first(form, "password")[: MAX_PASSWORD + 1]
    next_path = first(form, "next")[:500]
    ip = request.client.host if request.client else "unknown"
    try:
        address = normalize_email(raw_email)
    except SubscriberError:
        address = raw_email.lower()
    if not ctx.limiter.hit(
        f"desk-login-ip:{ip}", cfg.login_limit_per_ip, cfg.login_limit_window
    ) or not ctx.limiter.hit(
        f"desk-login-account:{address}", cfg.login_limit_per_account, cfg.login_limit_window
    ):
        log.info("desk login refused: too many attempts")
        return _login_page(
            request,
            locale,
            status=429,
            error=N_("Too many login attempts. Please wait a while and try again."),
            email=raw_email,
            next_path=next_path,
        )
    user = desk.store.desk.find_user(address)
    ok = await run_in_threadpool(verify_password, user, password)
    if not ok or user is None:
        log.info("desk login failed")
        return _login_page(
            request,
            locale,
            status=400,
            error=N_("The email address or the password is not right."),
            email=raw_email,
            next_path=next_path,
        )
    response = RedirectResponse(_next_target(request, next_path), status_code=303)
    now = ctx.clock()
    desk.sessions.start(request, response, user, now)
    desk.store.desk.audit(user.email, "session.login", f"user:{user.email}", now)
    return response


@guarded("translator")
async def logout(visit: Visit) -> Response:
    """POST /desk/logout."""
    response = RedirectResponse(href(visit.request, "/login"), status_code=303)
    visit.desk.sessions.end(visit.request, response)
    visit.audit("session.logout", f"user:{visit.actor}")
    return response


def routes() -> list[BaseRoute]:
    """The login and logout routes."""
    return [
        Route("/login", login_form, methods=["GET", "HEAD"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
    ]
