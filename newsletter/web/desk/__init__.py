"""The editor's desk: the staff's web app under ``/desk/`` of ``newsletter serve``.

Server-rendered with the same Jinja environments and gettext catalogs as the subscriber
pages, no JavaScript needed. Off unless ``[desk] enabled = true``.

Every module of this package that defines ``routes() -> list[BaseRoute]`` is a part of the
desk: its routes are mounted under ``/desk``, its ``NAV`` entries (``core.NavEntry``) join
the navigation and its ``TEMPLATES`` are compiled at start. Adding a page is adding a module
(see docs/web.md, "Adding a desk page").
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Sequence
from types import ModuleType

from starlette.routing import BaseRoute, Mount

from newsletter.config import Settings
from newsletter.store import Store
from newsletter.web.desk.core import Desk, NavEntry
from newsletter.web.desk.sessions import Sessions
from newsletter.web.pages import Pages

__all__ = ["Desk", "NavEntry", "build"]


def _parts() -> list[ModuleType]:
    found: list[ModuleType] = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        if callable(getattr(module, "routes", None)):
            found.append(module)
    return found


def build(
    settings: Settings, store: Store, secrets: Sequence[str], pages: Pages
) -> tuple[Desk, BaseRoute]:
    """The desk and its ``/desk`` mount (templates checked for every locale now)."""
    desk = Desk(settings, store, Sessions(settings, store, secrets))
    routes: list[BaseRoute] = []
    templates: list[str] = ["desk/base.html", "desk/message.html"]
    for module in _parts():
        routes.extend(module.routes())
        desk.nav.extend(getattr(module, "NAV", ()))
        templates.extend(getattr(module, "TEMPLATES", ()))
    pages.check(templates)
    return desk, Mount("/desk", routes=routes)
