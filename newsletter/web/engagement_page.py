"""The engagement report as pictures: a page of server-rendered SVG charts.

:func:`charts` builds the charts of a segment (delivery and bounce rates over its last
editions) and of one edition (clicks per story per locale, translation coverage against
clicks); :func:`page` wraps them in a standalone HTML document without scripts, for a
desk page to embed (``charts`` alone) or to serve as it is. ``translate`` is the page
language's gettext, so the desk shows the labels in its own language (the msgids are the
English labels here; they are not in the catalogs yet, so they stay English until a desk
page adds them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from markupsafe import Markup, escape

from newsletter.config import Settings
from newsletter.render.charts import Series, grouped_bars, line_chart
from newsletter.reports import EditionEngagement, TrendLine, edition_report, segment_trend
from newsletter.store import Store

__all__ = ["Charts", "charts", "coverage_chart", "page", "story_chart", "trend_chart"]

Translate = Callable[[str], str]


def _same(text: str) -> str:
    return text


@dataclass(frozen=True)
class Charts:
    """The SVG charts of one report page (each one safe to insert as HTML)."""

    trend: Markup
    stories: Markup | None
    coverage: Markup | None


def trend_chart(lines: list[TrendLine], tr: Translate = _same) -> Markup:
    """Delivery and bounce rates over the editions of ``lines``."""
    labels = [f"#{x.edition_id} {x.period}" for x in lines]
    return Markup(
        line_chart(
            tr("Delivery and bounce rates over the last editions"),
            labels,
            [
                Series(tr("delivered"), [x.delivery_rate if x.sent else None for x in lines]),
                Series(tr("bounced"), [x.bounce_rate if x.sent else None for x in lines]),
            ],
        )
    )


def story_chart(rep: EditionEngagement, tr: Translate = _same) -> Markup:
    """Unique clicks per story, one bar per locale."""
    clicked = [s for s in rep.stories if s.clicks]
    locales = sorted({loc for s in clicked for loc in s.clicks})
    return Markup(
        grouped_bars(
            tr("Readers who clicked, per story and language"),
            [s.title or s.link for s in clicked],
            [
                Series(loc, [float(s.clicks.get(loc, {}).get("unique", 0)) for s in clicked])
                for loc in locales
            ],
        )
    )


def coverage_chart(rep: EditionEngagement, tr: Translate = _same) -> Markup:
    """Per locale: the share of stories in that language, and the share of readers who
    clicked, side by side."""
    lines = [x for x in rep.locales if x.sent]
    total = max(1, rep.story_count)
    return Markup(
        grouped_bars(
            tr("Translation coverage and clicks per language"),
            [x.locale for x in lines],
            [
                Series(
                    tr("stories in the language"),
                    [round(100 * x.stories_in_locale / total, 1) for x in lines],
                ),
                Series(
                    tr("readers who clicked"),
                    [round(100 * x.clicks_unique / x.sent, 1) for x in lines],
                ),
            ],
            unit="%",
        )
    )


def charts(
    settings: Settings,
    store: Store,
    segment: str,
    *,
    edition_id: int | None = None,
    last: int = 12,
    translate: Translate = _same,
) -> Charts:
    """The charts of ``segment`` (and of ``edition_id``, by default its latest edition)."""
    lines = segment_trend(store, segment, last)
    if edition_id is None and lines:
        edition_id = lines[-1].edition_id
    rep = edition_report(settings, store, edition_id) if edition_id is not None else None
    return Charts(
        trend_chart(lines, translate),
        story_chart(rep, translate) if rep and rep.clicks_tracked else None,
        coverage_chart(rep, translate) if rep else None,
    )


def page(title: str, found: Charts, *, lang: str = "en") -> str:
    """A standalone HTML document showing ``found`` (no scripts, inline SVG only)."""
    parts = [found.trend, found.stories, found.coverage]
    figures = "".join(f"<figure>{svg}</figure>" for svg in parts if svg is not None)
    return (
        f'<!doctype html><html lang="{escape(lang)}"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:2rem;color:#222}"
        "figure{margin:0 0 2rem}svg{max-width:100%;height:auto}</style></head>"
        f"<body><h1>{escape(title)}</h1>{figures}</body></html>"
    )
