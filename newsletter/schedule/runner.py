"""``newsletter run``: the long-running scheduler process.

One process at a time holds the ``scheduler`` lock in the store (renewed by heartbeat, so
a crashed holder blocks the next one only until the lock lapses). Jobs come from
``[[schedule]]`` and are registered under their config ids with ``replace_existing`` in
APScheduler's SQLAlchemy job store, in the newsletter database: restarting leaves one of
each. A run that fell due while the process was down keeps its time across the restart,
so APScheduler's grace check decides it: within ``misfire_grace`` it runs once on start,
beyond it is recorded as ``missed`` and logged. What one run does is
:mod:`newsletter.schedule.jobs`.

Why ``BackgroundScheduler``: the main thread keeps the signal handlers, the heartbeat and
the orderly stop (the scheduler's own thread only starts jobs). On SIGTERM/SIGINT the
running job starts no new batch, records those in flight and returns (from a wait for
retries too); a gather stores the source it is on and starts no other. The run is marked
``interrupted`` and continued on the next start, within the grace period.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import socket
import threading
import time as _time
from datetime import UTC, datetime
from types import FrameType
from typing import Any

import sqlalchemy as sa
from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger

from newsletter.clock import utcnow
from newsletter.config import ScheduleJob, Settings
from newsletter.config.schedule import format_duration
from newsletter.digest.approval import release_due
from newsletter.errors import ConfigError, SchedulerError
from newsletter.gather.netguard import GuardedClient
from newsletter.schedule.jobs import FireTimeExecutor, Jobs, run_job
from newsletter.schedule.triggers import (
    JOBSTORE_TABLE,
    LOCK_NAME,
    SEP,
    build_trigger,
    describe,
    grace,
    local_text,
    remove_stored,
    span_text,
    stored_jobs,
)
from newsletter.store import Store, db
from newsletter.store.runs import RunStatus

__all__ = ["Runner", "run_scheduler"]

log = logging.getLogger("newsletter.scheduler")

#: seconds between looks for approved editions to release (see :meth:`Runner.release_approved`)
APPROVAL_POLL = 30.0


class Runner:
    """Serves the configured jobs in this process while it holds the scheduler lock.

    ``client`` is the HTTP client the gathers share (built on first use when none is given).
    """

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        holder: str | None = None,
        stop: threading.Event | None = None,
        client: GuardedClient | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.stop = stop or threading.Event()
        self.ttl = settings.scheduler.lock_ttl
        self.jobs = Jobs(
            settings, store, holder=self.holder, stop=self.stop, defer=self._one_off, client=client
        )
        self.scheduler: BackgroundScheduler | None = None
        self.executor = FireTimeExecutor()
        self.lost_lock = False
        #: the signal number a handler saw (handlers only set this; :meth:`serve` acts)
        self.signalled: int | None = None
        self._engine: sa.Engine | None = None

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Take the lock, register the jobs and start scheduling; returns at once.

        A runner starts once: after :meth:`shutdown`, build a new one.
        """
        now = utcnow()
        if self.store.locks.acquire(LOCK_NAME, self.holder, self.ttl, now) is None:
            raise SchedulerError(self._refusal(now))
        try:
            self.jobs.activate()
            self._engine = db.create_engine(
                self.store.engine.url.render_as_string(hide_password=False)
            )
            self.scheduler = self._build(self._engine)
            self._register(self._engine, now)
            self._continue_interrupted(now)
            self.scheduler.start()
        except BaseException:
            self._release()
            raise
        log.info("scheduler started as %s with %d job(s)", self.holder, len(self.jobs.by_id))

    def serve(self) -> None:
        """Renew the lock until a stop is asked for (signal, lost lock, :meth:`request_stop`)."""
        interval = self.ttl.total_seconds() / 3
        next_beat = _time.monotonic() + interval
        next_release = _time.monotonic()
        while not self.stop.is_set():
            if self.signalled is not None:
                name = signal.Signals(self.signalled).name
                log.warning("%s: finishing the current batch, then stopping", name)
                self.stop.set()
                break
            # short waits: a signal handler only sets a flag (Event.set in a handler can deadlock)
            self.stop.wait(0.2)
            if _time.monotonic() >= next_beat:
                self.heartbeat()
                next_beat = _time.monotonic() + interval
            if _time.monotonic() >= next_release:
                self.release_approved()
                next_release = _time.monotonic() + APPROVAL_POLL

    def release_approved(self, now: datetime | None = None) -> list[int]:
        """Release approved editions whose send window opened and those past their
        approval deadline (:func:`~newsletter.digest.approval.release_due`), and have their
        segment's digest job continue now to send them. Returns the released ids."""
        now = now or utcnow()
        try:
            released = release_due(self.settings, self.store, now=now)
        except sa.exc.SQLAlchemyError as exc:
            log.warning("approval check failed: %s", " ".join(str(exc).split())[:200])
            return []
        for edition_id in released:
            segment = self.store.editions.get(edition_id).segment
            job = next(
                (
                    j
                    for j in self.jobs.by_id.values()
                    if j.job == "digest" and j.segment in (None, segment)
                ),
                None,
            )
            if job is None or self.scheduler is None:
                log.warning(
                    "edition %s is approved but no digest job sends %s: `newsletter worker` "
                    "or `newsletter editions resume %s` sends it",
                    edition_id,
                    segment,
                    edition_id,
                )
                continue
            self._one_off(job, "continue", now, now)
        return released

    def request_stop(self) -> None:
        """Ask the running job to stop after its current batch and the loop to end."""
        self.stop.set()

    def heartbeat(self) -> None:
        """Renew the lock; losing it to another holder stops this process."""
        try:
            still_ours = self.store.locks.renew(LOCK_NAME, self.holder, self.ttl, utcnow())
        except sa.exc.SQLAlchemyError as exc:
            # the database may come back before the lock lapses: keep serving, try again
            log.warning("scheduler heartbeat failed: %s", " ".join(str(exc).split())[:200])
            return
        if not still_ours:
            self.lost_lock = True
            log.error("the scheduler lock was taken over by another process: stopping")
            self.stop.set()

    def shutdown(self) -> None:
        """Let the running job reach a recorded batch, stop scheduling, release the lock."""
        self.stop.set()
        if self.scheduler is not None and self.scheduler.running:
            # drain in a helper thread so the heartbeat goes on while the last batch finishes
            drain = threading.Thread(target=self.scheduler.shutdown, daemon=True)
            drain.start()
            while drain.is_alive():
                drain.join(self.ttl.total_seconds() / 3)
                if drain.is_alive() and not self.lost_lock:
                    self.heartbeat()
        self._release()
        log.info("scheduler stopped")

    def _release(self) -> None:
        self.jobs.close()
        if not self.lost_lock:
            try:
                self.store.locks.release(LOCK_NAME, self.holder)
            except sa.exc.SQLAlchemyError as exc:
                log.warning("could not release the scheduler lock (it lapses): %s", exc)
        if self._engine is not None:
            self._engine.dispose()

    def _refusal(self, now: datetime) -> str:
        lock = self.store.locks.get(LOCK_NAME)
        if lock is None:  # released between our attempt and this look: say so plainly
            return "another scheduler was starting at the same time; try again"
        return (
            f"another scheduler is running ({lock.holder}, last heartbeat "
            f"{span_text(now - lock.heartbeat_at)} ago); stop it first, or wait until its "
            f"lock lapses at {lock.expires_at:%Y-%m-%d %H:%M:%S} UTC if it crashed"
        )

    # -- jobs ----------------------------------------------------------------------------

    def _build(self, engine: sa.Engine) -> BackgroundScheduler:
        scheduler = BackgroundScheduler(
            jobstores={"default": SQLAlchemyJobStore(engine=engine, tablename=JOBSTORE_TABLE)},
            executors={"default": self.executor},
            job_defaults={"coalesce": True, "max_instances": 1},
            timezone=UTC,
        )
        scheduler.add_listener(self._on_missed, EVENT_JOB_MISSED)
        scheduler.add_listener(self._on_busy, EVENT_JOB_MAX_INSTANCES)
        return scheduler

    def _register(self, engine: sa.Engine, now: datetime) -> None:
        assert self.scheduler is not None
        stored = stored_jobs(engine)
        stale = [sid for sid in stored if sid.split(SEP, 1)[0] not in self.jobs.by_id]
        remove_stored(engine, stale)
        for sid in stale:
            log.info("job %r is no longer in the config: removed", sid)
        for job in self.jobs.by_id.values():
            waiting = stored.get(f"{job.id}{SEP}window")
            if job.window is None and waiting is not None and len(waiting.args) > 1:
                # the run waited for a window the config no longer has: nothing holds it back
                log.info("job %r has no send window any more: its waiting run goes now", job.id)
                self._one_off(job, "window", now, datetime.fromisoformat(waiting.args[1]))
            trigger = build_trigger(job)
            keep: dict[str, Any] = {}
            old = stored.get(job.id)
            if old is not None and old.next_run_time and repr(old.trigger) == repr(trigger):
                # a run that fell due while we were down keeps its time: the grace check
                # decides whether it runs now or is reported missed
                keep["next_run_time"] = old.next_run_time
            self.scheduler.add_job(
                run_job,
                trigger,
                args=[job.id],
                id=job.id,
                name=f"{job.id} ({describe(job)}, {job.timezone})",
                misfire_grace_time=int(grace(self.settings, job).total_seconds()),
                replace_existing=True,
                **keep,
            )

    def _one_off(self, job: ScheduleJob, kind: str, at: datetime, scheduled_for: datetime) -> None:
        """Run ``job`` once at ``at`` for its original time (window wait, continuation)."""
        assert self.scheduler is not None
        self.scheduler.add_job(
            run_job,
            DateTrigger(run_date=at, timezone=UTC),
            args=[job.id, scheduled_for.isoformat()],
            id=f"{job.id}{SEP}{kind}",
            name=f"{job.id} ({kind})",
            misfire_grace_time=int(grace(self.settings, job).total_seconds()),
            replace_existing=True,
        )

    def _continue_interrupted(self, now: datetime) -> None:
        """Runs stopped by a signal or a crash continue now if still within their grace."""
        latest: dict[str, datetime] = {}
        for run in self.store.runs.unfinished():
            job = self.jobs.by_id.get(run.job_id)
            how = "stopped" if run.status is RunStatus.INTERRUPTED else f"died ({run.holder})"
            if job is None:
                self.store.runs.mark(run.id, RunStatus.MISSED, f"{how}; job no longer configured")
                continue
            limit = grace(self.settings, job)
            if now - run.scheduled_for > limit:
                detail = (
                    f"{how}; not continued: beyond the {format_duration(limit)} grace period "
                    "(see `newsletter status` for unfinished editions)"
                )
                self.store.runs.mark(run.id, RunStatus.MISSED, detail)
                log.warning(
                    "job %r run of %s %s", job.id, local_text(run.scheduled_for, job.tz), detail
                )
                continue
            self.store.runs.mark(run.id, RunStatus.RESUMED, f"{how}; continued on start")
            latest[job.id] = max(latest.get(job.id, run.scheduled_for), run.scheduled_for)
        for job_id, scheduled_for in latest.items():
            log.info("job %r: continuing the run of %s", job_id, scheduled_for.isoformat())
            self._one_off(self.jobs.by_id[job_id], "continue", now, scheduled_for)

    def _on_missed(self, event: JobExecutionEvent) -> None:
        job = self.jobs.by_id.get(event.job_id.split(SEP, 1)[0])
        if job is None:
            return
        when = event.scheduled_run_time
        limit = grace(self.settings, job)
        detail = (
            f"not run: {span_text(utcnow() - when)} late, beyond the "
            f"{format_duration(limit)} grace period (the scheduler was down or busy)"
        )
        log.warning("job %r, due %s: %s", job.id, local_text(when, job.tz), detail)
        self.store.runs.note(job.id, when, RunStatus.MISSED, detail, utcnow(), holder=self.holder)

    def _on_busy(self, event: Any) -> None:
        log.warning("job %r: still running from its last time; this run is skipped", event.job_id)


def run_scheduler(settings: Settings, *, store: Store | None = None) -> None:
    """``newsletter run``: serve the configured jobs until SIGTERM or SIGINT."""
    if not settings.schedule:
        raise ConfigError(f"{settings.config_path}: schedule: no [[schedule]] jobs to run")
    own = store is None
    store = store or Store.open(settings.database_url())
    runner = Runner(settings, store)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        runner.signalled = signum

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        runner.start()
        try:
            runner.serve()
        finally:
            runner.shutdown()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if own:
            store.close()
    if runner.lost_lock:
        raise SchedulerError("stopped: another process took over the scheduler lock")
