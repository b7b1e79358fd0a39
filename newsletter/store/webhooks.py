"""Provider webhook bookkeeping: events and request nonces already seen, soft-bounce counts.

A row per (provider, event id) makes every event apply once: a handler *claims* the events
of a request before applying them and releases the claim if applying fails, so the
provider's retry applies them then. A request nonce (Mailgun's token, Svix's message id,
an SNS MessageId) is stored as one more row, under ``request:<nonce>``, so a replayed
request is refused as a whole. No address is stored, only the subscriber's id.

The delivery queries here read and annotate ``deliveries`` rows with what the provider said
later (delivered, bounced, ...); sending itself never looks at those columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from newsletter.store.tables import deliveries, subscribers
from newsletter.store.tables import webhook_events as t

#: kind stored for a request nonce row
REQUEST_KIND = "request"


@dataclass(frozen=True)
class EventRow:
    """One event to claim: the provider's id for it, its kind and whom it concerns."""

    event_id: str
    kind: str
    subscriber_id: int | None
    occurred_at: datetime
    #: engagement: the delivery the event is about, its edition and locale, the story
    delivery_id: int | None = None
    edition_id: int | None = None
    locale: str | None = None
    story: str | None = None
    machine: bool = False


def _request_id(key: str) -> str:
    return f"request:{key}"[:300]


