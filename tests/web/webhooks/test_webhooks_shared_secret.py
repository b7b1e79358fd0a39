"""Postmark and Brevo do not sign: basic auth, bearer token, secret header or query token."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest
from starlette.testclient import TestClient

from newsletter.models import SubscriberStatus
from newsletter.store import Store

from .conftest import (
    accepted,
    add_delivery,
    add_subscriber,
    delivery_event,
    edition_of,
    webhook_rows,
)

SECRET = "s3cr3t-Webhook-Passw0rd"
MakeClient = Callable[..., TestClient]


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def postmark_bounce(email: str, bounce_type: str = "HardBounce", **extra: Any) -> dict[str, Any]:
    """A Postmark bounce webhook record as in Postmark's webhook docs."""
    return {
        "RecordType": "Bounce",
        "MessageStream": "broadcast",
        "ID": 4323372036854775807,
        "Type": bounce_type,
        "TypeCode": 1,
        "Name": "Hard bounce",
        "Tag": "members",
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "Metadata": {},
        "ServerID": 23,
        "Description": "The server was unable to deliver your message (ex: unknown user).",
        "Details": "Test bounce details",
        "Email": email,
        "From": "news@cluster.example.org",
        "BouncedAt": "2026-11-30T08:28:10.2735393-04:00",
        "DumpAvailable": True,
        "Inactive": True,
        "CanActivate": True,
        "Subject": "Weekly digest",
        **extra,
    }


@pytest.fixture
def postmark(make_store_client: MakeClient) -> TestClient:
    table = {"postmark": {"auth": "basic", "username": "postmark", "secret_env": "PM_SECRET"}}
    return make_store_client(table, {"PM_SECRET": SECRET})


def test_postmark_basic_auth_hard_bounce_applies_once(postmark: TestClient, store: Store) -> None:
    sub = add_subscriber(store, "ana@example.org")
    delivery = add_delivery(store, sub)
    record = postmark_bounce(
        "ana@example.org",
        Metadata={"edition_id": str(edition_of(store, delivery)), "subscriber_id": str(sub.id)},
    )
    response = postmark.post("/webhooks/postmark", json=record, headers=basic("postmark", SECRET))
    assert response.status_code == 200, response.text
    assert store.subscribers.get(sub.id).status is SubscriberStatus.BOUNCED
    assert delivery_event(store, delivery) == "hard_bounce"
    again = postmark.post("/webhooks/postmark", json=record, headers=basic("postmark", SECRET))
    assert again.status_code == 409


