"""Mailgun webhooks.

Mailgun posts JSON ``{"signature": {"timestamp", "token", "signature"}, "event-data": {...}}``.
The signature is the hex HMAC-SHA256 of ``timestamp + token`` under the account's HTTP
webhook signing key. The token is a per-request nonce: a token seen before is a replay.
Variables sent with the message (``v:edition_id``) come back in ``user-variables``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Self

from newsletter.config.webhooks import Webhooks
from newsletter.send.providers.events.base import (
    Clock,
    Deps,
    PayloadError,
    SignatureError,
    TimestampedVerifier,
    WebhookRequest,
    json_body,
)
from newsletter.send.providers.events.model import Event, EventKind, from_epoch, obj, refs

__all__ = ["MailgunVerifier", "sign"]


def sign(signing_key: str, timestamp: str, token: str) -> str:
    """Mailgun's signature: hex HMAC-SHA256 of ``timestamp + token``."""
    return hmac.new(
        signing_key.encode("utf-8"), (timestamp + token).encode("utf-8"), hashlib.sha256
    ).hexdigest()


def _signature_block(body: Any) -> tuple[str, str, str]:
    block = body.get("signature") if isinstance(body, dict) else None
    if not isinstance(block, dict):
        raise SignatureError("Mailgun call without a signature object")
    parts = tuple(block.get(k) for k in ("timestamp", "token", "signature"))
    if not all(isinstance(p, str) and p for p in parts):
        raise SignatureError("Mailgun signature needs timestamp, token and signature")
    return parts  # type: ignore[return-value]


def _kind(data: Mapping[str, Any]) -> EventKind:
    name = data.get("event")
    if name == "failed":
        if data.get("severity") == "permanent":
            return EventKind.HARD_BOUNCE
        return EventKind.SOFT_BOUNCE
    return {
        "delivered": EventKind.DELIVERED,
        "complained": EventKind.COMPLAINT,
        "unsubscribed": EventKind.UNSUBSCRIBE,
        "opened": EventKind.OPENED,
        "clicked": EventKind.CLICKED,
    }.get(str(name), EventKind.OTHER)


def parse(body: Any, now: datetime) -> list[Event]:
    """The event in a Mailgun webhook body."""
    data = body.get("event-data")
    if not isinstance(data, dict):
        raise PayloadError("Mailgun call without event-data")
    email, event_id = data.get("recipient"), data.get("id")
    if not isinstance(email, str) or not isinstance(event_id, str) or not event_id:
        raise PayloadError("Mailgun event-data needs recipient and id")
    message = data.get("message")
    headers = message.get("headers") if isinstance(message, dict) else None
    message_id = headers.get("message-id") if isinstance(headers, dict) else None
    variables = data.get("user-variables")
    ids = refs(
        variables if isinstance(variables, dict) else None,
        message_id if isinstance(message_id, str) else None,
    )
    status = data.get("delivery-status")
    description = ""
    if isinstance(status, dict):
        description = status.get("description") or status.get("message") or ""
    return [
        Event(
            provider="mailgun",
            kind=_kind(data),
            email=email,
            event_id=event_id,
            timestamp=from_epoch(data.get("timestamp"), now),
            provider_message_id=message_id if isinstance(message_id, str) else None,
            **ids,
            detail=" ".join(
                str(x) for x in (data.get("event"), data.get("severity"), description) if x
            )[:200],
            # Mailgun names the automated system behind an engagement (apple, gmail)
            machine=bool(obj(data.get("client-info")).get("bot")),
            url=data["url"] if isinstance(data.get("url"), str) else None,
        )
    ]


class MailgunVerifier(TimestampedVerifier):
    """Checks the HMAC and the timestamp; the token is the request's replay key."""

    name = "mailgun"

    def __init__(self, signing_key: str, *, tolerance: int, clock: Clock | None = None) -> None:
        super().__init__(tolerance=tolerance, clock=clock)
        self.signing_key = signing_key

    @classmethod
    def from_config(cls, config: Webhooks, deps: Deps) -> Self:
        """Key from the environment variable named by ``webhooks.mailgun.signing_key_env``."""
        assert config.mailgun is not None
        key = deps.secret(cls.name, "signing_key_env", config.mailgun.signing_key_env)
        return cls(key, tolerance=config.tolerance_seconds, clock=deps.clock)

    def verify(self, request: WebhookRequest) -> list[Event]:
        """HMAC of timestamp + token, timestamp within the tolerance, then the event."""
        body = json_body(request.body)
        timestamp, token, signature = _signature_block(body)
        expected = sign(self.signing_key, timestamp, token)
        if not hmac.compare_digest(expected.encode("ascii"), signature.lower().encode("utf-8")):
            raise SignatureError("Mailgun signature does not match")
        try:
            signed_at = float(timestamp)
        except ValueError as exc:
            raise SignatureError("Mailgun timestamp is not a number") from exc
        return parse(body, self.fresh(signed_at))

    def replay_key(self, request: WebhookRequest) -> str | None:
        """The signature token: Mailgun makes a new one for every call."""
        return _signature_block(json_body(request.body))[1]
