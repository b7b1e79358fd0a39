"""Translations, the heart of a multilingual desk: coverage of each segment's next edition
per locale, and one story's versions side by side, with forms to write a version by hand,
ask for a machine draft and mark a version reviewed.

Translators see and change only their own locales (:func:`~newsletter.web.desk.core.
can_translate`); editors and admins all of them. The work is :mod:`newsletter.digest.
editorial`'s, which keeps a machine version labelled in the email until it is reviewed.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from newsletter.errors import NewsletterError
from newsletter.store.desk import DeskUser
from newsletter.web.common import path_id
from newsletter.web.desk.core import NavEntry, Visit, can, can_translate, guarded, notice_code
from newsletter.web.pages import N_

log = logging.getLogger("newsletter.web.desk")

NAV = (NavEntry(N_("Translations"), "/translations", "translator", 20),)
TEMPLATES = ("desk/translations.html", "desk/versions.html")

DONE = {
    "saved": notice_code("version-saved", N_("The version is saved.")),
    "machine": notice_code(
        "version-machine", N_("A machine draft is saved; review it before it goes out unlabelled.")
    ),
    "reviewed": notice_code("version-reviewed", N_("The version is marked reviewed.")),
}


def visible_locales(user: DeskUser, available: list[str]) -> list[str]:
    """The locales whose translations ``user`` sees."""
    if can(user, "editor"):
        return list(available)
    return [loc for loc in available if loc in user.locales]


def _coverage(visit: Visit) -> list[tuple[str, Any]]:
    from newsletter.digest import editorial

    out = []
    for seg in visit.ctx.settings.segments:
        try:
            out.append(
                (
                    seg.name,
                    editorial.next_edition(
                        visit.ctx.settings, visit.ctx.store, seg.name, now=visit.now()
                    ),
                )
            )
        except NewsletterError as exc:
            log.info("translations: next edition of %s: %s", seg.name, exc)
    return out


@guarded("translator")
async def overview(visit: Visit) -> Response:
    """GET /desk/translations: what is left per locale, for each segment's next edition."""
    plans = await run_in_threadpool(_coverage, visit)
    return visit.page(
        "desk/translations.html",
        plans=plans,
        shown=visible_locales(visit.user, list(visit.ctx.settings.locales.available)),
    )


def _item_id(visit: Visit) -> int | None:
    return path_id(str(visit.request.path_params["item_id"]))


@guarded("translator")
async def versions(visit: Visit) -> Response:
    """GET /desk/translations/{item_id}: the story's versions side by side."""
    from newsletter.digest import editorial

    item_id = _item_id(visit)
    if item_id is None:
        return visit.error(404, N_("There is nothing at this address."))
    try:
        story = editorial.story_versions(visit.ctx.settings, visit.ctx.store, item_id)
    except NewsletterError:
        return visit.error(404, N_("There is nothing at this address."))
    shown = visible_locales(visit.user, list(visit.ctx.settings.locales.available))
    original = story.original.lang
    return visit.page(
        "desk/versions.html",
        story=story,
        item_id=item_id,
        shown=[loc for loc in shown if loc != original],
        original=original,
        editable={loc: can_translate(visit.user, loc) for loc in shown},
        machine=editorial.machine_translation_available(visit.ctx.settings),
    )


async def _version_action(visit: Visit, action: str) -> Response:
    from newsletter.digest import editorial

    item_id = _item_id(visit)
    locale = str(visit.request.path_params["locale"])
    if item_id is None or locale not in visit.ctx.settings.locales.available:
        return visit.error(404, N_("There is nothing at this address."))
    if not can_translate(visit.user, locale):
        return visit.error(403, N_("Your role does not allow this."))
    settings, store, now = visit.ctx.settings, visit.ctx.store, visit.now()
    try:
        if action == "save":
            fmt: Literal["markdown", "html"] = (
                "html" if visit.field("body_format") == "html" else "markdown"
            )
            change = editorial.save_version(
                settings,
                store,
                item_id,
                locale,
                title=visit.field("title")[:500],
                body=visit.form.get("body", [""])[0][:200_000],
                body_format=fmt,
                actor=visit.actor,
                now=now,
            )
        elif action == "machine":
            change = await run_in_threadpool(
                lambda: editorial.machine_draft(
                    settings, store, item_id, locale, actor=visit.actor, now=now
                )
            )
        else:
            change = editorial.mark_reviewed(
                settings, store, item_id, locale, actor=visit.actor, now=now
            )
    except NewsletterError as exc:
        return visit.page("desk/message.html", status=400, message=str(exc))
    visit.audit_change(change)
    return visit.redirect(
        f"/translations/{item_id}",
        DONE[{"save": "saved", "machine": "machine", "review": "reviewed"}[action]],
    )


@guarded("translator")
async def save(visit: Visit) -> Response:
    """POST /desk/translations/{item_id}/{locale}/save: a version written by hand."""
    return await _version_action(visit, "save")


@guarded("translator")
async def machine(visit: Visit) -> Response:
    """POST /desk/translations/{item_id}/{locale}/machine: a machine draft."""
    return await _version_action(visit, "machine")


@guarded("translator")
async def review(visit: Visit) -> Response:
    """POST /desk/translations/{item_id}/{locale}/review: mark the version reviewed."""
    return await _version_action(visit, "review")


def routes() -> list[BaseRoute]:
    """The translation pages."""
    return [
        Route("/translations", overview, methods=["GET", "HEAD"]),
        Route("/translations/{item_id}", versions, methods=["GET", "HEAD"]),
        Route("/translations/{item_id}/{locale}/save", save, methods=["POST"]),
        Route("/translations/{item_id}/{locale}/machine", machine, methods=["POST"]),
        Route("/translations/{item_id}/{locale}/review", review, methods=["POST"]),
    ]
