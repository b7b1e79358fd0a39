"""The store: items, subscribers, editions and deliveries in one SQL database.

SQLite (WAL) is the embedded default; PostgreSQL works the same. The schema is created and
upgraded by Alembic migrations, applied automatically when a store is opened.
"""

from __future__ import annotations

from types import TracebackType

import sqlalchemy as sa

from newsletter.store import db
from newsletter.store.archive import ArchiveStore
from newsletter.store.deliveries import DeliveryStore
from newsletter.store.desk import DeskStore
from newsletter.store.editions import EditionStore
from newsletter.store.editorial import EditorialStore
from newsletter.store.engagement import EngagementStore
from newsletter.store.history import ConsentStore, EventStore
from newsletter.store.items import ItemStore
from newsletter.store.locks import LockStore
from newsletter.store.plans import PlanStore
from newsletter.store.runs import RunStore
from newsletter.store.subscribers import SubscriberStore
from newsletter.store.suppressions import SuppressionStore
from newsletter.store.translations import TranslationCache
from newsletter.store.webhooks import WebhookEventStore


class Store:
    """One database, with a repository per kind of record."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.items = ItemStore(engine)
        self.subscribers = SubscriberStore(engine)
        self.editions = EditionStore(engine)
        self.deliveries = DeliveryStore(engine)
        self.translations = TranslationCache(engine)
        self.locks = LockStore(engine)
        self.runs = RunStore(engine)
        self.suppressions = SuppressionStore(engine)
        self.webhooks = WebhookEventStore(engine)
        self.engagement = EngagementStore(engine)
        self.consents = ConsentStore(engine)
        self.events = EventStore(engine)
        self.archive = ArchiveStore(engine)
        self.desk = DeskStore(engine)
        self.editorial = EditorialStore(engine)
        self.plans = PlanStore(engine)

    @classmethod
    def open(cls, url: str, *, migrate: bool = True) -> Store:
        """Connect to ``url`` and (by default) bring the schema up to date."""
        engine = db.create_engine(url)
        if migrate:
            db.upgrade(engine)
        return cls(engine)

    def close(self) -> None:
        """Release every pooled connection."""
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


__all__ = ["Store"]
