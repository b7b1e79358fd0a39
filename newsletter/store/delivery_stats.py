"""Read-only questions about an edition's delivery rows: counts, reasons, timing.

Split from :mod:`newsletter.store.deliveries` (which changes rows) so each stays short;
``DeliveryStore`` inherits these, callers use ``store.deliveries.counts(...)``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from newsletter.models import DeliveryStatus
from newsletter.store.tables import UTCDateTime
from newsletter.store.tables import deliveries as t

#: statuses that keep an edition from being finished
PENDING = (DeliveryStatus.QUEUED, DeliveryStatus.CLAIMED, DeliveryStatus.RETRY)


class DeliveryQueries:
    """Counts and timings over the ``deliveries`` table."""

    engine: sa.Engine

    def counts(self, edition_id: int) -> dict[DeliveryStatus, int]:
        """Rows per status for one edition."""
        query = (
            sa.select(t.c.status, sa.func.count())
            .where(t.c.edition_id == edition_id)
            .group_by(t.c.status)
        )
        with self.engine.connect() as conn:
            return {DeliveryStatus(s): int(n) for s, n in conn.execute(query)}

    def counts_by_locale(self, edition_id: int) -> dict[str, dict[DeliveryStatus, int]]:
        """Rows per locale and status for one edition."""
        query = (
            sa.select(t.c.locale, t.c.status, sa.func.count())
            .where(t.c.edition_id == edition_id)
            .group_by(t.c.locale, t.c.status)
        )
        out: dict[str, dict[DeliveryStatus, int]] = {}
        with self.engine.connect() as conn:
            for locale, status, n in conn.execute(query):
                out.setdefault(locale, {})[DeliveryStatus(status)] = int(n)
        return out

    def errors(self, edition_id: int, limit: int = 10) -> list[tuple[str, int]]:
        """The most common error reasons of failed, retrying or skipped rows."""
        query = (
            sa.select(t.c.error, sa.func.count().label("n"))
            .where(t.c.edition_id == edition_id, t.c.error.is_not(None))
            .group_by(t.c.error)
            .order_by(sa.desc("n"))
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [(str(e), int(n)) for e, n in conn.execute(query)]

    def _earliest(self, edition_id: int, column: Any, status: DeliveryStatus) -> datetime | None:
        # ORDER BY + LIMIT rather than min(): min() bypasses the column type on SQLite
        query = (
            sa.select(column)
            .where(t.c.edition_id == edition_id, t.c.status == status.value)
            .order_by(column)
            .limit(1)
        )
        with self.engine.connect() as conn:
            value: datetime | None = conn.execute(query).scalar()
        return value

    def next_retry_at(self, edition_id: int) -> datetime | None:
        """When the earliest row waiting for a retry becomes due."""
        return self._earliest(edition_id, t.c.next_attempt_at, DeliveryStatus.RETRY)

    def sent_since(self, edition_id: int, since: datetime) -> tuple[int, datetime | None]:
        """Rows sent at or after ``since``, and when the first of them was sent."""
        query = sa.select(sa.func.count(), sa.func.min(t.c.sent_at)).where(
            t.c.edition_id == edition_id,
            t.c.status == DeliveryStatus.SENT.value,
            t.c.sent_at >= since,
        )
        with self.engine.connect() as conn:
            n, first = conn.execute(query).one()
        # min() bypasses the column type on SQLite: normalise through the same decorator
        if isinstance(first, str):
            first = datetime.fromisoformat(first)
        return int(n), UTCDateTime().process_result_value(first, self.engine.dialect)

    def pending(self, edition_id: int) -> int:
        """Rows that still need sending (queued, claimed or waiting for a retry)."""
        counts = self.counts(edition_id)
        return sum(counts.get(s, 0) for s in PENDING)
