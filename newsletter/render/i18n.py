"""Locales: gettext catalogs for the chrome strings and Babel formatting per reader.

Catalogs live in ``newsletter/locales/<locale>/LC_MESSAGES/messages.po`` and are compiled in
memory when first used, so no compiled ``.mo`` has to be committed or kept in sync. Every
configured locale, English included, must have a catalog: a missing one is a
:class:`~newsletter.errors.LocaleError`, never a silent English email. The catalogs
present are the list of shipped locales (:func:`catalog_locales`).

The catalogs are maintained with the standard pybabel workflow (see ``babel.cfg``)::

    pybabel extract -F babel.cfg -o newsletter/locales/messages.pot .
    pybabel update -i newsletter/locales/messages.pot -d newsletter/locales -D messages
    pybabel init -i newsletter/locales/messages.pot -d newsletter/locales -D messages -l xx
"""

from __future__ import annotations

import functools
import io
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Literal

from babel import Locale, UnknownLocaleError
from babel import dates as babel_dates
from babel import numbers as babel_numbers
from babel.messages.mofile import write_mo
from babel.messages.pofile import PoFileError, read_po
from babel.support import Translations

from newsletter.errors import LocaleError

#: where the package's catalogs live
LOCALES_DIR = Path(__file__).resolve().parents[1] / "locales"
DOMAIN = "messages"

#: languages written right to left; the templates only ever use the ``dir`` attribute
RTL_LANGUAGES = frozenset({"ar", "he", "fa", "ur"})

# CLDR gives some language names capitalized as stand-alone labels, but these languages
# write them in lower case inside a sentence ("Πρωτότυπο στα βουλγαρικά").
_LOWERCASE_LANGUAGE_NAMES = frozenset({"el"})


def catalog_locales(directory: Path | None = None) -> list[str]:
    """Every locale that has a catalog (``<locale>/LC_MESSAGES/messages.po``), sorted.

    This is the one list of the locales the package ships: adding a locale is adding its
    catalog (and, for the tests, its two golden files).
    """
    base = directory or LOCALES_DIR
    return sorted(path.parents[1].name for path in base.glob(f"*/LC_MESSAGES/{DOMAIN}.po"))


def catalog_path(locale: str, directory: Path | None = None) -> Path:
    """Where the catalog for ``locale`` is expected."""
    return (directory or LOCALES_DIR) / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


@functools.lru_cache(maxsize=64)
def _compile(path: str, mtime_ns: int, locale: str) -> Translations:
    # mtime_ns is part of the cache key so an edited catalog is picked up again
    del mtime_ns
    try:
        with open(path, "rb") as fh:
            catalog = read_po(fh, locale=locale, domain=DOMAIN, abort_invalid=True)
    except (PoFileError, ValueError, UnknownLocaleError) as exc:
        raise LocaleError(f"{path}: invalid message catalog for {locale!r}: {exc}") from exc
    buf = io.BytesIO()
    write_mo(buf, catalog, use_fuzzy=False)
    buf.seek(0)
    return Translations(fp=buf, domain=DOMAIN)


def get_translations(locale: str, directory: Path | None = None) -> Translations:
    """The compiled catalog for ``locale`` (cached); :class:`LocaleError` if there is none."""
    path = catalog_path(locale, directory)
    try:
        mtime = path.stat().st_mtime_ns
    except FileNotFoundError as exc:
        raise LocaleError(
            f"locale {locale!r} has no message catalog: expected {path} "
            f"(create it with 'pybabel init -l {locale}')"
        ) from exc
    return _compile(str(path), mtime, locale)


def load_translations(
    locales: Sequence[str], directory: Path | None = None
) -> dict[str, Translations]:
    """Load (and validate) the catalogs of all ``locales`` at once, keyed by locale."""
    out: dict[str, Translations] = {}
    for locale in locales:
        babel_locale(locale)
        out[locale] = get_translations(locale, directory)
    return out


@functools.lru_cache(maxsize=64)
def babel_locale(locale: str) -> Locale:
    """The Babel ``Locale`` for an identifier such as ``bg`` or ``pt_BR``."""
    try:
        return Locale.parse(locale.replace("-", "_"))
    except (UnknownLocaleError, ValueError) as exc:
        raise LocaleError(f"unknown locale {locale!r} (use a CLDR code such as 'bg')") from exc


def format_date(value: date | datetime, locale: str, format: str = "long") -> str:
    """A date in the reader's language, e.g. bg "15 октомври 2012 г.", de "15. Oktober 2012"."""
    if isinstance(value, datetime):
        value = value.date()
    text = babel_dates.format_date(value, format=format, locale=babel_locale(locale))
    # CLDR's narrow no-break space ("2012\u202fг.") is missing from fonts some mail
    # clients fall back to; a plain no-break space keeps the same line-breaking rule.
    return text.replace("\u202f", "\u00a0")


def format_number(value: int | float | Decimal, locale: str) -> str:
    """A number with the reader's grouping and decimal signs (de "1.234,5")."""
    return babel_numbers.format_decimal(value, locale=babel_locale(locale))


def text_direction(locale: str) -> Literal["ltr", "rtl"]:
    """``rtl`` for right-to-left languages, else ``ltr`` (for the ``dir`` attribute)."""
    return "rtl" if locale.split("_")[0].split("-")[0] in RTL_LANGUAGES else "ltr"


def language_name(code: str, locale: str) -> str:
    """The name of language ``code`` as readers of ``locale`` write it in running text."""
    name = babel_locale(locale).languages.get(code.replace("-", "_"))
    if name is None:
        try:
            name = babel_locale(code).get_display_name(babel_locale(locale)) or code
        except LocaleError:
            return code
    if locale in _LOWERCASE_LANGUAGE_NAMES:
        name = name.lower()
    return name
