"""Pure selection: which stories go into an edition, and which variant each reader sees.

No I/O here: the caller passes items from the store and gets plain values back.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from babel.dates import format_date, format_interval

from newsletter.config import Segment
from newsletter.models import DigestEntry, Item

LOOKBACK = {"day": timedelta(days=1), "week": timedelta(days=7), "month": timedelta(days=31)}


#: without ``lookback_days``, stories held back carry over for at most this many periods
CARRY_OVER_PERIODS = 4


def lookback(segment: Segment) -> timedelta:
    """How old an item may be and still be new for ``segment``."""
    if segment.lookback_days is not None:
        return timedelta(days=segment.lookback_days)
    return LOOKBACK[segment.period]


def window_start(segment: Segment, now: datetime, last_edition: datetime | None) -> datetime:
    """The oldest publication time a story may have to go into ``segment``'s edition now.

    One lookback back; with an earlier edition, back to when it was created if that is
    earlier, so stories held back in a skipped period (``min_items``, a run missed
    beyond its grace) carry over to the next edition. The caller leaves out what earlier
    editions gave. Never further back than ``lookback_days`` when configured (the
    operator's limit on how old news may be), else :data:`CARRY_OVER_PERIODS` periods.
    A segment without an edition yet looks back one lookback.
    """
    start = now - lookback(segment)
    if last_edition is None:
        return start
    if segment.lookback_days is not None:
        cap = now - timedelta(days=segment.lookback_days)
    else:
        cap = now - CARRY_OVER_PERIODS * LOOKBACK[segment.period]
    return max(cap, min(start, last_edition))


@dataclass(frozen=True)
class Story:
    """One piece of news with all its language variants."""

    key: str
    original: Item
    variants: tuple[Item, ...]

    def in_lang(self, lang: str) -> Item | None:
        """The variant written in ``lang``, if there is one."""
        for item in self.variants:
            if item.lang == lang:
                return item
        return None


def period_key(segment: Segment, now: datetime) -> str:
    """The period ``now`` falls in, in the segment's time zone: 2026-W48, 2026-11, 2026-11-28."""
    local = now.astimezone(segment.tz)
    if segment.period == "week":
        year, week, _ = local.isocalendar()
        return f"{year}-W{week:02d}"
    if segment.period == "month":
        return f"{local:%Y-%m}"
    return f"{local:%Y-%m-%d}"


def period_bounds(segment: Segment, now: datetime) -> tuple[date, date]:
    """First and last day of the period ``now`` falls in (segment's time zone)."""
    day = now.astimezone(segment.tz).date()
    if segment.period == "week":
        start = day - timedelta(days=day.weekday())
        return start, start + timedelta(days=6)
    if segment.period == "month":
        start = day.replace(day=1)
        nxt = (start + timedelta(days=32)).replace(day=1)
        return start, nxt - timedelta(days=1)
    return day, day


def period_label(segment: Segment, now: datetime, locale: str) -> str:
    """The period as readers of ``locale`` write it, e.g. "23–29 ноември 2026 г."."""
    start, end = period_bounds(segment, now)
    if start == end:
        return format_date(start, "long", locale=locale)
    return format_interval(start, end, "yMMMd", locale=locale)


def group_stories(items: Iterable[Item], default_lang: str) -> list[Story]:
    """Group items into stories by translation key, newest story first.

    The original is the variant in the default language, else the one seen first.
    """
    groups: dict[str, list[Item]] = {}
    for item in items:
        groups.setdefault(item.group_key, []).append(item)
    stories = []
    for key, members in groups.items():
        members.sort(key=lambda i: (i.lang != default_lang, i.first_seen_at, i.id))
        stories.append(Story(key=key, original=members[0], variants=tuple(members)))
    stories.sort(key=lambda s: (s.original.published_at, s.original.id), reverse=True)
    return stories


def new_stories(
    stories: Sequence[Story],
    *,
    sent: set[str],
    since: datetime,
    sources: Sequence[str] = (),
    limit: int,
) -> list[Story]:
    """Stories not yet given to the segment, published since ``since``, newest first."""
    picked = [
        s
        for s in stories
        if s.key not in sent
        and s.original.published_at >= since
        and (not sources or any(v.source in sources for v in s.variants))
    ]
    return picked[:limit]


def skip_reason(segment: Segment, stories: Sequence[Story]) -> str | None:
    """Why ``segment`` gets no edition with ``stories``, or None when it does."""
    if len(stories) >= max(segment.min_items, 1):
        return None
    if not stories:
        return "nothing new"
    return f"{len(stories)} new item(s), fewer than min_items={segment.min_items}"


def entries_for(stories: Sequence[Story], chain: Sequence[str]) -> list[DigestEntry]:
    """What a reader whose language chain is ``chain`` sees of each story.

    The first language of the chain that has a variant wins; else the original. An entry
    not in the reader's own language (``chain[0]``) is marked so the template labels it.
    """
    entries = []
    for story in stories:
        item = next((v for lang in chain if (v := story.in_lang(lang))), story.original)
        entries.append(
            DigestEntry(
                item=item,
                shown_lang=item.lang,
                is_fallback=item.lang != chain[0],
                story_id=story.original.id,
            )
        )
    return entries


def apply_plan(
    stories: Sequence[Story],
    *,
    lead: str | None,
    excluded: Iterable[str],
    ordering: Sequence[str],
    limit: int,
) -> list[Story]:
    """``stories`` as the editors arranged them: ``excluded`` keys left out, the keys of
    ``ordering`` first in that order (stories not in it keep theirs, after them), the
    ``lead`` story first; then cut to ``limit``. Keys no longer selected are ignored."""
    out = set(excluded)
    kept = [s for s in stories if s.key not in out]
    rank = {key: n for n, key in enumerate(ordering)}
    # a stable sort: stories the editors never placed stay newest first, after the placed
    kept.sort(key=lambda s: rank.get(s.key, len(rank)))
    if lead is not None:
        kept.sort(key=lambda s: s.key != lead)
    return kept[:limit]
