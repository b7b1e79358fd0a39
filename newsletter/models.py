"""Plain dataclasses passed between the stages. No I/O happens here."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final


@dataclass(frozen=True)
class SourceItem:
    """One item as a source produced it, before sanitizing and storing.

    ``body_html`` may be raw, untrusted HTML; ``gather`` sanitizes it. ``published`` is
    timezone-aware when the source knows the date, else ``None`` (gather uses the time of
    first sight). ``lang`` is the declared language, if any.
    """

    source: str
    guid: str
    title: str
    body_html: str
    link: str | None = None
    summary_html: str | None = None
    published: datetime | None = None
    lang: str | None = None
    translation_key: str | None = None
    tags: tuple[str, ...] = ()
    image: str | None = None


@dataclass(frozen=True)
class Item:
    """A stored, sanitized news item."""

    id: int
    source: str
    guid: str
    title: str
    body_html: str
    summary_html: str
    link: str | None
    published_at: datetime
    lang: str
    translation_key: str | None
    tags: tuple[str, ...]
    image: str | None
    content_hash: str
    first_seen_at: datetime
    updated_at: datetime
    #: set on a machine translation: the language it was translated from
    translated_from: str | None = None

    @property
    def group_key(self) -> str:
        """Key shared by all language variants of one story."""
        return self.translation_key or f"item:{self.id}"


class SubscriberStatus(enum.StrEnum):
    """Lifecycle of a subscriber; only ``active`` ones receive editions."""

    ACTIVE = "active"
    PENDING = "pending"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"


@dataclass(frozen=True)
class Subscriber:
    """One person on one or more lists."""

    id: int
    email: str
    name: str
    locale: str
    organisation: str = ""
    country: str = ""
    lists: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    status: SubscriberStatus = SubscriberStatus.ACTIVE
    consent_at: datetime | None = None
    consent_source: str = ""
    #: set from the preference centre: nothing is sent to them before this time
    paused_until: datetime | None = None

    def is_paused(self, now: datetime) -> bool:
        """Whether the subscriber asked for a pause that is still running at ``now``."""
        return self.paused_until is not None and self.paused_until > now


@dataclass(frozen=True)
class NewSubscriber:
    """A subscriber not stored yet (from a CSV row or ``subscribers add``)."""

    email: str
    name: str = ""
    locale: str = ""
    organisation: str = ""
    country: str = ""
    lists: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    status: SubscriberStatus = SubscriberStatus.ACTIVE
    consent_at: datetime | None = None
    consent_source: str = ""


class EditionStatus(enum.StrEnum):
    """Lifecycle of an edition."""

    PLANNED = "planned"
    #: prepared (rows planned, variants rendered) and waiting for a person's approval
    AWAITING_APPROVAL = "awaiting_approval"
    SENDING = "sending"
    PAUSED = "paused"
    FINISHED = "finished"
    CANCELLED = "cancelled"

    @property
    def label(self) -> str:
        """The status as people read it: ``awaiting approval``."""
        return self.value.replace("_", " ")


#: every move an edition may make, as target -> the statuses it may come from; the store
#: refuses any other (``EditionStore.transition``). An edition is created ``planned``.
EDITION_TRANSITIONS: Final[Mapping[EditionStatus, frozenset[EditionStatus]]] = {
    # planning finished, resumed after a pause, rows queued again (reconcile), or resumed
    # by an operator while a worker is already at it
    EditionStatus.SENDING: frozenset(
        {
            EditionStatus.PLANNED,
            EditionStatus.PAUSED,
            EditionStatus.FINISHED,
            EditionStatus.SENDING,
            # approved (or its approval deadline passed) within the send window
            EditionStatus.AWAITING_APPROVAL,
        }
    ),
    # prepared for a segment with approval = "required"
    EditionStatus.AWAITING_APPROVAL: frozenset({EditionStatus.PLANNED}),
    EditionStatus.PAUSED: frozenset({EditionStatus.SENDING}),
    EditionStatus.FINISHED: frozenset({EditionStatus.SENDING}),
    EditionStatus.CANCELLED: frozenset(
        {
            EditionStatus.PLANNED,
            EditionStatus.AWAITING_APPROVAL,
            EditionStatus.SENDING,
            EditionStatus.PAUSED,
        }
    ),
    EditionStatus.PLANNED: frozenset(),
}


@dataclass(frozen=True)
class Progress:
    """Where the sending of one edition stands: ``done`` of its ``total`` rows are final
    (sent, failed, skipped or unknown). The one progress event of every command and job."""

    edition_id: int
    segment: str
    done: int
    total: int


#: what a command or job passes to be told of :class:`Progress`
OnProgress = Callable[[Progress], None]


@dataclass(frozen=True)
class Edition:
    """One digest for one segment and period, with its item set frozen at creation."""

    id: int
    segment: str
    period: str
    status: EditionStatus
    created_at: datetime
    item_ids: tuple[int, ...]


@dataclass(frozen=True)
class DigestEntry:
    """One story as shown to a reader of one locale."""

    item: Item
    #: language of the variant shown; differs from the reader's locale when none existed
    shown_lang: str
    #: True when ``item`` is not in the reader's language (the template labels it)
    is_fallback: bool
    #: id of the story's original, which names its public page (else ``item``'s id)
    story_id: int | None = None


@dataclass(frozen=True)
class RenderedVariant:
    """A digest rendered and CSS-inlined once for one (edition, locale).

    ``html`` and ``text`` still hold per-recipient markers carrying ``nonce``, a random
    value drawn for this render (see :mod:`newsletter.send.personalize`). A variant stored
    before nonces existed has ``nonce == ""``: it is never personalized.
    """

    locale: str
    subject: str
    preheader: str
    from_name: str
    html: str
    text: str
    item_count: int
    nonce: str = ""

    @property
    def html_bytes(self) -> int:
        """Size of the HTML part in bytes (Gmail clips beyond ~102 KB)."""
        return len(self.html.encode("utf-8"))


@dataclass(frozen=True)
class SharedBody:
    """A body many recipients share, with their values left as placeholders.

    For providers that take one body per request plus per-recipient values (SendGrid
    substitutions, Mailgun recipient-variables): substituting a message's
    ``substitutions`` into ``html`` and ``text`` gives exactly that message's ``html``
    and ``text``. The HTML and text parts use different placeholder strings, because a
    value is HTML-escaped in one and raw in the other.
    """

    #: equal keys mean equal bodies: providers group messages by it
    key: str
    html: str
    text: str


@dataclass(frozen=True)
class OutgoingMessage:
    """A provider-neutral, fully personalized message for one recipient."""

    delivery_id: int
    to_email: str
    to_name: str
    from_email: str
    from_name: str
    subject: str
    #: the personal bodies; empty when the provider sends only ``shared`` (substituted)
    html: str
    text: str
    locale: str
    message_id: str
    #: extra headers: List-Unsubscribe, List-Unsubscribe-Post, List-Id, ...
    headers: dict[str, str] = field(default_factory=dict)
    #: stable per (edition, subscriber); providers that support it send it as idempotency key
    idempotency_key: str = ""
    #: opaque values for the provider's metadata/tags (edition id, subscriber id)
    metadata: dict[str, str] = field(default_factory=dict)
    reply_to: str | None = None
    #: the un-personalized body this message was made from (None: only html/text exist)
    shared: SharedBody | None = None
    #: placeholder string in ``shared`` -> this recipient's value (escaped for the HTML part)
    substitutions: dict[str, str] = field(default_factory=dict)


class ResultStatus(enum.StrEnum):
    """What a provider said about one message."""

    ACCEPTED = "accepted"
    RETRYABLE = "retryable"
    PERMANENT = "permanent"
    #: the request may or may not have been taken (its answer was lost after it was fully
    #: sent) and the provider cannot deduplicate a resend: only an operator sends it again
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class SendResult:
    """The provider's answer for one message."""

    delivery_id: int
    status: ResultStatus
    provider_message_id: str | None = None
    error: str | None = None
    #: seconds to wait before retrying, when the provider said so
    retry_after: float | None = None


