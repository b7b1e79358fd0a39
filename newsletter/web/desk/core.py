"""What every desk page shares: the desk's own context, the role check, the guarded
handler decorator (session, role, CSRF), page rendering and redirects.

A handler is ``async def handler(visit: Visit) -> Response`` decorated with
``@guarded("editor")`` (or ``"admin"``, ``"translator"``): it runs only for a logged-in
user whose role allows it, and for a POST only once the form's CSRF token (bound to the
session) holds; ``visit.form`` is the posted form then.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Protocol
from urllib.parse import quote, urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from newsletter.config import Settings
from newsletter.render import i18n
from newsletter.store import Store
from newsletter.store.desk import DeskUser
from newsletter.web.common import Form, first, log_path, read_form
from newsletter.web.context import WebContext, context_of
from newsletter.web.csrf import FIELD
from newsletter.web.desk.sessions import Session, Sessions
from newsletter.web.hostile import has_control
from newsletter.web.pages import N_

log = logging.getLogger("newsletter.web.desk")

#: the cookie remembering the desk language a user picked with ``?lang=``
LANG_COOKIE: Final = "nl_desk_lang"

#: which roles pass a guard asking for a role
ALLOWED: Final[Mapping[str, frozenset[str]]] = {
    "translator": frozenset({"admin", "editor", "translator"}),
    "editor": frozenset({"admin", "editor"}),
    "admin": frozenset({"admin"}),
}


def can(user: DeskUser, need: str) -> bool:
    """Whether ``user``'s role allows what needs ``need``."""
    return user.role in ALLOWED[need]


def can_translate(user: DeskUser, locale: str) -> bool:
    """Whether ``user`` may write or review versions in ``locale``."""
    return can(user, "editor") or (user.role == "translator" and locale in user.locales)


@dataclass(frozen=True)
class NavEntry:
    """A link of the desk's navigation: ``label`` is a msgid, ``path`` below ``/desk``."""

    label: str
    path: str
    need: str = "editor"
    order: int = 50


@dataclass
class Desk:
    """The desk of one app: sessions, navigation, background sending."""

    settings: Settings
    store: Store
    sessions: Sessions
    nav: list[NavEntry] = field(default_factory=list)


class Handler(Protocol):
    def __call__(self, visit: Visit) -> Awaitable[Response]: ...


def desk_of(request: Request) -> Desk:
    """The app's desk."""
    desk = request.app.state.desk
    assert isinstance(desk, Desk)
    return desk


def desk_locale(request: Request) -> str:
    """The desk language: ``?lang=``, else the remembered pick, else the browser's."""
    ctx = context_of(request)
    asked = request.query_params.get("lang", "")
    if asked in ctx.pages.locales:
        return asked
    kept = request.cookies.get(LANG_COOKIE, "")
    if kept in ctx.pages.locales:
        return kept
    return ctx.pages.negotiate(request)


def href(request: Request, path: str, **query: str | int) -> str:
    """A root-relative URL of a desk path (``/`` is the dashboard)."""
    ctx = context_of(request)
    url = ctx.href("/desk" + path)
    if query:
        url += ("&" if "?" in url else "?") + urlencode({k: str(v) for k, v in query.items()})
    return url


def render(
    request: Request, locale: str, template: str, status: int = 200, **values: Any
) -> HTMLResponse:
    """A desk page in ``locale`` (``desk/...`` templates; ``user`` may be in ``values``)."""
    ctx = context_of(request)
    desk = desk_of(request)
    user = values.get("user")
    nav = []
    if isinstance(user, DeskUser):
        for entry in sorted(desk.nav, key=lambda e: (e.order, e.path)):
            if can(user, entry.need):
                nav.append(
                    (ctx.pages.gettext(locale, entry.label), href(request, entry.path), entry.path)
                )
    here = request.url.path
    root = href(request, "")
    values.setdefault("notice", _notice(request, locale))
    response = ctx.pages.page(
        request,
        locale,
        template,
        status=status,
        nav=nav,
        desk_root=root,
        here=here,
        desk_href=lambda path, **q: href(request, path, **q),
        # a language named in the desk's language, for running text ("the German version")
        ui_language=lambda code: i18n.language_name(code, locale),
        **values,
    )
    asked = request.query_params.get("lang", "")
    if asked in ctx.pages.locales:
        response.set_cookie(
            LANG_COOKIE, asked, path=urlsplit(root).path or "/desk", httponly=True, samesite="lax"
        )
    return response


#: short codes a redirect carries in ``?done=``, shown as a notice on the next page
NOTICES: Final[Mapping[str, str]] = {}


def _notice(request: Request, locale: str) -> str | None:
    code = request.query_params.get("done", "")
    msgid = NOTICES.get(code)
    return context_of(request).pages.gettext(locale, msgid) if msgid else None


def notice_code(code: str, msgid: str) -> str:
    """Register a notice shown after a redirect with ``?done=code``; returns ``code``."""
    assert isinstance(NOTICES, dict)
    NOTICES[code] = msgid
    return code


