"""The long-running sender: every edition in ``sending`` status, until told to stop.

Each pass first releases approved editions whose send window is open, and editions past
their approval deadline (:func:`newsletter.digest.approval.release_due`).

Any number of workers may run at once, on one host or many, against one PostgreSQL
database: they share each edition through leased claims (``FOR UPDATE SKIP LOCKED``),
so no row goes to two of them. On SQLite run one worker; it sends with ``concurrency``
requests in flight.

SIGTERM or SIGINT stops a worker cleanly: it claims nothing more, waits for the batches
it has in flight to be answered and recorded, and returns. A second signal kills it at
once (the leases then expire and the rows are dealt with as after a crash).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TypeVar

from newsletter.clock import Clock, utcnow
from newsletter.config import Settings
from newsletter.digest.approval import approval_required, release_due
from newsletter.digest.edition import finish_planning
from newsletter.errors import EditionError
from newsletter.models import DeliveryStatus, EditionStatus, OnProgress
from newsletter.send.engine import Sender, SendOptions, SendReport
from newsletter.send.providers import build_provider
from newsletter.send.providers.base import Provider
from newsletter.send.ratelimit import RateLimiter
from newsletter.send.reconcile import DEFAULT_SETTLE, ReconcileReport, reconcile
from newsletter.send.tokens import TokenSigner, signer_for
from newsletter.store import Store

__all__ = [
    "Worker",
    "WorkerOptions",
    "WorkerReport",
    "reconcile_edition",
    "resume_edition",
    "run_worker",
]

log = logging.getLogger("newsletter.send.worker")

T = TypeVar("T")


@dataclass(frozen=True)
class WorkerOptions:
    """How a worker (or a foreground resume) sends."""

    #: drain what is due, wait at most ``wait`` seconds for retries and leases, then exit
    once: bool = False
    #: seconds a claimed batch is held; must exceed the provider's request timeout
    lease: float = 600.0
    #: seconds between looks for new work when idle (not with ``once``)
    poll: float = 5.0
    #: with ``once``: the longest wait for a retry or an expiring lease before exiting
    wait: float = 60.0
    #: the first retry delay in seconds; it doubles per attempt (Retry-After wins)
    retry_base: float = 30.0
    #: attempts before a message that keeps failing (not throttling) is marked failed
    max_attempts: int = 5


@dataclass
class WorkerReport:
    """What a worker did, per edition, over its whole run."""

    editions: dict[int, SendReport] = field(default_factory=dict)
    #: editions it could not send (a missing variant, ...), with the reason
    problems: dict[int, str] = field(default_factory=dict)
    stopped: bool = False

    def add(self, edition_id: int, report: SendReport) -> None:
        """Fold one sending run into the totals of its edition."""
        self.editions.setdefault(edition_id, SendReport()).merge(report)

    @property
    def sent(self) -> int:
        """Messages accepted by the provider in this run."""
        return sum(r.sent for r in self.editions.values())


class Worker:
    """Sends every edition in ``sending`` status with one provider and one rate limiter."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        provider: Provider,
        *,
        options: WorkerOptions = WorkerOptions(),
        limiter: RateLimiter | None = None,
        clock: Clock = utcnow,
        signer: TokenSigner | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.options = options
        self.clock = clock
        self.sender = Sender.configured(
            settings,
            store,
            provider,
            signer or signer_for(settings),
            SendOptions(
                lease=timedelta(seconds=options.lease),
                max_attempts=options.max_attempts,
                retry_base=options.retry_base,
                poll=min(options.poll, 1.0),
            ),
            limiter=limiter,
            clock=clock,
        )

    async def run(self, stop: asyncio.Event | None = None) -> WorkerReport:
        """Send until ``stop`` is set (or, with ``once``, until nothing is due)."""
        stop = stop or asyncio.Event()
        report = WorkerReport()
        wait = self.options.wait if self.options.once else 0.0
        while not stop.is_set():
            batches = 0
            # approved editions whose send window opened, and those past their deadline
            release_due(self.settings, self.store, now=self.clock())
            for edition in self.store.editions.with_status(EditionStatus.SENDING):
                if stop.is_set():
                    break
                try:
                    res = await self.sender.send(edition, wait_for_retries=wait, stop=stop)
                except EditionError as exc:
                    if self.store.editions.status(edition.id) is not EditionStatus.SENDING:
                        continue  # paused or cancelled just now: not a problem
                    # one broken edition must not keep the others from going out
                    if edition.id not in report.problems:
                        log.error("edition %s: %s", edition.id, exc)
                    report.problems[edition.id] = str(exc)
                    continue
                report.add(edition.id, res)
                batches += res.batches
            if self.options.once and not batches:
                break
            if not self.options.once and not batches:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.options.poll)
        report.stopped = stop.is_set()
        return report


