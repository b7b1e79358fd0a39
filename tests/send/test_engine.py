"""The sender in one process against the fake provider: batches in flight, batch
substitution, throttling, what a run reports, idempotent repeats, pause. Real stores
(SQLite, and PostgreSQL when set), the real Postmark, Resend and SendGrid adapters, and the
fake provider server from tests/delivery. Claims, cancel and reports: test_delivery_claims.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from newsletter.config import Settings
from newsletter.models import DeliveryStatus, EditionStatus, ResultStatus, SendResult
from newsletter.send.control import pause_edition
from newsletter.send.engine import Sender, SendOptions
from newsletter.send.providers.base import Provider
from newsletter.send.providers.postmark import PostmarkProvider
from newsletter.send.providers.resend import ResendProvider
from newsletter.send.providers.sendgrid import SendgridProvider
from newsletter.send.ratelimit import RateLimiter
from newsletter.send.tokens import TokenSigner
from newsletter.store import Store
from send.delivery.fakeprovider import FakeProvider, serve
from send.delivery.harness import rows, seed_edition
from send.providers.composed import composed

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)


def _settings(make_config: Callable[..., Settings], **provider: Any) -> Settings:
    return make_config(provider={"name": "outbox", **provider})


def _sender(
    settings: Settings,
    store: Store,
    provider: Provider,
    *,
    limiter: RateLimiter | None = None,
    **options: Any,
) -> Sender:
    opts = SendOptions(retry_base=0.05, **options)
    return Sender.configured(settings, store, provider, TokenSigner(["k1"]), opts, limiter=limiter)


def _postmark(fake: FakeProvider, **kw: Any) -> PostmarkProvider:
    return PostmarkProvider("token", base_url=fake.base_url, timeout=2.0, **kw)


def _requests(fake: FakeProvider) -> dict[int, list[str]]:
    """Recipients per delivered request."""
    out: dict[int, list[str]] = {}
    for d in fake.delivered:
        out.setdefault(d.request, []).append(d.to)
    return out


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


def test_batch_substitution_sends_one_body_per_request_through_the_engine(
    store: Store, db_url: str, make_config: Callable[..., Settings]
) -> None:
    settings = _settings(make_config, batch_size=10)
    edition = seed_edition(db_url, 30)
    with serve() as fake:

        async def go() -> Any:
            provider = SendgridProvider("key", base_url=fake.base_url, timeout=2.0)
            async with provider:
                return await _sender(settings, store, provider).send(store.editions.get(edition))

        report = asyncio.run(go())
        assert report.finished and report.sent == 30
        assert sorted(fake.counts().values()) == [1] * 30
        # a batch holds two locales, so two bodies: one request per (batch, locale)
        assert len(fake.log) == 6
        ids = fake.ids()
        assert all(m in ids[a] for a, _, m, _ in rows(db_url, edition))


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


def test_a_throttle_without_retry_after_never_uses_up_attempts(
    store: Store, db_url: str, make_config: Callable[..., Settings]
) -> None:
    # Postmark's (and SES's) 429 names no time; with two attempts allowed, a batch
    # throttled twice would end failed if a throttle counted as a failure
    settings = _settings(make_config, batch_size=5)
    edition = seed_edition(db_url, 5)  # one batch, so both 429s fall on the same rows
    with serve(retry_after=None, throttle_requests={1, 2}) as fake:

        async def go() -> Any:
            async with _postmark(fake) as provider:
                sender = _sender(settings, store, provider, max_attempts=2)
                return await sender.send(store.editions.get(edition))

        report = asyncio.run(go())
        assert report.finished and report.sent == 5 and report.failed == 0
        assert report.throttled == 2
        assert sorted(fake.counts().values()) == [1] * 5


def test_the_report_counts_what_the_store_recorded(
    store: Store, db_url: str, make_config: Callable[..., Settings]
) -> None:
    # a retryable answer for messages out of attempts is a failure: the run says so
    settings = _settings(make_config, batch_size=4)
    edition = seed_edition(db_url, 8)
    with serve(fault_rate=1.0, faults=("500",)) as fake:

        async def go() -> Any:
            async with _postmark(fake) as provider:
                sender = _sender(settings, store, provider, max_attempts=1)
                return await sender.send(store.editions.get(edition))

        report = asyncio.run(go())
    assert (report.sent, report.retry, report.failed, report.batches) == (0, 0, 8, 2)
    assert report.counts == {DeliveryStatus.FAILED: 8} and report.finished


def test_the_same_batch_in_flight_twice_is_delivered_once(
    make_config: Callable[..., Settings],
) -> None:
    # a batch whose lease ran out while it was in flight is claimed and sent again at once:
    # under the same key, the provider refuses the second while the first runs (409
    # concurrent_idempotent_requests), which is retryable and delivers nothing
    messages = composed(make_config, 4)
    with serve(latency=0.3) as fake:

        async def go() -> list[list[SendResult]]:
            async with ResendProvider("key", base_url=fake.base_url, timeout=2.0) as provider:
                first = asyncio.create_task(provider.send_batch(messages))
                await asyncio.sleep(0.1)
                return [await provider.send_batch(messages), await first]

        again, first = asyncio.run(go())
        assert {r.status for r in first} == {ResultStatus.ACCEPTED}
        assert {r.status for r in again} == {ResultStatus.RETRYABLE}
        assert "concurrent_idempotent_requests" in (again[0].error or "")
        assert sorted(fake.counts().values()) == [1] * 4 and fake.concurrent == 1


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
