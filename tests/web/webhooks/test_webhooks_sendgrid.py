"""SendGrid Signed Event Webhook: ECDSA P-256 over timestamp + body, against a key the test
generates."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.testclient import TestClient

from newsletter.models import SubscriberStatus
from newsletter.send.providers.events.base import ReplayError, SignatureError
from newsletter.store import Store
from newsletter.web.webhooks import Verifier

from .conftest import (
    accepted,
    add_delivery,
    add_subscriber,
    call,
    delivery_event,
    edition_of,
    sendgrid_call,
    sendgrid_event,
    sendgrid_sign,
    webhook_rows,
)

ENV = "TEST_SG_KEY"
MakeClient = Callable[..., TestClient]


@pytest.fixture
def client(make_store_client: MakeClient, sendgrid_public_b64: str) -> TestClient:
    return make_store_client({"sendgrid": {"public_key_env": ENV}}, {ENV: sendgrid_public_b64})


def test_signed_bounce_is_applied_once_and_marks_the_delivery(
    client: TestClient, store: Store, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    sub = add_subscriber(store, "ana@example.org")
    delivery = add_delivery(store, sub)
    event = sendgrid_event(
        "Ana@Example.org",
        "bounce",
        type="bounce",
        reason="550 5.1.1 user unknown",
        edition_id=str(edition_of(store, delivery)),
        subscriber_id=str(sub.id),
    )
    body, headers = sendgrid_call(ec_key, [event])

    first = client.post("/webhooks/sendgrid", content=body, headers=headers)
    assert first.status_code == 200, first.text
    assert first.json() == accepted(applied=1)
    assert store.subscribers.get(sub.id).status is SubscriberStatus.BOUNCED
    assert store.suppressions.contains("ana@example.org")
    assert delivery_event(store, delivery) == "hard_bounce"

    again = client.post("/webhooks/sendgrid", content=body, headers=headers)
    assert again.status_code == 409
    assert "already received" in again.json()["error"]


def test_new_events_in_a_batch_apply_and_seen_ones_are_skipped(
    client: TestClient, store: Store, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    ana = add_subscriber(store, "ana@example.org")
    ivo = add_subscriber(store, "ivo@example.org", "Ivo Dimov")
    spam = sendgrid_event("ana@example.org", "spamreport")
    body, headers = sendgrid_call(ec_key, [spam])
    assert client.post("/webhooks/sendgrid", content=body, headers=headers).status_code == 200

    unsubscribe = sendgrid_event("ivo@example.org", "group_unsubscribe", asm_group_id=1)
    opened = sendgrid_event("ivo@example.org", "open")
    body, headers = sendgrid_call(ec_key, [spam, unsubscribe, opened])
    response = client.post("/webhooks/sendgrid", content=body, headers=headers)
    assert response.json() == accepted(applied=1, duplicates=1, ignored=1)
    assert store.subscribers.get(ana.id).status is SubscriberStatus.COMPLAINED
    assert store.subscribers.get(ivo.id).status is SubscriberStatus.UNSUBSCRIBED


def test_bad_signatures_and_stale_timestamps_are_refused(
    make_verifier: Callable[..., Verifier],
    ec_key: ec.EllipticCurvePrivateKey,
    sendgrid_public_b64: str,
) -> None:
    verifier = make_verifier("sendgrid", {"public_key_env": ENV}, {ENV: sendgrid_public_b64})
    body, headers = sendgrid_call(ec_key, [sendgrid_event("ana@example.org")])
    assert len(verifier.verify(call(body, headers))) == 1
    stamp = "X-Twilio-Email-Event-Webhook-Timestamp"
    bad: list[tuple[bytes, dict[str, str]]] = [
        (body.replace(b"bounce", b"bounca"), headers),
        (body, {**headers, stamp: str(int(headers[stamp]) + 1)}),
        (body, {k: v for k, v in headers.items() if "Signature" not in k}),
        (body, {**headers, "X-Twilio-Email-Event-Webhook-Signature": "bm90IGEgc2ln"}),
        (body, {**headers, "X-Twilio-Email-Event-Webhook-Signature": "%%%"}),
        sendgrid_call(ec.generate_private_key(ec.SECP256R1()), [sendgrid_event("a@example.org")]),
    ]
    for tampered_body, tampered_headers in bad:
        with pytest.raises(SignatureError):
            verifier.verify(call(tampered_body, tampered_headers))
    for offset in (-301, 301):
        old_body, old_headers = sendgrid_call(ec_key, [], at=time.time() + offset)
        with pytest.raises(ReplayError, match="tolerance 300 s"):
            verifier.verify(call(old_body, old_headers))


def test_bad_signature_over_http_is_401_and_changes_nothing(
    client: TestClient, store: Store, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    sub = add_subscriber(store, "ana@example.org")
    body, headers = sendgrid_call(ec_key, [sendgrid_event("ana@example.org")])
    response = client.post("/webhooks/sendgrid", content=body + b" ", headers=headers)
    assert response.status_code == 401
    assert store.subscribers.get(sub.id).status is SubscriberStatus.ACTIVE
    assert not store.suppressions.contains("ana@example.org")
    assert webhook_rows(store) == 0
    old_body, old_headers = sendgrid_call(ec_key, [sendgrid_event("ana@example.org")], at=1)
    assert (
        client.post("/webhooks/sendgrid", content=old_body, headers=old_headers).status_code == 409
    )
    assert webhook_rows(store) == 0


def test_blocked_bounce_is_soft_and_unknown_addresses_are_ignored(
    client: TestClient, store: Store, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    sub = add_subscriber(store, "ana@example.org")
    events = [
        sendgrid_event("ana@example.org", "bounce", type="blocked"),
        sendgrid_event("nobody@example.com", "bounce", type="bounce"),
    ]
    body, headers = sendgrid_call(ec_key, events)
    response = client.post("/webhooks/sendgrid", content=body, headers=headers)
    assert response.json() == accepted(applied=1, unknown=1)
    assert store.subscribers.get(sub.id).status is SubscriberStatus.ACTIVE
    assert not store.suppressions.contains("nobody@example.com")


def test_malformed_signed_body_is_400_and_an_empty_batch_is_fine(
    client: TestClient, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    body = b'{"not": "an array"}'
    response = client.post("/webhooks/sendgrid", content=body, headers=sendgrid_sign(ec_key, body))
    assert response.status_code == 400
    assert "array" in response.json()["error"]
    body, headers = sendgrid_call(ec_key, [])
    response = client.post("/webhooks/sendgrid", content=body, headers=headers)
    assert response.json() == accepted()
