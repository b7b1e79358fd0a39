"""What subscribers see: the default templates are valid, safe, accessible email in 9 locales.

Every check runs on what a subscriber receives (a variant personalized with real-looking
values), for every locale, with and without sections. The deny-list of CSS and the
contrast formula are written out here on purpose, independently of the library's own
checks (``newsletter.render.htmlcheck``, ``newsletter.render.palette``), which get their
own tests below.
"""

from __future__ import annotations

import itertools
import logging
import re
import shutil
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from pathlib import Path

import lxml.etree
import lxml.html
import pytest

from newsletter.config import Settings
from newsletter.errors import ConfigError
from newsletter.gather.sanitize import summarize
from newsletter.models import DigestEntry, RenderedVariant
from newsletter.render import htmlcheck, plaintext
from newsletter.render.palette import Palette, contrast
from newsletter.render.renderer import Renderer, personalize, tidy_summary
from newsletter.send.personalize import markers, new_nonce
from render.samples import DEMO, LOCALES, ROOT, TITLE, VALUES, demo_settings, entries, story

GMAIL_CLIP = 102 * 1024


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    """One renderer over the demo configuration, shared by the module (rendering is pure)."""
    return Renderer(demo_settings())


def render(
    renderer: Renderer, locale: str, segment: str = "members", count: int = 15
) -> RenderedVariant:
    """A variant of ``count`` stories for ``locale`` and ``segment``."""
    seg = renderer.settings.segment(segment)
    return renderer.render(
        segment=seg,
        period_label="16–22.11.2026",
        edition_date=date(2026, 11, 23),
        entries=entries(locale, count),
        locale=locale,
        view_url=f"https://news.cluster.example.org/archive/{segment}/2026-W48/{locale}",
    )


_CACHE: dict[tuple[str, str], tuple[RenderedVariant, str, str]] = {}


def received(renderer: Renderer, locale: str, segment: str = "members") -> tuple[str, str]:
    """(html, text) as a subscriber receives them (rendered once per module)."""
    key = (locale, segment)
    if key not in _CACHE:
        variant = render(renderer, locale, segment)
        _CACHE[key] = (variant, *personalize(variant, VALUES))
    return _CACHE[key][1], _CACHE[key][2]


VARIANTS = [(loc, seg) for loc in LOCALES for seg in ("members", "by-tag")]


def parse(html: str) -> lxml.html.HtmlElement:
    """Parse with libxml2's HTML parser and fail on any parser error or warning."""
    parser = lxml.etree.HTMLParser()
    lxml.etree.fromstring(html.encode("utf-8"), parser)
    errors = [f"line {e.line}: {e.message}" for e in parser.error_log]
    assert not errors, errors
    return lxml.html.document_fromstring(html)


# -- structure and safety ------------------------------------------------------------------


@pytest.mark.parametrize(("locale", "segment"), VARIANTS)
def test_html_parses_and_is_safe(renderer: Renderer, locale: str, segment: str) -> None:
    """No parser errors, no active content, sized and described images, absolute URLs."""
    html, _text = received(renderer, locale, segment)
    assert html.startswith("<!DOCTYPE html>")
    doc = parse(html)
    for tag in ("script", "form", "iframe", "object", "embed", "input", "link", "base"):
        assert not doc.xpath(f"//{tag}"), tag
    assert not [a for el in doc.iter() for a in getattr(el, "attrib", {}) if a.startswith("on")]
    images = doc.xpath("//img")
    assert len(images) == 2, "logo and lead image"
    for img in images:
        assert img.get("alt", "").strip(), lxml.html.tostring(img)
        assert img.get("width", "").isdigit() and img.get("height", "").isdigit()
    for attr in ("href", "src"):
        for value in doc.xpath(f"//@{attr}"):
            assert value.startswith(("https://", "http://", "mailto:")), value
    assert "@@nl" not in html
    styles = " ".join(s.text or "" for s in doc.xpath("//style"))
    assert "@import" not in styles and "@font-face" not in styles


# Properties Outlook's Word engine or Gmail drop; written out here, not imported.
DENIED = re.compile(
    r"^(position|float|flex(-.*)?|grid(-.*)?|gap|transform|transition|animation|clip-path"
    r"|object-fit|background-image)$"
)
DENIED_DISPLAY = {"flex", "inline-flex", "grid", "inline-grid"}


