"""Page rendering for the web app: Jinja templates in ``templates/web/``, localized with
the same gettext catalogs as the emails, and the visitor's language.

Templates are user-editable like the email templates; every one is compiled for every
locale when the app is built, so a broken template fails at start, not on a visitor.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any, Final
from urllib.parse import urlsplit

import jinja2
from babel.core import negotiate_locale
from babel.support import Translations
from starlette.requests import Request
from starlette.responses import HTMLResponse

from newsletter.config import Settings
from newsletter.errors import TemplateError
from newsletter.render import i18n
from newsletter.render.renderer import load_template

log = logging.getLogger("newsletter.web")

#: every page template, checked at start
PAGES: Final = (
    "web/message.html",
    "web/unsubscribe.html",
    "web/preferences.html",
    "web/subscribe.html",
    "web/confirm.html",
    "web/archive.html",
    "web/archive_list.html",
    "web/story.html",
)
#: the confirmation email sent by the sign-up form
EMAILS: Final = ("confirm-email.html", "confirm-email.txt")

_LANG_RANGE = re.compile(r"^[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*$|^\*$")


def N_(message: str) -> str:
    """Mark a string for extraction; it is translated later, where it is shown."""
    return message


def parse_accept_language(header: str) -> list[str]:
    """Language ranges of an Accept-Language header, best first (q=0 ones dropped)."""
    ranked: list[tuple[float, int, str]] = []
    for n, part in enumerate(header.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        tag = tag.strip()
        if not tag or not _LANG_RANGE.match(tag) or tag == "*":
            continue
        q = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                q = float(params[2:])
            except ValueError:
                continue
        if q > 0:
            ranked.append((-q, n, tag.replace("_", "-")))
    return [tag for _q, _n, tag in sorted(ranked)]


class Pages:
    """Jinja environments per locale and the responses built from them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.locales = list(settings.locales.available)
        self.translations: dict[str, Translations] = i18n.load_translations(self.locales)
        self._envs = {loc: self._make_env(loc) for loc in self.locales}
        for env in self._envs.values():
            for name in (*PAGES, *EMAILS):
                self._template(env, name)

    def _make_env(self, locale: str) -> jinja2.Environment:
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(self.settings.paths.templates)),
            autoescape=jinja2.select_autoescape(
                enabled_extensions=("html", "htm", "xml"), default_for_string=False
            ),
            extensions=["jinja2.ext.i18n"],
            undefined=jinja2.StrictUndefined,
        )
        env.install_gettext_translations(self.translations[locale], newstyle=True)  # type: ignore[attr-defined]
        env.globals["format_date"] = lambda value, format="long": i18n.format_date(
            value, locale, format
        )
        env.globals["language_name"] = lambda code: i18n.language_name(code, code)
        return env

    def check(self, names: Iterable[str]) -> None:
        """Compile ``names`` for every locale now (a broken template fails at start)."""
        for env in self._envs.values():
            for name in names:
                self._template(env, name)

    def _template(self, env: jinja2.Environment, name: str) -> jinja2.Template:
        return load_template(env, name, self.settings.paths.templates)

    # -- languages ----------------------------------------------------------------------

    def negotiate(self, request: Request, preferred: str | None = None) -> str:
        """The page language: ``?lang=``, else ``preferred`` (a subscriber's locale), else
        the Accept-Language header, else the default locale."""
        asked = request.query_params.get("lang", "")
        if asked in self.locales:
            return asked
        if preferred:
            return self.settings.locales.resolve(preferred)
        ranges = parse_accept_language(request.headers.get("accept-language", ""))
        found = negotiate_locale(ranges, self.locales, sep="-") if ranges else None
        if found is None:
            # "de-AT" against "de": try the primary subtags too
            primaries = [r.split("-")[0].lower() for r in ranges]
            found = next((p for p in primaries if p in self.locales), None)
        return found or self.settings.locales.default

    def gettext(self, locale: str, message: str, **values: Any) -> str:
        """``message`` translated into ``locale`` and %-formatted with ``values``."""
        text = self.translations[locale].gettext(message)
        return text % values if values else text

    # -- rendering ----------------------------------------------------------------------

    def context(self, locale: str, request: Request | None = None) -> dict[str, Any]:
        """What every page template gets."""
        org = self.settings.organisation
        switch = []
        # only a GET can be repeated in another language: the result page of a POST (an
        # erasure, say) has no GET twin, so it gets no switcher; its form kept ``?lang=``
        if request is not None and request.method in ("GET", "HEAD"):
            for loc in self.locales:
                url = request.url.include_query_params(lang=loc)
                switch.append((loc, i18n.language_name(loc, loc), f"{url.path}?{url.query}"))
        return {
            "locale": locale,
            "dir": i18n.text_direction(locale),
            "organisation": org,
            "org_name": org.name_for(locale),
            "org_address": org.address_for(locale),
            "colors": org.colors,
            "base_url": self.settings.web.base_url,
            # root-relative links keep working behind a proxy serving the app in a folder
            "root": urlsplit(self.settings.web.base_url).path.rstrip("/"),
            "languages": switch,
        }

    def render(self, locale: str, template: str, /, **ctx: Any) -> str:
        """Render ``template`` in ``locale``."""
        compiled = self._template(self._envs[locale], template)
        try:
            return compiled.render({**self.context(locale), **ctx})
        except jinja2.TemplateError as exc:
            raise TemplateError(f"{compiled.filename or template}: {exc}") from exc

    def page(
        self,
        request: Request,
        locale: str,
        template: str,
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
        **ctx: Any,
    ) -> HTMLResponse:
        """An HTML response from ``template`` in ``locale``."""
        body = self.render(locale, template, **{**self.context(locale, request), **ctx})
        return HTMLResponse(body, status_code=status, headers=headers)

    def message(
        self,
        request: Request,
        locale: str,
        title: str,
        paragraphs: Iterable[str],
        *,
        status: int = 200,
        links: Iterable[tuple[str, str]] = (),
        headers: dict[str, str] | None = None,
        **values: Any,
    ) -> HTMLResponse:
        """A page with a heading and some text; ``title`` and ``paragraphs`` are msgids,
        translated here and formatted with ``values``; ``links`` are (msgid, url)."""
        return self.page(
            request,
            locale,
            "web/message.html",
            status=status,
            headers=headers,
            title=self.gettext(locale, title, **values),
            paragraphs=[self.gettext(locale, p, **values) for p in paragraphs],
            links=[(self.gettext(locale, label), url) for label, url in links],
        )
