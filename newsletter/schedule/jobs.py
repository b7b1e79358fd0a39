"""One scheduled run: call the library for a ``[[schedule]]`` job and record how it ended.

The job store keeps each job as a reference to :func:`run_job` plus its arguments (the
config id, and for one-off runs the time they stand for). :func:`run_job` hands the run
to the :class:`Jobs` of the scheduler serving in this process. A run only calls
:func:`newsletter.gather.run.gather` or :func:`newsletter.digest.run_digest`; skipping when
nothing is new, ``min_items`` and the (segment, period) key are theirs.

Stopping: the process's stop event goes to ``gather`` and ``run_digest``. No further
source is gathered once it is set (the one in progress is stored), no new batch starts,
the batches in flight are recorded and a wait for retries is cut short. Either run is
then recorded as ``interrupted`` and continued on the next start.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from apscheduler.executors.base import run_job as apscheduler_run_job
from apscheduler.executors.pool import BasePoolExecutor

from newsletter.clock import utcnow
from newsletter.config import ScheduleJob, Settings
from newsletter.digest.edition import DigestReport
from newsletter.digest.pipeline import run_digest
from newsletter.errors import NewsletterError, SchedulerError
from newsletter.gather.netguard import GuardedClient
from newsletter.gather.run import GatherReport, gather
from newsletter.gather.sources.base import default_client
from newsletter.schedule.triggers import local_text, next_opening, window_open
from newsletter.store import Store
from newsletter.store.runs import RunStatus

log = logging.getLogger("newsletter.scheduler")

#: an unfinished send with no retry time (rows leased by a dead worker) is tried again after
CONTINUE_AFTER = timedelta(minutes=10)

#: (job, kind, when, scheduled_for): schedule a one-off run of ``job`` at ``when``
Defer = Callable[[ScheduleJob, str, datetime, datetime], None]

_fire = threading.local()
_active: Jobs | None = None
_active_guard = threading.Lock()


def run_job(job_id: str, scheduled_for: str | None = None) -> None:
    """What every job calls; the job store keeps it as ``newsletter.schedule.jobs:run_job``.

    The store keeps only this reference and the arguments, so the live parts (settings,
    store, stop signal) come from the scheduler serving in this process.
    """
    jobs = _active
    if jobs is None:
        raise SchedulerError(f"job {job_id!r} ran outside `newsletter run`")
    fire = getattr(_fire, "time", None)
    when = datetime.fromisoformat(scheduled_for) if scheduled_for else fire or utcnow()
    jobs.execute(job_id, when)


def _run_at_fire_time(job: Any, alias: str, run_times: list[datetime], logger: str) -> list[Any]:
    events: list[Any] = []
    for run_time in run_times:
        _fire.time = run_time
        try:
            events.extend(apscheduler_run_job(job, alias, [run_time], logger))
        finally:
            _fire.time = None
    return events


class FireTimeExecutor(BasePoolExecutor):  # type: ignore[misc]
    """A one-thread pool that tells the job function the time it was scheduled for.

    APScheduler 3 passes a job only its stored arguments; the record of a run and the grace
    of a continued one need the scheduled time. One thread: jobs run one after another, so
    an hourly gather never races a digest over the same new items.
    """

    def __init__(self) -> None:
        super().__init__(
            concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="newsletter-job")
        )
        self._count_lock = threading.Lock()
        self._in_flight = 0

    @property
    def idle(self) -> bool:
        """True when no run is queued or running (its events are dispatched by then)."""
        with self._count_lock:
            return self._in_flight == 0

    def _do_submit_job(self, job: Any, run_times: list[datetime]) -> None:
        def done(future: concurrent.futures.Future[list[Any]]) -> None:
            try:
                exc = future.exception()
                if exc is not None:
                    self._run_job_error(job.id, exc, exc.__traceback__)
                else:
                    self._run_job_success(job.id, future.result())
            finally:
                with self._count_lock:
                    self._in_flight -= 1

        # counted before the scheduler moves the job on in its store, so "nothing due and
        # idle" means every due run has finished
        with self._count_lock:
            self._in_flight += 1
        try:
            future = self._pool.submit(
                _run_at_fire_time, job, job._jobstore_alias, run_times, self._logger.name
            )
        except BaseException:
            with self._count_lock:
                self._in_flight -= 1
            raise
        future.add_done_callback(done)


@dataclass(frozen=True)
class RunOutcome:
    """How one run ended, and when to continue it (an unfinished send)."""

    status: RunStatus
    detail: str
    continue_at: datetime | None = None


def gather_outcome(report: GatherReport) -> RunOutcome:
    """Summarise a gather: ``failed`` when every source failed, ``interrupted`` by a stop."""
    text = f"{report.new} new, {report.updated} updated from {len(report.sources)} source(s)"
    if report.failed:
        text += "; failed: " + "; ".join(f"{s.name}: {s.error}" for s in report.failed)
    if report.stopped:
        text += f"; stopped before {', '.join(report.left)}: continues on the next start"
        return RunOutcome(RunStatus.INTERRUPTED, text)
    bad = bool(report.sources) and len(report.failed) == len(report.sources)
    return RunOutcome(RunStatus.FAILED if bad else RunStatus.DONE, text)


def digest_outcome(settings: Settings, report: DigestReport, now: datetime) -> RunOutcome:
    """Summarise a digest run; ``on_empty = "error"`` turns "nothing new" into a failure.

    A run a stop cut short is ``interrupted`` (the next start continues it, and the
    segments it finished skip then), whatever else happened in it.
    """
    parts, statuses, follow = [], set(), None
    for res in report.segments:
        if res.stopped:
            statuses.add(RunStatus.INTERRUPTED)
        if res.stopped and res.sent is None:
            parts.append(f"{res.segment}: {res.skipped}")
            continue
        if res.awaiting_approval:
            # prepared as it should be: the rest is a person's decision, not a skip
            statuses.add(RunStatus.DONE)
            parts.append(f"{res.segment}: edition {res.edition_id} awaiting approval")
            continue
        if res.skipped:
            segment = settings.segment(res.segment)
            empty = res.edition_id is None and res.items < max(segment.min_items, 1)
            failed = empty and settings.on_empty == "error"
            statuses.add(RunStatus.FAILED if failed else RunStatus.SKIPPED)
            parts.append(f"{res.segment}: skipped ({res.skipped})")
            continue
        if res.sent is None:
            continue
        counts = ", ".join(f"{k.value} {v}" for k, v in sorted(res.sent.counts.items()) if v)
        text = f"{res.segment}: edition {res.edition_id}{' resumed' if res.resumed else ''}"
        text += f" ({counts or 'no recipients'})"
        statuses.add(RunStatus.DONE)
        if res.stopped:
            text += ", stopped: continues on the next start"
        elif not res.sent.finished:
            at = res.sent.next_retry_at or now + CONTINUE_AFTER
            follow = at if follow is None else min(follow, at)
            text += f", unfinished: continues at {at:%Y-%m-%d %H:%M} UTC"
        parts.append(text)
    for source in report.gathered.failed if report.gathered else []:
        parts.append(f"source {source.name} failed: {source.error}")
    if report.gathered is not None and report.gathered.stopped:
        parts.append(f"gather stopped before {', '.join(report.gathered.left)}")
    for name, imported in report.lists.items():
        if imported.errors:
            parts.append(f"list {name}: {len(imported.errors)} bad row(s): {imported.errors[0]}")
    status = next(
        (s for s in (RunStatus.INTERRUPTED, RunStatus.FAILED, RunStatus.DONE) if s in statuses),
        RunStatus.SKIPPED,
    )
    return RunOutcome(status, "; ".join(parts) or "no segments", follow)


class Jobs:
    """Runs the configured jobs of this process, one run at a time, and records each run.

    ``defer`` schedules a one-off run (a wait for the send window, the continuation of an
    unfinished send); ``stop`` is handed to each gather and digest. ``client`` is the HTTP
    client every gather of this process shares (built on first use when none is given).
    """

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        holder: str,
        stop: threading.Event,
        defer: Defer,
        client: GuardedClient | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.holder = holder
        self.stop = stop
        self.defer = defer
        self.by_id: dict[str, ScheduleJob] = {j.id: j for j in settings.schedule}
        self._http = client
        self._own_http = client is None

    def activate(self) -> None:
        """Make this the runner :func:`run_job` hands runs to (one per process)."""
        global _active
        with _active_guard:
            if _active is not None and _active is not self:
                raise SchedulerError("a scheduler is already running in this process")
            _active = self

    def close(self) -> None:
        """Stop taking runs and close the HTTP client."""
        global _active
        with _active_guard:
            if _active is self:
                _active = None
        if self._own_http and self._http is not None:
            self._http.close()
            self._http = None

    def execute(self, job_id: str, scheduled_for: datetime) -> None:
        """Run one job for its scheduled time and record how it ended."""
        job = self.by_id.get(job_id)
        if job is None:
            log.warning("job %r is not in the config: not run", job_id)
            return
        now = utcnow()
        runs = self.store.runs
        if self.stop.is_set():
            runs.note(job.id, scheduled_for, RunStatus.INTERRUPTED, "not started: stopping", now)
            return
        if job.window is not None and not window_open(job.window, job.tz, now):
            opens = next_opening(job.window, job.tz, now)
            self.defer(job, "window", opens, scheduled_for)
            detail = (
                f"outside the send window {job.window}: waits until {local_text(opens, job.tz)}"
            )
            runs.note(job.id, scheduled_for, RunStatus.WAITING, detail, now, holder=self.holder)
            log.info("job %r: %s", job.id, detail)
            return
        run_id = runs.start(job.id, scheduled_for, now, self.holder)
        log.info("job %r: running (due %s)", job.id, local_text(scheduled_for, job.tz))
        try:
            outcome = self._gather() if job.job == "gather" else self._digest(job)
        except NewsletterError as exc:
            outcome = RunOutcome(RunStatus.FAILED, str(exc))
        except Exception as exc:  # a bug in one run must not stop the scheduler
            log.exception("job %r crashed", job.id)
            outcome = RunOutcome(RunStatus.FAILED, f"unexpected {type(exc).__name__}: {exc}")
        if outcome.continue_at is not None:
            self.defer(job, "continue", outcome.continue_at, scheduled_for)
        runs.finish(run_id, outcome.status, outcome.detail, utcnow())
        level = logging.ERROR if outcome.status is RunStatus.FAILED else logging.INFO
        log.log(level, "job %r: %s: %s", job.id, outcome.status.value, outcome.detail)

    @property
    def http(self) -> GuardedClient:
        """The HTTP client of this process's gathers (one pool for all of them)."""
        if self._http is None:
            self._http = default_client(self.settings.gather)
        return self._http

    def _gather(self) -> RunOutcome:
        return gather_outcome(gather(self.settings, self.store, client=self.http, stop=self.stop))

    def _digest(self, job: ScheduleJob) -> RunOutcome:
        report = run_digest(
            self.settings,
            store=self.store,
            segments=[job.segment] if job.segment else None,
            stop=self.stop,
            client=self.http,
        )
        return digest_outcome(self.settings, report, utcnow())
