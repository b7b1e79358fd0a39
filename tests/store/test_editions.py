"""Editions and delivery rows in the store (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from newsletter.errors import DuplicateEditionError
from newsletter.models import (
    EDITION_TRANSITIONS,
    DeliveryStatus,
    EditionStatus,
    NewSubscriber,
    RenderedVariant,
    ResultStatus,
    SendResult,
)
from newsletter.store import Store, db

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)


def subscribers(store: Store, n: int) -> list[int]:
    return [
        store.subscribers.add(NewSubscriber(email=f"p{i}@example.org", locale="bg"), NOW).id
        for i in range(n)
    ]


def test_migrations_are_at_head_and_idempotent(store: Store) -> None:
    assert db.current_revision(store.engine) == db.head_revision()
    before, after = db.upgrade(store.engine)
    assert before == after == db.head_revision()


def test_same_segment_and_period_is_refused_by_the_unique_key(store: Store) -> None:
    edition = store.editions.create("members", "2026-W48", [], NOW)
    assert edition.status is EditionStatus.PLANNED
    with pytest.raises(DuplicateEditionError, match=r"members.*2026-W48"):
        store.editions.create("members", "2026-W48", [], NOW)
    store.editions.create("partners", "2026-W48", [], NOW)


def test_variants_round_trip_and_replace(store: Store) -> None:
    e = store.editions.create("members", "2026-W48", [], NOW)
    v = RenderedVariant("bg", "Тема", "Кратко", "Клъстер", "<p>х</p>", "х", 3, "5eed" * 6)
    store.editions.save_variant(e.id, v)
    store.editions.save_variant(e.id, v)
    assert store.editions.variants(e.id) == {"bg": v}


def test_plan_is_idempotent_and_claims_do_not_overlap(store: Store) -> None:
    ids = subscribers(store, 7)
    e = store.editions.create("members", "2026-W48", [], NOW)
    assert store.deliveries.plan(e.id, ((i, "bg") for i in ids), NOW) == 7
    assert store.deliveries.plan(e.id, ((i, "bg") for i in ids), NOW) == 0
    first = store.deliveries.claim(e.id, "w1", 4, LEASE, NOW)
    second = store.deliveries.claim(e.id, "w2", 4, LEASE, NOW)
    assert len(first) == 4 and len(second) == 3
    assert not {d.id for d in first} & {d.id for d in second}
    assert store.deliveries.claim(e.id, "w3", 4, LEASE, NOW) == []


def test_results_are_recorded_with_retry_and_failure(store: Store) -> None:
    ids = subscribers(store, 3)
    e = store.editions.create("members", "2026-W48", [], NOW)
    store.deliveries.plan(e.id, ((i, "bg") for i in ids), NOW)
    a, b, c = store.deliveries.claim(e.id, "w", 10, LEASE, NOW)
    store.deliveries.record(
        [
            SendResult(a.id, ResultStatus.ACCEPTED, provider_message_id="m-1"),
            SendResult(b.id, ResultStatus.RETRYABLE, error="429", retry_after=30),
            SendResult(c.id, ResultStatus.PERMANENT, error="invalid recipient"),
        ],
        NOW,
        max_attempts=3,
        backoff=lambda attempts, after: after or 60,
    )
    assert store.deliveries.counts(e.id) == {
        DeliveryStatus.SENT: 1,
        DeliveryStatus.RETRY: 1,
        DeliveryStatus.FAILED: 1,
    }
    assert store.deliveries.next_retry_at(e.id) == NOW + timedelta(seconds=30)
    # not due yet, then due
    assert store.deliveries.claim(e.id, "w", 10, LEASE, NOW) == []
    again = store.deliveries.claim(e.id, "w", 10, LEASE, NOW + timedelta(seconds=31))
    assert [d.id for d in again] == [b.id] and again[0].attempts == 1
    assert store.deliveries.pending(e.id) == 1


def test_expired_lease_becomes_unknown_or_queued(store: Store) -> None:
    ids = subscribers(store, 2)
    e = store.editions.create("members", "2026-W48", [], NOW)
    store.deliveries.plan(e.id, ((i, "bg") for i in ids), NOW)
    store.deliveries.claim(e.id, "dead-worker", 1, LEASE, NOW)
    assert store.deliveries.expire_leases(e.id, NOW + timedelta(minutes=1), resend=False) == 0
    assert store.deliveries.expire_leases(e.id, NOW + timedelta(minutes=6), resend=False) == 1
    assert store.deliveries.counts(e.id)[DeliveryStatus.UNKNOWN] == 1
    assert store.deliveries.requeue_unknown(e.id, NOW) == 1
    store.deliveries.claim(e.id, "dead-worker", 1, LEASE, NOW)
    assert store.deliveries.expire_leases(e.id, NOW + timedelta(minutes=6), resend=True) == 1
    assert store.deliveries.counts(e.id) == {DeliveryStatus.QUEUED: 2}


def test_sent_group_keys_ignore_cancelled_editions(store: Store) -> None:
    from newsletter.store.tables import items

    with store.engine.begin() as conn:
        for n in (1, 2):
            conn.execute(
                items.insert().values(
                    id=n,
                    source="s",
                    guid=f"g{n}",
                    title="t",
                    summary_html="",
                    body_html="",
                    published_at=NOW,
                    lang="bg",
                    tags=[],
                    content_hash=f"h{n}",
                    first_seen_at=NOW,
                    updated_at=NOW,
                )
            )
    store.editions.create("members", "2026-W47", [(1, "story-1")], NOW)
    cancelled = store.editions.create("members", "2026-W48", [(2, "story-2")], NOW)
    store.editions.set_status(cancelled.id, EditionStatus.CANCELLED, NOW)
    assert store.editions.sent_group_keys("members") == {"story-1"}
    assert store.editions.sent_group_keys("partners") == set()
    assert store.editions.last_created("members") == NOW


def test_the_store_enforces_the_one_table_of_edition_transitions(store: Store) -> None:
    e = store.editions.create("members", "2026-W50", [], NOW).id
    move = store.editions.transition
    assert not move(e, EditionStatus.PAUSED, now=NOW)  # planned is never paused
    assert not move(e, EditionStatus.FINISHED, now=NOW)  # nor finished before it sends
    assert move(e, EditionStatus.SENDING, now=NOW)
    assert move(e, EditionStatus.PAUSED, now=NOW)
    assert not move(e, EditionStatus.FINISHED, now=NOW)  # a paused edition does not finish
    assert move(e, EditionStatus.SENDING, now=NOW)
    assert move(e, EditionStatus.FINISHED, now=NOW)
    assert not move(e, EditionStatus.CANCELLED, now=NOW)  # finished stays finished
    assert not move(e, EditionStatus.PLANNED, now=NOW)  # nothing goes back to planning
    assert store.editions.status(e) is EditionStatus.FINISHED
    # a narrower set is allowed, one outside the table is a caller's bug
    assert not move(e, EditionStatus.SENDING, now=NOW, only_from=[EditionStatus.PLANNED])
    with pytest.raises(ValueError, match="never moves to paused from finished"):
        move(e, EditionStatus.PAUSED, now=NOW, only_from=[EditionStatus.FINISHED])
    assert set(EDITION_TRANSITIONS) == set(EditionStatus)
