"""Amazon SES notifications delivered through an SNS topic.

The SNS ``Message`` is SES's JSON: ``notificationType`` (identity notifications) or
``eventType`` (configuration-set event publishing) is Bounce, Complaint, Delivery,
Subscription, ...; one notification may name several recipients. Message tags set at send
time (``edition_id``, ``subscriber_id``) come back in ``mail.tags`` with event publishing;
otherwise our Message-ID in ``mail.commonHeaders`` identifies the delivery.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Self

from newsletter.config.webhooks import Webhooks
from newsletter.send.providers.events.base import Deps, PayloadError, json_value
from newsletter.send.providers.events.model import (
    Event,
    EventKind,
    address_key,
    from_iso,
    obj,
    refs,
)
from newsletter.send.providers.events.sns import SnsVerifier

__all__ = ["SesVerifier", "parse"]


def _recipients(block: Mapping[str, Any], key: str) -> list[str]:
    items = block.get(key)
    if not isinstance(items, list):
        return []
    out = []
    for item in items:
        address = item.get("emailAddress") if isinstance(item, dict) else item
        if isinstance(address, str) and address:
            out.append(address)
    return out


def _our_message_id(mail: Mapping[str, Any]) -> str | None:
    common = obj(mail.get("commonHeaders"))
    if isinstance(common.get("messageId"), str):
        return str(common["messageId"])
    headers = mail.get("headers")
    for header in headers if isinstance(headers, list) else []:
        if isinstance(header, dict) and str(header.get("name", "")).lower() == "message-id":
            return str(header.get("value", ""))
    return None


def _classify(kind: str, note: Mapping[str, Any]) -> tuple[EventKind, str, str, list[str]]:
    """(kind, detail, sub-object key, recipients) of one SES notification."""
    if kind == "Bounce":
        block = obj(note.get("bounce"))
        permanent = block.get("bounceType") == "Permanent"
        detail = f"{block.get('bounceType', '')} {block.get('bounceSubType', '')}".strip()
        event_kind = EventKind.HARD_BOUNCE if permanent else EventKind.SOFT_BOUNCE
        return event_kind, detail, "bounce", _recipients(block, "bouncedRecipients")
    if kind == "Complaint":
        block = obj(note.get("complaint"))
        feedback = str(block.get("complaintFeedbackType", ""))
        event_kind = EventKind.OTHER if feedback == "not-spam" else EventKind.COMPLAINT
        return event_kind, feedback, "complaint", _recipients(block, "complainedRecipients")
    if kind == "Delivery":
        block = obj(note.get("delivery"))
        return EventKind.DELIVERED, "", "delivery", _recipients(block, "recipients")
    if kind == "Subscription":
        block = obj(note.get("subscription"))
        unsubscribed = obj(block.get("newTopicPreferences")).get("unsubscribeAll") is True
        event_kind = EventKind.UNSUBSCRIBE if unsubscribed else EventKind.OTHER
        destination = _recipients(obj(note.get("mail")), "destination")
        return event_kind, "list management", "subscription", destination
    engagement = {
        "Open": (EventKind.OPENED, "open"),
        "Click": (EventKind.CLICKED, "click"),
        "DeliveryDelay": (EventKind.DEFERRED, "deliveryDelay"),
    }
    if kind in engagement:
        event_kind, key = engagement[kind]
        return event_kind, "", key, _recipients(obj(note.get("mail")), "destination")
    return EventKind.OTHER, kind, "", []


def parse(message: str, sns_message_id: str, now: datetime) -> list[Event]:
    """Events in one SES notification (one per recipient it names)."""
    note = json_value(message, "SNS Message (an Amazon SES notification)")
    if not isinstance(note, dict):
        raise PayloadError("SNS Message is not an Amazon SES notification")
    kind = note.get("eventType") or note.get("notificationType")
    if not isinstance(kind, str):
        raise PayloadError("SES notification without eventType / notificationType")
    event_kind, detail, key, recipients = _classify(kind, note)
    mail = obj(note.get("mail"))
    block = obj(note.get(key)) if key else {}
    when = from_iso(block.get("timestamp") or mail.get("timestamp"), now)
    ids = refs(obj(mail.get("tags")), _our_message_id(mail))
    base_id = block.get("feedbackId") if isinstance(block.get("feedbackId"), str) else None
    ses_id = mail.get("messageId") if isinstance(mail.get("messageId"), str) else None
    return [
        Event(
            provider="ses",
            kind=event_kind,
            email=address,
            # SES may send one notification per recipient or one for several: key by both
            event_id=f"{base_id or sns_message_id}:{address_key(address)}",
            timestamp=when,
            provider_message_id=ses_id,
            **ids,
            detail=f"{kind} {detail}".strip()[:200],
        )
        for address in recipients
    ]


class SesVerifier(SnsVerifier):
    """SNS verification with the SES notification parser."""

    name = "ses"

    @classmethod
    def from_config(cls, config: Webhooks, deps: Deps) -> Self:
        """Topics and regions from ``[webhooks.ses]`` (SNS needs no secret of ours)."""
        assert config.ses is not None
        return cls(
            config.ses.topic_arns,
            config.ses.allowed_regions(),
            tolerance=config.tolerance_seconds,
            confirm_subscriptions=config.ses.confirm_subscriptions,
            http=deps.http,
            clock=deps.clock,
        )

    def parse_message(self, message: str, message_id: str, now: datetime) -> list[Event]:
        """The SES notification in ``message``."""
        return parse(message, message_id, now)
