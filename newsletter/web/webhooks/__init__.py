"""Provider webhooks: ``POST /webhooks/{provider}`` for bounces, complaints, unsubscribes.

One verifier per provider (``registry.VERIFIERS``: sendgrid, mailgun, ses, postmark, brevo,
resend) authenticates a call and parses it into provider-neutral :class:`Event` values;
:class:`EventApplier` applies each event once. Only providers with a ``[webhooks.<name>]``
table in the config get an endpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import httpx
from starlette.routing import BaseRoute, Route

from newsletter.config import Settings
from newsletter.send.providers.events.base import Clock, Verifier, WebhookRequest
from newsletter.send.providers.events.model import Event, EventKind
from newsletter.send.providers.events.registry import VERIFIERS, build_verifiers
from newsletter.store import Store
from newsletter.web.webhooks.apply import Applied, EventApplier
from newsletter.web.webhooks.endpoint import WebhookEndpoint

__all__ = [
    "VERIFIERS",
    "Applied",
    "Event",
    "EventApplier",
    "EventKind",
    "Verifier",
    "WebhookEndpoint",
    "WebhookRequest",
    "build_verifiers",
    "routes",
]


def routes(
    settings: Settings,
    store: Store,
    *,
    verifiers: Mapping[str, Verifier] | None = None,
    http: httpx.Client | None = None,
    environ: Mapping[str, str] | None = None,
    clock: Clock | None = None,
) -> list[BaseRoute]:
    """The webhook route, with a verifier for every configured provider.

    ``verifiers`` replaces the configured set; ``http`` (the client SNS certificates and
    subscription confirmations are fetched with), ``environ`` and ``clock`` are for tests.
    Raises ConfigError when a configured provider's secret variable is not set.
    """
    config = settings.webhooks
    if verifiers is None:
        verifiers = build_verifiers(config, environ=environ, http=http, clock=clock)
    now = (lambda: datetime.fromtimestamp(clock(), UTC)) if clock else None
    applier = EventApplier(store, config, tracking=settings.tracking, now=now)
    endpoint = WebhookEndpoint(verifiers, applier, max_body_bytes=config.max_body_bytes)
    return [Route("/webhooks/{provider}", endpoint.handle, methods=["POST"], name="webhook")]
