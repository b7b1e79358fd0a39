"""Catalogs and Babel formatting: every locale complete, nothing fuzzy, no silent English."""

from __future__ import annotations

import os
import re
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.plurals import get_plural
from babel.messages.pofile import read_po

from newsletter.errors import LocaleError
from newsletter.render import i18n

ROOT = Path(__file__).resolve().parents[2]
POT = i18n.LOCALES_DIR / "messages.pot"
#: every locale with a catalog
LOCALES = i18n.catalog_locales()
_FORMAT_NAMES = re.compile(r"%\((\w+)\)[sd]")


def _read(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as fh:
        return read_po(fh, locale=locale)


def _msgids(catalog: Catalog) -> set[str | tuple[str, ...]]:
    return {m.id if isinstance(m.id, str) else tuple(m.id) for m in catalog if m.id}


def test_pot_is_up_to_date_with_templates_and_code() -> None:
    """Every string in templates/ and newsletter/ is in the .pot (run pybabel extract)."""
    with (ROOT / "babel.cfg").open(encoding="utf-8") as fh:
        method_map, options_map = parse_mapping_cfg(fh)
    extracted = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map, options_map
    ):
        extracted.add(message)
    assert extracted, "extraction found nothing: is babel.cfg right?"
    missing = extracted - _msgids(_read(POT))
    hint = f"not in {POT.name}, run pybabel extract + update"
    assert not missing, f"{hint}: {sorted(missing, key=str)}"


#: the staff's languages: the desk's strings are required in these catalogs; the others may
#: leave them out (the desk then shows English there) -- see docs/localization.md
DESK_LOCALES = ("bg", "en")
#: where the desk's strings live
DESK_PATHS = ("templates/desk/", "newsletter/web/desk/")


def _extracted() -> list[tuple[str, str | tuple[str, ...]]]:
    with (ROOT / "babel.cfg").open(encoding="utf-8") as fh:
        method_map, options_map = parse_mapping_cfg(fh)
    found = []
    for file, _line, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map, options_map
    ):
        found.append((file.replace(os.sep, "/"), message))
    return found


def desk_only_msgids() -> set[str | tuple[str, ...]]:
    """Msgids used by the desk and nowhere else (emails and subscriber pages need all)."""
    desk, other = set(), set()
    for file, message in _extracted():
        (desk if file.startswith(DESK_PATHS) else other).add(message)
    return desk - other


def check_catalog(path: Path, locale: str, optional: frozenset[object] = frozenset()) -> None:
    """Assert the catalog at ``path`` translates every msgid of the .pot, with the right
    plural count and placeholders, nothing fuzzy and nothing left in English; msgids in
    ``optional`` may be missing or empty (they then show in English)."""
    catalog = _read(path, locale)
    assert not catalog.fuzzy, f"{path}: header is marked fuzzy"
    expected = get_plural(locale).num_plurals
    assert catalog.num_plurals == expected, f"{path}: Plural-Forms should have {expected} forms"
    by_id = {m.id if isinstance(m.id, str) else tuple(m.id): m for m in catalog if m.id}
    for msgid in _msgids(_read(POT)):
        message = by_id.get(msgid)
        if msgid in optional and (message is None or not message.string):
            continue
        assert message is not None, f"{path}: missing {msgid!r}"
        assert not message.fuzzy, f"{path}: fuzzy {msgid!r}"
        forms = [message.string] if isinstance(message.string, str) else list(message.string)
        source = msgid if isinstance(msgid, str) else msgid[-1]
        assert len(forms) == (1 if isinstance(msgid, str) else expected), msgid
        for form in forms:
            assert form.strip(), f"{path}: empty translation of {msgid!r}"
            assert set(_FORMAT_NAMES.findall(form)) == set(_FORMAT_NAMES.findall(source)), (
                f"{path}: placeholders differ in {form!r}"
            )
            if locale != "en":
                assert form not in (msgid if isinstance(msgid, tuple) else (msgid,)), (
                    f"{path}: {msgid!r} is left in English"
                )


