"""Subscribers in the desk (editors): search, one person's page (lists, locale, status,
consents, event history, deliveries), add and change, unsubscribe, erase after a
confirmation step, CSV import by upload (the row-level report of ``subscribers import``)
and export. Every change is in the audit log, and in the person's own event history."""

from __future__ import annotations

import io
import logging
import tempfile
from pathlib import Path
from typing import Final

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from newsletter.errors import NewsletterError
from newsletter.models import NewSubscriber, Subscriber, SubscriberStatus
from newsletter.web.common import path_id
from newsletter.web.desk.core import NavEntry, Visit, guarded, notice_code
from newsletter.web.pages import N_

log = logging.getLogger("newsletter.web.desk")

NAV = (NavEntry(N_("Subscribers"), "/subscribers", "editor", 50),)
TEMPLATES = ("desk/subscribers.html", "desk/subscriber.html", "desk/erase.html")

#: at most this many search hits are listed
SHOWN: Final = 100
#: a CSV upload larger than this is refused (the rest of the desk keeps [web] max_body_bytes)
MAX_UPLOAD: Final = 5 * 1024 * 1024
#: the path exempt from the app-wide body limit (it checks MAX_UPLOAD itself)
IMPORT_PATH: Final = "/desk/subscribers/import"

DONE = {
    "added": notice_code("sub-added", N_("The subscriber is added.")),
    "saved": notice_code("sub-saved", N_("The changes are saved.")),
    "unsubscribed": notice_code("sub-unsubscribed", N_("The subscriber is unsubscribed.")),
    "erased": notice_code(
        "sub-erased", N_("The subscriber is erased and their address suppressed.")
    ),
}


def _search(visit: Visit, query: str, status: str) -> list[Subscriber]:
    wanted = SubscriberStatus(status) if status in SubscriberStatus.__members__.values() else None
    needle = query.casefold()
    found = []
    for sub in visit.ctx.store.subscribers.iter(status=wanted):
        if (
            not needle
            or needle in sub.email
            or needle in sub.name.casefold()
            or needle in sub.organisation.casefold()
        ):
            found.append(sub)
            if len(found) >= SHOWN:
                break
    return found


@guarded("editor")
async def subscriber_list(visit: Visit) -> Response:
    """GET /desk/subscribers?q=&status=."""
    query = visit.request.query_params.get("q", "")[:200].strip()
    status = visit.request.query_params.get("status", "")
    found = await run_in_threadpool(_search, visit, query, status)
    return visit.page(
        "desk/subscribers.html",
        found=found,
        q=query,
        status_filter=status,
        statuses=list(SubscriberStatus),
        counts=visit.ctx.store.subscribers.count(),
        lists=visit.ctx.settings.lists,
        locales=visit.ctx.settings.locales.available,
        report=None,
        shown=SHOWN,
    )


def _subscriber(visit: Visit) -> Subscriber | None:
    sub_id = path_id(str(visit.request.path_params["sub_id"]))
    if sub_id is None:
        return None
    try:
        return visit.ctx.store.subscribers.get(sub_id)
    except NewsletterError:
        return None


@guarded("editor")
async def subscriber_page(visit: Visit, error: str | None = None, status: int = 200) -> Response:
    """GET /desk/subscribers/{id}."""
    sub = _subscriber(visit)
    if sub is None:
        return visit.error(404, N_("There is nothing at this address."))
    store = visit.ctx.store
    return visit.page(
        "desk/subscriber.html",
        status=status,
        sub=sub,
        consents=store.consents.for_subscriber(sub.id),
        events=store.events.for_subscriber(sub.id),
        deliveries=store.events.deliveries(sub.id),
        lists=visit.ctx.settings.lists,
        locales=visit.ctx.settings.locales.available,
        error=error,
    )


def _chosen_lists(visit: Visit) -> tuple[str, ...]:
    known = {x.name for x in visit.ctx.settings.lists}
    return tuple(sorted({x for x in visit.form.get("lists", []) if x in known}))


@guarded("editor")
async def subscriber_add(visit: Visit) -> Response:
    """POST /desk/subscribers: one person, active, consent recorded as given to this user."""
    from newsletter.audience.subscribers import normalize_email
    from newsletter.textclean import clean_subscriber

    now = visit.now()
    locale = visit.field("locale")
    if locale not in visit.ctx.settings.locales.available:
        locale = visit.ctx.settings.locales.default
    try:
        new = clean_subscriber(
            NewSubscriber(
                email=normalize_email(visit.field("email")),
                name=visit.field("name")[:300],
                locale=locale,
                organisation=visit.field("organisation")[:300],
                lists=_chosen_lists(visit),
                consent_at=now,
                consent_source=f"desk:{visit.actor}"[:300],
            )
        )
        sub = visit.ctx.store.subscribers.add(new, now)
    except NewsletterError as exc:
        return visit.page("desk/message.html", status=400, message=str(exc))
    visit.audit(
        "subscriber.add", f"subscriber:{sub.id}", lists=",".join(sub.lists), locale=sub.locale
    )
    return visit.redirect(f"/subscribers/{sub.id}", DONE["added"])


@guarded("editor")
async def subscriber_change(visit: Visit) -> Response:
    """POST /desk/subscribers/{id}: name, locale, lists."""
    sub = _subscriber(visit)
    if sub is None:
        return visit.error(404, N_("There is nothing at this address."))
    locale = visit.field("locale")
    if locale not in visit.ctx.settings.locales.available:
        return visit.error(400, N_("The request could not be understood."))
    from newsletter.textclean import clean_text

    changes = {
        "name": clean_text(visit.field("name"))[:300],
        "locale": locale,
        "lists": _chosen_lists(visit),
    }
    visit.ctx.store.subscribers.update(sub.id, visit.now(), **changes)
    visit.ctx.store.events.record(
        sub.id, "preferences", source=f"desk:{visit.actor}", now=visit.now()
    )
    visit.audit(
        "subscriber.change", f"subscriber:{sub.id}", locale=locale, lists=",".join(changes["lists"])
    )
    return visit.redirect(f"/subscribers/{sub.id}", DONE["saved"])


