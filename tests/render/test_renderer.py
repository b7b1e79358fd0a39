"""The renderer: valid email HTML in nine locales, placeholders, size budget, errors."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import lxml.html
import pytest
from factories import make_item

from newsletter.config import Settings
from newsletter.errors import LocaleError, RenderError, TemplateError
from newsletter.models import DigestEntry, Item, RenderedVariant
from newsletter.render.i18n import catalog_locales
from newsletter.render.renderer import Renderer, personalize
from newsletter.send.personalize import markers

#: every locale with a catalog
LOCALES = catalog_locales()
GMAIL_CLIP = 102 * 1024

# Invented sample text in the style of the cluster's news (not copied from any source).
TITLE = "Енергийният клъстер представи опита си с еко-иновациите на форум в Брюксел № {n}"
SUMMARY = (
    "<p>Двама експерти на клъстера разказаха пред колеги от двадесет държави как общините "
    "по Черноморието планират <b>енергийни обновявания</b>, кои мерки са дали най-голяма "
    "икономия и какви партньорства търсят за следващия програмен период. Участниците "
    "обмениха добри практики за управление на клъстери и за привличане на нови членове.</p>"
)


def make_story(n: int, *, lang: str = "bg", image: bool = False, link: bool = True) -> Item:
    """A stored-looking item with fixed dates."""
    return make_item(
        n,
        title=TITLE.format(n=n),
        body_html=SUMMARY,
        summary_html=SUMMARY,
        link=f"https://cluster.example.org/news/{n}" if link else None,
        lang=lang,
        image=f"https://cluster.example.org/media/{n}.jpg" if image else None,
        content_hash=f"hash-{n}",
    )


def make_entries(count: int, locale: str) -> list[DigestEntry]:
    """``count`` Bulgarian items, labelled as fallback for readers of other languages."""
    return [
        DigestEntry(item=make_story(n, image=n == 1), shown_lang="bg", is_fallback=locale != "bg")
        for n in range(1, count + 1)
    ]


@pytest.fixture
def settings(make_config: Callable[..., Settings]) -> Settings:
    """All nine locales, default budget."""
    return make_config(locales={"default": "bg", "available": LOCALES})


@pytest.fixture
def renderer(settings: Settings) -> Renderer:
    """A renderer over the project's templates and catalogs."""
    return Renderer(settings)


def render(renderer: Renderer, locale: str, count: int = 3, **kw: Any) -> RenderedVariant:
    """Render a digest of ``count`` items for ``locale``."""
    args: dict[str, Any] = {
        "segment": renderer.settings.segments[0],
        "period_label": "8–14.10.2012",
        "edition_date": date(2012, 10, 15),
        "entries": make_entries(count, locale),
        "locale": locale,
        "view_url": f"https://news.example.org/archive/2012-w42/{locale}",
    }
    args.update(kw)
    return renderer.render(**args)


VALUES = {
    "name": "Мария <script>alert(1)</script> & Co",
    "email": "maria.petrova@example.org",
    "unsubscribe_url": "https://news.example.org/u/abc.def?x=1&y=2",
    "preferences_url": "https://news.example.org/p/abc.def",
}


@pytest.mark.parametrize("locale", LOCALES)
def test_html_is_valid_email_markup(renderer: Renderer, locale: str) -> None:
    """Parses, no script, every image sized and described, every link absolute."""
    variant = render(renderer, locale, count=5)
    doc = lxml.html.document_fromstring(variant.html)
    assert doc.get("lang") == locale
    assert doc.get("dir") == "ltr"
    assert not doc.xpath("//script")
    images = doc.xpath("//img")
    assert images, "the lead item has an image"
    for img in images:
        assert img.get("alt"), lxml.html.tostring(img)
        assert (img.get("width") or "").isdigit() and (img.get("height") or "").isdigit()
    own = set(markers(variant.nonce).placeholders.values())
    for attr in ("href", "src"):
        for value in doc.xpath(f"//@{attr}"):
            assert value in own or value.startswith(("https://", "http://", "mailto:")), value
    tables = doc.xpath("//table")
    assert all(t.get("role") == "presentation" for t in tables)
    assert doc.xpath("//table[@width='600']")


@pytest.mark.parametrize("locale", LOCALES)
def test_placeholders_survive_inlining(renderer: Renderer, locale: str) -> None:
    """Markers come out of Jinja and premailer unchanged, in text and in URL attributes."""
    variant = render(renderer, locale)
    doc = lxml.html.document_fromstring(variant.html)
    hrefs = set(doc.xpath("//a/@href"))
    placeholders = markers(variant.nonce).placeholders
    assert placeholders["unsubscribe_url"] in hrefs
    assert placeholders["preferences_url"] in hrefs
    for key, marker in placeholders.items():
        assert marker in variant.html, key
        assert marker in variant.text, key


def test_css_is_inlined_and_client_fixes_kept(renderer: Renderer) -> None:
    """Rules become style attributes; media queries stay in a kept block with !important."""
    variant = render(renderer, "en")
    doc = lxml.html.document_fromstring(variant.html)
    heading = doc.xpath("//h1")[0]
    assert "color:#0b5e7a" in heading.get("style").replace(" ", "")
    styles = [s.text or "" for s in doc.xpath("//style")]
    assert any("@media" in s and "!important" in s for s in styles)
    assert "data-premailer" not in variant.html


def test_colours_come_from_settings(make_config: Callable[..., Settings]) -> None:
    """The organisation's colours reach the inlined styles."""
    settings = make_config(organisation={"colors": {"primary": "#123456"}})
    variant = render(Renderer(settings), "bg")
    assert "#123456" in variant.html


def test_personalize_escapes_html_and_keeps_text_raw(renderer: Renderer) -> None:
    """Values are escaped in HTML (no live script), raw in plain text; no marker is left."""
    variant = render(renderer, "bg")
    html, text = personalize(variant, VALUES)
    assert "<script>alert" not in html
    assert "Мария &lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in html
    assert "x=1&amp;y=2" in html
    doc = lxml.html.document_fromstring(html)
    assert not doc.xpath("//script")
    assert VALUES["unsubscribe_url"] in doc.xpath("//a/@href")
    assert "Здравейте, Мария <script>alert(1)</script> & Co," in text
    assert VALUES["unsubscribe_url"] in text
    assert "@@nl" not in html and "@@nl" not in text


def test_personalize_without_a_name_greets_generically(renderer: Renderer) -> None:
    """An empty name picks the greeting without a name, in the reader's language."""
    html, text = personalize(render(renderer, "de"), {**VALUES, "name": ""})
    assert "Guten Tag," in text and "Guten Tag, ," not in text
    assert "Guten Tag,</p>" in html


def test_personalize_missing_value_is_an_error(renderer: Renderer) -> None:
    """A placeholder without a value is not sent as a marker."""
    values = {k: v for k, v in VALUES.items() if k != "unsubscribe_url"}
    with pytest.raises(RenderError, match="unsubscribe_url"):
        personalize(render(renderer, "en"), values)


@pytest.mark.parametrize("locale", LOCALES)
def test_fifteen_items_stay_under_gmail_clip(renderer: Renderer, locale: str) -> None:
    """A full digest stays well under the ~102 KB at which Gmail hides the footer."""
    variant = render(renderer, locale, count=15)
    assert variant.item_count == 15
    assert variant.html_bytes < GMAIL_CLIP
    html, _text = personalize(variant, VALUES)
    assert len(html.encode()) < GMAIL_CLIP


def test_over_budget_trims_from_the_end(
    make_config: Callable[..., Settings], renderer: Renderer, caplog: pytest.LogCaptureFixture
) -> None:
    """With "trim", items are dropped from the end with a warning until the HTML fits."""
    small = render(renderer, "ru", count=4).html_bytes
    full = render(renderer, "ru", count=15).html_bytes
    assert small < full
    settings = make_config(
        locales={"default": "bg", "available": LOCALES},
        render={"max_html_bytes": small + 200, "over_budget": "trim"},
    )
    with caplog.at_level(logging.WARNING, logger="newsletter.render.renderer"):
        variant = render(Renderer(settings), "ru", count=15)
    assert variant.html_bytes <= small + 200
    assert 4 <= variant.item_count < 15
    assert f"№ {variant.item_count}<" in variant.html
    assert f"№ {variant.item_count + 1}<" not in variant.html
    assert "dropped" in caplog.text and "ru" in caplog.text


