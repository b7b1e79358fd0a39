"""The ``[webhooks]`` table: which provider webhooks are accepted and how they are checked.

A provider's endpoint (``POST /webhooks/<name>``) exists only when its sub-table is present.
Secrets are never in the file: each sub-table names the environment variable holding one.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from newsletter.config.base import Model

__all__ = [
    "MailgunWebhook",
    "ResendWebhook",
    "SendgridWebhook",
    "SesWebhook",
    "SharedSecretWebhook",
    "Webhooks",
    "topic_region",
]

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TOPIC_ARN = re.compile(r"^arn:aws(?:-[a-z]+)?:sns:(?P<region>[a-z0-9-]+):\d{12}:[A-Za-z0-9_.-]+$")
_REGION = re.compile(r"^[a-z]{2}(?:-[a-z]+)+-\d+$")


def _env_name(value: str) -> str:
    if not _ENV_NAME.match(value):
        raise ValueError(f"{value!r} is not an environment variable name")
    return value


#: the name of an environment variable (the secret itself never is in the config)
EnvName = Annotated[str, AfterValidator(_env_name)]


def topic_region(arn: str) -> str:
    """The region part of an SNS topic ARN (``arn:aws:sns:<region>:<account>:<name>``)."""
    match = _TOPIC_ARN.match(arn)
    if match is None:
        raise ValueError(f"not an SNS topic ARN: {arn!r}")
    return match["region"]


class SendgridWebhook(Model):
    """SendGrid Signed Event Webhook: the verification key (base64 DER) is in ``public_key_env``."""

    public_key_env: EnvName = Field(
        default="SENDGRID_WEBHOOK_PUBLIC_KEY",
        description="Environment variable holding the verification key (base64 DER).",
    )


class MailgunWebhook(Model):
    """Mailgun: the HTTP webhook signing key is in ``signing_key_env``."""

    signing_key_env: EnvName = Field(
        default="MAILGUN_WEBHOOK_SIGNING_KEY",
        description="Environment variable holding Mailgun's HTTP webhook signing key.",
    )


class SesWebhook(Model):
    """Amazon SES through an SNS HTTPS subscription.

    Only messages from ``topic_arns`` are accepted; signing certificates and subscription
    confirmations are fetched only from ``https://sns.<region>.amazonaws.com`` for a region
    in ``regions`` (default: the regions of the topic ARNs).
    """

    topic_arns: list[str] = Field(
        min_length=1, description="SNS topic ARNs whose messages are accepted (at least one)."
    )
    regions: list[str] = Field(
        default_factory=list,
        description="Regions whose SNS host may serve certificates (default: the topics').",
    )
    confirm_subscriptions: bool = Field(
        default=True,
        description="Confirm SNS subscriptions by fetching their SubscribeURL (off: log only).",
    )

    @field_validator("topic_arns")
    @classmethod
    def _arns(cls, value: list[str]) -> list[str]:
        for arn in value:
            topic_region(arn)
        return value

    @field_validator("regions")
    @classmethod
    def _regions(cls, value: list[str]) -> list[str]:
        for region in value:
            if not _REGION.match(region):
                raise ValueError(f"not an AWS region name: {region!r}")
        return value

    def allowed_regions(self) -> frozenset[str]:
        """Regions whose SNS host may serve certificates and subscription URLs."""
        return frozenset(self.regions or [topic_region(arn) for arn in self.topic_arns])


class SharedSecretWebhook(Model):
    """Providers that do not sign (Postmark, Brevo): a shared secret in every call.

    ``basic``: HTTP basic auth with ``username`` and the secret as password (put both in the
    webhook URL you give the provider); ``bearer``: ``Authorization: Bearer <secret>``;
    ``header``: the secret in the header named ``header``; ``query``: the secret in the query
    parameter ``query_param`` (it then appears in access logs: prefer the others).
    """

    auth: Literal["basic", "bearer", "header", "query"] = Field(
        default="basic", description="How the provider presents the shared secret."
    )
    username: str = Field(
        default="newsletter", description='User name expected with `auth = "basic"`.'
    )
    secret_env: EnvName = Field(description="Environment variable holding the shared secret.")
    header: str = Field(
        default="X-Webhook-Token", description='Header carrying the secret with `auth = "header"`.'
    )
    query_param: str = Field(
        default="token", description='Query parameter carrying the secret with `auth = "query"`.'
    )


class ResendWebhook(Model):
    """Resend (Svix signatures): the ``whsec_...`` signing secret is in ``secret_env``."""

    secret_env: EnvName = Field(
        default="RESEND_WEBHOOK_SECRET",
        description="Environment variable holding the whsec_... signing secret.",
    )


class Webhooks(Model):
    """Provider webhooks: replay tolerance, soft-bounce rule, and one sub-table per provider."""

    tolerance_seconds: int = Field(
        default=300,
        ge=1,
        le=86400,
        description="Signed timestamps further than this from now are refused as replays.",
    )
    soft_bounce_threshold: int = Field(
        default=3, ge=1, description="This many soft bounces in the window count as a hard one."
    )
    soft_bounce_window_days: int = Field(
        default=30, ge=1, description="Days within which soft bounces are counted."
    )
    #: replays of older events are not recognised; at least the soft-bounce window, which
    #: counts from these rows
    retention_days: int = Field(
        default=90,
        ge=1,
        description="Days received event ids are kept (at least soft_bounce_window_days).",
    )
    max_body_bytes: int = Field(
        default=1_048_576, ge=1024, description="Larger webhook bodies are refused with 413."
    )
    sendgrid: SendgridWebhook | None = Field(
        default=None, description="Accept SendGrid's Signed Event Webhook."
    )
    mailgun: MailgunWebhook | None = Field(
        default=None, description="Accept Mailgun's signed HTTP webhooks."
    )
    ses: SesWebhook | None = Field(
        default=None, description="Accept Amazon SES events through an SNS subscription."
    )
    postmark: SharedSecretWebhook | None = Field(
        default=None, description="Accept Postmark webhooks carrying a shared secret."
    )
    brevo: SharedSecretWebhook | None = Field(
        default=None, description="Accept Brevo webhooks carrying a shared secret."
    )
    resend: ResendWebhook | None = Field(
        default=None, description="Accept Resend's Svix-signed webhooks."
    )

    @model_validator(mode="after")
    def _retention_covers_window(self) -> Webhooks:
        if self.retention_days < self.soft_bounce_window_days:
            raise ValueError(
                f"retention_days ({self.retention_days}) must be at least "
                f"soft_bounce_window_days ({self.soft_bounce_window_days})"
            )
        return self

    @model_validator(mode="after")
    def _secret_not_shared(self) -> Webhooks:
        # the same variable for two providers would let one provider's secret open the other
        names = [cfg.secret_env for cfg in (self.postmark, self.brevo) if cfg is not None]
        if len(names) != len(set(names)):
            raise ValueError("postmark and brevo must not share one secret_env")
        return self
