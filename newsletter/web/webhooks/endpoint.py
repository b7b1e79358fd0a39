"""The HTTP side of ``POST /webhooks/{provider}``: limits, status codes, logging.

Every refusal is a 4xx with a one-line JSON reason, logged, with nothing changed in the
store: unknown provider 404, wrong content type 415, body over the limit 413, bad or
missing signature 401, authentic but not ours 403, replay 409, malformed body 400. A
database outage is a 503 so the provider retries later.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict

import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from newsletter.errors import StoreError, WebhookError
from newsletter.send.providers.events.base import Verifier, WebhookRequest
from newsletter.send.providers.events.shared_secret import SharedSecretVerifier
from newsletter.web.webhooks.apply import Applied, EventApplier

__all__ = ["WebhookEndpoint"]

log = logging.getLogger("newsletter.web.webhooks")


class _TooLarge(Exception):
    pass


class WebhookEndpoint:
    """Dispatches a webhook call to its provider's verifier, then applies the events."""

    def __init__(
        self, verifiers: Mapping[str, Verifier], applier: EventApplier, *, max_body_bytes: int
    ) -> None:
        self.verifiers = dict(verifiers)
        self.applier = applier
        self.max_body_bytes = max_body_bytes

    async def handle(self, request: Request) -> Response:
        """The Starlette endpoint."""
        provider = str(request.path_params["provider"])
        verifier = self.verifiers.get(provider)
        if verifier is None:
            return _refuse(provider[:40], 404, "unknown or unconfigured webhook provider")
        media = request.headers.get("content-type", "").partition(";")[0].strip().lower()
        if media not in verifier.content_types:
            expected = " or ".join(verifier.content_types)
            return _refuse(provider, 415, f"content type must be {expected}")
        try:
            body = await self._read(request)
        except _TooLarge:
            return _refuse(provider, 413, f"body larger than {self.max_body_bytes} bytes")
        call = WebhookRequest(
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
            query=dict(request.query_params),
        )
        try:
            outcome = await run_in_threadpool(self._process, provider, verifier, call)
        except WebhookError as exc:
            status = int(getattr(exc, "status", 400))
            headers = {}
            if status == 401 and _basic_auth(verifier):
                headers["WWW-Authenticate"] = 'Basic realm="newsletter webhooks"'
            return _refuse(provider, status, str(exc), headers)
        except (StoreError, sa.exc.SQLAlchemyError):
            log.exception("webhook %s: store error; the provider will retry", provider)
            return JSONResponse({"error": "temporarily unavailable, retry later"}, 503)
        log.info("webhook %s: %s", provider, outcome)
        return JSONResponse({"ok": True, **asdict(outcome)})

    def _process(self, provider: str, verifier: Verifier, call: WebhookRequest) -> Applied:
        events = verifier.verify(call)
        return self.applier.apply(provider, events, request_key=verifier.replay_key(call))

    async def _read(self, request: Request) -> bytes:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            raise _TooLarge
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body_bytes:  # a lying or absent Content-Length
                raise _TooLarge
            chunks.append(chunk)
        return b"".join(chunks)


def _basic_auth(verifier: Verifier) -> bool:
    return isinstance(verifier, SharedSecretVerifier) and verifier.auth.config.auth == "basic"


def _refuse(
    provider: str, status: int, reason: str, headers: Mapping[str, str] | None = None
) -> Response:
    log.warning("webhook %r refused (%d): %s", provider, status, reason)
    return JSONResponse({"error": reason}, status, headers=dict(headers or {}))
