"""What the delivery engine needs from the store, and nothing more.

:class:`SendStore` lists the calls :class:`~newsletter.send.engine.Sender` and its lease
keeper make (as listmonk's campaign manager does with its data source); the SQL
:class:`~newsletter.store.Store` satisfies it structurally, and a test or another backend
only has to provide these. Each part is read-only on the protocol so a store may keep its
repositories as plain attributes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from newsletter.models import (
    DeliveryStatus,
    Edition,
    EditionStatus,
    RenderedVariant,
    SendResult,
)
from newsletter.send.holders import Holder
from newsletter.store.deliveries import Claim
from newsletter.store.leases import HeldBy

__all__ = ["DeliveryRows", "EditionRows", "SendStore", "SubscriberRows"]


class EditionRows(Protocol):
    """Editions as the engine reads and moves them."""

    def get(self, edition_id: int) -> Edition:
        """The edition with this id."""
        ...

    def status(self, edition_id: int) -> EditionStatus:
        """Its current status (polled while sending)."""
        ...

    def variants(self, edition_id: int) -> dict[str, RenderedVariant]:
        """Its rendered variants by locale."""
        ...

    def transition(
        self,
        edition_id: int,
        status: EditionStatus,
        *,
        now: datetime,
        only_from: Collection[EditionStatus] | None = None,
    ) -> bool:
        """A move the transition table allows; False when it was in another status."""
        ...


class DeliveryRows(Protocol):
    """The delivery rows: claims, results, leases and counts."""

    def claim_batch(
        self,
        edition_id: int,
        token: str,
        limit: int,
        lease: timedelta,
        now: datetime,
        *,
        holder: Holder | None = None,
    ) -> Claim:
        """Claim up to ``limit`` due rows under ``token``."""
        ...

    def record(
        self,
        results: Sequence[SendResult],
        now: datetime,
        *,
        max_attempts: int,
        backoff: Callable[[int, float | None], float],
        claimed_by: str | None = None,
    ) -> Counter[DeliveryStatus]:
        """Record a batch's results under its claim."""
        ...

    def release(self, ids: Sequence[int], now: datetime, *, claimed_by: str | None = None) -> None:
        """Give claimed rows back unsent."""
        ...

    def skip_many(self, ids: Sequence[int], reason: str, now: datetime) -> None:
        """Mark rows skipped with one reason."""
        ...

    def cancel(self, edition_id: int, now: datetime) -> tuple[int, int]:
        """Skip every unsent row of a cancelled edition."""
        ...

    def counts(self, edition_id: int) -> dict[DeliveryStatus, int]:
        """Rows per status."""
        ...

    def next_retry_at(self, edition_id: int) -> datetime | None:
        """When the earliest retry falls due."""
        ...

    def pending(self, edition_id: int) -> int:
        """Rows still to send."""
        ...

    def expire_leases(
        self,
        edition_id: int,
        now: datetime,
        *,
        resend: bool,
        stale_before: datetime | None = None,
        dead: Collection[Holder] = (),
    ) -> int:
        """Take back rows whose holder is gone."""
        ...

    def heartbeat(self, tokens: Sequence[str], lease: timedelta, now: datetime) -> int:
        """Renew the leases of the claims in flight."""
        ...

    def holders(self, edition_id: int) -> list[HeldBy]:
        """Who holds the edition's claimed rows."""
        ...


class SubscriberRows(Protocol):
    """Subscribers, read once per batch."""

    def addressees(
        self, ids: Sequence[int], now: datetime
    ) -> dict[int, tuple[str, str, str | None]]:
        """id -> (email, name, why not to send now or None); deleted ids are absent."""
        ...


class SendStore(Protocol):
    """The store as the delivery engine sees it."""

    @property
    def editions(self) -> EditionRows:
        """Editions."""
        ...

    @property
    def deliveries(self) -> DeliveryRows:
        """Delivery rows."""
        ...

    @property
    def subscribers(self) -> SubscriberRows:
        """Subscribers."""
        ...
