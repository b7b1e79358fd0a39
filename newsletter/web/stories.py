"""GET /story/{item_id}/{locale}: one story that went out in an edition, in full.

The page is what the email's "read more" opens for an item without a link of its own (see
:mod:`newsletter.render.storypage`): the whole sanitized body, its date and source, and links to
its other language versions (``<link rel="alternate" hreflang>`` in the head, visible
links in the page). ``locale`` is the reader's: the version shown follows the same
fallback chain as the email, with the same "original in X" label. Like the archive, the
page is public and the same for everyone: no tokens, no subscriber data, no markers.
"""

from __future__ import annotations

import re
from datetime import UTC, tzinfo

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from newsletter.config import Settings
from newsletter.gather.sanitize import clean_html, http_base
from newsletter.models import Item
from newsletter.render import i18n
from newsletter.render.storypage import PublishedStory, published_story, story_path, without_markers
from newsletter.web.common import error_page, path_id
from newsletter.web.context import WebContext, context_of
from newsletter.web.pages import N_

#: what a language code in the path may look like before it is looked up at all
_LOCALE = re.compile(r"^[a-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})?$")


def _not_found(request: Request) -> Response:
    archive_url = context_of(request).href("/archive")
    return error_page(request, 404, links=[(N_("Newsletter archive"), archive_url)])


def _zone(settings: Settings) -> tzinfo:
    # dates as the emails show them: the first segment's zone is the cluster's own
    return settings.segments[0].tz if settings.segments else UTC


def _source_name(settings: Settings, source: str, locale: str) -> str:
    """The source as the email's section headings name it, else its config name."""
    return settings.render.section_titles.get(source, {}).get(locale, source)


def _versions(
    ctx: WebContext, found: PublishedStory, item_id: int, shown: Item, page_locale: str
) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for version in found.versions():
        tag = version.lang.replace("_", "-")
        out.append(
            {
                "lang": version.lang,
                "hreflang": tag,
                "name": i18n.language_name(version.lang, version.lang),
                # the canonical address is absolute (search engines want it so)
                "url": ctx.link(story_path(item_id, version.lang)),
                "href": ctx.href(story_path(item_id, version.lang)),
                "current": version.lang == shown.lang,
                "machine": version.translated_from is not None,
                "label": i18n.language_name(version.lang, page_locale),
            }
        )
    return out


async def story(request: Request) -> Response:
    """GET /story/{item_id}/{locale}: a story of a sent edition in ``locale``'s version."""
    ctx = context_of(request)
    item_id = path_id(request.path_params["item_id"])
    locale = request.path_params["locale"]
    if item_id is None or not _LOCALE.match(locale):
        return _not_found(request)
    found = published_story(ctx.settings, ctx.store, item_id)
    if found is None:
        return _not_found(request)
    locales = ctx.settings.locales
    if locale not in locales.available and found.story.in_lang(locale) is None:
        return _not_found(request)
    entry = found.shown(locales.chain(locale))
    item = entry.item
    page_locale = locales.resolve(locale)
    published = item.published_at.astimezone(_zone(ctx.settings))
    # every version's address uses the story's original: one address per story and locale
    # (``item_id`` may be another version's id, the one an email linked to)
    canonical = found.story.original.id
    switch = [
        (loc, i18n.language_name(loc, loc), ctx.href(story_path(canonical, loc)))
        for loc in locales.available
    ]
    body = clean_html(without_markers(item.body_html))
    return ctx.pages.page(
        request,
        page_locale,
        "web/story.html",
        headers={"Cache-Control": "public, max-age=600"},
        title=without_markers(item.title),
        lang=item.lang,
        text_dir=i18n.text_direction(item.lang),
        published=i18n.format_date(published, page_locale),
        published_iso=published.isoformat(),
        source=without_markers(_source_name(ctx.settings, item.source, page_locale)),
        body=Markup(body),  # sanitized by nh3 just above
        image=http_base(item.image),
        link=http_base(item.link),
        machine_translated=item.translated_from is not None,
        original_language=i18n.language_name(item.translated_from or item.lang, page_locale),
        is_fallback=entry.is_fallback,
        language=i18n.language_name(item.lang, page_locale),
        versions=_versions(ctx, found, canonical, item, page_locale),
        self_url=ctx.link(story_path(canonical, locale)),
        languages=switch,
        archive_url=ctx.href("/archive"),
    )


def routes() -> list[BaseRoute]:
    """The story route (what an email's "read more" links to for items without a link)."""
    return [Route("/story/{item_id}/{locale}", story, methods=["GET"])]
