"""The subscriber-facing web app: app factory, error pages, health check, ``serve``.

``create_app(settings)`` builds everything the handlers need once (store, token signer,
CSRF signer, templates, rate limiter) and injects it; tests pass their own store,
provider or clock. Provider webhooks live in ``newsletter.web.webhooks`` and are mounted
under ``/webhooks`` when that package is present.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import signal
import threading
from collections.abc import AsyncIterator

import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import Receive, Scope

from newsletter.clock import Clock, utcnow
from newsletter.config import Settings
from newsletter.send.providers.base import Provider
from newsletter.send.tokens import TokenSigner, load_secrets
from newsletter.send.tracking import TrackingSigner
from newsletter.store import Store
from newsletter.web import (
    archive,
    housekeeping,
    preferences,
    redirect,
    rights,
    stories,
    subscribe,
    unsubscribe,
)
from newsletter.web.common import STATUS_TEXT, error_page, log_path
from newsletter.web.context import WebContext, context_of
from newsletter.web.csrf import CsrfTokens
from newsletter.web.guards import BodyLimit, RequestLimiter, SecurityHeaders
from newsletter.web.hostile import OriginCheck, RequestShape, SafetyNet, bound_int_routes
from newsletter.web.pages import Pages

log = logging.getLogger("newsletter.web")


async def healthz(request: Request) -> Response:
    """For a load balancer: 200 when the database answers, else 503."""
    ctx = context_of(request)
    try:
        with ctx.store.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as exc:
        log.error("health check: database unavailable: %s", exc)
        return JSONResponse({"status": "unavailable"}, status_code=503)
    return JSONResponse({"status": "ok"})


def _is_webhook(request: Request) -> bool:
    return request.url.path.startswith("/webhooks/") or request.url.path == "/webhooks"


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's HTTP errors (404, 405, 413 ...) as localized pages."""
    assert isinstance(exc, HTTPException)
    log.info("%s %s -> %d %s", request.method, log_path(request), exc.status_code, exc.detail)
    if _is_webhook(request):
        return PlainTextResponse(str(exc.detail), status_code=exc.status_code)
    return error_page(request, exc.status_code, headers=dict(exc.headers or {}))


async def status_page(request: Request, status: int) -> Response:
    """The bare answer for ``status``: plain text for webhooks, else the localized page
    (plain text too if the templates themselves are broken: never a trace)."""
    if _is_webhook(request):
        return PlainTextResponse(STATUS_TEXT.get(status, STATUS_TEXT[400])[0], status_code=status)
    try:
        return error_page(request, status)
    except Exception:
        return PlainTextResponse(STATUS_TEXT.get(status, STATUS_TEXT[400])[0], status_code=status)


async def server_error(request: Request, exc: Exception) -> Response:
    """Last resort behind :class:`~newsletter.web.hostile.SafetyNet` (an error in a
    middleware): one log line, the traceback only at debug level, a bare 500."""
    log.error("unexpected %s on %s %s", type(exc).__name__, request.method, log_path(request))
    log.debug("traceback of the error above", exc_info=exc)
    return await status_page(request, 500)


def _webhook_routes(settings: Settings, store: Store) -> list[BaseRoute]:
    """Routes of the provider webhooks package, if it is installed."""
    try:
        module = importlib.import_module("newsletter.web.webhooks")
    except ModuleNotFoundError as exc:
        if exc.name not in ("newsletter.web.webhooks",):
            raise
        return []
    factory = getattr(module, "routes", None)
    if factory is None:
        return []
    found = list(factory(settings, store))
    # routes that already carry the /webhooks prefix are used as they are
    if all(getattr(r, "path", "").startswith("/webhooks/") for r in found):
        return found
    return [Mount("/webhooks", routes=found)]


def create_app(
    settings: Settings,
    store: Store | None = None,
    *,
    provider: Provider | None = None,
    signer: TokenSigner | None = None,
    clock: Clock | None = None,
    housekeeping_every: float = housekeeping.EVERY,
) -> Starlette:
    """The Starlette app; builds the store, signer and provider only when none is given.

    While it runs, :mod:`~newsletter.web.housekeeping` runs at start and then every
    ``housekeeping_every`` seconds.
    """
    bound_int_routes()
    owns_store = store is None
    if store is None:
        store = Store.open(settings.database_url())
    try:
        secrets = load_secrets(settings.security.secret_key_env, settings.paths.var)
        now = clock or utcnow
        ctx = WebContext(
            settings=settings,
            store=store,
            # the app's clock also dates and ages the tokens it signs and verifies
            signer=signer or TokenSigner(secrets, clock=lambda: now().timestamp()),
            csrf=CsrfTokens(secrets),
            pages=Pages(settings),
            limiter=RequestLimiter(),
            clock=now,
            provider=provider,
            owns_store=owns_store,
        )
        routes: list[BaseRoute] = [
            Route("/healthz", healthz, methods=["GET", "HEAD"]),
            *unsubscribe.routes(),
            *preferences.routes(),
            *rights.routes(),
            *subscribe.routes(),
            *archive.routes(),
            *stories.routes(),
            *redirect.routes(TrackingSigner(secrets)),
            *_webhook_routes(settings, store),
        ]
        desk = None
        if settings.desk.enabled:
            from newsletter.web import desk as desk_mod

            desk, mount = desk_mod.build(settings, store, secrets, ctx.pages)
            routes.append(mount)
    except BaseException:
        if owns_store:
            store.close()
        raise

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # the first run before serving: nothing stale is ever served, and tests see it done
        await housekeeping.housekeep_logged(ctx)
        task = asyncio.create_task(housekeeping.housekeep_every(ctx, housekeeping_every))
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await ctx.aclose()

    async def too_large(scope: Scope, receive: Receive) -> Response:
        return await http_error(Request(scope, receive), HTTPException(413, "body too large"))

    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(SecurityHeaders),
            # webhook bodies (provider batches) are larger; that endpoint limits its own
            Middleware(
                BodyLimit,
                max_bytes=settings.web.max_body_bytes,
                too_large=too_large,
                # the desk's CSV upload checks its own, larger limit
                exempt=("/webhooks/", "/desk/subscribers/import"),
            ),
            Middleware(RequestShape, refuse=status_page),
            Middleware(
                OriginCheck,
                base_url=settings.web.base_url,
                refuse=status_page,
                exempt=("/webhooks/",),
            ),
            Middleware(SafetyNet, handler=status_page),
        ],
        exception_handlers={HTTPException: http_error, Exception: server_error},
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    app.state.desk = desk
    return app


def _stopped(signum: int, frame: object) -> None:
    raise SystemExit(0)


def serve(settings: Settings, *, host: str | None = None, port: int | None = None) -> None:
    """Run the app under uvicorn until SIGINT/SIGTERM (``newsletter serve``).

    SIGTERM is how a service manager stops the server: after uvicorn's graceful shutdown
    (requests in flight answered, the store closed) the process exits 0, not by the
    signal, so the manager records a clean stop. SIGINT stays an interrupt (exit 130).
    """
    import uvicorn

    previous = None
    if threading.current_thread() is threading.main_thread():
        # uvicorn handles SIGTERM while serving, then restores this handler and raises
        # the signal again; a SIGTERM before it serves stops start-up here the same way
        previous = signal.signal(signal.SIGTERM, _stopped)
    try:
        app = create_app(settings)
        uvicorn.run(
            app,
            host=host or settings.web.host,
            port=settings.web.port if port is None else port,
            proxy_headers=True,
            forwarded_allow_ips=settings.web.forwarded_allow_ips,
            server_header=False,
            log_config=None,
        )
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
