"""Data rights from the preference centre: download everything as JSON, or erase it.

Both are POSTs with a CSRF token of their own purpose; erasing also needs a ticked box,
so that neither a stray click nor a forged form can delete anyone.
"""

from __future__ import annotations

import contextlib
import json
import logging

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from newsletter.audience.privacy import erase_subscriber, export_data
from newsletter.errors import SubscriberError
from newsletter.web.common import first, read_posted
from newsletter.web.context import context_of
from newsletter.web.pages import N_

log = logging.getLogger("newsletter.web")


async def export(request: Request) -> Response:
    """POST: the subscriber's data as a JSON download."""
    posted = await read_posted(request, "preferences", "export")
    if isinstance(posted, Response):
        return posted
    ctx = context_of(request)
    data = export_data(ctx.store, posted.sub.id, ctx.clock())
    body = json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True)
    return Response(
        body,
        media_type="application/json; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="newsletter-data.json"'},
    )


async def erase(request: Request) -> Response:
    """POST: erase the subscriber (the box must be ticked) and suppress the address."""
    posted = await read_posted(request, "preferences", "erase")
    if isinstance(posted, Response):
        return posted
    sub, locale, form = posted
    ctx = context_of(request)
    if first(form, "confirm") != "yes":
        return ctx.pages.message(
            request,
            locale,
            N_("Nothing was erased"),
            [N_("Please tick the box to confirm that your data should be erased.")],
            status=400,
        )
    # erased meanwhile (a second tab): the outcome is the same
    with contextlib.suppress(SubscriberError):
        erase_subscriber(ctx.store, sub.id, source="web:preferences", now=ctx.clock())
    log.info("subscriber %d erased from the preference centre", sub.id)
    return ctx.pages.message(
        request,
        locale,
        N_("Your data has been erased"),
        [
            N_(
                "We keep only a one-way hash of your address, so that it is never added to "
                "our lists again by mistake."
            )
        ],
    )


def routes() -> list[BaseRoute]:
    """The data rights routes."""
    return [
        Route("/preferences/{token}/export", export, methods=["POST"]),
        Route("/preferences/{token}/erase", erase, methods=["POST"]),
    ]
