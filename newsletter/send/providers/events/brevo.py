"""Brevo transactional webhooks.

One JSON object per event (or an array when batching is on): ``event`` (hard_bounce,
soft_bounce, spam, unsubscribed, delivered, ...), ``email``, ``message-id``, ``ts_event``.
The ``id`` field is the webhook's id, not the event's, so an event is identified by a digest
of its content. Our ids travel in the ``X-Mailin-custom`` header, which Brevo echoes: a JSON
object, or ``key=value`` pairs separated by ``;`` or ``|``.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from newsletter.send.providers.events.base import PayloadError, json_value
from newsletter.send.providers.events.model import Event, EventKind, content_id, from_epoch, refs
from newsletter.send.providers.events.shared_secret import SharedSecretVerifier

__all__ = ["BrevoVerifier", "parse", "parse_custom"]

_KINDS = {
    "hard_bounce": EventKind.HARD_BOUNCE,
    "hardbounce": EventKind.HARD_BOUNCE,
    "invalid_email": EventKind.HARD_BOUNCE,
    "soft_bounce": EventKind.SOFT_BOUNCE,
    "softbounce": EventKind.SOFT_BOUNCE,
    "spam": EventKind.COMPLAINT,
    "unsubscribed": EventKind.UNSUBSCRIBE,
    "delivered": EventKind.DELIVERED,
    "deferred": EventKind.DEFERRED,
    "opened": EventKind.OPENED,
    "unique_opened": EventKind.OPENED,
    # Brevo reports opens its proxy detection attributes to a machine (Apple MPP) apart
    "proxy_open": EventKind.OPENED,
    "unique_proxy_open": EventKind.OPENED,
    "click": EventKind.CLICKED,
}


def parse_custom(value: Any) -> dict[str, str]:
    """Key/value pairs from an ``X-Mailin-custom`` value (JSON object or ``k=v;k=v``)."""
    if not isinstance(value, str) or not value.strip():
        return {}
    text = value.strip()
    if text.startswith("{"):
        try:
            data = json_value(text, "X-Mailin-custom")
        except PayloadError:
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}
    pairs = (part.partition("=") for part in re.split(r"[;|,]", text))
    return {k.strip(): v.strip() for k, sep, v in pairs if sep}


def _event(item: Any, now: datetime) -> Event:
    if not isinstance(item, dict):
        raise PayloadError("Brevo event is not a JSON object")
    name, email = item.get("event"), item.get("email")
    if not isinstance(name, str) or not isinstance(email, str) or not email:
        raise PayloadError("Brevo event needs event and email")
    message_id = item.get("message-id") if isinstance(item.get("message-id"), str) else None
    ids = refs(parse_custom(item.get("X-Mailin-custom")), message_id)
    when = item.get("ts_event", item.get("ts_epoch", item.get("ts")))
    reason = item.get("reason") if isinstance(item.get("reason"), str) else ""
    return Event(
        provider="brevo",
        kind=_KINDS.get(name.lower(), EventKind.OTHER),
        email=email,
        event_id=content_id(item),
        timestamp=from_epoch(when, now),
        provider_message_id=message_id,
        **ids,
        detail=f"{name} {reason}".strip()[:200],
        machine="proxy" in name.lower(),
        url=item["link"] if isinstance(item.get("link"), str) else None,
    )


def parse(body: Any, now: datetime) -> list[Event]:
    """The events in one Brevo webhook call."""
    items = body if isinstance(body, list) else [body]
    return [_event(item, now) for item in items]


class BrevoVerifier(SharedSecretVerifier):
    """Brevo: shared-secret auth (basic, bearer token or custom header)."""

    name = "brevo"

    def parse(self, body: Any, now: datetime) -> list[Event]:
        """The Brevo events in ``body``."""
        return parse(body, now)
