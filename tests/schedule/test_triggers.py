"""The scheduler in-process on a controlled clock: DST weeks, restarts, downtime and grace.

Real APScheduler, real job store, real store; time-machine is the clock (see
``schedule_support.Driver``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from newsletter.config import Settings
from newsletter.models import DeliveryStatus, EditionStatus
from newsletter.schedule.status import health
from newsletter.schedule.triggers import list_jobs, stored_jobs
from newsletter.store.runs import RunStatus
from schedule.support import (
    MONDAY_ONLY,
    SCHEDULE,
    Stores,
    build_fixture,  # noqa: F401 (a fixture)
    local,
    opened_fixture,  # noqa: F401 (a fixture)
    register,
    running,
    runs_of,
    start_and_settle,
    write_news,
)


@pytest.mark.parametrize(
    ("start", "partners_periods"),
    [
        # spring forward: Sunday 2026-03-29 03:30 does not exist in Sofia
        (local(2026, 3, 23), ["2026-W13", "2026-W14"]),
        # fall back: Sunday 2026-10-25 03:30 happens twice
        (local(2026, 10, 19), ["2026-W43", "2026-W44"]),
    ],
    ids=["march-dst", "october-dst"],
)
def test_a_week_across_dst_gives_one_edition_per_segment_per_week(
    build: Callable[..., Settings],
    opened: Stores,
    tmp_path: Path,
    start: datetime,
    partners_periods: list[str],
) -> None:
    """Monday 00:00 to the next Monday noon: the Sunday of the change and both Mondays."""
    settings = build()
    store = opened(settings)
    end = start + timedelta(days=7, hours=12)
    # one news item every day at 08:00 Sofia time
    news = [start + timedelta(days=d, hours=8) for d in range(8)]
    with running(settings, store, start) as driver:
        driver.run_until(end, news, tmp_path / "news")
    week = start.strftime("%G-W%V")
    for segment, periods in (("members", [week]), ("partners", partners_periods)):
        editions = store.editions.list(segment=segment)
        assert sorted(e.period for e in editions) == periods, segment
        for edition in editions:
            assert edition.status is EditionStatus.FINISHED
            assert store.deliveries.counts(edition.id) == {DeliveryStatus.SENT: 2}
    members = runs_of(store, "members-weekly")
    if start.month == 10:
        # 03:30 came twice on 2026-10-25: the second run found the week's edition sent
        assert [r.status for r in members] == [RunStatus.DONE, RunStatus.SKIPPED]
        assert [r.scheduled_for for r in members] == [
            datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
            datetime(2026, 10, 25, 1, 30, tzinfo=UTC),
        ]
        assert "already sent" in members[1].detail
    else:
        # the vanished 03:30 ran once, at 04:30 summer time (01:30 UTC)
        assert [r.status for r in members] == [RunStatus.DONE]
        assert members[0].scheduled_for == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    partners = runs_of(store, "partners-weekly")
    assert [r.status for r in partners] == [RunStatus.DONE, RunStatus.DONE]
    # 09:00 Bucharest time on both Mondays, whatever the offset
    assert {r.scheduled_for.astimezone(ZoneInfo("Europe/Bucharest")).hour for r in partners} == {9}
    gathers = runs_of(store, "gather")
    # 00, 06, 12 and 18 local on seven days, and Monday 00, 06, 12
    assert len(gathers) == 31 and {r.status for r in gathers} == {RunStatus.DONE}
    assert len(list((tmp_path / "outbox").rglob("*.eml"))) == 2 * (1 + len(partners_periods))


def test_restarts_leave_one_job_each_and_keep_their_times(
    build: Callable[..., Settings], opened: Stores
) -> None:
    settings = build()
    store = opened(settings)
    seen = []
    for minute in (5, 25, 45):
        register(settings, store, local(2026, 11, 18, 10, minute))
        jobs = stored_jobs(store.engine)
        assert sorted(jobs) == ["gather", "members-weekly", "partners-weekly"]
        seen.append({k: v.next_run_time for k, v in jobs.items()})
    assert seen[0]["members-weekly"] == local(2026, 11, 22, 3, 30)
    assert seen[0]["partners-weekly"] == datetime(
        2026, 11, 23, 9, tzinfo=ZoneInfo("Europe/Bucharest")
    )
    # no run fell due between the restarts: the stored times are kept as they were
    assert seen[0] == seen[1] == seen[2]
    # a start after 12:00 runs the gather that fell due once, and moves it on
    start_and_settle(settings, store, local(2026, 11, 18, 12, 5))
    assert [r.scheduled_for for r in runs_of(store, "gather")] == [local(2026, 11, 18, 12)]
    assert stored_jobs(store.engine)["gather"].next_run_time == local(2026, 11, 18, 18)
    # a job removed from config is removed from the job store on the next start
    register(build(schedule=SCHEDULE[:2]), store, local(2026, 11, 18, 13))
    assert sorted(stored_jobs(store.engine)) == ["gather", "members-weekly"]


def test_downtime_within_grace_runs_the_missed_digest_once_on_start(
    build: Callable[..., Settings], opened: Stores, tmp_path: Path
) -> None:
    settings = build(schedule=MONDAY_ONLY)
    store = opened(settings)
    register(settings, store, local(2026, 11, 20, 10))
    write_news(tmp_path / "news", local(2026, 11, 21, 9))
    # while down, `schedule list` says what will happen on start
    (view,) = list_jobs(settings, store, local(2026, 11, 23, 20), scheduler_alive=False)
    assert view.state == "overdue by 11h: runs once when the scheduler starts" and not view.problem
    start_and_settle(settings, store, local(2026, 11, 23, 20))
    (run,) = runs_of(store, "members-weekly")
    assert run.status is RunStatus.DONE
    assert run.scheduled_for == local(2026, 11, 23, 9)
    assert run.started_at == local(2026, 11, 23, 20)
    (edition,) = store.editions.list(segment="members")
    assert edition.period == "2026-W48" and edition.status is EditionStatus.FINISHED
    # the next run is next Monday, not another catch-up; a second start runs nothing
    assert stored_jobs(store.engine)["members-weekly"].next_run_time == local(2026, 11, 30, 9)
    start_and_settle(settings, store, local(2026, 11, 23, 21))
    assert len(runs_of(store, "members-weekly")) == 1


def test_downtime_beyond_grace_is_reported_not_sent(
    build: Callable[..., Settings],
    opened: Stores,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = build(schedule=MONDAY_ONLY, scheduler={"misfire_grace": "12h"})
    store = opened(settings)
    register(settings, store, local(2026, 11, 20, 10))
    write_news(tmp_path / "news", local(2026, 11, 21, 9))
    (view,) = list_jobs(settings, store, local(2026, 11, 24, 9, 30), scheduler_alive=False)
    assert "overdue by 1d" in view.state and "beyond the 12h grace period" in view.state
    assert view.problem
    caplog.set_level(logging.WARNING, logger="newsletter.scheduler")
    start_and_settle(settings, store, local(2026, 11, 24, 9, 30))
    (run,) = runs_of(store, "members-weekly")
    assert run.status is RunStatus.MISSED
    assert run.scheduled_for == local(2026, 11, 23, 9)
    assert "1d late, beyond the 12h grace period" in run.detail
    assert store.editions.list(segment="members") == []
    assert any(
        "members-weekly" in r.getMessage() and "beyond the 12h grace" in r.getMessage()
        for r in caplog.records
    )
    (view,) = list_jobs(settings, store, local(2026, 11, 24, 9, 31), scheduler_alive=False)
    assert view.state.startswith("missed: not run") and view.problem
    assert view.next_run == local(2026, 11, 30, 9)
    report = health(settings, store, local(2026, 11, 24, 9, 31))
    assert any(p.startswith("job members-weekly: missed") for p in report.problems)
