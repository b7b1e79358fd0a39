"""The ``[scheduler]`` table and the ``[[schedule]]`` jobs that ``newsletter run`` runs.

A job runs on exactly one of: a cron expression (``cron``), a fixed interval (``every``) or
a monthly rule (``monthly`` with ``at``), in its own time zone. Durations are written
``"90s"``, ``"15m"``, ``"1h30m"``, ``"2d"``; a bare number means minutes.
"""

from __future__ import annotations

import re
from datetime import time, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BeforeValidator, Field, field_validator, model_validator

from newsletter.config.base import Model, check_timezone

__all__ = [
    "DAY_NAMES",
    "Duration",
    "ScheduleJob",
    "SchedulerConfig",
    "SendWindow",
    "format_duration",
    "parse_days",
    "parse_duration",
]

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_PART = re.compile(r"(\d+)\s*([dhms])")
_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(value: Any) -> timedelta:
    """``"1h30m"`` -> 1:30:00; a bare number (int or digits) means minutes."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int):
        return timedelta(minutes=value)
    text = str(value).strip().lower()
    if text.isdigit():
        return timedelta(minutes=int(text))
    compact = text.replace(" ", "")
    parts = _PART.findall(compact)
    if not parts or "".join(n + u for n, u in parts) != compact:
        raise ValueError(f"not a duration: {value!r} (write e.g. 90s, 15m, 1h30m, 2d)")
    return timedelta(seconds=sum(int(n) * _UNITS[u] for n, u in parts))


def format_duration(value: timedelta) -> str:
    """1:30:00 -> ``"1h30m"``: the way durations are written in config.toml."""
    seconds = int(value.total_seconds())
    if seconds == 0:
        return "0s"
    out = []
    for unit, size in _UNITS.items():
        if seconds >= size:
            out.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(out)


#: a span of time in config: "90s", "15m", "1h30m", "2d", or a number of minutes
Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


def parse_days(spec: str) -> frozenset[int]:
    """``"mon-fri"``, ``"sat,sun"``, ``"mon-wed,fri"`` -> weekday numbers (Monday is 0)."""
    days: set[int] = set()
    for part in spec.lower().replace(" ", "").split(","):
        first, _, last = part.partition("-")
        if first not in DAY_NAMES or (last and last not in DAY_NAMES):
            raise ValueError(f"unknown day in {spec!r} (use {', '.join(DAY_NAMES)}; e.g. mon-fri)")
        start = DAY_NAMES.index(first)
        stop = DAY_NAMES.index(last) if last else start
        if stop < start:
            raise ValueError(f"day range {part!r} runs backwards (write e.g. mon-fri)")
        days.update(range(start, stop + 1))
    return frozenset(days)


class SendWindow(Model):
    """Local hours in which a job may start; a run due outside them waits for the next opening."""

    days: str = Field(
        default="mon-sun", description='Days it is open, e.g. "mon-fri" or "sat,sun".'
    )
    start: time = Field(description='Local time it opens, e.g. "08:00".')
    end: time = Field(description='Local time it closes, after `start`, e.g. "18:00".')

    @field_validator("days")
    @classmethod
    def _days(cls, value: str) -> str:
        parse_days(value)
        return value

    @model_validator(mode="after")
    def _order(self) -> SendWindow:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("window times are local to the job's time zone: drop the offset")
        if not self.start < self.end:
            raise ValueError(f"window start {self.start:%H:%M} must be before end {self.end:%H:%M}")
        return self

    @property
    def weekdays(self) -> frozenset[int]:
        """The days the window is open (Monday is 0)."""
        return parse_days(self.days)

    def __str__(self) -> str:
        return f"{self.days} {self.start:%H:%M}–{self.end:%H:%M}"


class SchedulerConfig(Model):
    """The ``[scheduler]`` table: how ``newsletter run`` treats late runs and its lock."""

    misfire_grace: Duration = Field(
        default=timedelta(hours=12),
        description="A run missed by up to this much still runs once on start; later: missed.",
    )
    lock_ttl: Duration = Field(
        default=timedelta(seconds=60),
        description="Single-instance lock lifetime, renewed every third of it (at least 3s).",
    )

    @field_validator("lock_ttl")
    @classmethod
    def _ttl(cls, value: timedelta) -> timedelta:
        if value < timedelta(seconds=3):
            raise ValueError("lock_ttl must be at least 3s (it is renewed every third of it)")
        return value


class ScheduleJob(Model):
    """A job for ``newsletter run``: gather, or send a digest, on one kind of schedule."""

    id: str = Field(
        pattern=r"^[A-Za-z0-9_.-]+$",
        max_length=100,
        description="Fixed, unique id of the job (letters, digits, _ . -).",
    )
    job: Literal["gather", "digest"] = Field(
        description="What the job does: gather every source, or gather and send a digest."
    )
    #: cron fields are AND-ed: "0 9 1-7 * mon" is the first Monday of the month
    cron: str | None = Field(
        default=None, description='Cron expression "minute hour day month weekday", AND-ed.'
    )
    #: counted from 2026-01-01 00:00 local so the times are the same on every start
    every: Duration | None = Field(
        default=None,
        description='Fixed interval such as "1h" (a number: minutes), from 2026-01-01 00:00 local.',
    )
    monthly: Literal["first weekday", "last weekday"] | None = Field(
        default=None, description="The first or last Monday-to-Friday of each month, at `at`."
    )
    at: time | None = Field(
        default=None, description='Local time of a `monthly` run, e.g. "09:00".'
    )
    timezone: str = Field(
        default="Europe/Sofia", description="IANA time zone the job's times are local to."
    )
    segment: str | None = Field(
        default=None, description="Digest jobs: the segment to send (none: every segment)."
    )
    window: SendWindow | None = Field(
        default=None,
        description="Only start inside these local hours; a due run waits for the opening.",
    )
    misfire_grace: Duration | None = Field(
        default=None, description="Overrides `scheduler.misfire_grace` for this job."
    )

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        return check_timezone(value)

    @model_validator(mode="after")
    def _one_schedule(self) -> ScheduleJob:
        given = [k for k in ("cron", "every", "monthly") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of cron, every, monthly"
                + (f" (got {', '.join(given)})" if given else "")
            )
        if (self.monthly is None) != (self.at is None):
            raise ValueError('at goes with monthly, and monthly needs at (e.g. at = "09:00")')
        if self.at is not None and self.at.tzinfo is not None:
            raise ValueError("at is local to the job's time zone: drop the offset")
        if self.every is not None and self.every < timedelta(seconds=1):
            raise ValueError("every must be at least 1s")
        if self.job == "gather" and self.segment is not None:
            raise ValueError("segment only applies to digest jobs")
        if self.cron is not None:
            from apscheduler.triggers.cron import CronTrigger

            try:
                CronTrigger.from_crontab(self.cron, timezone=ZoneInfo(self.timezone))
            except ValueError as exc:
                raise ValueError(f"invalid cron {self.cron!r}: {exc}") from exc
        return self

    @property
    def tz(self) -> ZoneInfo:
        """The job's time zone."""
        return ZoneInfo(self.timezone)
