"""Segments: rules from config.toml evaluated over subscriber fields."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from newsletter.config import Rule, Segment
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
    time), streamed from the store in batches."""
    when = now or datetime.now(UTC)
    for sub in store.subscribers.iter(status=SubscriberStatus.ACTIVE, batch_size=batch_size):
        if matches(segment, sub) and not sub.is_paused(when):
            yield sub
