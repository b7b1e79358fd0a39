"""What every handler of the web app needs, built once per app and injected."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

from starlette.requests import Request

from newsletter.clock import Clock, utcnow
from newsletter.config import Settings
from newsletter.errors import SubscriberError
from newsletter.models import Subscriber
from newsletter.send.providers import build_provider
from newsletter.send.providers.base import Provider
from newsletter.send.tokens import TokenData, TokenError, TokenSigner
from newsletter.store import Store
from newsletter.web.background import Background
from newsletter.web.csrf import CsrfTokens
from newsletter.web.guards import RequestLimiter
from newsletter.web.pages import Pages

log = logging.getLogger("newsletter.web")


@dataclass
class WebContext:
    """Settings, store, signers, pages and the lazily built provider of one app."""

    settings: Settings
    store: Store
    signer: TokenSigner
    csrf: CsrfTokens
    pages: Pages
    limiter: RequestLimiter
    clock: Clock = utcnow
    provider: Provider | None = None
    #: whether the app built (and so closes) the store and the provider
    owns_store: bool = False
    owns_provider: bool = False
    #: work answered before it is done (sign-ups), see :mod:`~newsletter.web.background`
    background: Background = field(default_factory=Background)
    _provider_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def href(self, path: str, request: Request | None = None) -> str:
        """A root-relative URL for ``path`` under the base URL's path prefix (if any), so
        pages work behind a reverse proxy that serves the app below a folder.

        With ``request``, the page language the visitor picked (``?lang=``) is kept, so
        the form posted or the link followed answers in that language too.
        """
        url = urlsplit(self.settings.web.base_url).path.rstrip("/") + path
        lang = request.query_params.get("lang", "") if request is not None else ""
        if lang in self.settings.locales.available:
            url += ("&" if "?" in path else "?") + urlencode({"lang": lang})
        return url

    def link(self, path: str) -> str:
        """The absolute public URL of ``path`` (for emails and feeds)."""
        return self.settings.web.base_url + path

    async def get_provider(self) -> Provider:
        """The configured email provider, built on first use (one per app)."""
        async with self._provider_lock:
            if self.provider is None:
                self.provider = build_provider(self.settings)
                self.owns_provider = True
            return self.provider

    async def aclose(self) -> None:
        """Finish the handed-off work, then close what this context built."""
        await self.background.drain()
        if self.provider is not None and self.owns_provider:
            await self.provider.aclose()
        if self.owns_store:
            self.store.close()

    def verify(self, purpose: str, token: str, max_age: int | None = None) -> TokenData | None:
        """The data of a link token, or None when it is not genuine for ``purpose``."""
        try:
            return self.signer.verify(purpose, token, max_age=max_age)
        except TokenError as exc:
            log.info("refused %s token: %s", purpose, exc)
            return None

    def subscriber(self, data: TokenData | None) -> Subscriber | None:
        """The subscriber a verified token names, or None (erased, or never existed)."""
        if data is None:
            return None
        try:
            return self.store.subscribers.get(data.subscriber_id)
        except SubscriberError:
            log.info("token for unknown subscriber %d", data.subscriber_id)
            return None


def context_of(request: Request) -> WebContext:
    """The context the app was built with."""
    ctx = request.app.state.ctx
    assert isinstance(ctx, WebContext)
    return ctx