def test_the_locales_are_the_catalogs_present(tmp_path: Path) -> None:
    """A folder counts as a locale exactly when it holds a messages.po."""
    assert "en" in LOCALES and "bg" in LOCALES
    assert (
        sorted(p.name for p in i18n.LOCALES_DIR.iterdir() if i18n.catalog_path(p.name).is_file())
        == LOCALES
    )
    for locale in ("fr", "bg"):
        path = i18n.catalog_path(locale, tmp_path)
        path.parent.mkdir(parents=True)
        path.write_text("", encoding="utf-8")
    (tmp_path / "xx" / "LC_MESSAGES").mkdir(parents=True)  # no catalog: not a locale
    assert i18n.catalog_locales(tmp_path) == ["bg", "fr"]


@pytest.mark.parametrize("locale", LOCALES)
def test_catalog_complete_not_fuzzy_and_real(locale: str) -> None:
    """Each catalog translates every msgid of the .pot, with correct plural count and formats;
    the desk's own strings are required in the staff's languages (bg, en) only."""
    optional = frozenset() if locale in DESK_LOCALES else frozenset(desk_only_msgids())
    check_catalog(i18n.catalog_path(locale), locale, optional)


def test_desk_strings_are_found_and_required_in_bg_and_en(tmp_path: Path) -> None:
    """The desk's strings are told apart by where they are used, and bg must have them."""
    desk = desk_only_msgids()
    assert "Log in to the desk" in desk and "Read more" not in desk
    source = i18n.catalog_path("bg").read_text(encoding="utf-8")
    dropped = source.replace('msgid "Log in to the desk"', 'msgid "Log in (gone)"', 1)
    assert dropped != source
    path = tmp_path / "messages.po"
    path.write_text(dropped, encoding="utf-8")
    with pytest.raises(AssertionError, match="missing 'Log in to the desk'"):
        check_catalog(path, "bg")
    check_catalog(path, "bg", frozenset(desk))  # what a locale other than bg/en may do


def test_a_catalog_missing_a_translation_fails(tmp_path: Path) -> None:
    """A new catalog is checked like the others: one missing or empty message fails it."""
    desk = frozenset(desk_only_msgids())
    source = i18n.catalog_path("de").read_text(encoding="utf-8")
    dropped = source.replace('msgid "Read more"', 'msgid "Read more (gone)"', 1)
    assert dropped != source
    path = tmp_path / "messages.po"
    path.write_text(dropped, encoding="utf-8")
    with pytest.raises(AssertionError, match="missing 'Read more'"):
        check_catalog(path, "de", desk)
    empty = tmp_path / "empty.po"
    empty.write_text(source.split("\n\n", 1)[0] + "\n", encoding="utf-8")
    with pytest.raises(AssertionError, match="missing"):
        check_catalog(empty, "de", desk)


@pytest.mark.parametrize("locale", [loc for loc in LOCALES if loc != "en"])
def test_loaded_catalog_does_not_fall_back_to_english(locale: str) -> None:
    """The compiled catalog answers in the locale's language, not with the msgid."""
    t = i18n.load_translations([locale])[locale]
    for msgid in ("Read more", "Unsubscribe", "View in browser", "Manage preferences"):
        assert t.gettext(msgid) != msgid


def test_english_catalog_exists_and_is_used() -> None:
    """English is a catalog too: that is what makes a missing one detectable."""
    t = i18n.load_translations(["en"])["en"]
    assert t.ngettext("%(num)d item in this issue", "%(num)d items in this issue", 1) == (
        "%(num)d item in this issue"
    )
    assert t.gettext("Read more") == "Read more"


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (1, "1 новость"),
        (2, "2 новости"),
        (5, "5 новостей"),
        (11, "11 новостей"),
        (21, "21 новость"),
        (22, "22 новости"),
        (112, "112 новостей"),
    ],
)
def test_russian_plural_forms(n: int, expected: str) -> None:
    """Russian has three forms, chosen by the last digits."""
    t = i18n.load_translations(["ru"])["ru"]
    text = t.ngettext("%(num)d item in this issue", "%(num)d items in this issue", n) % {"num": n}
    assert text == f"{expected} в этом выпуске"


