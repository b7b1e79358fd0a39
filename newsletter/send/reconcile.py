"""Reconciling ``unknown`` rows with the provider: which of them did it accept after all?

A row is ``unknown`` when its message may or may not have reached a provider that cannot
deduplicate a resend (the answer was lost, or the worker died holding it). Resending all
of them gives a second copy to every reader whose message did arrive. Where the provider
can be asked (:meth:`~newsletter.send.providers.base.Provider.lookup`: Postmark's message
search, Mailgun's events), each row is looked up:

- found: the provider accepted it; the row is ``sent`` with the provider's message id;
- not found, and the row became unknown at least ``settle`` ago: it never arrived; the
  row is queued again (a finished edition goes back to ``sending``), so the next
  ``editions resume`` or a running worker sends it;
- not found but more recent: searches lag behind sending, so it stays ``unknown`` and
  the report says when to look again;
- not answered, or older than what the provider keeps: it stays ``unknown``.

Nothing is guessed: only the provider's own answer moves a row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from newsletter.errors import EditionError
from newsletter.models import EditionStatus
from newsletter.send.providers.base import Probe, Provider
from newsletter.store import Store

__all__ = ["DEFAULT_SETTLE", "ReconcileReport", "reconcile"]

#: how long after a row became unknown a provider search is trusted to show its message
DEFAULT_SETTLE: Final = timedelta(minutes=2)
#: the provider's clock may run behind ours: search from this much before the edition began
CLOCK_SLACK: Final = timedelta(minutes=5)


@dataclass(frozen=True)
class ReconcileReport:
    """What one reconciliation found for an edition's ``unknown`` rows."""

    edition_id: int
    provider: str
    #: unknown rows when it started
    unknown: int
    #: found at the provider: now ``sent``
    sent: int
    #: not found, settled: queued again
    requeued: int
    #: not found, but too recent to be sure: still ``unknown``
    recent: int
    #: the provider did not answer for them: still ``unknown``
    unanswered: int
    #: older than the provider keeps what it searches: still ``unknown``
    too_old: int
    #: when the ``recent`` rows can be checked again
    check_again_at: datetime | None

    @property
    def left(self) -> int:
        """Rows still ``unknown`` afterwards."""
        return self.recent + self.unanswered + self.too_old


async def reconcile(
    store: Store,
    provider: Provider,
    edition_id: int,
    now: datetime,
    *,
    settle: timedelta = DEFAULT_SETTLE,
) -> ReconcileReport:
    """Look up the edition's ``unknown`` rows with ``provider`` and record the answers.

    Raises :class:`EditionError` when the provider cannot tell what it accepted, and
    :class:`~newsletter.errors.ProviderError` when its search refuses us.
    """
    horizon = provider.lookup_horizon
    if horizon is None:
        raise EditionError(
            f"{provider.name} cannot tell which messages it accepted; "
            f"`newsletter editions resume {edition_id} --resend-unknown --no-reconcile` "
            "sends every unknown row again (some readers may get it twice)"
        )
    edition = store.editions.get(edition_id)
    rows = store.deliveries.unknown_rows(edition_id)
    since = edition.created_at - CLOCK_SLACK
    probes = [Probe(r.id, edition_id, r.email, since) for r in rows if now - r.since <= horizon]
    found = await provider.lookup(probes) if probes else {}
    became_unknown = {r.id: r.since for r in rows}
    accepted = {k: v for k, v in found.items() if v is not None}
    absent = [k for k, v in found.items() if v is None]
    settled = [k for k in absent if became_unknown[k] + settle <= now]
    recent = [became_unknown[k] for k in absent if became_unknown[k] + settle > now]
    sent, requeued = store.deliveries.settle_unknown(edition_id, accepted, settled, now)
    if requeued:
        # rows to send again: a finished edition is sending once more, so workers take it
        store.editions.transition(
            edition_id, EditionStatus.SENDING, now=now, only_from=[EditionStatus.FINISHED]
        )
    return ReconcileReport(
        edition_id=edition_id,
        provider=provider.name,
        unknown=len(rows),
        sent=sent,
        requeued=requeued,
        recent=len(recent),
        unanswered=len(probes) - len(found),
        too_old=len(rows) - len(probes),
        check_again_at=max(recent) + settle if recent else None,
    )
