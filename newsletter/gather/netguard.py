"""The network guard: gathered content may only make us connect to public addresses.

A feed, a listing page or a redirect chooses where the next request goes, so a hostile one
could point it at ``127.0.0.1``, a private network or a cloud metadata address and have
the answer mailed out. :class:`GuardedClient` is the one HTTP client gathering uses. Its
network backend resolves each host itself, refuses when any resolved address is not
public, connects to the checked address (never resolving again, so DNS rebinding gains
nothing) and checks the peer address of the socket it got. TLS still verifies the original
host name: httpcore starts TLS on the returned stream with the URL's host as SNI.

Only origins listed in ``[gather] allow_private`` may be private. The same backend clamps
every socket operation to the current fetch's deadline (:func:`deadline`).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import socket
import ssl
import time
import typing
from collections.abc import Callable, Iterator
from contextvars import ContextVar

import httpcore
import httpx

from newsletter.config import Gather
from newsletter.config.gather import DEFAULT_PORTS
from newsletter.errors import DestinationRefusedError
from newsletter.gather.addresses import literal_address, literal_address_or_none, refusal
from newsletter.gather.hosts import HostSlots
from newsletter.redact import MaskingFilter

__all__ = [
    "USER_AGENT",
    "GuardedClient",
    "Resolver",
    "deadline",
    "literal_address",
    "refusal",
    "remaining",
]

USER_AGENT = "newsletter/0.1 (+https://example.org/newsletter)"

#: host, port -> the addresses to try, in order (``socket.getaddrinfo`` by default)
Resolver = Callable[[str, int], list[str]]

_DEADLINE: ContextVar[float | None] = ContextVar("newsletter_fetch_deadline", default=None)


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Bound every connect, read and write of the guarded clients in this block."""
    token = _DEADLINE.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def remaining() -> float | None:
    """Seconds left of the current :func:`deadline` (``None`` outside one)."""
    end = _DEADLINE.get()
    return None if end is None else end - time.monotonic()


def _clamp(timeout: float | None, exc: type[Exception]) -> float | None:
    left = remaining()
    if left is None:
        return timeout
    if left <= 0:
        raise exc("the fetch's deadline passed")
    return left if timeout is None else min(timeout, left)


def _system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


# getaddrinfo has no timeout of its own: it runs here, and the fetch waits no longer than
# its deadline (a lookup that hangs on finishes in the background)
_LOOKUPS = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="nl-dns")


def _bounded(resolver: Resolver) -> Resolver:
    def resolve(host: str, port: int) -> list[str]:
        future = _LOOKUPS.submit(resolver, host, port)
        try:
            return future.result(timeout=_clamp(None, httpcore.ConnectTimeout))
        except concurrent.futures.TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"looking up {host} outlasted the deadline") from exc

    return resolve


