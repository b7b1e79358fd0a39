"""The subscriber-facing web app (Starlette): unsubscribe, preferences, sign-up, data
rights, archive, health check, and the provider webhooks in ``newsletter.web.webhooks``."""

from __future__ import annotations

from newsletter.web.app import create_app, serve

__all__ = ["create_app", "serve"]
