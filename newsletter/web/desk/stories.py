"""Stories in the desk (editors): every gathered item with filters, desk stories written
and edited here (Markdown with a preview), hiding any item from future editions.

The work is :mod:`newsletter.digest.editorial`'s; this module parses forms and shows pages.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from newsletter.errors import NewsletterError
from newsletter.web.common import path_id
from newsletter.web.desk.core import NavEntry, Visit, guarded, notice_code
from newsletter.web.pages import N_

NAV = (NavEntry(N_("Stories"), "/stories", "editor", 10),)
TEMPLATES = ("desk/stories.html", "desk/story_form.html")

DONE = {
    "created": notice_code("story-created", N_("The story is saved.")),
    "saved": notice_code("story-saved", N_("The changes are saved.")),
    "hidden": notice_code("story-hidden", N_("The item is hidden from future editions.")),
    "shown": notice_code("story-shown", N_("The item is shown in future editions again.")),
}


def _date(raw: str) -> datetime | None:
    """A ``YYYY-MM-DD`` (or ``YYYY-MM-DDTHH:MM``) form value as UTC, or None."""
    raw = raw.strip()[:16]
    if not raw:
        return None
    for fmt in ("%Y-%m-%dT%H:%M", "%Y-%m-%d"):
        try:
            return datetime.strptime(raw, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


@guarded("editor")
async def story_list(visit: Visit) -> Response:
    """GET /desk/stories?source=&lang=&since=&until=&edition=&hidden=."""
    from newsletter.digest import editorial

    q = visit.request.query_params
    edition = path_id(q.get("edition", "")) if q.get("edition") else None
    hidden = {"yes": True, "no": False}.get(q.get("hidden", ""))
    source = q.get("source", "")[:100] or None
    lang = q.get("lang", "")[:16] or None
    until = _date(q.get("until", ""))
    rows = editorial.list_items(
        visit.ctx.store,
        source=source,
        lang=lang,
        since=_date(q.get("since", "")),
        until=until,
        edition_id=edition,
        hidden=hidden,
        limit=200,
    )
    return visit.page(
        "desk/stories.html",
        rows=rows,
        sources=editorial.item_sources(visit.ctx.store),
        locales=visit.ctx.settings.locales.available,
        f={
            k: q.get(k, "")[:100] for k in ("source", "lang", "since", "until", "edition", "hidden")
        },
    )


def _draft(visit: Visit) -> Any:
    from newsletter.digest import editorial

    tags = tuple(t.strip() for t in visit.field("tags").split(",") if t.strip())[:20]
    return editorial.StoryDraft(
        title=visit.field("title")[:500],
        body_markdown=visit.form.get("body", [""])[0][:200_000],
        lang=visit.field("lang"),
        published=_date(visit.field("published")),
        tags=tags,
        image=visit.field("image")[:2000] or None,
    )


def _form(
    visit: Visit,
    *,
    item_id: int | None,
    values: dict[str, str],
    status: int = 200,
    error: str | None = None,
    preview: str | None = None,
) -> Response:
    return visit.page(
        "desk/story_form.html",
        status=status,
        item_id=item_id,
        v=values,
        error=error,
        preview=preview,
        locales=visit.ctx.settings.locales.available,
    )


def _values(visit: Visit) -> dict[str, str]:
    return {
        k: visit.form.get(k, [""])[0]
        for k in ("title", "body", "lang", "published", "tags", "image")
    }


@guarded("editor")
async def story_new(visit: Visit) -> Response:
    """GET /desk/stories/new."""
    values = {
        "title": "",
        "body": "",
        "lang": visit.ctx.settings.locales.default,
        "published": visit.now().strftime("%Y-%m-%d"),
        "tags": "",
        "image": "",
    }
    return _form(visit, item_id=None, values=values)


async def _save(visit: Visit, item_id: int | None) -> Response:
    from newsletter.digest import editorial

    values = _values(visit)
    if visit.field("action") == "preview":
        html = editorial.render_markdown(values["body"][:200_000])
        return _form(visit, item_id=item_id, values=values, preview=html)
    try:
        draft = _draft(visit)
        if item_id is None:
            change = editorial.create_story(
                visit.ctx.settings, visit.ctx.store, draft, actor=visit.actor, now=visit.now()
            )
        else:
            change = editorial.edit_story(
                visit.ctx.settings,
                visit.ctx.store,
                item_id,
                draft,
                actor=visit.actor,
                now=visit.now(),
            )
    except NewsletterError as exc:
        return _form(visit, item_id=item_id, values=values, status=400, error=str(exc))
    visit.audit_change(change)
    target = change.item_id or item_id
    return visit.redirect(
        f"/translations/{target}", DONE["created" if item_id is None else "saved"]
    )


@guarded("editor")
async def story_create(visit: Visit) -> Response:
    """POST /desk/stories/new: preview, or save a new desk story."""
    return await _save(visit, None)


def _item_id(visit: Visit) -> int | None:
    return path_id(str(visit.request.path_params["item_id"]))


@guarded("editor")
async def story_edit(visit: Visit) -> Response:
    """GET /desk/stories/{id}/edit: a desk story's form, filled."""
    from newsletter.digest import editorial

    item_id = _item_id(visit)
    if item_id is None:
        return visit.error(404, N_("There is nothing at this address."))
    try:
        story = editorial.desk_story(visit.ctx.store, item_id)
    except NewsletterError:
        return visit.error(404, N_("There is nothing at this address."))
    item = story.item
    values = {
        "title": item.title,
        "body": story.body_markdown,
        "lang": item.lang,
        "published": item.published_at.strftime("%Y-%m-%dT%H:%M"),
        "tags": ", ".join(item.tags),
        "image": item.image or "",
    }
    return _form(visit, item_id=item_id, values=values)


