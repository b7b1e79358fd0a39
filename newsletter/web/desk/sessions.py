"""Desk sessions: a random id in a signed cookie, the session's row in the store.

The cookie (``nl_desk``) is HttpOnly, SameSite=Lax, scoped to ``/desk``, and Secure when
the request came over https (``[desk] secure_cookie``). Its value is the session id signed
with the app's secrets (a cookie not issued here is refused before the store is asked). A
session ends after ``[desk] idle_timeout_minutes`` without a request or
``absolute_timeout_hours`` after login,
whichever comes first; a login always starts a new session id (no fixation).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from itsdangerous import BadData, URLSafeSerializer
from starlette.requests import Request
from starlette.responses import Response

from newsletter.config import Settings
from newsletter.store import Store
from newsletter.store.desk import DeskUser, session_hash

COOKIE: Final = "nl_desk"


@dataclass(frozen=True)
class Session:
    """A live session: its id (from the cookie) and its user."""

    id: str
    user: DeskUser
    created_at: datetime

    @property
    def key(self) -> str:
        """A stable, non-secret name of this session (CSRF tokens are bound to it)."""
        return session_hash(self.id)[:32]


class Sessions:
    """Start, find and end desk sessions (one per app)."""

    def __init__(self, settings: Settings, store: Store, keys: Sequence[str]) -> None:
        self.settings = settings
        self.store = store
        self._serializer = URLSafeSerializer(
            list(reversed([k for k in keys if k])), salt="newsletter-desk-session"
        )
        self.idle = timedelta(minutes=settings.desk.idle_timeout_minutes)
        self.absolute = timedelta(hours=settings.desk.absolute_timeout_hours)

    def _cookie_path(self) -> str:
        from urllib.parse import urlsplit

        return urlsplit(self.settings.web.base_url).path.rstrip("/") + "/desk"

    def _secure(self, request: Request) -> bool:
        mode = self.settings.desk.secure_cookie
        if mode != "auto":
            return mode == "always"
        # the request's scheme is https behind a TLS proxy in [web] forwarded_allow_ips
        # (X-Forwarded-Proto); plain http is a local trial, where a Secure cookie is lost
        return request.url.scheme == "https"

    def start(self, request: Request, response: Response, user: DeskUser, now: datetime) -> str:
        """A new session for ``user`` (the old one of this browser, if any, ends)."""
        old = self._cookie_id(request)
        if old is not None:
            self.store.desk.end_session(old)
        session_id = secrets.token_urlsafe(32)
        self.store.desk.create_session(session_id, user.id, now)
        response.set_cookie(
            COOKIE,
            str(self._serializer.dumps(session_id)),
            path=self._cookie_path(),
            httponly=True,
            secure=self._secure(request),
            samesite="lax",
        )
        return session_id

    def _cookie_id(self, request: Request) -> str | None:
        raw = request.cookies.get(COOKIE)
        if not raw or len(raw) > 200:
            return None
        try:
            value = self._serializer.loads(raw)
        except BadData:
            return None
        return value if isinstance(value, str) else None

    def current(self, request: Request, now: datetime) -> Session | None:
        """The request's live session (its idle clock restarted), or None."""
        session_id = self._cookie_id(request)
        if session_id is None:
            return None
        row = self.store.desk.session(session_id)
        if row is None:
            return None
        if now - row.last_seen_at >= self.idle or now - row.created_at >= self.absolute:
            self.store.desk.end_session(session_id)
            return None
        user = self.store.desk.get_user(row.user_id)
        if user is None:
            return None
        self.store.desk.touch_session(session_id, now)
        return Session(session_id, user, row.created_at)

    def end(self, request: Request, response: Response) -> None:
        """Log out: forget the session and clear the cookie."""
        session_id = self._cookie_id(request)
        if session_id is not None:
            self.store.desk.end_session(session_id)
        response.delete_cookie(
            COOKIE, path=self._cookie_path(), httponly=True, secure=self._secure(request)
        )

    def purge(self, now: datetime) -> int:
        """Delete expired sessions (housekeeping)."""
        return self.store.desk.purge_sessions(now - self.idle, now - self.absolute)