@pytest.mark.parametrize(
    ("locale", "n", "expected"),
    [
        ("bg", 1, "1 публикация в този брой"),
        ("bg", 5, "5 публикации в този брой"),
        ("uk", 21, "21 новина в цьому випуску"),
        ("uk", 3, "3 новини в цьому випуску"),
        ("uk", 25, "25 новин у цьому випуску"),
        ("ro", 1, "1 articol în acest număr"),
        ("ro", 7, "7 articole în acest număr"),
        ("ro", 20, "20 de articole în acest număr"),
        ("de", 1, "1 Beitrag in dieser Ausgabe"),
        ("de", 2, "2 Beiträge in dieser Ausgabe"),
    ],
)
def test_plural_forms_other_languages(locale: str, n: int, expected: str) -> None:
    """Plural rules follow each language, including Romanian's "de" from 20 on."""
    t = i18n.load_translations([locale])[locale]
    text = t.ngettext("%(num)d item in this issue", "%(num)d items in this issue", n)
    assert text % {"num": n} == expected


def test_missing_catalog_names_locale_and_path(tmp_path: Path) -> None:
    """A locale without a catalog is an error naming the locale and the expected file."""
    with pytest.raises(LocaleError) as info:
        i18n.load_translations(["bg", "fr"])
    assert "'fr'" in str(info.value)
    assert str(i18n.catalog_path("fr")) in str(info.value)
    with pytest.raises(LocaleError, match="en"):
        i18n.load_translations(["en"], directory=tmp_path)


def test_broken_catalog_is_a_locale_error(tmp_path: Path) -> None:
    """A catalog that does not parse is reported with its path."""
    path = i18n.catalog_path("de", tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text('msgid "Read more"\nthis is not a catalog\n', encoding="utf-8")
    with pytest.raises(LocaleError, match=re.escape(str(path))):
        i18n.load_translations(["de"], directory=tmp_path)


def test_edited_catalog_is_reloaded(tmp_path: Path) -> None:
    """The cache is keyed by modification time, so an edited catalog is read again."""
    path = i18n.catalog_path("de", tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text('msgid "Read more"\nmsgstr "Weiterlesen"\n', encoding="utf-8")
    assert i18n.get_translations("de", tmp_path).gettext("Read more") == "Weiterlesen"
    path.write_text('msgid "Read more"\nmsgstr "Mehr lesen"\n', encoding="utf-8")
    os.utime(path, ns=(1, 2_000_000_000_000_000_000))
    assert i18n.get_translations("de", tmp_path).gettext("Read more") == "Mehr lesen"


def test_unknown_locale_code() -> None:
    """A code Babel does not know is a LocaleError, not a Babel exception."""
    with pytest.raises(LocaleError, match="xx_YY"):
        i18n.babel_locale("xx_YY")


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("bg", "15 октомври 2012 г."),
        ("de", "15. Oktober 2012"),
        ("ru", "15 октября 2012 г."),
        ("en", "October 15, 2012"),
        ("el", "15 Οκτωβρίου 2012"),
    ],
)
def test_format_date_long(locale: str, expected: str) -> None:
    """Dates come out in the reader's language and order."""
    text = i18n.format_date(date(2012, 10, 15), locale)
    # CLDR glues "г." to the year with a no-break space; compare the words
    assert " ".join(text.split()) == expected
    assert "\u202f" not in text
    moment = datetime(2012, 10, 15, 9, 30, tzinfo=UTC)
    assert i18n.format_date(moment, locale) == text


def test_format_date_full_has_weekday() -> None:
    """The full format names the weekday."""
    assert i18n.format_date(date(2012, 10, 15), "bg", "full").startswith("понеделник")
    assert i18n.format_date(date(2012, 10, 15), "de", "full").startswith("Montag")


def test_format_number() -> None:
    """Numbers use the locale's separators."""
    assert i18n.format_number(1234.5, "de") == "1.234,5"
    assert i18n.format_number(1234.5, "en") == "1,234.5"
    assert i18n.format_number(1234.5, "bg") == "1\u00a0234,5"


def test_text_direction() -> None:
    """Only right-to-left scripts get rtl."""
    assert [i18n.text_direction(x) for x in ("ar", "he", "fa", "ur", "he_IL")] == ["rtl"] * 5
    for locale in LOCALES:
        expected = "rtl" if locale.split("_")[0] in i18n.RTL_LANGUAGES else "ltr"
        assert i18n.text_direction(locale) == expected, locale


def test_language_names_in_running_text() -> None:
    """Language names come from Babel in the reader's language, as written mid-sentence."""
    assert i18n.language_name("bg", "de") == "Bulgarisch"
    assert i18n.language_name("en", "bg") == "английски"
    assert i18n.language_name("bg", "el") == "βουλγαρικά"
    assert i18n.language_name("bg", "ka") == "ბულგარული"