async def _with_signals(work: Callable[[asyncio.Event], Awaitable[T]]) -> T:
    """Run ``work(stop)`` with SIGTERM/SIGINT setting ``stop``; a second signal kills."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_signal(sig: signal.Signals) -> None:
        log.warning("%s: finishing the batches in flight, then stopping", sig.name)
        stop.set()
        # the default handler is back: a second signal ends the process at once
        for s in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(s)

    try:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_signal, sig)
    except (RuntimeError, ValueError):
        pass  # not the main thread (embedded use): the caller handles signals
    try:
        return await work(stop)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


def _sending(
    settings: Settings,
    store: Store | None,
    provider: Provider | None,
    work: Callable[[Store, Provider, asyncio.Event], Awaitable[T]],
) -> T:
    """Open what was not injected, run ``work`` under signal handling, close what we opened."""
    own_store = store is None
    st = store or Store.open(settings.database_url())
    try:

        async def main() -> T:
            prov = provider or build_provider(settings)
            try:
                return await _with_signals(lambda stop: work(st, prov, stop))
            finally:
                if provider is None:
                    await prov.aclose()

        return asyncio.run(main())
    finally:
        if own_store:
            st.close()


def _check_lease(settings: Settings, options: WorkerOptions) -> None:
    timeout = getattr(settings.provider, "timeout", None)
    if isinstance(timeout, int | float) and options.lease <= timeout:
        raise EditionError(
            f"--lease {options.lease:g}s must be longer than the provider timeout "
            f"({timeout:g}s): a batch still in flight would be taken for a crashed one"
        )


def run_worker(
    settings: Settings,
    *,
    options: WorkerOptions = WorkerOptions(),
    store: Store | None = None,
    provider: Provider | None = None,
) -> WorkerReport:
    """Run a worker in this process until SIGTERM/SIGINT (or, with ``once``, until drained)."""
    _check_lease(settings, options)

    async def work(st: Store, prov: Provider, stop: asyncio.Event) -> WorkerReport:
        return await Worker(settings, st, prov, options=options).run(stop)

    return _sending(settings, store, provider, work)


def resume_edition(
    settings: Settings,
    edition_id: int,
    *,
    resend_unknown: bool = False,
    reconcile_first: bool = True,
    settle: timedelta = DEFAULT_SETTLE,
    options: WorkerOptions = WorkerOptions(once=True),
    store: Store | None = None,
    provider: Provider | None = None,
    on_progress: OnProgress | None = None,
    on_reconciled: Callable[[ReconcileReport], None] | None = None,
    clock: Clock = utcnow,
) -> SendReport:
    """Resume a paused (or stalled) edition and send it here, in the foreground.

    An edition still being planned (its ``digest`` died while planning) is planned
    first, as ``digest`` would.

    With ``resend_unknown`` the rows whose outcome is unknown (a worker died mid-send
    with a provider that cannot deduplicate) are dealt with first. Where the provider can
    tell what it accepted (``reconcile_first``, see :mod:`newsletter.send.reconcile`), only the
    rows it has no message for are sent again, and ``on_reconciled`` gets the report;
    otherwise (or with ``reconcile_first=False``) every unknown row is sent again and the
    operator accepts that some readers may get the edition twice.
    ``on_progress`` is told of :class:`~newsletter.models.Progress` as rows reach a final
    state. Workers running elsewhere share the work.
    """
    _check_lease(settings, options)

    async def work(st: Store, prov: Provider, stop: asyncio.Event) -> SendReport:
        now = clock()
        edition = st.editions.get(edition_id)
        status = edition.status
        unknown = st.deliveries.counts(edition_id).get(DeliveryStatus.UNKNOWN, 0)
        if status is EditionStatus.CANCELLED:
            raise EditionError(f"edition {edition_id} was cancelled; it cannot be resumed")
        if status is EditionStatus.AWAITING_APPROVAL:
            raise EditionError(
                f"edition {edition_id} is awaiting approval: approve it with "
                f"`newsletter editions approve {edition_id}` (or in the desk)"
            )
        if status is EditionStatus.PLANNED:
            segment = next((s for s in settings.segments if s.name == edition.segment), None)
            if segment is not None and approval_required(segment, edition):
                raise EditionError(
                    f"edition {edition_id} needs approval: `newsletter digest --segment "
                    f"{edition.segment}` finishes preparing it and asks for it"
                )
            # its digest died while planning: finish that here, then send as usual
            finish_planning(settings, st, edition_id, now)
        waiting = st.deliveries.pending(edition_id)
        if status is EditionStatus.FINISHED and not waiting and not (resend_unknown and unknown):
            raise EditionError(f"edition {edition_id} is finished; nothing is left to send")
        if resend_unknown and unknown:
            if reconcile_first and prov.lookup_horizon is not None:
                report = await reconcile(st, prov, edition_id, now, settle=settle)
                if on_reconciled is not None:
                    on_reconciled(report)
            else:
                st.deliveries.requeue_unknown(edition_id, now)
        st.editions.transition(edition_id, EditionStatus.SENDING, now=now)
        worker = Worker(settings, st, prov, options=options, clock=clock)
        return await worker.sender.send(
            st.editions.get(edition_id),
            wait_for_retries=options.wait,
            on_progress=on_progress,
            stop=stop,
        )

    return _sending(settings, store, provider, work)


def reconcile_edition(
    settings: Settings,
    edition_id: int,
    *,
    settle: timedelta = DEFAULT_SETTLE,
    store: Store | None = None,
    provider: Provider | None = None,
    clock: Clock = utcnow,
) -> ReconcileReport:
    """Ask the configured provider which of the edition's ``unknown`` rows it accepted
    and record the answers (see :mod:`newsletter.send.reconcile`); nothing is sent here."""

    async def work(st: Store, prov: Provider, stop: asyncio.Event) -> ReconcileReport:
        return await reconcile(st, prov, edition_id, clock(), settle=settle)

    return _sending(settings, store, provider, work)