def test_postmark_without_the_right_credentials_is_401(postmark: TestClient, store: Store) -> None:
    sub = add_subscriber(store, "ana@example.org")
    wrong: list[dict[str, str]] = [
        {},
        basic("postmark", SECRET + "x"),
        basic("someone", SECRET),
        basic("postmark", ""),
        {"Authorization": "Basic not-base64!"},
        {"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()},
        {"Authorization": f"Bearer {SECRET}"},
    ]
    for headers in wrong:
        response = postmark.post(
            "/webhooks/postmark", json=postmark_bounce("ana@example.org"), headers=headers
        )
        assert response.status_code == 401, headers
        assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert store.subscribers.get(sub.id).status is SubscriberStatus.ACTIVE
    assert webhook_rows(store) == 0


def test_postmark_complaint_unsubscribe_and_delivery_records(
    postmark: TestClient, store: Store
) -> None:
    ana = add_subscriber(store, "ana@example.org")
    ivo = add_subscriber(store, "ivo@example.org", "Ivo Dimov")
    auth = basic("postmark", SECRET)
    complaint = postmark_bounce("ana@example.org", "SpamComplaint", RecordType="SpamComplaint")
    change = {
        "RecordType": "SubscriptionChange",
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79484",
        "ServerID": 23,
        "MessageStream": "broadcast",
        "ChangedAt": "2026-11-30T09:01:01.00Z",
        "Recipient": "ivo@example.org",
        "Origin": "Recipient",
        "SuppressSending": True,
        "SuppressionReason": "ManualSuppression",
        "Tag": "members",
        "Metadata": {},
    }
    delivered = {
        "RecordType": "Delivery",
        "ServerID": 23,
        "MessageStream": "broadcast",
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79485",
        "Recipient": "nobody@example.com",
        "Tag": "members",
        "DeliveredAt": "2026-11-30T09:02:00Z",
        "Details": "Test delivery webhook details",
        "Metadata": {},
    }
    results = [
        postmark.post("/webhooks/postmark", json=r, headers=auth)
        for r in (complaint, change, delivered)
    ]
    assert [r.status_code for r in results] == [200, 200, 200]
    assert results[2].json()["unknown"] == 1
    assert store.subscribers.get(ana.id).status is SubscriberStatus.COMPLAINED
    assert store.subscribers.get(ivo.id).status is SubscriberStatus.UNSUBSCRIBED
    assert store.suppressions.contains("ivo@example.org")
    # a record without an id is identified by its content: the same one again is a replay
    assert postmark.post("/webhooks/postmark", json=change, headers=auth).status_code == 409


def brevo_event(email: str, event: str = "hard_bounce", **extra: Any) -> dict[str, Any]:
    """A Brevo transactional webhook event as in Brevo's developer docs."""
    return {
        "event": event,
        "email": email,
        "id": 123456,
        "date": "2026-11-30 10:00:00",
        "ts": 1796032800,
        "message-id": "<202611300900.11111111111@smtp-relay.mailin.fr>",
        "ts_event": 1796032800,
        "subject": "Weekly digest",
        "tag": "members",
        "sending_ip": "185.41.28.109",
        "ts_epoch": 1796032800000,
        "tags": ["edition-3"],
        "reason": "550 5.1.1 user unknown",
        **extra,
    }


def test_brevo_token_schemes(make_store_client: MakeClient, store: Store) -> None:
    schemes: list[tuple[str, dict[str, str], dict[str, Any], dict[str, Any]]] = [
        (
            "ana@example.org",
            {"auth": "bearer"},
            {"headers": {"Authorization": f"Bearer {SECRET}"}},
            {"headers": {"Authorization": "Bearer guess"}},
        ),
        (
            "ivo@example.org",
            {"auth": "header", "header": "X-Brevo-Token"},
            {"headers": {"X-Brevo-Token": SECRET}},
            {"headers": {"X-Other-Token": SECRET}},
        ),
        (
            "eva@example.org",
            {"auth": "query", "query_param": "key"},
            {"params": {"key": SECRET}},
            {"params": {"key": SECRET[:-1]}},
        ),
    ]
    for email, table, good, bad in schemes:
        client = make_store_client(
            {"brevo": {**table, "secret_env": "BREVO_SECRET"}}, {"BREVO_SECRET": SECRET}
        )
        sub = add_subscriber(store, email)
        refused = client.post("/webhooks/brevo", json=brevo_event(email), **bad)
        assert refused.status_code == 401, table
        assert "WWW-Authenticate" not in refused.headers
        assert store.subscribers.get(sub.id).status is SubscriberStatus.ACTIVE
        accepted = client.post("/webhooks/brevo", json=brevo_event(email), **good)
        assert accepted.status_code == 200, accepted.text
        assert store.subscribers.get(sub.id).status is SubscriberStatus.BOUNCED


def test_brevo_delivery_row_by_message_id_and_batched_events(
    make_store_client: MakeClient, store: Store
) -> None:
    table = {"brevo": {"auth": "header", "secret_env": "BREVO_SECRET"}}
    client = make_store_client(table, {"BREVO_SECRET": SECRET})
    ana = add_subscriber(store, "ana@example.org")
    ivo = add_subscriber(store, "ivo@example.org", "Ivo Dimov")
    delivery = add_delivery(store, ana, "<202611300900.11111111111@smtp-relay.mailin.fr>")
    batch = [
        brevo_event("ana@example.org", "spam"),
        brevo_event("ivo@example.org", "unsubscribed"),
        brevo_event("ivo@example.org", "opened"),
    ]
    response = client.post("/webhooks/brevo", json=batch, headers={"X-Webhook-Token": SECRET})
    assert response.json() == accepted(applied=2, ignored=1)
    assert delivery_event(store, delivery) == "complaint"
    assert store.subscribers.get(ana.id).status is SubscriberStatus.COMPLAINED
    assert store.subscribers.get(ivo.id).status is SubscriberStatus.UNSUBSCRIBED
