"""Sample data for the email design and screenshot tests: the demo config, long stories.

Invented text in the style of the cluster's news (not copied from any source), at the
length limits a real edition reaches: long titles, summaries cut at summary_chars, links
longer than a line of plain text, labels on every story.
"""

from __future__ import annotations

import tomllib
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from factories import make_item

from newsletter.config import Settings, from_dict
from newsletter.models import DigestEntry, Item
from newsletter.render.i18n import catalog_locales

ROOT = Path(__file__).resolve().parents[2]
#: every locale with a catalog
LOCALES = catalog_locales()
DEMO = tomllib.loads((ROOT / "config.toml").read_text(encoding="utf-8"))

# What a subscriber's copy carries: long signed URLs, a name and address with markup chars.
VALUES = {
    "name": "Мария Петрова-Иванова & Co",
    "email": "maria.petrova-ivanova@members.example.org",
    "unsubscribe_url": "https://news.cluster.example.org/unsubscribe/"
    "eyJzIjo3LCJlIjoxMn0.ZmFrZS1zaWduYXR1cmUtZm9yLXRoZS10ZXN0LW9ubHk",
    "preferences_url": "https://news.cluster.example.org/preferences/"
    "eyJzIjo3fQ.YW5vdGhlci1mYWtlLXNpZ25hdHVyZS1mb3ItdGVzdHM",
}

# Invented stories at the length limits: long titles, summaries beyond summary_chars,
# links longer than a text line.
TITLE = (
    "Черноморският енергиен клъстер и партньорите от Констанца подписаха "
    "споразумение за обща водородна лаборатория № {n}"
)
BODY = (
    "<p>Представители на осемнадесет общини, три университета и дванадесет фирми "
    "обсъдиха в продължение на два дни как да планират енергийните обновявания на "
    "обществени сгради, кои мерки са дали най-голяма икономия през последните години и "
    "какви партньорства търсят за следващия програмен период на европейските фондове. "
    "Участниците разгледаха и пилотни проекти за съхранение на енергия.</p>"
)


def story(n: int, *, tags: tuple[str, ...] = (), source: str = "cluster-news") -> Item:
    """One long stored item; the first has a picture, the fourth has no link."""
    link = (
        f"https://cluster.example.org/bg/novini/2026/11/energiyni-obnovyavaniya-{n}"
        "?utm_source=newsletter&utm_medium=email&utm_campaign=weekly-digest"
    )
    return make_item(
        n,
        when=datetime(2026, 11, 20, 9, 30, tzinfo=UTC),
        prefix="design",
        source=source,
        title=TITLE.format(n=n),
        body_html=BODY,
        summary_html=BODY,
        link=None if n == 4 else link,
        tags=tags,
        image=f"https://cluster.example.org/media/2026/11/forum-{n}.jpg" if n == 1 else None,
    )


def stories(count: int = 15) -> list[Item]:
    """``count`` items: tags and sources vary so sections have something to group."""
    out = []
    for n in range(1, count + 1):
        tags = ("partners",) if n % 3 == 0 else ("events",) if n % 3 == 1 else ()
        source = "partner-news" if n % 2 else "cluster-news"
        item = story(n, tags=tags, source=source)
        if n == 2:  # a machine translation carries its own label
            item = replace(item, lang="en", translated_from="bg")
        out.append(item)
    return out


def entries(locale: str, count: int = 15) -> list[DigestEntry]:
    """What a reader of ``locale`` is shown: other languages are labelled as fallbacks."""
    return [DigestEntry(it, it.lang, it.lang != locale) for it in stories(count)]


def demo_settings(**overrides: Any) -> Settings:
    """The demo config.toml (colours, logo, names in 9 locales) plus test overrides."""
    raw = {key: DEMO[key] for key in ("organisation", "locales", "render")}
    raw["organisation"] = {
        **raw["organisation"],
        "addresses": {"bg": "ул. „Примерна“ 1, 9000 Варна, България"},
        "reasons": {"en": "You are a member of the Black Sea Energy Cluster."},
    }
    raw["paths"] = {"templates": str(ROOT / "templates")}
    raw["segments"] = [
        {"name": "members"},
        {"name": "by-tag", "sections": "tag"},
        {"name": "by-source", "sections": "source"},
    ]
    raw["render"] = {
        **raw["render"],
        "section_titles": {
            "partners": {"en": "Partners", "bg": "Партньори", "de": "Partner"},
            "events": {"en": "Events", "bg": "Събития"},
        },
    }
    raw.update(overrides)
    return from_dict(raw, ROOT / "config.toml")