@guarded("editor")
async def story_update(visit: Visit) -> Response:
    """POST /desk/stories/{id}/edit."""
    item_id = _item_id(visit)
    if item_id is None:
        return visit.error(404, N_("There is nothing at this address."))
    return await _save(visit, item_id)


async def _visibility(visit: Visit, hide: bool) -> Response:
    from newsletter.digest import editorial

    item_id = _item_id(visit)
    if item_id is None:
        return visit.error(404, N_("There is nothing at this address."))
    try:
        if hide:
            change = editorial.hide_item(
                visit.ctx.store,
                item_id,
                actor=visit.actor,
                now=visit.now(),
                reason=visit.field("reason")[:300],
            )
        else:
            change = editorial.show_item(
                visit.ctx.store, item_id, actor=visit.actor, now=visit.now()
            )
    except NewsletterError as exc:
        return visit.page("desk/message.html", status=400, message=str(exc))
    visit.audit_change(change)
    back = visit.field("back")
    query = back if back.startswith("?") else ""
    return visit.redirect("/stories" + query, DONE["hidden" if hide else "shown"])


@guarded("editor")
async def story_hide(visit: Visit) -> Response:
    """POST /desk/stories/{id}/hide."""
    return await _visibility(visit, True)


@guarded("editor")
async def story_show(visit: Visit) -> Response:
    """POST /desk/stories/{id}/show."""
    return await _visibility(visit, False)


def routes() -> list[BaseRoute]:
    """The story pages."""
    return [
        Route("/stories", story_list, methods=["GET", "HEAD"]),
        Route("/stories/new", story_new, methods=["GET", "HEAD"]),
        Route("/stories/new", story_create, methods=["POST"]),
        Route("/stories/{item_id}/edit", story_edit, methods=["GET", "HEAD"]),
        Route("/stories/{item_id}/edit", story_update, methods=["POST"]),
        Route("/stories/{item_id}/hide", story_hide, methods=["POST"]),
        Route("/stories/{item_id}/show", story_show, methods=["POST"]),
    ]
