"""Signed, purpose-specific tokens for the links in every email.

A token names one subscriber (and optionally the edition that carried the link) and the
second it was issued. It is 17 bytes of payload and the first 16 bytes of one
HMAC-SHA256 over the purpose and the payload, base64url-encoded (45 characters), so an
unsubscribe token can never be replayed as a preferences or confirmation token, and
signing one costs one HMAC (a few microseconds; it is done twice per recipient).

Several secrets may be configured for key rotation: the first one signs, every one
verifies, so links in emails already sent keep working while a new key is rolled out.

Links signed before this format (itsdangerous, recognisable by their dots) still verify,
with the same keys and purposes, for ``legacy_days`` after they were issued.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import secrets as _secrets
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final

from itsdangerous import BadData, SignatureExpired, URLSafeTimedSerializer
from itsdangerous.timed import TimestampSigner

from newsletter.errors import ConfigError, NewsletterError

__all__ = ["PURPOSES", "TokenData", "TokenError", "TokenSigner", "load_secrets", "signer_for"]

if TYPE_CHECKING:
    from newsletter.config import Settings

log = logging.getLogger(__name__)

#: what a token may be used for; each purpose is its own signing salt
PURPOSES: Final = ("unsubscribe", "preferences", "confirm")

SECRET_FILE: Final = "secret.key"

#: format version, subscriber id, edition id (0: none), issued at (epoch seconds)
_PAYLOAD: Final = struct.Struct(">BQIL")
_VERSION: Final = 2
_MAC_BYTES: Final = 16
_TOKEN_BYTES: Final = _PAYLOAD.size + _MAC_BYTES
#: keeps a token's MAC key apart from any other use of the same configured secret
_KEY_CONTEXT: Final = b"newsletter link token v2\0"
_DAY: Final = 86_400


class TokenError(NewsletterError):
    """A token is malformed, tampered with, expired or meant for another purpose."""


@dataclass(frozen=True)
class TokenData:
    """What a verified token says."""

    purpose: str
    subscriber_id: int
    edition_id: int | None
    issued_at: datetime


class TokenSigner:
    """Signs and verifies tokens; the first of ``secrets`` signs, all of them verify.

    ``clock`` (seconds since the epoch) is injectable so that expiry can be tested
    without waiting.
    """

    def __init__(
        self,
        secrets: Sequence[str],
        *,
        clock: Callable[[], float] | None = None,
        legacy_days: int = 365,
    ) -> None:
        keys = [s for s in secrets if s]
        if not keys:
            raise ConfigError("no signing secret configured (the secret list is empty)")
        self._keys = keys
        self._clock = clock or time.time
        self._legacy_days = legacy_days
        now = self._clock
        # one keyed HMAC per (key, purpose), copied per token: the purpose is bound in
        self._macs = [
            {
                purpose: hmac.new(
                    hashlib.sha256(_KEY_CONTEXT + key.encode()).digest(),
                    purpose.encode() + b"\0",
                    hashlib.sha256,
                )
                for purpose in PURPOSES
            }
            for key in keys
        ]

        class _Signer(TimestampSigner):
            def get_timestamp(self) -> int:
                return int(now())

        # old links only: itsdangerous verifies with every key of its list
        self._serializers = {
            purpose: URLSafeTimedSerializer(list(reversed(keys)), salt=purpose, signer=_Signer)
            for purpose in PURPOSES
        }

    def pinned(self, at: float) -> TokenSigner:
        """A signer with the same keys whose tokens all carry the timestamp ``at``."""
        return TokenSigner(self._keys, clock=lambda: at, legacy_days=self._legacy_days)

    def _mac(self, key: int, purpose: str, payload: bytes) -> bytes:
        try:
            mac = self._macs[key][purpose].copy()
        except KeyError:
            raise ValueError(
                f"unknown token purpose {purpose!r} (known: {', '.join(PURPOSES)})"
            ) from None
        mac.update(payload)
        return mac.digest()[:_MAC_BYTES]

    def _serializer(self, purpose: str) -> URLSafeTimedSerializer:
        try:
            return self._serializers[purpose]
        except KeyError:
            raise ValueError(
                f"unknown token purpose {purpose!r} (known: {', '.join(PURPOSES)})"
            ) from None

    def sign(self, purpose: str, subscriber_id: int, edition_id: int | None = None) -> str:
        """A URL-safe token for ``subscriber_id`` (and the edition the link is in)."""
        if not 0 <= subscriber_id < 2**64 or not 0 <= (edition_id or 0) < 2**32:
            raise ValueError(f"ids out of range for a token: {subscriber_id}, {edition_id}")
        payload = _PAYLOAD.pack(_VERSION, subscriber_id, edition_id or 0, int(self._clock()))
        raw = payload + self._mac(0, purpose, payload)
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

    def verify(self, purpose: str, token: str, max_age: int | None = None) -> TokenData:
        """The data in ``token``; :class:`TokenError` unless it is genuine, for ``purpose``
        and (when ``max_age`` seconds is given) not older than that."""
        if purpose not in PURPOSES:
            raise ValueError(f"unknown token purpose {purpose!r} (known: {', '.join(PURPOSES)})")
        if "." in token:
            return self._verify_legacy(purpose, token, max_age)
        try:
            raw = base64.urlsafe_b64decode(token.encode("ascii") + b"=" * (-len(token) % 4))
        except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
            raise TokenError(f"invalid {purpose} token") from exc
        if len(raw) != _TOKEN_BYTES:
            raise TokenError(f"invalid {purpose} token")
        payload, mac = raw[: _PAYLOAD.size], raw[_PAYLOAD.size :]
        # every key is tried, so timing does not tell which one (if any) matched
        genuine = False
        for key in range(len(self._keys)):
            genuine |= hmac.compare_digest(mac, self._mac(key, purpose, payload))
        if not genuine:
            raise TokenError(f"invalid {purpose} token")
        version, subscriber_id, edition_id, issued = _PAYLOAD.unpack(payload)
        if version != _VERSION:
            raise TokenError(f"invalid {purpose} token payload")
        age = self._clock() - issued
        if max_age is not None and age > max_age:
            raise TokenError(f"{purpose} token expired (older than {max_age} s)")
        return TokenData(
            purpose, subscriber_id, edition_id or None, datetime.fromtimestamp(issued, UTC)
        )

    def _verify_legacy(self, purpose: str, token: str, max_age: int | None) -> TokenData:
        """A link signed by an earlier release (itsdangerous), inside the rotation window."""
        serializer = self._serializer(purpose)
        window = self._legacy_days * _DAY
        limit = window if max_age is None else min(max_age, window)
        try:
            payload, stamp = serializer.loads(token, max_age=limit, return_timestamp=True)
        except SignatureExpired as exc:
            raise TokenError(f"{purpose} token expired (older than {limit} s)") from exc
        except BadData as exc:
            raise TokenError(f"invalid {purpose} token") from exc
        # the payload is ours (the signature held), but an odd shape must not crash
        if not (
            isinstance(payload, list)
            and len(payload) == 2
            and isinstance(payload[0], int)
            and (payload[1] is None or isinstance(payload[1], int))
        ):
            raise TokenError(f"invalid {purpose} token payload")
        subscriber_id, edition_id = payload
        issued = stamp if isinstance(stamp, datetime) else datetime.fromtimestamp(0, UTC)
        return TokenData(purpose, subscriber_id, edition_id, issued)

    def sign_legacy(self, purpose: str, subscriber_id: int, edition_id: int | None = None) -> str:
        """A token in the old itsdangerous format: only for tests of the rotation window."""
        return str(self._serializer(purpose).dumps([subscriber_id, edition_id]))


def load_secrets(env_var: str, var_dir: Path) -> list[str]:
    """Signing secrets from ``$env_var`` (comma-separated, first signs).

    When the variable is unset or empty, a random development key is created once in
    ``var_dir/secret.key`` (mode 0600) and used, with a warning: links then stop working
    if that file is lost, so production must set the variable.
    """
    raw = os.environ.get(env_var, "")
    keys = [part.strip() for part in raw.split(",") if part.strip()]
    if keys:
        return keys
    path = var_dir / SECRET_FILE
    try:
        var_dir.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            key = path.read_text(encoding="ascii").strip()
        else:
            key = _secrets.token_urlsafe(32)
            with os.fdopen(fd, "w", encoding="ascii") as fh:
                fh.write(key + "\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read or create the development key: {exc}") from exc
    if not key:
        raise ConfigError(f"{path}: development key file is empty (delete it or set ${env_var})")
    log.warning("$%s is not set: using the development signing key in %s", env_var, path)
    return [key]


def signer_for(settings: Settings) -> TokenSigner:
    """The token signer with the keys named in config (or the development key in var/)."""
    return TokenSigner(
        load_secrets(settings.security.secret_key_env, settings.paths.var),
        legacy_days=settings.security.legacy_token_days,
    )
