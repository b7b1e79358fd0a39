"""The next edition of each segment (editors): the selected stories with the lead pinned,
stories excluded and moved, an intro per locale, a preview of each locale exactly as the
email renders, a test send to oneself, preparing the edition and approving it.

The plan and its overrides are :mod:`newsletter.digest.editorial`'s. Preparing runs the
segment's digest here (as ``newsletter digest --segment``, without gathering); a segment
with ``approval = "required"`` then waits for approval on the edition's page.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from newsletter.errors import NewsletterError
from newsletter.web.desk.core import NavEntry, Visit, guarded, notice_code
from newsletter.web.pages import N_

log = logging.getLogger("newsletter.web.desk")

NAV = (NavEntry(N_("Next edition"), "/next", "editor", 30),)
TEMPLATES = ("desk/next.html",)

#: the preview is an email, shown as its own page: no script, no form, no frame of it
PREVIEW_CSP: Final = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; "
    "form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
)

DONE = {
    "plan": notice_code("plan-saved", N_("The next edition is changed.")),
    "test": notice_code("test-sent", N_("The test message is sent to you.")),
    "prepared": notice_code(
        "prepared", N_("The edition is being prepared; it appears under Editions.")
    ),
}


def _segment(visit: Visit) -> str | None:
    name = str(visit.request.path_params.get("segment", ""))
    return name if name in {s.name for s in visit.ctx.settings.segments} else None


@guarded("editor")
async def first_segment(visit: Visit) -> Response:
    """GET /desk/next: the first segment's next edition (links to the others)."""
    if not visit.ctx.settings.segments:
        return visit.error(404, N_("There is nothing at this address."))
    return visit.redirect(f"/next/{visit.ctx.settings.segments[0].name}")


@guarded("editor")
async def plan_page(visit: Visit) -> Response:
    """GET /desk/next/{segment}."""
    from newsletter.digest import editorial

    segment = _segment(visit)
    if segment is None:
        return visit.error(404, N_("There is nothing at this address."))
    settings = visit.ctx.settings
    plan = await run_in_threadpool(
        lambda: editorial.next_edition(settings, visit.ctx.store, segment, now=visit.now())
    )
    return visit.page(
        "desk/next.html",
        plan=plan,
        segment=segment,
        segments=[s.name for s in settings.segments],
        approval=getattr(settings.segment(segment), "approval", "none"),
        locales=settings.locales.available,
    )


@guarded("editor")
async def preview(visit: Visit) -> Response:
    """GET /desk/next/{segment}/preview/{locale}: the email of that locale, as it renders."""
    from newsletter.digest import editorial

    segment = _segment(visit)
    locale = str(visit.request.path_params["locale"])
    if segment is None or locale not in visit.ctx.settings.locales.available:
        return visit.error(404, N_("There is nothing at this address."))
    try:
        variant = await run_in_threadpool(
            lambda: editorial.preview_next(
                visit.ctx.settings, visit.ctx.store, segment, locale, now=visit.now()
            )
        )
    except NewsletterError as exc:
        return visit.page("desk/message.html", status=400, message=str(exc))
    if variant is None:
        return visit.error(404, N_("Nothing would be sent now."))
    return HTMLResponse(variant.html, headers={"Content-Security-Policy": PREVIEW_CSP})


async def _plan_action(visit: Visit, action: str) -> Response:
    from newsletter.digest import editorial

    segment = _segment(visit)
    if segment is None:
        return visit.error(404, N_("There is nothing at this address."))
    s, st, now, who = visit.ctx.settings, visit.ctx.store, visit.now(), visit.actor
    key = visit.field("key")[:500]
    try:
        if action == "lead":
            change = editorial.pin_lead(s, st, segment, key or None, actor=who, now=now)
        elif action == "exclude":
            change = editorial.exclude_story(s, st, segment, key, actor=who, now=now)
        elif action == "include":
            change = editorial.include_story(s, st, segment, key, actor=who, now=now)
        elif action == "move":
            position = (
                int(visit.field("position") or "0")
                if visit.field("position").lstrip("-").isdigit()
                else 0
            )
            change = editorial.move_story(s, st, segment, key, max(position, 0), actor=who, now=now)
        elif action == "intro":
            locale = visit.field("locale")
            change = editorial.set_intro(
                s, st, segment, locale, visit.form.get("text", [""])[0][:5000], actor=who, now=now
            )
        elif action == "reset":
            change = editorial.reset_plan(s, st, segment, actor=who, now=now)
        else:
            locale = visit.field("locale")
            provider = await visit.ctx.get_provider()
            change = await run_in_threadpool(
                lambda: editorial.test_send(
                    s, st, segment, locale, who, actor=who, now=now, provider=provider
                )
            )
            visit.audit_change(change)
            return visit.redirect(f"/next/{segment}", DONE["test"])
    except NewsletterError as exc:
        return visit.page("desk/message.html", status=400, message=str(exc))
    visit.audit_change(change)
    return visit.redirect(f"/next/{segment}", DONE["plan"])


def _action(name: str) -> Route:
    @guarded("editor")
    async def handler(visit: Visit) -> Response:
        return await _plan_action(visit, name)

    handler.__doc__ = f"POST /desk/next/{{segment}}/{name}."
    return Route(f"/next/{{segment}}/{name}", handler, methods=["POST"])


@guarded("editor")
async def prepare(visit: Visit) -> Response:
    """POST /desk/next/{segment}/prepare: run the segment's digest now (no gathering)."""
    from newsletter.digest.pipeline import run_digest

    segment = _segment(visit)
    if segment is None:
        return visit.error(404, N_("There is nothing at this address."))
    settings, store = visit.ctx.settings, visit.ctx.store

    def run() -> None:
        try:
            run_digest(settings, store=store, segments=[segment], do_gather=False)
        except NewsletterError as exc:
            log.warning("desk: preparing the edition of %s: %s", segment, exc)

    visit.ctx.background.submit(f"preparing {segment}", lambda: asyncio.to_thread(run))
    visit.audit("edition.prepare", f"segment:{segment}")
    return visit.redirect("/editions", DONE["prepared"])


def routes() -> list[BaseRoute]:
    """The next-edition pages."""
    return [
        Route("/next", first_segment, methods=["GET", "HEAD"]),
        Route("/next/{segment}", plan_page, methods=["GET", "HEAD"]),
        Route("/next/{segment}/preview/{locale}", preview, methods=["GET", "HEAD"]),
        Route("/next/{segment}/prepare", prepare, methods=["POST"]),
        *(
            _action(n)
            for n in ("lead", "exclude", "include", "move", "intro", "reset", "test-send")
        ),
    ]
