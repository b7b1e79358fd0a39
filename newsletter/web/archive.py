"""The public archive: each sent edition per locale, an index per segment and locale, and
an Atom feed of it.

An archive page is the stored variant with its per-recipient placeholders replaced by
neutral values (no name, no address, links to the token-less unsubscribe and preferences
pages), so no subscriber's data can ever appear in it. The index and the feed list each
edition's stories, every one linking to its own story page (:mod:`newsletter.web.stories`),
whether or not the item has a link of its own: the story page shows the whole text and
links on to the original.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime
from html import escape

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from newsletter.render.renderer import personalize
from newsletter.render.storypage import edition_stories, story_path, without_markers
from newsletter.store.archive import ArchiveEntry
from newsletter.textclean import xml_text
from newsletter.web.common import error_page, path_id
from newsletter.web.context import WebContext, context_of
from newsletter.web.pages import N_

ATOM = "http://www.w3.org/2005/Atom"


def neutral_values(ctx: WebContext) -> dict[str, str]:
    """Placeholder values for the public copy: nobody's name or address."""
    return {
        "name": "",
        "email": "",
        "unsubscribe_url": ctx.link("/unsubscribe"),
        "preferences_url": ctx.link("/preferences"),
    }


def _segment_title(ctx: WebContext, name: str, locale: str) -> str:
    """A segment's title in ``locale`` (a segment no longer configured: its name)."""
    found = next((s for s in ctx.settings.segments if s.name == name), None)
    return found.description_for(locale) if found else name


def _not_found(request: Request) -> Response:
    archive_url = context_of(request).href("/archive")
    return error_page(request, 404, links=[(N_("Newsletter archive"), archive_url)])


async def index(request: Request) -> Response:
    """GET /archive: every segment with published editions, and its languages."""
    ctx = context_of(request)
    locale = ctx.pages.negotiate(request)
    segments = [
        (
            name,
            _segment_title(ctx, name, locale),
            [(loc, ctx.href(f"/archive/segments/{name}/{loc}")) for loc in locales],
        )
        for name, locales in ctx.store.archive.locales().items()
    ]
    return ctx.pages.page(request, locale, "web/archive.html", segments=segments)


async def edition(request: Request) -> Response:
    """GET /archive/{edition_id}/{locale}: the "view in browser" page."""
    ctx = context_of(request)
    edition_id = path_id(request.path_params["edition_id"])
    if edition_id is None:
        return _not_found(request)
    variant = ctx.store.archive.variant(edition_id, request.path_params["locale"])
    if variant is None:
        return _not_found(request)
    html, _text = personalize(variant, neutral_values(ctx))
    # cacheable: a stored variant never changes
    return HTMLResponse(html, headers={"Cache-Control": "public, max-age=3600"})


#: (title, story page path) of each story of an edition, as its readers got it
StoryLinks = dict[int, list[tuple[str, str]]]


def story_links(ctx: WebContext, entries: list[ArchiveEntry], locale: str) -> StoryLinks:
    """Each edition's stories in the version its ``locale`` readers got, with the path of
    the story's page in that locale."""
    found = edition_stories(ctx.settings, ctx.store, [e.edition_id for e in entries], locale)
    chain = ctx.settings.locales.chain(locale)
    out: StoryLinks = {}
    for edition_id, stories in found.items():
        for story in stories:
            shown = story.shown(chain).item
            path = story_path(story.story.original.id, locale)
            out.setdefault(edition_id, []).append((without_markers(shown.title), path))
    return out


def _entries(request: Request) -> tuple[str, str, list[ArchiveEntry]] | None:
    ctx = context_of(request)
    segment, locale = request.path_params["segment"], request.path_params["locale"]
    entries = ctx.store.archive.entries(segment, locale, ctx.settings.web.archive_limit)
    return (segment, locale, entries) if entries else None


