"""Write rendered variants as HTML files with an index page, for editors to look at.

Used by the outbox (an index of every edition's variants beside the .eml files) and by
``newsletter preview`` (this period's selection for each segment and locale, nothing stored).
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from newsletter.config import Settings
from newsletter.models import RenderedVariant
from newsletter.render.renderer import personalize
from newsletter.send.compose import edition_label
from newsletter.store import Store


@dataclass(frozen=True)
class PageEntry:
    """One variant written to disk."""

    group: str
    variant: RenderedVariant
    path: Path
    messages: int | None = None


def screenshot_path(page: Path, width: int) -> Path:
    """Where a screenshot of ``page`` at ``width`` px goes: ``en.html`` -> ``en-375.png``."""
    return page.with_name(f"{page.stem}-{width}.png")


def _screenshot_links(page: Path, folder: Path) -> str:
    links = [
        f'<a href="{html.escape(png.relative_to(folder).as_posix())}">{width} px</a>'
        for width in (600, 375)
        if (png := screenshot_path(page, width)).exists()
    ]
    return " · ".join(links)


def _sample_values(settings: Settings) -> dict[str, str]:
    # the archive copy: no subscriber's data, links to the public pages
    base = settings.web.base_url
    return {
        "name": "",
        "email": "",
        "unsubscribe_url": f"{base}/unsubscribe",
        "preferences_url": f"{base}/preferences",
    }


def write_variant(settings: Settings, variant: RenderedVariant, path: Path) -> Path:
    """Write one variant's HTML (and its plain text beside it) with neutral placeholders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    page, text = personalize(variant, _sample_values(settings))
    path.write_text(page, encoding="utf-8")
    path.with_suffix(".txt").write_text(text, encoding="utf-8")
    return path


def write_index(folder: Path, title: str, entries: Iterable[PageEntry]) -> Path:
    """An index.html with one row per variant: locale, subject, size, items, link.

    Screenshots beside a variant (``newsletter preview --screenshots``) are linked too.
    """
    entries = list(entries)
    rows = []
    shots = {e.path: _screenshot_links(e.path, folder) for e in entries}
    has_shots = any(shots.values())
    for e in entries:
        rel = e.path.relative_to(folder).as_posix()
        msgs = "" if e.messages is None else f"<td>{e.messages}</td>"
        if has_shots:
            msgs += f"<td>{shots[e.path]}</td>"
        rows.append(
            f'<tr><td>{html.escape(e.group)}</td><td lang="{e.variant.locale}">'
            f'{e.variant.locale}</td><td><a href="{html.escape(rel)}">'
            f"{html.escape(e.variant.subject)}</a></td><td>{e.variant.html_bytes / 1024:.1f} KB"
            f"</td><td>{e.variant.item_count}</td>{msgs}</tr>"
        )
    cards = [
        f"<figure><figcaption><b>{html.escape(e.group)} · {e.variant.locale}</b> · "
        f"{e.variant.html_bytes / 1024:.1f} KB · {e.variant.item_count} items<br>"
        f"{html.escape(e.variant.subject)}</figcaption>"
        f'<iframe src="{html.escape(e.path.relative_to(folder).as_posix())}" '
        f'title="{html.escape(e.group)} {e.variant.locale}" loading="lazy"></iframe></figure>'
        for e in entries
    ]
    has_msgs = any(e.messages is not None for e in entries)
    head = "<th>messages (.eml)</th>" if has_msgs else ""
    head += "<th>screenshots</th>" if has_shots else ""
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>body{{font-family:sans-serif;margin:2em}}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em;"
        "text-align:left}.grid{display:flex;flex-wrap:wrap;gap:1em}figure{margin:0;width:420px}"
        "iframe{width:420px;height:640px;border:1px solid #ccc}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><table><thead><tr><th>edition</th><th>locale</th>"
        f"<th>subject</th><th>HTML size</th><th>items</th>{head}</tr></thead><tbody>"
        + "".join(rows)
        + '</tbody></table><h2>Side by side</h2><div class="grid">'
        + "".join(cards)
        + "</div></body></html>"
    )
    folder.mkdir(parents=True, exist_ok=True)
    index = folder / "index.html"
    index.write_text(page, encoding="utf-8")
    return index


def write_variant_pages(settings: Settings, store: Store, folder: Path) -> Path:
    """Write every stored edition's variants under ``folder/<edition>/`` and an index."""
    entries = []
    for edition in store.editions.list(limit=200):
        label = edition_label(edition.id, edition.segment, edition.period)
        emls = len(list((folder / label).glob("*.eml")))
        for locale, variant in sorted(store.editions.variants(edition.id).items()):
            path = folder / label / f"{locale}.html"
            # a stored variant never changes: write each file once, not on every run
            if not path.exists():
                write_variant(settings, variant, path)
            entries.append(PageEntry(label, variant, path, emls))
    return write_index(folder, "Outbox: rendered variants", entries)
