"""Delivery rows: one per (edition, subscriber), the source of truth for sending.

A row moves queued -> claimed -> sent | retry | failed, or to skipped (the subscriber left
before their row was sent). A row is ``sent`` only after the provider accepted it. Workers
claim rows with a lease; on PostgreSQL with ``FOR UPDATE SKIP LOCKED`` so several workers
share an edition, on SQLite inside one writer transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from newsletter.models import Delivery, DeliveryStatus, ResultStatus, SendResult
from newsletter.store.tables import deliveries as t

#: statuses after which a row is never touched again by sending
FINAL = (DeliveryStatus.SENT, DeliveryStatus.FAILED, DeliveryStatus.SKIPPED)


def _row(row: Any) -> Delivery:
    return Delivery(
        id=row.id,
        edition_id=row.edition_id,
        subscriber_id=row.subscriber_id,
        locale=row.locale,
        status=DeliveryStatus(row.status),
        attempts=row.attempts,
        provider_message_id=row.provider_message_id,
        error=row.error,
    )


class DeliveryStore:
    """Queries over the ``deliveries`` table."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def plan(self, edition_id: int, rows: Iterable[tuple[int, str]], now: datetime) -> int:
        """Queue (subscriber id, locale) rows for an edition; existing rows are kept as they are.

        Returns the number of rows inserted. Safe to call again after a crash.
        """
        dialect = self.engine.dialect.name
        insert: Any = postgresql.insert(t) if dialect == "postgresql" else sqlite.insert(t)
        inserted = 0
        batch: list[dict[str, Any]] = []

        def flush(conn: sa.Connection) -> int:
            if not batch:
                return 0
            stmt = (
                insert.values(batch)
                .on_conflict_do_nothing(index_elements=["edition_id", "subscriber_id"])
                .returning(t.c.id)
            )
            # rowcount is -1 for multi-row inserts on psycopg; RETURNING counts on both
            count = len(conn.execute(stmt).all())
            batch.clear()
            return count

        with self.engine.begin() as conn:
            for subscriber_id, locale in rows:
                batch.append(
                    {
                        "edition_id": edition_id,
                        "subscriber_id": subscriber_id,
                        "locale": locale,
                        "status": DeliveryStatus.QUEUED.value,
                        "attempts": 0,
                        "updated_at": now,
                    }
                )
                if len(batch) >= 500:
                    inserted += flush(conn)
            inserted += flush(conn)
        return inserted

    def claim(
        self, edition_id: int, worker: str, limit: int, lease: timedelta, now: datetime
    ) -> list[Delivery]:
        """Claim up to ``limit`` due rows (queued, or retry whose time has come) for ``worker``."""
        due = sa.or_(
            t.c.status == DeliveryStatus.QUEUED.value,
            sa.and_(t.c.status == DeliveryStatus.RETRY.value, t.c.next_attempt_at <= now),
        )
        pick = (
            sa.select(t.c.id)
            .where(t.c.edition_id == edition_id, due)
            .order_by(t.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        with self.engine.begin() as conn:
            ids = list(conn.execute(pick).scalars())
            if not ids:
                return []
            # the status condition again: on SQLite another process may have claimed
            # these rows between our SELECT and UPDATE; RETURNING tells what we really got
            rows = conn.execute(
                sa.update(t)
                .where(t.c.id.in_(ids), due)
                .values(
                    status=DeliveryStatus.CLAIMED.value,
                    claimed_by=worker,
                    lease_until=now + lease,
                    updated_at=now,
                )
                .returning(*t.c)
            ).all()
        return sorted((_row(r) for r in rows), key=lambda d: d.id)

    def expire_leases(self, edition_id: int, now: datetime, *, resend: bool) -> int:
        """Deal with rows whose worker died while holding them.

        Whether such a message went out is unknown. With an idempotent provider (``resend``)
        the row is queued again and re-sent under the same key; otherwise it becomes
        ``unknown`` and is only re-sent on an operator's explicit request.
        """
        target = DeliveryStatus.QUEUED if resend else DeliveryStatus.UNKNOWN
        with self.engine.begin() as conn:
            result = conn.execute(
                sa.update(t)
                .where(
                    t.c.edition_id == edition_id,
                    t.c.status == DeliveryStatus.CLAIMED.value,
                    t.c.lease_until < now,
                )
                .values(status=target.value, claimed_by=None, lease_until=None, updated_at=now)
            )
        return int(result.rowcount)

    def requeue_unknown(self, edition_id: int, now: datetime) -> int:
        """Queue every ``unknown`` row again (the operator accepts possible duplicates)."""
        with self.engine.begin() as conn:
            result = conn.execute(
                sa.update(t)
                .where(t.c.edition_id == edition_id, t.c.status == DeliveryStatus.UNKNOWN.value)
                .values(status=DeliveryStatus.QUEUED.value, updated_at=now)
            )
        return int(result.rowcount)

    def record(
        self,
        results: Sequence[SendResult],
        now: datetime,
        *,
        max_attempts: int,
        backoff: Callable[[int, float | None], float],
    ) -> None:
        """Store what the provider said for each claimed row.

        ``backoff(attempts, retry_after)`` gives the delay before the next try.
        """
        with self.engine.begin() as conn:
            query = sa.select(t.c.id, t.c.attempts).where(
                t.c.id.in_([r.delivery_id for r in results])
            )
            attempts = {row.id: row.attempts for row in conn.execute(query)}
            for res in results:
                tries = attempts.get(res.delivery_id, 0) + 1
                values: dict[str, Any] = {
                    "attempts": tries,
                    "claimed_by": None,
                    "lease_until": None,
                    "updated_at": now,
                    "error": res.error,
                }
                if res.status is ResultStatus.ACCEPTED:
                    values |= {
                        "status": DeliveryStatus.SENT.value,
                        "provider_message_id": res.provider_message_id,
                        "sent_at": now,
                        "error": None,
                    }
                elif res.status is ResultStatus.RETRYABLE and tries < max_attempts:
                    delay = backoff(tries, res.retry_after)
                    values |= {
                        "status": DeliveryStatus.RETRY.value,
                        "next_attempt_at": now + timedelta(seconds=delay),
                    }
                else:
                    values["status"] = DeliveryStatus.FAILED.value
                # only the claimed row is ours to finish; a row someone else took over stays
                conn.execute(
                    sa.update(t)
                    .where(t.c.id == res.delivery_id, t.c.status == DeliveryStatus.CLAIMED.value)
                    .values(**values)
                )

    def skip(self, delivery_id: int, reason: str, now: datetime) -> None:
        """Mark a claimed row skipped (the subscriber is no longer active)."""
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(t)
                .where(t.c.id == delivery_id)
                .values(
                    status=DeliveryStatus.SKIPPED.value,
                    error=reason,
                    claimed_by=None,
                    lease_until=None,
                    updated_at=now,
                )
            )

    def release(self, ids: Sequence[int], now: datetime) -> None:
        """Give claimed rows back unsent (pause, shutdown before sending)."""
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(t)
                .where(t.c.id.in_(list(ids)), t.c.status == DeliveryStatus.CLAIMED.value)
                .values(
                    status=DeliveryStatus.QUEUED.value,
                    claimed_by=None,
                    lease_until=None,
                    updated_at=now,
                )
            )

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

    def next_retry_at(self, edition_id: int) -> datetime | None:
        """When the earliest row waiting for a retry becomes due."""
        query = (
            sa.select(t.c.next_attempt_at)
            .where(t.c.edition_id == edition_id, t.c.status == DeliveryStatus.RETRY.value)
            .order_by(t.c.next_attempt_at)
            .limit(1)
        )
        with self.engine.connect() as conn:
            value: datetime | None = conn.execute(query).scalar()
        return value

    def pending(self, edition_id: int) -> int:
        """Rows that still need sending (queued, claimed or waiting for a retry)."""
        counts = self.counts(edition_id)
        return sum(
            counts.get(s, 0)
            for s in (DeliveryStatus.QUEUED, DeliveryStatus.CLAIMED, DeliveryStatus.RETRY)
        )
