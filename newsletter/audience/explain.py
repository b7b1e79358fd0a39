"""Who falls in which segment and why: ``newsletter segments explain``, and the overlap
lines of ``digest --dry-run`` and ``preview``.

Built from the same :class:`~newsletter.audience.segments.Routing` a real run plans with, so what
it says is what a send would do at that moment. Nothing is stored.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from newsletter.audience.segments import Routing, matches, why
from newsletter.audience.subscribers import ImportReport, sync_lists
from newsletter.config import Segment, Settings
from newsletter.digest.select import period_key
from newsletter.models import Subscriber, SubscriberStatus
from newsletter.store import Store


@dataclass(frozen=True)
class Placement:
    """One subscriber who matches one segment."""

    email: str
    #: each rule as it held for them
    rules: list[str]
    receives: bool
    #: the other segments of the same period they match, in config order
    also: list[str]
    #: e.g. "also matches partners-abroad, goes to members (first in order)"
    note: str


@dataclass
class SegmentPlacements:
    """Everyone who matches one segment, in subscriber id order."""

    segment: Segment
    period: str
    #: one per subscriber who matches (empty when explained without details)
    members: list[Placement] = field(default_factory=list)
    #: how many match its rules (active, not pausing), and how many get its digest
    matched: int = 0
    receiving: int = 0


@dataclass(frozen=True)
class Route:
    """Subscribers who match several segments of one period, and where they go."""

    matches: tuple[str, ...]
    goes_to: tuple[str, ...]
    count: int


@dataclass
class Explanation:
    """Every segment's subscribers with the reasons, and how overlaps were settled."""

    as_of: datetime
    segments: list[SegmentPlacements]
    routes: list[Route]
    #: distinct subscribers who matched more than one segment of a period
    overlapping: int
    #: active subscribers who are in no segment, and those pausing (sent nothing now)
    in_none: int
    pausing: int
    #: lists merged from their files first, as a digest does (``sync_files``)
    lists: dict[str, ImportReport] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """A plain structure for ``--json``."""
        return {
            "as_of": self.as_of.isoformat(),
            "segments": [
                {
                    "name": sp.segment.name,
                    "period": sp.segment.period,
                    "period_key": sp.period,
                    "overlap": sp.segment.overlap,
                    "matched": sp.matched,
                    "receiving": sp.receiving,
                    "subscribers": [
                        {
                            "email": p.email,
                            "rules": p.rules,
                            "receives": p.receives,
                            "also_matches": p.also,
                            "note": p.note,
                        }
                        for p in sp.members
                    ],
                }
                for sp in self.segments
            ],
            "overlaps": {
                "subscribers": self.overlapping,
                "routes": [
                    {"matches": list(r.matches), "goes_to": list(r.goes_to), "subscribers": r.count}
                    for r in self.routes
                ],
            },
            "in_no_segment": self.in_none,
            "pausing": self.pausing,
            "lists_merged": {
                name: {"added": r.added, "updated": r.updated, "bad_rows": len(r.errors)}
                for name, r in self.lists.items()
            },
        }

    def overlap_lines(self) -> list[str]:
        """How many matched more than one segment and where they went (dry run, preview)."""
        if not self.overlapping:
            return ["No subscriber matched more than one segment of the same period."]
        lines = [f"{self.overlapping} subscriber(s) matched more than one segment:"]
        for r in self.routes:
            goes = ", ".join(r.goes_to) or "none of them"
            if len(r.goes_to) > 1:
                goes += " (overlap allowed)"
            elif r.goes_to and r.goes_to[0] in r.matches:
                goes += " (first in order)"
            lines.append(f"  {' + '.join(r.matches)} -> {goes}: {r.count}")
        return lines

    def text_lines(self) -> list[str]:
        """The explanation for a terminal: per segment a count line, then one line per
        subscriber; then the overlaps and who is in no segment."""
        lines = [
            f"List {name}: {r.added} added, {r.updated} updated from its file"
            + (f", {len(r.errors)} bad row(s) (see `newsletter digest`)" if r.errors else "")
            for name, r in self.lists.items()
            if r.added or r.updated or r.errors
        ]
        lines.append(f"Segments in config order, as of {self.as_of:%Y-%m-%d %H:%M} UTC:")
        for sp in self.segments:
            seg = sp.segment
            lines.append(
                f"{seg.name} ({seg.period} {sp.period}, overlap {seg.overlap}): "
                f"{sp.matched} match, {sp.receiving} get it"
            )
            for p in sp.members:
                mark = "+" if p.receives else "-"
                note = f"  [{p.note}]" if p.note else ""
                rules = printable("; ".join(p.rules))
                lines.append(f"  {mark} {printable(p.email)}: {rules}{note}")
        lines.extend(self.overlap_lines())
        lines.append(
            f"{self.in_none} active subscriber(s) in no segment; {self.pausing} pausing "
            "(sent nothing until their pause ends)"
        )
        return lines


