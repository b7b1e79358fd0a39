"""Segments: rules from config.toml evaluated over subscriber fields, and who gets which.

A subscriber may match several segments. By default a person gets at most one digest per
period: among the *exclusive* segments with the same ``period`` (week, month, day), the
first in config order that they match is theirs, and the others leave them out. A segment
with ``overlap = "allow"`` neither takes anyone away from another nor loses anyone to one.

The rule is decided by segment order and rules only, so it comes out the same whichever
edition of a week is planned first. As a second guard, nobody is planned into an edition
who already has a row in another exclusive edition of the same period (the rules or the
order may have changed in between). Manual sends (``--items``) skip the order rule, since
the operator picked the segment, but keep the second guard.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from newsletter.config import Rule, Segment, Settings
from newsletter.models import Subscriber, SubscriberStatus
from newsletter.store import Store


def _values(rule: Rule) -> set[str]:
    raw = [rule.value] if isinstance(rule.value, str) else rule.value
    return {v.casefold() for v in raw}


def rule_matches(rule: Rule, sub: Subscriber) -> bool:
    """Whether one rule holds for ``sub`` (comparisons ignore case)."""
    field = getattr(sub, rule.field)
    have = {v.casefold() for v in field} if isinstance(field, tuple) else {str(field).casefold()}
    want = _values(rule)
    match rule.op:
        case "==" | "in" | "contains":
            return bool(have & want)
        case "!=" | "not in" | "not contains":
            return not have & want
    raise AssertionError(rule.op)  # pragma: no cover - Literal type makes this unreachable


def matches(segment: Segment, sub: Subscriber) -> bool:
    """Whether ``sub`` belongs to ``segment`` (all rules hold)."""
    return all(rule_matches(rule, sub) for rule in segment.rules)


def recipients(
    store: Store, segment: Segment, batch_size: int = 1000, now: datetime | None = None
) -> Iterator[Subscriber]:
    """Active subscribers of ``segment`` not pausing at ``now`` (default: the current
    time), streamed from the store in batches. Overlap with other segments is not
    considered here: :meth:`Routing.recipients` does that."""
    when = now or datetime.now(UTC)
    for sub in store.subscribers.iter(status=SubscriberStatus.ACTIVE, batch_size=batch_size):
        if matches(segment, sub) and not sub.is_paused(when):
            yield sub


@dataclass(frozen=True)
class Verdict:
    """Whether a subscriber who matches a segment gets its digest, and why not."""

    receives: bool
    #: empty when they simply get it; else e.g. "goes to members (first in order)"
    reason: str = ""
    #: the segment whose digest they get instead, when that is known
    goes_to: str | None = None


class Routing:
    """Who of a segment's subscribers gets its digest, with "one digest per period".

    Reads the rows of editions already planned for a period once per period; build one
    per run (or per explanation), not one per subscriber.
    """

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self._readers: dict[str, dict[int, list[tuple[str, int]]]] = {}
        self._allowing = {s.name for s in settings.segments if not s.exclusive}

    def same_period(self, segment: Segment, sub: Subscriber) -> list[Segment]:
        """Every configured segment with ``segment``'s period that ``sub`` matches, in order."""
        return [s for s in self.settings.segments if s.period == segment.period and matches(s, sub)]

    def first_exclusive(self, segment: Segment, sub: Subscriber) -> Segment | None:
        """The first exclusive segment in config order with ``segment``'s period that
        ``sub`` matches: the one whose digest they get."""
        return next((s for s in self.same_period(segment, sub) if s.exclusive), None)

    def already_has(self, segment: Segment, period: str, sub: Subscriber) -> tuple[str, int] | None:
        """(segment, edition id) of another exclusive edition of ``period`` that has a row
        for ``sub`` (sent, or still to be sent), if any.

        A segment no longer in config counts as exclusive: what was sent stays sent.
        """
        if period not in self._readers:
            self._readers[period] = self.store.editions.readers_in_period(period)
        for other, edition_id in self._readers[period].get(sub.id, []):
            if other != segment.name and other not in self._allowing:
                return other, edition_id
        return None

    def verdict(
        self, segment: Segment, period: str, sub: Subscriber, *, manual: bool = False
    ) -> Verdict:
        """Whether ``sub``, who matches ``segment``, gets its edition of ``period``.

        ``manual``: a hand-picked send (``--items``) ignores the order of segments.
        """
        if not segment.exclusive:
            return Verdict(True, "overlap allowed")
        if not manual:
            first = self.first_exclusive(segment, sub)
            if first is not None and first.name != segment.name:
                return Verdict(False, f"goes to {first.name} (first in order)", first.name)
        held = self.already_has(segment, period, sub)
        if held is not None:
            other, edition_id = held
            why_not = f"already has edition {edition_id} of {other} for {period}"
            return Verdict(False, why_not, other)
        return Verdict(True)

    def recipients(
        self, segment: Segment, period: str, now: datetime, *, manual: bool = False
    ) -> Iterator[Subscriber]:
        """The subscribers who get ``segment``'s edition of ``period``: active, not
        pausing at ``now``, matching its rules, and not given to another segment."""
        for sub in recipients(self.store, segment, now=now):
            if self.verdict(segment, period, sub, manual=manual).receives:
                yield sub


def describe_rule(rule: Rule, sub: Subscriber) -> str:
    """One rule as it held for ``sub``, e.g. "lists contains members", "country != BG (DE)".

    The subscriber's own value is shown where the rule alone does not tell it.
    """
    want = rule.value if isinstance(rule.value, str) else ", ".join(rule.value)
    text = f"{rule.field} {rule.op} {want}"
    field = getattr(sub, rule.field)
    have = ", ".join(field) if isinstance(field, tuple) else str(field)
    if rule.op in ("!=", "not in", "not contains") or not isinstance(rule.value, str):
        text += f" ({have or 'empty'})"
    return text


def why(segment: Segment, sub: Subscriber) -> list[str]:
    """Why ``sub`` matches ``segment``: each rule as it held (a segment without rules
    matches everyone)."""
    if not segment.rules:
        return ["no rules: everyone"]
    return [describe_rule(rule, sub) for rule in segment.rules]
