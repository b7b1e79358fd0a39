"""Data rights (GDPR Art. 15, 17, 20): export everything stored about a subscriber, erase it.

Erasure deletes the subscriber row and every row naming them (deliveries, events, consent
records) and keeps only a hashed suppression entry (see ``store/suppressions.py``), so a
later import cannot re-add the address by accident. Copies outside the database (the
outbox's .eml files, provider logs, backups) are not touched: the operator handles them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from newsletter.audience.subscribers import normalize_email
from newsletter.errors import SubscriberError
from newsletter.store import Store

EXPORT_FORMAT = "newsletter-subscriber-export/1"


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "value") and isinstance(value.value, str):  # enums
        return value.value
    return value


def export_data(store: Store, subscriber_id: int, now: datetime) -> dict[str, Any]:
    """Everything the store holds about one subscriber, as JSON-ready data."""
    sub = store.subscribers.get(subscriber_id)
    return {
        "format": EXPORT_FORMAT,
        "exported_at": now.isoformat(),
        "subscriber": _jsonable(asdict(sub)),
        "consents": [_jsonable(asdict(c)) for c in store.consents.for_subscriber(sub.id)],
        "events": [_jsonable(asdict(e)) for e in store.events.for_subscriber(sub.id)],
        "deliveries": [_jsonable(d) for d in store.events.deliveries(sub.id)],
        "provider_events": [_jsonable(e) for e in store.webhooks.for_subscriber(sub.id)],
    }


@dataclass(frozen=True)
class ErasureReport:
    """What an erasure did."""

    email: str
    #: whether a subscriber with that address existed
    found: bool
    deliveries_deleted: int
    #: whether the address was added to the suppression list now (False: it already was)
    newly_suppressed: bool


def erase_subscriber(store: Store, subscriber_id: int, *, source: str, now: datetime) -> int:
    """Erase one subscriber by id (the preference centre); returns deliveries deleted."""
    return store.subscribers.erase(subscriber_id, reason="erased", source=source, now=now)


def erase(store: Store, email: str, *, source: str, now: datetime) -> ErasureReport:
    """Erase the subscriber with this address; an unknown address is still suppressed,
    so that a person who asked to be forgotten is never imported later."""
    address = normalize_email(email)
    sub = store.subscribers.find(address)
    if sub is None:
        added = store.suppressions.add(address, "erased", source, now)
        return ErasureReport(address, False, 0, added)
    already = store.suppressions.contains(address)
    try:
        gone = erase_subscriber(store, sub.id, source=source, now=now)
    except SubscriberError:
        # erased by someone else between find and erase: the outcome is the same
        return ErasureReport(address, False, 0, False)
    return ErasureReport(address, True, gone, not already)
