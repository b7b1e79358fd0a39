"""What stops a hostile request before a route sees it, and what catches a route that fails.

Every request here comes from an unauthenticated stranger, so each part of it is checked
where it enters: route ids are bounded (``{x:int}`` never matches a number the database
cannot hold), paths and query strings carrying control characters are refused (PostgreSQL
rejects NUL in text, terminals interpret ESC), form posts from a foreign or opaque
(``null``) origin are refused, and an unexpected exception in a route becomes one log
line and a bare 500 rather than a traceback.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Final
from urllib.parse import unquote, urlsplit

from starlette import convertors
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("newsletter.web")

#: C0 controls but tab, newline and carriage return; DEL; C1 controls; lone surrogates
CONTROL: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
#: methods that change something and so must come from our own pages (or no browser)
UNSAFE: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})

Handler = Callable[[Request, int], Awaitable[Response]]


class BoundedInt(convertors.IntegerConvertor):
    """``{name:int}`` for ids: at most 18 digits, so every match fits a signed 64-bit
    column (SQLite INTEGER, PostgreSQL BIGINT); a longer number is simply not a route."""

    regex = "[0-9]{1,18}"


def bound_int_routes() -> None:
    """Make ``{name:int}`` the :class:`BoundedInt` for every route built from now on."""
    convertors.register_url_convertor("int", BoundedInt())


def has_control(text: str) -> bool:
    """Whether ``text`` holds a character no form field, path or query may carry."""
    return CONTROL.search(text) is not None


def _origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of an absolute http(s) URL, else None."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc or has_control(url):
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


class RequestShape:
    """ASGI middleware: 400 for a path or query string with control characters or bytes
    that are not UTF-8, before any route (or the database) sees them."""

    def __init__(self, app: ASGIApp, refuse: Handler) -> None:
        self.app = app
        self.refuse = refuse

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self._bad(scope):
            request = Request(scope, receive)
            log.info("refused %s: control characters in the path or query", scope["method"])
            response = await self.refuse(request, 400)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    @staticmethod
    def _bad(scope: Scope) -> bool:
        raw = scope.get("query_string", b"")
        try:
            query = unquote(raw.decode("ascii"), errors="strict")
        except (UnicodeDecodeError, ValueError):
            return True
        return has_control(str(scope.get("path", ""))) or has_control(query)


class OriginCheck:
    """ASGI middleware: a state-changing request that a browser says comes from another
    site is refused with 403, whatever route it is for.

    ``Origin`` decides when present; ``null`` (a sandboxed frame, a ``data:`` page, a
    redirect chain) is opaque and refused like any foreign origin. Without ``Origin`` a
    ``Referer`` decides the same way (an unparseable one is refused). Requests with
    neither (mail clients' one-click unsubscribe, curl) pass: the CSRF token or the link
    token still has to hold. Paths under ``exempt`` (server-to-server webhooks) are left
    to their own authentication.
    """

    def __init__(
        self, app: ASGIApp, base_url: str, refuse: Handler, exempt: tuple[str, ...] = ()
    ) -> None:
        self.app = app
        self.base_origin = _origin_of(base_url)
        self.refuse = refuse
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] in UNSAFE
            and not str(scope["path"]).startswith(self.exempt)
            and not self.allowed(scope)
        ):
            request = Request(scope, receive)
            log.info("refused %s from a foreign origin", scope["method"])
            response = await self.refuse(request, 403)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def allowed(self, scope: Scope) -> bool:
        """Whether the request's Origin (else Referer) is this site, or it has neither."""
        headers = Headers(scope=scope)
        origins = headers.getlist("origin")
        if origins:
            claimed: str | None = origins[0].strip() if len(origins) == 1 else None
        else:
            referers = headers.getlist("referer")
            if not referers or referers == [""]:
                return True
            claimed = _origin_of(referers[0].strip()) if len(referers) == 1 else None
        if not claimed:
            return False
        own = {o for o in (self.base_origin, self._own(scope)) if o}
        return claimed.lower() in own

    @staticmethod
    def _own(scope: Scope) -> str | None:
        host = Headers(scope=scope).get("host")
        return f"{scope.get('scheme', 'http')}://{host}".lower() if host else None


class SafetyNet:
    """ASGI middleware: an exception a route did not handle is logged as one line (the
    traceback only at debug level, so ``--debug`` shows it) and answered by ``handler``'s
    bare 500 page; nothing about it reaches the client, and the server logs no trace."""

    def __init__(self, app: ASGIApp, handler: Handler) -> None:
        self.app = app
        self.handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except ClientDisconnect:
            log.info("client went away during %s", scope.get("method"))
        except Exception as exc:
            route = getattr(scope.get("route"), "path", None) or "an unmatched path"
            # repr: the message may quote hostile input; escaped, it cannot forge lines
            log.error(
                "unexpected %s on %s %s: %r",
                type(exc).__name__,
                scope.get("method"),
                route,
                str(exc)[:200],
            )
            log.debug("traceback of the error above", exc_info=exc)
            if started:
                return  # the response is half sent: all that can be done is stop
            response = await self.handler(Request(scope, receive), 500)
            await response(scope, receive, send)
