"""What a sending run did: its :class:`SendReport`, and how each recorded batch counts in it.

Split from :mod:`newsletter.send.engine` (the run loop). A batch is counted from what the
store *recorded* for its rows, not from what the provider answered: a retryable answer
for a message out of attempts is a failure, and the report says so. When the run ends,
:func:`close_run` decides whether the edition is finished (no row queued, claimed or due
for a retry) and copies the edition's totals into the report.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import datetime

from newsletter.models import DeliveryStatus, EditionStatus, ResultStatus, SendResult
from newsletter.send.backend import SendStore

__all__ = ["SendReport", "close_run", "throttle_pause"]

#: the counters of a report that add up over runs (see :meth:`SendReport.merge`)
_TALLIES = ("sent", "failed", "skipped", "retry", "unknown", "batches", "throttled")


@dataclass
class SendReport:
    """Counts of one sending run (of this run only, see the store for the edition's totals)."""

    sent: int = 0
    failed: int = 0
    skipped: int = 0
    retry: int = 0
    #: answers lost after the provider got the request: rows left ``unknown``, not sent again
    unknown: int = 0
    batches: int = 0
    #: times the provider asked us to slow down
    throttled: int = 0
    counts: dict[DeliveryStatus, int] = field(default_factory=dict)
    finished: bool = False
    #: the run ended because it was asked to stop (signal), with work left
    stopped: bool = False
    #: when the next retry is due, if rows wait for one
    next_retry_at: datetime | None = None
    #: rows other workers were still holding when this run returned
    held: int = 0

    def add_batch(self, written: Counter[DeliveryStatus], skipped: int) -> int:
        """Count one recorded batch (rows per status written, rows skipped before sending).

        Returns how many of its rows reached a state no run changes by itself (sent,
        failed, skipped, unknown): the progress a progress bar shows.
        """
        self.batches += 1
        self.sent += written[DeliveryStatus.SENT]
        self.failed += written[DeliveryStatus.FAILED]
        self.retry += written[DeliveryStatus.RETRY]
        self.unknown += written[DeliveryStatus.UNKNOWN]
        self.skipped += skipped
        return (
            skipped
            + written[DeliveryStatus.SENT]
            + written[DeliveryStatus.FAILED]
            + written[DeliveryStatus.UNKNOWN]
        )

    def merge(self, later: SendReport) -> None:
        """Fold a later run of the same edition into this one: counters add up, the
        edition's state (counts, next retry, rows held) is the later run's."""
        for name in _TALLIES:
            setattr(self, name, getattr(self, name) + getattr(later, name))
        for f in fields(self):
            if f.name not in _TALLIES and f.name != "finished":
                setattr(self, f.name, getattr(later, f.name))
        self.finished = self.finished or later.finished


def throttle_pause(results: Iterable[SendResult]) -> float | None:
    """How long the provider asked us to hold off, from one batch's results (the longest
    ``retry_after``), or None when it did not throttle."""
    waits = [
        r.retry_after
        for r in results
        if r.status is ResultStatus.RETRYABLE and r.retry_after is not None
    ]
    return max(waits, default=None)


def close_run(store: SendStore, edition_id: int, report: SendReport, now: datetime) -> SendReport:
    """End a run: finish the edition when nothing is pending, fill in its totals.

    A cancelled edition is swept once more: rows the run's last batches put back to retry
    after the cancel are skipped too. ``finished`` is also true when another worker
    recorded the last batch and finished the edition.
    """
    deliveries = store.deliveries
    status = store.editions.status(edition_id)
    if status is EditionStatus.CANCELLED:
        deliveries.cancel(edition_id, now)
    elif status is EditionStatus.SENDING and deliveries.pending(edition_id) == 0:
        store.editions.transition(edition_id, EditionStatus.FINISHED, now=now)
    report.counts = deliveries.counts(edition_id)
    report.held = report.counts.get(DeliveryStatus.CLAIMED, 0)
    report.finished = store.editions.status(edition_id) is EditionStatus.FINISHED
    return report