class _DeadlineStream(httpcore.NetworkStream):
    """A socket stream whose every operation ends by the fetch's deadline."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _clamp(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _clamp(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        tls = self._inner.start_tls(
            ssl_context, server_hostname, _clamp(timeout, httpcore.ConnectTimeout)
        )
        return _DeadlineStream(tls)

    def get_extra_info(self, info: str) -> typing.Any:
        return self._inner.get_extra_info(info)


class _GuardedBackend(httpcore.NetworkBackend):
    """Resolves, checks every address, connects to a checked one and checks the peer."""

    def __init__(self, allowed: set[tuple[str, int]], resolver: Resolver) -> None:
        self._allowed = allowed
        self._resolve = resolver
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        def connect(address: str) -> httpcore.NetworkStream:
            return self._inner.connect_tcp(
                address,
                port,
                _clamp(timeout, httpcore.ConnectTimeout),
                local_address,
                socket_options,
            )

        if (host.lower().rstrip("."), port) in self._allowed:
            return _DeadlineStream(connect(host))
        try:
            addresses = self._resolve(host, port)
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        if not addresses:
            raise httpcore.ConnectError(f"cannot resolve {host}: no address")
        for address in addresses:
            _refuse(host, address)
        failure: httpcore.ConnectError | None = None
        for address in addresses:
            try:
                stream = connect(address)
            except httpcore.ConnectError as exc:
                failure = exc
                continue
            peer = stream.get_extra_info("server_addr")
            try:
                _refuse(host, str(peer[0]) if peer else "")
            except DestinationRefusedError:
                stream.close()
                raise
            return _DeadlineStream(stream)
        assert failure is not None
        raise failure

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        raise DestinationRefusedError("unix sockets are never fetched from")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def _refuse(host: str, address: str) -> None:
    try:
        why = refusal(address)
    except ValueError:
        why = "not an IP address"
    if why is None:
        return
    if literal_address_or_none(host) is not None:
        raise DestinationRefusedError(f"{address} is {why}")
    raise DestinationRefusedError(f"{host} resolves to {address}, {why}")


class _GuardedTransport(httpx.HTTPTransport):
    def __init__(self, backend: _GuardedBackend) -> None:
        # no environment proxies: the guard must see the real destination
        super().__init__(trust_env=False)
        # HTTPTransport has no parameter for the network backend; the pool it built is
        # replaced by the same pool over the guarded backend (httpx 0.28 keeps it here)
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=backend,
        )


class GuardedClient(httpx.Client):
    """The HTTP client of gathering: only public destinations, except allow-listed origins.

    Redirects are not followed by the client: :func:`newsletter.gather.sources.fetch.fetch_url`
    follows them itself and checks each hop. ``resolver`` replaces DNS (tests use it to
    play a rebinding name); other keyword arguments go to :class:`httpx.Client`.
    """

    def __init__(
        self,
        policy: Gather | None = None,
        *,
        resolver: Resolver | None = None,
        **kwargs: typing.Any,
    ) -> None:
        self.policy = policy if policy is not None else Gather()
        #: requests in flight per host, at most ``policy.per_host`` (shared by every thread)
        self.hosts = HostSlots(self.policy.per_host)
        self.allowed_origins = frozenset(self.policy.allow_private)
        allowed = {_host_port(origin) for origin in self.allowed_origins}
        self._resolver = _bounded(resolver or _system_resolver)
        backend = _GuardedBackend(allowed, self._resolver)
        headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, identity"}
        headers.update(kwargs.pop("headers", None) or {})
        super().__init__(
            transport=_GuardedTransport(backend),
            follow_redirects=False,
            trust_env=False,
            headers=headers,
            **kwargs,
        )
        _mask_httpx_logs()

    def check_url(self, url: httpx.URL) -> None:
        """Raise :class:`DestinationRefusedError` when ``url`` may not be fetched.

        Checked before connecting: the scheme, numeric hosts in every spelling, what a
        name resolves to now, and allow-listed hosts reached with another scheme. Names
        are resolved and checked again when connecting, and the connection goes to the
        address that passed then, so an answer that changes in between gains nothing.
        """
        if url.scheme not in DEFAULT_PORTS:
            raise DestinationRefusedError(f"only http and https are fetched, not {url.scheme!r}")
        host = url.host.lower().rstrip(".")
        port = url.port or DEFAULT_PORTS[url.scheme]
        shown = f"[{host}]" if ":" in host else host
        if f"{url.scheme}://{shown}:{port}" in self.allowed_origins:
            return
        if any(_host_port(o) == (host, port) for o in self.allowed_origins):
            raise DestinationRefusedError(f"{url.scheme}://{shown}:{port} is not allow-listed")
        try:
            address = literal_address(host)
        except ValueError as exc:
            raise DestinationRefusedError(str(exc)) from exc
        if address is not None:
            why = refusal(address)
            if why is not None:
                raise DestinationRefusedError(
                    f"{address} is {why}" if str(address) == host else f"{host} is {address}, {why}"
                )
            return
        try:
            resolved = self._resolver(host, port)
        except httpcore.ConnectTimeout as exc:
            raise httpx.ConnectTimeout(str(exc)) from exc
        except OSError:
            return  # the connect reports it, as any unreachable host
        for found in resolved:
            _refuse(host, found)


def _host_port(origin: str) -> tuple[str, int]:
    url = httpx.URL(origin)
    return url.host.lower(), url.port or DEFAULT_PORTS[url.scheme]


_masking = MaskingFilter()


def _mask_httpx_logs() -> None:
    # httpx logs every request's full URL at INFO: credentials included
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        if _masking not in logger.filters:
            logger.addFilter(_masking)
