"""Stories written in the desk, hidden items and the desk's item list.

A desk story is an ordinary item of the built-in ``desk`` source, so the digest picks it
up like any gathered item; its body is Markdown, rendered and sanitized exactly like a
``news/*.md`` file of a folder source. Editing keeps the item's id.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from markdown_it import MarkdownIt

from newsletter.config import Settings
from newsletter.errors import EditorialError, StoreError
from newsletter.gather.run import content_hash
from newsletter.gather.sanitize import clean_html, clean_url, summarize
from newsletter.models import Change, Item
from newsletter.store import Store
from newsletter.store.editorial import ListedItem
from newsletter.store.items import ItemRecord
from newsletter.textclean import clean_text

#: the built-in source of stories written in the desk
DESK_SOURCE: Final = "desk"

#: longest title and tag a desk story may have (characters)
MAX_TITLE = 500
MAX_TAG = 100

_MARKDOWN = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])

#: what a list of desk items is, for the desk's list page
ItemRow = ListedItem


@dataclass(frozen=True)
class StoryDraft:
    """What the desk's story form submits."""

    title: str
    body_markdown: str
    lang: str
    #: aware; None: now for a new story, unchanged for an edit
    published: datetime | None = None
    tags: tuple[str, ...] = ()
    #: an http(s) URL of the lead image
    image: str | None = None


@dataclass(frozen=True)
class DeskStory:
    """A desk story as stored, with the Markdown to refill the edit form."""

    item: Item
    body_markdown: str
    created_by: str
    created_at: datetime
    updated_by: str
    updated_at: datetime


def render_markdown(body_markdown: str) -> str:
    """The sanitized HTML a desk story's Markdown body becomes (also the desk's preview)."""
    return clean_html(str(_MARKDOWN.render(body_markdown)))


def check_locale(settings: Settings, lang: str) -> str:
    """``lang`` if it is a configured locale, else an :class:`EditorialError`."""
    lang = clean_text(lang)
    if lang not in settings.locales.available:
        known = ", ".join(settings.locales.available)
        raise EditorialError(f"language {lang!r} is not a configured locale ({known})")
    return lang


def record_for(
    settings: Settings,
    *,
    guid: str,
    title: str,
    body_html: str,
    lang: str,
    published: datetime | None,
    tags: tuple[str, ...],
    image: str | None,
    translation_key: str | None,
) -> ItemRecord:
    """A stored item's fields from what an editor wrote (cleaned and checked)."""
    title = clean_text(title)
    if not title:
        raise EditorialError("a story needs a title")
    if len(title) > MAX_TITLE:
        raise EditorialError(f"the title is longer than {MAX_TITLE} characters")
    if published is not None and published.tzinfo is None:
        raise EditorialError("the publication date needs a time zone")
    clean_tags = tuple(dict.fromkeys(t for t in map(clean_text, tags) if t))
    if any(len(t) > MAX_TAG for t in clean_tags):
        raise EditorialError(f"a tag is longer than {MAX_TAG} characters")
    picture = None
    if image is not None and image.strip():
        picture = clean_url(image)
        if picture is None:
            raise EditorialError(f"the image must be an absolute http(s) URL, not {image!r}")
    return ItemRecord(
        source=DESK_SOURCE,
        guid=guid,
        title=title,
        body_html=body_html,
        summary_html=summarize(body_html, settings.render.summary_chars),
        link=None,
        published_at=published,
        lang=lang,
        translation_key=translation_key,
        tags=clean_tags,
        image=picture,
        content_hash=content_hash(title, body_html),
    )


def _detail(draft: StoryDraft, lang: str) -> dict[str, str]:
    return {"title": clean_text(draft.title)[:120], "lang": lang}


def create_story(
    settings: Settings, store: Store, draft: StoryDraft, *, actor: str, now: datetime
) -> Change:
    """Store a new desk story; ``Change.item_id`` is its item id."""
    lang = check_locale(settings, draft.lang)
    record = record_for(
        settings,
        guid=f"desk:{secrets.token_hex(8)}",
        title=draft.title,
        body_html=render_markdown(draft.body_markdown),
        lang=lang,
        published=draft.published,
        tags=draft.tags,
        image=draft.image,
        translation_key=None,
    )
    item_id = store.editorial.create_story(record, draft.body_markdown, actor, now)
    return Change(actor, "story.create", f"item:{item_id}", now, _detail(draft, lang), item_id)


def edit_story(
    settings: Settings,
    store: Store,
    item_id: int,
    draft: StoryDraft,
    *,
    actor: str,
    now: datetime,
) -> Change:
    """Rewrite desk story ``item_id`` in place (its id, and so its story, stay)."""
    current = desk_story(store, item_id)
    lang = check_locale(settings, draft.lang)
    record = record_for(
        settings,
        guid=current.item.guid,
        title=draft.title,
        body_html=render_markdown(draft.body_markdown),
        lang=lang,
        published=draft.published,
        tags=draft.tags,
        image=draft.image,
        translation_key=current.item.translation_key,
    )
    store.editorial.update_story(item_id, record, draft.body_markdown, actor, now)
    return Change(actor, "story.edit", f"item:{item_id}", now, _detail(draft, lang), item_id)


def get_item(store: Store, item_id: int) -> Item:
    """Item ``item_id``, or an :class:`EditorialError` naming it."""
    try:
        return store.items.get(item_id)
    except StoreError as exc:
        raise EditorialError(f"no item with id {item_id}") from exc


def desk_story(store: Store, item_id: int) -> DeskStory:
    """Desk story ``item_id`` with its Markdown; an error for any other item."""
    item = get_item(store, item_id)
    row = store.editorial.story(item_id)
    if row is None:
        raise EditorialError(f"item {item_id} was not written in the desk; it cannot be edited")
    return DeskStory(
        item=item,
        body_markdown=row.markdown,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_by=row.updated_by,
        updated_at=row.updated_at,
    )


def hide_item(store: Store, item_id: int, *, actor: str, now: datetime, reason: str = "") -> Change:
    """Keep item ``item_id`` (any source) out of every future edition."""
    get_item(store, item_id)
    reason = clean_text(reason)[:500]
    store.editorial.hide(item_id, actor, now, reason)
    return Change(actor, "item.hide", f"item:{item_id}", now, {"reason": reason}, item_id)


def show_item(store: Store, item_id: int, *, actor: str, now: datetime) -> Change:
    """Let a hidden item into future editions again."""
    get_item(store, item_id)
    store.editorial.show(item_id)
    return Change(actor, "item.show", f"item:{item_id}", now, {}, item_id)


def list_items(
    store: Store,
    *,
    source: str | None = None,
    lang: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    edition_id: int | None = None,
    hidden: bool | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[ItemRow]:
    """Items newest first (``since <= published_at < until``), filtered as given, each
    with whether it is hidden, written in the desk, and the editions that carried it."""
    return store.editorial.list_items(
        source=source,
        lang=lang,
        since=since,
        until=until,
        edition_id=edition_id,
        hidden=hidden,
        limit=min(max(limit, 0), 1000),
        offset=offset,
    )


def item_sources(store: Store) -> list[str]:
    """The names of the sources of stored items (for the list's filter)."""
    return store.editorial.sources()
