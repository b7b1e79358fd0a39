"""Schedules from config: triggers, send windows, and what ``newsletter schedule list`` shows.

Nothing here runs a job (that is :mod:`newsletter.schedule.runner`); these are the pure parts and
the read-only view of the job store, usable while the scheduler process is down.

Every job's times are computed in its own time zone. Across a DST change a cron time can
vanish (it then fires once, an hour later in wall-clock time) or repeat (it fires twice);
a digest's edition is keyed by (segment, period) in the store, so a repeat sends nothing
twice.
"""

from __future__ import annotations

import calendar
import logging
import pickle
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from newsletter.config import ScheduleJob, Settings
from newsletter.config.schedule import SendWindow, format_duration
from newsletter.store import Store
from newsletter.store.runs import PROBLEMS, JobRun, RunStatus

log = logging.getLogger("newsletter.scheduler")

#: APScheduler's job store table, in the newsletter database beside our own tables
JOBSTORE_TABLE = "apscheduler_jobs"
#: the single-instance lock of ``newsletter run``
LOCK_NAME = "scheduler"
#: one-off jobs derived from a configured one are called "<id>~<kind>"
SEP = "~"
#: intervals count from here (local time), so "every 1h" fires on the hour on every start
INTERVAL_ANCHOR = datetime(2026, 1, 1)

_ONE_OFF_LABELS = {"window": "waits for the send window", "continue": "continues"}


def localize(naive: datetime, tz: ZoneInfo) -> datetime:
    """``naive`` wall-clock time in ``tz``; a time inside a spring-forward gap moves past it."""
    return naive.replace(tzinfo=tz).astimezone(UTC).astimezone(tz)


class MonthlyWeekdayTrigger(BaseTrigger):  # type: ignore[misc]
    """Fires on the first (or last) Monday-to-Friday of each month at a local time."""

    def __init__(self, which: str, at: time, timezone: ZoneInfo) -> None:
        if which not in ("first", "last"):
            raise ValueError(f"which must be 'first' or 'last', not {which!r}")
        self.which = which
        self.at = at
        self.timezone = timezone

    def fire_time_in(self, year: int, month: int) -> datetime:
        """This month's fire time."""
        last_day = calendar.monthrange(year, month)[1]
        days = range(1, last_day + 1) if self.which == "first" else range(last_day, 0, -1)
        day = next(d for d in days if date(year, month, d).weekday() < 5)
        return localize(datetime.combine(date(year, month, day), self.at), self.timezone)

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        """The first fire time after ``previous_fire_time`` (or at or after ``now``)."""
        start = (
            now if previous_fire_time is None else previous_fire_time + timedelta(microseconds=1)
        )
        local = start.astimezone(self.timezone)
        year, month = local.year, local.month
        while True:
            candidate = self.fire_time_in(year, month)
            if candidate >= start:
                return candidate
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)

    def __str__(self) -> str:
        return f"{self.which} weekday of the month at {self.at:%H:%M}"

    def __repr__(self) -> str:
        return (
            f"<MonthlyWeekdayTrigger ({self.which} weekday, at='{self.at:%H:%M}', "
            f"timezone='{self.timezone.key}')>"
        )


def build_trigger(job: ScheduleJob) -> BaseTrigger:
    """The APScheduler trigger for ``job``, in the job's time zone."""
    if job.cron is not None:
        trigger: BaseTrigger = CronTrigger.from_crontab(job.cron, timezone=job.tz)
    elif job.every is not None:
        trigger = IntervalTrigger(
            seconds=int(job.every.total_seconds()),
            start_date=localize(INTERVAL_ANCHOR, job.tz),
            timezone=job.tz,
        )
    else:
        assert job.monthly is not None and job.at is not None  # the config guarantees one
        trigger = MonthlyWeekdayTrigger(job.monthly.split()[0], job.at, job.tz)
    return trigger


def describe(job: ScheduleJob) -> str:
    """The job's schedule as a person reads it."""
    if job.cron is not None:
        return f"cron {job.cron}"
    if job.every is not None:
        return f"every {format_duration(job.every)}"
    assert job.at is not None
    return f"{job.monthly} of the month at {job.at:%H:%M}"


def what(job: ScheduleJob) -> str:
    """What the job does: ``gather``, ``digest members``, ``digest (every segment)``."""
    if job.job == "gather":
        return "gather"
    return f"digest {job.segment}" if job.segment else "digest (every segment)"


def window_open(window: SendWindow, tz: ZoneInfo, when: datetime) -> bool:
    """True when ``when`` falls inside the window (local days and hours in ``tz``)."""
    local = when.astimezone(tz)
    return local.weekday() in window.weekdays and window.start <= local.time() < window.end


def next_opening(window: SendWindow, tz: ZoneInfo, when: datetime) -> datetime:
    """``when`` if the window is open then, else the next time it opens."""
    if window_open(window, tz, when):
        return when
    today = when.astimezone(tz).date()
    for offset in range(8):
        day = today + timedelta(days=offset)
        if day.weekday() in window.weekdays:
            opens = localize(datetime.combine(day, window.start), tz)
            if opens > when:
                return opens
    raise AssertionError("a window with at least one day opens within a week")


def local_text(when: datetime | None, tz: ZoneInfo | str) -> str:
    """``2026-03-30 09:00 EEST``: a time as read in ``tz``, with its zone's abbreviation."""
    if when is None:
        return "-"
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    return when.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


