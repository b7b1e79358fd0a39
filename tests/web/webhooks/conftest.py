"""Helpers for the provider webhook tests: an app with only the webhook routes, keys the
tests generate, signed payloads in each provider's documented format, seeded subscribers.

Signatures are computed here independently of the production code (from the providers'
documented formats), so a wrong canonical string in the code fails the tests.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette
from starlette.testclient import TestClient

from newsletter.config import Settings
from newsletter.models import NewSubscriber, Subscriber
from newsletter.store import Store
from newsletter.store.tables import deliveries
from newsletter.web.webhooks import Verifier, WebhookRequest, build_verifiers, routes

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
TOPIC = "arn:aws:sns:eu-central-1:123456789012:newsletter-ses-events"
CERT_URL = "https://sns.eu-central-1.amazonaws.com/SimpleNotificationService-0123456789abcdef.pem"
CERT_PATH = "/SimpleNotificationService-0123456789abcdef.pem"

# ---------------------------------------------------------------- keys (made once per run)


@pytest.fixture(scope="session")
def ec_key() -> ec.EllipticCurvePrivateKey:
    """A P-256 key pair standing in for SendGrid's signing key."""
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="session")
def sendgrid_public_b64(ec_key: ec.EllipticCurvePrivateKey) -> str:
    """The verification key as SendGrid shows it: base64 DER SubjectPublicKeyInfo."""
    der = ec_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


@dataclass(frozen=True)
class SnsSigner:
    """An RSA key with a self-signed certificate, like the one SNS publishes."""

    key: rsa.RSAPrivateKey
    cert_pem: bytes

    def sign(self, message: dict[str, Any], version: str = "2") -> dict[str, Any]:
        """``message`` with SignatureVersion and Signature set (SNS's canonical format)."""
        message = {**message, "SignatureVersion": version}
        if message["Type"] == "Notification":
            names = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
        else:
            names = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn"]
            names.append("Type")
        text = "".join(f"{n}\n{message[n]}\n" for n in names if n in message)
        digest = hashes.SHA1() if version == "1" else hashes.SHA256()
        signature = self.key.sign(text.encode(), padding.PKCS1v15(), digest)
        message["Signature"] = base64.b64encode(signature).decode()
        return message


@pytest.fixture(scope="session")
def sns_signer() -> SnsSigner:
    """An RSA key and a certificate for sns.amazonaws.com, valid around the real now."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return SnsSigner(key, cert.public_bytes(serialization.Encoding.PEM))


# ---------------------------------------------------------------- HTTP plumbing


class LocalSns(httpx.BaseTransport):
    """Sends requests meant for sns.<region>.amazonaws.com to a server on 127.0.0.1.

    The production code checks the URL it is given; only the connection is redirected.
    ``requested`` records the original URLs.
    """

    def __init__(self, base: str) -> None:
        self.base = httpx.URL(base)
        self.inner = httpx.HTTPTransport()
        self.requested: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requested.append(str(request.url))
        assert request.url.host.endswith(".amazonaws.com"), request.url
        request.url = request.url.copy_with(scheme="http", host="127.0.0.1", port=self.base.port)
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def client_for(settings: Settings, store: Store, **kwargs: Any) -> TestClient:
    """A TestClient on a minimal Starlette app holding only the webhook routes."""
    return TestClient(Starlette(routes=routes(settings, store, **kwargs)))


# ---------------------------------------------------------------- store helpers


def add_subscriber(store: Store, email: str, name: str = "Ana Petrova") -> Subscriber:
    """An active subscriber."""
    return store.subscribers.add(
        NewSubscriber(email=email, name=name, locale="bg", lists=("members",)), NOW
    )


def add_delivery(store: Store, sub: Subscriber, provider_message_id: str | None = None) -> int:
    """A sent delivery row of a new edition for ``sub``; returns its id."""
    edition = store.editions.create("members", f"2026-W{sub.id:02d}", [], NOW)
    store.deliveries.plan(edition.id, [(sub.id, "bg")], NOW)
    with store.engine.begin() as conn:
        row_id = conn.execute(
            sa.select(deliveries.c.id).where(deliveries.c.edition_id == edition.id)
        ).scalar_one()
        conn.execute(
            sa.update(deliveries)
            .where(deliveries.c.id == row_id)
            .values(status="sent", provider_message_id=provider_message_id, sent_at=NOW)
        )
    return int(row_id)


def delivery_event(store: Store, delivery_id: int) -> str | None:
    """What the provider said about a delivery row."""
    with store.engine.connect() as conn:
        return conn.execute(
            sa.select(deliveries.c.provider_event).where(deliveries.c.id == delivery_id)
        ).scalar()


def edition_of(store: Store, delivery_id: int) -> int:
    """The edition id of a delivery row."""
    with store.engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(deliveries.c.edition_id).where(deliveries.c.id == delivery_id)
            ).scalar_one()
        )


def webhook_rows(store: Store) -> int:
    """Rows in webhook_events."""
    with store.engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM webhook_events")).scalar_one())


# ---------------------------------------------------------------- provider payloads


def sendgrid_sign(
    key: ec.EllipticCurvePrivateKey, body: bytes, *, at: float | None = None
) -> dict[str, str]:
    """Headers as SendGrid's signed event webhook sends them for ``body``."""
    stamp = str(int(time.time() if at is None else at))
    signature = key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        "Content-Type": "application/json",
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
    }


