"""Authentication for providers that do not sign their webhooks (Postmark, Brevo).

Each call must carry a shared secret: HTTP basic auth (user name and password put in the
webhook URL or the provider's auth settings), a bearer token, a custom header, or a query
parameter. Every comparison is constant-time, so response timing tells nothing about how
much of a guess was right. Without a signed timestamp there is no replay window to check:
replays are caught by the event ids already seen.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from abc import abstractmethod
from datetime import UTC, datetime
from typing import Any, Self

from newsletter.config.webhooks import SharedSecretWebhook, Webhooks
from newsletter.send.providers.events.base import (
    Clock,
    Deps,
    SignatureError,
    Verifier,
    WebhookRequest,
    default_clock,
    json_body,
)
from newsletter.send.providers.events.model import Event

__all__ = ["SharedSecretAuth", "SharedSecretVerifier"]


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


class SharedSecretAuth:
    """Checks one request's credentials against the configured scheme and secret."""

    def __init__(self, config: SharedSecretWebhook, secret: str) -> None:
        self.config = config
        self.secret = secret

    def check(self, request: WebhookRequest) -> None:
        """Return if the request carries the secret; SignatureError otherwise."""
        cfg = self.config
        if cfg.auth == "basic":
            user, password = self._basic(request.header("authorization"))
            # both compared every time: no early exit on a wrong user name
            ok = _same(user, cfg.username) & _same(password, self.secret)
        elif cfg.auth == "bearer":
            value = request.header("authorization") or ""
            scheme, _, bearer = value.partition(" ")
            if scheme.lower() != "bearer" or not bearer:
                raise SignatureError("missing Authorization: Bearer credentials")
            ok = _same(bearer.strip(), self.secret)
        elif cfg.auth == "header":
            given = request.header(cfg.header)
            if not given:
                raise SignatureError(f"missing {cfg.header} header")
            ok = _same(given, self.secret)
        else:
            param = request.query.get(cfg.query_param)
            if not param:
                raise SignatureError(f"missing {cfg.query_param} query parameter")
            ok = _same(param, self.secret)
        if not ok:
            raise SignatureError("wrong webhook credentials")

    @staticmethod
    def _basic(header: str | None) -> tuple[str, str]:
        scheme, _, encoded = (header or "").partition(" ")
        if scheme.lower() != "basic" or not encoded:
            raise SignatureError("missing HTTP basic auth credentials")
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise SignatureError("malformed HTTP basic auth credentials") from exc
        user, sep, password = decoded.partition(":")
        if not sep:
            raise SignatureError("malformed HTTP basic auth credentials")
        return user, password


class SharedSecretVerifier(Verifier):
    """A provider authenticated by :class:`SharedSecretAuth`; subclasses parse the body."""

    def __init__(self, auth: SharedSecretAuth, *, clock: Clock | None = None) -> None:
        self.auth = auth
        self.clock = default_clock(clock)

    @classmethod
    def from_config(cls, config: Webhooks, deps: Deps) -> Self:
        """Scheme from ``[webhooks.<name>]``, the secret from its ``secret_env`` variable."""
        table = getattr(config, cls.name)
        assert isinstance(table, SharedSecretWebhook)
        secret = deps.secret(cls.name, "secret_env", table.secret_env)
        return cls(SharedSecretAuth(table, secret), clock=deps.clock)

    @abstractmethod
    def parse(self, body: Any, now: datetime) -> list[Event]:
        """The events in an authenticated, JSON-decoded body."""

    def verify(self, request: WebhookRequest) -> list[Event]:
        """Credentials first, then the body."""
        self.auth.check(request)
        return self.parse(json_body(request.body), datetime.fromtimestamp(self.clock(), UTC))