@pytest.mark.parametrize(("locale", "segment"), VARIANTS)
def test_inline_styles_avoid_unsupported_css(renderer: Renderer, locale: str, segment: str) -> None:
    """Every style attribute sticks to CSS that Gmail, Outlook and Apple Mail support."""
    doc = parse(received(renderer, locale, segment)[0])
    styled = doc.xpath("//*[@style]")
    assert len(styled) > 50, "styles are inlined"
    for el in styled:
        for decl in el.get("style").split(";"):
            prop, _, value = (part.strip().lower() for part in decl.partition(":"))
            if not prop:
                continue
            assert not DENIED.match(prop), (el.tag, decl)
            assert not (prop == "display" and value in DENIED_DISPLAY), (el.tag, decl)
            assert "var(" not in value and "url(" not in value, (el.tag, decl)


@pytest.mark.parametrize("locale", LOCALES)
def test_outlook_ghost_table_and_fluid_column(renderer: Renderer, locale: str) -> None:
    """Outlook gets a fixed 600 px table in conditional comments; others a max-width column."""
    html, _ = received(renderer, locale)
    doc = parse(html)
    ghost = re.findall(r"<!--\[if mso\]>(.*?)<!\[endif\]-->", html, re.S)
    opening = [g for g in ghost if "<table" in g]
    assert len(opening) == 1 and 'width="600"' in opening[0]
    assert 'role="presentation"' in opening[0]
    assert any(g.strip() == "</td></tr></table>" for g in ghost)
    assert all(t.get("role") == "presentation" for t in doc.xpath("//table"))
    container = doc.xpath("//table[contains(@class, 'container')]")[0]
    assert container.get("width") == "600"
    style = container.get("style").replace(" ", "")
    assert "max-width:600px" in style and "width:100%" in style
    # a bulletproof button: a coloured cell with a real link, padding for Outlook too
    cells = doc.xpath("//td[contains(@class, 'button-cell')]")
    assert len(cells) == 15  # 15 stories: the one without a link reads more on its page
    for cell in cells:
        assert cell.get("bgcolor") and "mso-padding-alt" in cell.get("style")
        assert cell.xpath("./a[@href]") and not cell.xpath(".//img")


# -- accessibility -------------------------------------------------------------------------


@pytest.mark.parametrize(("locale", "segment"), VARIANTS)
def test_headings_in_order(renderer: Renderer, locale: str, segment: str) -> None:
    """One h1, then levels go down one step at a time."""
    doc = parse(received(renderer, locale, segment)[0])
    levels = [int(h.tag[1]) for h in doc.iter("h1", "h2", "h3", "h4", "h5", "h6")]
    assert levels[0] == 1 and levels.count(1) == 1
    for before, after in itertools.pairwise(levels):
        assert after <= before + 1, levels
    if segment == "by-tag":
        assert 3 in levels


GENERIC = {"read more", "more", "here", "click here", "link", "details"}


def _accessible_name(a: lxml.html.HtmlElement) -> str:
    if a.get("aria-label"):
        return str(a.get("aria-label"))
    alts = " ".join(img.get("alt", "") for img in a.iter("img"))
    return " ".join((a.text_content() + " " + alts).split())


@pytest.mark.parametrize("locale", LOCALES)
def test_link_text_makes_sense_alone(renderer: Renderer, locale: str) -> None:
    """Every link has a name; no generic "read more" alone; different targets, different names."""
    doc = parse(received(renderer, locale)[0])
    names: dict[str, set[str]] = {}
    english = renderer.translations["en"].gettext("Read more").lower()
    own = renderer.translations[locale].gettext("Read more").lower()
    for a in doc.xpath("//a[@href]"):
        name = _accessible_name(a)
        assert name, lxml.html.tostring(a)
        assert name.lower() not in GENERIC | {english, own}, name
        names.setdefault(name, set()).add(a.get("href"))
    shared = {n: h for n, h in names.items() if len(h) > 1}
    assert not shared, shared


