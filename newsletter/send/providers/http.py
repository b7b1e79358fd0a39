"""Shared base of every provider reached over HTTP: one pooled client, answers -> results.

An HTTP adapter subclasses :class:`HttpProvider` and writes two things:

- ``build(config, settings)``: a classmethod turning its ``[provider]`` table into an
  instance. :meth:`HttpProvider.from_config` has already checked the config type, the
  batch size and ``base_url`` (errors naming the file and key); read credentials with
  :func:`env_secret` and pass :func:`client_options` ``(config)`` on to ``__init__``.
- ``send_batch(messages)``: call :meth:`HttpProvider.start_batch` first (size check,
  closed check), then :meth:`HttpProvider.exchange` once per API request. ``exchange``
  returns the ``httpx.Response`` when the answer is 2xx, and otherwise a :class:`Failed`
  already holding one result per message of that request::

      answer = await self.exchange(batch, "POST", "/email/batch", json=payload)
      if isinstance(answer, Failed):
          return answer.results
      ...  # read answer.json() into one SendResult per message

How answers map to results (the same for every provider):

- 408, 429, 5xx -> ``RETRYABLE`` for every message of the request, with ``retry_after``
  from ``Retry-After`` (seconds or HTTP date) or a rate-limit reset header when given. A
  429 always carries a ``retry_after`` (:data:`THROTTLE_WAIT` when the provider names no
  time): it is the provider slowing us down, which pauses the whole process and never
  uses up a recipient's attempts;
- transport errors before the request was complete at the provider (refused connection,
  connect or pool timeout, body not fully written) -> ``RETRYABLE``: nothing was taken;
- transport errors after it was (read timeout, reset or close before the answer): the
  provider may have taken the request -> ``RETRYABLE`` when it deduplicates a resend
  (:attr:`~newsletter.send.providers.base.Provider.supports_idempotency`), else ``UNKNOWN``,
  which is never re-sent automatically (see :mod:`newsletter.send.providers.answers`);
- 401 / 403 -> :class:`~newsletter.errors.ProviderError` is raised: the credentials or the
  account are unusable, so the caller stops instead of failing every message;
- other 4xx -> ``PERMANENT`` with the provider's error text (``Failed.rejection`` set), see
  :meth:`HttpProvider.send_isolating` for APIs that reject a whole request because of one
  bad recipient.

No ``httpx`` exception ever leaves this module's methods.
"""

from __future__ import annotations

import abc
import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Final, Self, TypedDict, Unpack

import httpx

from newsletter import __version__
from newsletter.config.providers import HttpProviderBase
from newsletter.errors import ConfigError, ProviderError
from newsletter.models import OutgoingMessage, ResultStatus, SendResult
from newsletter.send.providers.answers import (
    ERROR_LIMIT,
    RESET_HEADERS,
    THROTTLE_WAIT,
    RequestTrace,
    error_text,
    json_body,
    labelled_error,
    may_have_arrived,
    parse_retry_after,
    retry_after_from,
    throttle_wait,
)
from newsletter.send.providers.base import Found, Probe, Provider
from newsletter.send.providers.configured import check_batch_size, env_secret, where

if TYPE_CHECKING:
    from newsletter.config import Settings

__all__ = [
    "ERROR_LIMIT",
    "RESET_HEADERS",
    "THROTTLE_WAIT",
    "ClientOptions",
    "Failed",
    "HttpProvider",
    "Unanswered",
    "check_batch_size",
    "client_options",
    "env_secret",
    "error_text",
    "every",
    "json_body",
    "labelled_error",
    "mailbox",
    "parse_retry_after",
    "retry_after_from",
    "share_key",
    "throttle_wait",
]

USER_AGENT: Final = f"newsletter/{__version__} (+httpx)"
_RETRYABLE_STATUS: Final = frozenset({408, 425, 429})
# errors that will recur on every request: a config problem, not a passing failure
_FATAL_TRANSPORT: Final = (httpx.UnsupportedProtocol, httpx.InvalidURL, httpx.LocalProtocolError)


class ClientOptions(TypedDict, total=False):
    """Keyword arguments of :class:`HttpProvider` about the connection, not the provider."""

    #: overrides the class's ``default_base_url``
    base_url: str | None
    #: seconds for connect, read, write and pool waits
    timeout: float
    #: batches in flight at once: sizes the connection pool
    concurrency: int
    #: a client to use instead of building one (it is not closed by the provider)
    client: httpx.AsyncClient | None


