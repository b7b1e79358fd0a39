"""The verifier interface every provider adapter implements, and what they share.

Like an httpx transport, an adapter has one required method: :meth:`Verifier.verify` takes
the raw request (headers, body bytes, query) and either returns the provider-neutral events
it carries or raises a :class:`~newsletter.errors.WebhookError` subclass that says which
4xx to answer. Adapters are picked from a registry by provider name (``registry.py``).
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, ClassVar, Final, Self

import httpx

from newsletter.config.webhooks import Webhooks
from newsletter.errors import ConfigError, WebhookError
from newsletter.send.providers.events.model import Event

__all__ = [
    "Clock",
    "Deps",
    "ForbiddenError",
    "PayloadError",
    "ReplayError",
    "SignatureError",
    "TimestampedVerifier",
    "UpstreamError",
    "Verifier",
    "WebhookRequest",
    "check_fresh",
    "json_body",
    "json_depth_exceeds",
    "json_value",
    "unix_time",
]

#: seconds since the epoch (``time.time``), injectable so tests can move time
Clock = Callable[[], float]


class SignatureError(WebhookError):
    """Credentials or signature missing or wrong (401)."""

    status: ClassVar[int] = 401


class ForbiddenError(WebhookError):
    """Authentic, but not for us: an unexpected SNS topic, say (403)."""

    status: ClassVar[int] = 403


class ReplayError(WebhookError):
    """Timestamp outside the tolerance, or a nonce / every event already seen (409)."""

    status: ClassVar[int] = 409


class PayloadError(WebhookError):
    """The body is not what the provider documents (400)."""

    status: ClassVar[int] = 400


class UpstreamError(WebhookError):
    """Something we had to fetch (an SNS certificate) could not be fetched (502)."""

    status: ClassVar[int] = 502


@dataclass(frozen=True)
class WebhookRequest:
    """The parts of an HTTP request a verifier may look at; header names in lower case."""

    headers: Mapping[str, str]
    body: bytes
    query: Mapping[str, str] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        """A header's value, by case-insensitive name."""
        return self.headers.get(name.lower())


@dataclass(frozen=True)
class Deps:
    """What verifiers are built with besides the config; injected by tests, else defaults.

    One object rather than keyword arguments, so that every adapter's ``from_config``
    takes the same two parameters and a new dependency is added in one place.
    """

    #: where secrets are read (``os.environ`` when None)
    environ: Mapping[str, str] | None = None
    #: the client for what a verifier fetches (SNS certificates); one per fetch when None
    http: httpx.Client | None = None
    clock: Clock | None = None

    def secret(self, provider: str, key: str, var: str) -> str:
        """The secret in environment variable ``var``, or a ConfigError naming the key."""
        value = (os.environ if self.environ is None else self.environ).get(var, "").strip()
        if not value:
            raise ConfigError(
                f"webhooks.{provider}.{key}: environment variable {var} is not set "
                f"(it must hold the {provider} webhook secret)"
            )
        return value


class Verifier(ABC):
    """Authenticates one provider's webhook calls and parses them into events."""

    #: the provider name: the ``{provider}`` in ``/webhooks/{provider}`` and the config key
    name: ClassVar[str]
    #: media types the provider posts with (anything else is answered 415)
    content_types: ClassVar[tuple[str, ...]] = ("application/json",)

    @classmethod
    @abstractmethod
    def from_config(cls, config: Webhooks, deps: Deps) -> Self:
        """Build from the ``[webhooks]`` table; secrets are read through ``deps``."""

    @abstractmethod
    def verify(self, request: WebhookRequest) -> list[Event]:
        """The events in an authentic request; raises a ``WebhookError`` subclass otherwise.

        Signatures are checked over the raw body before anything in it is trusted.
        """

    def replay_key(self, request: WebhookRequest) -> str | None:
        """A per-request nonce the provider sends (an already verified request), if any.

        A request whose nonce was seen before is refused as a replay.
        """
        return None

    def close(self) -> None:
        """Release what the verifier holds (nothing, unless it owns a client)."""
        return None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def check_fresh(timestamp: float, now: float, tolerance: int) -> None:
    """Refuse a signed timestamp older (or further ahead) than ``tolerance`` seconds."""
    if not math.isfinite(timestamp):  # nan compares false both ways and would pass below
        raise ReplayError(f"timestamp {timestamp!r} is not a finite number")
    age = now - timestamp
    if age > tolerance:
        raise ReplayError(f"timestamp is {int(age)} s old (tolerance {tolerance} s)")
    if -age > tolerance:
        raise ReplayError(f"timestamp is {int(-age)} s in the future (tolerance {tolerance} s)")


def unix_time(value: str, header: str) -> int:
    """A signed Unix-seconds timestamp header's value, or a SignatureError naming it."""
    if not value.strip().isdigit():
        raise SignatureError(f"{header} is not a Unix timestamp")
    return int(value)


#: deepest nesting of arrays and objects any provider sends (SES: about 6)
MAX_JSON_DEPTH: Final = 64
#: a string (escapes kept inside it) or a bracket: all the depth scan needs to see
_JSON_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


def json_depth_exceeds(data: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the JSON text ``data`` nests arrays and objects deeper than ``limit``.

    A linear scan that builds nothing: run before ``json.loads``, whose recursion a
    100,000-deep ``[[[…`` would exhaust (a RecursionError, not a JSON error).
    """
    if data.count(b"[") + data.count(b"{") <= limit:
        return False
    depth = 0
    for match in _JSON_TOKEN.finditer(data):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return True
        elif token in (b"]", b"}"):
            depth -= 1
    return False


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999: an infinity no timestamp or count can be
        raise ValueError(f"{text[:20]} is out of range")
    return value


def json_value(data: bytes | str, what: str = "body") -> Any:
    """``data`` parsed as strict JSON, or a PayloadError naming ``what``.

    Bounded before parsing: nesting deeper than :data:`MAX_JSON_DEPTH` is refused
    unparsed; NaN, Infinity, overflowing floats and integers past Python's digit limit
    are refused rather than raising past the handler. The size is bounded by the caller
    (the endpoint reads at most ``webhooks.max_body_bytes``).
    """
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if json_depth_exceeds(raw):
        raise PayloadError(f"{what} nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        text = raw.decode("utf-8")
        return json.loads(text, parse_constant=_no_constant, parse_float=_finite)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        # ValueError covers JSONDecodeError and the int digit limit
        raise PayloadError(f"{what} is not valid JSON: {str(exc)[:200]}") from exc


def json_body(body: bytes) -> Any:
    """The parsed JSON body (see :func:`json_value`), or a PayloadError."""
    return json_value(body, "body")


def default_clock(clock: Clock | None) -> Clock:
    """``clock`` or ``time.time``."""
    return clock or time.time


class TimestampedVerifier(Verifier):
    """A verifier for a provider that signs a timestamp: stale or future calls are replays."""

    def __init__(self, *, tolerance: int, clock: Clock | None = None) -> None:
        self.tolerance = tolerance
        self.clock = default_clock(clock)

    def fresh(self, signed_at: float) -> datetime:
        """The current time (the events' fallback time), once ``signed_at`` is within the
        tolerance of it; ReplayError otherwise."""
        now = self.clock()
        check_fresh(signed_at, now, self.tolerance)
        return datetime.fromtimestamp(now, UTC)
