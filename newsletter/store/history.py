"""What a subscriber did and agreed to: consent records and subscriber events.

A consent record is written for every sign-up request and confirmed by the double opt-in
link (GDPR Art. 7: the controller must be able to show consent: when, where, which text).
Events log changes made by the person or on their behalf (unsubscribe, preferences,
confirmation) with their time and source. Both are deleted with the subscriber on erasure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from newsletter.models import SubscriberStatus
from newsletter.store.tables import (
    consents,
    deliveries,
    editions,
    subscriber_events,
    subscribers,
)

#: rows deleted per statement by a purge (keeps IN lists short)
_CHUNK = 500


@dataclass(frozen=True)
class Consent:
    """One sign-up request and, once the link was followed, its confirmation."""

    id: int
    subscriber_id: int
    requested_at: datetime
    confirmed_at: datetime | None
    source: str
    form_version: str
    consent_text: str
    name: str
    locale: str
    lists: tuple[str, ...]
    ip: str | None


@dataclass(frozen=True)
class SubscriberEvent:
    """One recorded change of a subscriber."""

    id: int
    subscriber_id: int
    kind: str
    source: str
    detail: dict[str, Any]
    created_at: datetime


def _consent(row: Any) -> Consent:
    return Consent(
        id=row.id,
        subscriber_id=row.subscriber_id,
        requested_at=row.requested_at,
        confirmed_at=row.confirmed_at,
        source=row.source,
        form_version=row.form_version,
        consent_text=row.consent_text,
        name=row.name,
        locale=row.locale,
        lists=tuple(row.lists),
        ip=row.ip,
    )


class ConsentStore:
    """Queries over the ``consents`` table."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def request(
        self,
        subscriber_id: int,
        *,
        now: datetime,
        source: str,
        form_version: str,
        consent_text: str,
        name: str,
        locale: str,
        lists: tuple[str, ...],
        ip: str | None,
    ) -> Consent:
        """Record a sign-up request (not confirmed yet) with what the person chose."""
        with self.engine.begin() as conn:
            pk = conn.execute(
                sa.insert(consents).values(
                    subscriber_id=subscriber_id,
                    requested_at=now,
                    confirmed_at=None,
                    source=source[:300],
                    form_version=form_version[:100],
                    consent_text=consent_text,
                    name=name[:300],
                    locale=locale,
                    lists=sorted(set(lists)),
                    ip=ip,
                )
            ).inserted_primary_key
            assert pk is not None
            row = conn.execute(sa.select(consents).where(consents.c.id == pk[0])).one()
        return _consent(row)

    def latest_pending(self, subscriber_id: int) -> Consent | None:
        """The newest request of this subscriber that was not confirmed yet."""
        query = (
            sa.select(consents)
            .where(consents.c.subscriber_id == subscriber_id, consents.c.confirmed_at.is_(None))
            .order_by(consents.c.id.desc())
            .limit(1)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else _consent(row)

    def confirm(self, consent_id: int, now: datetime) -> bool:
        """Mark a request confirmed; False if it already was (a second click)."""
        with self.engine.begin() as conn:
            result = conn.execute(
                sa.update(consents)
                .where(consents.c.id == consent_id, consents.c.confirmed_at.is_(None))
                .values(confirmed_at=now)
            )
        return bool(result.rowcount)

    def purge_unconfirmed(self, before: datetime) -> tuple[int, int]:
        """Delete sign-up requests never confirmed and made before ``before``, and the
        pending subscribers nothing but such requests brought in.

        A pending subscriber goes only if they came from the sign-up form (they have a
        consent record), none of their requests was confirmed and the newest is older than
        ``before``: someone imported as pending is left alone. No suppression is added:
        an unconfirmed request is not a request to be forgotten. Returns (subscribers
        deleted, requests deleted).
        """
        c, s = consents, subscribers
        stale = (
            sa.select(c.c.subscriber_id)
            .group_by(c.c.subscriber_id)
            .having(sa.func.max(c.c.requested_at) < before, sa.func.count(c.c.confirmed_at) == 0)
        )
        pending = s.c.status == SubscriberStatus.PENDING.value
        people = requests = 0
        with self.engine.begin() as conn:
            ids = list(conn.execute(sa.select(s.c.id).where(pending, s.c.id.in_(stale))).scalars())
            for start in range(0, len(ids), _CHUNK):
                # still pending at delete time: a confirmation in between keeps the person
                chunk = sa.select(s.c.id).where(pending, s.c.id.in_(ids[start : start + _CHUNK]))
                for table in (deliveries, subscriber_events):
                    conn.execute(sa.delete(table).where(table.c.subscriber_id.in_(chunk)))
                requests += conn.execute(sa.delete(c).where(c.c.subscriber_id.in_(chunk))).rowcount
                people += conn.execute(sa.delete(s).where(s.c.id.in_(chunk))).rowcount
            # requests of people who stay (already subscribed, asked again, never confirmed)
            requests += conn.execute(
                sa.delete(c).where(c.c.confirmed_at.is_(None), c.c.requested_at < before)
            ).rowcount
        return int(people), int(requests)

    def for_subscriber(self, subscriber_id: int) -> list[Consent]:
        """Every consent record of a subscriber, oldest first."""
        query = (
            sa.select(consents)
            .where(consents.c.subscriber_id == subscriber_id)
            .order_by(consents.c.id)
        )
        with self.engine.connect() as conn:
            return [_consent(row) for row in conn.execute(query)]


class EventStore:
    """Queries over the ``subscriber_events`` table (and a subscriber's delivery history)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def record(
        self,
        subscriber_id: int,
        kind: str,
        *,
        source: str,
        now: datetime,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Log that ``kind`` happened to a subscriber through ``source``."""
        with self.engine.begin() as conn:
            conn.execute(
                sa.insert(subscriber_events).values(
                    subscriber_id=subscriber_id,
                    kind=kind,
                    source=source[:300],
                    detail=detail or {},
                    created_at=now,
                )
            )

    def for_subscriber(self, subscriber_id: int) -> list[SubscriberEvent]:
        """Every event of a subscriber, oldest first."""
        t = subscriber_events
        query = sa.select(t).where(t.c.subscriber_id == subscriber_id).order_by(t.c.id)
        with self.engine.connect() as conn:
            return [
                SubscriberEvent(
                    r.id, r.subscriber_id, r.kind, r.source, dict(r.detail), r.created_at
                )
                for r in conn.execute(query)
            ]

    def deliveries(self, subscriber_id: int) -> list[dict[str, Any]]:
        """What was sent to a subscriber, edition by edition (for a data export)."""
        d = deliveries
        query = (
            sa.select(
                d.c.edition_id,
                editions.c.segment,
                editions.c.period,
                d.c.locale,
                d.c.status,
                d.c.sent_at,
                d.c.provider_message_id,
                d.c.provider_event,
                d.c.provider_event_at,
            )
            .join(editions, editions.c.id == d.c.edition_id)
            .where(d.c.subscriber_id == subscriber_id)
            .order_by(d.c.edition_id)
        )
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]