def client_options(config: HttpProviderBase) -> ClientOptions:
    """The :class:`HttpProvider` keyword arguments every HTTP provider config carries."""
    return ClientOptions(
        base_url=config.base_url, timeout=config.timeout, concurrency=config.concurrency
    )


def mailbox(name: str, address: str) -> str:
    """``"Name" <address>`` for JSON/form APIs, or the bare address without a name.

    The name is always quoted (commas, dots and quotes in names break unquoted forms) and
    kept as Unicode: the provider encodes the header, so Cyrillic arrives intact.
    """
    name = " ".join(name.split())
    if not name:
        return address
    quoted = name.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{quoted}" <{address}>'


def share_key(msg: OutgoingMessage) -> tuple[str, str, str, str, str]:
    """What must be equal for messages to travel in one request with one body.

    The body (its :class:`~newsletter.models.SharedBody` key, else a digest of the HTML and
    text), the subject, the sender and the reply-to: APIs that send one body to many
    recipients (SendGrid personalizations, Mailgun recipient-variables) vary only the
    per-recipient values.
    """
    if msg.shared is not None:
        body = msg.shared.key
    else:
        body = hashlib.sha256(f"{msg.html}\0{msg.text}".encode()).hexdigest()
    return (body, msg.subject, msg.from_email, msg.from_name, msg.reply_to or "")


@dataclass(frozen=True)
class Failed:
    """A request without a 2xx answer: one result per message it carried, in order."""

    results: list[SendResult]
    #: the provider's error text when it rejected the request as invalid (4xx), else None
    rejection: str | None = None
    #: the HTTP status, or None for a transport error
    status: int | None = None


def every(
    messages: Sequence[OutgoingMessage],
    status: ResultStatus,
    error: str,
    retry_after: float | None = None,
) -> list[SendResult]:
    """The same result for every message."""
    return [
        SendResult(m.delivery_id, status, error=error, retry_after=retry_after) for m in messages
    ]


#: what :meth:`HttpProvider.send_isolating` learns from a rejection: the indexes (into the
#: group) of the recipients at fault, an empty collection for "a recipient, unknown which",
#: or None for "not a recipient's fault" (every message fails alike)
Culprits = Callable[[Failed, Sequence[OutgoingMessage]], Collection[int] | None]
#: one request for a group of messages: its results, or the Failed of exchange()
GroupSender = Callable[[Sequence[OutgoingMessage]], Awaitable["list[SendResult] | Failed"]]


def _blame(message: OutgoingMessage, result: SendResult) -> SendResult:
    """``result`` with the recipient's address in its error, so a log line says who."""
    error = result.error or "rejected"
    if message.to_email not in error:
        error = f"{error} (recipient {message.to_email!r})"[:ERROR_LIMIT]
    return SendResult(message.delivery_id, ResultStatus.PERMANENT, error=error)


class Unanswered(Exception):
    """A lookup request that told nothing (no answer, an error, an unreadable body)."""


