"""Editions in the desk: the list, one edition's per-locale counts and live progress, and
the operator's buttons (pause, resume, cancel; approve; resend unknown rows for admins).

Resuming and approving send in the app, in a background thread, with the machinery of
``newsletter editions resume`` (:func:`~newsletter.send.worker.resume_edition`); workers
running elsewhere share the rows safely (claims with leases).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from newsletter.errors import NewsletterError
from newsletter.models import DeliveryStatus, EditionStatus
from newsletter.web.common import path_id
from newsletter.web.desk.core import NavEntry, Visit, guarded, notice_code
from newsletter.web.pages import N_

log = logging.getLogger("newsletter.web.desk")

NAV = (NavEntry(N_("Editions"), "/editions", "editor", 40),)
TEMPLATES = ("desk/editions.html", "desk/edition.html")

FINAL = (DeliveryStatus.SENT, DeliveryStatus.FAILED, DeliveryStatus.SKIPPED, DeliveryStatus.UNKNOWN)

DONE = {
    "paused": notice_code("paused", N_("The edition is paused.")),
    "resumed": notice_code("resumed", N_("Sending has started again.")),
    "cancelled": notice_code("cancelled", N_("The edition is cancelled.")),
    "approved": notice_code("approved", N_("The edition is approved.")),
    "resend": notice_code("resend", N_("The rows whose outcome was unknown are being sent again.")),
}


def progress_of(counts: dict[DeliveryStatus, int]) -> dict[str, int]:
    """``done`` (final rows), ``total``, ``percent`` of an edition's counts."""
    total = sum(counts.values())
    done = sum(counts.get(s, 0) for s in FINAL)
    return {"done": done, "total": total, "percent": round(100 * done / total) if total else 0}


def send_in_background(visit: Visit, edition_id: int, *, resend_unknown: bool = False) -> None:
    """Send ``edition_id`` in a thread of this app (as ``editions resume`` would)."""
    from newsletter.send.worker import resume_edition

    settings, store, clock = visit.ctx.settings, visit.ctx.store, visit.ctx.clock

    def run() -> None:
        try:
            resume_edition(
                settings, edition_id, store=store, resend_unknown=resend_unknown, clock=clock
            )
        except NewsletterError as exc:
            log.info("desk send of edition %d: %s", edition_id, exc)

    visit.ctx.background.submit(f"sending edition {edition_id}", lambda: asyncio.to_thread(run))


@guarded("editor")
async def edition_list(visit: Visit) -> Response:
    """GET /desk/editions."""
    store = visit.ctx.store
    rows = []
    for edition in store.editions.list(limit=100):
        rows.append((edition, progress_of(store.deliveries.counts(edition.id))))
    live = any(e.status in (EditionStatus.SENDING,) for e, _p in rows)
    return visit.page(
        "desk/editions.html",
        rows=rows,
        refresh=visit.ctx.settings.desk.progress_refresh_seconds if live else None,
    )


def _edition_id(visit: Visit) -> int | None:
    return path_id(str(visit.request.path_params["edition_id"]))


@guarded("editor")
async def edition_detail(visit: Visit) -> Response:
    """GET /desk/editions/{id}: counts per locale and status, buttons."""
    from newsletter.send.control import edition_report

    edition_id = _edition_id(visit)
    if edition_id is None:
        return visit.error(404, N_("There is nothing at this address."))
    try:
        report = edition_report(visit.ctx.settings, visit.ctx.store, edition_id, visit.now())
    except NewsletterError:
        return visit.error(404, N_("There is nothing at this address."))
    status = report.edition.status
    return visit.page(
        "desk/edition.html",
        report=report,
        edition=report.edition,
        progress=progress_of(report.counts),
        statuses=[s for s in DeliveryStatus],
        approval=_approval(visit, edition_id),
        refresh=visit.ctx.settings.desk.progress_refresh_seconds
        if status in (EditionStatus.SENDING, EditionStatus.PLANNED)
        else None,
    )


