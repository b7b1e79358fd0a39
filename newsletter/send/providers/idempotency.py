"""Request-level idempotency for APIs that take one key per request (Brevo, Resend).

Our messages each carry a stable ``idempotency_key`` (per edition and subscriber), but Brevo
and Resend accept one key per *request*. A request's key is therefore derived from the keys
of exactly the messages it carries (:func:`request_key`): the same messages give the same
key whatever their order, different messages give a different key. So:

- a request sent again with the same messages (a retry of the same batch, a batch re-claimed
  after a crash with the same rows) is deduplicated by the provider;
- a message sent again *together with other messages* gets a new key and is not
  deduplicated. The answer that may leave a message in that state is an ambiguous one (no
  answer, a timeout, a 5xx: the provider may or may not have taken the request).
  :func:`exchange_settled` therefore re-sends the identical request at once, under the
  same key, so an ambiguous answer is settled while the batch is still together; only
  when that fails too do the messages go back as ``RETRYABLE``.

Several small requests instead of one big one (one message per request) make every key a
message's own; providers do that when per-recipient headers force one message per request
anyway.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Final, TypeVar

import httpx

from newsletter.models import OutgoingMessage
from newsletter.send.providers.http import Failed, HttpProvider

__all__ = ["NAMESPACE", "exchange_settled", "gather_limited", "is_ambiguous", "request_key"]

#: UUIDv5 namespace of request keys (a fixed random UUID: keys are stable across releases)
NAMESPACE: Final = uuid.UUID("6f1c2b8e-3d4a-5b6c-8d9e-0a1b2c3d4e5f")

T = TypeVar("T")


def request_key(messages: Iterable[OutgoingMessage]) -> str:
    """A UUID (as text) naming exactly this set of messages, independent of their order.

    A message without an ``idempotency_key`` contributes its Message-ID, which is stable
    per (edition, subscriber) too.
    """
    keys = sorted({m.idempotency_key or m.message_id for m in messages})
    return str(uuid.uuid5(NAMESPACE, "\n".join(keys)))


def is_ambiguous(answer: httpx.Response | Failed) -> bool:
    """True when the provider may have taken the request without saying so.

    No answer at all, 408 (it timed out reading), or a 5xx. A 429 is not ambiguous: the
    request was refused before being processed.
    """
    if not isinstance(answer, Failed):
        return False
    return answer.status is None or answer.status == 408 or answer.status >= 500


async def exchange_settled(
    provider: HttpProvider,
    messages: Sequence[OutgoingMessage],
    method: str,
    path: str,
    *,
    resend_pause: float,
    **kwargs: Any,
) -> httpx.Response | Failed:
    """:meth:`HttpProvider.exchange`, and once more with the very same request when the
    first answer is ambiguous (see :func:`is_ambiguous`).

    ``kwargs`` must carry the idempotency key (as a header or in the body) and the body as
    bytes or JSON that serializes the same twice, so the provider sees the same request.
    """
    answer = await provider.exchange(messages, method, path, **dict(kwargs))
    if not is_ambiguous(answer):
        return answer
    await asyncio.sleep(resend_pause)
    return await provider.exchange(messages, method, path, **dict(kwargs))


async def gather_limited(jobs: Iterable[Callable[[], Awaitable[T]]], limit: int) -> list[T]:
    """Run ``jobs`` (coroutine functions) at most ``limit`` at once; results in order.

    When one raises, the others are cancelled and the error propagates (a ``ProviderError``
    stops the whole batch, as it would have stopped a single request).
    """
    gate = asyncio.Semaphore(limit)

    async def one(job: Callable[[], Awaitable[T]]) -> T:
        async with gate:
            return await job()

    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(job)) for job in jobs]
    except BaseExceptionGroup as exc:
        # callers expect the provider's own error, not a group of one
        raise exc.exceptions[0] from None
    return [task.result() for task in tasks]
