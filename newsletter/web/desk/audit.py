"""The audit log in the desk: who changed what, and when (admins and editors)."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from newsletter.web.desk.core import NavEntry, Visit, guarded
from newsletter.web.pages import N_

NAV = (NavEntry(N_("Audit log"), "/audit", "editor", 90),)
TEMPLATES = ("desk/audit.html",)


@guarded("editor")
async def audit_page(visit: Visit) -> Response:
    """GET /desk/audit[?actor=...]."""
    actor = visit.request.query_params.get("actor", "")[:320] or None
    entries = visit.ctx.store.desk.audit_log(limit=300, actor=actor)
    return visit.page("desk/audit.html", entries=entries, actor=actor or "")


def routes() -> list[BaseRoute]:
    """The audit page."""
    return [Route("/audit", audit_page, methods=["GET", "HEAD"])]
