"""Send an edition: claim due rows, personalize, hand batches to the provider, record results.

The delivery rows are the source of truth: a crash, a restart or a second worker only ever
continues from them. A row is marked sent after the provider accepted it, never before.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from newsletter.compose import Composer, Recipient
from newsletter.config import Settings
from newsletter.errors import EditionError
from newsletter.models import (
    DeliveryStatus,
    Edition,
    EditionStatus,
    RenderedVariant,
    ResultStatus,
    SubscriberStatus,
)
from newsletter.providers.base import Provider
from newsletter.store import Store
from newsletter.tokens import TokenSigner

log = logging.getLogger("newsletter.delivery")

Clock = Callable[[], datetime]
Progress = Callable[[int], None]


def utcnow() -> datetime:
    """The current time, timezone-aware."""
    return datetime.now(UTC)


def backoff(attempts: int, retry_after: float | None) -> float:
    """Seconds before the next try: the provider's Retry-After, else exponential with jitter."""
    if retry_after is not None:
        return max(retry_after, 1.0)
    base = min(30.0 * 2.0 ** (attempts - 1), 3600.0)
    jitter: float = random.uniform(0.8, 1.2)
    return base * jitter


def worker_id() -> str:
    """Who claims rows: host and process, so a lease names its holder."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class SendReport:
    """Counts of one sending run (of this run only, see the store for the edition's totals)."""

    sent: int = 0
    failed: int = 0
    skipped: int = 0
    retry: int = 0
    counts: dict[DeliveryStatus, int] = field(default_factory=dict)
    finished: bool = False
    next_retry_at: datetime | None = None


class Sender:
    """Sends the rows of an edition through one provider."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        provider: Provider,
        signer: TokenSigner,
        *,
        batch_size: int | None = None,
        lease: timedelta = timedelta(minutes=10),
        max_attempts: int = 5,
        clock: Clock = utcnow,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        worker: str | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.provider = provider
        self.signer = signer
        self.batch_size = min(batch_size or provider.max_batch, provider.max_batch)
        self.lease = lease
        self.max_attempts = max_attempts
        self.clock = clock
        self.sleep = sleep
        self.worker = worker or worker_id()

    async def send(
        self,
        edition: Edition,
        *,
        variants: dict[str, RenderedVariant] | None = None,
        wait_for_retries: float = 60.0,
        on_progress: Progress | None = None,
        resend_unknown: bool = False,
    ) -> SendReport:
        """Send every due row of ``edition``; wait for retries due within ``wait_for_retries`` s.

        Returns when nothing is left, or only retries due later than that (they are picked
        up by the next ``editions resume`` or scheduler run).
        """
        if edition.status in (EditionStatus.CANCELLED, EditionStatus.PAUSED):
            raise EditionError(f"edition {edition.id} is {edition.status}; resume it first")
        variants = variants or self.store.editions.variants(edition.id)
        deliveries = self.store.deliveries
        composer = Composer(
            self.settings,
            self.signer,
            edition_id=edition.id,
            segment=edition.segment,
            period=edition.period,
        )
        now = self.clock()
        if resend_unknown:
            deliveries.requeue_unknown(edition.id, now)
        self.store.editions.set_status(edition.id, EditionStatus.SENDING, now)
        report = SendReport()
        while True:
            now = self.clock()
            deliveries.expire_leases(edition.id, now, resend=self.provider.supports_idempotency)
            if self.store.editions.get(edition.id).status is not EditionStatus.SENDING:
                break  # paused or cancelled by an operator meanwhile
            batch = deliveries.claim(edition.id, self.worker, self.batch_size, self.lease, now)
            if not batch:
                due = deliveries.next_retry_at(edition.id)
                if due is not None and (due - now).total_seconds() <= wait_for_retries:
                    await self.sleep(max((due - now).total_seconds(), 0.0))
                    continue
                report.next_retry_at = due
                break
            subs = self.store.subscribers.get_many([d.subscriber_id for d in batch])
            messages = []
            for d in batch:
                sub = subs.get(d.subscriber_id)
                if sub is None or sub.status is not SubscriberStatus.ACTIVE:
                    reason = f"subscriber {sub.status if sub else 'deleted'} before sending"
                    deliveries.skip(d.id, reason, now)
                    report.skipped += 1
                    continue
                variant = variants.get(d.locale)
                if variant is None:
                    raise EditionError(f"edition {edition.id} has no rendered {d.locale} variant")
                messages.append(
                    composer.compose(variant, Recipient(d.id, sub.id, sub.email, sub.name))
                )
            if messages:
                results = await self.provider.send_batch(messages)
                deliveries.record(
                    results, self.clock(), max_attempts=self.max_attempts, backoff=backoff
                )
                for r in results:
                    if r.status is ResultStatus.ACCEPTED:
                        report.sent += 1
                    elif r.status is ResultStatus.RETRYABLE:
                        report.retry += 1
                    else:
                        report.failed += 1
            if on_progress is not None:
                on_progress(len(batch))
        report.counts = deliveries.counts(edition.id)
        if deliveries.pending(edition.id) == 0 and (
            self.store.editions.get(edition.id).status is EditionStatus.SENDING
        ):
            self.store.editions.set_status(edition.id, EditionStatus.FINISHED, self.clock())
            report.finished = True
        return report
