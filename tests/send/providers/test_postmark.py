"""Postmark adapter against a local server that checks every request against our schema."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from email.utils import parseaddr
from typing import Any, TypeVar

import pytest

from newsletter.config import Settings
from newsletter.errors import ProviderError
from newsletter.models import OutgoingMessage, ResultStatus, SendResult
from newsletter.send.providers.http import THROTTLE_WAIT
from newsletter.send.providers.postmark import (
    STREAM_PIECE,
    PostmarkProvider,
    _streamed_array,
    json_array,
)
from send.providers.composed import composed
from send.providers.fake_postmark import TOKEN, serve
from send.providers.specserver import Answer, SpecServer
from send.providers.support import StandIn

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run one test scenario on a fresh event loop."""
    return asyncio.run(coro)


STAND_IN = StandIn(serve, options={"inactive": {"bounced@example.org"}})


@pytest.fixture
def messages(make_config: Callable[..., Settings]) -> list[OutgoingMessage]:
    return composed(make_config, 5)


def send(provider: PostmarkProvider, batch: list[OutgoingMessage]) -> list[SendResult]:
    async def go() -> list[SendResult]:
        async with provider:
            return await provider.send_batch(batch)

    return run(go())


def test_batch_carries_headers_metadata_stream_and_cyrillic_intact(
    server: SpecServer, messages: list[OutgoingMessage]
) -> None:
    provider = PostmarkProvider(TOKEN, base_url=server.base_url, message_stream="newsletters")
    results = send(provider, messages)
    assert [r.status for r in results] == [ResultStatus.ACCEPTED] * 5
    assert len({r.provider_message_id for r in results}) == 5
    [request] = server.requests
    assert request.headers["x-postmark-server-token"] == TOKEN
    assert request.headers["accept"] == "application/json"
    for msg, element in zip(messages, request.json, strict=True):
        assert parseaddr(element["From"]) == (msg.from_name, msg.from_email)
        assert parseaddr(element["To"]) == (msg.to_name, msg.to_email) or not msg.to_name
        assert element["Subject"] == "Седмичен бюлетин: „Енергия“ & още 4 новини"
        assert element["HtmlBody"] == msg.html and element["TextBody"] == msg.text
        assert element["MessageStream"] == "newsletters"
        assert element["Tag"] == "members"
        headers = {h["Name"]: h["Value"] for h in element["Headers"]}
        assert headers["List-Unsubscribe"] == msg.headers["List-Unsubscribe"]
        assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert element["Metadata"] == {
            "delivery_id": str(msg.delivery_id),
            "edition_id": "3",
            "subscriber_id": msg.metadata["subscriber_id"],
            "segment": "members",
        }
    assert parseaddr(request.json[0]["To"])[0] == 'Мария "Енергия" Петрова, инж.'
    assert request.json[2]["To"] == "reader2@example.org"  # no name: a bare address


def test_every_element_is_read_partial_failures(
    server: SpecServer, make_config: Callable[..., Settings]
) -> None:
    emails = ["ok1@example.org", "no-at-sign.example.org", "bounced@example.org", "ok2@example.org"]
    batch = composed(make_config, 4, emails=emails)
    results = send(PostmarkProvider(TOKEN, base_url=server.base_url), batch)
    assert [r.status for r in results] == [
        ResultStatus.ACCEPTED,
        ResultStatus.PERMANENT,
        ResultStatus.PERMANENT,
        ResultStatus.ACCEPTED,
    ]
    assert results[1].error and results[1].error.startswith("postmark 300:")
    assert "no-at-sign.example.org" in results[1].error
    assert results[2].error and results[2].error.startswith("postmark 406:")
    assert "inactive" in results[2].error
    assert results[1].provider_message_id is None
    assert len(server.requests) == 1


def test_element_rate_limit_is_retryable_and_account_errors_stop(
    server: SpecServer, messages: list[OutgoingMessage]
) -> None:
    server.script(
        Answer(
            200,
            [
                {"ErrorCode": 0, "MessageID": "a", "Message": "OK"},
                {"ErrorCode": 429, "Message": "Rate limit exceeded"},
            ],
        )
    )
    results = send(PostmarkProvider(TOKEN, base_url=server.base_url), messages[:2])
    assert [r.status for r in results] == [ResultStatus.ACCEPTED, ResultStatus.RETRYABLE]
    # Postmark names no time: the throttle waits THROTTLE_WAIT (and pauses every batch)
    assert results[1].retry_after == THROTTLE_WAIT
    server.script(
        Answer(200, [{"ErrorCode": 405, "Message": "Not allowed to send: out of credits"}])
    )
    with pytest.raises(ProviderError, match="405: Not allowed to send"):
        send(PostmarkProvider(TOKEN, base_url=server.base_url), messages[:1])


def test_429_with_retry_after(server: SpecServer, messages: list[OutgoingMessage]) -> None:
    server.script(
        Answer(
            429, {"ErrorCode": 429, "Message": "Rate limit exceeded"}, headers={"Retry-After": "17"}
        )
    )
    results = send(PostmarkProvider(TOKEN, base_url=server.base_url), messages)
    assert {r.status for r in results} == {ResultStatus.RETRYABLE}
    assert {r.retry_after for r in results} == {17.0}
    assert results[0].error == "HTTP 429: postmark 429: Rate limit exceeded"


