"""Send an edition: claim due rows, personalize, hand batches to the provider, record results.

The delivery rows are the source of truth: a crash, a restart or a second worker only ever
continues from them. A row is marked sent after the provider accepted it, never before.

One :class:`Sender` keeps up to ``concurrency`` batches in flight (asyncio; the database
calls stay on the event loop's thread, so SQLite sees one writer per process), paced by a
shared :class:`~newsletter.send.ratelimit.RateLimiter`. A batch is claimed only once the
limiter lets it start, so rows never wait out a throttle pause while holding a lease.

This module is the run loop; what a run did is counted in
:mod:`newsletter.send.report` (``SendReport`` is importable from here too).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import random
import secrets
import socket
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from newsletter.clock import Clock, utcnow
from newsletter.config import Settings
from newsletter.errors import EditionError, ProviderError
from newsletter.models import (
    DeliveryStatus,
    Edition,
    EditionStatus,
    OnProgress,
    OutgoingMessage,
    Progress,
    RenderedVariant,
)
from newsletter.send.backend import SendStore
from newsletter.send.compose import Composer, ComposerFactory, Recipient, composer_factory
from newsletter.send.holders import Holder, current_holder
from newsletter.send.leases import STALE, LeaseKeeper
from newsletter.send.personalize import require_markers
from newsletter.send.providers.base import Provider
from newsletter.send.ratelimit import RateLimiter, Slot
from newsletter.send.report import SendReport, close_run, throttle_pause
from newsletter.send.tokens import TokenSigner
from newsletter.store.deliveries import FINAL, Claim

__all__ = ["SendOptions", "SendReport", "Sender", "backoff", "edition_signer", "worker_id"]

log = logging.getLogger("newsletter.send.engine")

Sleep = Callable[[float], Awaitable[None]]


def backoff(attempts: int, retry_after: float | None, base: float = 30.0) -> float:
    """Seconds before the next try: the provider's Retry-After, else exponential with jitter.

    ``base`` is the first delay; it doubles per attempt up to an hour, ±20 % jitter so
    the retries of many batches do not arrive together.
    """
    if retry_after is not None:
        return max(retry_after, 0.0)
    delay = min(base * 2.0 ** (attempts - 1), 3600.0)
    jitter: float = random.uniform(0.8, 1.2)
    return delay * jitter


def worker_id() -> str:
    """Who claims rows: host, process and a random tag, so a lease names its holder.

    The tag keeps claim tokens unique when a restarted container reuses host name and pid.
    """
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def edition_signer(keys: TokenSigner, edition: Edition) -> TokenSigner:
    """The signer for an edition's links: ``keys`` with the timestamp pinned to the
    edition's creation.

    Pinned so that composing a message twice (a batch re-sent after a crash) gives the
    same bytes: providers that deduplicate by idempotency key may refuse a repeat whose
    body differs.
    """
    return keys.pinned(edition.created_at.timestamp())


@dataclass
class _Run:
    edition: Edition
    composer: Composer
    variants: dict[str, RenderedVariant]
    report: SendReport
    on_progress: OnProgress | None
    #: rows of the edition, and how many of them are final
    total: int = 0
    done: int = 0

    def progressed(self, final: int) -> None:
        """Tell ``on_progress`` that ``final`` more rows are final."""
        self.done += final
        if self.on_progress is not None:
            self.on_progress(Progress(self.edition.id, self.edition.segment, self.done, self.total))


@dataclass(frozen=True)
class SendOptions:
    """How a :class:`Sender` sends: one frozen value, with the defaults a worker uses."""

    #: rows per batch; None: the provider's largest. Always capped by the provider
    batch_size: int | None = None
    #: how long a claimed batch is held; longer than a request to the provider can take
    lease: timedelta = timedelta(minutes=10)
    #: a holder whose heartbeat is older than this is taken for dead
    stale: timedelta = STALE
    #: attempts before a message that keeps failing (not throttling) is marked failed
    max_attempts: int = 5
    #: the first retry delay in seconds; it doubles per attempt (Retry-After wins)
    retry_base: float = 30.0
    #: seconds between looks for work while waiting for retries or other holders
    poll: float = 1.0
    #: who claims rows (host, pid and a random tag by default, see :func:`worker_id`)
    worker: str | None = None


class Sender:
    """Sends the rows of an edition through one provider.

    It sees the store only through :class:`~newsletter.send.backend.SendStore`, and
    settings only through what it is given: ``signer`` holds the keys that sign the links
    (their timestamp is pinned per edition, :func:`edition_signer`), ``composer`` builds an
    edition's :class:`~newsletter.send.compose.Composer`, ``options`` says how to send,
    ``limiter`` paces it (unlimited, one batch at a time, when not given). Rows whose holder
    (``holder``: this process by default) is gone, or whose heartbeat is older than
    ``options.stale``, are taken back (:mod:`newsletter.send.leases`).
    :meth:`configured` builds one from the settings.
    """

    def __init__(
        self,
        store: SendStore,
        provider: Provider,
        signer: TokenSigner,
        composer: ComposerFactory,
        options: SendOptions = SendOptions(),
        *,
        limiter: RateLimiter | None = None,
        clock: Clock = utcnow,
        sleep: Sleep = asyncio.sleep,
        holder: Holder | None = None,
    ) -> None:
        self.store = store
        self.provider = provider
        self.signer = signer
        self.composer = composer
        self.options = options
        self.batch_size = min(options.batch_size or provider.max_batch, provider.max_batch)
        self.limiter = limiter or RateLimiter()
        self.clock = clock
        self.sleep = sleep
        self.worker = options.worker or worker_id()
        self._claims = itertools.count(1)
        self.holder = holder or current_holder()
        self.leases = LeaseKeeper(
            store, self.holder, lease=options.lease, stale=options.stale, clock=clock
        )

    @classmethod
    def configured(
        cls,
        settings: Settings,
        store: SendStore,
        provider: Provider,
        signer: TokenSigner,
        options: SendOptions = SendOptions(),
        *,
        limiter: RateLimiter | None = None,
        clock: Clock = utcnow,
        holder: Holder | None = None,
    ) -> Sender:
        """A sender as the ``[provider]`` table says: its batch size (unless ``options``
        names one) and rate limits, and messages composed from ``settings``."""
        if options.batch_size is None and settings.provider.batch_size:
            options = replace(options, batch_size=settings.provider.batch_size)
        return cls(
            store,
            provider,
            signer,
            composer_factory(settings),
            options,
            limiter=limiter or RateLimiter.from_config(settings.provider),
            clock=clock,
            holder=holder,
        )

    def _backoff(self, attempts: int, retry_after: float | None) -> float:
        return backoff(attempts, retry_after, self.options.retry_base)

    async def send(
        self,
        edition: Edition,
        *,
        variants: dict[str, RenderedVariant] | None = None,
        wait_for_retries: float = 60.0,
        on_progress: OnProgress | None = None,
        stop: asyncio.Event | None = None,
    ) -> SendReport:
        """Send every due row of ``edition``; wait for retries due within ``wait_for_retries`` s.

        Returns when nothing is left, when only retries due later than that remain (the
        next ``editions resume``, worker pass or scheduler run picks them up), when the
        edition is paused or cancelled, or when ``stop`` is set. Batches already handed to
        the provider are always recorded before it returns.
        """
        edition = self.store.editions.get(edition.id)
        if edition.status in (EditionStatus.CANCELLED, EditionStatus.PAUSED):
            raise EditionError(f"edition {edition.id} is {edition.status}; resume it first")
        deliveries = self.store.deliveries
        variants = variants or self.store.editions.variants(edition.id)
        for variant in variants.values():  # before anything is claimed or sent
            require_markers(variant, f"edition {edition.id}")
        composer = self.composer(edition, edition_signer(self.signer, edition))
        composer.bodies = self.provider.personal_bodies
        run = _Run(
            edition,
            composer,
            variants,
            SendReport(),
            on_progress,
        )
        now = self.clock()
        self.store.editions.transition(
            edition.id, EditionStatus.SENDING, now=now, only_from=[EditionStatus.PLANNED]
        )
        if on_progress is not None:
            counts = deliveries.counts(edition.id)
            run.total = sum(counts.values())
            run.progressed(sum(counts.get(s, 0) for s in (*FINAL, DeliveryStatus.UNKNOWN)))
        await self._loop(run, wait_for_retries, stop)
        return close_run(self.store, edition.id, run.report, self.clock())

    async def _loop(self, run: _Run, wait_for_retries: float, stop: asyncio.Event | None) -> None:
        deliveries = self.store.deliveries
        edition_id = run.edition.id
        tasks: set[asyncio.Task[None]] = set()
        failed: list[asyncio.Task[None]] = []

        def done(task: asyncio.Task[None]) -> None:
            tasks.discard(task)
            if not task.cancelled() and task.exception() is not None:
                failed.append(task)

        idle_since: datetime | None = None
        expired_at: datetime | None = None
        beating = asyncio.create_task(self.leases.beat())
        try:
            while not failed:
                if stop is not None and stop.is_set():
                    run.report.stopped = True
                    break
                now = self.clock()
                if expired_at is None or (now - expired_at).total_seconds() >= 1.0:
                    # a write: once a second is plenty (leases are minutes, or seconds in tests)
                    self.leases.sweep(edition_id, now, resend=self.provider.supports_idempotency)
                    expired_at = now
                if self.store.editions.status(edition_id) is not EditionStatus.SENDING:
                    break  # paused or cancelled by an operator meanwhile
                slot = await self._slot(stop)
                if slot is None:
                    run.report.stopped = True
                    break
                # the slot and a stop can arrive in the same loop turn: a stop wins
                if stop is not None and stop.is_set():
                    slot.release()
                    run.report.stopped = True
                    break
                # the wait for the slot may have been long: look at the status again
                if failed or self.store.editions.status(edition_id) is not EditionStatus.SENDING:
                    slot.release()
                    break
                token = f"{self.worker}#{next(self._claims)}"
                claim = deliveries.claim_batch(
                    edition_id,
                    token,
                    self.batch_size,
                    self.options.lease,
                    self.clock(),
                    holder=self.holder,
                )
                if claim.rows:
                    idle_since = None
                    self.leases.tokens.add(token)
                    slot.use(len(claim))
                    task = asyncio.create_task(self._batch(run, claim, slot))
                    tasks.add(task)
                    task.add_done_callback(done)
                    continue
                slot.use(0)
                slot.release()
                if tasks:
                    await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                    continue
                if idle_since is None:
                    idle_since = now
                    if deliveries.counts(edition_id).get(DeliveryStatus.CLAIMED):
                        wait = self.leases.held_wait(wait_for_retries, self.options.poll)
                        self.leases.say_waiting(edition_id, wait)
                if not self._worth_waiting(run, now, idle_since, wait_for_retries):
                    break
                await self._nap(self.options.poll, stop)
        finally:
            # every batch in flight is recorded before we return, whatever stopped us
            if tasks:
                await asyncio.wait(set(tasks))
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating
        if failed:
            exc = failed[0].exception()
            assert exc is not None
            raise exc

    def _worth_waiting(
        self, run: _Run, now: datetime, idle_since: datetime, wait_for_retries: float
    ) -> bool:
        """Whether to wait for more work instead of returning, with nothing to claim now.

        Worth it for a retry due within ``wait_for_retries`` seconds, and for rows other
        workers hold, as long as we have not idled long enough for a dead holder's
        heartbeat to go stale (they are usually recorded in a moment; a dead holder's rows
        are taken back: at once on this host, by its stale heartbeat elsewhere).
        """
        deliveries = self.store.deliveries
        counts = deliveries.counts(run.edition.id)
        run.report.held = counts.get(DeliveryStatus.CLAIMED, 0)
        retry_at = deliveries.next_retry_at(run.edition.id)
        run.report.next_retry_at = retry_at
        if counts.get(DeliveryStatus.QUEUED):
            return True  # locked by a claim in progress elsewhere: look again
        if retry_at is not None and (retry_at - now).total_seconds() <= wait_for_retries:
            return True
        held_wait = self.leases.held_wait(wait_for_retries, self.options.poll)
        return bool(run.report.held) and (now - idle_since).total_seconds() < held_wait

    async def _slot(self, stop: asyncio.Event | None) -> Slot | None:
        """A limiter slot, or None when ``stop`` is set first (a throttle pause can be long)."""
        if stop is None:
            return await self.limiter.slot(self.batch_size)
        getting = asyncio.ensure_future(self.limiter.slot(self.batch_size))
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({getting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if getting.done():
            return getting.result()
        getting.cancel()
        try:
            slot = await getting
        except asyncio.CancelledError:
            return None
        slot.release()  # it was granted just as we gave up
        return None

    async def _nap(self, seconds: float, stop: asyncio.Event | None) -> None:
        if stop is None:
            await self.sleep(seconds)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=seconds)

    def _compose(self, run: _Run, claim: Claim) -> list[OutgoingMessage]:
        """Messages for the claimed rows; rows whose subscriber left are skipped.

        A batch going again through an idempotent provider is kept whole: it may already
        be at the provider, and a repeat only deduplicates if it is the same request.
        """
        now = self.clock()
        keep_whole = claim.again and self.provider.supports_idempotency
        subs = self.store.subscribers.addressees([d.subscriber_id for d in claim.rows], now)
        messages = []
        skips: defaultdict[str, list[int]] = defaultdict(list)
        compose = run.composer.compose
        for d in claim.rows:
            sub = subs.get(d.subscriber_id)
            if sub is None:
                skips["subscriber deleted before sending"].append(d.id)
                continue
            email, name, reason = sub
            if reason is not None and not keep_whole:
                skips[reason].append(d.id)
                continue
            variant = run.variants.get(d.locale)
            if variant is None:
                raise EditionError(f"edition {run.edition.id} has no rendered {d.locale} variant")
            messages.append(compose(variant, Recipient(d.id, d.subscriber_id, email, name)))
        for reason, ids in skips.items():  # one write per reason, not per row
            self.store.deliveries.skip_many(ids, reason, now)
        return messages

    async def _batch(self, run: _Run, claim: Claim, slot: Slot) -> None:
        """Compose, send and record one claimed batch, then free its slot."""
        deliveries = self.store.deliveries
        try:
            try:
                messages = self._compose(run, claim)
            except BaseException:
                deliveries.release([d.id for d in claim.rows], self.clock(), claimed_by=claim.token)
                raise
            skipped = len(claim) - len(messages)
            written: Counter[DeliveryStatus] = Counter()
            if messages:
                try:
                    results = await self.provider.send_batch(messages)
                except ProviderError:
                    # the provider refused to work at all: nothing of this batch went out
                    deliveries.release(
                        [m.delivery_id for m in messages], self.clock(), claimed_by=claim.token
                    )
                    raise
                # anything else (a bug, a cancellation) leaves the rows claimed: whether
                # they went out is unknown, and the lease expiry says so
                written = deliveries.record(
                    results,
                    self.clock(),
                    max_attempts=self.options.max_attempts,
                    backoff=self._backoff,
                    claimed_by=claim.token,
                )
                pause = throttle_pause(results)
                if pause is not None:
                    # the provider is throttling: the whole process waits, not just this batch
                    run.report.throttled += 1
                    self.limiter.throttle(pause)
                    log.info("provider throttling: pausing sends for %.1f s", pause)
            final = run.report.add_batch(written, skipped)
            if final:
                run.progressed(final)
        finally:
            self.leases.tokens.discard(claim.token)
            slot.release()
