"""Authentic but odd bodies: every parser either returns events or raises PayloadError (a
400), never anything else (a 500). Shapes are generated around each provider's real keys."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from newsletter.send.providers.events import brevo, mailgun, postmark, resend, sendgrid, ses
from newsletter.send.providers.events.base import PayloadError
from newsletter.send.providers.events.model import Event, EventKind, from_iso

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)

# the keys the parsers look at, so generated objects reach the interesting branches
KEYS = [
    "email", "event", "type", "reason", "sg_event_id", "sg_message_id", "timestamp",
    "smtp-id", "edition_id", "subscriber_id", "delivery_id", "recipient", "id", "severity",
    "message", "headers", "message-id", "user-variables", "delivery-status", "RecordType",
    "ID", "Type", "Email", "Recipient", "MessageID", "Metadata", "BouncedAt",
    "SuppressSending", "SuppressionReason", "X-Mailin-custom", "ts_event", "data", "to",
    "tags", "bounce", "suppressed", "unsubscribed", "created_at", "email_id",
    "notificationType", "eventType", "mail", "bouncedRecipients", "bounceType",
    "complaint", "complainedRecipients", "delivery", "recipients", "subscription",
    "newTopicPreferences", "unsubscribeAll", "commonHeaders", "messageId", "destination",
    "emailAddress", "feedbackId", "name", "value",
]  # fmt: skip
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["bounce", "failed", "permanent", "Permanent", "Bounce", "a@example.org",
                     "email.bounced", "contact.updated", "hard_bounce", "2026-11-30T09:00:00Z",
                     "<nl.1.2.abcdefabcdef@example.org>", "{", "edition_id=1;x"]),
    st.text(max_size=8),
)  # fmt: skip
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=6)
    ),
    max_leaves=20,
)

PARSERS: dict[str, Callable[[Any], list[Event]]] = {
    "sendgrid": lambda body: sendgrid.parse(body, NOW),
    "mailgun": lambda body: mailgun.parse(body if isinstance(body, dict) else {}, NOW),
    "ses": lambda body: ses.parse(json.dumps(body), "sns-1", NOW),
    "postmark": lambda body: postmark.parse(body, NOW),
    "brevo": lambda body: brevo.parse(body, NOW),
    "resend": lambda body: resend.parse(body, "msg_1", NOW),
}


@pytest.mark.parametrize("provider", sorted(PARSERS))
def test_odd_bodies_are_events_or_payload_errors(provider: str) -> None:
    parse = PARSERS[provider]

    @settings(max_examples=60, derandomize=True, database=None, deadline=None)
    @given(json_values)
    def check(body: Any) -> None:
        try:
            events = parse(body)
        except PayloadError:
            return
        for event in events:
            assert isinstance(event.email, str) and event.email
            assert isinstance(event.event_id, str) and event.event_id
            assert event.kind in EventKind
            assert event.timestamp.tzinfo is not None

    check()


def test_documented_examples_parse_to_the_expected_kinds() -> None:
    mailgun_temp = {
        "event-data": {
            "event": "failed",
            "severity": "temporary",
            "id": "x",
            "recipient": "a@example.org",
            "timestamp": 1796032800.5,
        }
    }
    assert [e.kind for e in mailgun.parse(mailgun_temp, NOW)] == [EventKind.SOFT_BOUNCE]
    dropped = [
        {
            "email": "a@example.org",
            "event": "dropped",
            "reason": "Bounced Address",
            "sg_event_id": "e1",
            "timestamp": 1796032800,
        }
    ]
    assert [e.kind for e in sendgrid.parse(dropped, NOW)] == [EventKind.HARD_BOUNCE]
    assert brevo.parse_custom('{"edition_id": 3, "subscriber_id": "7"}') == {
        "edition_id": "3",
        "subscriber_id": "7",
    }
    assert brevo.parse_custom("edition_id=3|subscriber_id=7") == {
        "edition_id": "3",
        "subscriber_id": "7",
    }
    # Postmark's 7-digit fractions and offsets
    assert from_iso("2014-08-01T13:28:10.2735393-04:00", NOW) == datetime(
        2014, 8, 1, 17, 28, 10, 273539, tzinfo=UTC
    )


def test_per_recipient_event_ids_hold_no_address() -> None:
    """Event ids outlive an erasure in webhook_events: they must not carry the address."""
    addresses = ["Ana.Petrova@example.org", "ivo@example.org"]
    note = {
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": "Permanent",
            "feedbackId": "fb-1",
            "bouncedRecipients": [{"emailAddress": a} for a in addresses],
        },
        "mail": {"messageId": "ses-1"},
    }
    body = {"type": "email.bounced", "data": {"to": addresses, "bounce": {"type": "Permanent"}}}
    for events in (ses.parse(json.dumps(note), "sns-1", NOW), resend.parse(body, "msg_1", NOW)):
        ids = [e.event_id for e in events]
        assert len(set(ids)) == 2 and [e.email for e in events] == addresses
        for event_id in ids:
            assert "@" not in event_id and "petrova" not in event_id.lower()
    # the same recipient in another notification still gets its own id
    again = ses.parse(
        json.dumps({**note, "bounce": {**note["bounce"], "feedbackId": "fb-2"}}), "sns-2", NOW
    )
    assert {e.event_id for e in again}.isdisjoint(
        e.event_id for e in ses.parse(json.dumps(note), "sns-1", NOW)
    )
