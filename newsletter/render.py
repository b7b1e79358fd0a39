"""Render a digest once per (edition, locale), personalize it per recipient cheaply.

Jinja2 renders ``digest.html`` and ``digest.txt`` with the locale's gettext catalog,
premailer inlines the CSS once, and per-recipient values (name, unsubscribe URL, ...) stay
as marker strings (:data:`PLACEHOLDERS`) until :func:`personalize` swaps them in with one
compiled regex. Rendering costs milliseconds; personalizing costs microseconds.
"""

from __future__ import annotations

import functools
import html as html_lib
import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from types import TracebackType
from typing import Any

import jinja2
from babel.support import Translations
from premailer import Premailer

from newsletter import i18n
from newsletter.config import Segment, Settings
from newsletter.errors import RenderError, TemplateError
from newsletter.models import DigestEntry, RenderedVariant
from newsletter.sanitize import text_paragraphs, truncate

log = logging.getLogger(__name__)

HTML_TEMPLATE = "digest.html"
TEXT_TEMPLATE = "digest.txt"

#: per-recipient values -> marker strings that survive Jinja, premailer and URL attributes
PLACEHOLDERS: dict[str, str] = {
    "name": "@@nl:name@@",
    "email": "@@nl:email@@",
    "unsubscribe_url": "@@nl:unsubscribe_url@@",
    "preferences_url": "@@nl:preferences_url@@",
}

# ``if_KEY ... else ... end`` keeps the first part when KEY has a non-empty value, else the
# second: the greeting without a name, the archive copy without "sent to ...". No nesting.
_CONDITIONALS = {
    **{f"if_{key}": f"@@nl:if:{key}@@" for key in PLACEHOLDERS},
    "else": "@@nl:else@@",
    "end": "@@nl:end@@",
}

_TOKEN_RE = re.compile(
    r"@@nl:if:(?P<cond>\w+)@@(?P<yes>.*?)@@nl:else@@(?P<no>.*?)@@nl:end@@"
    r"|@@nl:(?P<key>" + "|".join(map(re.escape, PLACEHOLDERS)) + r")@@",
    re.DOTALL,
)
_LINE_BREAKS = re.compile(r"[ \t\r\n\f\v]+")
_BLANK_RUNS = re.compile(r"\n[ \t]*(?:\n[ \t]*){2,}")


@dataclass(frozen=True)
class EntryView:
    """What the templates show of one :class:`DigestEntry`, formatted for the reader."""

    entry: DigestEntry
    title: str
    link: str | None
    image: str | None
    summary: str
    #: the publication date, localized ("15 октомври 2012 г.")
    published: str
    #: language of the text shown, and its direction
    lang: str
    dir: str
    #: name of ``lang`` in the reader's language ("английски")
    language: str
    is_fallback: bool
    machine_translated: bool
    #: name of the language the machine translation was made from
    original_language: str


def _template_line(exc: BaseException, filename: str | None) -> int | None:
    """The template line a runtime error happened on (Jinja maps frames to template lines)."""
    line = None
    tb: TracebackType | None = exc.__traceback__
    while tb is not None:
        if filename and tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


