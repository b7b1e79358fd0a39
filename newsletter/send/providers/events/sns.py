"""Amazon SNS HTTPS deliveries: message signature, certificate URL, topic, confirmation.

SNS signs a canonical string of the message's fields (RSA, SHA1 for SignatureVersion 1 and
SHA256 for 2) with the key in the certificate at ``SigningCertURL``. Anyone can post a
message naming any certificate URL, so the URL is checked *before* anything is fetched: it
must be ``https://sns.<region>.amazonaws.com/<name>.pem`` for an allowed region, and the
topic must be one the config expects. ``SubscribeURL`` is checked the same way before the
subscription is confirmed. Certificates are cached by URL.

The HTTP client is injectable; the URL checks always run on the URL given in the message.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import threading
from abc import abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from newsletter.config.webhooks import topic_region
from newsletter.send.providers.events.base import (
    Clock,
    ForbiddenError,
    PayloadError,
    SignatureError,
    TimestampedVerifier,
    UpstreamError,
    WebhookRequest,
    json_body,
)
from newsletter.send.providers.events.model import Event

__all__ = ["SnsVerifier", "canonical_string", "sns_url_region"]

log = logging.getLogger(__name__)

_REGION = r"(?P<region>[a-z]{2}(?:-[a-z]+)+-\d+)"
# matched whole (``fullmatch``): with ``$`` a trailing newline would still match
CERT_URL = re.compile(
    rf"https://sns\.{_REGION}\.amazonaws\.com/[A-Za-z0-9_-][A-Za-z0-9._-]*\.pem", re.ASCII
)
SUBSCRIBE_URL = re.compile(
    rf"https://sns\.{_REGION}\.amazonaws\.com/\?Action=ConfirmSubscription&[A-Za-z0-9&=:%._~+-]*",
    re.ASCII,
)

#: fields signed, in order, per message type (Subject only when present)
SIGNED_FIELDS: dict[str, tuple[str, ...]] = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
}
SIGNED_FIELDS["UnsubscribeConfirmation"] = SIGNED_FIELDS["SubscriptionConfirmation"]

_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}
_MAX_CERT_BYTES = 64 * 1024
_CACHE_SIZE = 32


def sns_url_region(url: str, pattern: re.Pattern[str], regions: Collection[str]) -> str | None:
    """The region of an SNS URL matching all of ``pattern`` on an allowed region's host,
    else None: no whitespace, no other host, port or user, nothing after the path."""
    match = pattern.fullmatch(url)
    if match is None or match["region"] not in regions:
        return None
    try:
        parsed = httpx.URL(url)  # second opinion from the parser the client will use
    except httpx.InvalidURL:
        return None
    if parsed.scheme != "https" or parsed.port is not None or parsed.userinfo:
        return None
    if parsed.host != f"sns.{match['region']}.amazonaws.com":
        return None
    return match["region"]


def canonical_string(message: Mapping[str, Any]) -> str:
    """The string SNS signs for ``message``."""
    fields = SIGNED_FIELDS[message["Type"]]
    return "".join(
        f"{name}\n{message[name]}\n" for name in fields if isinstance(message.get(name), str)
    )


class SnsVerifier(TimestampedVerifier):
    """Verifies SNS messages; subclasses turn a notification's ``Message`` into events."""

    content_types: ClassVar[tuple[str, ...]] = ("text/plain", "application/json")

    def __init__(
        self,
        topic_arns: Collection[str],
        regions: Collection[str],
        *,
        tolerance: int,
        confirm_subscriptions: bool = True,
        http: httpx.Client | None = None,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(tolerance=tolerance, clock=clock)
        self.topic_arns = frozenset(topic_arns)
        self.regions = frozenset(regions)
        self.confirm_subscriptions = confirm_subscriptions
        self.http = http
        self._certs: OrderedDict[str, rsa.RSAPublicKey] = OrderedDict()
        self._lock = threading.Lock()

    @abstractmethod
    def parse_message(self, message: str, message_id: str, now: datetime) -> list[Event]:
        """Events in a notification's ``Message`` (what it holds depends on the publisher)."""

    def verify(self, request: WebhookRequest) -> list[Event]:
        """Cheap checks first (type, topic, URLs, time), then the signature, then the type."""
        msg = self._envelope(request)
        region = topic_region(msg["TopicArn"])
        cert_region = sns_url_region(msg["SigningCertURL"], CERT_URL, self.regions)
        if cert_region is None:
            raise SignatureError(
                f"SigningCertURL {msg['SigningCertURL'][:200]!r} is not an Amazon SNS "
                "certificate URL of an allowed region"
            )
        if cert_region != region:
            raise SignatureError("SigningCertURL region differs from the topic's region")
        if msg["Type"] == "SubscriptionConfirmation":
            url = msg.get("SubscribeURL")
            if not isinstance(url, str) or sns_url_region(url, SUBSCRIBE_URL, {region}) is None:
                raise SignatureError("SubscribeURL is not an Amazon SNS URL of the topic's region")
        now = self.fresh(_timestamp(msg["Timestamp"]).timestamp())
        self._check_signature(msg, now)
        if msg["Type"] == "SubscriptionConfirmation":
            self._confirm(msg)
            return []
        if msg["Type"] == "UnsubscribeConfirmation":
            log.warning("SNS: the subscription to %s was removed", msg["TopicArn"])
            return []
        return self.parse_message(msg["Message"], msg["MessageId"], now)

    def replay_key(self, request: WebhookRequest) -> str | None:
        """The SNS MessageId (SNS re-sends a failed delivery with the same id)."""
        return str(self._envelope(request)["MessageId"])

    def _envelope(self, request: WebhookRequest) -> dict[str, Any]:
        msg = json_body(request.body)
        if not isinstance(msg, dict):
            raise PayloadError("an SNS message is a JSON object")
        kind = msg.get("Type")
        if kind not in SIGNED_FIELDS:
            raise PayloadError(f"unknown SNS message type {str(kind)[:50]!r}")
        for name in (*SIGNED_FIELDS[kind], "SignatureVersion", "Signature", "SigningCertURL"):
            if name != "Subject" and not isinstance(msg.get(name), str):
                raise PayloadError(f"SNS {kind} without {name}")
        header = request.header("x-amz-sns-message-type")
        if header is not None and header != kind:
            raise PayloadError("x-amz-sns-message-type does not match the message Type")
        if msg["TopicArn"] not in self.topic_arns:
            raise ForbiddenError(f"SNS topic {msg['TopicArn'][:200]!r} is not configured")
        if msg["SignatureVersion"] not in _HASHES:
            raise SignatureError(f"unsupported SNS SignatureVersion {msg['SignatureVersion']!r}")
        return msg

    def _check_signature(self, msg: Mapping[str, Any], now: datetime) -> None:
        key = self._public_key(msg["SigningCertURL"], now)
        try:
            key.verify(
                base64.b64decode(msg["Signature"], validate=True),
                canonical_string(msg).encode("utf-8"),
                padding.PKCS1v15(),
                _HASHES[msg["SignatureVersion"]](),
            )
        except (InvalidSignature, binascii.Error, ValueError) as exc:
            raise SignatureError("SNS signature does not match") from exc

    def _public_key(self, url: str, now: datetime) -> rsa.RSAPublicKey:
        with self._lock:
            cached = self._certs.get(url)
        if cached is not None:
            return cached
        content = self._get(url, "SNS signing certificate", limit=_MAX_CERT_BYTES)
        try:
            cert = x509.load_pem_x509_certificate(content)
        except ValueError as exc:
            raise UpstreamError(f"SNS signing certificate {url}: not a PEM certificate") from exc
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise SignatureError(f"SNS signing certificate {url} is not valid now")
        key = cert.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise SignatureError(f"SNS signing certificate {url} does not hold an RSA key")
        with self._lock:
            self._certs[url] = key
            while len(self._certs) > _CACHE_SIZE:
                self._certs.popitem(last=False)
        return key

    def _confirm(self, msg: Mapping[str, Any]) -> None:
        if not self.confirm_subscriptions:
            log.warning(
                "SNS: subscription to %s not confirmed (webhooks.ses.confirm_subscriptions is "
                "false); confirm it in the AWS console",
                msg["TopicArn"],
            )
            return
        self._get(msg["SubscribeURL"], "SNS subscription confirmation")
        log.info("SNS: subscription to %s confirmed", msg["TopicArn"])

    def _get(self, url: str, what: str, *, limit: int = _MAX_CERT_BYTES) -> bytes:
        """The body at ``url`` (already checked to be Amazon's), at most ``limit`` bytes,
        no redirect followed: a redirect could lead anywhere."""
        try:
            if self.http is not None:
                return _read(self.http, url, what, limit)
            with httpx.Client(timeout=10.0) as client:
                return _read(client, url, what, limit)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise UpstreamError(f"{what}: {url!r}: {exc}") from exc


def _read(client: httpx.Client, url: str, what: str, limit: int) -> bytes:
    with client.stream("GET", url, follow_redirects=False) as response:
        if response.status_code != 200:
            raise UpstreamError(f"{what}: {url}: HTTP {response.status_code}")
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > limit:
                raise UpstreamError(f"{what}: {url}: larger than {limit} bytes")
            chunks.append(chunk)
    return b"".join(chunks)


def _timestamp(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise PayloadError(f"SNS Timestamp {value[:40]!r} is not ISO 8601") from exc
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed
