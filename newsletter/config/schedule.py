"""The ``[[schedule]]`` tables: jobs for ``newsletter run``."""

from __future__ import annotations

from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import model_validator

from newsletter.config.base import Model

__all__ = ["ScheduleJob"]


class ScheduleJob(Model):
    """A job for ``newsletter run``: gather or send a digest, on a cron expression."""

    id: str
    job: Literal["gather", "digest"]
    cron: str
    timezone: str = "Europe/Sofia"
    segment: str | None = None

    @model_validator(mode="after")
    def _valid_cron(self) -> ScheduleJob:
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(self.cron, timezone=ZoneInfo(self.timezone))
        except (ValueError, ZoneInfoNotFoundError) as exc:
            raise ValueError(f"invalid cron {self.cron!r}: {exc}") from exc
        return self
