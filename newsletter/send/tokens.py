"""Signed, purpose-specific tokens for the links in every email.

A token names one subscriber (and optionally the edition that carried the link) and is
signed with itsdangerous under a salt per purpose, so an unsubscribe token can never be
replayed as a preferences or confirmation token. Several secrets may be configured for key
rotation: the first one signs, every one verifies, so links in emails already sent keep
working while a new key is rolled out.
"""

from __future__ import annotations

import logging
import os
import secrets as _secrets
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

    def __init__(self, secrets: Sequence[str], *, clock: Callable[[], float] | None = None) -> None:
        keys = [s for s in secrets if s]
        if not keys:
            raise ConfigError("no signing secret configured (the secret list is empty)")
        self._keys = keys
        now = clock or time.time

        class _Signer(TimestampSigner):
            def get_timestamp(self) -> int:
                return int(now())

        # itsdangerous signs with the *last* key of its list and verifies with all
        self._serializers = {
            purpose: URLSafeTimedSerializer(list(reversed(keys)), salt=purpose, signer=_Signer)
            for purpose in PURPOSES
        }

    def pinned(self, at: float) -> TokenSigner:
        """A signer with the same keys whose tokens all carry the timestamp ``at``."""
        return TokenSigner(self._keys, clock=lambda: at)

    def _serializer(self, purpose: str) -> URLSafeTimedSerializer:
        try:
            return self._serializers[purpose]
        except KeyError:
            raise ValueError(
                f"unknown token purpose {purpose!r} (known: {', '.join(PURPOSES)})"
            ) from None

    def sign(self, purpose: str, subscriber_id: int, edition_id: int | None = None) -> str:
        """A URL-safe token for ``subscriber_id`` (and the edition the link is in)."""
        return str(self._serializer(purpose).dumps([subscriber_id, edition_id]))

    def verify(self, purpose: str, token: str, max_age: int | None = None) -> TokenData:
        """The data in ``token``; :class:`TokenError` unless it is genuine, for ``purpose``
        and (when ``max_age`` seconds is given) not older than that."""
        serializer = self._serializer(purpose)
        try:
            payload, stamp = serializer.loads(token, max_age=max_age, return_timestamp=True)
        except SignatureExpired as exc:
            raise TokenError(f"{purpose} token expired (older than {max_age} s)") from exc
        except BadData as exc:
            raise TokenError(f"invalid {purpose} token") from exc
        # the payload is ours (the signature held), but an old format must not crash
        if not (
            isinstance(payload, list)
            and len(payload) == 2
            and isinstance(payload[0], int)
            and (payload[1] is None or isinstance(payload[1], int))
        ):
            raise TokenError(f"invalid {purpose} token payload")
        subscriber_id, edition_id = payload
        issued = stamp if isinstance(stamp, datetime) else datetime.now(UTC)
        return TokenData(purpose, subscriber_id, edition_id, issued)


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
    return TokenSigner(load_secrets(settings.security.secret_key_env, settings.paths.var))
