"""This period's stories for a segment, read from the store.

What counts as new is decided by the pure functions of :mod:`newsletter.digest.select`; this
module feeds them the items, the stories earlier editions gave and when the last one was
made.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from newsletter.config import Segment, Settings
from newsletter.digest.select import Story, group_stories, new_stories, window_start
from newsletter.models import EditionStatus, Item
from newsletter.store import Store

#: period of an edition of hand-picked items (``digest --items``), followed by the time
MANUAL_PREFIX = "manual-"


def manual_period(now: datetime) -> str:
    """The period key of a hand-picked send (``--items``) started at ``now``."""
    return f"{MANUAL_PREFIX}{now:%Y%m%dT%H%M%S}"


#: how many of a segment's newest editions are searched for its last regular one
_LAST_EDITION_SEARCH = 10


def stories_of(store: Store, items: Sequence[Item], default_lang: str) -> list[Story]:
    """Stories for ``items`` with every stored language variant, in the given order."""
    keys = {i.translation_key for i in items if i.translation_key}
    siblings = store.items.by_translation_keys(keys) if keys else {}
    pool = {i.id: i for i in items}
    for group in siblings.values():
        pool.update({i.id: i for i in group})
    by_key = {s.key: s for s in group_stories(pool.values(), default_lang)}
    order = list(dict.fromkeys(i.group_key for i in items))
    return [by_key[k] for k in order]


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


def select_stories(
    settings: Settings,
    store: Store,
    segment: Segment,
    now: datetime,
    item_ids: Sequence[int] | None = None,
) -> list[Story]:
    """This period's new stories for ``segment`` (or exactly ``item_ids`` when given).

    New means not given by an earlier edition of the segment and published since the
    last one (at least one lookback back, see :func:`~newsletter.digest.select.window_start`),
    so stories held back by ``min_items`` carry over to the next edition.
    """
    default = settings.locales.default
    if item_ids:
        return stories_of(store, store.items.get_many(item_ids), default)
    since = window_start(segment, now, last_selection(store, segment.name))
    candidates = store.items.list(since=since - timedelta(days=1))
    stories = stories_of(store, candidates, default)
    return new_stories(
        stories,
        sent=store.editions.sent_group_keys(segment.name),
        since=since,
        sources=segment.sources,
        limit=settings.render.max_items,
    )
