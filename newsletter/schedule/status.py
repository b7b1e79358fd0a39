"""``newsletter status``: is the scheduler alive, what was gathered and sent, what needs a look.

Read-only: everything comes from the store (the lock, the record of runs, source state,
editions and their delivery rows) and the job store, so it works whether or not the
scheduler is running, from any machine that reaches the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from newsletter.config import Settings
from newsletter.models import DeliveryStatus, Edition, EditionStatus
from newsletter.redact import mask_text
from newsletter.schedule.triggers import LOCK_NAME, JobView, list_jobs, span_text
from newsletter.store import Store

__all__ = ["Health", "SchedulerState", "SegmentState", "SourceHealth", "health", "scheduler_state"]

#: how many recent editions are checked for unknown, failed or unfinished rows
RECENT_EDITIONS = 50


@dataclass(frozen=True)
class SchedulerState:
    """Who holds the scheduler lock, and whether they are alive."""

    alive: bool
    holder: str | None
    heartbeat_at: datetime | None
    expires_at: datetime | None
    #: one line for people
    text: str


@dataclass(frozen=True)
class SourceHealth:
    """The last gather of one source."""

    name: str
    last_gathered_at: datetime | None
    error: str | None
    count: int | None
    configured: bool


@dataclass(frozen=True)
class SegmentState:
    """The newest edition of one segment and its delivery counts."""

    segment: str
    edition: Edition | None
    counts: dict[DeliveryStatus, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Health:
    """Everything ``newsletter status`` prints."""

    scheduler: SchedulerState
    jobs: list[JobView]
    sources: list[SourceHealth]
    segments: list[SegmentState]
    problems: list[str]

    @property
    def ok(self) -> bool:
        """True when nothing needs an operator's attention."""
        return not self.problems


def scheduler_state(store: Store, now: datetime) -> SchedulerState:
    """The scheduler lock as seen at ``now``."""
    lock = store.locks.get(LOCK_NAME)
    if lock is None:
        return SchedulerState(False, None, None, None, "not running")
    beat = f"last heartbeat {span_text(now - lock.heartbeat_at)} ago"
    if lock.alive(now):
        return SchedulerState(
            True,
            lock.holder,
            lock.heartbeat_at,
            lock.expires_at,
            f"running ({lock.holder}, {beat})",
        )
    return SchedulerState(
        False,
        lock.holder,
        lock.heartbeat_at,
        lock.expires_at,
        f"not running: {lock.holder} stopped without releasing its lock ({beat}; crashed?)",
    )


def _sources(settings: Settings, store: Store) -> list[SourceHealth]:
    seen = {s.source: s for s in store.items.states()}
    out = []
    for config in settings.sources:
        st = seen.pop(config.name, None)
        out.append(
            SourceHealth(
                config.name,
                st.last_gathered_at if st else None,
                _masked(st.last_error) if st else None,
                st.last_count if st else None,
                configured=True,
            )
        )
    for name, st in sorted(seen.items()):
        out.append(
            SourceHealth(
                name, st.last_gathered_at, _masked(st.last_error), st.last_count, configured=False
            )
        )
    return out


def _masked(error: str | None) -> str | None:
    # errors stored before URLs were masked at gather time may still hold credentials
    return mask_text(error) if error else error


def _edition_problems(store: Store, edition: Edition, newest: bool) -> list[str]:
    counts = store.deliveries.counts(edition.id)
    label = f"edition {edition.id} ({edition.segment} {edition.period})"
    out = []
    if counts.get(DeliveryStatus.UNKNOWN):
        out.append(
            f"{label}: {counts[DeliveryStatus.UNKNOWN]} delivery(ies) unknown (a sender died "
            f"mid-batch): see `newsletter editions show {edition.id}`"
        )
    if counts.get(DeliveryStatus.FAILED):
        out.append(f"{label}: {counts[DeliveryStatus.FAILED]} delivery(ies) failed")
    unfinished = edition.status in (EditionStatus.PLANNED, EditionStatus.SENDING)
    if unfinished and not newest:
        out.append(f"{label}: still {edition.status.value} while a newer edition exists")
    if edition.status is EditionStatus.PAUSED:
        out.append(f"{label}: paused")
    if edition.status is EditionStatus.AWAITING_APPROVAL:
        out.append(
            f"{label}: awaiting approval (`newsletter editions approve {edition.id}` or the desk)"
        )
    return out


def health(settings: Settings, store: Store, now: datetime) -> Health:
    """The health summary at ``now``."""
    sched = scheduler_state(store, now)
    jobs = list_jobs(settings, store, now, scheduler_alive=sched.alive)
    problems = []
    if settings.schedule and not sched.alive:
        problems.append(f"scheduler {sched.text}")
    problems += [f"job {j.id}: {j.state}" for j in jobs if j.problem]
    sources = _sources(settings, store)
    for src in sources:
        if src.error:
            problems.append(f"source {src.name}: {src.error}")
        elif src.configured and src.last_gathered_at is None:
            problems.append(f"source {src.name}: never gathered")
    segments = []
    for seg in settings.segments:
        newest = store.editions.list(segment=seg.name, limit=1)
        edition = newest[0] if newest else None
        counts = store.deliveries.counts(edition.id) if edition else {}
        segments.append(SegmentState(seg.name, edition, counts))
    newest_ids = {s.edition.id for s in segments if s.edition}
    for edition in store.editions.list(limit=RECENT_EDITIONS):
        problems += _edition_problems(store, edition, edition.id in newest_ids)
    return Health(sched, jobs, sources, segments, problems)