def span_text(span: timedelta) -> str:
    """A rounded, readable length of time: ``3h 20m``, ``2d 4h``, ``45s``."""
    seconds = int(abs(span.total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    minutes, hours, days = seconds // 60 % 60, seconds // 3600 % 24, seconds // 86400
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    return f"{minutes}m"


def grace(settings: Settings, job: ScheduleJob) -> timedelta:
    """How late a run of ``job`` may start and still run."""
    return job.misfire_grace or settings.scheduler.misfire_grace


@dataclass(frozen=True)
class StoredJob:
    """A job as APScheduler keeps it in the job store."""

    id: str
    next_run_time: datetime | None
    trigger: Any
    args: tuple[Any, ...]


_JOBS = sa.table(JOBSTORE_TABLE, sa.column("id"), sa.column("job_state"))


def stored_jobs(engine: sa.Engine) -> dict[str, StoredJob]:
    """Every job in the job store, without a running scheduler (empty before the first run)."""
    if not sa.inspect(engine).has_table(JOBSTORE_TABLE):
        return {}
    out = {}
    with engine.connect() as conn:
        rows = conn.execute(sa.select(_JOBS.c.id, _JOBS.c.job_state)).all()
    for row in rows:
        try:
            # our own database, written by APScheduler: its format is a pickled dict
            state = pickle.loads(row.job_state)
        except Exception as exc:  # a job of an older version: APScheduler drops it on start
            log.warning("job store: cannot read job %r: %s", row.id, exc)
            continue
        nrt = state.get("next_run_time")
        out[row.id] = StoredJob(
            id=row.id,
            next_run_time=nrt.astimezone(UTC) if nrt is not None else None,
            trigger=state.get("trigger"),
            args=tuple(state.get("args", ())),
        )
    return out


def remove_stored(engine: sa.Engine, ids: list[str]) -> None:
    """Delete jobs from the job store (before the scheduler starts)."""
    if ids:
        with engine.begin() as conn:
            conn.execute(sa.delete(_JOBS).where(_JOBS.c.id.in_(ids)))


@dataclass(frozen=True)
class JobView:
    """One row of ``newsletter schedule list``."""

    id: str
    what: str
    schedule: str
    timezone: str
    window: str | None
    #: the next run as the job store has it (not registered yet: as the trigger computes it)
    next_run: datetime | None
    #: one-off runs waiting: (what, when)
    pending: tuple[tuple[str, datetime], ...]
    last: JobRun | None
    #: one line: how the job stands
    state: str
    problem: bool


def _state(
    job: ScheduleJob,
    stored: StoredJob | None,
    last: JobRun | None,
    settings: Settings,
    now: datetime,
    scheduler_alive: bool,
) -> tuple[str, bool]:
    if stored is None:
        return "not registered yet (on the first `newsletter run`)", False
    nrt = stored.next_run_time
    if nrt is not None and nrt < now - timedelta(minutes=1) and not scheduler_alive:
        late, limit = now - nrt, grace(settings, job)
        if late > limit:
            return (
                f"overdue by {span_text(late)}, beyond the {format_duration(limit)} grace "
                "period: will not run (reported as missed on start)",
                True,
            )
        return f"overdue by {span_text(late)}: runs once when the scheduler starts", False
    if last is None:
        return "never run", False
    text = last.status.value + (f": {last.detail}" if last.detail else "")
    return text, last.status in PROBLEMS


def list_jobs(
    settings: Settings, store: Store, now: datetime, *, scheduler_alive: bool
) -> list[JobView]:
    """Every configured job (and stale ones still in the job store), for ``schedule list``."""
    stored = stored_jobs(store.engine)
    last = store.runs.latest()
    views = []
    for job in settings.schedule:
        pending = tuple(
            (_ONE_OFF_LABELS.get(s.id.split(SEP, 1)[1], s.id), s.next_run_time)
            for s in stored.values()
            if s.id.startswith(job.id + SEP) and s.next_run_time is not None
        )
        state, problem = _state(
            job, stored.get(job.id), last.get(job.id), settings, now, scheduler_alive
        )
        entry = stored.get(job.id)
        if entry is None:
            # not registered yet: when it would first run if the scheduler started now
            nxt = build_trigger(job).get_next_fire_time(None, now.astimezone(job.tz))
        else:
            nxt = entry.next_run_time
        views.append(
            JobView(
                id=job.id,
                what=what(job),
                schedule=describe(job),
                timezone=job.timezone,
                window=str(job.window) if job.window else None,
                next_run=nxt.astimezone(job.tz) if nxt else None,
                pending=pending,
                last=last.get(job.id),
                state=state,
                problem=problem,
            )
        )
    configured = {j.id for j in settings.schedule}
    for sid, entry in sorted(stored.items()):
        if sid.split(SEP, 1)[0] not in configured:
            views.append(
                JobView(
                    id=sid,
                    what="(not in config)",
                    schedule=str(entry.trigger),
                    timezone="UTC",
                    window=None,
                    next_run=entry.next_run_time,
                    pending=(),
                    last=last.get(sid),
                    state="removed from the job store on the next start",
                    problem=False,
                )
            )
    return views


__all__ = [
    "JOBSTORE_TABLE",
    "LOCK_NAME",
    "SEP",
    "JobView",
    "MonthlyWeekdayTrigger",
    "RunStatus",
    "StoredJob",
    "build_trigger",
    "describe",
    "grace",
    "list_jobs",
    "local_text",
    "localize",
    "next_opening",
    "remove_stored",
    "span_text",
    "stored_jobs",
    "what",
    "window_open",
]
