"""Applying verified provider events to the store, each one once.

Hard bounces, complaints and provider-side unsubscribes stop sending to the address: the
subscriber's status changes (only from active or pending: an unsubscribed person who later
bounces stays "unsubscribed") and the address is suppressed, so no later import re-adds it.
Soft bounces count; ``soft_bounce_threshold`` of them within the window, with no delivery in
between, are treated as a hard bounce. When an event names one of our deliveries, the row
records what the provider said. Events for addresses we do not know change nothing.

Claim, then apply: the events of a request are first recorded as seen (so a concurrent or
later duplicate is skipped), then applied; if applying fails the claim is released so the
provider's retry applies them. Every effect is idempotent, so a retry after a partial
failure is harmless.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from newsletter.audience.subscribers import normalize_email
from newsletter.config.tracking import Tracking
from newsletter.config.webhooks import Webhooks
from newsletter.errors import SubscriberError
from newsletter.models import Subscriber, SubscriberStatus
from newsletter.send.providers.events.base import ReplayError
from newsletter.send.providers.events.model import Event, EventKind
from newsletter.store import Store
from newsletter.store.webhooks import EventRow

__all__ = ["Applied", "EventApplier"]

log = logging.getLogger(__name__)

#: what each stopping kind does: new status, suppression reason
_STOP = {
    EventKind.HARD_BOUNCE: (SubscriberStatus.BOUNCED, "bounced"),
    EventKind.COMPLAINT: (SubscriberStatus.COMPLAINED, "complained"),
    EventKind.UNSUBSCRIBE: (SubscriberStatus.UNSUBSCRIBED, "unsubscribed"),
}
#: a delivery row keeps the strongest thing the provider said about it
_RANK = [
    EventKind.DELIVERED,
    EventKind.SOFT_BOUNCE,
    EventKind.UNSUBSCRIBE,
    EventKind.HARD_BOUNCE,
    EventKind.COMPLAINT,
]
_RECEIVING = (SubscriberStatus.ACTIVE, SubscriberStatus.PENDING)


@dataclass
class Applied:
    """What one webhook call did."""

    applied: int = 0
    duplicates: int = 0
    #: events of kinds we do not act on (opens, clicks, deferrals)
    ignored: int = 0
    #: events for addresses that are not subscribers
    unknown: int = 0


class EventApplier:
    """Applies events to ``store`` under the ``[webhooks]`` rules."""

    def __init__(
        self,
        store: Store,
        config: Webhooks,
        *,
        tracking: Tracking | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.tracking = tracking or Tracking()
        self.now = now or (lambda: datetime.now(UTC))

    def _kept(self, kind: EventKind) -> bool:
        """Whether events of ``kind`` are kept: opens and clicks only when tracked."""
        if kind is EventKind.OTHER:
            return False
        if kind is EventKind.OPENED:
            return self.tracking.opens
        if kind is EventKind.CLICKED:
            return self.tracking.clicks
        return True

    def _row(self, event: Event, sub: Subscriber | None) -> tuple[EventRow, int | None]:
        """The row to claim for ``event``, linked to its delivery when one is found."""
        email = sub.email if sub else event.email.strip().lower()
        delivery_id = self.store.webhooks.find_delivery(
            email=email,
            delivery_id=event.delivery_id,
            edition_id=event.edition_id,
            subscriber_id=event.subscriber_id,
            provider_message_id=event.provider_message_id,
        )
        place = self.store.webhooks.delivery_place(delivery_id) if delivery_id else None
        engagement = event.kind in (EventKind.OPENED, EventKind.CLICKED)
        anonymous = engagement and self.tracking.anonymous
        row = EventRow(
            event.event_id,
            event.kind.value,
            None if anonymous or sub is None else sub.id,
            event.timestamp,
            delivery_id=None if anonymous else delivery_id,
            edition_id=place[0] if place else None,
            locale=place[1] if place else None,
            story=event.url if event.kind is EventKind.CLICKED else None,
            machine=event.machine,
        )
        return row, delivery_id

    def apply(
        self, provider: str, events: Sequence[Event], *, request_key: str | None = None
    ) -> Applied:
        """Apply the new events of one request; ReplayError if the request was seen.

        A request without a nonce whose events were all seen before is a replay too.
        """
        now = self.now()
        outcome = Applied()
        tracked: list[tuple[Event, Subscriber | None, int | None]] = []
        rows: list[EventRow] = []
        for event in events:
            if not self._kept(event.kind):
                outcome.ignored += 1
                continue
            sub = self._subscriber(event.email)
            row, delivery_id = self._row(event, sub)
            tracked.append((event, sub, delivery_id))
            rows.append(row)
        claimed = self.store.webhooks.claim(provider, rows, now, request_key=request_key)
        if claimed is None:
            raise ReplayError("this request was already received")
        if request_key is None and rows and not any(claimed):
            raise ReplayError("every event in this request was already received")
        new = [pair for pair, ok in zip(tracked, claimed, strict=True) if ok]
        outcome.duplicates = len(tracked) - len(new)
        try:
            for event, sub, delivery_id in sorted(new, key=lambda pair: pair[0].timestamp):
                if self._apply_one(event, sub, delivery_id, now):
                    outcome.applied += 1
                else:
                    outcome.unknown += 1
        except Exception:
            self.store.webhooks.release(
                provider, [ev.event_id for ev, _, _ in new], request_key=request_key
            )
            raise
        return outcome

    def _subscriber(self, email: str) -> Subscriber | None:
        try:
            return self.store.subscribers.find(normalize_email(email))
        except SubscriberError:
            return None  # not an address we could have stored

    def _apply_one(
        self, event: Event, sub: Subscriber | None, delivery_id: int | None, now: datetime
    ) -> bool:
        """Apply one new event; False when it concerns no subscriber of ours."""
        if delivery_id is not None and event.kind in _RANK:
            stronger = [k.value for k in _RANK[_RANK.index(event.kind) + 1 :]]
            self.store.webhooks.note_delivery(
                delivery_id, event.kind.value, event.timestamp, self.now(), keep=stronger
            )
        if sub is None:
            log.info(
                "webhook %s: event %s for an unknown address ignored",
                event.provider,
                event.event_id,
            )
            return False
        source = f"webhook:{event.provider} {event.detail}".strip()
        if event.kind is EventKind.SOFT_BOUNCE:
            since = now - timedelta(days=self.config.soft_bounce_window_days)
            count = self.store.webhooks.soft_bounces(sub.id, since)
            if count < self.config.soft_bounce_threshold:
                return True
            source = f"webhook:{event.provider} {count} soft bounces"
            self._stop(sub, EventKind.HARD_BOUNCE, source, now)
        elif event.kind in _STOP:
            self._stop(sub, event.kind, source, now)
        return True

    def _stop(self, sub: Subscriber, kind: EventKind, source: str, now: datetime) -> None:
        status, reason = _STOP[kind]
        current = self.store.subscribers.find(sub.email)  # an earlier event may have changed it
        if current is not None and current.status in _RECEIVING:
            try:
                self.store.subscribers.set_status(sub.email, status, source=source, now=now)
            except SubscriberError:
                log.info("webhook: subscriber %d was removed meanwhile", sub.id)
        self.store.suppressions.add(sub.email, reason, source, now)
