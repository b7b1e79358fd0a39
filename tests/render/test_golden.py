"""Golden files: a small fixed edition rendered in every locale, compared byte for byte.

The expected output lives in ``tests/render/golden/<locale>.html`` and ``<locale>.txt``,
one pair for every locale with a catalog (:func:`newsletter.render.i18n.catalog_locales`);
a locale without its pair fails. After an intended change to templates, catalogs or the
renderer, or for a new locale, write them with the one command::

    NEWSLETTER_UPDATE_GOLDEN=1 pytest tests/render/test_golden.py -p no:cacheprovider

Update mode writes the files and then fails every test that wrote one, so an update run
never passes silently; review the diff (``git diff tests/render/golden``) and run the tests
again without the variable.
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from factories import make_item

# imported first: importing the renderer on its own runs into the render -> digest ->
# edition -> render import cycle (newsletter.render.storypage), which breaks this module
# when it runs alone, as its update command does
import newsletter.digest  # noqa: F401
from newsletter.config import from_dict
from newsletter.models import DigestEntry, Item
from newsletter.render.i18n import catalog_locales
from newsletter.render.renderer import Renderer, personalize

GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE = os.environ.get("NEWSLETTER_UPDATE_GOLDEN") == "1"
#: every locale with a catalog
LOCALES = catalog_locales()


def _item(n: int, *, title: str, summary: str, lang: str, day: int, **extra: str) -> Item:
    return make_item(
        n,
        when=datetime(2012, 10, day, 10, 0, tzinfo=UTC),
        prefix="golden",
        title=title,
        body_html=summary,
        summary_html=summary,
        link=extra.get("link"),
        lang=lang,
        image=extra.get("image"),
    )


# An invented edition: a Bulgarian lead with a picture, an English item and a short
# Bulgarian note without a link.
ITEMS = [
    _item(
        1,
        title="Клъстерът на форума за еко-иновации в Брюксел",
        summary="<p>Двама представители на клъстера се срещнаха с над осемдесет "
        "експерти от двадесет държави и представиха <b>регионалния ни опит</b>.</p>",
        lang="bg",
        day=15,
        link="https://cluster.example.org/bg/news/eco-forum",
        image="https://cluster.example.org/media/eco-forum.jpg",
    ),
    _item(
        2,
        title="Partners from Constanța visit the hydrogen lab",
        summary="<p>Engineers from the Romanian partner cluster toured the university "
        "laboratory & discussed a joint pilot project.</p>",
        lang="en",
        day=12,
        link="https://cluster.example.org/en/news/hydrogen-visit?from=digest&lang=en",
    ),
    _item(
        3,
        title="Общо събрание на членовете",
        summary="Общото събрание ще се проведе в залата на общината.",
        lang="bg",
        day=10,
    ),
]


#: an invented reader without a name: the golden files show the generic greeting and the
#: "sent to" line
READER = {
    "name": "",
    "email": "petya.ivanova@example.org",
    "unsubscribe_url": "https://news.example.org/unsubscribe/golden-token",
    "preferences_url": "https://news.example.org/preferences/golden-token",
}


def _entries(locale: str) -> list[DigestEntry]:
    return [DigestEntry(it, it.lang, it.lang != locale) for it in ITEMS]


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    """Fixed settings (not the conftest fixture: the config path must not vary)."""
    root = Path(__file__).resolve().parents[2]
    raw = {
        "organisation": {
            "name": "Golden Energy Cluster",
            "names": {"bg": "Златен енергиен клъстер", "ru": "Золотой энергетический кластер"},
            "address": "1 Example Street, 9000 Varna, Bulgaria",
            "website": "https://cluster.example.org",
            "logo_url": "https://cluster.example.org/media/logo.png",
            "from_email": "news@cluster.example.org",
        },
        "locales": {"default": "bg", "available": LOCALES},
        "paths": {"templates": str(root / "templates")},
        "segments": [{"name": "members"}],
    }
    return Renderer(from_dict(raw, root / "tests" / "golden-config.toml"))


#: the command that writes the golden files (see the module docstring)
UPDATE_COMMAND = "NEWSLETTER_UPDATE_GOLDEN=1 pytest tests/render/test_golden.py -p no:cacheprovider"


def _check(path: Path, actual: str) -> bool:
    """Compare ``actual`` with the golden file; in update mode write it instead and say so."""
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8", newline="\n")
        return True
    assert path.exists(), f"{path} is missing; create it with {UPDATE_COMMAND}"
    expected = path.read_text(encoding="utf-8")
    assert actual == expected, (
        f"{path.name} differs from the golden file; if the change is intended, run "
        f"{UPDATE_COMMAND} and review the diff"
    )
    return False


@pytest.mark.parametrize("locale", LOCALES)
def test_golden(renderer: Renderer, locale: str) -> None:
    """The fixed edition renders exactly as checked in, HTML and text."""
    variant = renderer.render(
        segment=renderer.settings.segments[0],
        period_label="8–14.10.2012",
        edition_date=date(2012, 10, 15),
        entries=_entries(locale),
        locale=locale,
        view_url=f"https://news.example.org/archive/members/2012-W42/{locale}",
    )
    assert variant.item_count == 3
    # personalized: a variant's markers carry a random nonce drawn per render
    html, text = personalize(variant, READER)
    wrote = [
        path.name
        for path, actual in (
            (GOLDEN / f"{locale}.html", html),
            (GOLDEN / f"{locale}.txt", f"Subject: {variant.subject}\n\n{text}"),
        )
        if _check(path, actual)
    ]
    if wrote:
        pytest.fail(
            f"update mode wrote {', '.join(wrote)}: review git diff tests/render/golden, "
            "then run the tests again without NEWSLETTER_UPDATE_GOLDEN"
        )


def test_every_golden_file_belongs_to_a_locale() -> None:
    """No golden pair is left behind for a locale whose catalog is gone."""
    stale = sorted(p.name for p in GOLDEN.iterdir() if p.stem not in LOCALES)
    assert not stale, f"golden files of no catalog's locale: {stale}"
