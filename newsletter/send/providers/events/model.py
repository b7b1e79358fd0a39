"""The common event every provider's payload is parsed into, and the parsing helpers.

Each provider names things its own way; what this package acts on is small: what happened
(:class:`EventKind`), to which address, the provider's id for the event (to apply it once),
when, the provider's message id, and our own edition and subscriber ids when the provider
echoes them back (custom args, metadata, tags, or our Message-ID header).
"""

from __future__ import annotations

import enum
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypedDict

from newsletter.send.mime import make_message_id

__all__ = [
    "Event",
    "EventKind",
    "Refs",
    "address_key",
    "content_id",
    "from_epoch",
    "from_iso",
    "obj",
    "parse_message_id",
    "refs",
]


class EventKind(enum.StrEnum):
    """What a provider reported about one message to one address."""

    HARD_BOUNCE = "hard_bounce"
    SOFT_BOUNCE = "soft_bounce"
    COMPLAINT = "complaint"
    UNSUBSCRIBE = "unsubscribe"
    DELIVERED = "delivered"
    #: the provider will retry (kept for the report; changes no subscriber)
    DEFERRED = "deferred"
    #: engagement: kept only when ``[tracking]`` switches it on
    OPENED = "opened"
    CLICKED = "clicked"
    #: anything else: accepted and not acted on
    OTHER = "other"


@dataclass(frozen=True)
class Event:
    """One provider event, provider-neutral."""

    provider: str
    kind: EventKind
    email: str
    #: the provider's id for this event (or a digest of its content when it has none)
    event_id: str
    timestamp: datetime
    provider_message_id: str | None = None
    edition_id: int | None = None
    subscriber_id: int | None = None
    delivery_id: int | None = None
    #: the provider's own words (event name, bounce type), for the status source and logs
    detail: str = ""
    #: an open the provider marks as automatic (Apple Mail Privacy Protection, proxies)
    machine: bool = False
    #: the link a click event reports
    url: str | None = None


_OUR_MESSAGE_ID = re.compile(r"^<?nl\.(\d+)\.(\d+)\.[0-9a-f]{12}@([^<>\s]+?)>?$")


def parse_message_id(value: Any) -> tuple[int, int] | None:
    """(edition id, subscriber id) from a Message-ID made by ``message.make_message_id``.

    The embedded digest is recomputed, so an id that only looks like ours is not trusted.
    """
    if not isinstance(value, str) or not value:
        return None
    match = _OUR_MESSAGE_ID.match(value.strip())
    if match is None:
        return None
    edition, subscriber, domain = int(match[1]), int(match[2]), match[3]
    try:
        expected = make_message_id(domain, edition, subscriber)
    except ValueError:
        return None
    return (edition, subscriber) if expected.strip("<>") == value.strip().strip("<>") else None


def _int(value: Any) -> int | None:
    if isinstance(value, list) and value:  # SES tags: {"edition_id": ["3"]}
        value = value[0]
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    if isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
        return number if number > 0 else None
    return None


class Refs(TypedDict):
    """Our own ids echoed back by a provider (keyword arguments of :class:`Event`)."""

    edition_id: int | None
    subscriber_id: int | None
    delivery_id: int | None


def refs(metadata: Mapping[str, Any] | None, message_id: Any = None) -> Refs:
    """Our ids from echoed metadata (custom args, tags), else from our Message-ID."""
    found = Refs(edition_id=None, subscriber_id=None, delivery_id=None)
    if metadata:
        found["edition_id"] = _int(metadata.get("edition_id"))
        found["subscriber_id"] = _int(metadata.get("subscriber_id"))
        found["delivery_id"] = _int(metadata.get("delivery_id"))
    if found["edition_id"] is None or found["subscriber_id"] is None:
        parsed = parse_message_id(message_id)
        if parsed is not None:
            found["edition_id"], found["subscriber_id"] = parsed
    return found


def from_epoch(value: Any, default: datetime) -> datetime:
    """A UTC datetime from seconds (int, float or digit string) since the epoch."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return default
    if seconds > 1e11:  # milliseconds (Brevo's ts_epoch)
        seconds /= 1000
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return default


def from_iso(value: Any, default: datetime) -> datetime:
    """A UTC datetime from an ISO 8601 string; naive values are taken as UTC."""
    if not isinstance(value, str) or not value:
        return default
    text = value.strip()
    # .NET-style 7-digit fractions (Postmark) are more than fromisoformat accepts
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return default
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def obj(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one (providers' optional blocks)."""
    return value if isinstance(value, dict) else {}


def address_key(email: str) -> str:
    """A short digest of an address, for event ids made per recipient.

    ``webhook_events`` keeps event ids long after an erasure, so an id must never hold an
    address itself.
    """
    return hashlib.sha256(email.strip().lower().encode("utf-8")).hexdigest()[:24]


def content_id(obj: Any) -> str:
    """A stable id for an event the provider gives none: a digest of its content."""
    canonical = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:40]
