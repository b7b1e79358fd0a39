"""Provider name -> verifier class, and building the configured ones."""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from newsletter.config.webhooks import Webhooks
from newsletter.send.providers.events.base import Clock, Deps, Verifier
from newsletter.send.providers.events.brevo import BrevoVerifier
from newsletter.send.providers.events.mailgun import MailgunVerifier
from newsletter.send.providers.events.postmark import PostmarkVerifier
from newsletter.send.providers.events.resend import ResendVerifier
from newsletter.send.providers.events.sendgrid import SendgridVerifier
from newsletter.send.providers.events.ses import SesVerifier

__all__ = ["VERIFIERS", "build_verifiers"]

#: every supported provider; the key is the URL segment and the ``[webhooks.<key>]`` table
VERIFIERS: dict[str, type[Verifier]] = {
    cls.name: cls
    for cls in (
        SendgridVerifier,
        MailgunVerifier,
        SesVerifier,
        PostmarkVerifier,
        BrevoVerifier,
        ResendVerifier,
    )
}


def build_verifiers(
    config: Webhooks,
    *,
    environ: Mapping[str, str] | None = None,
    http: httpx.Client | None = None,
    clock: Clock | None = None,
) -> dict[str, Verifier]:
    """A verifier for every provider with a ``[webhooks.<name>]`` table.

    A configured provider whose secret variable is unset is a ConfigError, raised here at
    start-up rather than as a 401 on the first real event.
    """
    deps = Deps(environ=environ, http=http, clock=clock)
    return {
        name: cls.from_config(config, deps)
        for name, cls in VERIFIERS.items()
        if getattr(config, name) is not None
    }
