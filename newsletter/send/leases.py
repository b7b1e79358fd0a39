"""A sender's side of leases: heartbeats for its batches in flight, and taking back the
rows of holders that are gone (see :mod:`newsletter.store.leases`).

Split from :mod:`newsletter.send.engine` (the run loop), which owns one :class:`LeaseKeeper`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from newsletter.send.backend import SendStore
from newsletter.send.holders import Holder, holder_state
from newsletter.store.leases import HeldBy

__all__ = ["STALE", "LeaseKeeper"]

log = logging.getLogger("newsletter.send.engine")

#: a claim whose heartbeat is older than this is taken for its holder's death
STALE = timedelta(seconds=60)


class LeaseKeeper:
    """Renews this sender's claims while their batches are in flight; ends the claims of
    holders that are gone, so their rows go on at once instead of after the lease."""

    def __init__(
        self,
        store: SendStore,
        holder: Holder,
        *,
        lease: timedelta,
        stale: timedelta,
        clock: Callable[[], datetime],
    ) -> None:
        self.store = store
        self.holder = holder
        self.lease = lease
        self.stale = stale
        self.clock = clock
        #: claim tokens of the batches in flight
        self.tokens: set[str] = set()
        # often enough that neither a short lease nor the staleness limit runs out
        self.every = max(min(lease, stale).total_seconds() / 4, 0.05)

    def dead(self, edition_id: int) -> list[HeldBy]:
        """Holders of the edition's rows known to be gone (their process on this host
        has ended or its pid was reused)."""
        held = self.store.deliveries.holders(edition_id)
        return [h for h in held if holder_state(h.holder) is False]

    def sweep(self, edition_id: int, now: datetime, *, resend: bool) -> int:
        """Take back rows whose lease ran out, whose heartbeat is stale, or whose holder
        is gone; returns how many."""
        dead = self.dead(edition_id)
        ended = self.store.deliveries.expire_leases(
            edition_id,
            now,
            resend=resend,
            stale_before=now - self.stale,
            dead=[h.holder for h in dead],
        )
        if ended:
            who = ", ".join(h.holder.describe() for h in dead) or "a worker whose heartbeat stopped"
            log.warning("edition %s: took back %d row(s) held by %s (gone)", edition_id, ended, who)
        return ended

    async def beat(self) -> None:
        """Renew the claims in flight every :attr:`every` seconds, until cancelled."""
        while True:
            await asyncio.sleep(self.every)
            if self.tokens:
                self.store.deliveries.heartbeat(sorted(self.tokens), self.lease, self.clock())

    def held_wait(self, wait_for_retries: float, poll: float) -> float:
        """How long an idle sender waits for rows others hold: long enough that a dead
        holder elsewhere is noticed by its heartbeat."""
        return max(wait_for_retries, self.stale.total_seconds() + 2 * poll)

    def say_waiting(self, edition_id: int, left: float) -> None:
        """Tell the operator whose rows we wait for, and for how long at most."""
        held = self.store.deliveries.holders(edition_id)
        if not held:
            return
        now = self.clock()
        parts = []
        for h in held:
            age = (
                ""
                if h.heartbeat_at is None
                else (f", heartbeat {(now - h.heartbeat_at).total_seconds():.0f} s ago")
            )
            parts.append(f"{h.rows} by {h.holder.describe()}{age}")
        log.warning(
            "edition %s: waiting up to %.0f s for row(s) held by other workers (%s); a dead "
            "one's rows come back when its heartbeat is %.0f s old",
            edition_id,
            left,
            "; ".join(parts),
            self.stale.total_seconds(),
        )
