"""GET /r/{token} (a tracked link) and GET /o/{token} (the open pixel).

The redirect goes to the target signed into the token and nowhere else: a tampered,
truncated or wrong-purpose token gets the localized "link not valid" page (400) and no
``Location``. A click or open is counted only while ``[tracking]`` switches it on; a
genuine link of an older email still redirects when tracking was switched off since.
Recording is one insert (``EngagementStore.record``); if the database is down the reader
is still sent on, and the failure is logged.
"""

from __future__ import annotations

import base64
import logging

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from newsletter.send.tokens import TokenError
from newsletter.send.tracking import Tracked, TrackingSigner
from newsletter.web.common import invalid_link
from newsletter.web.context import WebContext, context_of

__all__ = ["PIXEL", "routes"]

log = logging.getLogger("newsletter.web")

#: a transparent 1x1 GIF
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
_NO_STORE = {"Cache-Control": "no-store, private", "Referrer-Policy": "no-referrer"}


async def _record(ctx: WebContext, kind: str, found: Tracked) -> None:
    try:
        await run_in_threadpool(
            ctx.store.engagement.record,
            kind,
            edition_id=found.edition_id,
            locale=found.locale,
            delivery_id=None if ctx.settings.tracking.anonymous else found.delivery_id,
            story=found.target or None,
            at=ctx.clock(),
        )
    except Exception:  # the reader goes on; a lost count is only a lost count
        log.exception("could not record a %s of edition %d", kind, found.edition_id)


def routes(signer: TrackingSigner) -> list[BaseRoute]:
    """The tracking routes, verifying with ``signer``."""

    async def click(request: Request) -> Response:
        ctx = context_of(request)
        try:
            found = signer.verify("click", str(request.path_params["token"]))
        except TokenError as exc:
            log.info("refused tracked link: %s", exc)
            return invalid_link(request)
        if ctx.settings.tracking.clicks and request.method == "GET":
            await _record(ctx, "clicked", found)
        return RedirectResponse(found.target, status_code=302, headers=_NO_STORE)

    async def pixel(request: Request) -> Response:
        ctx = context_of(request)
        try:
            found = signer.verify("open", str(request.path_params["token"]))
        except TokenError:
            return Response(PIXEL, media_type="image/gif", headers=_NO_STORE)
        if ctx.settings.tracking.opens and request.method == "GET":
            await _record(ctx, "opened", found)
        return Response(PIXEL, media_type="image/gif", headers=_NO_STORE)

    return [
        Route("/r/{token}", click, methods=["GET", "HEAD"]),
        Route("/o/{token}", pixel, methods=["GET", "HEAD"]),
    ]
