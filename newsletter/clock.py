"""The one clock of the package: every stage takes a :data:`Clock` and defaults to
:func:`utcnow`, so tests inject a fixed or stepping one instead of reading the wall clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

__all__ = ["Clock", "utcnow"]

#: a function returning the current, timezone-aware time
Clock = Callable[[], datetime]


def utcnow() -> datetime:
    """The current time, timezone-aware (UTC)."""
    return datetime.now(UTC)
