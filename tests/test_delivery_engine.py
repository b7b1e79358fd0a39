"""The delivery engine in one process: claims, batches that go again whole, throttling,
concurrency, pause / cancel / report. Real stores (SQLite, and PostgreSQL when set), the
real Postmark and Resend adapters, and the fake provider server from tests/delivery.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from delivery.fakeprovider import FakeProvider, serve
from delivery.harness import seed_edition

from newsletter.config import Settings
from newsletter.control import cancel_edition, edition_report, pause_edition
from newsletter.delivery import Sender
from newsletter.errors import EditionError
from newsletter.models import DeliveryStatus, EditionStatus, ResultStatus, SendResult
from newsletter.providers.base import Provider
from newsletter.providers.postmark import PostmarkProvider
from newsletter.providers.resend import ResendProvider
from newsletter.ratelimit import RateLimiter
from newsletter.store import Store
from newsletter.tokens import TokenSigner

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)


def _settings(make_config: Callable[..., Settings], **provider: Any) -> Settings:
    return make_config(provider={"name": "outbox", **provider})


def _sender(settings: Settings, store: Store, provider: Provider, **kw: Any) -> Sender:
    return Sender(settings, store, provider, TokenSigner(["k1"]), retry_base=0.05, **kw)


def _postmark(fake: FakeProvider, **kw: Any) -> PostmarkProvider:
    return PostmarkProvider("token", base_url=fake.base_url, timeout=2.0, **kw)


def _requests(fake: FakeProvider) -> dict[int, list[str]]:
    """Recipients per delivered request."""
    out: dict[int, list[str]] = {}
    for d in fake.delivered:
        out.setdefault(d.request, []).append(d.to)
    return out


# --- the store: claims ------------------------------------------------------------------


def test_an_expired_batch_is_claimed_again_whole_and_first(store: Store, db_url: str) -> None:
    edition = seed_edition(db_url, 12)
    d = store.deliveries
    first = d.claim_batch(edition, "w1#1", 5, LEASE, NOW)
    assert len(first) == 5 and not first.again
    later = NOW + LEASE + timedelta(seconds=1)
    assert d.expire_leases(edition, later, resend=True) == 5
    # a bigger limit, fresh rows waiting: still exactly the old batch, as one
    again = d.claim_batch(edition, "w2#1", 10, LEASE, later)
    assert again.again and [r.id for r in again.rows] == [r.id for r in first.rows]
    fresh = d.claim_batch(edition, "w2#2", 10, LEASE, later)
    assert not fresh.again and len(fresh) == 7


def test_a_retried_batch_goes_whole_and_a_stale_worker_cannot_record(
    store: Store, db_url: str
) -> None:
    edition = seed_edition(db_url, 6)
    d = store.deliveries
    batch = d.claim_batch(edition, "w1#1", 3, LEASE, NOW)
    d.record(
        [SendResult(r.id, ResultStatus.RETRYABLE, error="HTTP 500") for r in batch.rows],
        NOW,
        max_attempts=5,
        backoff=lambda a, r: 10,
        claimed_by="w1#1",
    )
    assert d.claim_batch(edition, "w1#2", 3, LEASE, NOW).rows != batch.rows  # not due yet
    due = NOW + timedelta(seconds=11)
    again = d.claim_batch(edition, "w2#1", 3, LEASE, due)
    assert again.again and [r.id for r in again.rows] == [r.id for r in batch.rows]
    # the first worker, late, records under its old token: ignored
    stale = [SendResult(r.id, ResultStatus.PERMANENT, error="late") for r in batch.rows]
    d.record(stale, due, max_attempts=5, backoff=lambda a, r: 1, claimed_by="w1#1")
    assert d.counts(edition)[DeliveryStatus.CLAIMED] == 6


def test_throttled_results_never_fail_a_recipient(store: Store, db_url: str) -> None:
    edition = seed_edition(db_url, 1)
    d = store.deliveries
    when = NOW
    for _ in range(6):
        (row,) = d.claim_batch(edition, "w", 1, LEASE, when).rows
        throttled = SendResult(row.id, ResultStatus.RETRYABLE, error="429", retry_after=2)
        d.record([throttled], when, max_attempts=2, backoff=lambda a, r: r or 1)
        when += timedelta(seconds=2)
    assert d.counts(edition) == {DeliveryStatus.RETRY: 1}
    (row,) = d.claim_batch(edition, "w", 1, LEASE, when).rows
    d.record([SendResult(row.id, ResultStatus.RETRYABLE, error="500")], when,
             max_attempts=2, backoff=lambda a, r: 1)  # fmt: skip
    assert d.counts(edition) == {DeliveryStatus.FAILED: 1}


def test_cancel_skips_what_is_left_and_marks_dead_claims_unknown(store: Store, db_url: str) -> None:
    edition = seed_edition(db_url, 10)
    d = store.deliveries
    sent = d.claim_batch(edition, "w#1", 2, LEASE, NOW)
    d.record([SendResult(r.id, ResultStatus.ACCEPTED, "m") for r in sent.rows], NOW,
             max_attempts=3, backoff=lambda a, r: 1)  # fmt: skip
    d.claim_batch(edition, "dead#1", 3, LEASE, NOW)
    d.claim_batch(edition, "alive#1", 1, LEASE, NOW + LEASE)
    report = cancel_edition(store, edition, NOW + LEASE + timedelta(seconds=1))
    assert (report.skipped, report.unknown) == (4, 3)
    assert store.editions.status(edition) is EditionStatus.CANCELLED
    assert d.counts(edition) == {
        DeliveryStatus.SENT: 2,
        DeliveryStatus.UNKNOWN: 3,
        DeliveryStatus.CLAIMED: 1,  # its live worker records what the provider said
        DeliveryStatus.SKIPPED: 4,
    }
    assert ("cancelled", 4) in d.errors(edition)
    with pytest.raises(EditionError, match="only an edition that is sending"):
        pause_edition(store, edition, NOW)


def test_report_counts_reasons_and_eta(
    store: Store, db_url: str, make_config: Callable[..., Settings]
) -> None:
    settings = _settings(make_config, messages_per_second=5, batch_size=10)
    edition = seed_edition(db_url, 30)
    d = store.deliveries
    for n in range(2):
        at = NOW + timedelta(seconds=10 * n)
        batch = d.claim_batch(edition, f"w#{n}", 5, LEASE, at)
        d.record([SendResult(r.id, ResultStatus.ACCEPTED, "m") for r in batch.rows], at,
                 max_attempts=3, backoff=lambda a, r: 1)  # fmt: skip
    rep = edition_report(settings, store, edition, NOW + timedelta(seconds=20))
    assert rep.total == 30 and rep.remaining == 20
    assert rep.counts[DeliveryStatus.SENT] == 10
    assert set(rep.by_locale) == {"bg", "en"}
    assert rep.recent_rate == pytest.approx(0.5)  # 10 sent over the last 20 s
    assert rep.eta(rep.recent_rate) == timedelta(seconds=40)
    assert rep.configured_rate == 5 and rep.eta(5) == timedelta(seconds=4)
    pause_edition(store, edition, NOW)
    assert store.editions.status(edition) is EditionStatus.PAUSED


# --- the sender against the fake provider -------------------------------------------------


def test_batches_fly_concurrently_and_the_configured_batch_size_holds(
    store: Store, db_url: str, make_config: Callable[..., Settings]
) -> None:
    settings = _settings(make_config, batch_size=7, concurrency=3)
    edition = seed_edition(db_url, 60)
    with serve(latency=0.2) as fake:

        async def go() -> Any:
            async with _postmark(fake, concurrency=3) as provider:
                return await _sender(settings, store, provider).send(store.editions.get(edition))

        report = asyncio.run(go())
        assert report.finished and report.sent == 60
        assert fake.max_active == 3
        assert max(len(r) for r in _requests(fake).values()) == 7
        assert sorted(fake.counts().values()) == [1] * 60


def test_a_429_pauses_every_batch_and_fails_nobody(
    store: Store, db_url: str, make_config: Callable[..., Settings]
) -> None:
    settings = _settings(make_config, batch_size=5, concurrency=3)
    edition = seed_edition(db_url, 40)
    # the 4th request is throttled: the whole process waits its Retry-After
    with serve(latency=0.05, retry_after=1.0, throttle_requests={4, 5, 6, 7}) as fake:

        async def go() -> Any:
            async with _postmark(fake, concurrency=3) as provider:
                sender = _sender(settings, store, provider, max_attempts=2)
                return await sender.send(store.editions.get(edition))

        report = asyncio.run(go())
        assert report.finished and report.sent == 40 and report.failed == 0
        assert report.throttled >= 1
        answered = fake.throttled_at[0]
        later = [t for _, _, _, t in fake.log if t > answered + 0.1]
        # nothing started in the second after the 429 (requests already under way
        # arrive within milliseconds of it)
        assert later and min(later) >= answered + 0.9
        assert sorted(fake.counts().values()) == [1] * 40


def test_a_retry_is_the_same_request_under_the_same_idempotency_key(
    store: Store, db_url: str, make_config: Callable[..., Settings]
) -> None:
    settings = _settings(make_config, batch_size=10)
    edition = seed_edition(db_url, 30)
    with serve(throttle_requests={1}, retry_after=0.2) as fake:

        async def go() -> Any:
            provider = ResendProvider("key", base_url=fake.base_url, timeout=2.0)
            async with provider:
                limiter = RateLimiter(concurrency=1)
                sender = _sender(settings, store, provider, limiter=limiter)
                return await sender.send(store.editions.get(edition))

        report = asyncio.run(go())
        assert report.finished and report.sent == 30
        keys = dict(fake.request_keys)
        # the throttled first batch went again as itself, before any new batch
        assert keys[1] is not None and keys[2] == keys[1]
        assert len(set(keys.values())) == 3
        assert sorted(fake.counts().values()) == [1] * 30


def test_a_paused_edition_stops_between_batches(
    store: Store, db_url: str, make_config: Callable[..., Settings]
) -> None:
    settings = _settings(make_config, batch_size=5)
    edition = seed_edition(db_url, 50)
    with serve(latency=0.05) as fake:

        async def go() -> Any:
            async with _postmark(fake) as provider:
                sender = _sender(settings, store, provider)

                async def pause_soon() -> None:
                    while len(fake.delivered) < 10:
                        await asyncio.sleep(0.01)
                    pause_edition(store, edition, datetime.now(UTC))

                pausing = asyncio.create_task(pause_soon())
                report = await sender.send(store.editions.get(edition))
                await pausing
                return report

        report = asyncio.run(go())
        time.sleep(0.2)
        assert not report.finished and 10 <= report.sent < 50
        assert store.editions.status(edition) is EditionStatus.PAUSED
        counts = store.deliveries.counts(edition)
        assert counts[DeliveryStatus.SENT] == report.sent == len(fake.delivered)
        assert DeliveryStatus.CLAIMED not in counts