@dataclass
class Visit:
    """One guarded request: who, in which language, and the posted form."""

    request: Request
    ctx: WebContext
    desk: Desk
    session: Session
    locale: str
    form: Form = field(default_factory=dict)
    #: the uploaded file of a form posted to an ``upload=True`` handler: (name, bytes)
    upload: tuple[str, bytes] | None = None

    @property
    def user(self) -> DeskUser:
        """The logged-in user."""
        return self.session.user

    @property
    def actor(self) -> str:
        """The audit log's name of the user."""
        return self.session.user.email

    def now(self) -> datetime:
        """The app's clock."""
        return self.ctx.clock()

    def csrf(self) -> str:
        """The CSRF token of this session's forms."""
        return self.ctx.csrf.issue(f"desk:{self.session.key}", self.user.id)

    def field(self, name: str, default: str = "") -> str:
        """One posted value (stripped)."""
        return first(self.form, name, default).strip()

    def page(self, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        """A desk page in the visit's language."""
        return render(
            self.request,
            self.locale,
            template,
            status=status,
            user=self.user,
            csrf_token=self.csrf(),
            **values,
        )

    def redirect(self, path: str, done: str | None = None, **query: str | int) -> Response:
        """303 to a desk path (after a POST), with a notice code."""
        if done:
            query["done"] = done
        return RedirectResponse(href(self.request, path, **query), status_code=303)

    def _(self, message: str, **values: Any) -> str:
        """``message`` in the visit's language."""
        return self.ctx.pages.gettext(self.locale, message, **values)

    def audit(self, action: str, target: str, **detail: Any) -> None:
        """Record a change by this user."""
        self.desk.store.desk.audit(self.actor, action, target, self.now(), detail)

    def audit_change(self, change: Any) -> None:
        """Record an editorial ``Change`` (actor, action, target, at, detail)."""
        self.desk.store.desk.audit(
            change.actor, change.action, change.target, change.at, dict(change.detail)
        )

    def error(self, status: int, message: str, **values: Any) -> HTMLResponse:
        """A desk page with one message (a msgid) and ``status``."""
        return self.page("desk/message.html", status=status, message=self._(message, **values))


def login_url(request: Request) -> str:
    """The login page, coming back to this page afterwards."""
    target = request.url.path
    if request.url.query:
        target += "?" + request.url.query
    return href(request, "/login") + "?next=" + quote(target, safe="")


async def _read_upload(request: Request) -> tuple[Form, tuple[str, bytes] | None] | None:
    """A multipart form with (at most) one file: its fields and the file, or None."""
    try:
        form = await request.form(max_files=1, max_fields=50)
    except Exception as exc:  # python-multipart raises several types for broken bodies
        log.info("unreadable upload on %s: %s", log_path(request), exc)
        return None
    try:
        fields: Form = {}
        upload = None
        for key, value in form.multi_items():
            if isinstance(value, str):
                fields.setdefault(key, []).append(value)
            else:
                upload = (value.filename or "upload", await value.read())
    finally:
        await form.close()
    if any(has_control(k) or any(has_control(v) for v in vs) for k, vs in fields.items()):
        return None
    return fields, upload


def guarded(
    need: str, *, upload: bool = False
) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """Decorate a desk handler: logged in, role ``need``, CSRF on POST (``upload``: the
    form is multipart with one file, see :attr:`Visit.upload`)."""
    if need not in ALLOWED:
        raise ValueError(f"unknown role {need!r}")

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            ctx = context_of(request)
            desk = desk_of(request)
            locale = desk_locale(request)
            session = desk.sessions.current(request, ctx.clock())
            if session is None:
                if request.method in ("GET", "HEAD"):
                    return RedirectResponse(login_url(request), status_code=303)
                log.info("desk POST without a session on %s", log_path(request))
                return render(
                    request,
                    locale,
                    "desk/message.html",
                    status=403,
                    message=ctx.pages.gettext(
                        locale, N_("Your session has ended. Please log in again.")
                    ),
                    user=None,
                )
            visit = Visit(request, ctx, desk, session, locale)
            if not can(session.user, need):
                log.info(
                    "desk: %s may not %s %s", session.user.role, request.method, log_path(request)
                )
                return visit.error(403, N_("Your role does not allow this."))
            if request.method == "POST":
                form: Form | None = None
                if upload:
                    read = await _read_upload(request)
                    if read is not None:
                        form, visit.upload = read
                else:
                    form = await read_form(request)
                if form is None:
                    return visit.error(400, N_("The request could not be understood."))
                if not ctx.csrf.check(first(form, FIELD), f"desk:{session.key}", session.user.id):
                    log.info("desk CSRF check failed on %s", log_path(request))
                    return visit.error(403, N_("Please reload the page and submit the form again."))
                visit.form = form
            return await handler(visit)

        endpoint.__name__ = getattr(handler, "__name__", "desk_endpoint")
        endpoint.__doc__ = handler.__doc__
        return endpoint

    return wrap