@pytest.mark.parametrize("locale", LOCALES)
def test_lang_and_dir_per_locale(renderer: Renderer, locale: str) -> None:
    """The html element names the locale; stories in another language say so, too."""
    doc = parse(received(renderer, locale)[0])
    assert doc.get("lang") == locale and doc.get("dir") == "ltr"
    foreign = doc.xpath("//td[@lang and @lang != $loc]", loc=locale)
    if locale == "bg":
        assert [td.get("lang") for td in foreign] == ["en"]  # the machine translation
    else:
        assert foreign and all(td.get("dir") == "ltr" for td in foreign)
    # chrome inside a foreign story (date, button) is marked as the reader's language
    for td in foreign:
        assert td.xpath(".//p[contains(@class, 'date')]")[0].get("lang") == locale


def test_rtl_locale_sets_direction_everywhere(tmp_path: Path) -> None:
    """A right-to-left locale (Hebrew, with a catalog of its own) flips dir on every level."""
    catalog = tmp_path / "he" / "LC_MESSAGES" / "messages.po"
    catalog.parent.mkdir(parents=True)
    english = (ROOT / "newsletter/locales/en/LC_MESSAGES/messages.po").read_text("utf-8")
    catalog.write_text(english.replace("Language: en", "Language: he"), encoding="utf-8")
    settings = demo_settings(locales={"default": "he", "available": ["he"]})
    renderer = Renderer(settings, catalogs=tmp_path)
    variant = renderer.render(
        segment=settings.segments[0],
        period_label="16–22.11.2026",
        edition_date=date(2026, 11, 23),
        entries=entries("he", 3),
        locale="he",
        view_url="https://news.cluster.example.org/archive/1/he",
    )
    html, _ = personalize(variant, VALUES)
    doc = parse(html)
    assert doc.get("lang") == "he" and doc.get("dir") == "rtl"
    assert doc.xpath("//div[@role='article']")[0].get("dir") == "rtl"
    assert doc.xpath("//table[contains(@class, 'wrapper')]")[0].get("dir") == "rtl"
    assert '<table role="presentation" width="600" align="center"' in html
    assert 'dir="rtl"><tr><td width="600">' in html  # Outlook's ghost table too
    # stories in Bulgarian stay left to right inside the right-to-left page
    assert all(td.get("dir") == "ltr" for td in doc.xpath("//td[@lang='bg']"))
    styles = " ".join(el.get("style") for el in doc.xpath("//*[@style]"))
    assert "left" not in styles and "right" not in styles, "CSS must be direction-neutral"


# WCAG 2.x relative luminance and contrast ratio, written out independently of the library.
def _lum(hex_color: str) -> float:
    def chan(v: int) -> float:
        c = v / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * chan(r) + 0.7152 * chan(g) + 0.0722 * chan(b)


