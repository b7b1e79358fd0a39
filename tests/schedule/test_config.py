"""Schedule config, triggers and send windows (pure), the lock and run stores, the commands."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from typer.testing import CliRunner

from newsletter.config import ConfigError, ScheduleJob, Settings, load
from newsletter.config.schedule import SendWindow, format_duration, parse_days, parse_duration
from newsletter.schedule.triggers import (
    MonthlyWeekdayTrigger,
    build_trigger,
    local_text,
    localize,
    next_opening,
    window_open,
)
from newsletter.store import Store
from newsletter.store.runs import RunStatus
from schedule.support import SOFIA, local, register

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("15m", timedelta(minutes=15)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("2d", timedelta(days=2)),
        ("12h", timedelta(hours=12)),
        (30, timedelta(minutes=30)),
        ("45", timedelta(minutes=45)),
    ],
)
def test_durations(text: Any, expected: timedelta) -> None:
    assert parse_duration(text) == expected
    assert parse_duration(format_duration(expected)) == expected


@pytest.mark.parametrize("bad", ["", "1x", "h", "1h 30", "-5m", True])
def test_bad_durations_are_refused(bad: Any) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(bad)


def test_days() -> None:
    assert parse_days("mon-fri") == frozenset(range(5))
    assert parse_days("sat,sun") == frozenset({5, 6})
    assert parse_days("mon-wed, fri") == frozenset({0, 1, 2, 4})
    with pytest.raises(ValueError, match="runs backwards"):
        parse_days("fri-mon")
    with pytest.raises(ValueError, match="unknown day"):
        parse_days("monday")


@pytest.mark.parametrize(
    ("job", "message"),
    [
        ({"cron": "0 9 * * mon", "every": "1h"}, r"schedule\[0\].*exactly one of cron, every"),
        ({}, r"schedule\[0\].*exactly one of cron, every, monthly"),
        ({"monthly": "first weekday"}, r"monthly needs at"),
        ({"cron": "0 9 * * mon", "at": "09:00"}, r"at goes with monthly"),
        ({"monthly": "second tuesday", "at": "09:00"}, r"schedule\[0\]\.monthly"),
        ({"every": "1x"}, r"schedule\[0\]\.every.*not a duration"),
        ({"every": "0s"}, r"every must be at least 1s"),
        ({"cron": "61 * * * *"}, r"invalid cron"),
        ({"cron": "0 9 * * mon", "timezone": "Europe/Sofiya"}, r"unknown time zone"),
        (
            {"cron": "0 9 * * mon", "window": {"start": "18:00", "end": "08:00"}},
            r"window start 18:00 must be before end 08:00",
        ),
        (
            {"cron": "0 9 * * mon", "window": {"days": "workdays", "start": "8:00", "end": "9:00"}},
            r"schedule\[0\]\.window\.days.*unknown day",
        ),
        ({"cron": "0 9 * * mon", "segment": "members", "job": "gather"}, r"segment only applies"),
        ({"cron": "0 9 * * mon", "id": "a~b"}, r"schedule\[0\]\.id"),
        ({"cron": "0 9 * * mon", "every_hour": True}, r"schedule\[0\]\.every_hour: unknown key"),
    ],
)
def test_bad_jobs_fail_with_the_key(
    make_config: Callable[..., Settings], job: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        make_config(schedule=[{"id": "j", "job": "digest", **job}])


def test_scheduler_table(make_config: Callable[..., Settings]) -> None:
    assert make_config().scheduler.misfire_grace == timedelta(hours=12)
    cfg = make_config(scheduler={"misfire_grace": "2h", "lock_ttl": "30s"})
    assert cfg.scheduler.misfire_grace == timedelta(hours=2)
    with pytest.raises(ConfigError, match=r"scheduler\.lock_ttl.*at least 3s"):
        make_config(scheduler={"lock_ttl": "1s"})


def test_the_demo_config_uses_every_form() -> None:
    cfg = load(ROOT / "config.toml")
    jobs = {j.id: j for j in cfg.schedule}
    assert jobs["gather-hourly"].every == timedelta(hours=1)
    assert jobs["members-weekly"].window == SendWindow(days="mon-fri", start="08:00", end="18:00")  # type: ignore[arg-type]
    assert jobs["partners-weekly"].timezone == "Europe/Bucharest"


def fire_times(job: ScheduleJob, start: datetime, n: int) -> list[datetime]:
    trigger = build_trigger(job)
    out: list[datetime] = []
    prev = None
    for _ in range(n):
        nxt = trigger.get_next_fire_time(prev, start)
        assert nxt is not None
        out.append(nxt)
        prev = nxt
    return out


def test_first_and_last_weekday_of_the_month() -> None:
    first = ScheduleJob(id="m", job="digest", monthly="first weekday", at=time(9))
    got = fire_times(first, local(2026, 7, 15), 5)
    # 2026-08-01 is a Saturday, 2026-11-01 a Sunday
    assert got == [
        local(2026, 8, 3, 9),
        local(2026, 9, 1, 9),
        local(2026, 10, 1, 9),
        local(2026, 11, 2, 9),
        local(2026, 12, 1, 9),
    ]
    assert [t.utcoffset() for t in got[2:4]] == [timedelta(hours=3), timedelta(hours=2)]
    last = ScheduleJob(id="m", job="digest", monthly="last weekday", at=time(17, 30))
    # 2026-10-31 is a Saturday, 2027-01-31 a Sunday
    assert fire_times(last, local(2026, 10, 30, 18), 4) == [
        local(2026, 11, 30, 17, 30),
        local(2026, 12, 31, 17, 30),
        local(2027, 1, 29, 17, 30),
        local(2027, 2, 26, 17, 30),
    ]
    # the time of the first run of the month counts: at 09:00 sharp it is now
    assert fire_times(first, local(2026, 9, 1, 9), 1) == [local(2026, 9, 1, 9)]
    # survives the job store (pickled) with the same meaning
    trigger = build_trigger(first)
    copy = pickle.loads(pickle.dumps(trigger))
    assert repr(copy) == repr(trigger)
    assert str(copy) == "first weekday of the month at 09:00"
    with pytest.raises(ValueError, match="first"):
        MonthlyWeekdayTrigger("second", time(9), SOFIA)


def test_local_times_in_the_dst_gap_and_overlap() -> None:
    # 03:30 on 2026-03-29 does not exist in Sofia: it is taken as 04:30 summer time
    assert localize(datetime(2026, 3, 29, 3, 30), SOFIA) == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    # 03:30 on 2026-10-25 happens twice: the first (summer time) is meant
    assert localize(datetime(2026, 10, 25, 3, 30), SOFIA).utcoffset() == timedelta(hours=3)


def test_every_is_anchored_so_restarts_keep_the_same_times() -> None:
    job = ScheduleJob(id="g", job="gather", every=timedelta(hours=1))
    assert repr(build_trigger(job)) == repr(build_trigger(job))
    assert fire_times(job, local(2026, 11, 18, 10, 17), 3) == [
        local(2026, 11, 18, 11),
        local(2026, 11, 18, 12),
        local(2026, 11, 18, 13),
    ]
    # across the October change: elapsed hours, so 03:00 comes twice
    got = fire_times(job, local(2026, 10, 25, 2, 30), 3)
    assert [t.astimezone(UTC).hour for t in got] == [0, 1, 2]
    assert [t.astimezone(SOFIA).hour for t in got] == [3, 3, 4]


def test_send_window() -> None:
    window = SendWindow(days="mon-fri", start=time(8), end=time(18))
    assert window_open(window, SOFIA, local(2026, 11, 20, 17, 59))
    assert not window_open(window, SOFIA, local(2026, 11, 20, 18))
    assert not window_open(window, SOFIA, local(2026, 11, 21, 10))  # Saturday
    # Friday evening and the weekend wait for Monday 08:00
    assert next_opening(window, SOFIA, local(2026, 11, 20, 19)) == local(2026, 11, 23, 8)
    assert next_opening(window, SOFIA, local(2026, 11, 22, 12)) == local(2026, 11, 23, 8)
    # early morning waits for the same day; inside the window it is now
    assert next_opening(window, SOFIA, local(2026, 11, 24, 6)) == local(2026, 11, 24, 8)
    assert next_opening(window, SOFIA, local(2026, 11, 24, 9)) == local(2026, 11, 24, 9)
    # the window follows local time across a DST change: 08:00 summer time on Monday
    opens = next_opening(window, SOFIA, local(2026, 3, 28, 12))
    assert opens == local(2026, 3, 30, 8) and opens.utcoffset() == timedelta(hours=3)
    assert local_text(opens, "Europe/Sofia") == "2026-03-30 08:00 EEST"
    assert str(window) == "mon-fri 08:00–18:00"


def test_locks(store: Store) -> None:
    t0 = datetime(2026, 11, 18, 10, tzinfo=UTC)
    ttl = timedelta(seconds=30)
    lock = store.locks.acquire("scheduler", "a", ttl, t0)
    assert lock is not None and lock.holder == "a" and lock.expires_at == t0 + ttl
    assert store.locks.acquire("scheduler", "b", ttl, t0 + timedelta(seconds=29)) is None
    # the holder may take it again (a restart that kept its name) and renews it
    assert store.locks.acquire("scheduler", "a", ttl, t0 + timedelta(seconds=1)) is not None
    assert store.locks.renew("scheduler", "a", ttl, t0 + timedelta(seconds=20))
    assert store.locks.acquire("scheduler", "b", ttl, t0 + timedelta(seconds=49)) is None
    # lapsed: the next taker wins, the old holder can neither renew nor release it
    taken = store.locks.acquire("scheduler", "b", ttl, t0 + timedelta(seconds=50))
    assert (
        taken is not None
        and taken.holder == "b"
        and taken.heartbeat_at == t0 + timedelta(seconds=50)
    )
    assert not store.locks.renew("scheduler", "a", ttl, t0 + timedelta(seconds=51))
    assert not store.locks.release("scheduler", "a")
    assert store.locks.release("scheduler", "b")
    assert store.locks.get("scheduler") is None
    # another name is another lock
    assert store.locks.acquire("other", "a", ttl, t0) is not None
    assert store.locks.acquire("scheduler", "c", ttl, t0) is not None


def test_run_store(store: Store) -> None:
    t0 = datetime(2026, 11, 23, 7, tzinfo=UTC)
    first = store.runs.start("members", t0, t0, "h")
    store.runs.finish(first, RunStatus.DONE, "members: edition 1", t0 + timedelta(minutes=1))
    store.runs.note("members", t0 + timedelta(days=7), RunStatus.MISSED, "late", t0)
    running = store.runs.start("gather", t0, t0, "h")
    latest = store.runs.latest()
    assert latest["members"].status is RunStatus.MISSED
    assert latest["gather"].status is RunStatus.RUNNING and latest["gather"].id == running
    assert store.runs.latest(["gather"]).keys() == {"gather"}
    assert [r.id for r in store.runs.unfinished()] == [running]
    assert [r.status for r in store.runs.history("members")] == [RunStatus.MISSED, RunStatus.DONE]


def test_schedule_list_history_and_status_commands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from newsletter.cli import app  # importing the package registers every command

    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    text = text.replace('templates = "templates"', f'templates = "{ROOT / "templates"}"')
    cfg = tmp_path / "config.toml"
    cfg.write_text(text, encoding="utf-8")
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", "cli-test-key")
    settings = load(cfg)
    cli = CliRunner()
    with time_machine.travel(local(2026, 11, 30, 8, 30), tick=False):
        before = cli.invoke(app, ["-c", str(cfg), "schedule", "list"])
        assert before.exit_code == 0, before.output
        assert "not registered yet" in before.output
        assert "2026-11-30 09:00 EET" in before.output  # members: Monday 09:00 Sofia
        with Store.open(settings.database_url()) as store:
            register(settings, store, local(2026, 11, 30, 8, 30))
            store.runs.note(
                "partners-weekly",
                local(2026, 11, 24, 10),
                RunStatus.MISSED,
                "not run: 1d late, beyond the 12h grace period",
                local(2026, 11, 25, 10),
            )
        listed = cli.invoke(app, ["-c", str(cfg), "schedule", "list"])
        assert listed.exit_code == 0, listed.output
        assert "2026-12-01 10:00 EET" in listed.output  # partners: Tuesday 10:00 Bucharest
        assert "missed: not run: 1d late" in listed.output
        assert "The scheduler is not running" in listed.output
        history = cli.invoke(app, ["-c", str(cfg), "schedule", "history", "partners-weekly"])
        assert history.exit_code == 0 and "2026-11-24 10:00 EET" in history.output
        status = cli.invoke(app, ["-c", str(cfg), "status"])
        assert status.exit_code == 0, status.output
        assert "Scheduler: not running" in status.output
        assert "cluster-news" in status.output and "never gathered" in status.output
        assert "job partners-weekly: missed" in status.output
