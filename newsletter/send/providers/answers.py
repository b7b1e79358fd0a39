"""What a provider's HTTP answer says, and what its absence says.

Split from :mod:`newsletter.send.providers.http` (which sends): these only read.

- :func:`retry_after_from` / :func:`parse_retry_after`: how long the provider asked us to
  wait (``Retry-After``, or a rate-limit reset header); :func:`throttle_wait` for a
  throttling answer, which always gets a wait;
- :func:`json_body`: the JSON of an answer, or None when it has none;
- :func:`error_text` / :func:`labelled_error`: the provider's own error text, shortened
  for storing;
- :class:`RequestTrace` and :func:`may_have_arrived`: after a transport error, whether the
  provider can have received the whole request. A refused connection, a connect or pool
  timeout, or a request body that was never fully written cannot have been acted on; a
  read timeout, a reset or a close *after* the body went out can (the provider may have
  taken the batch and lost only its answer).

httpcore does not say which by the exception alone: on HTTP/1.1 it swallows a write error
and goes on to read, so a ``ReadError`` or ``RemoteProtocolError`` can follow a body that
never went out. The request's ``trace`` extension reports ``send_request_body.complete``
once the last byte is written, which settles it. "Written" means handed to the event
loop's transport: a connection that breaks at that very moment can still be reported
complete. That errs on the safe side (a request that never left is called ambiguous,
never the reverse).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any, Final

import httpx

__all__ = [
    "ERROR_LIMIT",
    "RESET_HEADERS",
    "THROTTLE_WAIT",
    "RequestTrace",
    "error_text",
    "json_body",
    "labelled_error",
    "may_have_arrived",
    "parse_retry_after",
    "retry_after_from",
    "throttle_wait",
]

#: headers giving the seconds (or epoch time) when a rate limit resets, first match wins
RESET_HEADERS: Final = (
    "ratelimit-reset",
    "x-ratelimit-reset",
    "x-sib-ratelimit-reset",
    "x-rate-limit-reset",
)
#: seconds to wait after a throttling answer that names no time (Postmark's and SES's
#: 429s, SES throttling errors): the per-second windows providers limit by
THROTTLE_WAIT: Final = 1.0
#: longest provider error text kept in a result (stored per delivery row)
ERROR_LIMIT: Final = 500
# a reset value above this is an epoch timestamp, below it a number of seconds
_EPOCH_THRESHOLD: Final = 1_000_000_000
#: raised before a complete request can have reached the provider. ProxyError comes from
#: setting up the proxy tunnel, before our request is written.
_NEVER_ARRIVED: Final = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.WriteError,
    httpx.WriteTimeout,
    httpx.ProxyError,
)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delta seconds or an HTTP date.

    ``None`` for a missing or unreadable value; never negative.
    """
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000" dates are UTC by RFC 5322
        return None
    current = time.time() if now is None else now
    return max(when.timestamp() - current, 0.0)


def retry_after_from(headers: httpx.Headers, *, now: float | None = None) -> float | None:
    """Seconds to wait according to the answer: ``Retry-After``, else a rate-limit reset.

    Reset headers hold either seconds to wait (Brevo, IETF ``RateLimit-Reset``) or the epoch
    second of the reset (SendGrid, GitHub style); values past year 2001 are taken as epoch.
    """
    parsed = parse_retry_after(headers.get("retry-after"), now=now)
    if parsed is not None:
        return parsed
    for name in RESET_HEADERS:
        raw = headers.get(name)
        if raw is None:
            continue
        try:
            number = float(raw.strip())
        except ValueError:
            continue
        if number > _EPOCH_THRESHOLD:
            number -= time.time() if now is None else now
        return max(number, 0.0)
    return None


def throttle_wait(headers: httpx.Headers, *, now: float | None = None) -> float:
    """Seconds to wait after a throttling answer: what it says, else :data:`THROTTLE_WAIT`.

    Never None: a throttled message must come back as throttled (its ``retry_after`` set),
    so the sender pauses every batch and the message keeps its attempts; a throttle
    without a wait would be retried like a failure and could end ``failed``.
    """
    wait = retry_after_from(headers, now=now)
    return THROTTLE_WAIT if wait is None else wait


def json_body(response: httpx.Response) -> Any:
    """The answer's JSON, or None when the body is not JSON (or was never read)."""
    try:
        return response.json()
    except (ValueError, UnicodeDecodeError, httpx.ResponseNotRead):
        return None


def _flatten_error(body: Any) -> str | None:
    """The human text of the usual JSON error shapes, else None."""
    if isinstance(body, Mapping):
        for key in ("message", "Message", "error", "detail", "title"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value
            if isinstance(value, Mapping):
                inner = _flatten_error(value)
                if inner:
                    return inner
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            parts = [_flatten_error(e) or str(e) for e in errors]
            return "; ".join(parts)
    if isinstance(body, str) and body:
        return body
    return None


def labelled_error(response: httpx.Response, label: str) -> str | None:
    """``HTTP 400: <label value>: <message>`` for a JSON error with ``message`` and a code
    or name under ``label`` (Brevo's ``code``, Resend's ``name``); None for other shapes."""
    body = json_body(response)
    if not isinstance(body, dict) or "message" not in body:
        return None
    prefix = f"{body[label]}: " if body.get(label) else ""
    return f"HTTP {response.status_code}: {prefix}{body['message']}"[:ERROR_LIMIT]


def error_text(response: httpx.Response) -> str:
    """``HTTP <status>: <the provider's own error text>``, shortened for storing."""
    text = _flatten_error(json_body(response))
    if text is None:
        try:
            text = response.text.strip()
        except (UnicodeDecodeError, httpx.ResponseNotRead):
            text = ""
    text = " ".join(text.split())
    detail = f"HTTP {response.status_code}: {text}" if text else f"HTTP {response.status_code}"
    return detail[:ERROR_LIMIT]


class RequestTrace:
    """httpx's ``trace`` request extension, noting whether the request body went out whole.

    Pass one per request as ``extensions={"trace": trace}`` (an async callable, as the
    async client requires), then ask :func:`may_have_arrived` after an error.
    """

    __slots__ = ("body_sent", "traced")

    def __init__(self) -> None:
        #: the transport reported any event at all (custom transports may report none)
        self.traced = False
        #: the last byte of the request body was written to the connection
        self.body_sent = False

    async def __call__(self, event: str, info: Mapping[str, Any]) -> None:
        """Record one httpcore event (``http11.send_request_body.complete``, ...)."""
        self.traced = True
        if event.endswith("send_request_body.complete"):
            self.body_sent = True


def may_have_arrived(exc: httpx.HTTPError, trace: RequestTrace) -> bool:
    """Whether the provider can have received the whole request that failed with ``exc``.

    False only when that is certain: the error happened while connecting or writing, or
    the trace shows the body was never completely written. A transport that reports no
    trace events gets the benefit of no doubt: anything after connecting may have arrived.
    """
    if isinstance(exc, _NEVER_ARRIVED):
        return False
    if trace.traced:
        return trace.body_sent
    return True