def _ratio(a: str, b: str) -> float:
    hi, lo = sorted((_lum(a), _lum(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_configured_colours_have_body_text_contrast() -> None:
    """The demo config's colours: every text/background pair the templates use is >= 4.5:1."""
    palette = Palette.from_colors(demo_settings().organisation.colors)
    colors = DEMO["organisation"]["colors"]
    assert palette.text == colors["text"] and palette.surface == colors["surface"]
    for fg, bg, what in palette.text_pairs():
        ratio = _ratio(getattr(palette, fg), getattr(palette, bg))
        assert ratio >= 4.5, f"{what}: {fg} on {bg} is {ratio:.2f}:1"
        assert contrast(getattr(palette, fg), getattr(palette, bg)) == pytest.approx(ratio, 1e-3)
    # the formula itself, on known values
    assert _ratio("#000000", "#ffffff") == pytest.approx(21.0)
    assert _ratio("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)
    assert contrast("#767676", "#ffffff") >= 4.5 > contrast("#777777", "#ffffff")


def test_body_text_colour_in_html_is_the_checked_one(renderer: Renderer) -> None:
    """The colours that reach the inlined styles are the configured ones that were checked."""
    doc = parse(received(renderer, "en")[0])
    colors = DEMO["organisation"]["colors"]
    summary = doc.xpath("//td[contains(@class, 'story')]")[0].get("style").replace(" ", "")
    assert f"color:{colors['text']}" in summary
    footer = doc.xpath("//td[contains(@class, 'footer')]")[0]
    assert f"color:{colors['muted']}" in footer.get("style").replace(" ", "")
    assert footer.get("bgcolor") == colors["background"]


@pytest.mark.parametrize(
    ("colors", "message"),
    [
        (
            {"text": "#9aa5b1"},
            r"organisation\.colors\.text #9aa5b1 on organisation\.colors\.surface",
        ),
        ({"muted": "#a0a0a0"}, r"organisation\.colors\.muted .* contrast 2\.\d\d:1"),
        ({"dark_text": "#3a3f44"}, r"dark_text .* body text in dark mode"),
        ({"accent": "#808080"}, r"text chosen for organisation\.colors\.accent"),
    ],
)
def test_unreadable_colours_are_refused_at_start(
    make_config: Callable[..., Settings], colors: dict[str, str], message: str
) -> None:
    """A palette below 4.5:1 stops the renderer with one line naming the keys and the ratio."""
    settings = make_config(organisation={"colors": colors})
    with pytest.raises(ConfigError, match=message) as info:
        Renderer(settings)
    assert "\n" not in str(info.value) and "config.toml" in str(info.value)


def test_relative_logo_url_is_refused(make_config: Callable[..., Settings]) -> None:
    """A logo a mail client could not load is a config error, not a broken image."""
    with pytest.raises(ConfigError, match=r"organisation\.logo_url: '/img/logo\.png'"):
        Renderer(make_config(organisation={"logo_url": "/img/logo.png"}))


# -- dark mode, branding, content ----------------------------------------------------------


def test_dark_mode_rules_cover_every_text_and_keep_the_masthead(renderer: Renderer) -> None:
    """prefers-color-scheme, Outlook.com's data-ogsc/data-ogsb hooks; no dark-on-dark."""
    html, _ = received(renderer, "en")
    doc = parse(html)
    assert doc.xpath("//meta[@name='color-scheme']")[0].get("content") == "light dark"
    css = " ".join(s.text or "" for s in doc.xpath("//style"))
    dark = css[css.index("@media (prefers-color-scheme: dark)") :]
    colors = renderer.palette
    for cls in (".intro", ".story", ".title-link", ".summary", ".heading", ".date", ".footer a"):
        for prefix in ("", "[data-ogsc] ", "[data-ogsb] "):
            assert f"{prefix}{cls}" in dark, (prefix, cls)
    assert f"color: {colors.dark_text} !important" in dark
    assert f".masthead {{ background-color: {colors.primary} !important; }}" in dark
    assert ".lead-image { background-color: #ffffff !important; }" in dark
    # every class whose text gets a light dark-mode colour also gets a dark background
    for text_class in (".intro", ".lead", ".story", ".empty"):
        assert re.search(
            rf"\{text_class}[ ,][^{{]*\{{ background-color: {colors.dark_surface}", dark
        )


def test_branding_comes_from_config(make_config: Callable[..., Settings]) -> None:
    """Logo, its size, colours, address per locale and reason per locale: no code change."""
    settings = make_config(
        organisation={
            "logo_url": "https://brand.example.org/logo-white.png",
            "logo_width": 200,
            "logo_height": 40,
            "addresses": {"en": "PO Box 7, Varna"},
            "reasons": {"en": "You asked for energy news at the Varna expo."},
            "colors": {"primary": "#1d3d6b", "accent": "#8a1538"},
        },
        locales={"default": "bg", "available": ["bg", "en"]},
    )
    renderer = Renderer(settings)
    out = {}
    for locale in ("bg", "en"):
        variant = renderer.render(
            segment=settings.segments[0],
            period_label="W48",
            edition_date=date(2026, 11, 23),
            entries=entries(locale, 3),
            locale=locale,
            view_url=f"https://news.example.org/archive/1/{locale}",
        )
        out[locale] = personalize(variant, VALUES)
    doc = parse(out["en"][0])
    logo = doc.xpath("//td[contains(@class, 'masthead')]//img")[0]
    assert logo.get("src") == "https://brand.example.org/logo-white.png"
    assert (logo.get("width"), logo.get("height")) == ("200", "40")
    assert logo.get("alt") == "Test Energy Cluster"
    assert "#1d3d6b" in out["en"][0] and "#8a1538" in out["en"][0]
    assert "PO Box 7, Varna" in out["en"][0] and "PO Box 7, Varna" in out["en"][1]
    assert "You asked for energy news at the Varna expo." in out["en"][1]
    # Bulgarian readers get the general address and the catalog's reason
    assert "1 Example Street, 9000 Varna" in out["bg"][0]
    assert "Получавате този имейл, защото сте в списъка" in out["bg"][0]


@pytest.mark.parametrize("locale", LOCALES)
def test_footer_links_and_lead_item(renderer: Renderer, locale: str) -> None:
    """Footer: view in browser, preferences, unsubscribe, address; the lead has its picture."""
    html, text = received(renderer, locale)
    doc = parse(html)
    footer = doc.xpath("//td[contains(@class, 'footer')]")[0]
    hrefs = footer.xpath(".//a/@href")
    assert f"https://news.cluster.example.org/archive/members/2026-W48/{locale}" in hrefs
    assert VALUES["preferences_url"] in hrefs and VALUES["unsubscribe_url"] in hrefs
    assert DEMO["organisation"]["address"] in footer.text_content() or locale == "bg"
    assert VALUES["email"] in footer.text_content()
    lead = doc.xpath("//td[contains(@class, 'lead')]")[0]
    img = lead.xpath(".//img")[0]
    assert img.get("src") == "https://cluster.example.org/media/2026/11/forum-1.jpg"
    assert img.get("alt") == TITLE.format(n=1), "no alt from the source: the title"
    assert lead.xpath(".//h2")[0].text_content() == TITLE.format(n=1)
    preheader = doc.xpath("//body/div")[0]
    assert "display:none" in preheader.get("style").replace(" ", "")
    assert preheader.text_content().startswith(TITLE.format(n=1))
    for url in (VALUES["unsubscribe_url"], VALUES["preferences_url"]):
        assert url in text


def test_sections_per_tag_and_per_source(renderer: Renderer) -> None:
    """Sections follow first appearance; titles per locale from config, else the name."""
    doc = parse(received(renderer, "bg", "by-tag")[0])
    titles = [h.text_content() for h in doc.xpath("//h2[contains(@class, 'section-title')]")]
    # story 1 (events) is the lead; then 2 (no tag), 3 (partners), 4 (events) ...
    assert titles == ["Партньори", "Събития", "Още новини"]
    text = received(renderer, "bg", "by-tag")[1]
    assert text.index("Партньори") < text.index("Събития") < text.index("Още новини")
    ka = parse(received(renderer, "ka", "by-tag")[0])
    assert [h.text_content() for h in ka.xpath("//h2[contains(@class, 'section-title')]")] == [
        "partners",
        "events",
        "სხვა სიახლეები",
    ]
    by_source = render(renderer, "en", "by-source")
    doc = parse(personalize(by_source, VALUES)[0])
    titles = [h.text_content() for h in doc.xpath("//h2[contains(@class, 'section-title')]")]
    assert titles == ["cluster-news", "partner-news"]
    assert len(doc.xpath("//h3")) == 14


# -- size and plain text -------------------------------------------------------------------


@pytest.mark.parametrize("locale", LOCALES)
def test_fifteen_items_fit_the_gmail_budget(renderer: Renderer, locale: str) -> None:
    """A 15-story digest with long titles, labels and URLs: decoded HTML under 102 KB."""
    for segment in ("members", "by-tag"):
        variant = render(renderer, locale, segment)
        assert variant.item_count == 15, "nothing was trimmed to fit"
        html, _ = received(renderer, locale, segment)
        assert len(html.encode("utf-8")) < GMAIL_CLIP


URL = re.compile(r"(?:https?://|mailto:)\S+")


@pytest.mark.parametrize(("locale", "segment"), VARIANTS)
def test_text_part_wraps_at_72_and_keeps_urls_whole(
    renderer: Renderer, locale: str, segment: str
) -> None:
    """No line over 72 columns unless it is one URL; every link of the HTML is in the text."""
    html, text = received(renderer, locale, segment)
    for line in text.splitlines():
        assert len(line) <= 72 or URL.fullmatch(line), line
    doc = parse(html)
    links = {
        str(h)
        for h in doc.xpath("//td[contains(@class, 'story') or contains(@class, 'lead')]//a/@href")
    }
    links |= {VALUES["unsubscribe_url"], VALUES["preferences_url"]}
    assert len(links) >= 16
    found = set(URL.findall(text))
    assert links <= found, links - found


def test_plaintext_helpers() -> None:
    """wrap never splits a word or URL (not even at hyphens); link_line moves long URLs down."""
    url = "https://cluster.example.org/bg/novini/eco-forum-" + "x" * 40
    wrapped = plaintext.wrap("Прочетете повече на " + url + " или в офиса на клъстера днес.")
    assert url in wrapped.splitlines()
    assert all(len(line) <= 72 or line == url for line in wrapped.splitlines())
    assert plaintext.link_line("Read more", "https://a.example.org/x") == (
        "Read more: https://a.example.org/x"
    )
    assert plaintext.link_line("Read more", url) == f"Read more:\n{url}"
    marker = markers(new_nonce()).placeholders["unsubscribe_url"]
    assert plaintext.link_line("Unsubscribe", marker) == f"Unsubscribe:\n{marker}"
    assert plaintext.wrap("a\n\n" + "b " * 50).split("\n")[:2] == ["a", ""]


def test_relative_item_urls_are_left_out(renderer: Renderer) -> None:
    """An item whose link or image is relative gets neither (it would point nowhere)."""
    item = replace(story(1), link="/bg/novini/1", image="media/1.jpg")
    variant = renderer.render(
        segment=renderer.settings.segments[0],
        period_label="W48",
        edition_date=date(2026, 11, 23),
        entries=[DigestEntry(item, "bg", False)],
        locale="bg",
        view_url="https://news.cluster.example.org/archive/1/bg",
    )
    doc = parse(personalize(variant, VALUES)[0])
    assert len(doc.xpath("//img")) == 1  # the logo only
    assert not [h for h in doc.xpath("//@href") if "novini" in h]
    assert TITLE.format(n=1) in doc.text_content()


# -- the library's own email check ---------------------------------------------------------


def test_htmlcheck_finds_each_kind_of_problem() -> None:
    """Each rule of newsletter.render.htmlcheck fires on a small bad document, and only there."""
    bad = (
        '<html><head><style>@import url("https://fonts.example.com/x.css");</style>'
        '<link rel="stylesheet" href="https://example.com/x.css"></head><body>'
        '<div style="display: flex; position:absolute; color: red">x</div>'
        '<p style="grid-template-columns: 1fr 1fr; color: var(--c)">y</p>'
        '<img src="/logo.png"><img src="https://example.org/a.png" alt="a" width="10" height="10">'
        '<a href="page.html">p</a><a href="@@nl:unsubscribe_url@@">u</a>'
        "<form></form><script>alert(1)</script><iframe></iframe>"
        '<table background="https://example.org/bg.png"><tr><td>z</td></tr></table></body></html>'
    )
    found = "\n".join(htmlcheck.problems(bad, ["@@nl:unsubscribe_url@@"]))
    for expected in (
        "display: flex",
        "position: absolute",
        "grid-template-columns",
        "var(--c)",
        "src '/logo.png' is not an absolute URL",
        "href 'page.html'",
        "no alt text",
        "no width in pixels",
        "<form> is not allowed",
        "<script> is not allowed",
        "<iframe> is not allowed",
        "@import",
        "external stylesheets",
        "background images",
    ):
        assert expected in found, expected
    assert "unsubscribe_url" not in found and "color: red" not in found
    assert htmlcheck.problems(received_html_for_check()) == []


def received_html_for_check() -> str:
    """A real personalized variant (defaults, three stories) for the clean-run check."""
    settings = demo_settings()
    variant = Renderer(settings).render(
        segment=settings.segments[1],
        period_label="W48",
        edition_date=date(2026, 11, 23),
        entries=entries("de", 5),
        locale="de",
        view_url="https://news.cluster.example.org/archive/1/de",
    )
    return personalize(variant, VALUES)[0]


def test_customized_template_with_unsafe_css_is_reported(
    make_config: Callable[..., Settings], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An editor's template using flexbox and a relative image is logged at render time."""
    folder = tmp_path / "templates"
    shutil.copytree(ROOT / "templates", folder)
    page = (folder / "digest.html").read_text(encoding="utf-8")
    page = page.replace(
        '<td class="intro">',
        '<td class="intro"><div style="display:flex"><img src="banner.png" alt=""></div>',
    )
    (folder / "digest.html").write_text(page, encoding="utf-8")
    settings = make_config(paths={"templates": str(folder)})
    with caplog.at_level(logging.WARNING, logger="newsletter.render.renderer"):
        Renderer(settings).render(
            segment=settings.segments[0],
            period_label="W48",
            edition_date=date(2026, 11, 23),
            entries=entries("bg", 2),
            locale="bg",
            view_url="https://news.example.org/archive/1/bg",
        )
    assert "display: flex" in caplog.text
    assert "'banner.png' is not an absolute URL" in caplog.text
    assert "no width in pixels" in caplog.text


# -- summaries -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("summary", "complete", "expected"),
    [
        # the tail introduces a list the digest does not show: cut back to the sentence
        (
            "Обучението е в Бургас. Ще се проведе на 8 декември 2026 г. в инкубатора. "
            "Ще бъдат разгледани следните теми:",
            False,
            "Обучението е в Бургас. Ще се проведе на 8 декември 2026 г. в инкубатора.",
        ),
        # the first item of a list, picked as a paragraph of its own
        (
            "Developers will meet investors and export credit agencies. Offshore wind",
            False,
            "Developers will meet investors and export credit agencies.",
        ),
        # nothing to cut back to: an ellipsis instead of the colon
        ("Кой може да кандидатства:", False, "Кой може да кандидатства…"),
        (
            "Short. Then a long tail that is cut off here, before it could end",
            False,
            "Short. Then a long tail that is cut off here, before it could end…",
        ),
        # a complete text is left alone, unless it ends on a colon
        ("A note without a full stop", True, "A note without a full stop"),
        ("Topics:", True, "Topics…"),
        ("Ends well.", False, "Ends well."),
        ("Той каза „стига.“", False, "Той каза „стига.“"),
        ("Cut by the length limit…", False, "Cut by the length limit…"),
    ],
)
def test_tidy_summary(summary: str, complete: bool, expected: str) -> None:
    """A summary never stops on a colon or a cut-off list item; "2026 г. в" is no sentence end."""
    assert tidy_summary(summary, complete) == expected


def test_rendered_summary_reads_as_finished(renderer: Renderer) -> None:
    """A story summarized up to "the topics are:" (as gather does) ends on its last sentence."""
    body = (
        "<p>Клъстерът организира тридневно обучение за общински енергийни мениджъри. То ще "
        "се проведе от 8 до 10 декември 2026 г. в Бизнес инкубатора в Бургас.</p>"
        "<p>Ще бъдат разгледани следните теми:</p><ul><li>изготвяне и актуализиране на "
        "общинските програми за енергийна ефективност и на плановете за устойчива "
        "енергия, с примери от общините в Бургаска, Варненска и Добричка област и с "
        "упражнения по реални данни;</li><li>енергийни обследвания.</li></ul>"
    )
    limit = renderer.settings.render.summary_chars
    item = replace(story(1), body_html=body, summary_html=summarize(body, limit))
    assert item.summary_html.endswith("теми:")  # what gather stores
    empty = replace(story(2), body_html="", summary_html=None)
    variant = renderer.render(
        segment=renderer.settings.segments[0],
        period_label="W48",
        edition_date=date(2026, 11, 23),
        entries=[DigestEntry(item, "bg", False), DigestEntry(empty, "bg", False)],
        locale="bg",
        view_url="https://news.cluster.example.org/archive/1/bg",
    )
    html, text = personalize(variant, VALUES)
    doc = parse(html)
    summaries = [p.text_content() for p in doc.xpath("//p[contains(@class, 'summary')]")]
    assert summaries == [
        "Клъстерът организира тридневно обучение за общински енергийни мениджъри. То ще се "
        "проведе от 8 до 10 декември 2026 г. в Бизнес инкубатора в Бургас."
    ], "one summary: a story without text gets no empty paragraph"
    assert "теми" not in html and "теми" not in text
    assert "инкубатора в Бургас." in " ".join(text.split())
