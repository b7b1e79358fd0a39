"""The ``[provider]`` table: one config model per provider, told apart by ``name``.

A new provider adds its model here and to :data:`ProviderConfig`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from newsletter.config.base import Model, RelPath

__all__ = [
    "BrevoProviderConfig",
    "HttpProviderBase",
    "MailgunProviderConfig",
    "OutboxProviderConfig",
    "PostmarkProviderConfig",
    "ProviderBase",
    "ProviderConfig",
    "ResendProviderConfig",
    "SendgridProviderConfig",
    "SesProviderConfig",
    "SmtpProviderConfig",
]


class ProviderBase(Model):
    """Keys every ``[provider]`` table has: batching and the sending rate limits.

    ``batch_size`` above the provider's own limit is refused at start (the provider class
    knows its limit); the rates are shared by every sender in one process.
    """

    batch_size: int | None = Field(default=None, gt=0)
    #: messages handed to the provider per second (None: unlimited)
    messages_per_second: float | None = Field(default=None, gt=0)
    #: API requests (batches) per second (None: unlimited)
    requests_per_second: float | None = Field(default=None, gt=0)
    #: batches in flight at once from one process
    concurrency: int = Field(default=1, gt=0, le=64)


class HttpProviderBase(ProviderBase):
    """Keys of every provider reached over HTTP with the shared pooled ``httpx.AsyncClient``."""

    #: overrides the provider's default host (EU regions, proxies, tests)
    base_url: str | None = None
    #: seconds for connect, read and write of one request
    timeout: float = Field(default=30.0, gt=0)


class OutboxProviderConfig(ProviderBase):
    """Writes one .eml per message into a folder instead of sending."""

    name: Literal["outbox"] = "outbox"
    path: RelPath = Path("outbox")
    batch_size: int | None = Field(default=200, gt=0)


class SmtpProviderConfig(ProviderBase):
    """Sends through an SMTP server (the cluster's own, or a relay) with aiosmtplib."""

    name: Literal["smtp"] = "smtp"
    host: str = Field(min_length=1)
    #: default by ``security``: 587 (starttls), 465 (tls), 25 (none)
    port: int | None = Field(default=None, gt=0, lt=65536)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    #: environment variable holding the password (required with ``username``)
    password_env: str | None = None
    #: PEM file of the CA that signed a private server's certificate
    ca_file: RelPath | None = None
    #: seconds for connecting and for each SMTP reply
    timeout: float = Field(default=30.0, gt=0)
    #: name sent in EHLO (default: this machine's fully qualified name)
    local_hostname: str | None = None
    #: MAIL FROM (bounce) address; default: each message's From address
    envelope_from: str | None = None

    @model_validator(mode="after")
    def _login_pair(self) -> SmtpProviderConfig:
        if (self.username is None) != (self.password_env is None):
            raise ValueError("username and password_env must be set together")
        return self


class PostmarkProviderConfig(HttpProviderBase):
    """Postmark: POST /email/batch, up to 500 messages per request."""

    name: Literal["postmark"] = "postmark"
    #: environment variable holding the Server API token
    token_env: str = "POSTMARK_SERVER_TOKEN"
    #: the message stream; newsletters belong on a broadcast stream, not the transactional one
    message_stream: str = Field(default="broadcast", min_length=1)
    #: Postmark Tag (one per message, for its statistics); None: the segment name
    tag: str | None = Field(default=None, max_length=1000)


class SendgridProviderConfig(HttpProviderBase):
    """SendGrid v3: POST /v3/mail/send, one body and up to 1000 personalizations a request."""

    name: Literal["sendgrid"] = "sendgrid"
    #: environment variable holding the API key
    api_key_env: str = "SENDGRID_API_KEY"
    #: "eu" sends through api.eu.sendgrid.com (an EU-pinned subuser); base_url wins over it
    region: Literal["global", "eu"] = "global"
    #: categories added to every message (the segment name is always added; 10 at most)
    categories: tuple[str, ...] = Field(default=(), max_length=9)


class MailgunProviderConfig(HttpProviderBase):
    """Mailgun: POST /v3/{domain}/messages with recipient-variables, up to 1000 a call."""

    name: Literal["mailgun"] = "mailgun"
    #: the sending domain as set up in Mailgun
    domain: str = Field(min_length=3, pattern=r"^[A-Za-z0-9.-]+$")
    #: environment variable holding the private API key
    api_key_env: str = "MAILGUN_API_KEY"
    #: "eu" sends through api.eu.mailgun.net; base_url wins over it
    region: Literal["us", "eu"] = "us"
    #: o:tag values for every message (the segment name is always added; Mailgun allows 3)
    tags: tuple[str, ...] = Field(default=(), max_length=2)


class BrevoProviderConfig(HttpProviderBase):
    """Brevo: POST /v3/smtp/email, messageVersions (1000 versions, 2000 recipients a call)."""

    name: Literal["brevo"] = "brevo"
    #: environment variable holding the API key (sent as the ``api-key`` header)
    api_key_env: str = "BREVO_API_KEY"
    #: "ours": our per-recipient List-Unsubscribe headers go out, which Brevo allows only
    #: one message per request; "brevo": ours are left out, Brevo adds its own and the
    #: messages of a batch travel as messageVersions of one request
    unsubscribe_header: Literal["ours", "brevo"] = "ours"
    #: requests in flight at once within one batch
    parallel_requests: int = Field(default=10, gt=0, le=100)
    #: Brevo tags added to every message
    tags: tuple[str, ...] = ()


class SesProviderConfig(HttpProviderBase):
    """Amazon SES v2: SendEmail with our raw MIME, signed with SigV4."""

    name: Literal["ses"] = "ses"
    #: AWS region of the SES account, e.g. "eu-central-1"
    region: str = Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
    access_key_id_env: str = "AWS_ACCESS_KEY_ID"
    secret_access_key_env: str = "AWS_SECRET_ACCESS_KEY"
    #: environment variable with a session token (temporary STS credentials), if any
    session_token_env: str | None = None
    #: SES configuration set (event publishing, dedicated IPs); None: the account default
    configuration_set: str | None = None
    #: SendEmail requests in flight at once within one batch
    parallel_requests: int = Field(default=10, gt=0, le=100)


class ResendProviderConfig(HttpProviderBase):
    """Resend: POST /emails/batch, up to 100 emails a call, ``Idempotency-Key`` header."""

    name: Literal["resend"] = "resend"
    #: environment variable holding the API key (sent as a Bearer token)
    api_key_env: str = "RESEND_API_KEY"


ProviderConfig = Annotated[
    OutboxProviderConfig
    | SmtpProviderConfig
    | PostmarkProviderConfig
    | SendgridProviderConfig
    | MailgunProviderConfig
    | BrevoProviderConfig
    | SesProviderConfig
    | ResendProviderConfig,
    Field(discriminator="name"),
]
