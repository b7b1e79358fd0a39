"""Reports in the desk: what happened to each edition, in pictures (server-side SVG).

``/desk/reports`` shows a segment's delivery and bounce rates over its last editions and,
for its latest edition (or ``/desk/reports/{id}``), clicks per story per locale and
translation coverage against clicks, with the per-locale figures as a table. The charts
come from :mod:`newsletter.web.engagement_page`; no script runs (the desk's CSP forbids it).
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from newsletter.errors import EditionError
from newsletter.reports import edition_report
from newsletter.web.common import path_id
from newsletter.web.desk.core import NavEntry, Visit, guarded
from newsletter.web.engagement_page import charts
from newsletter.web.pages import N_

NAV = (NavEntry(N_("Reports"), "/reports", "editor", 45),)
TEMPLATES = ("desk/reports.html",)

#: the charts' labels, translated in the desk language (engagement_page takes them as msgids)
LABELS = (
    N_("Delivery and bounce rates over the last editions"),
    N_("delivered"),
    N_("bounced"),
    N_("Readers who clicked, per story and language"),
    N_("Translation coverage and clicks per language"),
    N_("stories in the language"),
    N_("readers who clicked"),
)


async def _show(visit: Visit, edition_id: int | None) -> Response:
    settings, store = visit.ctx.settings, visit.ctx.store
    segments = [s.name for s in settings.segments]
    segment = visit.request.query_params.get("segment", "")
    if edition_id is not None:
        try:
            segment = (await run_in_threadpool(store.editions.get, edition_id)).segment
        except EditionError:
            return visit.error(404, N_("There is nothing at this address."))
    if segment not in segments:
        segment = segments[0] if segments else ""
    found = report = None
    if segment:
        found = await run_in_threadpool(
            lambda: charts(settings, store, segment, edition_id=edition_id, translate=visit._)
        )
        latest = edition_id
        if latest is None:
            shown = await run_in_threadpool(lambda: store.editions.list(segment=segment, limit=1))
            latest = shown[0].id if shown else None
        if latest is not None:
            report = await run_in_threadpool(edition_report, settings, store, latest)
    return visit.page(
        "desk/reports.html", segments=segments, segment=segment, charts=found, report=report
    )


@guarded("editor")
async def reports(visit: Visit) -> Response:
    """A segment's trend and its latest edition."""
    return await _show(visit, None)


@guarded("editor")
async def report(visit: Visit) -> Response:
    """One edition's report."""
    edition_id = path_id(str(visit.request.path_params["edition_id"]))
    if edition_id is None:
        return visit.error(404, N_("There is nothing at this address."))
    return await _show(visit, edition_id)


def routes() -> list[BaseRoute]:
    """The report pages."""
    return [
        Route("/reports", reports, methods=["GET", "HEAD"]),
        Route("/reports/{edition_id:int}", report, methods=["GET", "HEAD"]),
    ]
