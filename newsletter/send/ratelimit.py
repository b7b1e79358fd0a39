"""The sending rate limits of one process, shared by every batch it sends.

Three limits come from the ``[provider]`` table (see ``config/providers.py``):

- ``concurrency``: batches in flight at once;
- ``requests_per_second``: API calls started per second;
- ``messages_per_second``: messages handed to the provider per second;

and one comes from the provider itself: when it answers "slow down" (HTTP 429, SES
throttling, a Retry-After on a 503), :meth:`RateLimiter.throttle` pauses *every* sender in
the process for that long, so the edition slows down instead of burning its recipients'
retry attempts one batch after another.

Rates are paced, not bucketed: each reservation is given the next free start time on a
schedule of ``1 / rate`` per unit, so the average never exceeds the rate and there is no
burst after an idle period beyond one batch.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from types import TracebackType

from newsletter.config.providers import ProviderBase

__all__ = ["Pacer", "RateLimiter", "Slot"]

Sleep = Callable[[float], Awaitable[None]]


class Pacer:
    """Start times on a fixed-rate schedule: ``reserve(n)`` books ``n`` units, says when."""

    def __init__(self, rate: float | None, clock: Callable[[], float]) -> None:
        if rate is not None and rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.interval = 0.0 if rate is None else 1.0 / rate
        self.clock = clock
        self.next_at = 0.0

    def reserve(self, units: float) -> float:
        """Book ``units``; returns how many seconds to wait before starting."""
        if not self.interval:
            return 0.0
        now = self.clock()
        start = max(now, self.next_at)
        self.next_at = start + units * self.interval
        return start - now

    def refund(self, units: float) -> None:
        """Give back units booked but not used (a claim returned fewer rows)."""
        self.next_at -= units * self.interval


class Slot:
    """One batch's permission to send; release it when the batch is recorded.

    Use as ``async with limiter.slot(n) as slot``, or call :meth:`release` yourself.
    """

    def __init__(self, limiter: RateLimiter, messages: int) -> None:
        self.limiter = limiter
        self.messages = messages
        self._released = False

    def use(self, messages: int) -> None:
        """The batch turned out to hold ``messages``: refund the rest of the reservation."""
        if messages < self.messages:
            self.limiter._messages.refund(self.messages - messages)
            self.messages = messages

    def release(self) -> None:
        """Free the concurrency place (safe to call twice)."""
        if not self._released:
            self._released = True
            self.limiter._sem.release()

    async def __aenter__(self) -> Slot:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


class RateLimiter:
    """Concurrency, request rate, message rate and a process-wide throttle pause.

    ``clock`` (monotonic seconds) and ``sleep`` are injectable for tests.
    """

    def __init__(
        self,
        *,
        messages_per_second: float | None = None,
        requests_per_second: float | None = None,
        concurrency: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self.concurrency = concurrency
        self.messages_per_second = messages_per_second
        self.requests_per_second = requests_per_second
        self.clock = clock
        self.sleep = sleep
        self._sem = asyncio.Semaphore(concurrency)
        self._messages = Pacer(messages_per_second, clock)
        self._requests = Pacer(requests_per_second, clock)
        self._paused_until = 0.0
        #: how often and for how long in total the provider made us wait
        self.throttled = 0
        self.throttled_seconds = 0.0

    @classmethod
    def from_config(cls, config: ProviderBase) -> RateLimiter:
        """The limiter for a ``[provider]`` table."""
        return cls(
            messages_per_second=config.messages_per_second,
            requests_per_second=config.requests_per_second,
            concurrency=config.concurrency,
        )

    def paused_for(self) -> float:
        """Seconds left of the current throttle pause (0 when not paused)."""
        return max(self._paused_until - self.clock(), 0.0)

    def throttle(self, seconds: float) -> None:
        """The provider asked us to wait: no batch in this process starts for ``seconds``.

        Requests already in flight are not interrupted; a longer pause wins over a
        shorter one that is still running.
        """
        if seconds <= 0:
            return
        until = self.clock() + seconds
        if until > self._paused_until:
            self.throttled_seconds += until - max(self._paused_until, self.clock())
            self._paused_until = until
        self.throttled += 1

    async def _wait_pause(self) -> None:
        # a pause may be extended while we sleep (another batch got a 429): look again
        while (left := self.paused_for()) > 0:
            await self.sleep(left)

    async def slot(self, messages: int) -> Slot:
        """Wait until a batch of ``messages`` may start; the caller releases the slot."""
        await self._sem.acquire()
        try:
            await self._wait_pause()
            delay = max(self._messages.reserve(messages), self._requests.reserve(1))
            if delay > 0:
                await self.sleep(delay)
            await self._wait_pause()
        except BaseException:
            self._sem.release()
            raise
        return Slot(self, messages)
