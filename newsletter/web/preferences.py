"""The preference centre: language, lists, pause; every change is a POST with a CSRF token.

The link in each email's footer carries a ``preferences`` token naming the subscriber; it
does not expire, so old emails keep working. After saving, the browser is redirected to
the page again (POST/redirect/GET), shown in the newly chosen language.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from newsletter.audience.selfservice import (
    editable_lists,
    pause_choices,
    resubscribe,
    update_preferences,
)
from newsletter.errors import SubscriberError
from newsletter.models import Subscriber, SubscriberStatus
from newsletter.web.common import (
    bad_request,
    first,
    invalid_link,
    read_posted,
    token_subscriber,
    use_email_link,
)
from newsletter.web.context import WebContext, context_of
from newsletter.web.csrf import FIELD
from newsletter.web.pages import N_


async def no_token(request: Request) -> Response:
    """``/preferences`` without a token (the archive copy's link): explain where to go."""
    return use_email_link(request, N_("Manage preferences"))


def render(
    request: Request, ctx: WebContext, sub: Subscriber, token: str, *, saved: bool = False
) -> Response:
    """The preference centre page for ``sub``."""
    locale = ctx.pages.negotiate(request, sub.locale)
    labels = {lst.name: lst.description_for(locale) for lst in ctx.settings.lists}
    now = ctx.clock()
    base = f"/preferences/{token}"
    return ctx.pages.page(
        request,
        locale,
        "web/preferences.html",
        subscriber=sub,
        active=sub.status is SubscriberStatus.ACTIVE,
        can_resubscribe=sub.status is SubscriberStatus.UNSUBSCRIBED,
        saved=saved,
        locales=ctx.settings.locales.available,
        lists=[(name, labels.get(name, name)) for name in editable_lists(ctx.settings, sub)],
        paused_until=sub.paused_until if sub.is_paused(now) else None,
        pause_weeks=pause_choices(ctx.settings),
        action=ctx.href(base, request),
        export_action=ctx.href(f"{base}/export", request),
        erase_action=ctx.href(f"{base}/erase", request),
        tracking=ctx.settings.tracking,
        unsubscribe_url=ctx.href(f"/unsubscribe/{ctx.signer.sign('unsubscribe', sub.id)}", request),
        csrf=ctx.csrf.issue("preferences", sub.id),
        csrf_export=ctx.csrf.issue("export", sub.id),
        csrf_erase=ctx.csrf.issue("erase", sub.id),
        csrf_field=FIELD,
    )


async def show(request: Request) -> Response:
    """GET: the form."""
    sub = token_subscriber(request, "preferences")
    if sub is None:
        return invalid_link(request)
    token = request.path_params["token"]
    saved = request.query_params.get("saved") == "1"
    return render(request, context_of(request), sub, token, saved=saved)


async def save(request: Request) -> Response:
    """POST: apply the form (or resubscribe), then redirect to the page."""
    posted = await read_posted(request, "preferences", "preferences")
    if isinstance(posted, Response):
        return posted
    sub, locale, form = posted
    ctx = context_of(request)
    now = ctx.clock()
    source = "web:preferences"
    try:
        if first(form, "action") == "resubscribe":
            resubscribe(ctx.store, sub.id, source=source, now=now)
        else:
            pause = first(form, "pause", "keep")
            update_preferences(
                ctx.settings,
                ctx.store,
                sub,
                locale=first(form, "locale", sub.locale),
                lists=tuple(form.get("lists", [])),
                pause_weeks=None if pause == "keep" else int(pause),
                source=source,
                now=now,
            )
    except (SubscriberError, ValueError) as exc:
        return bad_request(request, str(exc), locale)
    token = request.path_params["token"]
    return RedirectResponse(ctx.href(f"/preferences/{token}?saved=1", request), status_code=303)


def routes() -> list[BaseRoute]:
    """The preference centre routes."""
    return [
        Route("/preferences", no_token, methods=["GET"]),
        Route("/preferences/{token}", show, methods=["GET"]),
        Route("/preferences/{token}", save, methods=["POST"]),
    ]
