"""Resend: Svix signatures (``v1,`` base64 HMAC-SHA256 of ``id.timestamp.body`` under the
base64-decoded ``whsec_`` secret), a 5 minute tolerance, svix-id as the replay key."""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Callable
from typing import Any

import pytest
from starlette.testclient import TestClient

from newsletter.errors import ConfigError
from newsletter.models import SubscriberStatus
from newsletter.send.providers.events.base import ReplayError, SignatureError
from newsletter.store import Store
from newsletter.web.webhooks import Verifier

from .conftest import (
    add_delivery,
    add_subscriber,
    call,
    delivery_event,
    svix_headers,
    webhook_rows,
)

SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
MakeClient = Callable[..., TestClient]


@pytest.fixture
def client(make_store_client: MakeClient) -> TestClient:
    return make_store_client({"resend": {"secret_env": "RESEND_SECRET"}}, {"RESEND_SECRET": SECRET})


def resend_bounce(email: str, bounce_type: str = "Permanent", **data: Any) -> bytes:
    """An ``email.bounced`` payload as in Resend's webhook reference."""
    return json.dumps(
        {
            "type": "email.bounced",
            "created_at": "2026-11-30T09:00:00.000Z",
            "data": {
                "email_id": "56761188-7520-42d8-8898-ff6fc54ce618",
                "created_at": "2026-11-30T08:59:00.000Z",
                "from": "Test Energy Cluster <news@cluster.example.org>",
                "to": [email],
                "subject": "Weekly digest",
                "bounce": {
                    "diagnosticCode": ["smtp; 550 5.1.1 user unknown"],
                    "message": "The recipient's email provider sent a hard bounce message.",
                    "subType": "General",
                    "type": bounce_type,
                },
                **data,
            },
        }
    ).encode()


def test_signed_bounce_applies_once(client: TestClient, store: Store) -> None:
    sub = add_subscriber(store, "ana@example.org")
    delivery = add_delivery(store, sub, "56761188-7520-42d8-8898-ff6fc54ce618")
    body = resend_bounce("ana@example.org", tags={"delivery_id": str(delivery)})
    headers = svix_headers(SECRET, body)
    response = client.post("/webhooks/resend", content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert store.subscribers.get(sub.id).status is SubscriberStatus.BOUNCED
    assert delivery_event(store, delivery) == "hard_bounce"
    assert client.post("/webhooks/resend", content=body, headers=headers).status_code == 409


def test_any_of_several_signatures_may_match(client: TestClient, store: Store) -> None:
    sub = add_subscriber(store, "ana@example.org")
    body = resend_bounce("ana@example.org")
    headers = svix_headers(SECRET, body)
    headers["svix-signature"] = "v1,b2xkLXNlY3JldC1zaWduYXR1cmU= " + headers["svix-signature"]
    assert client.post("/webhooks/resend", content=body, headers=headers).status_code == 200
    assert store.subscribers.get(sub.id).status is SubscriberStatus.BOUNCED


def test_bad_signatures_and_stale_timestamps_are_refused(
    make_verifier: Callable[..., Verifier],
) -> None:
    verifier = make_verifier("resend", {"secret_env": "RESEND_SECRET"}, {"RESEND_SECRET": SECRET})
    body = resend_bounce("ana@example.org")
    headers = svix_headers(SECRET, body)
    assert len(verifier.verify(call(body, headers))) == 1
    other_secret = "whsec_" + base64.b64encode(b"x" * 24).decode()
    bad: list[tuple[bytes, dict[str, str]]] = [
        (body + b" ", headers),
        (body, {**headers, "svix-id": "msg_other"}),
        (body, {**headers, "svix-timestamp": str(int(headers["svix-timestamp"]) + 1)}),
        (body, {**headers, "svix-signature": headers["svix-signature"].replace("v1,", "v2,")}),
        (body, {k: v for k, v in headers.items() if k != "svix-signature"}),
        (body, svix_headers(other_secret, body)),
    ]
    for changed_body, changed_headers in bad:
        with pytest.raises(SignatureError):
            verifier.verify(call(changed_body, changed_headers))
    for offset in (-6 * 60, 6 * 60):
        with pytest.raises(ReplayError):
            verifier.verify(call(body, svix_headers(SECRET, body, at=time.time() + offset)))


def test_bad_signature_over_http_is_401_and_changes_nothing(
    client: TestClient, store: Store
) -> None:
    sub = add_subscriber(store, "ana@example.org")
    body = resend_bounce("ana@example.org")
    headers = svix_headers(SECRET, body)
    assert client.post("/webhooks/resend", content=body + b" ", headers=headers).status_code == 401
    stale = svix_headers(SECRET, body, at=time.time() - 6 * 60)
    assert client.post("/webhooks/resend", content=body, headers=stale).status_code == 409
    assert store.subscribers.get(sub.id).status is SubscriberStatus.ACTIVE
    assert not store.suppressions.contains("ana@example.org")
    assert webhook_rows(store) == 0


def test_transient_bounce_is_soft_and_contact_unsubscribe_applies(
    client: TestClient, store: Store
) -> None:
    sub = add_subscriber(store, "ana@example.org")
    body = resend_bounce("ana@example.org", "Transient")
    assert (
        client.post("/webhooks/resend", content=body, headers=svix_headers(SECRET, body)).json()[
            "applied"
        ]
        == 1
    )
    assert store.subscribers.get(sub.id).status is SubscriberStatus.ACTIVE
    contact = json.dumps(
        {
            "type": "contact.updated",
            "created_at": "2026-11-30T09:05:00.000Z",
            "data": {
                "id": "e169aa45-1ecf-4183-9955-b1499d5701d3",
                "created_at": "2026-10-01T00:00:00.000Z",
                "updated_at": "2026-11-30T09:05:00.000Z",
                "email": "ana@example.org",
                "unsubscribed": True,
            },
        }
    ).encode()
    response = client.post(
        "/webhooks/resend", content=contact, headers=svix_headers(SECRET, contact)
    )
    assert response.status_code == 200
    assert store.subscribers.get(sub.id).status is SubscriberStatus.UNSUBSCRIBED


def test_missing_or_malformed_secret_fails_at_startup(make_store_client: MakeClient) -> None:
    with pytest.raises(ConfigError, match=r"webhooks\.resend\.secret_env: environment variable"):
        make_store_client({"resend": {"secret_env": "RESEND_SECRET"}}, {})
    with pytest.raises(ConfigError, match="whsec_"):
        make_store_client({"resend": {}}, {"RESEND_WEBHOOK_SECRET": "whsec_not base64!"})