def test_500_is_retryable_without_a_wait(
    server: SpecServer, messages: list[OutgoingMessage]
) -> None:
    server.script(Answer(500, "Internal Server Error", content_type="text/plain"))
    results = send(PostmarkProvider(TOKEN, base_url=server.base_url), messages)
    assert {r.status for r in results} == {ResultStatus.RETRYABLE}
    assert {r.retry_after for r in results} == {None}
    assert results[0].error == "HTTP 500: Internal Server Error"


def test_whole_call_rejected_with_422(server: SpecServer, messages: list[OutgoingMessage]) -> None:
    server.script(Answer(422, {"ErrorCode": 300, "Message": "Invalid 'From' address: 'x'."}))
    results = send(PostmarkProvider(TOKEN, base_url=server.base_url), messages)
    assert {r.status for r in results} == {ResultStatus.PERMANENT}
    assert results[0].error == "HTTP 422: postmark 300: Invalid 'From' address: 'x'."
    server.script(Answer(422, {"ErrorCode": 401, "Message": "Sender signature not confirmed"}))
    with pytest.raises(ProviderError, match="Sender signature not confirmed"):
        send(PostmarkProvider(TOKEN, base_url=server.base_url), messages)


def test_wrong_token_raises_provider_error(
    server: SpecServer, messages: list[OutgoingMessage]
) -> None:
    with pytest.raises(ProviderError, match=r"postmark 10: The Server API Token"):
        send(PostmarkProvider("wrong-token", base_url=server.base_url), messages)


def test_slow_answer_past_the_timeout(server: SpecServer, messages: list[OutgoingMessage]) -> None:
    # Postmark got the batch and may have taken it: not sent again automatically
    server.script(Answer(200, [], delay=30))
    results = send(PostmarkProvider(TOKEN, base_url=server.base_url, timeout=0.2), messages)
    assert {r.status for r in results} == {ResultStatus.UNKNOWN}
    assert "ReadTimeout" in (results[0].error or "")


def test_connection_reset(server: SpecServer, messages: list[OutgoingMessage]) -> None:
    server.script(Answer(reset=True))
    results = send(PostmarkProvider(TOKEN, base_url=server.base_url), messages)
    assert {r.status for r in results} == {ResultStatus.UNKNOWN}
    assert "no answer" in (results[0].error or "")
    assert len(server.requests) == 1


def test_unreadable_200_answer_is_unknown(
    server: SpecServer, messages: list[OutgoingMessage]
) -> None:
    """Postmark took the batch (200) but we cannot tell which messages: never resend blindly."""
    server.script(Answer(200, [{"ErrorCode": 0, "MessageID": "only-one"}]))
    results = send(PostmarkProvider(TOKEN, base_url=server.base_url), messages)
    assert {r.status for r in results} == {ResultStatus.UNKNOWN}
    assert "unreadable batch answer" in (results[0].error or "")


def test_payload_limit_splits_calls_in_order(
    server: SpecServer, messages: list[OutgoingMessage]
) -> None:
    one = len(messages[0].html) + len(messages[0].text)
    provider = PostmarkProvider(TOKEN, base_url=server.base_url, max_payload=2 * one + 2000)
    results = send(provider, messages)
    assert [r.delivery_id for r in results] == [m.delivery_id for m in messages]
    assert {r.status for r in results} == {ResultStatus.ACCEPTED}
    sizes = [len(r.body) for r in server.requests]
    assert len(sizes) == 3 and max(sizes) <= provider.max_payload
    sent = [el["Metadata"]["delivery_id"] for r in server.requests for el in r.json]
    assert sent == [str(m.delivery_id) for m in messages]


def test_batches_reuse_one_keep_alive_connection(
    server: SpecServer, messages: list[OutgoingMessage]
) -> None:
    provider = PostmarkProvider(TOKEN, base_url=server.base_url)

    async def go() -> None:
        async with provider:
            for msg in messages:
                await provider.send_batch([msg])

    run(go())
    assert len(server.requests) == 5
    assert len({r.peer for r in server.requests}) == 1


def test_max_batch_of_500_in_one_call(
    server: SpecServer, make_config: Callable[..., Settings]
) -> None:
    batch = composed(make_config, 500)
    results = send(PostmarkProvider(TOKEN, base_url=server.base_url), batch)
    assert len(results) == 500 and {r.status for r in results} == {ResultStatus.ACCEPTED}
    assert len(server.requests) == 1 and len(server.requests[0].json) == 500
    with pytest.raises(ValueError, match="max_batch 500"):
        send(PostmarkProvider(TOKEN, base_url=server.base_url), [*batch, batch[0]])


def test_a_call_is_streamed_in_pieces_that_join_to_the_array() -> None:
    # the body goes out in ~1 MB writes, never joined whole; the bytes are the same
    parts = [b'{"n":%d,"pad":"%s"}' % (i, b"x" * 300_000) for i in range(8)]

    async def collect() -> list[bytes]:
        return [piece async for piece in _streamed_array(parts)]

    pieces = run(collect())
    assert b"".join(pieces) == json_array(parts)
    assert 1 < len(pieces) < len(parts) and max(map(len, pieces)) < 2 * STREAM_PIECE
    assert json.loads(b"".join(pieces))[7]["n"] == 7
