"""Named locks with an expiry: one holder at a time, and a crashed holder does not block forever.

A holder takes a lock for ``ttl`` and renews it by heartbeat. A lock whose ``expires_at``
has passed is free for the next taker, so a process killed with SIGKILL (no release) only
blocks others until its last heartbeat plus ``ttl``. Taking and renewing are single
conditional statements, so two processes racing for a free lock never both win, on SQLite
(one writer at a time) or PostgreSQL (the row lock serialises the conditional UPDATE).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from newsletter.store.tables import locks as t

__all__ = ["Lock", "LockStore"]


@dataclass(frozen=True)
class Lock:
    """One lock row as read from the store."""

    name: str
    holder: str
    acquired_at: datetime
    heartbeat_at: datetime
    expires_at: datetime

    def alive(self, now: datetime) -> bool:
        """True while the holder's last heartbeat keeps the lock from lapsing."""
        return self.expires_at > now


class LockStore:
    """Queries over the ``locks`` table."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def acquire(self, name: str, holder: str, ttl: timedelta, now: datetime) -> Lock | None:
        """Take ``name`` for ``holder`` until ``now + ttl``; ``None`` while someone else holds it.

        A free, lapsed or already own lock is taken; another holder's live lock is left as
        it is.
        """
        values = {
            "name": name,
            "holder": holder,
            "acquired_at": now,
            "heartbeat_at": now,
            "expires_at": now + ttl,
        }
        dialect = self.engine.dialect.name
        insert: Any = postgresql.insert(t) if dialect == "postgresql" else sqlite.insert(t)
        with self.engine.begin() as conn:
            took = conn.execute(
                insert.values(values)
                .on_conflict_do_nothing(index_elements=["name"])
                .returning(t.c.name)
            ).first()
            if took is None:
                took = conn.execute(
                    sa.update(t)
                    .where(t.c.name == name, sa.or_(t.c.expires_at <= now, t.c.holder == holder))
                    .values(values)
                    .returning(t.c.name)
                ).first()
        return None if took is None else self.get(name)

    def renew(self, name: str, holder: str, ttl: timedelta, now: datetime) -> bool:
        """Extend ``holder``'s lock to ``now + ttl``; False when it is no longer theirs."""
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.update(t)
                .where(t.c.name == name, t.c.holder == holder)
                .values(heartbeat_at=now, expires_at=now + ttl)
                .returning(t.c.name)
            ).first()
        return row is not None

    def release(self, name: str, holder: str) -> bool:
        """Give the lock up (only ``holder`` can); False when it was not theirs."""
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.delete(t).where(t.c.name == name, t.c.holder == holder).returning(t.c.name)
            ).first()
        return row is not None

    def get(self, name: str) -> Lock | None:
        """The lock called ``name``, live or lapsed, if anyone ever took it."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t).where(t.c.name == name)).first()
        if row is None:
            return None
        return Lock(
            name=row.name,
            holder=row.holder,
            acquired_at=row.acquired_at,
            heartbeat_at=row.heartbeat_at,
            expires_at=row.expires_at,
        )
