"""An ``UNKNOWN`` result (the provider may have taken the message, its answer was lost):
the row becomes ``unknown``, is never counted sent nor sent again by a worker, and goes
again only when the operator asks (``requeue_unknown``, i.e. ``--resend-unknown``).

Real stores (SQLite, and PostgreSQL when set); the real Postmark adapter against the
fake provider of tests/delivery, which takes one batch and answers after the timeout.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from newsletter.config import Settings
from newsletter.models import DeliveryStatus, EditionStatus, Progress, ResultStatus, SendResult
from newsletter.send.engine import Sender, SendOptions, SendReport
from newsletter.send.providers.postmark import PostmarkProvider
from newsletter.send.tokens import TokenSigner
from newsletter.store import Store
from send.delivery.fakeprovider import serve
from send.delivery.harness import seed_edition

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)
LOST = "postmark: no answer (ReadTimeout); it may have been accepted"


def test_unknown_result_is_kept_until_the_operator_resends_it(store: Store, db_url: str) -> None:
    edition = seed_edition(db_url, 4)
    d = store.deliveries
    batch = d.claim_batch(edition, "w#1", 4, LEASE, NOW)
    results = [SendResult(r.id, ResultStatus.UNKNOWN, error=LOST) for r in batch.rows[:3]]
    results.append(SendResult(batch.rows[3].id, ResultStatus.ACCEPTED, provider_message_id="m"))
    d.record(results, NOW, max_attempts=1, backoff=lambda a, r: 1, claimed_by="w#1")
    assert d.counts(edition) == {DeliveryStatus.UNKNOWN: 3, DeliveryStatus.SENT: 1}
    assert d.pending(edition) == 0  # the edition can finish: nothing is due
    assert dict(d.errors(edition)) == {LOST: 3}
    # not a retry, not an expired lease: no worker ever claims it again by itself
    much_later = NOW + timedelta(days=1)
    assert d.expire_leases(edition, much_later, resend=True) == 0
    assert len(d.claim_batch(edition, "w#2", 10, LEASE, much_later)) == 0

    assert d.requeue_unknown(edition, much_later) == 3
    again = d.claim_batch(edition, "w#3", 10, LEASE, much_later)
    assert len(again) == 3 and not again.again  # a new batch of its own
    assert [r.attempts for r in again.rows] == [1, 1, 1]
    sent = [SendResult(r.id, ResultStatus.ACCEPTED, provider_message_id="m2") for r in again.rows]
    d.record(sent, much_later, max_attempts=1, backoff=lambda a, r: 1, claimed_by="w#3")
    assert d.counts(edition) == {DeliveryStatus.SENT: 4}
    assert d.errors(edition) == []


def test_a_batch_taken_but_answered_late_ends_unknown_not_sent_twice(
    store: Store, db_url: str, make_config: Callable[..., Settings]
) -> None:
    settings = make_config(provider={"name": "outbox", "batch_size": 5})
    edition = seed_edition(db_url, 15)
    progress: list[Progress] = []
    with serve(stall_requests={2}, stall=0.6) as fake:

        async def go() -> SendReport:
            provider = PostmarkProvider("token", base_url=fake.base_url, timeout=0.3)
            async with provider:
                options = SendOptions(retry_base=0.05)
                sender = Sender.configured(settings, store, provider, TokenSigner(["k1"]), options)
                return await sender.send(store.editions.get(edition), on_progress=progress.append)

        report = asyncio.run(go())
    assert (report.sent, report.unknown, report.retry, report.failed) == (10, 5, 0, 0)
    assert report.finished and store.editions.status(edition) is EditionStatus.FINISHED
    assert progress[-1].done == progress[-1].total == 15  # unknown rows are done for this run
    assert report.counts == {DeliveryStatus.SENT: 10, DeliveryStatus.UNKNOWN: 5}
    # the provider has every message once: the late batch was not sent again
    assert sorted(fake.counts().values()) == [1] * 15
    assert len(fake.log) == 3
