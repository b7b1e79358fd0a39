"""Postmark: ``POST /email/batch``, up to 500 full messages per call, one answer per message.

The batch endpoint answers HTTP 200 even when some messages fail: every element of the
answer carries its own ``ErrorCode`` (0 = accepted), in the order of the request.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, ClassVar, Final, Literal, Self, Unpack

import httpx
from pydantic import Field

from newsletter.config.providers import HttpProviderBase
from newsletter.errors import ProviderError
from newsletter.models import OutgoingMessage, ResultStatus, SendResult
from newsletter.send.providers.base import Probe
from newsletter.send.providers.http import (
    ERROR_LIMIT,
    THROTTLE_WAIT,
    ClientOptions,
    Failed,
    HttpProvider,
    Unanswered,
    client_options,
    env_secret,
    every,
    json_body,
    mailbox,
)

if TYPE_CHECKING:
    from newsletter.config import Settings

__all__ = ["PostmarkProvider", "PostmarkProviderConfig", "json_array"]

#: the batch endpoint takes at most 50 MB per call; stay clearly below it
MAX_PAYLOAD: Final = 45 * 1024 * 1024
#: ErrorCodes that make every message fail alike: bad token, unknown or unconfirmed sender
#: signature, no credits, account pending or not allowed to send
ACCOUNT_ERRORS: Final = frozenset({10, 400, 401, 405, 412, 413})
#: ErrorCodes worth another try later: maintenance, and the rate limit (a throttle: it
#: pauses every batch for :data:`THROTTLE_WAIT`, as Postmark names no time)
RETRYABLE_ERRORS: Final = frozenset({100, 429})
THROTTLED: Final = 429
#: bytes per write when a call's body is streamed from its encoded messages
STREAM_PIECE: Final = 1024 * 1024
#: metadata keys sent with every message (Postmark allows 10 fields of up to 80 characters)
METADATA_KEYS: Final = ("edition_id", "subscriber_id", "segment")


def json_array(parts: Sequence[bytes]) -> bytes:
    """The JSON array of already encoded elements (a call's body, joined)."""
    return b"[" + b",".join(parts) + b"]"


async def _streamed_array(parts: Sequence[bytes]) -> AsyncIterator[bytes]:
    """:func:`json_array` in pieces of about :data:`STREAM_PIECE` bytes, for httpx to write
    as it goes (a piece per element would cost a socket write each)."""
    piece: list[bytes] = [b"["]
    size = 1
    for n, part in enumerate(parts):
        if n:
            piece.append(b",")
        piece.append(part)
        size += len(part) + 1
        if size >= STREAM_PIECE:
            yield b"".join(piece)
            piece, size = [], 0
    piece.append(b"]")
    yield b"".join(piece)


class PostmarkProviderConfig(HttpProviderBase):
    """``[provider] name = "postmark"``: POST /email/batch, up to 500 messages a request."""

    name: Literal["postmark"] = Field(
        default="postmark", description='Selects Postmark: "postmark".'
    )
    token_env: str = Field(
        default="POSTMARK_SERVER_TOKEN",
        description="Name of the environment variable holding the Postmark Server API token.",
    )
    message_stream: str = Field(
        default="broadcast",
        min_length=1,
        description="Postmark message stream the digests go out on; newsletters belong on "
        "a broadcast stream, not the transactional one.",
    )
    tag: str | None = Field(
        default=None,
        max_length=1000,
        description="Postmark Tag set on every message, for its statistics; unset means "
        "the segment's name.",
    )


class PostmarkProvider(HttpProvider):
    """Sends through Postmark's batch API on one message stream (``broadcast`` by default).

    Each message travels whole (Postmark personalizes nothing here); List-Unsubscribe and
    List-Unsubscribe-Post go in ``Headers``; edition, subscriber and delivery ids go in
    ``Metadata`` so webhooks can be matched; ``Tag`` defaults to the segment name.

    :meth:`lookup` finds a message whose answer was lost with the outbound message search
    (``GET /messages/outbound``), filtered on the ``delivery_id`` it carries in Metadata.
    """

    name: ClassVar[str] = "postmark"
    max_batch: ClassVar[int] = 500
    default_base_url: ClassVar[str] = "https://api.postmarkapp.com"
    #: Postmark keeps messages 45 days by default, 7 at the least (per server setting)
    lookup_horizon: ClassVar[timedelta | None] = timedelta(days=7)
    config_type: ClassVar[type[PostmarkProviderConfig]] = PostmarkProviderConfig

    def __init__(
        self,
        token: str,
        *,
        message_stream: str = "broadcast",
        tag: str | None = None,
        max_payload: int = MAX_PAYLOAD,
        **options: Unpack[ClientOptions],
    ) -> None:
        super().__init__(
            headers={"X-Postmark-Server-Token": token, "Accept": "application/json"}, **options
        )
        self.message_stream = message_stream
        self.tag = tag
        self.max_payload = max_payload

    @classmethod
    def build(cls, config: PostmarkProviderConfig, settings: Settings) -> Self:
        """From ``[provider] name = "postmark"``; the token comes from ``token_env``."""
        return cls(
            env_secret(config, "token_env", settings),
            message_stream=config.message_stream,
            tag=config.tag,
            **client_options(config),
        )

    def payload(self, msg: OutgoingMessage) -> dict[str, object]:
        """The Postmark JSON message for ``msg``."""
        body: dict[str, object] = {
            "From": mailbox(msg.from_name, msg.from_email),
            "To": mailbox(msg.to_name, msg.to_email),
            "Subject": msg.subject,
            "HtmlBody": msg.html,
            "TextBody": msg.text,
            "MessageStream": self.message_stream,
            "Headers": [{"Name": k, "Value": v} for k, v in msg.headers.items()],
            "Metadata": {
                "delivery_id": str(msg.delivery_id),
                **{k: msg.metadata[k][:80] for k in METADATA_KEYS if msg.metadata.get(k)},
            },
        }
        tag = self.tag or msg.metadata.get("segment")
        if tag:
            body["Tag"] = tag
        if msg.reply_to:
            body["ReplyTo"] = msg.reply_to
        return body

    async def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        """Send in as few calls as the 50 MB payload limit allows; one result per message."""
        self.start_batch(messages)
        results: list[SendResult] = []
        for chunk, parts in self.chunks(messages):
            results.extend(await self._send_chunk(chunk, parts))
        return results

    def chunks(
        self, messages: Sequence[OutgoingMessage]
    ) -> Iterator[tuple[list[OutgoingMessage], list[bytes]]]:
        """Messages grouped into calls under :attr:`max_payload` bytes, with the JSON of
        each message; one call is built at a time (:func:`json_array` makes its body)."""
        group: list[OutgoingMessage] = []
        parts: list[bytes] = []
        size = 2
        for msg in messages:
            part = json.dumps(self.payload(msg), ensure_ascii=False).encode("utf-8")
            if group and size + len(part) + 1 > self.max_payload:
                yield group, parts
                group, parts, size = [], [], 2
            group.append(msg)
            parts.append(part)
            size += len(part) + 1
        if group:
            yield group, parts

    async def _send_chunk(
        self, chunk: list[OutgoingMessage], parts: list[bytes]
    ) -> list[SendResult]:
        # the array is streamed from its parts, not joined: a joined copy of a 500-message
        # call is tens of megabytes more per batch in flight
        length = 2 + sum(len(p) for p in parts) + max(len(parts) - 1, 0)
        answer = await self.exchange(
            chunk,
            "POST",
            "/email/batch",
            content=_streamed_array(parts),
            headers={"Content-Type": "application/json", "Content-Length": str(length)},
        )
        if isinstance(answer, Failed):
            return answer.results
        elements = json_body(answer)
        if not isinstance(elements, list) or len(elements) != len(chunk):
            # Postmark answered 200, so it took the batch, but we cannot tell which messages
            # it accepted: resending could deliver twice, so the operator decides
            error = f"postmark: unreadable batch answer: {answer.text[:200]!r}"
            return every(chunk, ResultStatus.UNKNOWN, error)
        return [self._result(msg, el) for msg, el in zip(chunk, elements, strict=True)]

    def _result(self, msg: OutgoingMessage, element: object) -> SendResult:
        """One message's result from its element of the batch answer."""
        if not isinstance(element, dict):  # inside a 200 answer: it may have been sent
            return SendResult(msg.delivery_id, ResultStatus.UNKNOWN, error="postmark: bad answer")
        code = element.get("ErrorCode")
        text = str(element.get("Message") or "")
        if code == 0 and element.get("MessageID"):
            return SendResult(
                msg.delivery_id,
                ResultStatus.ACCEPTED,
                provider_message_id=str(element["MessageID"]),
            )
        error = f"postmark {code}: {text}"[:ERROR_LIMIT]
        if code in ACCOUNT_ERRORS:
            raise ProviderError(f"postmark: the account cannot send ({error})")
        if code in RETRYABLE_ERRORS:
            wait = THROTTLE_WAIT if code == THROTTLED else None
            return SendResult(
                msg.delivery_id, ResultStatus.RETRYABLE, error=error, retry_after=wait
            )
        return SendResult(msg.delivery_id, ResultStatus.PERMANENT, error=error)

    async def lookup_one(self, probe: Probe) -> str | None:
        """The MessageID Postmark gave the message of ``probe``'s delivery row, if any.

        Delivery ids are unique, so the search by that one metadata field (Postmark
        filters on one field per search) finds at most the message and its resends.
        """
        wanted = str(probe.delivery_id)
        body = await self.get_json(
            "/messages/outbound",
            {
                "count": "50",
                "offset": "0",
                "metadata_delivery_id": wanted,
                "messagestream": self.message_stream,
            },
        )
        found = body.get("Messages") if isinstance(body, dict) else None
        if not isinstance(found, list):
            raise Unanswered(f"postmark: unreadable search answer: {str(body)[:200]!r}")
        for message in found:
            if not isinstance(message, dict):
                continue
            metadata = message.get("Metadata")
            if isinstance(metadata, dict) and str(metadata.get("delivery_id")) == wanted:
                message_id = message.get("MessageID")
                if isinstance(message_id, str) and message_id:
                    return message_id
        return None

    def failure(self, response: httpx.Response, messages: Sequence[OutgoingMessage]) -> Failed:
        """Whole-call errors: 422 with an account ErrorCode stops sending, see base otherwise."""
        body = json_body(response)
        if isinstance(body, dict) and body.get("ErrorCode") in ACCOUNT_ERRORS:
            raise ProviderError(
                f"postmark: the account cannot send (postmark {body['ErrorCode']}: "
                f"{body.get('Message', '')})"
            )
        return super().failure(response, messages)

    def error_text(self, response: httpx.Response) -> str:
        """``HTTP 422: postmark 300: Invalid 'To' address...`` from Postmark's error body."""
        body = json_body(response)
        if isinstance(body, dict) and "ErrorCode" in body:
            return (
                f"HTTP {response.status_code}: postmark {body['ErrorCode']}: "
                f"{body.get('Message', '')}"
            )[:ERROR_LIMIT]
        return super().error_text(response)
