"""Unsubscribe (RFC 8058): POST unsubscribes at once, GET only shows a confirm button.

Mail clients POST ``List-Unsubscribe=One-Click`` to the List-Unsubscribe URL without
cookies or a CSRF token (they have none): the signed, purpose-specific token in the URL is
the authorisation. A GET, which link scanners and prefetchers issue, changes nothing.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from newsletter.audience.selfservice import unsubscribe
from newsletter.models import SubscriberStatus
from newsletter.web.common import (
    bad_request,
    invalid_link,
    read_form,
    token_subscriber,
    use_email_link,
)
from newsletter.web.context import context_of
from newsletter.web.pages import N_

log = logging.getLogger("newsletter.web")

SUBSCRIBED = (SubscriberStatus.ACTIVE, SubscriberStatus.PENDING)


async def no_token(request: Request) -> Response:
    """``/unsubscribe`` without a token (the archive copy's link): explain where to go."""
    return use_email_link(request, N_("Unsubscribe"))


async def confirm_page(request: Request) -> Response:
    """GET: a page with one button; nothing changes."""
    sub = token_subscriber(request, "unsubscribe")
    if sub is None:
        return invalid_link(request)
    ctx = context_of(request)
    locale = ctx.pages.negotiate(request, sub.locale)
    preferences = ctx.href(f"/preferences/{ctx.signer.sign('preferences', sub.id)}", request)
    if sub.status not in SUBSCRIBED:
        return _done(request, locale, preferences)
    return ctx.pages.page(
        request,
        locale,
        "web/unsubscribe.html",
        action=ctx.href(f"/unsubscribe/{request.path_params['token']}", request),
        preferences_url=preferences,
    )


def _done(request: Request, locale: str, preferences: str) -> Response:
    ctx = context_of(request)
    return ctx.pages.message(
        request,
        locale,
        N_("You are unsubscribed"),
        [
            N_("You will receive no more newsletters from %(organisation)s."),
            N_("Changed your mind? You can subscribe again in the preference centre."),
        ],
        links=[(N_("Manage preferences"), preferences)],
        organisation=ctx.settings.organisation.name_for(locale),
    )


async def one_click(request: Request) -> Response:
    """POST: unsubscribe now (RFC 8058 one-click, or the confirm page's button)."""
    ctx = context_of(request)
    token = request.path_params["token"]
    data = ctx.verify("unsubscribe", token)
    sub = ctx.subscriber(data)
    if data is None or sub is None:
        return invalid_link(request)
    form = await read_form(request)
    if form is None or form.get("List-Unsubscribe") != ["One-Click"]:
        return bad_request(request, "the body must be List-Unsubscribe=One-Click")
    # the page's button says so; a mail client's POST carries nothing else
    source = "web:page" if form.get("via") == ["page"] else "web:one-click"
    sub = unsubscribe(ctx.store, sub.id, source=source, now=ctx.clock(), edition_id=data.edition_id)
    log.info("subscriber %d unsubscribed (%s)", sub.id, source)
    locale = ctx.pages.negotiate(request, sub.locale)
    return _done(
        request, locale, ctx.href(f"/preferences/{ctx.signer.sign('preferences', sub.id)}", request)
    )


def routes() -> list[BaseRoute]:
    """The unsubscribe routes."""
    return [
        Route("/unsubscribe", no_token, methods=["GET"]),
        Route("/unsubscribe/{token}", confirm_page, methods=["GET"]),
        Route("/unsubscribe/{token}", one_click, methods=["POST"]),
    ]
