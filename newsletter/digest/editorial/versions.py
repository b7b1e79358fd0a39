"""A story's versions per locale, written by hand or drafted by machine, and reviewed.

Every locale version is an item of the story (same key), so the digest's language
fallback picks it up. A version made in the desk is an item of the desk source with a
row in ``item_versions`` saying how it was made: by hand (``human``), by machine and not
reviewed yet (``machine-translated``: the email labels it), or ``reviewed`` by a person
(recorded: who and when). Machine translations the digest made on its own
(``[translation] enabled``, cached per original) show as machine-translated versions too.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from newsletter.config import Settings
from newsletter.digest.editorial.stories import (
    DESK_SOURCE,
    check_locale,
    get_item,
    record_for,
    render_markdown,
)
from newsletter.digest.select import Story
from newsletter.digest.stories import MACHINE_STATE, stories_of
from newsletter.digest.translate import CachedTranslation, build_translator, translate_item
from newsletter.digest.translate.base import TranslationError, Translator
from newsletter.errors import EditorialError
from newsletter.gather.sanitize import clean_html
from newsletter.models import Change, Item
from newsletter.store import Store
from newsletter.store.editorial import VersionRow


class ReviewState(enum.StrEnum):
    """How a locale version of a story came to be, and whether a person checked it."""

    #: a gathered or desk item in its own language
    ORIGINAL = "original"
    #: written by hand in the desk
    HUMAN = "human"
    #: a machine draft nobody reviewed yet: labelled "machine-translated" in the email
    MACHINE = MACHINE_STATE
    #: a person marked it reviewed
    REVIEWED = "reviewed"


@dataclass(frozen=True)
class Version:
    """One locale version of a story, as the desk shows it side by side."""

    locale: str
    title: str
    #: sanitized HTML
    body_html: str
    state: ReviewState
    #: None: only a machine translation the digest cached, not stored as a version yet
    item_id: int | None
    provider: str | None = None
    created_by: str | None = None
    created_at: datetime | None = None
    reviewed_by: str | None = None
    reviewed_at: datetime | None = None
    #: the original changed after this version was made
    outdated: bool = False


@dataclass(frozen=True)
class StoryVersions:
    """Every version of one story, by locale."""

    key: str
    original: Item
    versions: dict[str, Version]
    #: configured locales with no version
    missing: tuple[str, ...]


@dataclass(frozen=True)
class LocaleCoverage:
    """How much of an edition's stories one locale has."""

    locale: str
    #: stories with a version in this locale (any state)
    have: int
    #: ... of which original, written by hand or reviewed
    reviewed: int
    #: ... of which unreviewed machine translations
    machine: int
    #: keys of the stories with no version in this locale
    missing: tuple[str, ...]


@dataclass(frozen=True)
class Coverage:
    """Translation coverage of a set of stories, per configured locale."""

    total: int
    locales: dict[str, LocaleCoverage]


def _story(settings: Settings, store: Store, item_id: int) -> tuple[Story, Item]:
    """The story of item ``item_id`` and its original: the first variant (default locale
    first) that is not a desk version; versions hang on it."""
    item = get_item(store, item_id)
    found = stories_of(store, [item], settings.locales.default)
    if not found:
        raise EditorialError(f"item {item_id} belongs to no story")
    story = found[0]
    versions = store.editorial.version_info([v.id for v in story.variants])
    base = next((v for v in story.variants if v.id not in versions), story.original)
    return story, base


def _from_row(item: Item, row: VersionRow | None, base: Item) -> Version:
    if row is None:
        return Version(item.lang, item.title, item.body_html, ReviewState.ORIGINAL, item.id)
    return Version(
        locale=item.lang,
        title=item.title,
        body_html=item.body_html,
        state=ReviewState(row.state),
        item_id=item.id,
        provider=row.provider,
        created_by=row.created_by,
        created_at=row.created_at,
        reviewed_by=row.reviewed_by,
        reviewed_at=row.reviewed_at,
        outdated=row.original_hash != base.content_hash,
    )


def story_versions(settings: Settings, store: Store, item_id: int) -> StoryVersions:
    """Every version of the story item ``item_id`` belongs to (any variant's id)."""
    story, base = _story(settings, store, item_id)
    rows = store.editorial.version_info([v.id for v in story.variants])
    out = {v.lang: _from_row(v, rows.get(v.id), base) for v in story.variants}
    wanted = [loc for loc in settings.locales.available if loc not in out]
    cached = store.translations.get_many([(base.id, base.content_hash)], wanted)
    for loc, t in cached.get(base.id, {}).items():
        out[loc] = Version(loc, t.title, t.body_html, ReviewState.MACHINE, None, t.provider)
    missing = tuple(loc for loc in settings.locales.available if loc not in out)
    return StoryVersions(story.key, base, out, missing)


def _target(settings: Settings, versions: StoryVersions, locale: str) -> str:
    locale = check_locale(settings, locale)
    if locale == versions.original.lang:
        raise EditorialError(
            f"{locale} is the language of the original (item {versions.original.id}); "
            "edit the story itself"
        )
    current = versions.versions.get(locale)
    if current is not None and current.state is ReviewState.ORIGINAL:
        raise EditorialError(
            f"the {locale} version is item {current.item_id}, gathered from its source; "
            "it is not written in the desk"
        )
    return locale