class Renderer:
    """Renders digest variants: one Jinja environment per locale, catalogs checked at start.

    A missing catalog raises :class:`LocaleError` and a broken template raises
    :class:`TemplateError` here, at construction, not in the middle of a send.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.translations: dict[str, Translations] = i18n.load_translations(
            settings.locales.available
        )
        self._envs: dict[str, jinja2.Environment] = {}
        self._expressions: dict[tuple[str, str], jinja2.Template] = {}
        for locale in settings.locales.available:
            env = self._env(locale)
            for name in (HTML_TEMPLATE, TEXT_TEMPLATE):
                self._template(env, name)

    # -- environment -------------------------------------------------------------------

    def _env(self, locale: str) -> jinja2.Environment:
        env = self._envs.get(locale)
        if env is not None:
            return env
        folder = self.settings.paths.templates
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(folder)),
            autoescape=jinja2.select_autoescape(
                enabled_extensions=("html", "htm", "xml"), default_for_string=False
            ),
            extensions=["jinja2.ext.i18n"],
            undefined=jinja2.StrictUndefined,
            trim_blocks=False,
            keep_trailing_newline=True,
        )
        # newstyle gettext: %-formatting and autoescaping of arguments done by Jinja
        env.install_gettext_translations(self.translations[locale], newstyle=True)  # type: ignore[attr-defined]
        env.globals["format_date"] = lambda value, format="long": i18n.format_date(
            value, locale, format
        )
        env.globals["format_number"] = lambda value: i18n.format_number(value, locale)
        self._envs[locale] = env
        return env

    def _template(self, env: jinja2.Environment, name: str) -> jinja2.Template:
        folder = self.settings.paths.templates
        try:
            return env.get_template(name)
        except jinja2.TemplateSyntaxError as exc:
            where = exc.filename or str(folder / (exc.name or name))
            raise TemplateError(f"{where}: line {exc.lineno}: {exc.message}") from exc
        except jinja2.TemplateNotFound as exc:
            raise TemplateError(f"{folder / str(exc.name)}: template not found") from exc

    def _render_template(self, env: jinja2.Environment, name: str, ctx: dict[str, Any]) -> str:
        template = self._template(env, name)
        try:
            return template.render(ctx)
        except jinja2.TemplateSyntaxError as exc:  # an included template is broken
            where = exc.filename or str(self.settings.paths.templates / (exc.name or name))
            raise TemplateError(f"{where}: line {exc.lineno}: {exc.message}") from exc
        except jinja2.TemplateNotFound as exc:
            raise TemplateError(f"{name}: included template {exc.name!r} not found") from exc
        except jinja2.TemplateError as exc:
            line = _template_line(exc, template.filename)
            at = f": line {line}" if line else ""
            raise TemplateError(f"{template.filename or name}{at}: {exc}") from exc

    # -- subject and preheader ----------------------------------------------------------

    def _expression(self, locale: str, source: str, ctx: dict[str, Any], what: str) -> str:
        key = (locale, source)
        template = self._expressions.get(key)
        try:
            if template is None:
                template = self._env(locale).from_string(source)
                self._expressions[key] = template
            text = template.render(ctx)
        except jinja2.TemplateError as exc:
            raise TemplateError(f"{what} {source!r}: {exc}") from exc
        # a header value: one line; no-break spaces from Babel dates stay
        return _LINE_BREAKS.sub(" ", text).strip()

    def _subject(self, segment: Segment, locale: str, ctx: dict[str, Any]) -> str:
        if segment.subject:
            return self._expression(locale, segment.subject, ctx, f"segment {segment.name} subject")
        t = self.translations[locale]
        n = len(ctx["items"])
        pattern = t.ngettext("%(cluster)s: %(num)d new item", "%(cluster)s: %(num)d new items", n)
        return pattern % {"cluster": ctx["cluster_name"], "num": n}

    def _preheader(self, segment: Segment, locale: str, ctx: dict[str, Any]) -> str:
        if segment.preheader:
            return self._expression(
                locale, segment.preheader, ctx, f"segment {segment.name} preheader"
            )
        t = self.translations[locale]
        entries: list[EntryView] = ctx["entries"]
        if not entries:
            return t.gettext("No news this time.")
        if len(entries) == 1:
            return entries[0].title
        more = len(entries) - 1
        pattern = t.ngettext(
            "%(title)s and %(num)d more story", "%(title)s and %(num)d more stories", more
        )
        return pattern % {"title": entries[0].title, "num": more}

    def _heading(self, segment: Segment, locale: str) -> str:
        t = self.translations[locale]
        if segment.period == "month":
            return t.gettext("This month's news")
        if segment.period == "day":
            return t.gettext("Today's news")
        return t.gettext("This week's news")

    # -- entries ------------------------------------------------------------------------

    def _view(self, entry: DigestEntry, locale: str, segment: Segment) -> EntryView:
        item = entry.item
        published = item.published_at
        if isinstance(published, datetime) and published.tzinfo is not None:
            published = published.astimezone(segment.tz)
        limit = self.settings.render.summary_chars
        return EntryView(
            entry=entry,
            title=item.title,
            link=item.link,
            image=item.image,
            summary=truncate(" ".join(text_paragraphs(item.summary_html or item.body_html)), limit),
            published=i18n.format_date(published, locale),
            lang=entry.shown_lang,
            dir=i18n.text_direction(entry.shown_lang),
            language=i18n.language_name(entry.shown_lang, locale),
            is_fallback=entry.is_fallback,
            machine_translated=item.translated_from is not None,
            original_language=i18n.language_name(item.translated_from or item.lang, locale),
        )

    # -- rendering ----------------------------------------------------------------------

    def _inline(self, html: str) -> str:
        try:
            return str(
                Premailer(
                    html,
                    strip_important=False,
                    keep_style_tags=True,
                    cssutils_logging_level=logging.CRITICAL,
                    disable_validation=True,
                    allow_network=False,
                    allow_loading_external_files=False,
                    disable_link_rewrites=True,
                    remove_classes=False,
                    exclude_pseudoclasses=True,
                    cache_css_parsing=True,
                ).transform(pretty_print=False)
            )
        except Exception as exc:  # premailer raises assorted cssutils/lxml errors
            raise RenderError(f"CSS inlining failed: {exc}") from exc

    def _render_once(
        self, locale: str, base: dict[str, Any], views: list[EntryView], segment: Segment
    ) -> tuple[str, str, str, str]:
        ctx = {**base, "entries": views, "items": [v.entry.item for v in views]}
        ctx["subject"] = self._subject(segment, locale, ctx)
        ctx["preheader"] = self._preheader(segment, locale, ctx)
        env = self._env(locale)
        html = self._inline(self._render_template(env, HTML_TEMPLATE, ctx))
        if not html.lstrip().lower().startswith("<!doctype"):
            html = "<!DOCTYPE html>\n" + html
        # the text template is written for plain text; only tidy runs of blank lines
        text = _BLANK_RUNS.sub("\n\n", self._render_template(env, TEXT_TEMPLATE, ctx)).strip()
        return ctx["subject"], ctx["preheader"], html, text + "\n"

    def render(
        self,
        *,
        segment: Segment,
        period_label: str,
        edition_date: date,
        entries: Sequence[DigestEntry],
        locale: str,
        view_url: str,
    ) -> RenderedVariant:
        """Render and inline one variant; trims or refuses above the HTML size budget."""
        if locale not in self.translations:
            raise RenderError(
                f"locale {locale!r} is not configured (available: "
                f"{', '.join(self.settings.locales.available)})"
            )
        org = self.settings.organisation
        cluster_name = org.name_for(locale)
        views = [self._view(e, locale, segment) for e in entries[: self.settings.render.max_items]]
        base: dict[str, Any] = {
            "locale": locale,
            "dir": i18n.text_direction(locale),
            "organisation": org,
            "org_name": cluster_name,
            "cluster_name": cluster_name,
            "colors": org.colors,
            "segment": segment,
            "list_name": segment.name,
            "period": segment.period,
            "period_label": period_label,
            "heading": self._heading(segment, locale),
            "edition_date": edition_date,
            "date": i18n.format_date(edition_date, locale),
            "view_url": view_url,
            "placeholders": {**PLACEHOLDERS, **_CONDITIONALS},
        }
        budget = self.settings.render.max_html_bytes
        subject, preheader, html, text = self._render_once(locale, base, views, segment)
        size = len(html.encode("utf-8"))
        dropped = 0
        while size > budget:
            if self.settings.render.over_budget == "refuse" or not views:
                raise RenderError(
                    f"segment {segment.name}, locale {locale}: HTML is {size} bytes, over the "
                    f"budget of {budget} (render.max_html_bytes); refusing to send a clipped email"
                )
            # drop roughly as many items as the excess needs, then check again
            per_item = max(1, size // max(1, len(views)))
            cut = min(len(views), max(1, math.ceil((size - budget) / per_item)))
            views = views[:-cut]
            dropped += cut
            subject, preheader, html, text = self._render_once(locale, base, views, segment)
            size = len(html.encode("utf-8"))
        if dropped:
            log.warning(
                "segment %s, locale %s: dropped %d item(s) from the end to stay under %d bytes",
                segment.name,
                locale,
                dropped,
                budget,
            )
        from_name = cluster_name
        if segment.from_name:
            from_name = self._expression(
                locale, segment.from_name, base, f"segment {segment.name} from_name"
            )
        return RenderedVariant(
            locale=locale,
            subject=subject,
            preheader=preheader,
            from_name=from_name,
            html=html,
            text=text,
            item_count=len(views),
        )


def personalize(variant: RenderedVariant, values: Mapping[str, str]) -> tuple[str, str]:
    """Substitute per-recipient ``values`` into a variant: (html, text).

    Values are HTML-escaped in the HTML part and inserted raw in the text part. Every
    placeholder the variant contains must have a value; ``name`` may be empty (the
    greeting then has no name). The variant is split at its placeholders once (cached),
    so each call is a join of a few dozen strings.
    """
    escaped = {key: html_lib.escape(value, quote=True) for key, value in values.items()}
    return _join(_split(variant.html), escaped), _join(_split(variant.text), values)


#: a split template: literal text, a placeholder key, or (key, parts if set, parts if not)
_Part = str | tuple[str] | tuple[str, "_Parts", "_Parts"]
_Parts = tuple[_Part, ...]


@functools.lru_cache(maxsize=256)
def _split(template: str) -> _Parts:
    parts: list[_Part] = []
    pos = 0
    for match in _TOKEN_RE.finditer(template):
        if match.start() > pos:
            parts.append(template[pos : match.start()])
        key = match.group("key")
        if key is None:
            yes, no = _split(match.group("yes")), _split(match.group("no"))
            parts.append((match.group("cond"), yes, no))
        else:
            parts.append((key,))
        pos = match.end()
    parts.append(template[pos:])
    return tuple(parts)


def _join(parts: _Parts, values: Mapping[str, str]) -> str:
    out: list[str] = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
        elif len(part) == 1:
            try:
                out.append(values[part[0]])
            except KeyError:
                raise RenderError(f"personalize: no value for placeholder {part[0]!r}") from None
        else:
            out.append(_join(part[1] if values.get(part[0]) else part[2], values))
    return "".join(out)