def printable(text: str) -> str:
    """``text`` with control characters escaped, so stored data cannot drive a terminal."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _note(sp: Segment, also: list[str], receives: bool, reason: str) -> str:
    if not also:
        # alone in its period: only a row in another edition can keep them out
        return "" if receives or not reason else reason
    head = f"also matches {', '.join(also)}, "
    if sp.exclusive and receives:
        return head + f"goes to {sp.name} (first in order)"
    return head + reason


def explain(
    settings: Settings,
    store: Store,
    now: datetime,
    only: Sequence[str] | None = None,
    *,
    details: bool = True,
    sync_files: bool = False,
) -> Explanation:
    """Who falls in which segment at ``now`` and why (``only``: show just these segments;
    overlaps are always settled over every configured segment). Without ``details`` only
    the counts and overlaps are kept, not a line per subscriber. ``sync_files`` first
    merges the lists' files into the store, as the next digest will (it only adds people
    and fills empty fields), so a first check sees them."""
    lists = sync_lists(settings, store, now) if sync_files else {}
    shown = [settings.segment(n) for n in only] if only else list(settings.segments)
    names = {s.name for s in shown} if details else set()
    routing = Routing(settings, store)
    periods = {s.name: period_key(s, now) for s in settings.segments}
    placements = {s.name: SegmentPlacements(s, periods[s.name]) for s in shown}
    routes: Counter[tuple[tuple[str, ...], tuple[str, ...]]] = Counter()
    overlapping = in_none = pausing = 0
    for sub in store.subscribers.iter(status=SubscriberStatus.ACTIVE):
        matched = [s for s in settings.segments if matches(s, sub)]
        if not matched:
            in_none += 1
            continue
        if sub.is_paused(now):
            pausing += 1
            continue
        overlaps = _place(routing, sub, matched, periods, placements, names, routes)
        overlapping += overlaps
    return Explanation(
        as_of=now,
        segments=list(placements.values()),
        routes=[Route(m, g, n) for (m, g), n in routes.most_common()],
        overlapping=overlapping,
        in_none=in_none,
        pausing=pausing,
        lists=lists,
    )


def _place(
    routing: Routing,
    sub: Subscriber,
    matched: list[Segment],
    periods: dict[str, str],
    placements: dict[str, SegmentPlacements],
    shown: set[str],
    routes: Counter[tuple[tuple[str, ...], tuple[str, ...]]],
) -> int:
    """Record ``sub`` in every shown segment it matches; 1 when it overlapped anywhere."""
    overlapped = 0
    for cadence in dict.fromkeys(s.period for s in matched):
        group = [s for s in matched if s.period == cadence]
        goes: list[str] = []
        for seg in group:
            verdict = routing.verdict(seg, periods[seg.name], sub)
            if verdict.receives:
                goes.append(seg.name)
            elif verdict.goes_to is not None:
                goes.append(verdict.goes_to)
            if seg.name in placements:
                placements[seg.name].matched += 1
                placements[seg.name].receiving += verdict.receives
            if seg.name in shown:
                also = [s.name for s in group if s.name != seg.name]
                placements[seg.name].members.append(
                    Placement(
                        email=sub.email,
                        rules=why(seg, sub),
                        receives=verdict.receives,
                        also=also,
                        note=_note(seg, also, verdict.receives, verdict.reason),
                    )
                )
        if len(group) > 1:
            overlapped = 1
            routes[(tuple(s.name for s in group), tuple(dict.fromkeys(goes)))] += 1
    return overlapped
