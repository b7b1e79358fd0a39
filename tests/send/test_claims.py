"""Delivery rows in the store and an operator's view of them: claims that go again whole,
leases, SKIP LOCKED on PostgreSQL, throttled results, cancel, `editions show` figures,
worker totals and resume progress. Real stores (SQLite, and PostgreSQL when set).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from newsletter.config import Settings
from newsletter.errors import EditionError
from newsletter.models import DeliveryStatus, EditionStatus, ResultStatus, SendResult
from newsletter.send.control import cancel_edition, configured_rate, edition_report, pause_edition
from newsletter.send.engine import SendReport
from newsletter.send.providers.outbox import OutboxProvider
from newsletter.send.worker import WorkerReport, resume_edition
from newsletter.store import Store
from newsletter.store.tables import deliveries
from send.delivery.harness import seed_edition

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)


def _settings(make_config: Callable[..., Settings], **provider: object) -> Settings:
    return make_config(provider={"name": "outbox", **provider})


# --- the store: claims ------------------------------------------------------------------


def test_an_expired_batch_is_claimed_again_whole_and_first(store: Store, db_url: str) -> None:
    edition = seed_edition(db_url, 12)
    d = store.deliveries
    first = d.claim_batch(edition, "w1#1", 5, LEASE, NOW)
    assert len(first) == 5 and not first.again
    later = NOW + LEASE + timedelta(seconds=1)
    assert d.expire_leases(edition, later, resend=True) == 5
    # a bigger limit, fresh rows waiting: still exactly the old batch, as one
    again = d.claim_batch(edition, "w2#1", 10, LEASE, later)
    assert again.again and [r.id for r in again.rows] == [r.id for r in first.rows]
    fresh = d.claim_batch(edition, "w2#2", 10, LEASE, later)
    assert not fresh.again and len(fresh) == 7


def test_a_retried_batch_goes_whole_and_a_stale_worker_cannot_record(
    store: Store, db_url: str
) -> None:
    edition = seed_edition(db_url, 6)
    d = store.deliveries
    batch = d.claim_batch(edition, "w1#1", 3, LEASE, NOW)
    d.record(
        [SendResult(r.id, ResultStatus.RETRYABLE, error="HTTP 500") for r in batch.rows],
        NOW,
        max_attempts=5,
        backoff=lambda a, r: 10,
        claimed_by="w1#1",
    )
    assert d.claim_batch(edition, "w1#2", 3, LEASE, NOW).rows != batch.rows  # not due yet
    due = NOW + timedelta(seconds=11)
    again = d.claim_batch(edition, "w2#1", 3, LEASE, due)
    assert again.again and [r.id for r in again.rows] == [r.id for r in batch.rows]
    # the first worker, late, records under its old token: ignored
    stale = [SendResult(r.id, ResultStatus.PERMANENT, error="late") for r in batch.rows]
    d.record(stale, due, max_attempts=5, backoff=lambda a, r: 1, claimed_by="w1#1")
    assert d.counts(edition)[DeliveryStatus.CLAIMED] == 6


def test_a_batch_retried_with_jitter_falls_due_whole(store: Store, db_url: str) -> None:
    """A jittered backoff must not split a batch: its part due first would go alone, under
    a new idempotency key, and a provider that took the whole batch delivers it twice."""
    edition = seed_edition(db_url, 20)
    d = store.deliveries
    batch = d.claim_batch(edition, "w1#1", 20, LEASE, NOW)
    delays = iter(range(10, 30))  # a different delay at every call, as jitter gives
    d.record(
        [SendResult(r.id, ResultStatus.RETRYABLE, error="HTTP 500") for r in batch.rows],
        NOW,
        max_attempts=5,
        backoff=lambda a, r: next(delays),
        claimed_by="w1#1",
    )
    # between the earliest and the latest delay a per-row jitter would have given
    for seconds in (11, 15, 29, 31):
        got = d.claim_batch(edition, f"w2#{seconds}", 20, LEASE, NOW + timedelta(seconds=seconds))
        assert not got.rows or [r.id for r in got.rows] == [r.id for r in batch.rows], seconds
        if got.rows:
            break
    assert got.again


def test_a_batch_partly_not_due_is_not_claimed_in_part(store: Store, db_url: str) -> None:
    """Rows of one batch that are due at different times (stored by an older release)
    wait for the last of them and then go together."""
    edition = seed_edition(db_url, 4)
    d = store.deliveries
    batch = d.claim_batch(edition, "w1#1", 4, LEASE, NOW)
    for n, row in enumerate(batch.rows):
        d.record(
            [SendResult(row.id, ResultStatus.RETRYABLE, error="HTTP 500")],
            NOW,
            max_attempts=5,
            backoff=lambda a, r, n=n: 10 + n,
            claimed_by="w1#1",
        )
    assert not d.claim_batch(edition, "w2#1", 4, LEASE, NOW + timedelta(seconds=11)).rows
    whole = d.claim_batch(edition, "w2#2", 4, LEASE, NOW + timedelta(seconds=14))
    assert [r.id for r in whole.rows] == [r.id for r in batch.rows]


def test_throttled_results_never_fail_a_recipient(store: Store, db_url: str) -> None:
    edition = seed_edition(db_url, 1)
    d = store.deliveries
    when = NOW
    for _ in range(6):
        (row,) = d.claim_batch(edition, "w", 1, LEASE, when).rows
        throttled = SendResult(row.id, ResultStatus.RETRYABLE, error="429", retry_after=2)
        d.record([throttled], when, max_attempts=2, backoff=lambda a, r: r or 1)
        when += timedelta(seconds=2)
    assert d.counts(edition) == {DeliveryStatus.RETRY: 1}
    (row,) = d.claim_batch(edition, "w", 1, LEASE, when).rows
    d.record([SendResult(row.id, ResultStatus.RETRYABLE, error="500")], when,
             max_attempts=2, backoff=lambda a, r: 1)  # fmt: skip
    assert d.counts(edition) == {DeliveryStatus.FAILED: 1}


def test_cancel_skips_what_is_left_and_marks_dead_claims_unknown(store: Store, db_url: str) -> None:
    edition = seed_edition(db_url, 10)
    d = store.deliveries
    sent = d.claim_batch(edition, "w#1", 2, LEASE, NOW)
    d.record([SendResult(r.id, ResultStatus.ACCEPTED, "m") for r in sent.rows], NOW,
             max_attempts=3, backoff=lambda a, r: 1)  # fmt: skip
    d.claim_batch(edition, "dead#1", 3, LEASE, NOW)
    d.claim_batch(edition, "alive#1", 1, LEASE, NOW + LEASE)
    report = cancel_edition(store, edition, NOW + LEASE + timedelta(seconds=1))
    assert (report.skipped, report.unknown) == (4, 3)
    assert store.editions.status(edition) is EditionStatus.CANCELLED
    assert d.counts(edition) == {
        DeliveryStatus.SENT: 2,
        DeliveryStatus.UNKNOWN: 3,
        DeliveryStatus.CLAIMED: 1,  # its live worker records what the provider said
        DeliveryStatus.SKIPPED: 4,
    }
    assert ("cancelled", 4) in d.errors(edition)
    with pytest.raises(EditionError, match="only an edition that is sending"):
        pause_edition(store, edition, NOW)


def test_report_counts_reasons_and_eta(
    store: Store, db_url: str, make_config: Callable[..., Settings]
) -> None:
    settings = _settings(make_config, messages_per_second=5, batch_size=10)
    edition = seed_edition(db_url, 30)
    d = store.deliveries
    for n in range(2):
        at = NOW + timedelta(seconds=10 * n)
        batch = d.claim_batch(edition, f"w#{n}", 5, LEASE, at)
        d.record([SendResult(r.id, ResultStatus.ACCEPTED, "m") for r in batch.rows], at,
                 max_attempts=3, backoff=lambda a, r: 1)  # fmt: skip
    rep = edition_report(settings, store, edition, NOW + timedelta(seconds=20))
    assert rep.total == 30 and rep.remaining == 20
    assert rep.counts[DeliveryStatus.SENT] == 10
    assert set(rep.by_locale) == {"bg", "en"}
    assert rep.recent_rate == pytest.approx(0.5)  # 10 sent over the last 20 s
    assert rep.eta(rep.recent_rate) == timedelta(seconds=40)
    assert rep.configured_rate == 5 and rep.eta(5) == timedelta(seconds=4)
    pause_edition(store, edition, NOW)
    assert store.editions.status(edition) is EditionStatus.PAUSED


def test_a_claim_skips_rows_another_claim_has_locked(store: Store, db_url: str) -> None:
    # PostgreSQL: workers claim with FOR UPDATE SKIP LOCKED, so a worker never waits for
    # another's claim in progress, nor takes its rows (SQLite has one writer at a time)
    if not db_url.startswith("postgresql"):
        pytest.skip("SKIP LOCKED is PostgreSQL's")
    edition = seed_edition(db_url, 10)
    first_four = (
        sa.select(deliveries.c.id)
        .where(deliveries.c.edition_id == edition)
        .order_by(deliveries.c.id)
        .limit(4)
        .with_for_update()
    )
    with store.engine.connect() as other, ThreadPoolExecutor(1) as pool:
        locked = list(other.execute(first_four).scalars())  # held until the rollback
        try:
            claiming = pool.submit(store.deliveries.claim_batch, edition, "w#1", 3, LEASE, NOW)
            # a plain FOR UPDATE would block here until the other transaction ends
            claim = claiming.result(timeout=20)
        finally:
            other.rollback()
    ids = [d.id for d in claim.rows]
    assert len(ids) == 3 and not set(ids) & set(locked)
    assert min(ids) > max(locked)


def test_the_rate_shown_uses_the_batch_a_sender_uses(make_config: Callable[..., Settings]) -> None:
    # requests_per_second counts full batches: the configured size, else the provider's
    outbox = make_config(provider={"name": "outbox", "requests_per_second": 2})
    assert configured_rate(outbox) == 2 * 200  # the outbox's default batch_size
    postmark = {"name": "postmark", "requests_per_second": 2, "messages_per_second": 5000}
    assert configured_rate(make_config(provider=postmark)) == 2 * 500  # Postmark's limit
    assert configured_rate(make_config(provider={**postmark, "batch_size": 100})) == 200
    assert configured_rate(make_config(provider={**postmark, "messages_per_second": 150})) == 150
    assert configured_rate(make_config(provider={"name": "outbox"})) is None


def test_a_worker_adds_up_runs_of_an_edition_unknown_included() -> None:
    totals = WorkerReport()
    totals.add(
        7, SendReport(sent=2, unknown=1, retry=1, batches=1, counts={DeliveryStatus.RETRY: 1})
    )
    later = SendReport(sent=1, failed=1, unknown=2, batches=2, finished=True, held=0,
                       counts={DeliveryStatus.SENT: 3})  # fmt: skip
    totals.add(7, later)
    total = totals.editions[7]
    assert (total.sent, total.failed, total.unknown, total.retry, total.batches) == (3, 1, 3, 1, 3)
    assert total.finished and total.counts == {DeliveryStatus.SENT: 3}
    assert totals.sent == 3


def test_resume_reports_progress_from_what_was_already_done(
    store: Store, db_url: str, make_config: Callable[..., Settings], tmp_path: Path
) -> None:
    # the progress bar of `editions resume` starts at the rows already done, ends at all
    settings = _settings(make_config, batch_size=5)
    edition = seed_edition(db_url, 20)
    first = store.deliveries.claim_batch(edition, "w#1", 8, LEASE, NOW)
    store.deliveries.record([SendResult(r.id, ResultStatus.ACCEPTED, "m") for r in first.rows],
                            NOW, max_attempts=3, backoff=lambda a, r: 1)  # fmt: skip
    pause_edition(store, edition, NOW)
    seen: list[tuple[int, int]] = []
    report = resume_edition(
        settings,
        edition,
        store=store,
        provider=OutboxProvider(tmp_path / "out"),
        on_progress=lambda p: seen.append((p.done, p.total)),
    )
    assert report.finished and report.sent == 12
    assert seen[0] == (8, 20) and seen[-1] == (20, 20)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
