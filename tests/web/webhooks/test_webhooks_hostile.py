"""Webhook calls as an attacker sends them: JSON nested 100,000 deep with a bad signature
(rejected without ``json.loads`` ever running, for every provider), JSON bombs under a
valid signature, and SNS certificate URLs that only look like Amazon's. Each gets a 4xx,
nothing is fetched, and the log has no traceback."""

from __future__ import annotations

import base64
import json
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fixtures.sources.httpserver import Route, serve
from starlette.testclient import TestClient

from newsletter.send.providers.events.base import PayloadError, SignatureError, json_depth_exceeds
from newsletter.web.webhooks import Verifier

from .conftest import (
    CERT_PATH,
    CERT_URL,
    TOPIC,
    LocalSns,
    SnsSigner,
    call,
    mailgun_call,
    mailgun_failed,
    sendgrid_sign,
    svix_headers,
)

MG_KEY = "key-" + secrets.token_hex(16)
RESEND_SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
DEEP = b"[" * 100_000 + b"]" * 100_000
SNS_HOST = "https://sns.eu-central-1.amazonaws.com"

#: per provider: the content type it posts with and headers carrying wrong credentials
BAD_CREDENTIALS: dict[str, dict[str, str]] = {
    "sendgrid": {
        "Content-Type": "application/json",
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(b"\x30" * 70).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": "1796029200",
    },
    "mailgun": {"Content-Type": "application/json"},
    "ses": {"Content-Type": "text/plain; charset=UTF-8"},
    "postmark": {
        "Content-Type": "application/json",
        "Authorization": "Basic " + base64.b64encode(b"newsletter:guess").decode(),
    },
    "brevo": {"Content-Type": "application/json", "Authorization": "Bearer guess"},
    "resend": {
        "Content-Type": "application/json",
        "svix-id": "msg_1",
        "svix-timestamp": "1796029200",
        "svix-signature": "v1," + base64.b64encode(b"x" * 32).decode(),
    },
}


