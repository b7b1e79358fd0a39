"""Leases on claimed delivery rows: who holds them, heartbeats, and taking them back.

A claim stores its holder (:class:`~newsletter.send.holders.Holder`) and a heartbeat. While a
batch is in flight its sender renews the heartbeat (and the lease) every few seconds.
A claim ends without its holder, and its rows are dealt with as after a crash, when:

- its lease ran out (``lease_until``), or
- its heartbeat is older than the staleness limit (a dead worker on another host), or
- its holder is a process on this host that is gone (see :func:`holder_state`).

Split from :mod:`newsletter.store.deliveries`; ``DeliveryStore`` inherits these.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from newsletter.models import DeliveryStatus
from newsletter.send.holders import Holder
from newsletter.store.tables import deliveries as t

__all__ = ["DeliveryLeases", "HeldBy", "holder_values", "reclaimable"]


@dataclass(frozen=True)
class HeldBy:
    """Claimed rows of one holder in an edition."""

    holder: Holder
    rows: int
    #: the oldest heartbeat among them (None: claimed by a release without heartbeats)
    heartbeat_at: datetime | None
    #: the latest lease among them
    lease_until: datetime | None


def holder_values(holder: Holder | None, now: datetime) -> dict[str, object]:
    """Column values naming ``holder`` on a claim made ``now``."""
    if holder is None:
        return {"holder_host": None, "holder_pid": None, "holder_started": None}
    return {
        "holder_host": holder.host,
        "holder_pid": holder.pid,
        "holder_started": holder.started,
        "heartbeat_at": now,
    }


def _is(holder: Holder) -> sa.ColumnElement[bool]:
    started = (
        t.c.holder_started.is_(None)
        if holder.started is None
        else t.c.holder_started == holder.started
    )
    return sa.and_(t.c.holder_host == holder.host, t.c.holder_pid == holder.pid, started)


def reclaimable(
    edition_id: int,
    now: datetime,
    *,
    stale_before: datetime | None = None,
    dead: Collection[Holder] = (),
) -> sa.ColumnElement[bool]:
    """Claimed rows of the edition whose claim has ended without their holder."""
    ended: list[sa.ColumnElement[bool]] = [t.c.lease_until < now]
    if stale_before is not None:
        ended.append(t.c.heartbeat_at < stale_before)
    ended.extend(_is(h) for h in dead)
    return sa.and_(
        t.c.edition_id == edition_id,
        t.c.status == DeliveryStatus.CLAIMED.value,
        sa.or_(*ended),
    )


class DeliveryLeases:
    """Heartbeats and holders of claimed rows."""

    engine: sa.Engine

    def heartbeat(self, tokens: Sequence[str], lease: timedelta, now: datetime) -> int:
        """Renew the claims ``tokens`` (batches in flight): heartbeat now, lease from now.

        Returns the rows renewed; a claim already taken back renews nothing.
        """
        if not tokens:
            return 0
        with self.engine.begin() as conn:
            result = conn.execute(
                sa.update(t)
                .where(t.c.claimed_by.in_(list(tokens)), t.c.status == DeliveryStatus.CLAIMED.value)
                .values(heartbeat_at=now, lease_until=now + lease)
            )
        return int(result.rowcount)

    def holders(self, edition_id: int) -> list[HeldBy]:
        """Who holds claimed rows of the edition, with how many and their oldest heartbeat."""
        query = (
            sa.select(
                t.c.holder_host,
                t.c.holder_pid,
                t.c.holder_started,
                sa.func.count(),
                sa.func.min(t.c.heartbeat_at),
                sa.func.max(t.c.lease_until),
            )
            .where(t.c.edition_id == edition_id, t.c.status == DeliveryStatus.CLAIMED.value)
            .group_by(t.c.holder_host, t.c.holder_pid, t.c.holder_started)
        )
        with self.engine.connect() as conn:
            found = conn.execute(query).all()
        return [
            HeldBy(Holder(host or "", pid or 0, started), n, beat, until)
            for host, pid, started, n, beat, until in found
        ]
