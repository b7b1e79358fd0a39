"""Admins manage desk accounts in the desk: list, add, change role or locales, set a new
password, remove. Everything goes through :mod:`newsletter.web.desk.users`, which writes
the audit log."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from newsletter.errors import NewsletterError
from newsletter.web.desk import users
from newsletter.web.desk.core import NavEntry, Visit, guarded, notice_code
from newsletter.web.pages import N_

NAV = (NavEntry(N_("Users"), "/users", "admin", 80),)
TEMPLATES = ("desk/users.html",)

DONE = {
    "added": notice_code("user-added", N_("The account is added.")),
    "changed": notice_code("user-changed", N_("The account is changed.")),
    "password": notice_code("user-password", N_("The new password is set.")),
    "removed": notice_code("user-removed", N_("The account is removed.")),
}


def _page(visit: Visit, status: int = 200, error: str | None = None) -> Response:
    return visit.page(
        "desk/users.html",
        status=status,
        accounts=visit.ctx.store.desk.users(),
        roles=users.ROLES,
        locales=visit.ctx.settings.locales.available,
        error=error,
    )


@guarded("admin")
async def user_list(visit: Visit) -> Response:
    """GET /desk/users."""
    return _page(visit)


@guarded("admin")
async def user_add(visit: Visit) -> Response:
    """POST /desk/users: a new account."""
    try:
        locales = users.parse_locales(
            visit.form.get("locales", []), visit.ctx.settings.locales.available
        )
        await run_in_threadpool(
            users.add_user,
            visit.ctx.store,
            visit.field("email"),
            visit.field("role"),
            visit.form.get("password", [""])[0],
            locales=locales,
            actor=visit.actor,
            now=visit.now(),
        )
    except NewsletterError as exc:
        return _page(visit, 400, str(exc))
    return visit.redirect("/users", DONE["added"])


@guarded("admin")
async def user_change(visit: Visit) -> Response:
    """POST /desk/users/change: role and locales of one account."""
    try:
        locales = users.parse_locales(
            visit.form.get("locales", []), visit.ctx.settings.locales.available
        )
        target = users.get_user(visit.ctx.store, visit.field("email"))
        if target.id == visit.user.id and visit.field("role") != "admin":
            raise NewsletterError("you cannot take the admin role from yourself")
        users.change_user(
            visit.ctx.store,
            target.email,
            role=visit.field("role"),
            locales=locales,
            actor=visit.actor,
            now=visit.now(),
        )
    except NewsletterError as exc:
        return _page(visit, 400, str(exc))
    return visit.redirect("/users", DONE["changed"])


@guarded("admin")
async def user_password(visit: Visit) -> Response:
    """POST /desk/users/password: a new password for one account."""
    try:
        await run_in_threadpool(
            users.reset_password,
            visit.ctx.store,
            visit.field("email"),
            visit.form.get("password", [""])[0],
            actor=visit.actor,
            now=visit.now(),
        )
    except NewsletterError as exc:
        return _page(visit, 400, str(exc))
    return visit.redirect("/users", DONE["password"])


@guarded("admin")
async def user_remove(visit: Visit) -> Response:
    """POST /desk/users/remove."""
    try:
        target = users.get_user(visit.ctx.store, visit.field("email"))
        if target.id == visit.user.id:
            raise NewsletterError("you cannot remove your own account")
        users.remove_user(visit.ctx.store, target.email, actor=visit.actor, now=visit.now())
    except NewsletterError as exc:
        return _page(visit, 400, str(exc))
    return visit.redirect("/users", DONE["removed"])


def routes() -> list[BaseRoute]:
    """The user management pages."""
    return [
        Route("/users", user_list, methods=["GET", "HEAD"]),
        Route("/users", user_add, methods=["POST"]),
        Route("/users/change", user_change, methods=["POST"]),
        Route("/users/password", user_password, methods=["POST"]),
        Route("/users/remove", user_remove, methods=["POST"]),
    ]
