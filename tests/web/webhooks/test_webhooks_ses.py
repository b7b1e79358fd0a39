"""Amazon SES through SNS: signature versions 1 and 2 against a certificate the test makes
and serves from 127.0.0.1, the certificate-URL host check before any fetch, the topic ARN,
and subscription confirmation."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fixtures.sources.httpserver import Route, Server, serve
from starlette.testclient import TestClient

from newsletter.models import SubscriberStatus
from newsletter.send.providers.events.base import ForbiddenError, ReplayError, SignatureError
from newsletter.store import Store
from newsletter.web.webhooks import Verifier, WebhookRequest

from .conftest import (
    CERT_PATH,
    CERT_URL,
    TOPIC,
    LocalSns,
    SnsSigner,
    add_delivery,
    add_subscriber,
    call,
    delivery_event,
    edition_of,
    webhook_rows,
)

MakeClient = Callable[..., TestClient]
SUBSCRIBE_QUERY = (
    f"/?Action=ConfirmSubscription&TopicArn={TOPIC}&Token=2336412f37fb687f5d51e6e2425c464de"
)
SUBSCRIBE_URL = "https://sns.eu-central-1.amazonaws.com" + SUBSCRIBE_QUERY


@dataclass
class Sns:
    """The local stand-in for sns.eu-central-1.amazonaws.com and a client on the webhooks."""

    server: Server
    transport: LocalSns
    client: TestClient
    signer: SnsSigner

    def post(self, message: dict[str, Any], **headers: str) -> httpx.Response:
        return self.client.post(
            "/webhooks/ses",
            content=json.dumps(message),
            headers={
                "Content-Type": "text/plain; charset=UTF-8",
                "x-amz-sns-message-type": message["Type"],
                **headers,
            },
        )


@dataclass
class Local:
    """The local stand-in for sns.eu-central-1.amazonaws.com."""

    server: Server
    transport: LocalSns
    http: httpx.Client


@pytest.fixture
def local(sns_signer: SnsSigner) -> Iterator[Local]:
    routes = {
        CERT_PATH: Route(body=sns_signer.cert_pem, content_type="application/x-pem-file"),
        SUBSCRIBE_QUERY: Route(body=b"<ConfirmSubscriptionResponse/>", content_type="text/xml"),
    }
    with serve(routes) as server:
        transport = LocalSns(server.base)
        with httpx.Client(transport=transport) as http:
            yield Local(server, transport, http)


@pytest.fixture
def sns(make_store_client: MakeClient, sns_signer: SnsSigner, local: Local) -> Sns:
    client = make_store_client({"ses": {"topic_arns": [TOPIC]}}, {}, http=local.http)
    return Sns(local.server, local.transport, client, sns_signer)


@pytest.fixture
def verifier(make_verifier: Callable[..., Verifier], local: Local) -> Verifier:
    return make_verifier("ses", {"topic_arns": [TOPIC]}, {}, http=local.http)


def sns_call(message: dict[str, Any]) -> WebhookRequest:
    return call(json.dumps(message).encode(), {"Content-Type": "text/plain; charset=UTF-8"})


def notification(ses: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """An SNS Notification envelope around an SES notification (unsigned)."""
    return {
        "Type": "Notification",
        "MessageId": str(uuid.uuid4()),
        "TopicArn": TOPIC,
        "Message": json.dumps(ses),
        "Timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "SigningCertURL": CERT_URL,
        "UnsubscribeURL": "https://sns.eu-central-1.amazonaws.com/?Action=Unsubscribe&x=1",
        **fields,
    }


def ses_bounce(email: str, bounce_type: str = "Permanent", **mail: Any) -> dict[str, Any]:
    """An SES bounce notification as in the SES developer guide."""
    return {
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": bounce_type,
            "bounceSubType": "General",
            "bouncedRecipients": [
                {
                    "emailAddress": email,
                    "action": "failed",
                    "status": "5.1.1",
                    "diagnosticCode": "smtp; 550 5.1.1 user unknown",
                }
            ],
            "timestamp": "2026-11-30T08:59:38.237Z",
            "feedbackId": f"0100018c-{uuid.uuid4()}-000000",
        },
        "mail": {
            "timestamp": "2026-11-30T08:59:30.000Z",
            "source": "news@cluster.example.org",
            "messageId": "0100018c0000aaaa-bbbbcccc-dddd-eeee-ffff-000011112222-000000",
            "destination": [email],
            **mail,
        },
    }


def test_signed_bounces_v1_and_v2_apply_once_and_the_certificate_is_cached(
    sns: Sns, store: Store
) -> None:
    sub = add_subscriber(store, "ana@example.org")
    message = sns.signer.sign(notification(ses_bounce("ana@example.org")), "1")
    response = sns.post(message)
    assert response.status_code == 200, response.text
    assert response.json()["applied"] == 1
    assert store.subscribers.get(sub.id).status is SubscriberStatus.BOUNCED
    assert store.suppressions.contains("ana@example.org")
    assert sns.transport.requested == [CERT_URL]

    assert sns.post(message).status_code == 409  # the same MessageId again

    ivo = add_subscriber(store, "ivo@example.org", "Ivo Dimov")
    second = sns.signer.sign(notification(ses_bounce("ivo@example.org", "Transient")), "2")
    assert sns.post(second).json()["applied"] == 1
    assert store.subscribers.get(ivo.id).status is SubscriberStatus.ACTIVE  # soft, 1 of 3
    assert sns.transport.requested == [CERT_URL]  # served from the cache


@pytest.mark.parametrize(
    "cert_url",
    [
        "https://sns.evil.example.com/SimpleNotificationService-0123.pem",
        "http://sns.eu-central-1.amazonaws.com/SimpleNotificationService-0123.pem",
        "https://sns.eu-central-1.amazonaws.com.evil.example.com/SimpleNotificationService.pem",
        "https://sns.eu-central-1.amazonaws.com@evil.example.com/SimpleNotificationService.pem",
        "https://sns.eu-central-1.amazonaws.com:8443/SimpleNotificationService-0123.pem",
        "https://sns.eu-central-1.amazonaws.com/SimpleNotificationService-0123.pem?x=.pem",
        "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0123.pem",
        "https://evil.example.com/sns.eu-central-1.amazonaws.com/x.pem",
    ],
)
def test_certificate_url_off_the_sns_host_is_refused_without_fetching(
    verifier: Verifier, local: Local, sns_signer: SnsSigner, cert_url: str
) -> None:
    message = sns_signer.sign(notification(ses_bounce("ana@example.org"), SigningCertURL=cert_url))
    with pytest.raises(SignatureError, match="SigningCertURL"):
        verifier.verify(sns_call(message))
    assert local.transport.requested == []
    assert local.server.requests == []


def test_other_topic_is_forbidden_and_fetches_nothing(
    verifier: Verifier, local: Local, sns_signer: SnsSigner
) -> None:
    other = "arn:aws:sns:eu-central-1:123456789012:someone-elses-topic"
    message = sns_signer.sign(notification(ses_bounce("ana@example.org"), TopicArn=other))
    with pytest.raises(ForbiddenError):
        verifier.verify(sns_call(message))
    assert local.transport.requested == []


def test_tampered_message_and_foreign_signature_are_401(sns: Sns, store: Store) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    sub = add_subscriber(store, "ana@example.org")
    message = sns.signer.sign(notification(ses_bounce("ivo@example.org")))
    message["Message"] = json.dumps(ses_bounce("ana@example.org"))
    assert sns.post(message).status_code == 401
    stranger = SnsSigner(rsa.generate_private_key(public_exponent=65537, key_size=1024), b"")
    forged = stranger.sign(notification(ses_bounce("ana@example.org")))
    assert sns.post(forged).status_code == 401
    unsigned = notification(ses_bounce("ana@example.org"), SignatureVersion="2")
    assert sns.post(unsigned).status_code == 400  # no Signature field at all
    assert store.subscribers.get(sub.id).status is SubscriberStatus.ACTIVE
    assert webhook_rows(store) == 0


def test_old_timestamp_is_a_replay_refused_before_fetching(
    verifier: Verifier, local: Local, sns_signer: SnsSigner
) -> None:
    old = (datetime.now(UTC) - timedelta(minutes=10)).isoformat().replace("+00:00", "Z")
    message = sns_signer.sign(notification(ses_bounce("ana@example.org"), Timestamp=old))
    with pytest.raises(ReplayError):
        verifier.verify(sns_call(message))
    assert local.transport.requested == []


def confirmation(subscribe_url: str) -> dict[str, Any]:
    """An unsigned SubscriptionConfirmation as SNS sends it to a new HTTPS endpoint."""
    return {
        "Type": "SubscriptionConfirmation",
        "MessageId": str(uuid.uuid4()),
        "Token": "2336412f37fb687f5d51e6e2425c464de",
        "TopicArn": TOPIC,
        "Message": f"You have chosen to subscribe to the topic {TOPIC}.",
        "SubscribeURL": subscribe_url,
        "Timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "SigningCertURL": CERT_URL,
    }


def test_subscription_confirmation_fetches_the_subscribe_url(
    verifier: Verifier, local: Local, sns_signer: SnsSigner
) -> None:
    message = sns_signer.sign(confirmation(SUBSCRIBE_URL), "1")
    assert verifier.verify(sns_call(message)) == []
    assert local.transport.requested == [CERT_URL, SUBSCRIBE_URL]
    assert [p for p, _ in local.server.requests] == [CERT_PATH, SUBSCRIBE_QUERY]


@pytest.mark.parametrize(
    "subscribe_url",
    [
        "https://sns.evil.example.com/?Action=ConfirmSubscription&Token=1",
        "http://sns.eu-central-1.amazonaws.com/?Action=ConfirmSubscription&Token=1",
        "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&Token=1",
        "https://sns.eu-central-1.amazonaws.com/?Action=Publish&Token=1",
    ],
)
def test_subscribe_url_off_the_sns_host_is_never_fetched(
    verifier: Verifier, local: Local, sns_signer: SnsSigner, subscribe_url: str
) -> None:
    message = sns_signer.sign(confirmation(subscribe_url))
    with pytest.raises(SignatureError, match="SubscribeURL"):
        verifier.verify(sns_call(message))
    assert local.transport.requested == []


def test_subscription_confirmation_over_http(sns: Sns) -> None:
    response = sns.post(sns.signer.sign(confirmation(SUBSCRIBE_URL)))
    assert response.status_code == 200, response.text
    assert sns.transport.requested == [CERT_URL, SUBSCRIBE_URL]


def test_event_publishing_tags_mark_the_delivery_and_complaints_apply(
    sns: Sns, store: Store
) -> None:
    sub = add_subscriber(store, "ana@example.org")
    delivery = add_delivery(store, sub)
    tags = {"edition_id": [str(edition_of(store, delivery))], "subscriber_id": [str(sub.id)]}
    delivered = {
        "eventType": "Delivery",
        "delivery": {"timestamp": "2026-11-30T08:00:00.000Z", "recipients": ["ana@example.org"]},
        "mail": {"messageId": "0100-a", "destination": ["ana@example.org"], "tags": tags},
    }
    complaint = {
        "eventType": "Complaint",
        "complaint": {
            "complainedRecipients": [{"emailAddress": "ana@example.org"}],
            "timestamp": "2026-11-30T08:30:00.000Z",
            "feedbackId": "0100-complaint-1",
            "complaintFeedbackType": "abuse",
        },
        "mail": {"messageId": "0100-a", "destination": ["ana@example.org"], "tags": tags},
    }
    assert sns.post(sns.signer.sign(notification(delivered))).status_code == 200
    assert delivery_event(store, delivery) == "delivered"
    assert sns.post(sns.signer.sign(notification(complaint))).status_code == 200
    assert delivery_event(store, delivery) == "complaint"
    assert store.subscribers.get(sub.id).status is SubscriberStatus.COMPLAINED


def test_unfetchable_certificate_is_502_and_a_retry_still_applies(sns: Sns, store: Store) -> None:
    sub = add_subscriber(store, "ana@example.org")
    pem = sns.server.routes.pop(CERT_PATH)
    message = sns.signer.sign(notification(ses_bounce("ana@example.org")))
    assert sns.post(message).status_code == 502
    assert webhook_rows(store) == 0
    sns.server.routes[CERT_PATH] = pem
    assert sns.post(message).status_code == 200
    assert store.subscribers.get(sub.id).status is SubscriberStatus.BOUNCED
