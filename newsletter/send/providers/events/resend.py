"""Resend webhooks, signed the Svix way.

Headers ``svix-id``, ``svix-timestamp`` (Unix seconds) and ``svix-signature``: a space
separated list of ``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``. The key is the
base64 part of the ``whsec_...`` signing secret. ``svix-id`` is kept for the same message's
retries, so a second delivery of an applied message is refused as a replay.
The body: ``{"type": "email.bounced", "created_at": ..., "data": {"email_id", "to", "tags",
"bounce": {"type": "Permanent" | "Transient" | "Undetermined"}}}``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Self

from newsletter.config.webhooks import Webhooks
from newsletter.errors import ConfigError
from newsletter.send.providers.events.base import (
    Clock,
    Deps,
    PayloadError,
    SignatureError,
    TimestampedVerifier,
    WebhookRequest,
    json_body,
    unix_time,
)
from newsletter.send.providers.events.model import (
    Event,
    EventKind,
    address_key,
    from_iso,
    obj,
    refs,
)

__all__ = ["ResendVerifier", "decode_secret", "parse", "sign"]


def decode_secret(secret: str) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` Svix signing secret."""
    try:
        return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except binascii.Error as exc:
        raise ConfigError("webhooks.resend: the signing secret is not whsec_<base64>") from exc


def sign(key: bytes, msg_id: str, timestamp: str, body: bytes) -> str:
    """The ``v1,<base64>`` signature of one message."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def _tags(value: Any) -> dict[str, Any] | None:
    if isinstance(value, dict):
        return value
    if isinstance(value, list):  # [{"name": ..., "value": ...}] as sent in the API call
        return {
            str(t["name"]): t.get("value") for t in value if isinstance(t, dict) and "name" in t
        }
    return None


def _classify(kind: str, data: Mapping[str, Any]) -> tuple[EventKind, str]:
    if kind == "email.bounced":
        bounce = obj(data.get("bounce"))
        permanent = bounce.get("type") == "Permanent"
        detail = f"bounced {bounce.get('type', '')} {bounce.get('subType', '')}".strip()
        return (EventKind.HARD_BOUNCE if permanent else EventKind.SOFT_BOUNCE), detail
    if kind == "email.suppressed":
        suppressed = obj(data.get("suppressed"))
        reason = str(suppressed.get("reason", ""))
        if reason == "previous_complaint":
            return EventKind.COMPLAINT, f"suppressed {reason}"
        return EventKind.HARD_BOUNCE, f"suppressed {reason}".strip()
    simple = {
        "email.delivered": EventKind.DELIVERED,
        "email.complained": EventKind.COMPLAINT,
        "email.delivery_delayed": EventKind.DEFERRED,
        "email.opened": EventKind.OPENED,
        "email.clicked": EventKind.CLICKED,
    }
    return simple.get(kind, EventKind.OTHER), kind


def parse(body: Any, msg_id: str, now: datetime) -> list[Event]:
    """Events in one Resend webhook body (one per address in ``data.to``)."""
    if not isinstance(body, dict) or not isinstance(body.get("type"), str):
        raise PayloadError("Resend posts a JSON object with a type")
    data = body.get("data")
    if not isinstance(data, dict):
        raise PayloadError("Resend event without data")
    kind = body["type"]
    when = from_iso(body.get("created_at"), now)
    if kind == "contact.updated":
        email = data.get("email")
        if data.get("unsubscribed") is not True or not isinstance(email, str):
            return []
        return [Event("resend", EventKind.UNSUBSCRIBE, email, msg_id, when, detail=kind)]
    event_kind, detail = _classify(kind, data)
    to = data.get("to")
    if isinstance(to, str):
        to = [to]
    addresses = [a for a in to if isinstance(a, str) and a] if isinstance(to, list) else []
    email_id = data.get("email_id") if isinstance(data.get("email_id"), str) else None
    ids = refs(_tags(data.get("tags")))
    return [
        Event(
            provider="resend",
            kind=event_kind,
            email=address,
            event_id=msg_id if len(addresses) == 1 else f"{msg_id}:{address_key(address)}",
            timestamp=when,
            provider_message_id=email_id,
            **ids,
            detail=detail[:200],
        )
        for address in addresses
    ]


class ResendVerifier(TimestampedVerifier):
    """Checks the Svix signature and timestamp; ``svix-id`` is the replay key."""

    name = "resend"

    def __init__(self, key: bytes, *, tolerance: int, clock: Clock | None = None) -> None:
        super().__init__(tolerance=tolerance, clock=clock)
        self.key = key

    @classmethod
    def from_config(cls, config: Webhooks, deps: Deps) -> Self:
        """Secret from the environment variable named by ``webhooks.resend.secret_env``."""
        assert config.resend is not None
        secret = deps.secret(cls.name, "secret_env", config.resend.secret_env)
        return cls(decode_secret(secret), tolerance=config.tolerance_seconds, clock=deps.clock)

    def verify(self, request: WebhookRequest) -> list[Event]:
        """One of the ``v1`` signatures must match; the timestamp within the tolerance."""
        msg_id = request.header("svix-id")
        timestamp = request.header("svix-timestamp")
        signatures = request.header("svix-signature")
        if not msg_id or not timestamp or not signatures:
            raise SignatureError("missing svix-id, svix-timestamp or svix-signature")
        expected = sign(self.key, msg_id, timestamp, request.body).encode()
        # every candidate compared: no early exit that timing could reveal
        matched = False
        for candidate in signatures.split():
            matched |= hmac.compare_digest(expected, candidate.encode("utf-8"))
        if not matched:
            raise SignatureError("Svix signature does not match")
        now = self.fresh(unix_time(timestamp, "svix-timestamp"))
        return parse(json_body(request.body), msg_id, now)

    def replay_key(self, request: WebhookRequest) -> str | None:
        """The Svix message id."""
        return request.header("svix-id")