def _store_version(
    settings: Settings,
    store: Store,
    versions: StoryVersions,
    locale: str,
    *,
    title: str,
    body_html: str,
    state: ReviewState,
    provider: str | None,
    actor: str,
    now: datetime,
) -> int:
    base = versions.original
    record = record_for(
        settings,
        guid=f"{DESK_SOURCE}-version:{base.id}:{locale}",
        title=title,
        body_html=body_html,
        lang=locale,
        published=base.published_at,
        tags=base.tags,
        image=base.image,
        translation_key=versions.key,
    )
    return store.editorial.save_version(
        base, locale, record, state=state.value, provider=provider, actor=actor, now=now
    )


def save_version(
    settings: Settings,
    store: Store,
    item_id: int,
    locale: str,
    *,
    title: str,
    body: str,
    body_format: Literal["markdown", "html"] = "markdown",
    actor: str,
    now: datetime,
) -> Change:
    """Write the ``locale`` version of a story by hand (or a machine draft corrected by
    hand, as HTML: it is sanitized). Creates or replaces that version; state ``human``."""
    versions = story_versions(settings, store, item_id)
    locale = _target(settings, versions, locale)
    body_html = render_markdown(body) if body_format == "markdown" else clean_html(body)
    vid = _store_version(
        settings,
        store,
        versions,
        locale,
        title=title,
        body_html=body_html,
        state=ReviewState.HUMAN,
        provider=None,
        actor=actor,
        now=now,
    )
    detail = {"locale": locale, "story": versions.key, "state": ReviewState.HUMAN.value}
    return Change(actor, "version.save", f"item:{vid}", now, detail, vid)


def machine_translation_available(settings: Settings) -> bool:
    """Whether a machine draft can be asked for (``[translation] enabled``)."""
    return settings.translation.enabled


def machine_draft(
    settings: Settings,
    store: Store,
    item_id: int,
    locale: str,
    *,
    actor: str,
    now: datetime,
    translator: Translator | None = None,
) -> Change:
    """Draft the ``locale`` version by machine (the cached translation of the original
    when there is one, else the configured translator); state ``machine-translated``.

    A version written by hand or reviewed is never overwritten by a draft.
    """
    versions = story_versions(settings, store, item_id)
    locale = _target(settings, versions, locale)
    current = versions.versions.get(locale)
    if current is not None and current.state in (ReviewState.HUMAN, ReviewState.REVIEWED):
        raise EditorialError(
            f"the {locale} version is {current.state.value}; a machine draft would replace it"
        )
    base = versions.original
    own = translator is None
    if translator is None:
        translator = build_translator(settings)
    if translator is None:
        raise EditorialError(
            "machine translation is not configured (set [translation] enabled = true)"
        )
    try:
        if not translator.supports(locale):
            raise EditorialError(f"{translator.name} cannot translate into {locale}")
        draft: CachedTranslation | None = store.translations.get(base.id, locale, base.content_hash)
        if draft is None:
            try:
                draft = translate_item(translator, base, locale)
            except TranslationError as exc:
                raise EditorialError(f"machine translation into {locale} failed: {exc}") from exc
            store.translations.put(base.id, locale, base.content_hash, draft, now)
    finally:
        if own:
            translator.close()
    vid = _store_version(
        settings,
        store,
        versions,
        locale,
        title=draft.title,
        # what a translation service returns is as untrusted as anything gathered
        body_html=clean_html(draft.body_html),
        state=ReviewState.MACHINE,
        provider=draft.provider,
        actor=actor,
        now=now,
    )
    detail = {"locale": locale, "story": versions.key, "provider": draft.provider}
    return Change(actor, "version.machine", f"item:{vid}", now, detail, vid)


def mark_reviewed(
    settings: Settings, store: Store, item_id: int, locale: str, *, actor: str, now: datetime
) -> Change:
    """Mark the ``locale`` version reviewed by ``actor`` at ``now``: from then on the email
    no longer labels it machine-translated."""
    versions = story_versions(settings, store, item_id)
    locale = _target(settings, versions, locale)
    current = versions.versions.get(locale)
    if current is None:
        raise EditorialError(f"the story has no {locale} version to review")
    vid = current.item_id
    if vid is None:
        # a translation the digest made on its own: stored as a version to carry the review
        vid = _store_version(
            settings,
            store,
            versions,
            locale,
            title=current.title,
            body_html=clean_html(current.body_html),
            state=ReviewState.MACHINE,
            provider=current.provider,
            actor=actor,
            now=now,
        )
    store.editorial.review(vid, ReviewState.REVIEWED.value, actor, now)
    detail = {"locale": locale, "story": versions.key, "was": current.state.value}
    return Change(actor, "version.review", f"item:{vid}", now, detail, vid)


def coverage_of(settings: Settings, store: Store, stories: Sequence[Story]) -> Coverage:
    """How many of ``stories`` have a version in each configured locale."""
    rows = store.editorial.version_info([v.id for s in stories for v in s.variants])
    locales = settings.locales.available
    cached = store.translations.get_many(
        [(s.original.id, s.original.content_hash) for s in stories], locales
    )
    out: dict[str, LocaleCoverage] = {}
    for loc in locales:
        have = reviewed = machine = 0
        missing = []
        for story in stories:
            variant = story.in_lang(loc)
            if variant is not None:
                have += 1
                row = rows.get(variant.id)
                if row is not None and row.state == MACHINE_STATE:
                    machine += 1
                else:
                    reviewed += 1
            elif loc in cached.get(story.original.id, {}):
                have += 1
                machine += 1
            else:
                missing.append(story.key)
        out[loc] = LocaleCoverage(loc, have, reviewed, machine, tuple(missing))
    return Coverage(len(stories), out)
