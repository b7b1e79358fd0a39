"""The desk's first page: each segment's next scheduled digest (in the job's own time
zone) and what it would contain now, the last editions with live delivery progress, and
everything ``newsletter status`` would flag (:func:`newsletter.schedule.status.health`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from newsletter.errors import NewsletterError
from newsletter.models import EditionStatus
from newsletter.web.desk.core import NavEntry, Visit, guarded
from newsletter.web.desk.editions import progress_of
from newsletter.web.pages import N_

log = logging.getLogger("newsletter.web.desk")

NAV = (NavEntry(N_("Dashboard"), "/", "translator", 0),)
TEMPLATES = ("desk/dashboard.html",)


@dataclass(frozen=True)
class SegmentView:
    """One segment on the dashboard."""

    name: str
    next_run: str | None
    timezone: str | None
    plan: Any


def _segments(visit: Visit) -> tuple[list[SegmentView], list[str]]:
    """Each segment's view, and the problems ``newsletter status`` would flag."""
    from newsletter.schedule.status import health
    from newsletter.schedule.triggers import local_text

    settings, store, now = visit.ctx.settings, visit.ctx.store, visit.now()
    report = health(settings, store, now)
    jobs = {j.id: j for j in report.jobs}
    views = []
    for seg in settings.segments:
        runs = []
        for job in settings.schedule:
            if job.job == "digest" and job.segment in (seg.name, None) and job.id in jobs:
                view = jobs[job.id]
                if view.next_run is not None:
                    runs.append((view.next_run, view.timezone))
        runs.sort()
        nxt = local_text(runs[0][0], runs[0][1]) if runs else None
        views.append(
            SegmentView(seg.name, nxt, runs[0][1] if runs else None, _plan(visit, seg.name))
        )
    return views, report.problems


def _plan(visit: Visit, segment: str) -> Any:
    from newsletter.digest import editorial

    try:
        return editorial.next_edition(visit.ctx.settings, visit.ctx.store, segment, now=visit.now())
    except NewsletterError as exc:
        log.info("dashboard: next edition of %s: %s", segment, exc)
        return None


@guarded("translator")
async def dashboard(visit: Visit) -> Response:
    """GET /desk/."""
    segments, problems = await run_in_threadpool(_segments, visit)
    store = visit.ctx.store
    editions = [
        (e, progress_of(store.deliveries.counts(e.id))) for e in store.editions.list(limit=8)
    ]
    live = any(e.status is EditionStatus.SENDING for e, _p in editions)
    return visit.page(
        "desk/dashboard.html",
        segments=segments,
        problems=problems,
        editions=editions,
        refresh=visit.ctx.settings.desk.progress_refresh_seconds if live else None,
    )


def routes() -> list[BaseRoute]:
    """The dashboard."""
    return [Route("/", dashboard, methods=["GET", "HEAD"])]
