"""Recording what happened to claimed delivery rows: results, skips, releases, cancels.

Split from :mod:`newsletter.store.deliveries` (planning and claiming): ``DeliveryStore``
inherits these, callers use ``store.deliveries.record(...)``. Every write here is guarded
by the row's state (and, for a worker's results, by its claim token), so a worker that
lost its lease never overwrites what another recorded, and a cancel never touches a row a
live worker still holds.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from newsletter.models import DeliveryStatus, ResultStatus, SendResult
from newsletter.send.holders import Holder
from newsletter.store.leases import reclaimable
from newsletter.store.tables import deliveries as t

__all__ = ["CANCELLED", "DeliveryRecords", "end_expired_claims"]

#: the reason recorded on rows skipped because their edition was cancelled
CANCELLED = "cancelled"


def end_expired_claims(
    edition_id: int,
    now: datetime,
    target: DeliveryStatus,
    *,
    stale_before: datetime | None = None,
    dead: Collection[Holder] = (),
) -> sa.Update:
    """The update moving rows whose claim ended without its holder (lease expired,
    heartbeat older than ``stale_before``, holder among the ``dead``) to ``target``:
    ``unknown``, or ``queued`` to go again under the same idempotency key."""
    return (
        sa.update(t)
        .where(reclaimable(edition_id, now, stale_before=stale_before, dead=dead))
        .values(status=target.value, claimed_by=None, lease_until=None, updated_at=now)
    )


#: ids per IN list: under SQLite's and PostgreSQL's bound-parameter limits
_CHUNK = 500


class DeliveryRecords:
    """Changes to claimed or pending rows once their fate is known."""

    engine: sa.Engine

    def record(
        self,
        results: Sequence[SendResult],
        now: datetime,
        *,
        max_attempts: int,
        backoff: Callable[[int, float | None], float],
        claimed_by: str | None = None,
    ) -> Counter[DeliveryStatus]:
        """Store what the provider said for each claimed row; the rows per status written.

        ``backoff(attempts, retry_after)`` gives the delay before the next try; it is asked
        once per distinct (attempts, retry_after), so the rows of one batch fall due
        together (a jittered delay per row would split the batch, and its parts would go
        under new idempotency keys the provider cannot match). A retryable
        result that carries ``retry_after`` is the provider throttling us, not a fault of
        the message: it is retried however many attempts it took. An ``UNKNOWN`` result
        makes the row ``unknown``, never re-sent automatically; a retryable one that has
        used up ``max_attempts`` ends ``failed``. Only rows still claimed (by
        ``claimed_by``, when given) are written.

        The returned counts are what each result became (``retry``, or ``failed`` once out
        of attempts), so a run reports the store's outcome, not the provider's words.
        """
        written: Counter[DeliveryStatus] = Counter()
        if not results:
            return written
        claimed = [t.c.status == DeliveryStatus.CLAIMED.value]
        if claimed_by is not None:
            claimed.append(t.c.claimed_by == claimed_by)
        done = {"claimed_by": None, "lease_until": None, "updated_at": now}
        # A provider answering per request (SendGrid, Mailgun) names each message
        # "<request id>/<delivery id>": those rows take one UPDATE per batch, the id
        # rebuilt in SQL. Any other id (Postmark's own per message) goes row by row.
        by_request: defaultdict[str, list[int]] = defaultdict(list)
        one_by_one: list[dict[str, Any]] = []
        rest = []
        for res in results:
            if res.status is not ResultStatus.ACCEPTED:
                rest.append(res)
                continue
            mid = res.provider_message_id or ""
            prefix, _, tail = mid.rpartition("/")
            if prefix and tail == str(res.delivery_id):
                by_request[prefix].append(res.delivery_id)
            else:
                one_by_one.append({"b_id": res.delivery_id, "b_message_id": mid or None})
        sent = {
            "attempts": t.c.attempts + 1,
            "status": DeliveryStatus.SENT.value,
            "sent_at": now,
            "next_attempt_at": None,
            "error": None,
            **done,
        }
        with self.engine.begin() as conn:
            for prefix, ids in by_request.items():
                mid_sql = sa.literal(prefix + "/") + sa.cast(t.c.id, sa.String)
                for start in range(0, len(ids), _CHUNK):
                    chunk = ids[start : start + _CHUNK]
                    conn.execute(
                        sa.update(t)
                        .where(t.c.id.in_(chunk), *claimed)
                        .values(provider_message_id=mid_sql, **sent)
                    )
            if one_by_one:
                conn.execute(
                    sa.update(t)
                    .where(t.c.id == sa.bindparam("b_id"), *claimed)
                    .values(provider_message_id=sa.bindparam("b_message_id"), **sent),
                    one_by_one,
                )
            written[DeliveryStatus.SENT] += len(results) - len(rest)
            if rest:
                self._record_rest(conn, rest, now, max_attempts, backoff, claimed, done, written)
        return written

    def _record_rest(
        self,
        conn: sa.Connection,
        results: Sequence[SendResult],
        now: datetime,
        max_attempts: int,
        backoff: Callable[[int, float | None], float],
        claimed: list[Any],
        done: dict[str, Any],
        written: Counter[DeliveryStatus],
    ) -> None:
        """The results that were not accepted: each row's attempts decide retry or fail."""
        query = sa.select(t.c.id, t.c.attempts).where(t.c.id.in_([r.delivery_id for r in results]))
        attempts = {row.id: row.attempts for row in conn.execute(query)}
        params = []
        delays: dict[tuple[int, float | None], float] = {}
        for res in results:
            tries = attempts.get(res.delivery_id, 0) + 1
            values: dict[str, Any] = {
                "b_id": res.delivery_id,
                "b_attempts": tries,
                "b_status": DeliveryStatus.FAILED.value,
                "b_next": None,
                "b_error": res.error,
            }
            throttled = res.retry_after is not None
            if res.status is ResultStatus.UNKNOWN:
                values["b_status"] = DeliveryStatus.UNKNOWN.value
            elif res.status is ResultStatus.RETRYABLE and (throttled or tries < max_attempts):
                wait = (tries, res.retry_after)
                delay = delays.setdefault(wait, backoff(*wait))
                values |= {
                    "b_status": DeliveryStatus.RETRY.value,
                    "b_next": now + timedelta(seconds=delay),
                }
            params.append(values)
            written[DeliveryStatus(values["b_status"])] += 1
        stmt = (
            sa.update(t)
            .where(t.c.id == sa.bindparam("b_id"), *claimed)
            .values(
                attempts=sa.bindparam("b_attempts"),
                status=sa.bindparam("b_status"),
                next_attempt_at=sa.bindparam("b_next", type_=t.c.next_attempt_at.type),
                error=sa.bindparam("b_error"),
                **done,
            )
        )
        # one executemany: a batch of 500 results is one round trip, not 500
        conn.execute(stmt, params)

    def skip(self, delivery_id: int, reason: str, now: datetime) -> None:
        """Mark a row skipped (the subscriber is no longer active)."""
        self.skip_many([delivery_id], reason, now)

    def skip_many(self, ids: Sequence[int], reason: str, now: datetime) -> None:
        """Mark rows skipped with ``reason``."""
        if not ids:
            return
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(t)
                .where(t.c.id.in_(list(ids)))
                .values(
                    status=DeliveryStatus.SKIPPED.value,
                    error=reason,
                    claimed_by=None,
                    lease_until=None,
                    next_attempt_at=None,
                    updated_at=now,
                )
            )

    def release(self, ids: Sequence[int], now: datetime, *, claimed_by: str | None = None) -> None:
        """Give claimed rows back unsent (the provider refused to work, shutdown before sending).

        Their ``batch_key`` stays, so they go again as the batch they were.
        """
        cond = [t.c.id.in_(list(ids)), t.c.status == DeliveryStatus.CLAIMED.value]
        if claimed_by is not None:
            cond.append(t.c.claimed_by == claimed_by)
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(t)
                .where(*cond)
                .values(
                    status=DeliveryStatus.QUEUED.value,
                    claimed_by=None,
                    lease_until=None,
                    updated_at=now,
                )
            )

    def cancel(self, edition_id: int, now: datetime) -> tuple[int, int]:
        """Stop an edition's rows: (skipped, unknown).

        Queued and retrying rows become ``skipped`` with the reason "cancelled". Rows held
        by a worker whose lease expired become ``unknown`` (it may have sent them); rows
        held under a live lease are left to their worker, which records what happened.
        Safe to call again.
        """
        with self.engine.begin() as conn:
            unknown = conn.execute(
                end_expired_claims(edition_id, now, DeliveryStatus.UNKNOWN)
            ).rowcount
            skipped = conn.execute(
                sa.update(t)
                .where(
                    t.c.edition_id == edition_id,
                    t.c.status.in_([DeliveryStatus.QUEUED.value, DeliveryStatus.RETRY.value]),
                )
                .values(
                    status=DeliveryStatus.SKIPPED.value,
                    error=CANCELLED,
                    next_attempt_at=None,
                    updated_at=now,
                )
            ).rowcount
        return int(skipped), int(unknown)