class HttpProvider(Provider):
    """A provider behind an HTTP API, sharing one pooled ``httpx.AsyncClient``.

    ``base_url`` overrides :attr:`default_base_url` (EU hosts, proxies, tests). Auth
    ``headers`` and ``auth`` are sent with every request, so an injected ``client`` (tests,
    a process-wide pool) needs neither; only a client built here is closed by
    :meth:`aclose`. Connection pool size follows ``concurrency`` (batches in flight).
    """

    #: the provider's public API host, used unless ``base_url`` is configured
    default_base_url: ClassVar[str] = ""
    #: the ``[provider]`` model this class is built from
    config_type: ClassVar[type[HttpProviderBase]] = HttpProviderBase

    def __init__(
        self,
        *,
        headers: Mapping[str, str] | None = None,
        auth: httpx.Auth | None = None,
        **options: Unpack[ClientOptions],
    ) -> None:
        base_url = options.get("base_url")
        timeout = options.get("timeout", 30.0)
        concurrency = options.get("concurrency", 4)
        client = options.get("client")
        self.base_url = (base_url or self.default_base_url).rstrip("/")
        if not self.base_url.startswith(("http://", "https://")):
            raise ConfigError(f"provider.base_url: {self.base_url!r} is not an http(s) URL")
        self.headers = {"User-Agent": USER_AGENT, **(headers or {})}
        self.auth = auth
        self.concurrency = concurrency
        self._owns_client = client is None
        self.client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(
                max_connections=concurrency + 2,
                max_keepalive_connections=concurrency + 2,
                keepalive_expiry=30.0,
            ),
            follow_redirects=False,
        )

    @classmethod
    def from_config(cls, config: Any, settings: Settings) -> Self:
        """Check the table's type and ``batch_size``, then :meth:`build` the provider."""
        if not isinstance(config, cls.config_type):
            raise ProviderError(
                f"{cls.name}: expected a {cls.name} provider config, got {config!r}"
            )
        check_batch_size(cls, config, settings)
        if config.base_url is not None and not config.base_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"{where(settings)}provider.base_url: {config.base_url!r} is not an http(s) URL"
            )
        return cls.build(config, settings)

    @classmethod
    @abc.abstractmethod
    def build(cls, config: Any, settings: Settings) -> Self:
        """The provider for a checked ``[provider]`` table (credentials via :func:`env_secret`)."""

    def url(self, path: str) -> str:
        """Absolute URL of an API ``path`` on the configured host."""
        return self.base_url + path

    def start_batch(self, messages: Sequence[OutgoingMessage]) -> None:
        """Checks every ``send_batch`` makes first: the batch size and that we are open."""
        self.check_batch(messages)
        if self.closed:
            raise ProviderError(f"{self.name}: provider is closed")

    async def exchange(
        self,
        messages: Sequence[OutgoingMessage],
        method: str,
        path: str,
        **kwargs: Any,
    ) -> httpx.Response | Failed:
        """Send one request carrying ``messages``; the 2xx response, or the failure mapped.

        ``kwargs`` go to :meth:`httpx.AsyncClient.request` (``json``, ``data``, ``files``,
        ``headers`` merged over the provider's). Raises :class:`ProviderError` only for
        401/403 and for URLs that can never work.
        """
        headers = {**self.headers, **kwargs.pop("headers", {})}
        if self.auth is not None:
            kwargs.setdefault("auth", self.auth)
        trace = RequestTrace()
        extensions = {**kwargs.pop("extensions", {}), "trace": trace}
        try:
            response = await self.client.request(
                method, self.url(path), headers=headers, extensions=extensions, **kwargs
            )
        except _FATAL_TRANSPORT as exc:
            raise ProviderError(f"{self.name}: cannot call {self.url(path)}: {exc}") from exc
        except httpx.HTTPError as exc:
            return self.no_answer(messages, path, exc, trace)
        if response.is_success:
            return response
        return self.failure(response, messages)

    async def lookup(self, probes: Sequence[Probe]) -> Found:
        """Look every probe up with :meth:`lookup_one`, ``concurrency`` requests at a time;
        a probe whose request failed (no answer, 5xx, an unreadable body) is left out."""
        if self.lookup_horizon is None:
            return await super().lookup(probes)
        gate = asyncio.Semaphore(self.concurrency)

        async def one(probe: Probe) -> tuple[int, str | None] | None:
            async with gate:
                try:
                    return probe.delivery_id, await self.lookup_one(probe)
                except Unanswered:
                    return None

        answers = await asyncio.gather(*(one(p) for p in probes))
        return dict(a for a in answers if a is not None)

    async def lookup_one(self, probe: Probe) -> str | None:
        """The provider's message id for ``probe``, None if it has none; raises
        :class:`Unanswered` when it could not tell. Providers with a lookup override it."""
        raise Unanswered(f"{self.name} has no message search")

    async def get_json(self, url: str, params: Mapping[str, str] | None = None) -> Any:
        """GET ``url`` (a path on the configured host, or an absolute URL on it) and return
        its JSON; :class:`Unanswered` for anything but a readable 2xx answer, and
        :class:`ProviderError` when the credentials are refused."""
        if not url.startswith(("http://", "https://")):
            url = self.url(url)
        elif not url.startswith(self.base_url + "/"):
            # a paging link pointing elsewhere is never followed with our credentials
            raise Unanswered(f"{self.name}: refused to follow {url!r} off {self.base_url}")
        kwargs: dict[str, Any] = {"headers": self.headers, "params": params}
        if self.auth is not None:
            kwargs["auth"] = self.auth
        try:
            response = await self.client.get(url, **kwargs)
        except _FATAL_TRANSPORT as exc:
            raise ProviderError(f"{self.name}: cannot call {url}: {exc}") from exc
        except httpx.HTTPError as exc:
            raise Unanswered(f"{self.name}: no answer from {url} ({exc})") from exc
        if response.status_code in (401, 403):
            raise ProviderError(
                f"{self.name}: {response.request.url.path} refused the credentials "
                f"({self.error_text(response)})"
            )
        body = json_body(response) if response.is_success else None
        if body is None:
            raise Unanswered(f"{self.name}: {self.error_text(response)}")
        return body

    def no_answer(
        self,
        messages: Sequence[OutgoingMessage],
        path: str,
        exc: httpx.HTTPError,
        trace: RequestTrace,
    ) -> Failed:
        """Map a request that got no answer (see the module docstring)."""
        # the verdict goes last and must survive ERROR_LIMIT: shorten the reason instead
        reason = f"{exc.__class__.__name__}: {exc}".rstrip(": ")[:200]
        error = f"{self.name}: no answer from {self.url(path)} ({reason})"
        status = ResultStatus.RETRYABLE
        if not may_have_arrived(exc, trace):
            error += "; the request did not reach the provider"
        elif self.supports_idempotency:
            error += "; it may have been accepted, a resend under the same key is deduplicated"
        else:
            # a resend could deliver it twice: an operator decides (resume --resend-unknown)
            status = ResultStatus.UNKNOWN
            error += "; it may have been accepted, so it is not sent again automatically"
        return Failed(every(messages, status, error[:ERROR_LIMIT]))

    def failure(self, response: httpx.Response, messages: Sequence[OutgoingMessage]) -> Failed:
        """Map a non-2xx answer (see the module docstring); raises for 401/403."""
        status = response.status_code
        text = self.error_text(response)
        if status in (401, 403):
            raise ProviderError(
                f"{self.name}: {self.url(response.request.url.path)} refused the credentials "
                f"or account ({text})"
            )
        if status == 429:
            wait: float | None = throttle_wait(response.headers)
            return Failed(every(messages, ResultStatus.RETRYABLE, text, wait), status=status)
        if status in _RETRYABLE_STATUS or status >= 500:
            wait = retry_after_from(response.headers)
            return Failed(every(messages, ResultStatus.RETRYABLE, text, wait), status=status)
        return Failed(every(messages, ResultStatus.PERMANENT, text), rejection=text, status=status)

    def error_text(self, response: httpx.Response) -> str:
        """The provider's error text of a failed answer; override for odd error shapes."""
        return error_text(response)

    async def send_isolating(
        self,
        messages: Sequence[OutgoingMessage],
        send_group: GroupSender,
        culprits: Culprits,
    ) -> list[SendResult]:
        """Send ``messages`` with ``send_group``, so one bad recipient fails only itself.

        For APIs that reject a whole request when one address is invalid (SendGrid,
        Mailgun): on a rejection ``culprits`` names the recipients at fault, which get the
        permanent result while the others are sent again; when it cannot tell which, the
        group is halved until the fault is found (log2(n) extra requests per bad address).
        Rejections that are no recipient's fault fail the group without more requests.
        """
        answer = await send_group(messages)
        if not isinstance(answer, Failed):
            return answer
        if answer.rejection is None:
            return answer.results
        faulty = culprits(answer, messages)
        if faulty is None:
            return answer.results
        bad = {i for i in faulty if 0 <= i < len(messages)} or (
            {0} if len(messages) == 1 else set()
        )
        if bad:
            rest = [m for i, m in enumerate(messages) if i not in bad]
            sent = iter(await self.send_isolating(rest, send_group, culprits) if rest else [])
            return [
                _blame(messages[i], answer.results[i]) if i in bad else next(sent)
                for i in range(len(messages))
            ]
        mid = len(messages) // 2
        first = await self.send_isolating(messages[:mid], send_group, culprits)
        return first + await self.send_isolating(messages[mid:], send_group, culprits)

    async def send_groups(
        self,
        messages: Sequence[OutgoingMessage],
        groups: Iterable[Sequence[int]],
        send_group: GroupSender,
        culprits: Culprits,
    ) -> list[SendResult]:
        """Send each group of ``messages`` (given as indexes) with :meth:`send_isolating`,
        one after the other; one result per message, in the order of ``messages``."""
        results: list[SendResult | None] = [None] * len(messages)
        for indexes in groups:
            sent = await self.send_isolating([messages[i] for i in indexes], send_group, culprits)
            for index, result in zip(indexes, sent, strict=True):
                results[index] = result
        done = [r for r in results if r is not None]
        if len(done) != len(messages):
            raise ValueError(f"{self.name}: groups do not cover every message of the batch")
        return done

    async def aclose(self) -> None:
        """Close the pooled client when this provider built it; safe to call twice."""
        if self._owns_client and not self.client.is_closed:
            await self.client.aclose()
        await super().aclose()
