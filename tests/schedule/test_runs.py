"""The scheduler in-process on a controlled clock: send windows, min_items, stopping, crashes
and the single-instance lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from fixtures.sources.httpserver import Route, allow, allow_table, fixture_bytes, serve

from newsletter.audience.segments import recipients
from newsletter.audience.subscribers import sync_lists
from newsletter.config import Settings
from newsletter.digest import edition as digest_edition
from newsletter.digest.stories import select_stories
from newsletter.errors import SchedulerError
from newsletter.gather.netguard import GuardedClient
from newsletter.gather.run import gather
from newsletter.models import (
    DeliveryStatus,
    EditionStatus,
    ResultStatus,
    SendResult,
)
from newsletter.schedule.runner import Runner
from newsletter.schedule.status import health
from newsletter.schedule.triggers import list_jobs, stored_jobs
from newsletter.send.providers import PROVIDERS
from newsletter.send.providers.outbox import OutboxProvider
from newsletter.store import Store
from newsletter.store.runs import RunStatus
from schedule.support import (
    MONDAY_ONLY,
    Stores,
    build_fixture,  # noqa: F401 (a fixture)
    local,
    opened_fixture,  # noqa: F401 (a fixture)
    running,
    runs_of,
    seven_members,
    start_and_settle,
    stopping_outbox,
    wait_for,
    write_news,
)

RSS = "application/rss+xml; charset=utf-8"
TWO_A_BATCH = {"name": "outbox", "path": "outbox", "batch_size": 2}
FRIDAY_EVENING = {
    "id": "members-weekly",
    "job": "digest",
    "segment": "members",
    "cron": "0 19 * * fri",
    "window": {"days": "mon-fri", "start": "08:00", "end": "18:00"},
}


def test_a_run_due_outside_the_send_window_waits_for_it(
    build: Callable[..., Settings], opened: Stores, tmp_path: Path
) -> None:
    job = FRIDAY_EVENING
    settings = build(schedule=[job])
    store = opened(settings)
    write_news(tmp_path / "news", local(2026, 11, 19, 9))
    with running(settings, store, local(2026, 11, 19, 12)) as driver:
        driver.advance(local(2026, 11, 20, 19))
        (view,) = list_jobs(settings, store, local(2026, 11, 20, 19), scheduler_alive=True)
        assert view.pending == (("waits for the send window", local(2026, 11, 23, 8)),)
        assert store.editions.list(segment="members") == []
        driver.run_until(local(2026, 11, 23, 12))
    waiting, done = runs_of(store, "members-weekly")
    assert waiting.status is RunStatus.WAITING
    assert "waits until 2026-11-23 08:00 EET" in waiting.detail
    assert done.status is RunStatus.DONE and done.started_at == local(2026, 11, 23, 8)
    # the run keeps the time it was due for
    assert done.scheduled_for == local(2026, 11, 20, 19)
    (edition,) = store.editions.list(segment="members")
    assert edition.created_at == local(2026, 11, 23, 8)


def test_a_run_waiting_for_a_window_the_config_dropped_goes_on_the_next_start(
    build: Callable[..., Settings], opened: Stores, tmp_path: Path
) -> None:
    store = opened(build(schedule=[FRIDAY_EVENING]))
    write_news(tmp_path / "news", local(2026, 11, 19, 9))
    with running(build(schedule=[FRIDAY_EVENING]), store, local(2026, 11, 20, 12)) as driver:
        driver.advance(local(2026, 11, 20, 19))
    no_window = {k: v for k, v in FRIDAY_EVENING.items() if k != "window"}
    start_and_settle(build(schedule=[no_window]), store, local(2026, 11, 21, 10))
    waiting, done = runs_of(store, "members-weekly")
    assert waiting.status is RunStatus.WAITING
    assert done.status is RunStatus.DONE and done.started_at == local(2026, 11, 21, 10)
    assert done.scheduled_for == local(2026, 11, 20, 19)
    # nothing is left waiting for a window that is gone
    assert sorted(stored_jobs(store.engine)) == ["members-weekly"]


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
    with running(settings, store, local(2026, 11, 19, 12)) as driver:
        driver.run_until(
            local(2026, 11, 30, 12),
            news=[local(2026, 11, 25, 9), local(2026, 11, 26, 9)],
            folder=tmp_path / "news",
        )
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
    seven_members(tmp_path)
    settings = build(schedule=MONDAY_ONLY, provider=TWO_A_BATCH)
    store = opened(settings)
    write_news(tmp_path / "news", local(2026, 11, 20, 9))
    monkeypatch.setattr(digest_edition, "STOP_POLL", 0.01)
    stop = threading.Event()
    monkeypatch.setitem(PROVIDERS, "outbox", stopping_outbox(stop))
    with running(settings, store, local(2026, 11, 22, 12), stop=stop) as driver:
        driver.advance(local(2026, 11, 23, 9))
    (stopped,) = runs_of(store, "members-weekly")
    assert stopped.status is RunStatus.INTERRUPTED
    (edition,) = store.editions.list(segment="members")
    counts = store.deliveries.counts(edition.id)
    # the batch in flight was recorded, no other one started, the rest still queued
    assert counts == {DeliveryStatus.SENT: 2, DeliveryStatus.QUEUED: 5}
    assert "stopped: continues on the next start" in stopped.detail
    monkeypatch.setitem(PROVIDERS, "outbox", OutboxProvider)
    start_and_settle(settings, store, local(2026, 11, 23, 9, 20))
    first, resumed = runs_of(store, "members-weekly")
    assert first.status is RunStatus.RESUMED
    assert resumed.status is RunStatus.DONE and "resumed" in resumed.detail
    assert resumed.scheduled_for == local(2026, 11, 23, 9)
    assert store.editions.get(edition.id).status is EditionStatus.FINISHED
    assert store.deliveries.counts(edition.id) == {DeliveryStatus.SENT: 7}
    assert_each_once(tmp_path / "outbox", 7)


def test_a_stop_during_a_gather_keeps_the_source_in_progress_and_continues_on_start(
    build: Callable[..., Settings], opened: Stores, tmp_path: Path
) -> None:
    write_news(tmp_path / "news", local(2026, 11, 23, 8))
    hourly = [{"id": "gather", "job": "gather", "cron": "0 * * * *"}]
    stop = threading.Event()
    with (
        serve({"/bg.xml": Route(fixture_bytes("feed_bg.xml"), content_type=RSS)}) as server,
        # the stop comes while the feed's answer is on its way (what SIGTERM does)
        GuardedClient(allow(server), event_hooks={"response": [lambda _: stop.set()]}) as client,
    ):
        sources = [
            {"name": "partner-feed", "kind": "feed", "url": server.url("/bg.xml")},
            {"name": "cluster-news", "kind": "folder", "path": "news", "lang": "bg"},
        ]
        settings = build(sources=sources, gather=allow_table(server), schedule=hourly)
        store = opened(settings)
        at = local(2026, 11, 23, 9, 30)
        with running(settings, store, at, stop=stop, client=client) as driver:
            driver.advance(local(2026, 11, 23, 10))
        (stopped,) = runs_of(store, "gather")
        assert stopped.status is RunStatus.INTERRUPTED
        assert stopped.detail == (
            "2 new, 0 updated from 1 source(s); "
            "stopped before cluster-news: continues on the next start"
        )
        assert {i.source for i in store.items.list()} == {"partner-feed"}
        assert {s.source for s in store.items.states()} == {"partner-feed"}
        start_and_settle(settings, store, local(2026, 11, 23, 10, 5))
    first, again = runs_of(store, "gather")
    assert first.status is RunStatus.RESUMED
    assert again.status is RunStatus.DONE and again.scheduled_for == local(2026, 11, 23, 10)
    assert {i.source for i in store.items.list()} == {"partner-feed", "cluster-news"}


def assert_each_once(outbox: Path, readers: int) -> None:
    """One .eml per reader, no reader twice."""
    files = [p.name.split("-", 1)[1] for p in outbox.rglob("*.eml")]
    assert len(files) == readers == len(set(files))


def died_mid_send(settings: Settings, store: Store, at: datetime, holder: str) -> int:
    """What a scheduler killed mid-send at ``at`` leaves: its run, never finished, and an
    edition with two rows sent and two claimed under a lease; returns the edition id."""
    store.runs.start("members-weekly", at, at, holder)
    sync_lists(settings, store, at)
    gather(settings, store, now=at)
    segment = settings.segment("members")
    stories = select_stories(settings, store, segment, at)
    edition = store.editions.create(
        "members", "2026-W48", [(s.original.id, s.key) for s in stories], at
    )
    rows = (
        (sub.id, settings.locales.resolve(sub.locale)) for sub in recipients(store, segment, now=at)
    )
    store.deliveries.plan(edition.id, rows, at)
    store.editions.set_status(edition.id, EditionStatus.SENDING, at)
    sent = store.deliveries.claim(edition.id, holder, 2, timedelta(minutes=10), at)
    results = [SendResult(d.id, ResultStatus.ACCEPTED, "gone") for d in sent]
    store.deliveries.record(results, at, max_attempts=5, backoff=lambda a, r: 30)
    assert len(store.deliveries.claim(edition.id, holder, 2, timedelta(minutes=10), at)) == 2
    return edition.id


def test_a_run_that_died_mid_send_is_resumed_from_its_rows_on_the_next_start(
    build: Callable[..., Settings], opened: Stores, tmp_path: Path
) -> None:
    seven_members(tmp_path)
    settings = build(schedule=MONDAY_ONLY, provider=TWO_A_BATCH)
    store = opened(settings)
    write_news(tmp_path / "news", local(2026, 11, 23, 8))
    dead = "old-host:4242:abcdef"
    edition_id = died_mid_send(settings, store, local(2026, 11, 23, 9), dead)
    with running(settings, store, local(2026, 11, 23, 9, 1)) as driver:
        # the continued run sends the queued rows at once, then waits a while for the two
        # the dead process holds: the clock moves on a minute at a time until it gives up
        wait_for(lambda: store.deliveries.counts(edition_id).get(DeliveryStatus.SENT) == 5)

        def ended() -> bool:
            runs = runs_of(store, "members-weekly")
            if len(runs) > 1 and runs[1].finished_at is not None:
                return True
            driver.traveller.shift(timedelta(seconds=61))
            return False

        wait_for(ended, interval=0.3)
        driver.settle()
        old, unfinished = runs_of(store, "members-weekly")
        assert old.status is RunStatus.RESUMED and f"died ({dead})" in old.detail
        assert (
            unfinished.status is RunStatus.DONE and "unfinished: continues at" in unfinished.detail
        )
        counts = store.deliveries.counts(edition_id)
        assert counts == {DeliveryStatus.SENT: 5, DeliveryStatus.CLAIMED: 2}
        (view,) = list_jobs(settings, store, datetime.now(UTC), scheduler_alive=True)
        ((label, at),) = view.pending
        # ten minutes on: by then the dead process's lease (until 09:10) has lapsed
        assert label == "continues" and at > local(2026, 11, 23, 9, 10)
        driver.run_until(local(2026, 11, 23, 9, 30))
    *_, resumed = runs_of(store, "members-weekly")
    assert resumed.status is RunStatus.DONE and f"edition {edition_id} resumed" in resumed.detail
    assert resumed.started_at == at and resumed.scheduled_for == local(2026, 11, 23, 9)
    assert store.editions.get(edition_id).status is EditionStatus.FINISHED
    assert store.deliveries.counts(edition_id) == {DeliveryStatus.SENT: 7}
    # the two the dead process sent never went again: only it could have written them; the
    # two it held went once (the outbox is idempotent: the same key, the same file)
    assert_each_once(tmp_path / "outbox", 5)
    assert stored_jobs(store.engine).keys() == {"members-weekly"}


def test_a_crashed_run_is_continued_within_grace_and_reported_beyond(
    build: Callable[..., Settings], opened: Stores
) -> None:
    settings = build(schedule=MONDAY_ONLY)
    store = opened(settings)
    dead = "old-host:4242:abcdef"
    recent = store.runs.start(
        "members-weekly", local(2026, 11, 23, 9), local(2026, 11, 23, 9), dead
    )
    start_and_settle(settings, store, local(2026, 11, 23, 10))
    old, again = runs_of(store, "members-weekly")
    assert old.id == recent and old.status is RunStatus.RESUMED
    assert f"died ({dead})" in old.detail
    # nothing new was gathered: the continued run ran the digest and skipped quietly
    assert again.status is RunStatus.SKIPPED and again.scheduled_for == local(2026, 11, 23, 9)
    stale = store.runs.start("members-weekly", local(2026, 11, 9, 9), local(2026, 11, 9, 9), dead)
    start_and_settle(settings, store, local(2026, 11, 23, 11))
    latest = store.runs.latest()["members-weekly"]
    assert latest.id == stale and latest.status is RunStatus.MISSED
    assert "not continued: beyond the 12h grace period" in latest.detail


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
