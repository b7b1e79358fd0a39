"""A story's own public page: its address, and what of it a reader of a locale sees.

Every story that went out in an edition can be read in full at
``<web.base_url>/story/<item id>/<locale>`` (served by :mod:`newsletter.web.stories`). The
email's "read more" points there when the item has no link of its own, so a story cut at
``summary_chars`` can always be read to the end. The id is the store's id of the story's
original (any version's id finds the story too), the locale the reader's: the page shows
the version the email showed, with the same fallback chain and "original in X" label.
Only stories of published editions are found, and the page carries no subscriber data:
it is public, like the archive.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from newsletter.config import Settings
from newsletter.digest.select import Story
from newsletter.digest.stories import stories_of
from newsletter.digest.translate import machine_variant
from newsletter.errors import StoreError
from newsletter.models import DigestEntry, Item
from newsletter.store import Store

#: per-recipient markers and anything written like one: never shown on a public page
_MARKER = re.compile(r"@@nl:[^@\s]{0,64}@@")


def story_path(item_id: int, locale: str) -> str:
    """The path of a story's page below the web app's base URL."""
    return f"/story/{item_id}/{locale}"


def story_url(settings: Settings, item_id: int, locale: str) -> str:
    """The absolute public URL of a story's page (what emails and feeds link to)."""
    return settings.web.base_url + story_path(item_id, locale)


def without_markers(text: str) -> str:
    """``text`` with every per-recipient marker removed.

    Gathered content is hostile: a body that carries ``@@nl:email@@`` must not become a
    recipient's address anywhere, and a public page must not show the marker either.
    """
    return _MARKER.sub("", text)


@dataclass(frozen=True)
class PublishedStory:
    """A story that went out in an edition, with every version a reader can get."""

    story: Story
    #: cached machine translations of the original, by language
    machine: dict[str, Item] = field(default_factory=dict)

    def shown(self, chain: Sequence[str]) -> DigestEntry:
        """What a reader whose language chain is ``chain`` gets, as the email chose it.

        A human version anywhere in the chain wins; else the machine translation into the
        reader's own language; else the original, labelled (as in
        :meth:`newsletter.digest.Digest.with_translations` and
        :func:`newsletter.digest.select.entries_for`).
        """
        human = next((v for lang in chain if (v := self.story.in_lang(lang))), None)
        item = human or self.machine.get(chain[0]) or self.story.original
        return DigestEntry(
            item=item,
            shown_lang=item.lang,
            is_fallback=item.lang != chain[0],
            story_id=self.story.original.id,
        )

    def versions(self) -> list[Item]:
        """Every version, the original first, then by language; one per language."""
        found: dict[str, Item] = {self.story.original.lang: self.story.original}
        for item in self.story.variants:
            found.setdefault(item.lang, item)
        for lang, item in self.machine.items():
            found.setdefault(lang, item)
        original = self.story.original.lang
        return [found[lang] for lang in sorted(found, key=lambda lang: (lang != original, lang))]


def _published(
    store: Store, items: Iterable[Item], targets: Sequence[str], default_lang: str
) -> list[PublishedStory]:
    stories = stories_of(store, list(items), default_lang)
    wanted = [(s.original.id, s.original.content_hash) for s in stories]
    cached = store.translations.get_many(wanted, targets)
    out = []
    for story in stories:
        machine = {
            lang: machine_variant(story.original, lang, t)
            for lang, t in cached.get(story.original.id, {}).items()
            if story.in_lang(lang) is None and lang != story.original.lang
        }
        out.append(PublishedStory(story, machine))
    return out


def published_story(settings: Settings, store: Store, item_id: int) -> PublishedStory | None:
    """The story of item ``item_id`` if it went out in a published edition, else None."""
    try:
        found = store.items.get(item_id)
    except StoreError:
        return None
    if not store.archive.story_published(found.id, found.group_key):
        return None
    locales = settings.locales
    (story,) = _published(store, [found], locales.available, locales.default)
    return story


def edition_stories(
    settings: Settings, store: Store, edition_ids: Sequence[int], locale: str
) -> dict[int, list[PublishedStory]]:
    """The stories of each published edition in ``edition_ids``, in the edition's order,
    with the machine translations a reader of ``locale`` may get."""
    by_edition = store.archive.edition_item_ids(edition_ids)
    ids = list(dict.fromkeys(i for ids in by_edition.values() for i in ids))
    items = {i.id: i for i in store.items.get_many(ids)} if ids else {}
    stories = _published(store, items.values(), [locale], settings.locales.default)
    by_item = {v.id: s for s in stories for v in s.story.variants}
    return {
        edition: [by_item[i] for i in ids if i in by_item] for edition, ids in by_edition.items()
    }
