"""Each provider's delivered / deferred / open / click events parse into the common kinds,
with machine opens marked where the provider marks them and the clicked URL kept."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from newsletter.send.providers.events import brevo, mailgun, postmark, resend, sendgrid, ses
from newsletter.send.providers.events.model import EventKind

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
TO = "ana@example.org"


def test_sendgrid_marks_apple_privacy_opens_and_keeps_the_url() -> None:
    base = {"email": TO, "timestamp": 1764493200, "sg_message_id": "m.filter1"}
    events = sendgrid.parse(
        [
            {**base, "event": "open", "sg_event_id": "a", "sg_machine_open": True},
            {**base, "event": "open", "sg_event_id": "b", "sg_machine_open": False},
            {**base, "event": "click", "sg_event_id": "c", "url": "https://e.example.org/1"},
            {**base, "event": "deferred", "sg_event_id": "d"},
        ],
        NOW,
    )
    assert [(e.kind, e.machine) for e in events[:2]] == [
        (EventKind.OPENED, True),
        (EventKind.OPENED, False),
    ]
    assert (events[2].kind, events[2].url) == (EventKind.CLICKED, "https://e.example.org/1")
    assert events[3].kind is EventKind.DEFERRED


def test_mailgun_bot_opens_are_machine_opens() -> None:
    def one(event: str, **extra: object) -> dict[str, object]:
        return {"event-data": {"event": event, "id": event, "recipient": TO, **extra}}

    [bot] = mailgun.parse(one("opened", **{"client-info": {"bot": "apple"}}), NOW)
    [human] = mailgun.parse(one("opened", **{"client-info": {"bot": ""}}), NOW)
    [click] = mailgun.parse(one("clicked", url="https://e.example.org/2"), NOW)
    assert (bot.kind, bot.machine, human.machine) == (EventKind.OPENED, True, False)
    assert (click.kind, click.url) == (EventKind.CLICKED, "https://e.example.org/2")


def test_brevo_proxy_opens_are_machine_opens() -> None:
    def one(event: str, **extra: object) -> dict[str, object]:
        return {"event": event, "email": TO, "ts_event": 1764493200, **extra}

    kinds = [
        (e.kind, e.machine)
        for e in brevo.parse([one("opened"), one("proxy_open"), one("deferred")], NOW)
    ]
    assert kinds == [
        (EventKind.OPENED, False),
        (EventKind.OPENED, True),
        (EventKind.DEFERRED, False),
    ]
    [click] = brevo.parse(one("click", link="https://e.example.org/3"), NOW)
    assert click.url == "https://e.example.org/3"


def test_postmark_resend_and_ses_engagement_kinds() -> None:
    [opened] = postmark.parse({"RecordType": "Open", "Recipient": TO, "MessageID": "x"}, NOW)
    [clicked] = postmark.parse({"RecordType": "Click", "Recipient": TO, "MessageID": "y"}, NOW)
    assert (opened.kind, clicked.kind) == (EventKind.OPENED, EventKind.CLICKED)
    body = {"type": "email.delivery_delayed", "created_at": "2026-11-30T09:00:00Z"}
    [late] = resend.parse({**body, "data": {"to": [TO], "email_id": "e"}}, "msg_1", NOW)
    assert late.kind is EventKind.DEFERRED
    note = {"eventType": "Open", "mail": {"destination": [TO], "messageId": "s"}, "open": {}}
    [ses_open] = ses.parse(json.dumps(note), "sns-1", NOW)
    assert ses_open.kind is EventKind.OPENED
