"""This period's stories for a segment, read from the store.

What counts as new is decided by the pure functions of :mod:`newsletter.digest.select`; this
module feeds them the items, the stories earlier editions gave and when the last one was
made.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from newsletter.config import Segment, Settings
from newsletter.digest.select import (
    Story,
    apply_plan,
    group_stories,
    new_stories,
    window_start,
)
from newsletter.models import EditionStatus, Item
from newsletter.store import Store
from newsletter.store.plans import PlanOverrides

#: period of an edition of hand-picked items (``digest --items``), followed by the time
MANUAL_PREFIX = "manual-"

#: the ``item_versions.state`` of a machine draft nobody has reviewed yet (labelled)
MACHINE_STATE = "machine-translated"


def manual_period(now: datetime) -> str:
    """The period key of a hand-picked send (``--items``) started at ``now``."""
    return f"{MANUAL_PREFIX}{now:%Y%m%dT%H%M%S}"


#: how many of a segment's newest editions are searched for its last regular one
_LAST_EDITION_SEARCH = 10


def stories_of(
    store: Store, items: Sequence[Item], default_lang: str, *, hidden: Collection[int] = ()
) -> list[Story]:
    """Stories for ``items`` with every stored language variant, in the given order.

    Variants whose id is in ``hidden`` are left out, and so is a story left with only
    versions made in the desk (its original is hidden). A desk version still marked
    machine-translated (not reviewed) carries ``translated_from``, so the email labels it.
    """
    # a desk version of a story without a translation key is keyed by its group key
    keys = {i.group_key for i in items}
    siblings = store.items.by_translation_keys(keys) if keys else {}
    pool = {i.id: i for i in items}
    for group in siblings.values():
        pool.update({i.id: i for i in group})
    versions = store.editorial.version_info(pool)
    # a version found alone (its original outside the window, or an edition that froze
    # the version as the story's item) brings its original: the story is the original's
    originals = {v.original_id for v in versions.values()} - pool.keys()
    if originals:
        pool.update({i.id: i for i in store.items.get_many(sorted(originals))})
    for item_id in hidden:
        pool.pop(item_id, None)
    for item_id, info in versions.items():
        if item_id in pool and info.state == MACHINE_STATE:
            pool[item_id] = replace(pool[item_id], translated_from=info.source_lang)
    by_key = {
        s.key: s
        for s in group_stories(pool.values(), default_lang)
        if any(v.id not in versions for v in s.variants)
    }
    order = list(dict.fromkeys(i.group_key for i in items))
    return [by_key[k] for k in order if k in by_key]


def last_selection(store: Store, segment: str) -> datetime | None:
    """When the newest edition that took its stories from the usual selection was created.

    Cancelled editions gave nothing (their stories may come again) and hand-picked ones
    (``digest --items``) did not look at the rest, so neither counts.
    """
    for edition in store.editions.list(segment=segment, limit=_LAST_EDITION_SEARCH):
        regular = not edition.period.startswith(MANUAL_PREFIX)
        if regular and edition.status is not EditionStatus.CANCELLED:
            return edition.created_at
    return None


def candidate_stories(
    settings: Settings, store: Store, segment: Segment, now: datetime
) -> list[Story]:
    """Every story new for ``segment`` now, newest first, before the editors' plan and the
    ``max_items`` cut: not given by an earlier edition of the segment, published since
    the last one (see :func:`~newsletter.digest.select.window_start`), not hidden."""
    since = window_start(segment, now, last_selection(store, segment.name))
    candidates = store.items.list(since=since - timedelta(days=1))
    hidden = store.editorial.hidden_ids()
    stories = stories_of(store, candidates, settings.locales.default, hidden=hidden)
    return new_stories(
        stories,
        sent=store.editions.sent_group_keys(segment.name),
        since=since,
        sources=segment.sources,
        limit=len(stories),
    )


def select_stories(
    settings: Settings,
    store: Store,
    segment: Segment,
    now: datetime,
    item_ids: Sequence[int] | None = None,
    *,
    plan: PlanOverrides | None = None,
) -> list[Story]:
    """This period's new stories for ``segment`` (or exactly ``item_ids`` when given).

    New means not given by an earlier edition of the segment and published since the
    last one (at least one lookback back, see :func:`~newsletter.digest.select.window_start`),
    so stories held back by ``min_items`` carry over to the next edition. Hidden items
    are left out, and the editors' overrides for the coming edition (``plan``, by default
    the segment's pending one: lead, exclusions, order) are applied before the
    ``max_items`` cut.
    """
    default = settings.locales.default
    if item_ids:
        return stories_of(store, store.items.get_many(item_ids), default)
    if plan is None:
        plan = store.plans.pending(segment.name)
    return apply_plan(
        candidate_stories(settings, store, segment, now),
        lead=plan.lead_key,
        excluded=plan.excluded,
        ordering=plan.ordering,
        limit=settings.render.max_items,
    )
