"""Seed helpers for the engagement tests: editions sent to made-up readers, with events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from newsletter.models import EditionStatus, NewSubscriber
from newsletter.store import Store
from newsletter.store.tables import deliveries, items, webhook_events

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def seed_edition(
    store: Store,
    period: str,
    readers: dict[str, int],
    *,
    segment: str = "members",
    stories: tuple[tuple[str, str], ...] = (),
) -> tuple[int, list[int]]:
    """An edition of ``segment`` sent to ``readers[locale]`` new subscribers per locale,
    with ``stories`` (title, link) as its items; returns its id and delivery ids."""
    ids = []
    with store.engine.begin() as conn:
        for n, (title, link) in enumerate(stories):
            values = {
                "source": "news",
                "guid": f"{segment}-{period}-{n}",
                "link": link,
                "title": title,
                "summary_html": "<p>Текст.</p>",
                "body_html": "<p>Текст.</p>",
                "published_at": NOW,
                "lang": "bg",
                "tags": [],
                "content_hash": f"{segment}{period}{n}",
                "first_seen_at": NOW,
                "updated_at": NOW,
            }
            ids.append(int(conn.execute(sa.insert(items).values(**values)).inserted_primary_key[0]))
    edition = store.editions.create(segment, period, [(i, f"k{i}") for i in ids], NOW)
    rows = []
    for locale, count in readers.items():
        for k in range(count):
            sub = store.subscribers.add(
                NewSubscriber(
                    email=f"r{period}-{locale}-{k}@example.org".lower(),
                    name="Reader",
                    locale=locale,
                    lists=("members",),
                ),
                NOW,
            )
            rows.append((sub.id, locale))
    store.deliveries.plan(edition.id, rows, NOW)
    with store.engine.begin() as conn:
        conn.execute(
            sa.update(deliveries)
            .where(deliveries.c.edition_id == edition.id)
            .values(status="sent", sent_at=NOW)
        )
        found = conn.execute(
            sa.select(deliveries.c.id)
            .where(deliveries.c.edition_id == edition.id)
            .order_by(deliveries.c.id)
        ).scalars()
        delivery_ids = [int(d) for d in found]
    store.editions.set_status(edition.id, EditionStatus.FINISHED, NOW)
    return edition.id, delivery_ids


def provider_events(
    store: Store, edition_id: int, kind: str, delivery_ids: list[int], *, days_ago: int = 0
) -> None:
    """Provider events of ``kind`` for these deliveries, as the applier stores them."""
    if not delivery_ids:
        return
    at = NOW - timedelta(days=days_ago)
    with store.engine.begin() as conn:
        place = dict(
            conn.execute(
                sa.select(deliveries.c.id, deliveries.c.locale).where(
                    deliveries.c.id.in_(delivery_ids)
                )
            ).all()
        )
        conn.execute(
            sa.insert(webhook_events),
            [
                {
                    "provider": "test",
                    "event_id": f"{kind}-{d}-{days_ago}",
                    "kind": kind,
                    "occurred_at": at,
                    "received_at": at,
                    "edition_id": edition_id,
                    "delivery_id": d,
                    "locale": place[d],
                }
                for d in delivery_ids
            ],
        )
