"""Render a digest once per (edition, locale); personalization happens later, per recipient.

Jinja2 renders ``digest.html`` and ``digest.txt`` with the locale's gettext catalog,
premailer inlines the CSS once, and per-recipient values (name, unsubscribe URL, ...) stay
as marker strings carrying a random nonce drawn per render (content cannot forge them; see
:mod:`newsletter.send.personalize`) until :func:`personalize` swaps them in. Rendering costs
milliseconds; personalizing costs microseconds.

The renderer checks what it can before anything is sent: catalogs and templates load, the
configured colours are readable (:mod:`newsletter.render.palette`), logo and website URLs are
absolute; every rendered variant is checked for HTML that mail clients cannot show
(:mod:`newsletter.render.htmlcheck`), which is logged as a warning.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import jinja2
from babel.support import Translations

from newsletter.config import Segment, Settings
from newsletter.errors import RenderError, TemplateError
from newsletter.gather.sanitize import text_paragraphs, truncate
from newsletter.models import DigestEntry, RenderedVariant
from newsletter.render import htmlcheck, i18n, plaintext
from newsletter.render.inline import inline_css
from newsletter.render.palette import checked_palette
from newsletter.render.storypage import story_url
from newsletter.send.personalize import markers, new_nonce, personalize

__all__ = [
    "EntryView",
    "Renderer",
    "Section",
    "load_template",
    "personalize",
    "tidy_summary",
]

log = logging.getLogger(__name__)

HTML_TEMPLATE = "digest.html"
TEXT_TEMPLATE = "digest.txt"

_LINE_BREAKS = re.compile(r"[ \t\r\n\f\v]+")
_BLANK_RUNS = re.compile(r"\n[ \t]*(?:\n[ \t]*){2,}")
_ABSOLUTE = ("https://", "http://")


def _paragraphs(text: str) -> list[str]:
    """Plain text split at blank lines, each paragraph's whitespace runs made one space."""
    paragraphs = re.split(r"\n[ \t]*\n", text.replace("\r\n", "\n"))
    return [p for p in (_LINE_BREAKS.sub(" ", para).strip() for para in paragraphs) if p]


def _absolute(url: str | None) -> str | None:
    # a relative URL would point nowhere inside a mail client: leave the link or image out
    return url if url and url.startswith(_ABSOLUTE) else None


def load_template(env: jinja2.Environment, name: str, folder: Path) -> jinja2.Template:
    """``name`` from ``env``; a syntax error or a missing file is one-line :class:`TemplateError`.

    ``folder`` is the templates folder the loader reads, named in the message. Shared by
    the email renderer and the web pages (:mod:`newsletter.web.pages`).
    """
    try:
        return env.get_template(name)
    except jinja2.TemplateSyntaxError as exc:
        where = exc.filename or str(folder / (exc.name or name))
        raise TemplateError(f"{where}: line {exc.lineno}: {exc.message}") from exc
    except jinja2.TemplateNotFound as exc:
        raise TemplateError(f"{folder / str(exc.name)}: template not found") from exc


# a sentence ends at . ! ? (closing quotes may follow) before a word that is not lowercase
# ("2026 г. в Бургас" is no sentence end; caseless scripts such as Georgian count as one)
_SENTENCE_END = re.compile(r"[.!?…][\"'”“»)\]]*\s+(?=[^\s])")
_ENDED = (".", "!", "?", "…")
_CLOSERS = "\"'”“»)]"


def tidy_summary(summary: str, complete: bool) -> str:
    """``summary`` ending where a reader expects it to, not on a colon or a cut-off list.

    A summary picked paragraph by paragraph can stop on "the topics are:" or on the first
    item of a list. Such a tail (no closing punctuation) is dropped when an earlier
    sentence ends the summary well enough; otherwise the summary gets an ellipsis.
    ``complete`` says the summary is the whole text: a complete text is left as it is
    unless it ends on a colon.
    """
    text = summary.rstrip()
    if not text or text.rstrip(_CLOSERS).endswith(_ENDED):
        return text
    if complete and not text.endswith(":"):
        return text
    ends = [m.end() for m in _SENTENCE_END.finditer(text) if not text[m.end()].islower()]
    # keep at least half of what was picked: a lone first sentence of a long summary
    # says less than the cut text with an ellipsis
    if ends and ends[-1] >= len(text) // 2:
        return text[: ends[-1]].rstrip()
    return text.rstrip(" :;,-–—") + "…"


@dataclass(frozen=True)
class EntryView:
    """What the templates show of one :class:`DigestEntry`, formatted for the reader."""

    entry: DigestEntry
    title: str
    #: where the title and "read more" go: the item's own link, else its story page
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


