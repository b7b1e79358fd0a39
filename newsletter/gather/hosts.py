"""Per-host slots: at most ``limit`` requests to one host at a time, within a deadline.

Gathering fetches many sources at once; this keeps it polite to each server and stops one
slow host from taking every worker: a request waiting for a busy host's slot waits no
longer than its fetch's deadline (:func:`newsletter.gather.netguard.remaining`).
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from collections.abc import Iterator

__all__ = ["HostSlots"]


class HostSlots:
    """Counts the requests in flight per host; :meth:`slot` waits for a free one."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("a host needs at least one slot")
        self.limit = limit
        self._busy: Counter[str] = Counter()
        self._changed = threading.Condition()

    def in_flight(self, host: str) -> int:
        """How many requests to ``host`` hold a slot now."""
        with self._changed:
            return self._busy[host.lower()]

    @contextlib.contextmanager
    def slot(self, host: str, timeout: float | None = None) -> Iterator[None]:
        """Hold one of ``host``'s slots for the block.

        Raises :class:`TimeoutError` when none came free within ``timeout`` seconds
        (``None``: wait as long as it takes).
        """
        key = host.lower()
        with self._changed:
            if not self._changed.wait_for(lambda: self._busy[key] < self.limit, timeout):
                raise TimeoutError(f"no free slot for {host} within {timeout}s")
            self._busy[key] += 1
        try:
            yield
        finally:
            with self._changed:
                self._busy[key] -= 1
                if not self._busy[key]:
                    del self._busy[key]
                self._changed.notify_all()
