"""Delivery rows: one per (edition, subscriber), the source of truth for sending.

A row moves queued -> claimed -> sent | retry | failed | unknown, or to skipped (the
subscriber left before their row was sent, or the edition was cancelled). A row is
``sent`` only after the provider accepted it; ``unknown`` when it may or may not have gone
out (its worker died holding it, or the provider's answer was lost) and the provider
cannot deduplicate a resend: only :meth:`DeliveryStore.requeue_unknown` sends it again.
Workers claim rows with a lease; on PostgreSQL with ``FOR UPDATE SKIP LOCKED`` so several
workers share an edition, on SQLite inside one writer transaction.

Every claim gets a unique token, stored in ``claimed_by`` and, the first time a row is
claimed, in ``batch_key``. Rows that were handed to the provider once and must go again
(a retry, or a lease that expired under an idempotent provider) are claimed again *as the
same batch*: the same rows in the same order, so a provider that deduplicates per request
(Resend's batch ``Idempotency-Key``) recognises the repeat. Results are only recorded for
rows still held under the recording claim's token, so a worker that lost its lease can
never overwrite what another worker recorded.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from newsletter.models import Delivery, DeliveryStatus
from newsletter.send.holders import Holder
from newsletter.store.delivery_records import CANCELLED, DeliveryRecords, end_expired_claims
from newsletter.store.delivery_stats import DeliveryQueries
from newsletter.store.leases import DeliveryLeases, holder_values
from newsletter.store.tables import deliveries as t
from newsletter.store.tables import subscribers

__all__ = ["CANCELLED", "FINAL", "Claim", "DeliveryStore", "UnknownRow"]

#: statuses after which a row is never touched again by sending
FINAL = (DeliveryStatus.SENT, DeliveryStatus.FAILED, DeliveryStatus.SKIPPED)


#: the columns a :class:`Delivery` is made of (claims return no timestamps to convert)
_COLUMNS = (
    t.c.id,
    t.c.edition_id,
    t.c.subscriber_id,
    t.c.locale,
    t.c.status,
    t.c.attempts,
    t.c.provider_message_id,
    t.c.error,
)


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


@dataclass(frozen=True)
class Claim:
    """Rows claimed together under one token; ``again`` when they were sent as a batch before."""

    token: str
    rows: list[Delivery]
    again: bool = False

    def __len__(self) -> int:
        return len(self.rows)


@dataclass(frozen=True)
class UnknownRow:
    """A row whose outcome is unknown, with what a provider lookup needs."""

    id: int
    email: str
    #: when it became unknown: the message, if it went, went before this
    since: datetime


def _fresh() -> sa.ColumnElement[bool]:
    """Rows never handed to a provider: claimed in new batches."""
    return sa.and_(t.c.status == DeliveryStatus.QUEUED.value, t.c.batch_key.is_(None))


def _again_branches(now: datetime) -> tuple[sa.ColumnElement[bool], sa.ColumnElement[bool]]:
    """The two kinds of rows due to go again: retries whose time came, released batches."""
    return (
        sa.and_(t.c.status == DeliveryStatus.RETRY.value, t.c.next_attempt_at <= now),
        sa.and_(t.c.status == DeliveryStatus.QUEUED.value, t.c.batch_key.is_not(None)),
    )


def _again(now: datetime) -> sa.ColumnElement[bool]:
    """Rows of an earlier batch that are due to go again (as that batch)."""
    return sa.or_(*_again_branches(now))


def _not_yet(edition_id: int, now: datetime) -> sa.Select[tuple[str | None]]:
    """Batch keys with a row still held or not due yet: such a batch waits, whole.

    Claiming only its due part would send those rows in a request of their own, under a
    new idempotency key, and a provider that already took the whole batch would deliver
    them twice.
    """
    other = t.alias("other")
    return sa.select(other.c.batch_key).where(
        other.c.edition_id == edition_id,
        other.c.batch_key.is_not(None),
        sa.or_(
            other.c.status == DeliveryStatus.CLAIMED.value,
            sa.and_(other.c.status == DeliveryStatus.RETRY.value, other.c.next_attempt_at > now),
        ),
    )


class DeliveryStore(DeliveryRecords, DeliveryQueries, DeliveryLeases):
    """The ``deliveries`` table: planning and claiming here; recording results
    (:class:`~newsletter.store.delivery_records.DeliveryRecords`), read-only queries
    (:class:`~newsletter.store.delivery_stats.DeliveryQueries`) and heartbeats
    (:class:`~newsletter.store.leases.DeliveryLeases`) inherited."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def plan(self, edition_id: int, rows: Iterable[tuple[int, str]], now: datetime) -> int:
        """Queue (subscriber id, locale) rows for an edition; existing rows are kept as they are.

        ``rows`` is consumed as a stream, 500 at a time. Returns the number of rows
        inserted. Safe to call again after a crash.
        """
        dialect = self.engine.dialect.name
        insert: Any = postgresql.insert(t) if dialect == "postgresql" else sqlite.insert(t)
        inserted = 0
        batch: list[dict[str, Any]] = []

        # one statement compiled once, executed with many parameter sets (SQLAlchemy's
        # "insertmanyvalues" turns that into multi-row INSERTs with RETURNING)
        stmt = insert.on_conflict_do_nothing(
            index_elements=["edition_id", "subscriber_id"]
        ).returning(t.c.id)

        def flush(conn: sa.Connection) -> int:
            if not batch:
                return 0
            # rowcount is -1 for multi-row inserts on psycopg; RETURNING counts on both
            count = len(conn.execute(stmt, batch).all())
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
        """Claim up to ``limit`` due rows for ``worker`` (see :meth:`claim_batch`)."""
        return self.claim_batch(edition_id, worker, limit, lease, now).rows

    def claim_batch(
        self,
        edition_id: int,
        token: str,
        limit: int,
        lease: timedelta,
        now: datetime,
        *,
        holder: Holder | None = None,
    ) -> Claim:
        """Claim the next batch under the unique ``token``, holding it until ``now + lease``.

        An earlier batch due to go again comes first, whole; otherwise up to ``limit``
        fresh rows, lowest id first. ``holder`` (this process) is stored with the claim,
        so a later run can tell when it is gone (:mod:`newsletter.store.leases`).
        """
        values = self._claim_values(token, lease, now) | holder_values(holder, now)
        with self.engine.begin() as conn:
            again = self._claim_again(conn, edition_id, limit, values, now)
            if again:
                return Claim(token, again, again=True)
            return Claim(token, self._claim_fresh(conn, edition_id, limit, values))

    def _take(
        self, conn: sa.Connection, ids: list[int], due: Any, values: dict[str, Any]
    ) -> list[Delivery]:
        # the due condition again: on SQLite another process may have claimed these rows
        # between our SELECT and UPDATE; RETURNING tells what we really got
        rows = conn.execute(
            sa.update(t).where(t.c.id.in_(ids), due).values(**values).returning(*_COLUMNS)
        ).all()
        return sorted((_row(r) for r in rows), key=lambda d: d.id)

    def _claim_values(self, token: str, lease: timedelta, now: datetime) -> dict[str, Any]:
        return {
            "status": DeliveryStatus.CLAIMED.value,
            "claimed_by": token,
            "lease_until": now + lease,
            "updated_at": now,
        }

    def _claim_fresh(
        self, conn: sa.Connection, edition_id: int, limit: int, values: dict[str, Any]
    ) -> list[Delivery]:
        due = _fresh()
        pick = (
            sa.select(t.c.id)
            .where(t.c.edition_id == edition_id, due)
            .order_by(t.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        ids = list(conn.execute(pick).scalars())
        if not ids:
            return []
        return self._take(conn, ids, due, values | {"batch_key": values["claimed_by"]})

    def _claim_again(
        self,
        conn: sa.Connection,
        edition_id: int,
        limit: int,
        values: dict[str, Any],
        now: datetime,
    ) -> list[Delivery]:
        due = _again(now)
        for _ in range(5):
            # one query per branch of ``due``: an OR over both would walk the edition's
            # rows in id order, every claim (quadratic in the edition's size)
            waiting = _not_yet(edition_id, now)
            firsts = [
                conn.execute(
                    sa.select(t.c.id, t.c.batch_key)
                    .where(t.c.edition_id == edition_id, branch, t.c.batch_key.not_in(waiting))
                    .order_by(t.c.id)
                    .limit(1)
                ).first()
                for branch in _again_branches(now)
            ]
            found = [row for row in firsts if row is not None]
            if not found:
                return []
            key = min(found, key=lambda row: row.id).batch_key
            # locking in id order (no SKIP LOCKED): a second worker racing for the same
            # batch waits, then finds its rows no longer due, so a batch is never split
            ids = list(
                conn.execute(
                    sa.select(t.c.id)
                    .where(t.c.edition_id == edition_id, t.c.batch_key == key, due)
                    .order_by(t.c.id)
                    .limit(limit)
                    .with_for_update()
                ).scalars()
            )
            if ids:
                got = self._take(conn, ids, due, values)
                if got:
                    return got
        return []

    def expire_leases(
        self,
        edition_id: int,
        now: datetime,
        *,
        resend: bool,
        stale_before: datetime | None = None,
        dead: Collection[Holder] = (),
    ) -> int:
        """Deal with rows whose worker died while holding them: the lease ran out, the
        heartbeat is older than ``stale_before``, or the holder is among the ``dead``.

        Whether such a message went out is unknown. With an idempotent provider (``resend``)
        the row is queued again and re-sent, as the same batch, under the same key;
        otherwise it becomes ``unknown`` and is only re-sent on an operator's request.
        """
        target = DeliveryStatus.QUEUED if resend else DeliveryStatus.UNKNOWN
        ended = end_expired_claims(edition_id, now, target, stale_before=stale_before, dead=dead)
        with self.engine.begin() as conn:
            result = conn.execute(ended)
        return int(result.rowcount)

    def requeue_unknown(self, edition_id: int, now: datetime) -> int:
        """Queue every ``unknown`` row again (the operator accepts possible duplicates)."""
        with self.engine.begin() as conn:
            result = conn.execute(
                sa.update(t)
                .where(t.c.edition_id == edition_id, t.c.status == DeliveryStatus.UNKNOWN.value)
                .values(status=DeliveryStatus.QUEUED.value, batch_key=None, updated_at=now)
            )
        return int(result.rowcount)

    def unknown_rows(self, edition_id: int) -> list[UnknownRow]:
        """The edition's ``unknown`` rows with their recipients' addresses."""
        query = (
            sa.select(t.c.id, subscribers.c.email, t.c.updated_at)
            .join(subscribers, subscribers.c.id == t.c.subscriber_id)
            .where(t.c.edition_id == edition_id, t.c.status == DeliveryStatus.UNKNOWN.value)
            .order_by(t.c.id)
        )
        with self.engine.connect() as conn:
            return [UnknownRow(r.id, r.email, r.updated_at) for r in conn.execute(query)]

    def settle_unknown(
        self,
        edition_id: int,
        accepted: Mapping[int, str],
        never_arrived: Collection[int],
        now: datetime,
    ) -> tuple[int, int]:
        """Record what a provider lookup told of ``unknown`` rows: ``accepted`` ones (by
        id, with the provider's message id) are sent, ``never_arrived`` ones are queued
        again as new batches. Rows no longer ``unknown`` are left alone. Returns the
        numbers of rows marked sent and queued."""
        unknown = sa.and_(t.c.edition_id == edition_id, t.c.status == DeliveryStatus.UNKNOWN.value)
        sent = queued = 0
        with self.engine.begin() as conn:
            if accepted:
                stmt = (
                    sa.update(t)
                    .where(unknown, t.c.id == sa.bindparam("b_id"))
                    .values(
                        status=DeliveryStatus.SENT.value,
                        provider_message_id=sa.bindparam("b_message_id"),
                        error=None,
                        sent_at=now,
                        updated_at=now,
                    )
                )
                # rowcount is not reliable for executemany on every driver: count first
                still = set(conn.scalars(sa.select(t.c.id).where(unknown)))
                params = [
                    {"b_id": k, "b_message_id": v[:500]} for k, v in accepted.items() if k in still
                ]
                if params:
                    conn.execute(stmt, params)
                sent = len(params)
            ids = list(never_arrived)
            for start in range(0, len(ids), 500):
                result = conn.execute(
                    sa.update(t)
                    .where(unknown, t.c.id.in_(ids[start : start + 500]))
                    .values(status=DeliveryStatus.QUEUED.value, batch_key=None, updated_at=now)
                )
                queued += int(result.rowcount)
        return sent, queued