@dataclass(frozen=True)
class Section:
    """Stories shown under one heading; ``title`` is None when the segment has no sections."""

    key: str | None
    title: str | None
    entries: list[EntryView]


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

    A missing catalog raises :class:`LocaleError`, a broken template :class:`TemplateError`
    and unreadable colours or relative logo/website URLs :class:`ConfigError`, here, at
    construction, not in the middle of a send. ``catalogs`` is the folder of message
    catalogs (default: the package's own).
    """

    def __init__(self, settings: Settings, *, catalogs: Path | None = None) -> None:
        self.settings = settings
        self.translations: dict[str, Translations] = i18n.load_translations(
            settings.locales.available, catalogs
        )
        self.palette = checked_palette(settings)
        self._envs: dict[str, jinja2.Environment] = {}
        self._expressions: dict[tuple[str, str], jinja2.Template] = {}
        self._checked: set[str] = set()
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
        env.globals["link_line"] = plaintext.link_line
        env.filters["wrap"] = plaintext.wrap
        self._envs[locale] = env
        return env

    def _template(self, env: jinja2.Environment, name: str) -> jinja2.Template:
        return load_template(env, name, self.settings.paths.templates)

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
        shown = " ".join(text_paragraphs(item.summary_html or item.body_html))
        whole = shown if not item.summary_html else " ".join(text_paragraphs(item.body_html))
        summary = truncate(shown, limit)
        return EntryView(
            entry=entry,
            title=item.title,
            # no link of its own: "read more" opens the story's page, so the text cut at
            # summary_chars can be read to the end (newsletter.render.storypage)
            link=_absolute(item.link)
            or story_url(self.settings, entry.story_id or item.id, locale),
            image=_absolute(item.image),
            summary=tidy_summary(summary, complete=summary == whole),
            published=i18n.format_date(published, locale),
            lang=entry.shown_lang,
            dir=i18n.text_direction(entry.shown_lang),
            language=i18n.language_name(entry.shown_lang, locale),
            is_fallback=entry.is_fallback,
            machine_translated=item.translated_from is not None,
            original_language=i18n.language_name(item.translated_from or item.lang, locale),
        )

    def _sections(self, views: list[EntryView], segment: Segment, locale: str) -> list[Section]:
        """The stories after the lead, grouped by first tag or by source when configured."""
        if segment.sections == "none":
            return [Section(None, None, views)] if views else []
        groups: dict[str | None, list[EntryView]] = {}
        for view in views:
            item = view.entry.item
            key = item.source if segment.sections == "source" else next(iter(item.tags), None)
            groups.setdefault(key, []).append(view)
        titles = self.settings.render.section_titles
        t = self.translations[locale]
        out = [Section(k, titles.get(k, {}).get(locale, k), v) for k, v in groups.items() if k]
        if None in groups:  # stories without a tag come last, under a generic heading
            out.append(Section(None, t.gettext("More news"), groups[None]))
        return out

    # -- rendering ----------------------------------------------------------------------

    def _report(self, locale: str, html: str, placeholders: Sequence[str]) -> None:
        """Log what mail clients cannot show: the first variant per locale is checked.

        Problems come from the templates (item URLs are filtered in :meth:`_view`), so
        one check per locale and renderer finds them without parsing every variant.
        """
        if locale in self._checked:
            return
        self._checked.add(locale)
        for problem in htmlcheck.problems(html, placeholders):
            log.warning("%s (%s): %s", HTML_TEMPLATE, locale, problem)

    def _render_once(
        self, locale: str, base: dict[str, Any], views: list[EntryView], segment: Segment
    ) -> tuple[str, str, str, str]:
        ctx = {**base, "entries": views, "items": [v.entry.item for v in views]}
        ctx["lead"] = views[0] if views else None
        ctx["sections"] = self._sections(views[1:], segment, locale)
        ctx["subject"] = self._subject(segment, locale, ctx)
        ctx["preheader"] = self._preheader(segment, locale, ctx)
        env = self._env(locale)
        html = inline_css(self._render_template(env, HTML_TEMPLATE, ctx))
        if not html.lstrip().lower().startswith("<!doctype"):
            html = "<!DOCTYPE html>\n" + html
        self._report(locale, html, list(base["placeholders"].values()))
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
        intro: tuple[str, str] | None = None,
    ) -> RenderedVariant:
        """Render and inline one variant; trims or refuses above the HTML size budget.

        ``intro`` is the editors' opening paragraph(s) as (language, plain text), shown
        under the heading; blank lines separate paragraphs, and the text is escaped.
        """
        if locale not in self.translations:
            raise RenderError(
                f"locale {locale!r} is not configured (available: "
                f"{', '.join(self.settings.locales.available)})"
            )
        org = self.settings.organisation
        cluster_name = org.name_for(locale)
        views = [self._view(e, locale, segment) for e in entries[: self.settings.render.max_items]]
        direction = i18n.text_direction(locale)
        nonce = new_nonce()
        base: dict[str, Any] = {
            "locale": locale,
            "dir": direction,
            # physical sides for HTML attributes (align=""), which know nothing of dir
            "start": "right" if direction == "rtl" else "left",
            "end": "left" if direction == "rtl" else "right",
            "organisation": org,
            "org_name": cluster_name,
            "cluster_name": cluster_name,
            "address": org.address_for(locale),
            "reason": org.reasons.get(locale),
            "colors": self.palette,
            "segment": segment,
            # the readers' own words for the segment, not its config slug
            "list_name": segment.description_for(locale),
            "period": segment.period,
            "period_label": period_label,
            "heading": self._heading(segment, locale),
            "edition_date": edition_date,
            "date": i18n.format_date(edition_date, locale),
            "view_url": view_url,
            "intro": _paragraphs(intro[1]) if intro else [],
            "intro_lang": intro[0] if intro else locale,
            "intro_dir": i18n.text_direction(intro[0]) if intro else direction,
            # the only source of markers: their nonce is drawn here, after content is fixed
            "placeholders": markers(nonce).context(),
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
            nonce=nonce,
        )
