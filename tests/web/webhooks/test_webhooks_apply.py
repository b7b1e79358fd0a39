"""Applying events: soft-bounce threshold, unknown addresses, status precedence, delivery
rows, and a failure in the middle releasing the claim so the provider's retry applies."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from newsletter.config import Settings
from newsletter.errors import StoreError
from newsletter.models import SubscriberStatus
from newsletter.send.providers.events.base import ReplayError
from newsletter.send.providers.events.model import Event, EventKind
from newsletter.store import Store
from newsletter.web.webhooks import EventApplier

from .conftest import (
    NOW,
    add_delivery,
    add_subscriber,
    delivery_event,
    mailgun_call,
    mailgun_failed,
)

_counter = iter(range(1, 10_000))


def event(email: str, kind: EventKind, *, days_ago: float = 0, **extra: Any) -> Event:
    return Event(
        provider="test",
        kind=kind,
        email=email,
        event_id=f"ev-{next(_counter)}",
        timestamp=NOW - timedelta(days=days_ago),
        **extra,
    )


@pytest.fixture
def applier(make_config: Callable[..., Settings], store: Store) -> EventApplier:
    settings = make_config(webhooks={"soft_bounce_threshold": 3, "soft_bounce_window_days": 14})
    return EventApplier(store, settings.webhooks, now=lambda: NOW)


def test_soft_bounces_reach_the_threshold_within_the_window(
    applier: EventApplier, store: Store
) -> None:
    sub = add_subscriber(store, "ana@example.org")
    applier.apply("test", [event("ana@example.org", EventKind.SOFT_BOUNCE, days_ago=20)])
    applier.apply("test", [event("ana@example.org", EventKind.SOFT_BOUNCE, days_ago=3)])
    applier.apply("test", [event("ana@example.org", EventKind.SOFT_BOUNCE, days_ago=2)])
    # the one 20 days ago is outside the 14-day window: two so far
    assert store.subscribers.get(sub.id).status is SubscriberStatus.ACTIVE
    applier.apply("test", [event("ana@example.org", EventKind.SOFT_BOUNCE, days_ago=1)])
    assert store.subscribers.get(sub.id).status is SubscriberStatus.BOUNCED
    assert store.suppressions.get("ana@example.org").source == "webhook:test 3 soft bounces"


def test_a_delivery_resets_the_soft_bounce_count(applier: EventApplier, store: Store) -> None:
    sub = add_subscriber(store, "ana@example.org")
    applier.apply(
        "test",
        [
            event("ana@example.org", EventKind.SOFT_BOUNCE, days_ago=4),
            event("ana@example.org", EventKind.SOFT_BOUNCE, days_ago=3),
            event("ana@example.org", EventKind.DELIVERED, days_ago=2),
            event("ana@example.org", EventKind.SOFT_BOUNCE, days_ago=1),
        ],
    )
    assert store.subscribers.get(sub.id).status is SubscriberStatus.ACTIVE


def test_unknown_and_invalid_addresses_change_nothing(applier: EventApplier, store: Store) -> None:
    sub = add_subscriber(store, "ana@example.org")
    outcome = applier.apply(
        "test",
        [
            event("stranger@example.com", EventKind.HARD_BOUNCE),
            event("not an address", EventKind.COMPLAINT),
            event("ana@example.org", EventKind.OTHER),
        ],
    )
    assert (outcome.applied, outcome.unknown, outcome.ignored) == (0, 2, 1)
    assert store.subscribers.get(sub.id).status is SubscriberStatus.ACTIVE
    assert not store.suppressions.contains("stranger@example.com")
    assert store.suppressions.count() == {}


def test_an_unsubscribed_person_who_bounces_stays_unsubscribed_but_is_suppressed(
    applier: EventApplier, store: Store
) -> None:
    sub = add_subscriber(store, "ana@example.org")
    store.subscribers.set_status(
        "ana@example.org", SubscriberStatus.UNSUBSCRIBED, source="web", now=NOW
    )
    applier.apply("test", [event("ana@example.org", EventKind.HARD_BOUNCE, detail="bounce")])
    assert store.subscribers.get(sub.id).status is SubscriberStatus.UNSUBSCRIBED
    assert store.suppressions.get("ana@example.org").reason == "bounced"


def test_the_first_stopping_event_of_a_batch_sets_the_status(
    applier: EventApplier, store: Store
) -> None:
    sub = add_subscriber(store, "ana@example.org")
    applier.apply(
        "test",
        [
            event("ana@example.org", EventKind.UNSUBSCRIBE),
            event("ana@example.org", EventKind.HARD_BOUNCE, days_ago=1),
        ],
    )
    # applied in time order: the bounce came first, the later unsubscribe changes nothing
    assert store.subscribers.get(sub.id).status is SubscriberStatus.BOUNCED


def test_a_late_delivered_event_does_not_overwrite_a_complaint(
    applier: EventApplier, store: Store
) -> None:
    sub = add_subscriber(store, "ana@example.org")
    delivery = add_delivery(store, sub)
    ids = {"delivery_id": delivery}
    applier.apply("test", [event("ana@example.org", EventKind.COMPLAINT, **ids)])
    applier.apply("test", [event("ana@example.org", EventKind.DELIVERED, days_ago=1, **ids)])
    assert delivery_event(store, delivery) == "complaint"
    # a delivery id that is not this recipient's row is not trusted
    other = add_subscriber(store, "ivo@example.org", "Ivo Dimov")
    other_delivery = add_delivery(store, other)
    applier.apply(
        "test", [event("ana@example.org", EventKind.SOFT_BOUNCE, delivery_id=other_delivery)]
    )
    assert delivery_event(store, other_delivery) is None


def test_replays_without_a_nonce_are_refused(applier: EventApplier, store: Store) -> None:
    add_subscriber(store, "ana@example.org")
    bounce = event("ana@example.org", EventKind.SOFT_BOUNCE)
    assert applier.apply("test", [bounce]).applied == 1
    with pytest.raises(ReplayError):
        applier.apply("test", [bounce])
    # the same id from another provider is another event
    assert applier.apply("other", [bounce]).applied == 1


def test_a_failure_while_applying_releases_the_claim(
    make_store_client: Callable[..., TestClient],
    store: Store,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = make_store_client({"mailgun": {}}, {"MAILGUN_WEBHOOK_SIGNING_KEY": "key-1"})
    sub = add_subscriber(store, "ana@example.org")
    real_add = store.suppressions.add

    def broken(*args: Any, **kwargs: Any) -> bool:
        raise StoreError("suppressions: database is locked")

    monkeypatch.setattr(store.suppressions, "add", broken)
    body = mailgun_call("key-1", mailgun_failed("ana@example.org"))
    response = client.post("/webhooks/mailgun", json=body)
    assert response.status_code == 503
    assert not store.webhooks.seen("mailgun", body["event-data"]["id"])

    monkeypatch.setattr(store.suppressions, "add", real_add)
    assert client.post("/webhooks/mailgun", json=body).status_code == 200  # the retry
    assert store.suppressions.contains("ana@example.org")
    assert store.subscribers.get(sub.id).status is SubscriberStatus.BOUNCED


def test_prune_forgets_old_rows(applier: EventApplier, store: Store) -> None:
    add_subscriber(store, "ana@example.org")
    applier.apply("test", [event("ana@example.org", EventKind.DELIVERED)], request_key="n-1")
    assert store.webhooks.prune(NOW - timedelta(days=1)) == 0
    assert store.webhooks.prune(NOW + timedelta(seconds=1)) == 2
    assert not store.webhooks.seen("test", "request:n-1")
