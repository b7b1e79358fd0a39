"""Mailgun: HMAC-SHA256 of timestamp + token under the webhook signing key; tokens are
single-use."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable

import pytest
from starlette.testclient import TestClient

from newsletter.models import SubscriberStatus
from newsletter.store import Store

from .conftest import (
    add_delivery,
    add_subscriber,
    delivery_event,
    mailgun_call,
    mailgun_failed,
    webhook_rows,
)

KEY = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0"
ENV = "TEST_MAILGUN_KEY"
MakeClient = Callable[..., TestClient]


@pytest.fixture
def client(make_store_client: MakeClient) -> TestClient:
    return make_store_client({"mailgun": {"signing_key_env": ENV}}, {ENV: KEY})


def test_permanent_failure_is_a_hard_bounce_applied_once(client: TestClient, store: Store) -> None:
    sub = add_subscriber(store, "ana@example.org")
    delivery = add_delivery(store, sub, "20261130090000.1.ABC@mg.cluster.example.org")
    body = mailgun_call(KEY, mailgun_failed("ana@example.org"))

    response = client.post("/webhooks/mailgun", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["applied"] == 1
    assert store.subscribers.get(sub.id).status is SubscriberStatus.BOUNCED
    assert store.suppressions.contains("ana@example.org")
    # matched by Mailgun's message id plus the address
    assert delivery_event(store, delivery) == "hard_bounce"

    replay = client.post("/webhooks/mailgun", json=body)
    assert replay.status_code == 409


def test_reused_token_is_refused_even_for_a_new_event(client: TestClient, store: Store) -> None:
    sub = add_subscriber(store, "ana@example.org")
    first = mailgun_call(KEY, mailgun_failed("ana@example.org", "temporary"), token="t" * 50)
    assert client.post("/webhooks/mailgun", json=first).status_code == 200
    second = mailgun_call(KEY, mailgun_failed("ana@example.org"), token="t" * 50)
    response = client.post("/webhooks/mailgun", json=second)
    assert response.status_code == 409
    assert store.subscribers.get(sub.id).status is SubscriberStatus.ACTIVE


def test_wrong_key_old_timestamp_and_missing_signature(client: TestClient, store: Store) -> None:
    sub = add_subscriber(store, "ana@example.org")
    wrong = mailgun_call("key-someone-else", mailgun_failed("ana@example.org"))
    assert client.post("/webhooks/mailgun", json=wrong).status_code == 401
    old = mailgun_call(KEY, mailgun_failed("ana@example.org"), at=time.time() - 3600)
    assert client.post("/webhooks/mailgun", json=old).status_code == 409
    unsigned = {"event-data": mailgun_failed("ana@example.org")}
    assert client.post("/webhooks/mailgun", json=unsigned).status_code == 401
    body = mailgun_call(KEY, mailgun_failed("ana@example.org"))
    sig = body["signature"]["signature"]
    body["signature"]["signature"] = sig[:-1] + ("1" if sig.endswith("0") else "0")
    assert client.post("/webhooks/mailgun", json=body).status_code == 401
    assert store.subscribers.get(sub.id).status is SubscriberStatus.ACTIVE
    assert not store.suppressions.contains("ana@example.org")


def test_complaint_and_unsubscribe_with_user_variables(client: TestClient, store: Store) -> None:
    ana = add_subscriber(store, "ana@example.org")
    ivo = add_subscriber(store, "ivo@example.org", "Ivo Dimov")
    delivery = add_delivery(store, ana)
    complained = mailgun_failed("ana@example.org")
    complained.update(event="complained", **{"user-variables": {"delivery_id": str(delivery)}})
    unsubscribed = mailgun_failed("ivo@example.org")
    unsubscribed.update(event="unsubscribed")
    for data in (complained, unsubscribed):
        response = client.post("/webhooks/mailgun", json=mailgun_call(KEY, data))
        assert response.json()["applied"] == 1
    assert store.subscribers.get(ana.id).status is SubscriberStatus.COMPLAINED
    assert store.subscribers.get(ivo.id).status is SubscriberStatus.UNSUBSCRIBED
    assert delivery_event(store, delivery) == "complaint"


def test_not_json_and_wrong_content_type(client: TestClient, store: Store) -> None:
    body = json.dumps(mailgun_call(KEY, mailgun_failed("ana@example.org")))
    form = client.post(
        "/webhooks/mailgun",
        content=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert form.status_code == 415
    broken = client.post(
        "/webhooks/mailgun", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert broken.status_code == 400
    assert webhook_rows(store) == 0


def test_a_signed_nan_timestamp_is_not_fresh(client: TestClient, store: Store) -> None:
    """``float("nan")`` parses and compares false both ways; it must not pass as fresh."""
    sub = add_subscriber(store, "ana@example.org")
    body = mailgun_call(KEY, mailgun_failed("ana@example.org"))
    token = body["signature"]["token"]
    digest = hmac.new(KEY.encode(), ("nan" + token).encode(), hashlib.sha256).hexdigest()
    body["signature"].update(timestamp="nan", signature=digest)
    assert client.post("/webhooks/mailgun", json=body).status_code == 409
    assert store.subscribers.get(sub.id).status is SubscriberStatus.ACTIVE
