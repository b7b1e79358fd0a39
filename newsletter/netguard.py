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

import contextlib
import ipaddress
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

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: host, port -> the addresses to try, in order (``socket.getaddrinfo`` by default)
Resolver = Callable[[str, int], list[str]]

_V4 = [
    ("0.0.0.0/8", "an unspecified ('this network') address"),
    ("10.0.0.0/8", "a private address"),
    ("100.64.0.0/10", "a shared (CGNAT) address"),
    ("127.0.0.0/8", "a loopback address"),
    ("169.254.0.0/16", "a link-local address"),
    ("172.16.0.0/12", "a private address"),
    ("192.0.0.0/24", "an IETF protocol address"),
    ("192.0.2.0/24", "a documentation address"),
    ("192.88.99.0/24", "a 6to4 relay address"),
    ("192.168.0.0/16", "a private address"),
    ("198.18.0.0/15", "a benchmarking address"),
    ("198.51.100.0/24", "a documentation address"),
    ("203.0.113.0/24", "a documentation address"),
    ("224.0.0.0/4", "a multicast address"),
    ("255.255.255.255/32", "the broadcast address"),
    ("240.0.0.0/4", "a reserved address"),
]
_V6 = [
    ("::/128", "the unspecified address"),
    ("::1/128", "a loopback address"),
    ("64:ff9b:1::/48", "a local-use NAT64 address"),
    ("100::/64", "a discard-only address"),
    ("2001:db8::/32", "a documentation address"),
    ("3fff::/20", "a documentation address"),
    ("fc00::/7", "a unique local (private) address"),
    ("fe80::/10", "a link-local address"),
    ("fec0::/10", "a site-local address"),
    ("ff00::/8", "a multicast address"),
    ("::/8", "a reserved address"),
]
_V4_NETS = [(ipaddress.IPv4Network(net), why) for net, why in _V4]
_V6_NETS = [(ipaddress.IPv6Network(net), why) for net, why in _V6]
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")

_DEADLINE: ContextVar[float | None] = ContextVar("newsletter_fetch_deadline", default=None)


def refusal(address: str | IPAddress) -> str | None:
    """Why ``address`` may not be fetched from (``"a loopback address"``), or ``None``.

    Addresses that carry an IPv4 address inside (IPv4-mapped, NAT64, 6to4, Teredo) are
    judged by that address too, so ``::ffff:127.0.0.1`` is as loopback as ``127.0.0.1``.
    """
    ip = ipaddress.ip_address(address.split("%", 1)[0] if isinstance(address, str) else address)
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            why = refusal(ip.ipv4_mapped)
            return None if why is None else f"{why} ({ip.ipv4_mapped} inside {ip})"
        embedded = _embedded_v4(ip)
        for inner in embedded:
            why = refusal(inner)
            if why is not None:
                return f"{why} ({inner} inside {ip})"
        for net, why in _V6_NETS:
            if ip in net:
                return why
        if not embedded and not ip.is_global:
            return "not a public address"
        return None
    for net4, why in _V4_NETS:
        if ip in net4:
            return why
    return None if ip.is_global else "not a public address"


def _embedded_v4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    found = []
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)
    if ip in _NAT64:
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def literal_address(host: str) -> IPAddress | None:
    """The address a URL host denotes when it is numeric, in any spelling, else ``None``.

    Browsers and ``inet_aton`` read ``2130706433``, ``0x7f.1``, ``017700000001`` and
    ``127.1`` as ``127.0.0.1``; so does this (the WHATWG URL rules). A host that ends in a
    number but is no valid address raises ``ValueError``.
    """
    text = host.strip("[]")
    if ":" in text:
        return ipaddress.IPv6Address(text.split("%", 1)[0])
    labels = text[:-1].split(".") if text.endswith(".") else text.split(".")
    if not labels or not _is_number(labels[-1]):
        return None
    if len(labels) > 4:
        raise ValueError(f"{host!r} is not a valid IPv4 address")
    numbers = [_number(label, host) for label in labels]
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(numbers)):
        raise ValueError(f"{host!r} is not a valid IPv4 address")
    value = last
    for i, n in enumerate(head):
        value += n << (8 * (3 - i))
    return ipaddress.IPv4Address(value)


def _is_number(label: str) -> bool:
    if label[:2].lower() == "0x":
        return all(c in "0123456789abcdefABCDEF" for c in label[2:])
    return label.isascii() and label.isdigit()


def _number(label: str, host: str) -> int:
    try:
        if label[:2].lower() == "0x":
            return int(label[2:] or "0", 16)
        if len(label) > 1 and label.startswith("0"):
            return int(label[1:], 8)
        return int(label, 10)
    except ValueError as exc:
        raise ValueError(f"{host!r} is not a valid IPv4 address") from exc


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


def literal_address_or_none(host: str) -> IPAddress | None:
    """:func:`literal_address`, with ``None`` for hosts that are no valid address."""
    try:
        return literal_address(host)
    except ValueError:
        return None


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

    Redirects are not followed by the client: :func:`newsletter.sources.fetch.fetch_url`
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
        self.allowed_origins = frozenset(self.policy.allow_private)
        allowed = {_host_port(origin) for origin in self.allowed_origins}
        self._resolver = resolver or _system_resolver
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