class DeliveryStatus(enum.StrEnum):
    """State of one (edition, subscriber) delivery row."""

    QUEUED = "queued"
    CLAIMED = "claimed"
    SENT = "sent"
    RETRY = "retry"
    FAILED = "failed"
    UNKNOWN = "unknown"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Delivery:
    """One delivery row as read from the store."""

    id: int
    edition_id: int
    subscriber_id: int
    locale: str
    status: DeliveryStatus
    attempts: int = 0
    provider_message_id: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class Change:
    """One change an editor made (desk story, version, plan, approval), for the audit log.

    ``actor`` is who made it (a desk user's email, ``"cli"``, ``"deadline"``), ``action``
    what (``story.create``, ``edition.approve``, ...), ``target`` on what (``item:12``,
    ``segment:members``, ``edition:7``); ``detail`` holds short values only, never bodies.
    """

    actor: str
    action: str
    target: str
    at: datetime
    detail: Mapping[str, str] = field(default_factory=dict)
    #: the item created or edited (desk stories and versions)
    item_id: int | None = None

    def summary(self) -> str:
        """One line: ``story.create item:12 (title='...', lang='bg')``."""
        if not self.detail:
            return f"{self.action} {self.target}"
        parts = ", ".join(f"{k}={v!r}" for k, v in self.detail.items())
        return f"{self.action} {self.target} ({parts})"
