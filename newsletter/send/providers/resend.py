"""Resend: ``POST /emails/batch``, up to 100 full emails per call, in permissive mode.

**Per-message results.** By default Resend validates a batch strictly: one invalid email
fails the whole call. We send ``x-batch-validation: permissive`` instead: Resend creates
every valid email and answers ``{"data": [{"id"}...], "errors": [{"index", "message"}]}``,
where ``data`` holds the created emails in request order and ``errors`` the rejected ones
by their 0-based index in the request. Rejected ones are ``PERMANENT`` with Resend's text;
the others are ``ACCEPTED`` with their ``data[].id``, matched in order.

**Idempotency.** The ``Idempotency-Key`` header names the whole request; it is
:func:`~newsletter.send.providers.idempotency.request_key` of its messages, so the same
messages always carry the same key. Resend keeps keys 24 hours: the same key with the same
body replays the first answer (ids included); the same key with a *different* body (the
messages were composed again, with fresh unsubscribe tokens) is refused with
``409 invalid_idempotent_request``, which means Resend already took these messages: they
are ``ACCEPTED`` with ``resend-request:<key>`` as provider id. ``409
concurrent_idempotent_requests`` (the first request is still running) is ``RETRYABLE``. An
ambiguous answer is settled by re-sending the identical body at once (see
:mod:`newsletter.send.providers.idempotency`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal, Self, Unpack

import httpx
from pydantic import Field

from newsletter.config.providers import HttpProviderBase
from newsletter.models import OutgoingMessage, ResultStatus, SendResult
from newsletter.send.providers.http import (
    ERROR_LIMIT,
    ClientOptions,
    Failed,
    HttpProvider,
    client_options,
    env_secret,
    every,
    json_body,
    labelled_error,
    mailbox,
    retry_after_from,
)
from newsletter.send.providers.idempotency import exchange_settled, request_key

if TYPE_CHECKING:
    from newsletter.config import Settings

__all__ = ["ResendProvider", "ResendProviderConfig"]

PATH: Final = "/emails/batch"
#: metadata sent as Resend tags, so webhooks can be matched to deliveries
TAG_KEYS: Final = ("edition_id", "subscriber_id")
#: Resend tag names and values: ASCII letters, digits, underscores and dashes
_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True)
class _AlreadySent(Failed):
    """Resend refused the key as used before with another body: the messages went out."""


def _tag(name: str, value: str) -> dict[str, str]:
    return {"name": name, "value": _TAG_UNSAFE.sub("_", value)[:256]}


def _error_name(response: httpx.Response) -> str:
    body = json_body(response)
    return str(body.get("name", "")) if isinstance(body, dict) else ""


class ResendProviderConfig(HttpProviderBase):
    """``[provider] name = "resend"``: POST /emails/batch, up to 100 emails a call, with an
    ``Idempotency-Key`` header."""

    name: Literal["resend"] = Field(default="resend", description='Selects Resend: "resend".')
    api_key_env: str = Field(
        default="RESEND_API_KEY",
        description="Name of the environment variable holding the Resend API key (sent as "
        "a Bearer token).",
    )


class ResendProvider(HttpProvider):
    """Sends through Resend's batch API (see the module docstring for the mapping)."""

    name: ClassVar[str] = "resend"
    max_batch: ClassVar[int] = 100
    supports_idempotency: ClassVar[bool] = True
    default_base_url: ClassVar[str] = "https://api.resend.com"
    config_type: ClassVar[type[ResendProviderConfig]] = ResendProviderConfig

    def __init__(
        self, api_key: str, *, resend_pause: float = 1.0, **options: Unpack[ClientOptions]
    ) -> None:
        super().__init__(
            headers={
                "Authorization": f"Bearer {api_key}",
                "Accept": "application/json",
                "x-batch-validation": "permissive",
            },
            **options,
        )
        self.resend_pause = resend_pause

    @classmethod
    def build(cls, config: ResendProviderConfig, settings: Settings) -> Self:
        """From ``[provider] name = "resend"``; the key comes from ``api_key_env``."""
        return cls(env_secret(config, "api_key_env", settings), **client_options(config))

    def payload(self, msg: OutgoingMessage) -> dict[str, Any]:
        """The Resend email object for ``msg``."""
        body: dict[str, Any] = {
            "from": mailbox(msg.from_name, msg.from_email),
            "to": [mailbox(msg.to_name, msg.to_email)],
            "subject": msg.subject,
            "html": msg.html,
            "text": msg.text,
            "tags": [_tag("delivery_id", str(msg.delivery_id))]
            + [_tag(k, msg.metadata[k]) for k in TAG_KEYS if msg.metadata.get(k)],
        }
        if msg.headers:
            body["headers"] = dict(msg.headers)
        if msg.reply_to:
            body["reply_to"] = msg.reply_to
        return body

    async def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        """One request for the whole batch; one result per message, in order."""
        self.start_batch(messages)
        if not messages:
            return []
        key = request_key(messages)
        content = json.dumps([self.payload(m) for m in messages], ensure_ascii=False).encode()
        answer = await exchange_settled(
            self,
            messages,
            "POST",
            PATH,
            content=content,
            headers={"Content-Type": "application/json", "Idempotency-Key": key},
            resend_pause=self.resend_pause,
        )
        if isinstance(answer, _AlreadySent):
            return [self._accepted(m, f"resend-request:{key}") for m in messages]
        if isinstance(answer, Failed):
            return answer.results
        return self._results(messages, answer, key)

    def _accepted(self, msg: OutgoingMessage, provider_id: str) -> SendResult:
        return SendResult(msg.delivery_id, ResultStatus.ACCEPTED, provider_message_id=provider_id)

    def _results(
        self, messages: Sequence[OutgoingMessage], answer: httpx.Response, key: str
    ) -> list[SendResult]:
        """Map ``data`` and ``errors`` of a 200 answer onto the messages."""
        body = json_body(answer)
        data = body.get("data") if isinstance(body, dict) else None
        errors = (body.get("errors") if isinstance(body, dict) else None) or []
        rejected: dict[int, str] = {}
        for item in errors if isinstance(errors, list) else []:
            if isinstance(item, dict) and isinstance(item.get("index"), int):
                rejected[item["index"]] = str(item.get("message") or "rejected")
        taken = [i for i in range(len(messages)) if i not in rejected]
        ids = [d.get("id") for d in data] if isinstance(data, list) else []
        if len(ids) != len(taken) or not all(isinstance(i, str) and i for i in ids):
            # Resend took the request (200) but its ids do not line up with our messages
            ids = [f"resend-request:{key}"] * len(taken)
        by_index = dict(zip(taken, ids, strict=True))
        results = []
        for index, msg in enumerate(messages):
            if index in rejected:
                error = f"resend: {rejected[index]} (recipient {msg.to_email!r})"
                results.append(
                    SendResult(msg.delivery_id, ResultStatus.PERMANENT, error=error[:ERROR_LIMIT])
                )
            else:
                results.append(self._accepted(msg, str(by_index[index])))
        return results

    def failure(self, response: httpx.Response, messages: Sequence[OutgoingMessage]) -> Failed:
        """Resend's 409s: a key used with another body means sent; a running one, retry."""
        if response.status_code == 409:
            name = _error_name(response)
            text = self.error_text(response)
            if name == "invalid_idempotent_request":
                return _AlreadySent(every(messages, ResultStatus.PERMANENT, text), status=409)
            if name == "concurrent_idempotent_requests":
                wait = retry_after_from(response.headers)
                return Failed(every(messages, ResultStatus.RETRYABLE, text, wait), status=409)
        return super().failure(response, messages)

    def error_text(self, response: httpx.Response) -> str:
        """``HTTP 422: validation_error: ...`` from Resend's error body."""
        return labelled_error(response, "name") or super().error_text(response)
