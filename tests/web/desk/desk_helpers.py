"""Helpers for the desk tests: accounts, logging in, CSRF tokens of desk pages."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from newsletter.config import Settings
from newsletter.store import Store
from newsletter.store.desk import DeskUser
from newsletter.web.desk.users import add_user
from web.web_helpers import Clock, TestClient

PASSWORD = "a long enough password"


@dataclass
class Desk:
    """A running app with the desk on."""

    client: TestClient
    settings: Settings
    store: Store
    clock: Clock
    app: Any

    def user(
        self, email: str = "ana@example.org", role: str = "admin", locales: tuple[str, ...] = ()
    ) -> DeskUser:
        """Store a desk account with :data:`PASSWORD`."""
        return add_user(
            self.store, email, role, PASSWORD, locales=locales, actor="cli", now=self.clock()
        )

    def login(
        self,
        email: str = "ana@example.org",
        password: str = PASSWORD,
        client: TestClient | None = None,
    ) -> Any:
        """Post the login form (with its CSRF token); the response, not followed."""
        client = client or self.client
        # the token the login form carries (it is not tied to a session: there is none yet)
        token = self.app.state.ctx.csrf.issue("desk-login", 0)
        return client.post(
            "/desk/login",
            data={"csrf_token": token, "email": email, "password": password},
            follow_redirects=False,
        )

    def as_user(self, role: str = "admin", email: str | None = None, **kw: Any) -> DeskUser:
        """Create an account of ``role`` and log in as it."""
        user = self.user(email or f"{role}@example.org", role, **kw)
        assert self.login(user.email).status_code == 303
        return user

    def token(self, path: str = "/desk/") -> str:
        """The CSRF token of the forms on the desk page ``path``."""
        return form_token(self.client.get(path).text)

    def post(
        self, path: str, data: dict[str, Any] | None = None, *, token: str | None = None
    ) -> Any:
        """A POST with this session's CSRF token."""
        return self.client.post(
            path,
            data={"csrf_token": token if token is not None else self.token(), **(data or {})},
            follow_redirects=False,
        )


def form_token(html: str) -> str:
    """The first CSRF token on a page."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html[:2000]
    return found.group(1)