class WebhookEventStore:
    """Queries over ``webhook_events`` (and the provider-event columns of ``deliveries``)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def _insert(self) -> Any:
        dialect = self.engine.dialect.name
        return postgresql.insert(t) if dialect == "postgresql" else sqlite.insert(t)

    def claim(
        self,
        provider: str,
        rows: Sequence[EventRow],
        now: datetime,
        *,
        request_key: str | None = None,
    ) -> list[bool] | None:
        """Record ``rows`` as seen; per row, True when it was new (and is now ours to apply).

        Returns ``None``, recording nothing, when ``request_key`` was seen before.
        """
        insert = self._insert()

        def add(conn: sa.Connection, row: EventRow) -> bool:
            stmt = (
                insert.values(
                    provider=provider,
                    event_id=row.event_id[:300],
                    kind=row.kind,
                    subscriber_id=row.subscriber_id,
                    occurred_at=row.occurred_at,
                    received_at=now,
                    delivery_id=row.delivery_id,
                    edition_id=row.edition_id,
                    locale=row.locale,
                    story=row.story[:2000] if row.story else None,
                    machine=row.machine,
                )
                .on_conflict_do_nothing(index_elements=["provider", "event_id"])
                .returning(t.c.id)
            )
            return conn.execute(stmt).first() is not None

        with self.engine.begin() as conn:
            nonce = EventRow(_request_id(request_key or ""), REQUEST_KIND, None, now)
            if request_key is not None and not add(conn, nonce):
                return None
            return [add(conn, r) for r in rows]

    def release(
        self, provider: str, event_ids: Sequence[str], *, request_key: str | None = None
    ) -> None:
        """Forget claimed events (and the request nonce) whose application failed."""
        ids = [e[:300] for e in event_ids]
        if request_key is not None:
            ids.append(_request_id(request_key))
        if not ids:
            return
        with self.engine.begin() as conn:
            conn.execute(sa.delete(t).where(t.c.provider == provider, t.c.event_id.in_(ids)))

    def seen(self, provider: str, event_id: str) -> bool:
        """Whether this event id of this provider was recorded."""
        with self.engine.connect() as conn:
            query = sa.select(t.c.id).where(t.c.provider == provider, t.c.event_id == event_id)
            return conn.execute(query).first() is not None

    def for_subscriber(self, subscriber_id: int) -> list[dict[str, Any]]:
        """What providers reported about a subscriber and their own tracked clicks and opens,
        oldest first (for a data export)."""
        query = (
            sa.select(t.c.provider, t.c.kind, t.c.occurred_at, t.c.received_at)
            .add_columns(t.c.edition_id, t.c.locale, t.c.story, t.c.machine)
            .where(t.c.subscriber_id == subscriber_id, t.c.kind != REQUEST_KIND)
            .order_by(t.c.occurred_at, t.c.id)
        )
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def soft_bounces(self, subscriber_id: int, since: datetime) -> int:
        """Soft bounces of a subscriber since ``since`` and since their last delivery.

        A delivery in between shows the mailbox works again, so older soft bounces stop
        counting towards the threshold.
        """
        with self.engine.connect() as conn:
            last_delivered = conn.execute(
                sa.select(sa.func.max(t.c.occurred_at)).where(
                    t.c.subscriber_id == subscriber_id, t.c.kind == "delivered"
                )
            ).scalar()
            query = sa.select(sa.func.count()).where(
                t.c.subscriber_id == subscriber_id,
                t.c.kind == "soft_bounce",
                t.c.occurred_at >= since,
            )
            if last_delivered is not None:
                query = query.where(t.c.occurred_at > last_delivered)
            return int(conn.execute(query).scalar_one())

    def find_delivery(
        self,
        *,
        email: str,
        delivery_id: int | None = None,
        edition_id: int | None = None,
        subscriber_id: int | None = None,
        provider_message_id: str | None = None,
    ) -> int | None:
        """The delivery row an event is about: by our ids, else by the provider's message id.

        A delivery id counts only if the row is the recipient's. A provider message id may
        be shared by a whole batch (SendGrid), so that lookup needs the address too.
        """
        d, s = deliveries, subscribers
        with self.engine.connect() as conn:
            if delivery_id is not None:
                found = conn.execute(
                    sa.select(d.c.id)
                    .join(s, s.c.id == d.c.subscriber_id)
                    .where(d.c.id == delivery_id, s.c.email == email)
                ).scalar()
                if found is not None:
                    return int(found)
            if edition_id is not None and subscriber_id is not None:
                found = conn.execute(
                    sa.select(d.c.id).where(
                        d.c.edition_id == edition_id, d.c.subscriber_id == subscriber_id
                    )
                ).scalar()
                if found is not None:
                    return int(found)
            if provider_message_id:
                bare = provider_message_id.strip().strip("<>")
                found = conn.execute(
                    sa.select(d.c.id)
                    .join(s, s.c.id == d.c.subscriber_id)
                    .where(d.c.provider_message_id.in_([bare, f"<{bare}>"]), s.c.email == email)
                    .order_by(d.c.id.desc())
                    .limit(1)
                ).scalar()
                if found is not None:
                    return int(found)
        return None

    def delivery_place(self, delivery_id: int) -> tuple[int, str] | None:
        """(edition id, locale) of a delivery row, or None when it is gone."""
        d = deliveries
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(d.c.edition_id, d.c.locale).where(d.c.id == delivery_id)
            ).first()
        return (int(row.edition_id), str(row.locale)) if row is not None else None

    def note_delivery(
        self, delivery_id: int, kind: str, at: datetime, now: datetime, *, keep: Sequence[str]
    ) -> bool:
        """Record ``kind`` on a delivery row unless it already holds one of ``keep``.

        ``keep`` lists the kinds that outrank this one (a complaint is not overwritten by a
        late "delivered"). Returns whether the row changed.
        """
        d = deliveries
        with self.engine.begin() as conn:
            result = conn.execute(
                sa.update(d)
                .where(
                    d.c.id == delivery_id,
                    sa.or_(d.c.provider_event.is_(None), d.c.provider_event.not_in(list(keep))),
                )
                .values(provider_event=kind, provider_event_at=at, updated_at=now)
            )
        return bool(result.rowcount)

    def prune(self, before: datetime) -> int:
        """Delete rows received before ``before``; returns how many.

        Keep at least the soft-bounce window and the providers' retry period (days).
        """
        with self.engine.begin() as conn:
            # engagement rows wait for ``[tracking] retention_days`` (EngagementStore.fold)
            result = conn.execute(
                sa.delete(t).where(t.c.received_at < before, t.c.edition_id.is_(None))
            )
        return int(result.rowcount)


__all__ = ["REQUEST_KIND", "EventRow", "WebhookEventStore"]
