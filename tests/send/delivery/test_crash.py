"""Worker processes killed with SIGKILL at random points, 30 times over one edition.

Against the fake provider, through the real Postmark (no idempotency) and Resend
(idempotency keys) adapters. Kill points: when the provider receives a batch but before
it takes it; after it delivered a batch but before the worker heard (so before the
commit); and at a random moment while batches are in flight (two at once: mid-batch,
mid-claim, mid-commit). Afterwards every reader has exactly one message, or, with
Postmark, is reported ``unknown``; no row is ``sent`` unless the provider has it. Then
``editions reconcile`` asks Postmark's search which unknown rows arrived, and a resume
sends only the others: every reader has exactly one message.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from newsletter.models import DeliveryStatus
from send.delivery.fakeprovider import FakeProvider, Kill, serve
from send.delivery.harness import counts, rows, run, sqlite_edition, start

RECIPIENTS = 2000
KILLS = 30
WORKER = ("worker", "--lease", "2", "--poll", "0.1", "--retry-base", "0.2")


@dataclass
class Campaign:
    """What one provider's run of kills left behind."""

    provider: str
    url: str
    edition: int
    config: Path
    fake: FakeProvider
    kills: Counter[str] = field(default_factory=Counter)


def _wait_for_request(fake: FakeProvider, before: int) -> None:
    deadline = time.monotonic() + 30
    while len(fake.log) <= before:
        assert time.monotonic() < deadline, "the worker sent nothing within 30 s"
        time.sleep(0.005)


def prepare(provider: str, folder: Path, fake: FakeProvider) -> Campaign:
    """A seeded edition and a config for ``provider`` (in the main thread: Alembic's
    migration context is process-global)."""
    url, edition, config = sqlite_edition(
        folder,
        RECIPIENTS,
        {
            "name": provider,
            "base_url": fake.base_url,
            "timeout": 1.0,  # below the 2 s lease the kills rely on
            "batch_size": 10,
            "concurrency": 2,
        },
    )
    return Campaign(provider, url, edition, config, fake)


def campaign(result: Campaign, seed: int) -> Campaign:
    """Start a worker and kill it, ``KILLS`` times, then let one drain the edition."""
    rng = random.Random(seed)
    fake, config, folder = result.fake, result.config, result.config.parent
    for n in range(KILLS):
        proc = start(config, *WORKER, log=folder / f"worker{n}.log")
        mode = rng.choice(["before", "after", "timer"])
        if mode == "timer":
            _wait_for_request(fake, len(fake.log))
            time.sleep(rng.uniform(0.0, 0.05))
            proc.popen.kill()
        else:
            fake.kill = Kill(proc.popen.pid, at=rng.randint(1, 3), when=mode)
        code = proc.popen.wait(timeout=60)
        assert code == -9, f"worker {n} ({mode}) exited {code}:\n{proc.output()}"
        if fake.kill is not None:
            assert fake.kill.fired.is_set()
        fake.kill = None
        result.kills[mode] += 1
    # one more worker, left alone: it waits out the dead workers' leases and finishes
    run(config, *WORKER, "--once", "--wait", "10", log=folder / "drain.log")
    return result


def test_sigkill_30_times_loses_nothing_and_counts_nothing_unsent(tmp_path: Path) -> None:
    with (
        serve(latency=0.01, seed=1) as postmark_fake,
        serve(latency=0.01, seed=2) as resend_fake,
        ThreadPoolExecutor(2) as pool,
    ):
        # both providers at once: each campaign waits on its own processes
        ready = [
            prepare("postmark", tmp_path / "postmark", postmark_fake),
            prepare("resend", tmp_path / "resend", resend_fake),
        ]
        jobs = [pool.submit(campaign, c, seed) for c, seed in zip(ready, (11, 12), strict=True)]
        postmark, resend = (job.result() for job in jobs)

        for result in (postmark, resend):
            assert sum(result.kills.values()) == KILLS
            assert result.kills["after"] > 0 and result.kills["before"] > 0

        _check_postmark(postmark)
        _check_resend(resend)


def _check_resend(c: Campaign) -> None:
    """Idempotent: every row sent, every reader exactly one message, ids as delivered."""
    found = rows(c.url, c.edition)
    assert len(found) == RECIPIENTS
    assert Counter(status for _, status, _, _ in found) == {DeliveryStatus.SENT: RECIPIENTS}
    delivered, ids = c.fake.counts(), c.fake.ids()
    assert set(delivered) == {address for address, _, _, _ in found}
    for address, _, message_id, _ in found:
        assert delivered[address] == 1, f"{address} got {delivered[address]} messages"
        assert message_id in ids[address]
    # batches delivered just before a kill went again, and the provider recognised them
    assert c.fake.replays > 0


def _check_postmark(c: Campaign) -> None:
    """Not idempotent: sent or unknown; sent means delivered once; nothing twice."""
    found = rows(c.url, c.edition)
    assert len(found) == RECIPIENTS
    statuses = Counter(status for _, status, _, _ in found)
    assert set(statuses) <= {DeliveryStatus.SENT, DeliveryStatus.UNKNOWN}, statuses
    delivered, ids = c.fake.counts(), c.fake.ids()
    assert set(delivered) <= {address for address, _, _, _ in found}
    unknown_delivered = 0
    for address, status, message_id, _ in found:
        got = delivered.get(address, 0)
        assert got <= 1, f"{address} got {got} messages"
        if status is DeliveryStatus.SENT:
            assert got == 1 and message_id in ids[address], address
        else:
            unknown_delivered += got
    # the kills after delivery left readers who have the message but an unknown row;
    # the kills before it left unknown rows the provider never saw: both are reported
    assert 0 < unknown_delivered < statuses[DeliveryStatus.UNKNOWN]

    # the operator asks Postmark what it has: its search finds the readers whose message
    # arrived, and only the others are queued again
    unknown = {a for a, s, _, _ in found if s is DeliveryStatus.UNKNOWN}
    log = c.config.parent / "reconcile.log"
    out = run(c.config, "editions", "reconcile", str(c.edition), "--settle", "0", log=log)
    arrived = {a for a in unknown if delivered.get(a)}
    assert f"{len(arrived)} accepted (now sent)" in out.output(), out.output()
    assert f"{len(unknown) - len(arrived)} never arrived (queued again)" in out.output()
    settled = {a: (s, m) for a, s, m, _ in rows(c.url, c.edition)}
    for address in unknown:
        status, message_id = settled[address]
        if address in arrived:
            assert status is DeliveryStatus.SENT and message_id in ids[address], address
        else:
            assert status is DeliveryStatus.QUEUED, address

    # resuming sends those: now everyone has the edition exactly once
    run(c.config, "editions", "resume", str(c.edition), log=c.config.parent / "resume.log")
    assert counts(c.url, c.edition) == {DeliveryStatus.SENT: RECIPIENTS}
    after = c.fake.counts()
    assert {a for a, _, _, _ in found} == set(after)
    assert set(after.values()) == {1}
