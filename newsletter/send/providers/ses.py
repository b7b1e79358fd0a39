"""Amazon SES API v2 over httpx: ``SendEmail`` with our own MIME, signed with SigV4.

**SendEmail (raw), not SendBulkEmail.** SendBulkEmail only sends *templates*: one SES
template (stored, or inline ``TemplateContent``) filled per entry from
``ReplacementTemplateData``. Our messages are already rendered and personalized per
recipient, so bulk sending would mean shipping each whole HTML body as template data
through Handlebars (escaping rules to get right) and giving up our MIME: our Message-ID,
our encoded headers, our multipart layout. SES counts its sending quota and rate per
*message* whichever call is used, so bulk calls would only save HTTP round trips, which
pooled keep-alive connections and ``parallel_requests`` concurrent calls make cheap. So each
message goes as ``Content.Raw`` (the bytes of :func:`newsletter.send.mime.to_bytes`):
List-Unsubscribe and List-Unsubscribe-Post arrive exactly as written, as does Cyrillic in
every header. A batch is at most 50 messages, SendBulkEmail's own limit, so switching later
keeps batch sizes valid.

**Answers** (error names from the service model, in ``x-amzn-ErrorType`` or the body):

- 200 ``{"MessageId"}``: ``ACCEPTED`` with SES's message id;
- ``TooManyRequestsException`` (429), ``ThrottlingException``, ``LimitExceededException``
  (sending rate or daily quota): ``RETRYABLE`` as a throttle, always with a
  ``retry_after`` (``Retry-After``, else :data:`~newsletter.send.providers.http.THROTTLE_WAIT`),
  so the whole edition slows down and no recipient runs out of attempts; 5xx, timeouts:
  ``RETRYABLE``;
- ``MessageRejected`` (content refused, or an unverified recipient in the sandbox),
  ``BadRequestException`` (an invalid address): ``PERMANENT`` for that message;
- ``AccountSuspendedException``, ``SendingPausedException``,
  ``MailFromDomainNotVerifiedException``, ``NotFoundException`` (unknown configuration
  set), 401/403 (bad or expired credentials, signature): ``ProviderError``; every message
  would fail alike.

SES has no idempotency key: a message whose answer was lost may have gone out, so the
provider does not claim ``supports_idempotency``.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal, Self, Unpack

import httpx
from httpx_auth import AWS4Auth
from pydantic import Field

from newsletter.config.providers import HttpProviderBase
from newsletter.errors import ProviderError
from newsletter.models import OutgoingMessage, ResultStatus, SendResult
from newsletter.send import mime as message
from newsletter.send.providers.http import (
    ERROR_LIMIT,
    ClientOptions,
    Failed,
    HttpProvider,
    client_options,
    env_secret,
    every,
    json_body,
    throttle_wait,
)
from newsletter.send.providers.idempotency import gather_limited

if TYPE_CHECKING:
    from newsletter.config import Settings

__all__ = ["SesProvider", "SesProviderConfig", "error_type"]

PATH: Final = "/v2/email/outbound-emails"
RETRYABLE_ERRORS: Final = frozenset(
    {"TooManyRequestsException", "ThrottlingException", "LimitExceededException"}
)
ACCOUNT_ERRORS: Final = frozenset(
    {
        "AccountSuspendedException",
        "SendingPausedException",
        "MailFromDomainNotVerifiedException",
        "NotFoundException",
    }
)
#: metadata sent as SES message tags (for event publishing), besides the delivery id
TAG_KEYS: Final = ("edition_id", "subscriber_id")
_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def error_type(response: httpx.Response) -> str:
    """The AWS error name of a failed answer (``MessageRejected``), or empty.

    restJson services put it in ``x-amzn-ErrorType`` (``Name:namespace-url``), or in the
    body as ``__type`` / ``code`` (possibly ``namespace#Name``).
    """
    raw: str = response.headers.get("x-amzn-errortype", "")
    if not raw:
        body = json_body(response)
        if isinstance(body, dict):
            raw = str(body.get("__type") or body.get("code") or body.get("Code") or "")
    return raw.split(":", 1)[0].rsplit("#", 1)[-1].strip()


def _tag(name: str, value: str) -> dict[str, str]:
    return {"Name": name, "Value": _TAG_UNSAFE.sub("_", value)[:256] or "_"}


class SesProviderConfig(HttpProviderBase):
    """``[provider] name = "ses"``: Amazon SES v2 SendEmail with our raw MIME, signed with
    SigV4."""

    name: Literal["ses"] = Field(default="ses", description='Selects Amazon SES v2: "ses".')
    region: str = Field(
        pattern=r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$",
        examples=["eu-central-1"],
        description='AWS region of the SES account, e.g. "eu-central-1".',
    )
    access_key_id_env: str = Field(
        default="AWS_ACCESS_KEY_ID",
        description="Name of the environment variable holding the AWS access key id.",
    )
    secret_access_key_env: str = Field(
        default="AWS_SECRET_ACCESS_KEY",
        description="Name of the environment variable holding the AWS secret access key.",
    )
    session_token_env: str | None = Field(
        default=None,
        description="Name of the environment variable holding a session token (temporary "
        "STS credentials); unset means none is sent.",
    )
    configuration_set: str | None = Field(
        default=None,
        description="SES configuration set of every message (event publishing, dedicated "
        "IPs); unset means the account's default.",
    )
    parallel_requests: int = Field(
        default=10,
        gt=0,
        le=100,
        description="SendEmail requests in flight at once within one batch (1 to 100).",
    )


class SesProvider(HttpProvider):
    """Sends through SES v2 ``SendEmail``, one signed request per message, several at once."""

    name: ClassVar[str] = "ses"
    max_batch: ClassVar[int] = 50
    supports_idempotency: ClassVar[bool] = False
    config_type: ClassVar[type[SesProviderConfig]] = SesProviderConfig

    def __init__(
        self,
        access_key_id: str,
        secret_access_key: str,
        region: str,
        *,
        session_token: str | None = None,
        configuration_set: str | None = None,
        parallel_requests: int = 10,
        **options: Unpack[ClientOptions],
    ) -> None:
        if not options.get("base_url"):
            options["base_url"] = f"https://email.{region}.amazonaws.com"
        auth = AWS4Auth(
            access_key_id, secret_access_key, region, "ses", security_token=session_token
        )
        # each batch in flight runs up to parallel_requests requests: size the pool for all
        options["concurrency"] = options.get("concurrency", 1) * parallel_requests
        super().__init__(headers={"Accept": "application/json"}, auth=auth, **options)
        self.region = region
        self.configuration_set = configuration_set
        self.parallel_requests = parallel_requests

    @classmethod
    def build(cls, config: SesProviderConfig, settings: Settings) -> Self:
        """From ``[provider] name = "ses"``; credentials from the ``*_env`` variables."""
        token = None
        if config.session_token_env is not None:
            token = env_secret(config, "session_token_env", settings)
        return cls(
            env_secret(config, "access_key_id_env", settings),
            env_secret(config, "secret_access_key_env", settings),
            config.region,
            session_token=token,
            configuration_set=config.configuration_set,
            parallel_requests=config.parallel_requests,
            **client_options(config),
        )

    def payload(self, msg: OutgoingMessage, mime: bytes) -> dict[str, Any]:
        """The SendEmail request body for ``msg`` whose MIME bytes are ``mime``."""
        tags = [_tag("delivery_id", str(msg.delivery_id))]
        tags += [_tag(k, msg.metadata[k]) for k in TAG_KEYS if msg.metadata.get(k)]
        body: dict[str, Any] = {
            "FromEmailAddress": msg.from_email,
            "Destination": {"ToAddresses": [msg.to_email]},
            "Content": {"Raw": {"Data": base64.b64encode(mime).decode("ascii")}},
            "EmailTags": tags,
        }
        if self.configuration_set:
            body["ConfigurationSetName"] = self.configuration_set
        return body

    async def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        """One SendEmail per message, ``parallel_requests`` at once; results in order."""
        self.start_batch(messages)
        return await gather_limited(
            [partial(self._send_one, m) for m in messages], self.parallel_requests
        )

    async def _send_one(self, msg: OutgoingMessage) -> SendResult:
        try:
            mime = message.to_bytes(msg)
        except ValueError as exc:
            return SendResult(msg.delivery_id, ResultStatus.PERMANENT, error=str(exc))
        answer = await self.exchange([msg], "POST", PATH, json=self.payload(msg, mime))
        if isinstance(answer, Failed):
            return answer.results[0]
        body = json_body(answer)
        message_id = body.get("MessageId") if isinstance(body, dict) else None
        if not isinstance(message_id, str) or not message_id:
            # SES said 200 (it took the message) without an id: keep ours for the record
            message_id = f"ses:{msg.message_id}"
        return SendResult(msg.delivery_id, ResultStatus.ACCEPTED, provider_message_id=message_id)

    def failure(self, response: httpx.Response, messages: Sequence[OutgoingMessage]) -> Failed:
        """Map SES's error names (see the module docstring); raises for account errors."""
        kind = error_type(response)
        text = self.error_text(response)
        if kind in ACCOUNT_ERRORS:
            raise ProviderError(f"ses: the account cannot send ({text})")
        if kind in RETRYABLE_ERRORS:
            # a throttle: the whole process pauses, the messages keep their attempts
            wait = throttle_wait(response.headers)
            return Failed(
                every(messages, ResultStatus.RETRYABLE, text, wait), status=response.status_code
            )
        if kind in {"MessageRejected", "BadRequestException"}:
            blamed = [f"{text} (recipient {m.to_email!r})"[:ERROR_LIMIT] for m in messages]
            return Failed(
                [
                    SendResult(m.delivery_id, ResultStatus.PERMANENT, error=e)
                    for m, e in zip(messages, blamed, strict=True)
                ],
                rejection=text,
                status=response.status_code,
            )
        return super().failure(response, messages)

    def error_text(self, response: httpx.Response) -> str:
        """``HTTP 400: MessageRejected: Email address is not verified...``."""
        kind = error_type(response)
        body = json_body(response)
        text = ""
        if isinstance(body, dict):
            text = str(body.get("message") or body.get("Message") or "")
        if not kind and not text:
            return super().error_text(response)
        parts = [p for p in (kind, " ".join(text.split())) if p]
        return f"HTTP {response.status_code}: {': '.join(parts)}"[:ERROR_LIMIT]