async def segment_index(request: Request) -> Response:
    """GET /archive/segments/{segment}/{locale}: past editions, newest first."""
    ctx = context_of(request)
    found = _entries(request)
    if found is None:
        return _not_found(request)
    segment, locale, entries = found
    page_locale = ctx.pages.negotiate(
        request, locale if "lang" not in request.query_params else None
    )
    stories = story_links(ctx, entries, locale)
    return ctx.pages.page(
        request,
        page_locale,
        "web/archive_list.html",
        segment=_segment_title(ctx, segment, page_locale),
        edition_locale=locale,
        entries=[
            (
                e,
                ctx.href(f"/archive/{e.edition_id}/{e.locale}"),
                [(title, ctx.href(path)) for title, path in stories.get(e.edition_id, [])],
            )
            for e in entries
        ],
        feed_url=ctx.href(f"/archive/segments/{segment}/{locale}/feed.atom"),
        archive_url=ctx.href("/archive"),
    )


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    # ElementTree writes a control character as it is, and the feed stops being XML;
    # subjects stored before gathering cleaned titles may hold one
    el = ET.SubElement(parent, f"{{{ATOM}}}{tag}", {k: xml_text(v) for k, v in attrs.items()})
    if text is not None:
        el.text = xml_text(text)
    return el


def _stories_html(links: list[tuple[str, str]]) -> str:
    """The Atom entry's content: the edition's stories linking to their pages."""
    items = "".join(f'<li><a href="{escape(url)}">{escape(title)}</a></li>' for title, url in links)
    return f"<ul>{items}</ul>"


def atom_feed(
    ctx: WebContext,
    segment: str,
    locale: str,
    entries: list[ArchiveEntry],
    stories: StoryLinks | None = None,
) -> bytes:
    """An Atom 1.0 document (RFC 4287) listing ``entries``; with ``stories``, each entry
    links to its stories' pages (``rel="related"``) and lists them as its content."""
    ET.register_namespace("", ATOM)
    feed = ET.Element(f"{{{ATOM}}}feed", {"xml:lang": locale.replace("_", "-")})
    self_url = ctx.link(f"/archive/segments/{segment}/{locale}/feed.atom")
    org = ctx.settings.organisation.name_for(locale)
    _sub(feed, "id", self_url)
    _sub(feed, "title", f"{org}: {_segment_title(ctx, segment, locale)}")
    newest: datetime = max((e.date for e in entries), default=ctx.clock())
    _sub(feed, "updated", newest.isoformat())
    author = _sub(feed, "author")
    _sub(author, "name", org)
    _sub(feed, "link", rel="self", href=self_url, type="application/atom+xml")
    _sub(feed, "link", rel="alternate", href=ctx.link(f"/archive/segments/{segment}/{locale}"))
    for e in entries:
        url = ctx.link(f"/archive/{e.edition_id}/{e.locale}")
        entry = _sub(feed, "entry")
        _sub(entry, "id", url)
        _sub(entry, "title", e.subject)
        _sub(entry, "updated", e.date.isoformat())
        _sub(entry, "link", rel="alternate", href=url, type="text/html")
        if e.preheader:
            _sub(entry, "summary", e.preheader)
        links = [(title, ctx.link(path)) for title, path in (stories or {}).get(e.edition_id, [])]
        for title, story_url in links:
            _sub(entry, "link", rel="related", href=story_url, type="text/html", title=title)
        if links:
            _sub(entry, "content", _stories_html(links), type="html")
    return bytes(ET.tostring(feed, encoding="utf-8", xml_declaration=True))


async def feed(request: Request) -> Response:
    """GET /archive/segments/{segment}/{locale}/feed.atom."""
    ctx = context_of(request)
    found = _entries(request)
    if found is None:
        return _not_found(request)
    segment, locale, entries = found
    return Response(
        atom_feed(ctx, segment, locale, entries, story_links(ctx, entries, locale)),
        media_type="application/atom+xml; charset=utf-8",
        headers={"Cache-Control": "public, max-age=600"},
    )


def routes() -> list[BaseRoute]:
    """The archive routes (``/archive/{edition_id}/{locale}`` is what emails link to)."""
    return [
        Route("/archive", index, methods=["GET"]),
        # not {edition_id:int}: a 25-digit id must be a 404, not a database overflow
        Route("/archive/{edition_id}/{locale}", edition, methods=["GET"]),
        Route("/archive/segments/{segment}/{locale}", segment_index, methods=["GET"]),
        Route("/archive/segments/{segment}/{locale}/feed.atom", feed, methods=["GET"]),
    ]