def test_over_budget_refuses(make_config: Callable[..., Settings]) -> None:
    """With "refuse", a digest above the budget is an error naming segment and sizes."""
    settings = make_config(render={"max_html_bytes": 5000, "over_budget": "refuse"})
    with pytest.raises(RenderError, match=r"members.*5000"):
        render(Renderer(settings), "bg", count=15)


def test_subject_preheader_and_from_name_per_locale(renderer: Renderer) -> None:
    """Defaults come from the catalog; the From name from the organisation's names."""
    bg = render(renderer, "bg", count=15)
    assert bg.subject == "Тестов енергиен клъстер: 15 нови публикации"
    assert bg.from_name == "Тестов енергиен клъстер"
    assert bg.preheader == TITLE.format(n=1) + " и още 14 публикации"
    ru = render(renderer, "ru", count=21)
    assert ru.subject == "Test Energy Cluster: 21 новость"
    one = render(renderer, "de", count=1)
    assert one.subject == "Test Energy Cluster: 1 neuer Beitrag"
    assert one.preheader == TITLE.format(n=1)
    assert f"<title>{one.subject}</title>" in one.html
    assert one.preheader in one.html


def test_segment_subject_expression(make_config: Callable[..., Settings]) -> None:
    """A segment's subject and preheader are Jinja with gettext and the edition's data."""
    segment = {
        "name": "partners",
        "subject": "{{ cluster_name }}: {{ ngettext('%(num)d item in this issue', "
        "'%(num)d items in this issue', items|length) }}",
        "preheader": "{{ period_label }} · {{ date }}",
    }
    settings = make_config(locales={"default": "bg", "available": LOCALES}, segments=[segment])
    variant = render(Renderer(settings), "uk", count=5)
    assert variant.subject == "Test Energy Cluster: 5 новин у цьому випуску"
    assert variant.preheader == "8–14.10.2012 · 15 жовтня 2012\u00a0р."


def test_fallback_label_and_localized_dates(renderer: Renderer) -> None:
    """A Bulgarian item for a German reader is labelled; dates are in German."""
    variant = render(renderer, "de")
    assert "Original auf Bulgarisch" in variant.html
    assert "[Original auf Bulgarisch]" in variant.text
    assert "Veröffentlicht am 15. Oktober 2012" in variant.html
    assert "Ausgabe vom Montag, 15. Oktober 2012" in variant.text
    doc = lxml.html.document_fromstring(variant.html)
    assert doc.xpath("//td[@lang='bg']"), "items in another language carry their lang"
    native = render(renderer, "bg")
    assert "Оригинал на" not in native.html
    assert "Публикувано на 15 октомври 2012" in native.html


def test_item_without_link_reads_more_on_its_story_page(renderer: Renderer) -> None:
    """No link of its own (or only a relative one): title and "read more" open the story's
    public page in the reader's locale, named by the story's original; HTML and text agree."""
    relative = replace(make_story(2), link="/news/2")
    entries = [
        DigestEntry(make_story(1, link=False), "bg", True, story_id=7),
        DigestEntry(relative, "bg", True),
        DigestEntry(make_story(3), "bg", True),
    ]
    variant = render(renderer, "de", entries=entries)
    base = renderer.settings.web.base_url
    doc = lxml.html.document_fromstring(variant.html)
    for story, url in ((1, f"{base}/story/7/de"), (2, f"{base}/story/2/de")):
        (button,) = doc.xpath("//a[@class='button-link'][@href=$url]", url=url)
        assert button.text == "Weiterlesen" and TITLE.format(n=story) in button.get("aria-label")
        assert doc.xpath("//a[@class='title-link'][@href=$url]", url=url)
        assert f"Weiterlesen: {url}" in variant.text
    # an item with a link of its own keeps it
    assert "Weiterlesen: https://cluster.example.org/news/3" in variant.text
    assert f"{base}/story/3/" not in variant.html


def test_text_part_is_plain_text(renderer: Renderer) -> None:
    """The text part comes from its own template: no markup, summary text without tags."""
    variant = render(renderer, "el", count=3)
    assert "<" not in variant.text.replace(markers(variant.nonce).placeholders["name"], "")
    assert "ενεργειακ" not in variant.text  # items are shown in Bulgarian, chrome in Greek
    assert "Διαβάστε περισσότερα: https://cluster.example.org/news/1" in variant.text
    assert "Πρωτότυπο στα βουλγαρικά" in variant.text
    assert "енергийни обновявания" in variant.text


