"""Postmark webhooks (one JSON record per call, ``RecordType`` says which).

Bounce records carry ``Type`` (HardBounce, SoftBounce, Transient, SpamComplaint,
Unsubscribe, ...) and an ``ID``; Delivery and SubscriptionChange records have no id of their
own, so a digest of the record is used. ``Metadata`` sent with the message comes back as is.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from newsletter.send.providers.events.base import PayloadError
from newsletter.send.providers.events.model import Event, EventKind, content_id, from_iso, refs
from newsletter.send.providers.events.shared_secret import SharedSecretVerifier

__all__ = ["PostmarkVerifier", "parse"]

_BOUNCE_TYPES = {
    "HardBounce": EventKind.HARD_BOUNCE,
    "BadEmailAddress": EventKind.HARD_BOUNCE,
    "ManuallyDeactivated": EventKind.HARD_BOUNCE,
    "SoftBounce": EventKind.SOFT_BOUNCE,
    "Transient": EventKind.SOFT_BOUNCE,
    "DnsError": EventKind.SOFT_BOUNCE,
    "Blocked": EventKind.SOFT_BOUNCE,
    "SpamNotification": EventKind.SOFT_BOUNCE,
    "SpamComplaint": EventKind.COMPLAINT,
    "Unsubscribe": EventKind.UNSUBSCRIBE,
}
_SUPPRESSION_REASONS = {
    "HardBounce": EventKind.HARD_BOUNCE,
    "SpamComplaint": EventKind.COMPLAINT,
    "ManualSuppression": EventKind.UNSUBSCRIBE,
}


def _classify(record: dict[str, Any]) -> tuple[EventKind, str, str | None, Any]:
    """(kind, detail, address, time field) of one record."""
    kind = record.get("RecordType")
    if kind in ("Bounce", "SpamComplaint"):
        bounce_type = str(record.get("Type", ""))
        event_kind = _BOUNCE_TYPES.get(bounce_type, EventKind.OTHER)
        if kind == "SpamComplaint":
            event_kind = EventKind.COMPLAINT
        return (
            event_kind,
            f"{kind} {bounce_type}".strip(),
            record.get("Email"),
            record.get("BouncedAt"),
        )
    if kind == "Delivery":
        return EventKind.DELIVERED, "Delivery", record.get("Recipient"), record.get("DeliveredAt")
    if kind == "SubscriptionChange":
        reason = str(record.get("SuppressionReason", ""))
        event_kind = EventKind.OTHER
        if record.get("SuppressSending") is True:
            event_kind = _SUPPRESSION_REASONS.get(reason, EventKind.UNSUBSCRIBE)
        return (
            event_kind,
            f"SubscriptionChange {reason}".strip(),
            record.get("Recipient"),
            record.get("ChangedAt"),
        )
    if kind == "Open":
        return EventKind.OPENED, "Open", record.get("Recipient"), record.get("ReceivedAt")
    if kind == "Click":
        return EventKind.CLICKED, "Click", record.get("Recipient"), record.get("ReceivedAt")
    address = record.get("Recipient") or record.get("Email")
    return EventKind.OTHER, str(kind), address, record.get("ReceivedAt")


def parse(body: Any, now: datetime) -> list[Event]:
    """The event in one Postmark webhook call."""
    if not isinstance(body, dict) or not isinstance(body.get("RecordType"), str):
        raise PayloadError("Postmark posts one JSON object with a RecordType")
    kind, detail, address, when = _classify(body)
    if not isinstance(address, str) or not address:
        raise PayloadError(f"Postmark {body['RecordType']} record without a recipient address")
    has_id = body.get("ID") is not None and body["RecordType"] in ("Bounce", "SpamComplaint")
    event_id = f"{body['RecordType']}:{body['ID']}" if has_id else content_id(body)
    message_id = body.get("MessageID") if isinstance(body.get("MessageID"), str) else None
    metadata = body.get("Metadata") if isinstance(body.get("Metadata"), dict) else None
    ids = refs(metadata)
    return [
        Event(
            provider="postmark",
            kind=kind,
            email=address,
            event_id=event_id,
            timestamp=from_iso(when, now),
            provider_message_id=message_id,
            **ids,
            detail=detail[:200],
        )
    ]


class PostmarkVerifier(SharedSecretVerifier):
    """Postmark: shared-secret auth, one record per call."""

    name = "postmark"

    def parse(self, body: Any, now: datetime) -> list[Event]:
        """The Postmark record in ``body``."""
        return parse(body, now)
