"""The record of scheduled runs: what each ``[[schedule]]`` job did, and what it did not.

A row is written when a run starts (``running``) and finished with how it ended. Runs that
never started are recorded too, so nothing is missed silently: ``missed`` (the process was
down for longer than the grace period) and ``waiting`` (due outside the send window).
"""

from __future__ import annotations

import enum
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from newsletter.store.tables import schedule_runs as t

__all__ = ["JobRun", "RunStatus", "RunStore"]


class RunStatus(enum.StrEnum):
    """How a scheduled run ended (or why it did not start)."""

    RUNNING = "running"
    DONE = "done"
    SKIPPED = "skipped"
    FAILED = "failed"
    MISSED = "missed"
    INTERRUPTED = "interrupted"
    WAITING = "waiting"
    RESUMED = "resumed"


#: statuses that need an operator's eye
PROBLEMS = frozenset({RunStatus.FAILED, RunStatus.MISSED})


@dataclass(frozen=True)
class JobRun:
    """One row of ``schedule_runs``."""

    id: int
    job_id: str
    scheduled_for: datetime
    started_at: datetime | None
    finished_at: datetime | None
    status: RunStatus
    detail: str
    holder: str | None


def _run(row: Any) -> JobRun:
    return JobRun(
        id=row.id,
        job_id=row.job_id,
        scheduled_for=row.scheduled_for,
        started_at=row.started_at,
        finished_at=row.finished_at,
        status=RunStatus(row.status),
        detail=row.detail,
        holder=row.holder,
    )


class RunStore:
    """Queries over the ``schedule_runs`` table."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def start(self, job_id: str, scheduled_for: datetime, now: datetime, holder: str) -> int:
        """Record that a run of ``job_id`` started; returns the run's id."""
        return self.note(job_id, scheduled_for, RunStatus.RUNNING, "", now, holder=holder)

    def note(
        self,
        job_id: str,
        scheduled_for: datetime,
        status: RunStatus,
        detail: str,
        now: datetime,
        *,
        holder: str | None = None,
    ) -> int:
        """Record a run in ``status`` (for one that never started: ``missed``, ``waiting``)."""
        running = status is RunStatus.RUNNING
        with self.engine.begin() as conn:
            pk = conn.execute(
                sa.insert(t).values(
                    job_id=job_id,
                    scheduled_for=scheduled_for,
                    started_at=now if running else None,
                    finished_at=None if running else now,
                    status=status.value,
                    detail=detail,
                    holder=holder,
                )
            ).inserted_primary_key
        assert pk is not None
        return int(pk[0])

    def finish(self, run_id: int, status: RunStatus, detail: str, now: datetime) -> None:
        """Record how a started run ended."""
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(t)
                .where(t.c.id == run_id)
                .values(status=status.value, detail=detail, finished_at=now)
            )

    def mark(self, run_id: int, status: RunStatus, detail: str) -> None:
        """Change what a past run says (an interrupted run that was resumed or given up)."""
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(t).where(t.c.id == run_id).values(status=status.value, detail=detail)
            )

    def unfinished(self) -> list[JobRun]:
        """Runs that started and never ended (their process died) or were stopped, oldest first."""
        query = (
            sa.select(t)
            .where(t.c.status.in_([RunStatus.RUNNING.value, RunStatus.INTERRUPTED.value]))
            .order_by(t.c.id)
        )
        with self.engine.connect() as conn:
            return [_run(row) for row in conn.execute(query)]

    def latest(self, job_ids: Collection[str] | None = None) -> dict[str, JobRun]:
        """The newest run of each job (of the named ones only, when given)."""
        newest = sa.select(sa.func.max(t.c.id)).group_by(t.c.job_id)
        if job_ids is not None:
            newest = newest.where(t.c.job_id.in_(list(job_ids)))
        query = sa.select(t).where(t.c.id.in_(newest.scalar_subquery()))
        with self.engine.connect() as conn:
            return {row.job_id: _run(row) for row in conn.execute(query)}

    def history(self, job_id: str | None = None, *, limit: int = 50) -> list[JobRun]:
        """Newest runs first (of one job, when given)."""
        query = sa.select(t).order_by(t.c.id.desc()).limit(limit)
        if job_id is not None:
            query = query.where(t.c.job_id == job_id)
        with self.engine.connect() as conn:
            return [_run(row) for row in conn.execute(query)]