def test_empty_edition_renders_a_note(renderer: Renderer) -> None:
    """Zero items still renders (segments may allow it) and says so."""
    variant = render(renderer, "tr", count=0)
    assert variant.item_count == 0
    assert "Bu sefer yeni haber yok." in variant.html
    assert variant.preheader == "Bu sefer yeni haber yok."


def test_unconfigured_locale_is_refused(make_config: Callable[..., Settings]) -> None:
    """Rendering a locale that was not validated at start is an error, not English."""
    renderer = Renderer(make_config())
    with pytest.raises(RenderError, match="'de'"):
        render(renderer, "de")


def test_missing_catalog_fails_at_construction(make_config: Callable[..., Settings]) -> None:
    """A configured locale without a catalog stops the renderer before anything is sent."""
    settings = make_config(locales={"default": "bg", "available": ["bg", "fr"]})
    with pytest.raises(LocaleError, match=r"'fr'.*fr/LC_MESSAGES/messages\.po"):
        Renderer(settings)


def _copy_templates(tmp_path: Path) -> Path:
    folder = tmp_path / "templates"
    shutil.copytree(Path(__file__).resolve().parents[2] / "templates", folder)
    return folder


def test_template_syntax_error_names_template_and_line(
    make_config: Callable[..., Settings], tmp_path: Path
) -> None:
    """A broken template is reported with its file name and line, at construction."""
    folder = _copy_templates(tmp_path)
    lines = (folder / "digest.html").read_text(encoding="utf-8").splitlines()
    lines[29] = "{% if broken %}<p>never closed"
    (folder / "digest.html").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(TemplateError) as info:
        Renderer(make_config(paths={"templates": str(folder)}))
    message = str(info.value)
    assert "digest.html" in message
    assert "line " in message and "\n" not in message


def test_template_syntax_error_line_number(
    make_config: Callable[..., Settings], tmp_path: Path
) -> None:
    """The line given is the line of the bad tag."""
    folder = _copy_templates(tmp_path)
    lines = (folder / "digest.txt").read_text(encoding="utf-8").splitlines()
    lines[4] = "{{ heading }"
    (folder / "digest.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(TemplateError, match=r"digest\.txt: line 5:"):
        Renderer(make_config(paths={"templates": str(folder)}))


def test_template_runtime_error_names_template_and_line(
    make_config: Callable[..., Settings], tmp_path: Path
) -> None:
    """An undefined variable is caught at render with the template and its line."""
    folder = _copy_templates(tmp_path)
    lines = (folder / "digest.txt").read_text(encoding="utf-8").splitlines()
    lines[2] = "{{ no_such_variable }}"
    (folder / "digest.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    renderer = Renderer(make_config(paths={"templates": str(folder)}))
    with pytest.raises(TemplateError, match=r"digest\.txt: line 3: .*no_such_variable"):
        render(renderer, "bg")


def test_missing_template_is_a_template_error(
    make_config: Callable[..., Settings], tmp_path: Path
) -> None:
    """An empty templates folder names the missing file."""
    with pytest.raises(TemplateError, match=r"digest\.html.*not found"):
        Renderer(make_config(paths={"templates": str(tmp_path)}))


def test_machine_translated_entries_are_labelled(renderer: Renderer) -> None:
    """A machine translation is always marked, naming the language it came from."""
    item = replace(make_story(1, lang="de"), translated_from="bg")
    entry = DigestEntry(item, shown_lang="de", is_fallback=False)
    variant = render(renderer, "de", entries=[entry])
    assert "Maschinelle Übersetzung (Original: Bulgarisch)" in variant.html
    assert "[Maschinelle Übersetzung (Original: Bulgarisch)]" in variant.text
    assert "Original auf" not in variant.html


def test_archive_copy_without_email_drops_the_sent_to_line(renderer: Renderer) -> None:
    """Empty values switch off the lines that would read "sent to ." in a public copy."""
    html, text = personalize(render(renderer, "en"), {**VALUES, "name": "", "email": ""})
    assert "This email was sent to" not in html and "This email was sent to" not in text
    assert "Cluster.\n\nView in browser: https://" in text
    html, text = personalize(render(renderer, "en"), VALUES)
    assert f"This email was sent to {VALUES['email']}.\n\nView in browser" in text
