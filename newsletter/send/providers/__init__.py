"""Email providers behind one interface, picked by ``[provider] name`` from a registry."""

from __future__ import annotations

from typing import TYPE_CHECKING

from newsletter.errors import ProviderError
from newsletter.send.providers.base import Provider
from newsletter.send.providers.brevo import BrevoProvider
from newsletter.send.providers.mailgun import MailgunProvider
from newsletter.send.providers.outbox import OutboxProvider
from newsletter.send.providers.postmark import PostmarkProvider
from newsletter.send.providers.resend import ResendProvider
from newsletter.send.providers.sendgrid import SendgridProvider
from newsletter.send.providers.ses import SesProvider
from newsletter.send.providers.smtp import SmtpProvider

if TYPE_CHECKING:
    from newsletter.config import Settings

__all__ = ["PROVIDERS", "OutboxProvider", "Provider", "build_provider"]

#: every provider by its config name; a new provider adds one entry here
PROVIDERS: dict[str, type[Provider]] = {
    "brevo": BrevoProvider,
    "outbox": OutboxProvider,
    "postmark": PostmarkProvider,
    "mailgun": MailgunProvider,
    "resend": ResendProvider,
    "sendgrid": SendgridProvider,
    "ses": SesProvider,
    "smtp": SmtpProvider,
}


def build_provider(settings: Settings) -> Provider:
    """The provider that ``settings.provider`` names, built from its config table."""
    config = settings.provider
    try:
        cls = PROVIDERS[config.name]
    except KeyError:
        known = ", ".join(sorted(PROVIDERS))
        raise ProviderError(f"unknown provider {config.name!r} (known: {known})") from None
    return cls.from_config(config, settings)
