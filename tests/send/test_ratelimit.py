"""The shared rate limiter: pacing, concurrency and the process-wide throttle pause.

Driven by a virtual clock: ``sleep`` advances it, so the schedule is exact and the tests
take no time.
"""

from __future__ import annotations

import asyncio

import pytest

from newsletter.send.providers.outbox import OutboxProviderConfig
from newsletter.send.ratelimit import Pacer, RateLimiter


class VirtualTime:
    """A clock that only moves when someone sleeps; records when each sleep ended."""

    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.0)
        await asyncio.sleep(0)


def limiter(t: VirtualTime, **kw: float | int | None) -> RateLimiter:
    return RateLimiter(clock=t.clock, sleep=t.sleep, **kw)  # type: ignore[arg-type]


def test_pacer_spaces_reservations_at_the_rate_and_refunds() -> None:
    t = VirtualTime()
    pacer = Pacer(10.0, t.clock)
    assert pacer.reserve(5) == 0.0  # the first batch goes at once
    assert pacer.reserve(5) == pytest.approx(0.5)  # 5 messages at 10/s later
    pacer.refund(5)  # the second batch turned out empty: its time is free again
    assert pacer.reserve(1) == pytest.approx(0.5)
    assert Pacer(None, t.clock).reserve(10_000) == 0.0
    with pytest.raises(ValueError):
        Pacer(0.0, t.clock)


def test_message_rate_holds_over_many_batches() -> None:
    t = VirtualTime()
    lim = limiter(t, messages_per_second=100.0)

    async def go() -> list[float]:
        starts = []
        for _ in range(10):
            slot = await lim.slot(50)
            starts.append(t.now)
            slot.release()
        return starts

    starts = asyncio.run(go())
    # 500 messages at 100/s: the tenth batch of 50 starts 4.5 s after the first
    assert starts == pytest.approx([0.5 * i for i in range(10)])


def test_request_rate_and_a_short_claim_are_refunded() -> None:
    t = VirtualTime()
    lim = limiter(t, requests_per_second=2.0, messages_per_second=100.0)

    async def go() -> list[float]:
        starts = []
        for _ in range(3):
            slot = await lim.slot(100)
            slot.use(10)  # the claim found only 10 rows: 90 messages' time comes back
            starts.append(t.now)
            slot.release()
        return starts

    # requests/s binds (0.5 s apart), not the 100 reserved messages (1 s apart)
    assert asyncio.run(go()) == pytest.approx([0.0, 0.5, 1.0])


def test_concurrency_caps_batches_in_flight() -> None:
    lim = RateLimiter(concurrency=3)
    active = peak = 0

    async def batch() -> None:
        nonlocal active, peak
        async with await lim.slot(1):
            active += 1
            peak = max(peak, active)
            await asyncio.sleep(0.01)
            active -= 1

    async def go() -> None:
        await asyncio.gather(*(batch() for _ in range(12)))

    asyncio.run(go())
    assert peak == 3


def test_throttle_pauses_every_sender_and_the_longest_pause_wins() -> None:
    t = VirtualTime()
    lim = limiter(t, concurrency=4)

    async def go() -> list[float]:
        lim.throttle(2.0)
        lim.throttle(0.5)  # shorter, while the first still runs: no effect
        starts = []

        async def one() -> None:
            slot = await lim.slot(10)
            starts.append(t.now)
            slot.release()

        await asyncio.gather(one(), one(), one())
        return starts

    starts = asyncio.run(go())
    assert min(starts) >= 2.0
    assert lim.throttled == 2 and lim.throttled_seconds == pytest.approx(2.0)
    assert lim.paused_for() == 0.0


def test_from_config_reads_the_provider_table() -> None:
    cfg = OutboxProviderConfig(messages_per_second=20, requests_per_second=4, concurrency=6)
    lim = RateLimiter.from_config(cfg)
    assert (lim.messages_per_second, lim.requests_per_second, lim.concurrency) == (20, 4, 6)
    with pytest.raises(ValueError):
        RateLimiter(concurrency=0)