def _approval(visit: Visit, edition_id: int) -> Any:
    from newsletter.digest.approval import approval_of

    try:
        return approval_of(visit.ctx.settings, visit.ctx.store, edition_id, now=visit.now())
    except NewsletterError:
        return None


@guarded("editor")
async def edition_progress(visit: Visit) -> Response:
    """GET /desk/editions/{id}/progress.json: for a small poll, if one is wanted."""
    edition_id = _edition_id(visit)
    if edition_id is None:
        return JSONResponse({"error": "not found"}, status_code=404)
    try:
        edition = visit.ctx.store.editions.get(edition_id)
    except NewsletterError:
        return JSONResponse({"error": "not found"}, status_code=404)
    counts = visit.ctx.store.deliveries.counts(edition_id)
    return JSONResponse(
        {
            "id": edition.id,
            "status": str(edition.status),
            **progress_of(counts),
            "counts": {str(k): v for k, v in counts.items()},
        }
    )


async def _act(visit: Visit, action: str) -> Response:
    from newsletter.send.control import cancel_edition, pause_edition

    edition_id = _edition_id(visit)
    if edition_id is None:
        return visit.error(404, N_("There is nothing at this address."))
    store, now = visit.ctx.store, visit.now()
    try:
        store.editions.get(edition_id)
        if action == "pause":
            pause_edition(store, edition_id, now)
        elif action == "cancel":
            cancel_edition(store, edition_id, now)
        elif action == "resume":
            status = store.editions.status(edition_id)
            if status not in (EditionStatus.PAUSED, EditionStatus.SENDING, EditionStatus.PLANNED):
                return visit.error(409, N_("This edition cannot be resumed now."))
            send_in_background(visit, edition_id)
        elif action == "resend":
            send_in_background(visit, edition_id, resend_unknown=True)
        elif action == "approve":
            from newsletter.digest.approval import approve_edition

            change, approval = approve_edition(
                visit.ctx.settings, store, edition_id, actor=visit.actor, now=now
            )
            visit.audit_change(change)
            if approval.status is EditionStatus.SENDING:
                send_in_background(visit, edition_id)
            return visit.redirect(f"/editions/{edition_id}", DONE["approved"])
    except NewsletterError as exc:
        return visit.page("desk/message.html", status=409, message=str(exc))
    visit.audit(f"edition.{action}", f"edition:{edition_id}")
    return visit.redirect(
        f"/editions/{edition_id}",
        DONE[
            {"pause": "paused", "cancel": "cancelled", "resume": "resumed", "resend": "resend"}[
                action
            ]
        ],
    )


@guarded("editor")
async def pause(visit: Visit) -> Response:
    """POST /desk/editions/{id}/pause."""
    return await _act(visit, "pause")


@guarded("editor")
async def resume(visit: Visit) -> Response:
    """POST /desk/editions/{id}/resume."""
    return await _act(visit, "resume")


@guarded("editor")
async def cancel(visit: Visit) -> Response:
    """POST /desk/editions/{id}/cancel."""
    return await _act(visit, "cancel")


@guarded("editor")
async def approve(visit: Visit) -> Response:
    """POST /desk/editions/{id}/approve (editors and admins; never translators)."""
    return await _act(visit, "approve")


@guarded("admin")
async def resend_unknown(visit: Visit) -> Response:
    """POST /desk/editions/{id}/resend-unknown: admins only (readers may get it twice)."""
    return await _act(visit, "resend")


def routes() -> list[BaseRoute]:
    """The edition pages."""
    return [
        Route("/editions", edition_list, methods=["GET", "HEAD"]),
        Route("/editions/{edition_id}", edition_detail, methods=["GET", "HEAD"]),
        Route("/editions/{edition_id}/progress.json", edition_progress, methods=["GET"]),
        Route("/editions/{edition_id}/pause", pause, methods=["POST"]),
        Route("/editions/{edition_id}/resume", resume, methods=["POST"]),
        Route("/editions/{edition_id}/cancel", cancel, methods=["POST"]),
        Route("/editions/{edition_id}/approve", approve, methods=["POST"]),
        Route("/editions/{edition_id}/resend-unknown", resend_unknown, methods=["POST"]),
    ]
