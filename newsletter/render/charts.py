"""Server-side SVG charts for the engagement reports: no JavaScript, readable without CSS.

Each chart is one ``<svg role="img">`` with a ``<title>`` and a ``<desc>`` that states the
figures in words (what a screen reader says), and visible text labels on every bar and
point, so no value is told by colour alone. Labels are escaped: story titles are gathered
content. Colours come from the caller (the brand palette); the defaults pass WCAG AA
against white for the text.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from markupsafe import escape

__all__ = ["Series", "bar_chart", "grouped_bars", "line_chart"]

_ids = itertools.count(1)
_PALETTE = ("#1f5f8b", "#b3541e", "#2e7d32", "#6a1b9a", "#8d6e00", "#00695c", "#ad1457")
_FONT = 'font-family="system-ui, sans-serif" font-size="12"'


@dataclass(frozen=True)
class Series:
    """One named line or bar group: a value per category (``None``: no data)."""

    name: str
    values: Sequence[float | None]


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def _head(width: int, height: int, title: str, desc: str, key: str) -> list[str]:
    n = next(_ids)
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="chart chart-{key}" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'aria-labelledby="chart{n}-title chart{n}-desc">',
        f'<title id="chart{n}-title">{escape(title)}</title>',
        f'<desc id="chart{n}-desc">{escape(desc)}</desc>',
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
    ]


def _legend(series: Sequence[Series], x: int, y: int) -> list[str]:
    out = []
    for i, s in enumerate(series):
        colour = _PALETTE[i % len(_PALETTE)]
        out.append(f'<rect x="{x}" y="{y + 16 * i}" width="10" height="10" fill="{colour}"/>')
        out.append(
            f'<text x="{x + 14}" y="{y + 16 * i + 9}" {_FONT} fill="#222">{escape(s.name)}</text>'
        )
    return out


def line_chart(
    title: str,
    categories: Sequence[str],
    series: Sequence[Series],
    *,
    width: int = 640,
    height: int = 280,
) -> str:
    """Rates (0..1) per category as lines with a labelled point each, e.g. delivery and
    bounce rates over the last editions."""
    left, right, top, bottom = 48, 150, 16, 48
    plot_w, plot_h = width - left - right, height - top - bottom
    words = [
        f"{s.name}: "
        + ", ".join(
            f"{c} {_pct(v) if v is not None else 'no data'}"
            for c, v in zip(categories, s.values, strict=True)
        )
        for s in series
    ]
    out = _head(width, height, title, "; ".join(words) or "no editions yet", "line")
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = top + plot_h * (1 - tick)
        out.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
        )
        out.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" {_FONT} '
            f'fill="#444">{int(tick * 100)}%</text>'
        )
    step = plot_w / max(1, len(categories) - 1) if len(categories) > 1 else 0
    xs = [left + (step * i if len(categories) > 1 else plot_w / 2) for i in range(len(categories))]
    for x, c in zip(xs, categories, strict=True):
        out.append(
            f'<text x="{x:.1f}" y="{top + plot_h + 18}" text-anchor="middle" {_FONT} '
            f'fill="#444">{escape(c)}</text>'
        )
    for i, s in enumerate(series):
        colour = _PALETTE[i % len(_PALETTE)]
        points = [
            (x, top + plot_h * (1 - min(1.0, max(0.0, v))), v)
            for x, v in zip(xs, s.values, strict=True)
            if v is not None
        ]
        if len(points) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in points)
            out.append(
                f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>'
            )
        for x, y, v in points:
            out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>')
            out.append(
                f'<text x="{x:.1f}" y="{y - 7:.1f}" text-anchor="middle" {_FONT} '
                f'fill="{colour}">{_pct(v)}</text>'
            )
    out += _legend(series, left + plot_w + 16, top)
    out.append("</svg>")
    return "".join(out)


def grouped_bars(
    title: str,
    categories: Sequence[str],
    series: Sequence[Series],
    *,
    unit: str = "",
    width: int = 640,
    bar: int = 14,
) -> str:
    """Horizontal bars, one group per category (a story), one bar per series (a locale)."""
    label_w, right, top = 220, 80, 12
    per_group = bar * max(1, len(series)) + 12
    height = top + per_group * max(1, len(categories)) + 16 * len(series) + 16
    peak = max([v or 0 for s in series for v in s.values] + [1])
    plot_w = width - label_w - right
    words = [
        f"{c}: "
        + ", ".join(
            f"{s.name} {s.values[j] if s.values[j] is not None else 'no data'}{unit}"
            for s in series
        )
        for j, c in enumerate(categories)
    ]
    out = _head(width, height, title, "; ".join(words) or "no data yet", "bars")
    for j, c in enumerate(categories):
        y0 = top + per_group * j
        name = c if len(c) <= 34 else c[:33] + "…"
        out.append(
            f'<text x="{label_w - 8}" y="{y0 + per_group / 2:.1f}" text-anchor="end" '
            f'{_FONT} fill="#222">{escape(name)}</text>'
        )
        for i, s in enumerate(series):
            value = s.values[j]
            colour = _PALETTE[i % len(_PALETTE)]
            y = y0 + bar * i
            w = plot_w * (value or 0) / peak
            out.append(
                f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar - 2}" fill="{colour}"/>'
            )
            shown = "–" if value is None else f"{value:g}{unit}"
            out.append(
                f'<text x="{label_w + w + 4:.1f}" y="{y + bar - 4}" {_FONT} '
                f'fill="#222">{escape(s.name)} {escape(shown)}</text>'
            )
    out += _legend(series, label_w, top + per_group * max(1, len(categories)) + 4)
    out.append("</svg>")
    return "".join(out)


def bar_chart(title: str, values: Mapping[str, float], *, unit: str = "") -> str:
    """One bar per label (a single series)."""
    return grouped_bars(title, list(values), [Series(title, list(values.values()))], unit=unit)
