"""The scheduler in-process on a controlled clock: send windows, min_items, stopping, crashes
and the single-instance lock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from schedule_support import (
    HEADER,
    MONDAY_ONLY,
    Driver,
    Stores,
    local,
    person,
    runs_of,
    settings_factory,
    write_news,
)

from newsletter import digest as digest_module
from newsletter.config import Settings
from newsletter.errors import SchedulerError
from newsletter.models import DeliveryStatus, EditionStatus, OutgoingMessage, SendResult
from newsletter.providers import PROVIDERS
from newsletter.providers.outbox import OutboxProvider
from newsletter.runner import Runner
from newsletter.schedule import list_jobs, stored_jobs
from newsletter.status import health
from newsletter.store.runs import RunStatus


@pytest.fixture
def build(
    make_config: Callable[..., Settings],
    tmp_path: Path,
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[..., Settings]:
    return settings_factory(make_config, tmp_path, db_url, monkeypatch)


@pytest.fixture
def opened() -> Iterator[Stores]:
    stores = Stores()
    yield stores
    stores.close()


def test_a_run_due_outside_the_send_window_waits_for_it(
    build: Callable[..., Settings], opened: Stores, tmp_path: Path
) -> None:
    job = {
        "id": "members-weekly",
        "job": "digest",
        "segment": "members",
        "cron": "0 19 * * fri",
        "window": {"days": "mon-fri", "start": "08:00", "end": "18:00"},
    }
    settings = build(schedule=[job])
    store = opened(settings)
    write_news(tmp_path / "news", local(2026, 11, 19, 9))
    with time_machine.travel(local(2026, 11, 19, 12), tick=False) as traveller:
        runner = Runner(settings, store)
        runner.start()
        try:
            driver = Driver(runner, traveller)
            driver.advance(local(2026, 11, 20, 19))
            (view,) = list_jobs(settings, store, local(2026, 11, 20, 19), scheduler_alive=True)
            assert view.pending == (("waits for the send window", local(2026, 11, 23, 8)),)
            assert store.editions.list(segment="members") == []
            driver.run_until(local(2026, 11, 23, 12))
        finally:
            runner.shutdown()
    waiting, done = runs_of(store, "members-weekly")
    assert waiting.status is RunStatus.WAITING
    assert "waits until 2026-11-23 08:00 EET" in waiting.detail
    assert done.status is RunStatus.DONE and done.started_at == local(2026, 11, 23, 8)
    # the run keeps the time it was due for
    assert done.scheduled_for == local(2026, 11, 20, 19)
    (edition,) = store.editions.list(segment="members")
    assert edition.created_at == local(2026, 11, 23, 8)


def test_min_items_and_on_empty_are_respected_by_scheduled_runs(
    build: Callable[..., Settings], opened: Stores, tmp_path: Path
) -> None:
    segments = [
        {
            "name": "members",
            "rules": [{"field": "lists", "op": "contains", "value": "members"}],
            "min_items": 2,
        }
    ]
    settings = build(schedule=MONDAY_ONLY, segments=segments, on_empty="error")
    store = opened(settings)
    write_news(tmp_path / "news", local(2026, 11, 18, 9))
    with time_machine.travel(local(2026, 11, 19, 12), tick=False) as traveller:
        runner = Runner(settings, store)
        runner.start()
        try:
            driver = Driver(runner, traveller)
            driver.advance(local(2026, 11, 23, 9))
            traveller.move_to(local(2026, 11, 25, 9))
            write_news(tmp_path / "news", local(2026, 11, 25, 9))
            traveller.move_to(local(2026, 11, 26, 9))
            write_news(tmp_path / "news", local(2026, 11, 26, 9))
            driver.run_until(local(2026, 11, 30, 12))
        finally:
            runner.shutdown()
    short, full = runs_of(store, "members-weekly")
    # one new item, fewer than min_items=2: no edition; with on_empty = "error" it is a failure
    assert short.status is RunStatus.FAILED
    assert "fewer than min_items=2" in short.detail
    assert full.status is RunStatus.DONE
    (edition,) = store.editions.list(segment="members")
    assert edition.period == "2026-W49"


def test_a_stopped_send_continues_on_the_next_start_and_loses_nothing(
    build: Callable[..., Settings],
    opened: Stores,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    people = "".join(
        person(f"reader{n}@members.example.org", f"Reader {n}", "bg", "BG", "members")
        for n in range(7)
    )
    (tmp_path / "members.csv").write_text(HEADER + people, encoding="utf-8")
    settings = build(
        schedule=MONDAY_ONLY, provider={"name": "outbox", "path": "outbox", "batch_size": 2}
    )
    store = opened(settings)
    write_news(tmp_path / "news", local(2026, 11, 20, 9))
    monkeypatch.setattr(digest_module, "STOP_POLL", 0.01)
    with time_machine.travel(local(2026, 11, 22, 12), tick=False) as traveller:
        runner = Runner(settings, store)

        class StopDuringFirstBatch(OutboxProvider):
            async def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
                results = await super().send_batch(messages)
                # what SIGTERM does, while this batch is at the provider; the digest
                # notices within STOP_POLL (short here), long before the batch returns
                runner.request_stop()
                await asyncio.sleep(0.3)
                return results

        monkeypatch.setitem(PROVIDERS, "outbox", StopDuringFirstBatch)
        runner.start()
        try:
            Driver(runner, traveller).advance(local(2026, 11, 23, 9))
        finally:
            runner.shutdown()
        (stopped,) = runs_of(store, "members-weekly")
        assert stopped.status is RunStatus.INTERRUPTED
        (edition,) = store.editions.list(segment="members")
        counts = store.deliveries.counts(edition.id)
        # the batch in flight was recorded, no other one started, the rest still queued
        assert counts == {DeliveryStatus.SENT: 2, DeliveryStatus.QUEUED: 5}
        assert "stopped: continues on the next start" in stopped.detail
        monkeypatch.setitem(PROVIDERS, "outbox", OutboxProvider)
        traveller.move_to(local(2026, 11, 23, 9, 20))
        runner = Runner(settings, store)
        runner.start()
        try:
            Driver(runner, traveller).settle()
        finally:
            runner.shutdown()
    first, resumed = runs_of(store, "members-weekly")
    assert first.status is RunStatus.RESUMED
    assert resumed.status is RunStatus.DONE and "resumed" in resumed.detail
    assert resumed.scheduled_for == local(2026, 11, 23, 9)
    assert store.editions.get(edition.id).status is EditionStatus.FINISHED
    assert store.deliveries.counts(edition.id) == {DeliveryStatus.SENT: 7}
    files = sorted(p.name for p in (tmp_path / "outbox").rglob("*.eml"))
    assert len(files) == 7 == len({f.split("-", 1)[1] for f in files})


def test_a_crashed_run_is_continued_within_grace_and_reported_beyond(
    build: Callable[..., Settings], opened: Stores
) -> None:
    settings = build(schedule=MONDAY_ONLY)
    store = opened(settings)
    dead = "old-host:4242:abcdef"
    recent = store.runs.start(
        "members-weekly", local(2026, 11, 23, 9), local(2026, 11, 23, 9), dead
    )
    with time_machine.travel(local(2026, 11, 23, 10), tick=False) as traveller:
        runner = Runner(settings, store)
        runner.start()
        try:
            Driver(runner, traveller).settle()
        finally:
            runner.shutdown()
    old, again = runs_of(store, "members-weekly")
    assert old.id == recent and old.status is RunStatus.RESUMED
    assert f"died ({dead})" in old.detail
    # nothing new was gathered: the continued run ran the digest and skipped quietly
    assert again.status is RunStatus.SKIPPED and again.scheduled_for == local(2026, 11, 23, 9)
    stale = store.runs.start("members-weekly", local(2026, 11, 9, 9), local(2026, 11, 9, 9), dead)
    with time_machine.travel(local(2026, 11, 23, 11), tick=False) as traveller:
        runner = Runner(settings, store)
        runner.start()
        try:
            Driver(runner, traveller).settle()
        finally:
            runner.shutdown()
    assert store.runs.latest()["members-weekly"].id == stale
    assert store.runs.latest()["members-weekly"].status is RunStatus.MISSED
    assert (
        "not continued: beyond the 12h grace period" in store.runs.latest()["members-weekly"].detail
    )


def test_a_second_scheduler_is_refused_until_the_lock_lapses(
    build: Callable[..., Settings], opened: Stores
) -> None:
    settings = build(scheduler={"lock_ttl": "30s"})
    store = opened(settings)
    # what a process killed with SIGKILL leaves behind: its lock, never released
    crashed = "host-a:1:aaaaaa"
    assert store.locks.acquire("scheduler", crashed, timedelta(seconds=30), local(2026, 11, 18, 10))
    with time_machine.travel(local(2026, 11, 18, 10, 0, 20), tick=False) as traveller:
        second = Runner(settings, store, holder="host-b:2:bbbbbb")
        with pytest.raises(
            SchedulerError,
            match=r"another scheduler is running \(host-a:1:aaaaaa, last heartbeat 20s ago\)",
        ):
            second.start()
        assert stored_jobs(store.engine) == {}
        report = health(settings, store, local(2026, 11, 18, 10, 0, 20))
        assert report.scheduler.alive and report.scheduler.holder == crashed
        traveller.move_to(local(2026, 11, 18, 10, 0, 31))
        report = health(settings, store, local(2026, 11, 18, 10, 0, 31))
        assert not report.scheduler.alive and "crashed?" in report.scheduler.text
        assert "scheduler not running" in report.problems[0]
        second.start()
        try:
            lock = store.locks.get("scheduler")
            assert lock is not None and lock.holder == "host-b:2:bbbbbb"
            # were the old holder still alive, its next heartbeat would stop it
            old = Runner(settings, store, holder=crashed)
            old.heartbeat()
            assert old.lost_lock and old.stop.is_set()
        finally:
            second.shutdown()
    assert store.locks.get("scheduler") is None
