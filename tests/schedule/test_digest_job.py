"""What scheduled digests rely on: stories held back carry over to the next edition, and a
stop event ends a send after the batch in flight, also during a wait for retries.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fixtures.sources.httpserver import Route, allow, allow_table, fixture_bytes, serve

from newsletter.audience.subscribers import sync_lists
from newsletter.config import Settings
from newsletter.digest import edition as digest_edition
from newsletter.digest.edition import Digest, DigestReport, SegmentResult
from newsletter.digest.pipeline import run_digest
from newsletter.digest.select import window_start
from newsletter.digest.stories import last_selection, select_stories
from newsletter.gather.netguard import GuardedClient
from newsletter.gather.run import gather
from newsletter.models import (
    DeliveryStatus,
    EditionStatus,
    OutgoingMessage,
    ResultStatus,
    SendResult,
)
from newsletter.schedule.jobs import digest_outcome
from newsletter.send.providers.base import Provider
from newsletter.send.providers.outbox import OutboxProvider
from newsletter.store import Store
from newsletter.store.runs import RunStatus
from schedule.support import (
    MONDAY_ONLY,
    Stores,
    build_fixture,  # noqa: F401 (a fixture)
    local,
    opened_fixture,  # noqa: F401 (a fixture)
    seven_members,
    stopping_outbox,
    write_news,
)

MEMBERS = {
    "name": "members",
    "rules": [{"field": "lists", "op": "contains", "value": "members"}],
    "min_items": 2,
}


def run_at(
    settings: Settings,
    store: Store,
    when: datetime,
    *,
    provider: Provider | None = None,
    stop: threading.Event | None = None,
    segments: Sequence[str] = ("members",),
    real_clock: bool = False,
) -> list[SegmentResult]:
    """Gather and run the digest as a scheduled run at ``when`` would (clock frozen there)."""
    sync_lists(settings, store, when)
    assert not gather(settings, store, now=when).failed
    digest = Digest(
        settings,
        store,
        provider=provider,
        clock=(lambda: datetime.now(UTC)) if real_clock else (lambda: when),
        stop=stop,
    )

    async def go() -> list[SegmentResult]:
        try:
            return await digest.run(list(segments))
        finally:
            await digest.aclose()

    return asyncio.run(go())


def titles(store: Store, item_ids: Sequence[int]) -> list[str]:
    return sorted(i.title.removeprefix("Новина ") for i in store.items.get_many(item_ids))


def test_stories_held_back_by_min_items_go_into_the_next_edition(
    build: Callable[..., Settings], opened: Stores, tmp_path: Path
) -> None:
    settings = build(segments=[MEMBERS], schedule=MONDAY_ONLY)
    store = opened(settings)
    news = tmp_path / "news"
    for when in (local(2026, 10, 20, 9), local(2026, 11, 1, 9), local(2026, 11, 3, 9)):
        write_news(news, when)
    # a late first edition (Wednesday): it looks back one week, as a first edition always has
    (first,) = run_at(settings, store, local(2026, 11, 4, 9))
    assert first.edition_id is not None and first.sent is not None and first.sent.finished
    edition = store.editions.get(first.edition_id)
    assert titles(store, edition.item_ids) == ["2026-11-01-0900", "2026-11-03-0900"]

    write_news(news, local(2026, 11, 6, 9))
    (second,) = run_at(settings, store, local(2026, 11, 9, 9))
    assert second.skipped == "1 new item(s), fewer than min_items=2"
    assert second.edition_id is None
    # the week reaches back to Monday 2 November, so the 3 November story is inside it:
    # given by the first edition, it is not counted or given again
    seg = settings.segment("members")
    stories = select_stories(settings, store, seg, local(2026, 11, 9, 9))
    assert [s.original.title for s in stories] == ["Новина 2026-11-06-0900"]

    write_news(news, local(2026, 11, 13, 9))
    (third,) = run_at(settings, store, local(2026, 11, 16, 9))
    assert third.edition_id is not None and third.period == "2026-W47"
    # the story of 6 November is ten days old, beyond one week: it carried over
    held = store.editions.get(third.edition_id)
    assert titles(store, held.item_ids) == ["2026-11-06-0900", "2026-11-13-0900"]
    assert [e.period for e in store.editions.list(segment="members")] == ["2026-W47", "2026-W45"]
    files = list((tmp_path / "outbox").rglob("*.eml"))
    assert len(files) == 2 * 2  # two members, two editions


def test_the_carry_over_window_starts_at_the_last_edition_within_a_cap(
    build: Callable[..., Settings],
) -> None:
    seg = build(segments=[MEMBERS], schedule=MONDAY_ONLY).segment("members")
    now = local(2026, 11, 16, 9)
    week = timedelta(days=7)
    # no edition yet: one lookback, as before
    assert window_start(seg, now, None) == now - week
    # back to the last edition, never less than one lookback, at most four periods
    assert window_start(seg, now, now - timedelta(days=10)) == now - timedelta(days=10)
    assert window_start(seg, now, now - timedelta(days=3)) == now - week
    assert window_start(seg, now, now - timedelta(days=90)) == now - 4 * week
    monthly = seg.model_copy(update={"period": "month"})
    assert window_start(monthly, now, now - timedelta(days=40)) == now - timedelta(days=40)
    # lookback_days is the operator's limit on how old news may be: it caps the carry-over
    limited = seg.model_copy(update={"lookback_days": 9})
    assert window_start(limited, now, now - timedelta(days=20)) == now - timedelta(days=9)


def test_cancelled_and_hand_picked_editions_do_not_move_the_window(
    build: Callable[..., Settings], opened: Stores
) -> None:
    settings = build(segments=[MEMBERS], schedule=MONDAY_ONLY)
    store = opened(settings)
    assert last_selection(store, "members") is None
    store.editions.create("members", "2026-W45", [], local(2026, 11, 2, 9))
    store.editions.create("members", "manual-20261110T120000", [], local(2026, 11, 10, 12))
    cancelled = store.editions.create("members", "2026-W46", [], local(2026, 11, 9, 9))
    store.editions.set_status(cancelled.id, EditionStatus.CANCELLED, local(2026, 11, 9, 10))
    store.editions.create("partners", "2026-W46", [], local(2026, 11, 9, 9))
    assert last_selection(store, "members") == local(2026, 11, 2, 9)


def test_a_stop_ends_the_send_after_the_batch_in_flight_and_starts_no_other_segment(
    build: Callable[..., Settings],
    opened: Stores,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(digest_edition, "STOP_POLL", 0.01)
    seven_members(tmp_path)
    settings = build(provider={"name": "outbox", "path": "outbox", "batch_size": 2})
    store = opened(settings)
    write_news(tmp_path / "news", local(2026, 11, 20, 9))
    stop = threading.Event()
    provider = stopping_outbox(stop)(tmp_path / "outbox")
    now = local(2026, 11, 23, 9)
    members, partners = run_at(
        settings, store, now, provider=provider, stop=stop, segments=["members", "partners"]
    )
    assert provider.batches == 1
    assert members.stopped and members.sent is not None and members.sent.stopped
    assert members.sent.counts == {DeliveryStatus.SENT: 2, DeliveryStatus.QUEUED: 5}
    assert partners.stopped and partners.skipped == "not started: stopping"
    assert partners.edition_id is None and store.editions.list(segment="partners") == []
    outcome = digest_outcome(settings, DigestReport(None, [members, partners]), now)
    assert outcome.status is RunStatus.INTERRUPTED and outcome.continue_at is None
    assert "stopped: continues on the next start" in outcome.detail

    # the next run (what the next start does) continues where it stopped
    members, partners = run_at(settings, store, now, segments=["members", "partners"])
    assert members.resumed and members.sent is not None and members.sent.finished
    assert store.deliveries.counts(members.edition_id or 0) == {DeliveryStatus.SENT: 7}
    assert partners.sent is not None and partners.sent.finished
    files = [p.name.split("-", 1)[1] for p in (tmp_path / "outbox").rglob("*.eml")]
    assert len(files) == 7 + 2 == len(set(files))


class BusyProvider(OutboxProvider):
    """Answers "try again later" for every message; stops the run once all have been tried."""

    def __init__(self, folder: Path, stop: threading.Event, total: int) -> None:
        super().__init__(folder)
        self.stop = stop
        self.total = total
        self.handed = 0

    async def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        self.handed += len(messages)
        if self.handed == self.total:
            # from another thread, as a signal handler's stop comes, once the sender waits
            threading.Timer(0.3, self.stop.set).start()
        return [SendResult(m.delivery_id, ResultStatus.RETRYABLE, error="busy") for m in messages]


def test_a_stop_ends_a_wait_for_retries(
    build: Callable[..., Settings], opened: Stores, tmp_path: Path
) -> None:
    seven_members(tmp_path)
    settings = build(provider={"name": "outbox", "path": "outbox", "batch_size": 2})
    store = opened(settings)
    # a real clock: with a frozen one the retry would never fall due and a broken stop
    # would hang the test instead of failing it
    now = datetime.now(UTC)
    write_news(tmp_path / "news", now - timedelta(days=1))
    stop = threading.Event()
    provider = BusyProvider(tmp_path / "outbox", stop, total=7)
    started = time.monotonic()
    (members,) = run_at(settings, store, now, provider=provider, stop=stop, real_clock=True)
    # the first retry is due in about 30 s (and the sender waits for retries within 60 s);
    # the stop cut the wait short. A generous bound: only a wait that is not cut fails it
    assert time.monotonic() - started < 20
    assert members.stopped and members.sent is not None and not members.sent.finished
    assert members.sent.counts == {DeliveryStatus.RETRY: 7}
    assert provider.handed == 7
    outcome = digest_outcome(settings, DigestReport(None, [members]), now)
    assert outcome.status is RunStatus.INTERRUPTED


def test_a_stop_during_the_gather_of_a_digest_starts_no_segment(
    build: Callable[..., Settings], opened: Stores, tmp_path: Path
) -> None:
    write_news(tmp_path / "news", local(2026, 11, 20, 9))
    stop = threading.Event()
    feed = Route(fixture_bytes("feed_bg.xml"), content_type="application/rss+xml")
    with (
        serve({"/bg.xml": feed}) as server,
        # the stop comes while the feed's answer is on its way (what SIGTERM does)
        GuardedClient(allow(server), event_hooks={"response": [lambda _: stop.set()]}) as client,
    ):
        sources = [
            {"name": "partner-feed", "kind": "feed", "url": server.url("/bg.xml")},
            {"name": "cluster-news", "kind": "folder", "path": "news", "lang": "bg"},
        ]
        settings = build(sources=sources, gather=allow_table(server))
        store = opened(settings)
        report = run_digest(settings, store=store, stop=stop, client=client)
    assert report.gathered is not None and report.gathered.left == ["cluster-news"]
    # the source in progress was stored, the next one not gathered, no segment started
    assert {i.source for i in store.items.list()} == {"partner-feed"}
    assert [(r.segment, r.skipped, r.stopped) for r in report.segments] == [
        ("members", "not started: stopping", True),
        ("partners", "not started: stopping", True),
    ]
    assert store.editions.list() == []
    outcome = digest_outcome(settings, report, datetime.now(UTC))
    assert outcome.status is RunStatus.INTERRUPTED
    assert "gather stopped before cluster-news" in outcome.detail
