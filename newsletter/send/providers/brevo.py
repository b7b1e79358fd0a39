"""Brevo: ``POST /v3/smtp/email``, with ``messageVersions`` when messages can share a request.

Limits (Brevo's spec and batch-sending guide): at most 1000 message versions and 2000
recipients per request, 99 recipients per version. Each of our messages has one recipient,
so one version each, and :attr:`BrevoProvider.max_batch` is 1000.

**What can share a request.** A request has one sender and one set of custom ``headers``;
versions may only change recipients, subject, reply-to and content. Our List-Unsubscribe
headers carry a per-recipient token, so with ``unsubscribe_header = "ours"`` (the default:
one-click unsubscribes reach our own web app, as Gmail and Yahoo require) every message goes
in a request of its own, ``parallel_requests`` at a time (Brevo allows 1000 requests a second
on this endpoint). With ``"brevo"`` our two unsubscribe headers are left out, Brevo adds its
own, and messages with the same sender and remaining headers travel together as versions
(Brevo then records the unsubscribes, reported by its webhooks).

**Idempotency.** Brevo takes one ``headers.idempotencyKey`` (a UUID) per request and refuses
a request whose key it saw in the last 30 minutes with ``400 duplicate_parameter``, without
sending anything. The key is :func:`~newsletter.send.providers.idempotency.request_key` of the
messages in the request, so the same messages always carry the same key; a one-message
request's key is that message's own. A ``duplicate_parameter`` answer therefore means Brevo
already took exactly these messages: they are ``ACCEPTED``, with ``brevo-request:<key>`` as
provider id because Brevo does not repeat the message ids of the first answer. An ambiguous
answer (none, timeout, 5xx) is settled by re-sending the same request at once (see
:mod:`newsletter.send.providers.idempotency` for why, and for the limit: a message re-sent later
in a *different* group gets a new key).

**Errors.** Brevo rejects a whole request when one address is invalid
(``400 invalid_parameter: email is not valid in to``, without saying which): the request is
split until the culprit is found (:meth:`HttpProvider.send_isolating`). Accounts out of
credits, under validation or without permission stop the run (``ProviderError``).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal, Self, Unpack

import httpx
from pydantic import Field

from newsletter.config.providers import HttpProviderBase
from newsletter.errors import ProviderError
from newsletter.models import OutgoingMessage, ResultStatus, SendResult
from newsletter.send.providers.http import (
    ClientOptions,
    Failed,
    HttpProvider,
    client_options,
    env_secret,
    every,
    json_body,
    labelled_error,
)
from newsletter.send.providers.idempotency import exchange_settled, gather_limited, request_key

if TYPE_CHECKING:
    from newsletter.config import Settings

__all__ = ["BrevoProvider", "BrevoProviderConfig"]

PATH: Final = "/v3/smtp/email"
#: message versions per request (batch-sending guide); one recipient each
MAX_VERSIONS: Final = 1000
#: bytes per request body; Brevo publishes no limit, this keeps 1000 versions of a large
#: digest from becoming one request of a hundred megabytes
MAX_PAYLOAD: Final = 10 * 1024 * 1024
#: our headers that carry a per-recipient token
UNSUBSCRIBE_HEADERS: Final = frozenset({"list-unsubscribe", "list-unsubscribe-post"})
#: error codes after which no message of this account can go out
ACCOUNT_CODES: Final = frozenset(
    {"not_enough_credits", "account_under_validation", "permission_denied", "unauthorized"}
)
DUPLICATE: Final = "duplicate_parameter"
_VERSION_INDEX = re.compile(r"messageVersions\[(\d+)\]")


@dataclass(frozen=True)
class _AlreadySent(Failed):
    """Brevo refused the request as a repeat of one it already processed (same key)."""


def _code(response: httpx.Response) -> str:
    body = json_body(response)
    return str(body.get("code", "")).lower() if isinstance(body, dict) else ""


def _contact(name: str, email: str) -> dict[str, str]:
    # Brevo documents names of at most 70 characters
    name = " ".join(name.split())[:70]
    return {"email": email, "name": name} if name else {"email": email}


class BrevoProviderConfig(HttpProviderBase):
    """``[provider] name = "brevo"``: POST /v3/smtp/email, messageVersions (1000 versions,
    2000 recipients a call)."""

    name: Literal["brevo"] = Field(default="brevo", description='Selects Brevo: "brevo".')
    api_key_env: str = Field(
        default="BREVO_API_KEY",
        description="Name of the environment variable holding the Brevo API key (sent as "
        "the api-key header).",
    )
    unsubscribe_header: Literal["ours", "brevo"] = Field(
        default="ours",
        description='"ours" sends our per-recipient List-Unsubscribe headers, which Brevo '
        'allows only one message per request; "brevo" leaves ours out, Brevo adds its own '
        "and a batch travels as the messageVersions of one request.",
    )
    parallel_requests: int = Field(
        default=10,
        gt=0,
        le=100,
        description="Requests in flight at once within one batch (1 to 100).",
    )
    tags: tuple[str, ...] = Field(default=(), description="Brevo tags added to every message.")


class BrevoProvider(HttpProvider):
    """Sends through Brevo's transactional API (see the module docstring for the design)."""

    name: ClassVar[str] = "brevo"
    max_batch: ClassVar[int] = MAX_VERSIONS
    supports_idempotency: ClassVar[bool] = True
    default_base_url: ClassVar[str] = "https://api.brevo.com"
    config_type: ClassVar[type[BrevoProviderConfig]] = BrevoProviderConfig

    def __init__(
        self,
        api_key: str,
        *,
        unsubscribe_header: Literal["ours", "brevo"] = "ours",
        parallel_requests: int = 10,
        tags: Sequence[str] = (),
        max_payload: int = MAX_PAYLOAD,
        resend_pause: float = 1.0,
        **options: Unpack[ClientOptions],
    ) -> None:
        # each batch in flight runs up to parallel_requests requests: size the pool for all
        options["concurrency"] = options.get("concurrency", 1) * parallel_requests
        super().__init__(
            headers={"api-key": api_key, "Accept": "application/json"},
            **options,
        )
        self.unsubscribe_header = unsubscribe_header
        self.parallel_requests = parallel_requests
        self.tags = list(tags)
        self.max_payload = max_payload
        self.resend_pause = resend_pause

    @classmethod
    def build(cls, config: BrevoProviderConfig, settings: Settings) -> Self:
        """From ``[provider] name = "brevo"``; the key comes from ``api_key_env``."""
        return cls(
            env_secret(config, "api_key_env", settings),
            unsubscribe_header=config.unsubscribe_header,
            parallel_requests=config.parallel_requests,
            tags=config.tags,
            **client_options(config),
        )

    def headers_of(self, msg: OutgoingMessage) -> dict[str, str]:
        """The custom headers sent for ``msg`` (ours, minus unsubscribe ones in "brevo" mode)."""
        if self.unsubscribe_header == "ours":
            return dict(msg.headers)
        return {k: v for k, v in msg.headers.items() if k.lower() not in UNSUBSCRIBE_HEADERS}

    def groups(self, messages: Sequence[OutgoingMessage]) -> list[list[OutgoingMessage]]:
        """Messages that can share one request: same sender and same custom headers.

        Order inside a group follows the batch; a group is cut at :data:`MAX_VERSIONS`
        messages and at :attr:`max_payload` bytes of content.
        """
        current: dict[tuple[object, ...], tuple[list[OutgoingMessage], int]] = {}
        order: list[list[OutgoingMessage]] = []
        for msg in messages:
            key = (msg.from_email, msg.from_name, tuple(sorted(self.headers_of(msg).items())))
            size = len(msg.html.encode()) + len(msg.text.encode()) + len(msg.subject.encode())
            chunk, used = current.get(key, ([], 0))
            if not chunk or len(chunk) >= MAX_VERSIONS or used + size > self.max_payload:
                chunk, used = [], 0
                order.append(chunk)
            chunk.append(msg)
            current[key] = (chunk, used + size)
        return order

    def payload(self, group: Sequence[OutgoingMessage], key: str) -> dict[str, Any]:
        """The request body for ``group``: plain ``to`` for one message, else versions."""
        first = group[0]
        body: dict[str, Any] = {
            "sender": _contact(first.from_name, first.from_email),
            "subject": first.subject,
            "htmlContent": first.html,
            "textContent": first.text,
            "headers": {**self.headers_of(first), "idempotencyKey": key},
        }
        tags = list(self.tags)
        editions = {m.metadata.get("edition_id") for m in group}
        if len(editions) == 1 and None not in editions:
            tags.append(f"edition-{editions.pop()}")
        if tags:
            body["tags"] = tags
        if len(group) == 1:
            body["to"] = [_contact(first.to_name, first.to_email)]
            if first.reply_to:
                body["replyTo"] = {"email": first.reply_to}
            return body
        versions = []
        for msg in group:
            version: dict[str, Any] = {
                "to": [_contact(msg.to_name, msg.to_email)],
                "subject": msg.subject,
                "htmlContent": msg.html,
                "textContent": msg.text,
            }
            if msg.reply_to:
                version["replyTo"] = {"email": msg.reply_to}
            versions.append(version)
        body["messageVersions"] = versions
        return body

    async def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        """Send each group as one request (``parallel_requests`` at once); results in order."""
        self.start_batch(messages)
        groups = self.groups(messages)
        done = await gather_limited(
            [partial(self.send_isolating, g, self._send_group, _culprits) for g in groups],
            self.parallel_requests,
        )
        by_id = {r.delivery_id: r for results in done for r in results}
        return [by_id[m.delivery_id] for m in messages]

    async def _send_group(self, group: Sequence[OutgoingMessage]) -> list[SendResult] | Failed:
        key = request_key(group)
        answer = await exchange_settled(
            self, group, "POST", PATH, json=self.payload(group, key), resend_pause=self.resend_pause
        )
        if isinstance(answer, _AlreadySent):
            return [
                SendResult(
                    m.delivery_id, ResultStatus.ACCEPTED, provider_message_id=f"brevo-request:{key}"
                )
                for m in group
            ]
        if isinstance(answer, Failed):
            return answer
        body = json_body(answer)
        ids: list[Any] = []
        if isinstance(body, dict):
            if isinstance(body.get("messageIds"), list):
                ids = body["messageIds"]
            elif body.get("messageId"):
                ids = [body["messageId"]]
        if len(ids) != len(group) or not all(isinstance(i, str) and i for i in ids):
            # Brevo took the request (2xx) but its ids do not line up with our messages
            ids = [f"brevo-request:{key}"] * len(group)
        return [
            SendResult(m.delivery_id, ResultStatus.ACCEPTED, provider_message_id=i)
            for m, i in zip(group, ids, strict=True)
        ]

    def failure(self, response: httpx.Response, messages: Sequence[OutgoingMessage]) -> Failed:
        """Brevo's codes: a repeated key is no failure; account problems stop the run."""
        code = _code(response)
        if response.status_code == 400 and code == DUPLICATE:
            text = self.error_text(response)
            return _AlreadySent(every(messages, ResultStatus.PERMANENT, text), status=400)
        if code in ACCOUNT_CODES:
            raise ProviderError(f"brevo: the account cannot send ({self.error_text(response)})")
        return super().failure(response, messages)

    def error_text(self, response: httpx.Response) -> str:
        """``HTTP 400: invalid_parameter: email is not valid in to`` from Brevo's error body."""
        return labelled_error(response, "code") or super().error_text(response)


def _culprits(failed: Failed, group: Sequence[OutgoingMessage]) -> Collection[int] | None:
    """Which messages of a rejected request are at fault, as far as Brevo's text tells."""
    text = failed.rejection or ""
    indexes = {int(i) for i in _VERSION_INDEX.findall(text)}
    indexes |= {i for i, m in enumerate(group) if m.to_email and m.to_email in text}
    if indexes:
        return indexes
    lowered = text.lower()
    if "sender" in lowered:
        return None  # the sender is the same for every message: no recipient is at fault
    if "email" in lowered or " to" in lowered or "recipient" in lowered:
        return ()  # a recipient, Brevo does not say which
    return None