@pytest.fixture
def loads_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Records the size of every text ``json.loads`` is given (in any module)."""
    calls: list[int] = []
    real = json.loads

    def spy(text: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(len(text))
        return real(text, *args, **kwargs)

    monkeypatch.setattr(json, "loads", spy)
    return calls


@pytest.fixture
def every_provider(
    make_store_client: Callable[..., TestClient], sendgrid_public_b64: str
) -> TestClient:
    """One app with all six providers configured."""
    return make_store_client(
        {
            "sendgrid": {},
            "mailgun": {},
            "ses": {"topic_arns": [TOPIC]},
            "postmark": {"secret_env": "PM_SECRET"},
            "brevo": {"auth": "bearer", "secret_env": "BREVO_SECRET"},
            "resend": {},
        },
        {
            "SENDGRID_WEBHOOK_PUBLIC_KEY": sendgrid_public_b64,
            "MAILGUN_WEBHOOK_SIGNING_KEY": MG_KEY,
            "PM_SECRET": "postmark-" + secrets.token_hex(8),
            "BREVO_SECRET": "brevo-" + secrets.token_hex(8),
            "RESEND_WEBHOOK_SECRET": RESEND_SECRET,
        },
    )


def _no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]


@pytest.mark.parametrize("provider", sorted(BAD_CREDENTIALS))
def test_deep_body_with_bad_credentials_is_refused_unparsed(
    every_provider: TestClient,
    loads_calls: list[int],
    caplog: pytest.LogCaptureFixture,
    provider: str,
) -> None:
    response = every_provider.post(
        f"/webhooks/{provider}", content=DEEP, headers=BAD_CREDENTIALS[provider]
    )
    assert 400 <= response.status_code < 500, response.text
    assert loads_calls == []  # neither the signature check nor the depth check parses it
    _no_traceback(caplog)


def test_deep_bodies_under_valid_signatures_are_400_unparsed(
    every_provider: TestClient,
    ec_key: ec.EllipticCurvePrivateKey,
    loads_calls: list[int],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # SendGrid and Resend sign the raw bytes: the signature holds, the body is a bomb
    sendgrid = every_provider.post(
        "/webhooks/sendgrid", content=DEEP, headers=sendgrid_sign(ec_key, DEEP)
    )
    resend = every_provider.post(
        "/webhooks/resend", content=DEEP, headers=svix_headers(RESEND_SECRET, DEEP)
    )
    # Mailgun's signature lives in the body: valid, next to an event nested 50,000 deep
    signed = json.dumps(mailgun_call(MG_KEY, {})).encode()
    bomb = signed.replace(b'"event-data": {}', b'"event-data": ' + b"[" * 50_000 + b"]" * 50_000)
    mailgun = every_provider.post(
        "/webhooks/mailgun", content=bomb, headers={"Content-Type": "application/json"}
    )
    assert loads_calls == []  # checked before the test itself parses the answers
    for response in (sendgrid, resend, mailgun):
        assert response.status_code == 400, response.text
        assert "deeper than" in response.json()["error"]
    _no_traceback(caplog)


@pytest.mark.parametrize(
    "timestamp",
    [
        "9" * 5000,  # past Python's int digit limit: ValueError, not JSONDecodeError
        "1e999",  # an infinity
        "NaN",
        "-Infinity",
    ],
)
def test_number_bombs_under_a_valid_signature_are_400(
    every_provider: TestClient,
    ec_key: ec.EllipticCurvePrivateKey,
    caplog: pytest.LogCaptureFixture,
    timestamp: str,
) -> None:
    body = (
        '[{"email": "ana@example.org", "event": "bounce", "sg_event_id": "e1", '
        f'"timestamp": {timestamp}}}]'
    ).encode()
    response = every_provider.post(
        "/webhooks/sendgrid", content=body, headers=sendgrid_sign(ec_key, body)
    )
    assert response.status_code == 400, response.text
    mailgun = mailgun_call(MG_KEY, mailgun_failed("ana@example.org"))
    raw = (
        json.dumps(mailgun)
        .encode()
        .replace(b'"log-level"', f'"n": {timestamp}, "log-level"'.encode())
    )
    response = every_provider.post(
        "/webhooks/mailgun", content=raw, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400, response.text
    _no_traceback(caplog)


def test_depth_scan_ignores_brackets_inside_strings() -> None:
    assert not json_depth_exceeds(json.dumps({"a": "[" * 1000 + "{" * 1000}).encode(), 8)
    assert not json_depth_exceeds(json.dumps({"a": '\\"[[[[[[[[[['}).encode(), 8)
    assert json_depth_exceeds(b'{"a": "x\\"", "b": [[[[[[[[[[]]]]]]]]]]}', 8)
    assert not json_depth_exceeds(b"[" * 8 + b"]" * 8, 8)
    assert json_depth_exceeds(b"[" * 9 + b"]" * 9, 8)


# ---------------------------------------------------------------- SNS certificate URLs


@pytest.fixture
def local_sns(sns_signer: SnsSigner) -> Iterator[tuple[LocalSns, httpx.Client]]:
    """The stand-in for sns.eu-central-1.amazonaws.com on 127.0.0.1."""
    routes = {CERT_PATH: Route(body=sns_signer.cert_pem, content_type="application/x-pem-file")}
    with serve(routes) as server:
        transport = LocalSns(server.base)
        with httpx.Client(transport=transport) as http:
            yield transport, http


def _notification(**fields: Any) -> dict[str, Any]:
    ses = {
        "notificationType": "Bounce",
        "bounce": {"bounceType": "Permanent", "bouncedRecipients": []},
        "mail": {"destination": ["ana@example.org"]},
    }
    return {
        "Type": "Notification",
        "MessageId": str(uuid.uuid4()),
        "TopicArn": TOPIC,
        "Message": json.dumps(ses),
        "Timestamp": datetime.fromtimestamp(NOW_TS, UTC).isoformat().replace("+00:00", "Z"),
        "SigningCertURL": CERT_URL,
        **fields,
    }


NOW_TS = 1_796_029_200.0  # 2026-12-01 09:00 UTC, the verifier's injected clock

CERT_URL_VARIANTS = [
    CERT_URL + "\n",
    CERT_URL + "\r\n",
    CERT_URL + " ",
    CERT_URL + "\t",
    " " + CERT_URL,
    "\n" + CERT_URL,
    CERT_URL + "\x00",
    CERT_URL + "%0a",
    CERT_URL + "#.pem",
    CERT_URL.replace(".pem", ".pem\n.pem"),
    CERT_URL.replace(".pem", ".txt"),
    CERT_URL.replace(".pem", ".pem/"),
    CERT_URL.replace("https://sns.", "https://SNS."),
    CERT_URL.replace("amazonaws.com", "amazonaws.com."),
    CERT_URL.replace(".amazonaws.com", "\u3002amazonaws.com"),
    CERT_URL.replace(".amazonaws.com", ".amazonaws.com\\@evil.example.com"),
    CERT_URL.replace("/SimpleNotification", "/../SimpleNotification"),
    CERT_URL.replace("/SimpleNotification", "//evil.example.com/SimpleNotification"),
    CERT_URL.replace("https://", "https:///"),
    CERT_URL.replace("https://", "HTTPS://"),
    f"{SNS_HOST}/x.pem\u2028",
]


@pytest.mark.parametrize("cert_url", CERT_URL_VARIANTS, ids=repr)
def test_cert_url_variants_are_refused_before_any_fetch(
    make_verifier: Callable[..., Verifier],
    local_sns: tuple[LocalSns, httpx.Client],
    sns_signer: SnsSigner,
    cert_url: str,
) -> None:
    transport, http = local_sns
    verifier = make_verifier("ses", {"topic_arns": [TOPIC]}, {}, http=http, clock=lambda: NOW_TS)
    message = sns_signer.sign(_notification(SigningCertURL=cert_url))
    with pytest.raises(SignatureError, match="SigningCertURL"):
        verifier.verify(call(json.dumps(message).encode(), {"Content-Type": "text/plain"}))
    assert transport.requested == []


@pytest.mark.parametrize(
    "subscribe_url",
    [
        f"{SNS_HOST}/?Action=ConfirmSubscription&TopicArn={TOPIC}&Token=abc\n",
        f"{SNS_HOST}/?Action=ConfirmSubscription&TopicArn={TOPIC}&Token=abc ",
        f"{SNS_HOST}/?Action=ConfirmSubscription&Token=abc#@evil.example.com/",
        f"{SNS_HOST}.evil.example.com/?Action=ConfirmSubscription&Token=abc",
    ],
    ids=repr,
)
def test_subscribe_url_variants_are_refused_before_any_fetch(
    make_verifier: Callable[..., Verifier],
    local_sns: tuple[LocalSns, httpx.Client],
    sns_signer: SnsSigner,
    subscribe_url: str,
) -> None:
    transport, http = local_sns
    verifier = make_verifier("ses", {"topic_arns": [TOPIC]}, {}, http=http, clock=lambda: NOW_TS)
    message = _notification(Type="SubscriptionConfirmation", SubscribeURL=subscribe_url)
    message["Token"] = "abc"
    message = sns_signer.sign(message)
    with pytest.raises(SignatureError, match="SubscribeURL"):
        verifier.verify(call(json.dumps(message).encode(), {"Content-Type": "text/plain"}))
    assert transport.requested == []


def test_cert_url_with_a_newline_over_http_is_401_and_logs_no_traceback(
    every_provider: TestClient, sns_signer: SnsSigner, caplog: pytest.LogCaptureFixture
) -> None:
    message = sns_signer.sign(_notification(SigningCertURL=CERT_URL + "\n"))
    response = every_provider.post(
        "/webhooks/ses",
        content=json.dumps(message),
        headers={"Content-Type": "text/plain; charset=UTF-8"},
    )
    assert response.status_code == 401, response.text
    _no_traceback(caplog)


def test_nested_ses_message_inside_a_valid_envelope_is_bounded(
    make_verifier: Callable[..., Verifier],
    local_sns: tuple[LocalSns, httpx.Client],
    sns_signer: SnsSigner,
    loads_calls: list[int],
) -> None:
    # the envelope is genuine (signed with the served certificate); its Message is a bomb
    _, http = local_sns
    verifier = make_verifier(
        "ses", {"topic_arns": [TOPIC]}, {}, http=http, clock=lambda: time.time()
    )
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    message = sns_signer.sign(_notification(Message="[" * 50_000 + "]" * 50_000, Timestamp=now))
    with pytest.raises(PayloadError, match="deeper than"):
        verifier.verify(call(json.dumps(message).encode(), {"Content-Type": "text/plain"}))
    assert 100_000 not in loads_calls  # the envelope was parsed, the Message never
