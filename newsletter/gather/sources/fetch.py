"""One bounded, guarded GET: how every feed, listing and article is fetched.

Gathered content is hostile, so a fetch is limited on every axis it could abuse:

* where it goes: each URL, first and after every redirect, is checked by the
  :class:`~newsletter.gather.netguard.GuardedClient` (which also checks the address it connects
  to); redirects are followed here, hop by hop, up to ``[gather] max_redirects``;
* how long it takes: the source's ``timeout`` is one deadline for the whole fetch,
  connecting, redirects and body included, so a server trickling a byte a second cannot
  hold a source for longer;
* how big it is: the body is streamed and stops at ``[gather] max_bytes``, counted
  after decompression (a small gzip bomb is as refused as a large body), and a
  ``Content-Length`` over the limit is refused before reading.

Every message names the URL with credentials masked.
"""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import httpx

from newsletter.errors import DestinationRefusedError, SourceError
from newsletter.gather.netguard import GuardedClient, deadline, remaining
from newsletter.redact import mask_text, mask_url

__all__ = ["Fetched", "fetch_url"]

_REDIRECTS = (301, 302, 303, 307, 308)


@dataclass(frozen=True)
class Fetched:
    """A successful answer: the final URL (after redirects), status, headers and body."""

    url: str
    status_code: int
    headers: httpx.Headers
    content: bytes


class _Deadline(Exception):
    """The fetch's deadline passed between two reads of the body."""


def fetch_url(
    client: GuardedClient,
    url: str,
    *,
    timeout: float,
    headers: dict[str, str] | None = None,
    allow_not_modified: bool = False,
) -> Fetched:
    """GET ``url`` within ``timeout`` seconds in all and ``client.policy``'s limits.

    A refused destination raises :class:`DestinationRefusedError`; timeouts, network
    errors, oversize bodies and status >= 400 (or an unexpected 304) raise
    :class:`SourceError`. Each is one line naming the URL, credentials masked.
    """
    if not isinstance(client, GuardedClient):
        raise TypeError("fetch_url needs a GuardedClient: gathered content is fetched guarded")
    shown = mask_url(url)
    try:
        with deadline(timeout):
            return _follow(client, url, shown, headers or {}, allow_not_modified)
    except (httpx.TimeoutException, _Deadline) as exc:
        raise SourceError(
            f"{shown}: timed out after {timeout:g}s (the whole fetch, redirects and body)"
        ) from exc
    except httpx.HTTPError as exc:
        raise SourceError(f"{shown}: {type(exc).__name__}: {mask_text(str(exc))}") from exc


def _follow(
    client: GuardedClient,
    url: str,
    shown: str,
    headers: dict[str, str],
    allow_not_modified: bool,
) -> Fetched:
    try:
        current = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise SourceError(f"{shown}: not a valid URL: {exc}") from exc
    hops = client.policy.max_redirects
    for hop in range(hops + 1):
        where = shown if hop == 0 else f"{shown}: redirect to {mask_url(str(current))}"
        with _host_slot(client, current):
            try:
                client.check_url(current)
                response = client.send(
                    client.build_request("GET", current, headers=headers, timeout=_timeout()),
                    stream=True,
                )
            except DestinationRefusedError as exc:
                raise DestinationRefusedError(
                    f"{where} refused: {exc} (add the origin to gather.allow_private to permit)"
                ) from exc
            fetched = _answer(client, response, current, where, allow_not_modified)
        if isinstance(fetched, Fetched):
            return fetched
        current = fetched
    raise SourceError(f"{shown}: more than {hops} redirects (gather.max_redirects)")


@contextlib.contextmanager
def _host_slot(client: GuardedClient, url: httpx.URL) -> Iterator[None]:
    """One of the host's slots for one hop, waited for no longer than the deadline."""
    left = remaining()
    if left is not None and left <= 0:
        raise _Deadline()
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(client.hosts.slot(url.host, left))
        except TimeoutError as exc:
            raise _Deadline() from exc
        yield


def _answer(
    client: GuardedClient,
    response: httpx.Response,
    current: httpx.URL,
    where: str,
    allow_not_modified: bool,
) -> Fetched | httpx.URL:
    """The fetched answer, or the URL a redirect points to (the response closed either way)."""
    try:
        location = response.headers.get("location")
        if response.status_code in _REDIRECTS and location:
            try:
                return current.join(location)
            except httpx.InvalidURL as exc:
                raise SourceError(f"{where}: bad redirect location: {exc}") from exc
        status = response.status_code
        if status == 304 and allow_not_modified:
            return Fetched(str(current), status, response.headers, b"")
        if status >= 400 or status == 304:
            raise SourceError(f"{where}: HTTP {status} {response.reason_phrase}".rstrip())
        body = _read_body(response, client.policy.max_bytes, where)
        return Fetched(str(current), status, response.headers, body)
    finally:
        response.close()


def _timeout() -> httpx.Timeout:
    left = remaining()
    if left is None or left <= 0:
        raise _Deadline()
    return httpx.Timeout(left)


def _read_body(response: httpx.Response, limit: int, where: str) -> bytes:
    too_big = f"{where}: response is larger than {limit} bytes (gather.max_bytes)"
    declared = response.headers.get("content-length", "").strip()
    if declared.isdigit() and int(declared) > limit:
        raise SourceError(too_big)
    decoder = _decoder(response.headers.get("content-encoding", ""), where)
    try:
        return _stream(response, decoder, limit, too_big)
    except zlib.error as exc:
        raise SourceError(f"{where}: body does not decompress: {exc}") from exc


def _stream(
    response: httpx.Response, decoder: zlib._Decompress | None, limit: int, too_big: str
) -> bytes:
    body = bytearray()
    received = 0
    for chunk in response.iter_raw():
        received += len(chunk)
        if received > limit:
            raise SourceError(too_big)
        room = limit - len(body)
        # never inflate more than one byte past the limit: a bomb stops here, in memory too
        data = decoder.decompress(chunk, room + 1) if decoder is not None else chunk
        if len(data) > room:
            raise SourceError(too_big)
        body += data
        left = remaining()
        if left is not None and left <= 0:
            raise _Deadline()
    if decoder is not None:
        rest = decoder.flush(limit - len(body) + 1)
        if len(body) + len(rest) > limit:
            raise SourceError(too_big)
        body += rest
    return bytes(body)


def _decoder(encoding: str, where: str) -> zlib._Decompress | None:
    coding = encoding.strip().lower()
    if coding in ("", "identity"):
        return None
    if coding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if coding == "deflate":
        return zlib.decompressobj()
    # we only ask for gzip; anything else (br, stacked codings) would go unbounded
    raise SourceError(f"{where}: unsupported Content-Encoding {encoding!r}")
