"""SendGrid Signed Event Webhook.

SendGrid signs ``timestamp + raw body`` with ECDSA P-256 / SHA-256 and sends the base64 DER
signature in ``X-Twilio-Email-Event-Webhook-Signature`` and the Unix timestamp in
``X-Twilio-Email-Event-Webhook-Timestamp``. The verification key shown under Mail Settings
is a base64 DER SubjectPublicKeyInfo (a PEM block is accepted too). The body is a JSON
array of events; custom args sent with the message come back as top-level event keys.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Self

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

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
from newsletter.send.providers.events.model import Event, EventKind, from_epoch, refs

__all__ = ["SendgridVerifier", "load_public_key"]

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"

#: ``dropped`` reasons that mean the address itself is the problem
_DROPPED = {
    "bounced address": EventKind.HARD_BOUNCE,
    "invalid": EventKind.HARD_BOUNCE,
    "spam reporting address": EventKind.COMPLAINT,
    "unsubscribed address": EventKind.UNSUBSCRIBE,
}


def load_public_key(text: str) -> ec.EllipticCurvePublicKey:
    """The P-256 key from SendGrid's base64 DER verification key (or a PEM block)."""
    try:
        if "BEGIN PUBLIC KEY" in text:
            key = serialization.load_pem_public_key(text.encode("ascii"))
        else:
            key = serialization.load_der_public_key(base64.b64decode("".join(text.split())))
    except (ValueError, binascii.Error, UnicodeEncodeError) as exc:
        raise ConfigError(f"webhooks.sendgrid: the verification key is not valid: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise ConfigError("webhooks.sendgrid: the verification key is not an ECDSA P-256 key")
    return key


def _kind(event: Mapping[str, Any]) -> EventKind:
    name = str(event.get("event", ""))
    if name == "bounce":
        # "blocked" is a block by the receiving server (reputation, content): temporary
        return EventKind.SOFT_BOUNCE if event.get("type") == "blocked" else EventKind.HARD_BOUNCE
    if name == "dropped":
        reason = str(event.get("reason", "")).lower()
        return next((k for word, k in _DROPPED.items() if word in reason), EventKind.OTHER)
    return {
        "delivered": EventKind.DELIVERED,
        "spamreport": EventKind.COMPLAINT,
        "unsubscribe": EventKind.UNSUBSCRIBE,
        "group_unsubscribe": EventKind.UNSUBSCRIBE,
        "deferred": EventKind.DEFERRED,
        "open": EventKind.OPENED,
        "click": EventKind.CLICKED,
    }.get(name, EventKind.OTHER)


def _message_id(value: Any) -> str | None:
    # sg_message_id is the X-Message-Id of the send call plus a per-recipient suffix
    if not isinstance(value, str) or not value:
        return None
    text: str = value
    for marker in (".filter", ".recvd", ".geopod"):
        text = text.split(marker, 1)[0]
    return text


def parse(body: Any, now: datetime) -> list[Event]:
    """Events from a SendGrid event webhook body (a JSON array)."""
    if not isinstance(body, list):
        raise PayloadError("SendGrid posts a JSON array of events")
    events = []
    for item in body:
        if not isinstance(item, dict) or not isinstance(item.get("email"), str):
            raise PayloadError("SendGrid event without an email field")
        ids = refs(item, item.get("smtp-id"))
        event_id = item.get("sg_event_id")
        if not isinstance(event_id, str) or not event_id:
            raise PayloadError("SendGrid event without sg_event_id")
        events.append(
            Event(
                provider="sendgrid",
                kind=_kind(item),
                email=item["email"],
                event_id=event_id,
                timestamp=from_epoch(item.get("timestamp"), now),
                provider_message_id=_message_id(item.get("sg_message_id")),
                **ids,
                detail=" ".join(str(item[k]) for k in ("event", "type", "reason") if item.get(k))[
                    :200
                ],
                # SendGrid marks Apple Mail Privacy Protection prefetches
                machine=item.get("sg_machine_open") is True,
                url=item["url"] if isinstance(item.get("url"), str) else None,
            )
        )
    return events


class SendgridVerifier(TimestampedVerifier):
    """Checks the ECDSA signature and the timestamp, then parses the event array."""

    name = "sendgrid"

    def __init__(
        self, public_key: ec.EllipticCurvePublicKey, *, tolerance: int, clock: Clock | None = None
    ) -> None:
        super().__init__(tolerance=tolerance, clock=clock)
        self.public_key = public_key

    @classmethod
    def from_config(cls, config: Webhooks, deps: Deps) -> Self:
        """Key from the environment variable named by ``webhooks.sendgrid.public_key_env``."""
        assert config.sendgrid is not None
        var = config.sendgrid.public_key_env
        key = load_public_key(deps.secret(cls.name, "public_key_env", var))
        return cls(key, tolerance=config.tolerance_seconds, clock=deps.clock)

    def verify(self, request: WebhookRequest) -> list[Event]:
        """Signature over timestamp + body, timestamp within the tolerance, then the events."""
        signature = request.header(SIGNATURE_HEADER)
        timestamp = request.header(TIMESTAMP_HEADER)
        if not signature or not timestamp:
            raise SignatureError(f"missing {SIGNATURE_HEADER} or {TIMESTAMP_HEADER}")
        try:
            raw_signature = base64.b64decode(signature, validate=True)
            self.public_key.verify(
                raw_signature, timestamp.encode("utf-8") + request.body, ec.ECDSA(hashes.SHA256())
            )
        except (InvalidSignature, binascii.Error, ValueError) as exc:
            raise SignatureError("SendGrid signature does not match") from exc
        now = self.fresh(unix_time(timestamp, TIMESTAMP_HEADER))
        return parse(json_body(request.body), now)