def sendgrid_call(
    key: ec.EllipticCurvePrivateKey, events: list[dict[str, Any]], *, at: float | None = None
) -> tuple[bytes, dict[str, str]]:
    """A signed SendGrid call carrying ``events``."""
    body = json.dumps(events).encode()
    return body, sendgrid_sign(key, body, at=at)


def sendgrid_event(email: str, event: str = "bounce", **extra: Any) -> dict[str, Any]:
    """One SendGrid event as in the Event Webhook reference."""
    return {
        "email": email,
        "timestamp": int(time.time()),
        "smtp-id": "<14c5d75ce93.dfd.64b469@ismtpd-555>",
        "event": event,
        "category": ["members"],
        "sg_event_id": base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="),
        "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
        **extra,
    }


def mailgun_call(
    signing_key: str, event_data: dict[str, Any], *, at: float | None = None, token: str = ""
) -> dict[str, Any]:
    """A Mailgun webhook body with a valid signature."""
    stamp = str(int(time.time() if at is None else at))
    token = token or secrets.token_hex(25)
    digest = hmac.new(signing_key.encode(), (stamp + token).encode(), hashlib.sha256).hexdigest()
    return {
        "signature": {"timestamp": stamp, "token": token, "signature": digest},
        "event-data": event_data,
    }


def mailgun_failed(email: str, severity: str = "permanent", **extra: Any) -> dict[str, Any]:
    """A Mailgun ``failed`` event-data object."""
    return {
        "event": "failed",
        "id": secrets.token_urlsafe(16),
        "timestamp": time.time(),
        "log-level": "error",
        "severity": severity,
        "reason": "bounce" if severity == "permanent" else "generic",
        "recipient": email,
        "delivery-status": {"code": 550, "description": "mailbox does not exist"},
        "message": {"headers": {"message-id": "20261130090000.1.ABC@mg.cluster.example.org"}},
        "user-variables": {},
        **extra,
    }


def svix_headers(
    secret: str, body: bytes, *, msg_id: str = "", at: float | None = None
) -> dict[str, str]:
    """Svix headers for ``body`` signed with a ``whsec_`` secret."""
    msg_id = msg_id or f"msg_{secrets.token_hex(12)}"
    stamp = str(int(time.time() if at is None else at))
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return {
        "Content-Type": "application/json",
        "svix-id": msg_id,
        "svix-timestamp": stamp,
        "svix-signature": "v1," + base64.b64encode(mac).decode(),
    }


@pytest.fixture
def make_store_client(
    make_config: Callable[..., Settings], store: Store
) -> Iterator[Callable[..., TestClient]]:
    """``make(webhooks={...}, environ={...}, **route_kwargs)`` -> a TestClient."""
    clients: list[TestClient] = []

    def make(webhooks: dict[str, Any], environ: dict[str, str], **kwargs: Any) -> TestClient:
        settings = make_config(webhooks=webhooks)
        client = client_for(settings, store, environ=environ, **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def make_verifier(make_config: Callable[..., Settings]) -> Callable[..., Verifier]:
    """``make(name, table, environ, **kwargs)`` -> that provider's verifier (no store)."""

    def make(name: str, table: dict[str, Any], environ: dict[str, str], **kwargs: Any) -> Verifier:
        settings = make_config(webhooks={name: table})
        return build_verifiers(settings.webhooks, environ=environ, **kwargs)[name]

    return make


def accepted(
    applied: int = 0, duplicates: int = 0, ignored: int = 0, unknown: int = 0
) -> dict[str, Any]:
    """The JSON body the endpoint answers an accepted call with, for these counts."""
    return {
        "ok": True,
        "applied": applied,
        "duplicates": duplicates,
        "ignored": ignored,
        "unknown": unknown,
    }


def call(
    body: bytes, headers: dict[str, str], query: dict[str, str] | None = None
) -> WebhookRequest:
    """A WebhookRequest as the endpoint builds it (header names in lower case)."""
    return WebhookRequest({k.lower(): v for k, v in headers.items()}, body, query or {})
