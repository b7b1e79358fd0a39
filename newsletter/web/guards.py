"""Protections around the pages: security headers and an in-memory rate limiter."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Final

from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: no script may run; styles only inline (the templates' own); forms post to us only
CSP: Final = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src https: http: data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


class SecurityHeaders:
    """ASGI middleware adding security headers to every HTTP response.

    ``Referrer-Policy: same-origin`` matters here: page URLs carry subscriber tokens, and
    a link followed from a page must not hand the token to another site. Not
    ``no-referrer``: under it browsers send ``Origin: null`` with our own form posts,
    which :class:`~newsletter.web.hostile.OriginCheck` must refuse as an opaque origin.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("Content-Security-Policy", CSP)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "same-origin")
                headers.setdefault("X-Frame-Options", "DENY")
                headers.setdefault("Cache-Control", "no-store")
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyLimit:
    """ASGI middleware refusing request bodies over ``max_bytes`` with 413.

    A Content-Length over the limit is answered before any byte of the body is read, with
    the page ``too_large`` builds (localized); a body sent without a length is counted as
    it streams in, and the handler reading it gets an ``HTTPException(413)``, which the
    app's error handler turns into the same page. Paths under ``exempt`` prefixes are
    left to their handlers (which must then limit what they read).
    """

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        too_large: Callable[[Scope, Receive], Awaitable[Response]],
        exempt: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.too_large = too_large
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or str(scope["path"]).startswith(self.exempt):
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length", "")
        if length.isdigit() and int(length) > self.max_bytes:
            response = await self.too_large(scope, receive)
            await response(scope, receive, send)
            return
        seen = 0

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise HTTPException(413, "request body too large")
            return message

        await self.app(scope, counting_receive, send)


class RequestLimiter:
    """At most ``limit`` hits per key in a sliding ``window`` of seconds, in memory.

    In memory means per process: behind several worker processes each counts on its
    own, which multiplies the limit by the number of workers. Keys whose hits all expired
    are dropped now and then, so memory stays bounded by the recent traffic.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()
        self._checks = 0

    def hit(self, key: str, limit: int, window: float) -> bool:
        """Count one hit for ``key``; False (and not counted) when over the limit."""
        now = self.clock()
        with self._lock:
            self._checks += 1
            if self._checks % 1000 == 0:
                self._prune(now, window)
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - window:
                hits.popleft()
            if len(hits) >= limit:
                return False
            hits.append(now)
            return True

    def _prune(self, now: float, window: float) -> None:
        for key in [k for k, v in self._hits.items() if not v or v[-1] <= now - window]:
            del self._hits[key]
