"""What happened to each edition: delivery, bounces, unsubscribes, opens and clicks.

:func:`edition_report` answers ``newsletter editions report ID`` (per locale, and clicks per
story and locale); :func:`segment_trend` answers ``newsletter report --segment S`` (one row
per edition). Opens are estimates: pixels are blocked or prefetched, and machine opens the
provider marks (Apple Mail Privacy Protection) are counted apart. Unique counts are
distinct deliveries, so they are unknown (0) in ``[tracking] anonymous`` mode.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from newsletter.config import Settings
from newsletter.store import Store
from newsletter.store.engagement import Counts, EditionCounts

__all__ = [
    "EditionEngagement",
    "LocaleLine",
    "StoryLine",
    "TrendLine",
    "edition_report",
    "segment_trend",
]

_STORY_PAGE = re.compile(r"/story/(\d+)/")


@dataclass
class LocaleLine:
    """One locale of one edition."""

    locale: str
    sent: int = 0
    delivered: int = 0
    deferred: int = 0
    hard_bounces: int = 0
    soft_bounces: int = 0
    complained: int = 0
    unsubscribed: int = 0
    #: estimates: human and machine opens apart
    opens_unique: int = 0
    opens_total: int = 0
    machine_opens: int = 0
    clicks_unique: int = 0
    clicks_total: int = 0
    #: stories of the edition available in this locale (original or translated)
    stories_in_locale: int = 0


@dataclass
class StoryLine:
    """One story (or an outside link that is no story) and its clicks per locale."""

    key: str
    title: str
    link: str
    #: locale -> {"unique": n, "total": n}
    clicks: dict[str, dict[str, int]] = field(default_factory=dict)


@dataclass
class EditionEngagement:
    """The whole report of one edition."""

    edition_id: int
    segment: str
    period: str
    status: str
    clicks_tracked: bool
    opens_tracked: bool
    anonymous: bool
    story_count: int
    locales: list[LocaleLine]
    stories: list[StoryLine]

    def to_json(self) -> dict[str, Any]:
        """JSON-ready data (``--json``)."""
        return asdict(self)


@dataclass
class TrendLine:
    """One edition in a segment's trend."""

    edition_id: int
    period: str
    sent: int
    delivered: int
    bounced: int
    complained: int
    unsubscribed: int
    opens_unique: int
    clicks_unique: int

    @property
    def delivery_rate(self) -> float:
        """Delivered per sent (0 when nothing was sent)."""
        return self.delivered / self.sent if self.sent else 0.0

    @property
    def bounce_rate(self) -> float:
        """Bounced (hard or soft) per sent."""
        return self.bounced / self.sent if self.sent else 0.0

    def to_json(self) -> dict[str, Any]:
        """JSON-ready data, rates included."""
        return asdict(self) | {
            "delivery_rate": round(self.delivery_rate, 4),
            "bounce_rate": round(self.bounce_rate, 4),
        }


def _get(counts: EditionCounts, locale: str, kind: str, machine: bool = False) -> Counts:
    return counts.events.get((locale, kind, machine), Counts())


def _locale_lines(counts: EditionCounts, stories: list[dict[str, Any]]) -> list[LocaleLine]:
    names = set(counts.sent) | {loc for loc, _, _ in counts.events if loc}
    lines = []
    for loc in sorted(names):
        line = LocaleLine(loc, sent=counts.sent.get(loc, 0))
        line.delivered = _get(counts, loc, "delivered").total
        line.deferred = _get(counts, loc, "deferred").total
        line.hard_bounces = _get(counts, loc, "hard_bounce").total
        line.soft_bounces = _get(counts, loc, "soft_bounce").total
        line.complained = _get(counts, loc, "complaint").total
        line.unsubscribed = _get(counts, loc, "unsubscribe").total
        human, machine = _get(counts, loc, "opened"), _get(counts, loc, "opened", True)
        line.opens_unique, line.opens_total = human.readers, human.total
        line.machine_opens = machine.total
        clicks = _get(counts, loc, "clicked")
        line.clicks_unique, line.clicks_total = clicks.readers, clicks.total
        groups = {s["group_key"] for s in stories if s["lang"] == loc or loc in s["translated"]}
        line.stories_in_locale = len(groups)
        lines.append(line)
    return lines


def _story_lines(counts: EditionCounts, stories: list[dict[str, Any]]) -> list[StoryLine]:
    by_key: dict[str, StoryLine] = {}
    link_to_key: dict[str, str] = {}
    id_to_key: dict[int, str] = {}
    for s in stories:
        key = str(s["group_key"])
        by_key.setdefault(key, StoryLine(key, str(s["title"]), str(s["link"] or "")))
        if s["link"]:
            link_to_key[str(s["link"])] = key
        id_to_key[int(s["id"])] = key
    for (target, locale), found in sorted(counts.clicks.items()):
        found_key = link_to_key.get(target)
        page = _STORY_PAGE.search(target)
        if found_key is None and page is not None:
            found_key = id_to_key.get(int(page[1]))
        if found_key is None:  # a link that is not a story (the logo, a link inside a story)
            found_key = target
            by_key.setdefault(target, StoryLine(target, "", target))
        cell = by_key[found_key].clicks.setdefault(locale, {"unique": 0, "total": 0})
        cell["unique"] += found.readers
        cell["total"] += found.total
    return list(by_key.values())


def edition_report(settings: Settings, store: Store, edition_id: int) -> EditionEngagement:
    """The engagement report of one edition (``EditionError`` when there is none)."""
    edition = store.editions.get(edition_id)
    counts = store.engagement.counts(edition_id)
    stories = store.engagement.stories(edition_id)
    return EditionEngagement(
        edition_id=edition.id,
        segment=edition.segment,
        period=edition.period,
        status=str(edition.status),
        clicks_tracked=settings.tracking.clicks,
        opens_tracked=settings.tracking.opens,
        anonymous=settings.tracking.anonymous,
        story_count=len({s["group_key"] for s in stories}),
        locales=_locale_lines(counts, stories),
        stories=_story_lines(counts, stories),
    )


def segment_trend(store: Store, segment: str, last: int = 12) -> list[TrendLine]:
    """One line per edition of ``segment`` that was sent, the last ``last``, oldest first."""
    lines = []
    for counts in store.engagement.trend(segment, max(1, last)):
        total = {k: 0 for k in ("delivered", "bounced", "complaint", "unsubscribe")}
        opens = clicks = 0
        for (_, kind, machine), found in counts.events.items():
            if kind == "delivered":
                total["delivered"] += found.total
            elif kind in ("hard_bounce", "soft_bounce"):
                total["bounced"] += found.total
            elif kind in total:
                total[kind] += found.total
            elif kind == "opened" and not machine:
                opens += found.readers
            elif kind == "clicked":
                clicks += found.readers
        lines.append(
            TrendLine(
                edition_id=counts.edition_id,
                period=counts.period,
                sent=sum(counts.sent.values()),
                delivered=total["delivered"],
                bounced=total["bounced"],
                complained=total["complaint"],
                unsubscribed=total["unsubscribe"],
                opens_unique=opens,
                clicks_unique=clicks,
            )
        )
    return lines
