"""An operator's handles on an edition: pause, cancel, and where it stands (with an ETA).

Resuming sends, so it lives with the worker (:func:`newsletter.send.worker.resume_edition`).
Every change here is one conditional update of the edition's status followed by row
updates; a worker notices between two batches and stops claiming, and the batches it
has in flight are still recorded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from newsletter.config import Settings
from newsletter.errors import EditionError
from newsletter.models import DeliveryStatus, Edition, EditionStatus, RenderedVariant
from newsletter.send.providers import PROVIDERS
from newsletter.store import Store
from newsletter.store.delivery_stats import PENDING

__all__ = ["CancelReport", "EditionReport", "cancel_edition", "edition_report", "pause_edition"]

#: how far back ``editions show`` looks to measure the recent send rate
RECENT = timedelta(minutes=5)


def pause_edition(store: Store, edition_id: int, now: datetime) -> Edition:
    """Stop sending ``edition_id`` after the batches in flight; rows stay as they are."""
    edition = store.editions.get(edition_id)
    if edition.status is EditionStatus.PAUSED:
        return edition
    if not store.editions.transition(edition_id, EditionStatus.PAUSED, now=now):
        raise EditionError(
            f"edition {edition_id} is {store.editions.status(edition_id)}; "
            "only an edition that is sending can be paused"
        )
    return store.editions.get(edition_id)


@dataclass(frozen=True)
class CancelReport:
    """What cancelling did to the rows that were not sent yet."""

    edition: Edition
    skipped: int
    unknown: int


def cancel_edition(store: Store, edition_id: int, now: datetime) -> CancelReport:
    """Cancel an edition: nothing more of it is sent.

    Rows not sent yet become ``skipped`` with the reason "cancelled"; rows held by a
    worker that died become ``unknown``; a worker's batch in flight is recorded as what
    the provider said. Running it again on a cancelled edition sweeps rows that a dying
    worker left behind since. A finished edition cannot be cancelled.
    """
    status = store.editions.status(edition_id)
    if status is EditionStatus.FINISHED:
        raise EditionError(f"edition {edition_id} is finished; there is nothing left to cancel")
    store.editions.transition(
        edition_id,
        EditionStatus.CANCELLED,
        now=now,
    )
    skipped, unknown = store.deliveries.cancel(edition_id, now)
    return CancelReport(store.editions.get(edition_id), skipped, unknown)


@dataclass(frozen=True)
class EditionReport:
    """Where an edition stands: counts, reasons and an estimate of the time left."""

    edition: Edition
    counts: dict[DeliveryStatus, int]
    by_locale: dict[str, dict[DeliveryStatus, int]]
    errors: list[tuple[str, int]]
    variants: dict[str, RenderedVariant] = field(default_factory=dict)
    #: messages per second over the last few minutes (None: too few to tell)
    recent_rate: float | None = None
    #: the ceiling from ``[provider]`` messages/requests per second (None: unlimited)
    configured_rate: float | None = None

    @property
    def total(self) -> int:
        """Rows of the edition."""
        return sum(self.counts.values())

    @property
    def remaining(self) -> int:
        """Rows still to send: queued, claimed or waiting for a retry."""
        return sum(self.counts.get(s, 0) for s in PENDING)

    @property
    def unknown(self) -> int:
        """Rows the provider may or may not have (worker died, answer lost; no dedup)."""
        return self.counts.get(DeliveryStatus.UNKNOWN, 0)

    def eta(self, rate: float | None) -> timedelta | None:
        """Time left at ``rate`` messages per second (None when the rate is unknown)."""
        if not self.remaining:
            return timedelta(0)
        if not rate:
            return None
        return timedelta(seconds=round(self.remaining / rate))


def configured_rate(settings: Settings, batch_size: int | None = None) -> float | None:
    """Messages per second the ``[provider]`` limits allow (None when unlimited).

    A request rate counts as ``requests_per_second`` full batches a second, the batch
    being the one a sender uses: ``batch_size`` (default the table's), capped by what the
    provider accepts.
    """
    cfg = settings.provider
    limits = []
    if cfg.messages_per_second:
        limits.append(cfg.messages_per_second)
    provider = PROVIDERS.get(cfg.name)
    most = provider.max_batch if provider is not None else None
    size = batch_size or cfg.batch_size or most
    if size and most:
        size = min(size, most)
    if cfg.requests_per_second and size:
        limits.append(cfg.requests_per_second * size)
    return min(limits) if limits else None


def edition_report(
    settings: Settings, store: Store, edition_id: int, now: datetime
) -> EditionReport:
    """Counts per status and locale, the commonest error reasons, and the send rates."""
    edition = store.editions.get(edition_id)
    deliveries = store.deliveries
    sent, first = deliveries.sent_since(edition_id, now - RECENT)
    recent = None
    if sent >= 2 and first is not None:
        # from the first send in the window, so a run that began a minute ago is not diluted
        recent = sent / max((now - first).total_seconds(), 1.0)
    return EditionReport(
        edition=edition,
        counts=deliveries.counts(edition_id),
        by_locale=deliveries.counts_by_locale(edition_id),
        errors=deliveries.errors(edition_id),
        variants=store.editions.variants(edition_id),
        recent_rate=recent,
        configured_rate=configured_rate(settings),
    )