@guarded("editor")
async def subscriber_unsubscribe(visit: Visit) -> Response:
    """POST /desk/subscribers/{id}/unsubscribe."""
    sub = _subscriber(visit)
    if sub is None:
        return visit.error(404, N_("There is nothing at this address."))
    now = visit.now()
    visit.ctx.store.subscribers.set_status(
        sub.email, SubscriberStatus.UNSUBSCRIBED, source=f"desk:{visit.actor}", now=now
    )
    visit.ctx.store.events.record(sub.id, "unsubscribed", source=f"desk:{visit.actor}", now=now)
    visit.audit("subscriber.unsubscribe", f"subscriber:{sub.id}")
    return visit.redirect(f"/subscribers/{sub.id}", DONE["unsubscribed"])


@guarded("editor")
async def erase_confirm(visit: Visit) -> Response:
    """GET /desk/subscribers/{id}/erase: the confirmation step."""
    sub = _subscriber(visit)
    if sub is None:
        return visit.error(404, N_("There is nothing at this address."))
    return visit.page("desk/erase.html", sub=sub, error=None)


@guarded("editor")
async def erase(visit: Visit) -> Response:
    """POST /desk/subscribers/{id}/erase: only with the address typed again."""
    from newsletter.audience.privacy import erase_subscriber

    sub = _subscriber(visit)
    if sub is None:
        return visit.error(404, N_("There is nothing at this address."))
    if visit.field("confirm").lower() != sub.email:
        return visit.page(
            "desk/erase.html",
            status=400,
            sub=sub,
            error=visit._("Type the address exactly to erase."),
        )
    erase_subscriber(visit.ctx.store, sub.id, source=f"desk:{visit.actor}", now=visit.now())
    # the audit entry names the record, not the person: they asked to be forgotten
    visit.audit("subscriber.erase", f"subscriber:{sub.id}")
    return visit.redirect("/subscribers", DONE["erased"])


@guarded("editor")
async def export(visit: Visit) -> Response:
    """GET /desk/subscribers/export.csv: every subscriber, the import's columns."""
    from newsletter.audience.subscribers import export_csv

    buf = io.StringIO()
    n = await run_in_threadpool(export_csv, visit.ctx.store.subscribers.iter(), buf)
    visit.audit("subscriber.export", "subscribers", rows=n)
    return Response(
        buf.getvalue().encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="subscribers.csv"'},
    )


async def import_upload(request: Request) -> Response:
    """POST /desk/subscribers/import: a CSV file (multipart), imported like the command.

    The app-wide body limit does not apply to this path; a declared length over
    :data:`MAX_UPLOAD` (or none: a chunked body) is refused here, before anything is read.
    """
    length = request.headers.get("content-length", "")
    if not length.isdigit() or int(length) > MAX_UPLOAD:
        from newsletter.web.common import error_page

        return error_page(request, 413)
    return await _import(request)


@guarded("editor", upload=True)
async def _import(visit: Visit) -> Response:
    from newsletter.audience.subscribers import import_csv

    name, data = visit.upload or ("upload.csv", b"")
    list_name = visit.field("list") or None
    if list_name is not None and list_name not in {x.name for x in visit.ctx.settings.lists}:
        return visit.error(400, N_("The request could not be understood."))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "upload.csv"
        path.write_bytes(data)
        try:
            report = await run_in_threadpool(
                lambda: import_csv(
                    visit.ctx.store,
                    path,
                    list_name=list_name,
                    default_locale=visit.ctx.settings.locales.default,
                    now=visit.now(),
                    hint="the file's encoding (save it as UTF-8)",
                )
            )
        except NewsletterError as exc:
            return visit.page(
                "desk/message.html",
                status=400,
                message=f"{name}: {str(exc).replace(str(path), name)}",
            )
    visit.audit(
        "subscriber.import",
        f"file:{name}"[:500],
        added=report.added,
        updated=report.updated,
        errors=len(report.errors),
    )
    return visit.page(
        "desk/subscribers.html",
        found=[],
        q="",
        status_filter="",
        statuses=list(SubscriberStatus),
        counts=visit.ctx.store.subscribers.count(),
        lists=visit.ctx.settings.lists,
        locales=visit.ctx.settings.locales.available,
        report=report,
        report_name=name,
        shown=SHOWN,
    )


def routes() -> list[BaseRoute]:
    """The subscriber pages."""
    return [
        Route("/subscribers", subscriber_list, methods=["GET", "HEAD"]),
        Route("/subscribers", subscriber_add, methods=["POST"]),
        Route("/subscribers/export.csv", export, methods=["GET"]),
        Route("/subscribers/import", import_upload, methods=["POST"]),
        Route("/subscribers/{sub_id}", subscriber_page, methods=["GET", "HEAD"]),
        Route("/subscribers/{sub_id}", subscriber_change, methods=["POST"]),
        Route("/subscribers/{sub_id}/unsubscribe", subscriber_unsubscribe, methods=["POST"]),
        Route("/subscribers/{sub_id}/erase", erase_confirm, methods=["GET", "HEAD"]),
        Route("/subscribers/{sub_id}/erase", erase, methods=["POST"]),
    ]
