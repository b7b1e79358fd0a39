"""Every page in every locale: no English left on a page in another language (config texts
included), the page language a visitor picks survives the form posts, per-locale
organisation address, list and segment titles."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest

from newsletter.config import Settings
from newsletter.render.i18n import catalog_locales, language_name
from newsletter.send.tokens import TokenSigner
from newsletter.store import Store
from newsletter.web import create_app
from web.web_helpers import SECRET, Clock, TestClient, Web, csrf_of, publish_edition

#: every locale with a catalog
ALL = catalog_locales()
NEWS = {
    "bg": "Новини от клъстера",
    "en": "Cluster news",
    "ro": "Știrile clusterului",
    "tr": "Küme haberleri",
    "el": "Νέα του συμπλέγματος",
    "ru": "Новости кластера",
    "uk": "Новини кластера",
    "ka": "კლასტერის სიახლეები",
    "de": "Neues aus dem Cluster",
}
MEMBERS = {
    "bg": "Членове на клъстера",
    "en": "Cluster members",
    "ro": "Membrii clusterului",
    "tr": "Küme üyeleri",
    "el": "Μέλη του συμπλέγματος",
    "ru": "Члены кластера",
    "uk": "Члени кластера",
    "ka": "კლასტერის წევრები",
    "de": "Clustermitglieder",
}
# a locale added after these were written gets its own language's name as the list titles:
# a text in that language, which is what the pages must show instead of the English one
for _locale in ALL:
    NEWS.setdefault(_locale, language_name(_locale, _locale))
    MEMBERS.setdefault(_locale, f"{language_name(_locale, _locale)} ({_locale})")


@pytest.fixture
def all_locales(
    make_config: Callable[..., Settings], store: Store, tmp_path: Path
) -> Iterator[Web]:
    settings = make_config(
        organisation={
            "addresses": {"bg": "ул. Примерна 1, 9000 Варна", "de": "Beispielstraße 1, Varna"}
        },
        locales={"default": "bg", "available": ALL},
        lists=[
            {"name": "news", "description": "Cluster news", "descriptions": NEWS, "public": True},
            {"name": "members", "description": "Members", "descriptions": MEMBERS},
        ],
        segments=[
            {
                "name": "members",
                "description": "Cluster members",
                "descriptions": MEMBERS,
                "rules": [{"field": "lists", "op": "contains", "value": "members"}],
            }
        ],
        provider={"name": "outbox", "path": str(tmp_path / "outbox")},
    )
    signer, clock = TokenSigner([SECRET]), Clock()
    with TestClient(create_app(settings, store, signer=signer, clock=clock)) as client:
        yield Web(client, settings, store, signer, clock, tmp_path / "outbox")


class _Text(HTMLParser):
    """Visible text and the attributes a screen reader reads out."""

    def __init__(self) -> None:
        super().__init__()
        self.out: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._skip += tag == "style"
        self.out += [v for k, v in attrs if k in ("aria-label", "title", "alt") and v]

    def handle_endtag(self, tag: str) -> None:
        self._skip -= tag == "style"

    def handle_data(self, data: str) -> None:
        if not self._skip and data.strip():
            self.out.append(data.strip())


def _texts(html: str) -> list[str]:
    parser = _Text()
    parser.feed(html)
    return parser.out


def test_no_english_left_on_any_page_in_any_other_locale(all_locales: Web) -> None:
    web = all_locales
    sub = web.add(lists=("news", "members"))
    edition = publish_edition(web.settings, web.store, locales=("bg",))
    paths = [
        "/subscribe",
        f"/preferences/{web.token('preferences', sub)}",
        f"/unsubscribe/{web.token('unsubscribe', sub)}",
        f"/confirm/{web.token('confirm', sub)}",
        "/unsubscribe/not-a-token",
        "/no-such-page",
        "/archive",
        "/archive/segments/members/bg",
        "/preferences",
    ]
    # names (the organisation's, the languages' own) are the same in every language
    names = set(web.settings.organisation.names.values()) | {web.settings.organisation.name}
    names |= {"English", "Deutsch", "română", "Türkçe", sub.email}
    names |= {language_name(loc, loc) for loc in ALL} | {
        language_name(loc, loc).capitalize() for loc in ALL
    }
    names |= {e.subject for e in web.store.archive.entries("members", "bg")}
    org = web.settings.organisation
    names |= {f"{org.name_for(loc)} · {org.address_for(loc)}" for loc in ALL}
    english = {p: set(_texts(web.client.get(f"{p}?lang=en").text)) for p in paths}
    assert all(english.values())
    for locale in ALL:
        if locale == "en":
            continue
        for path in paths:
            res = web.client.get(f"{path}?lang={locale}")
            assert f'<html lang="{locale}"' in res.text, (locale, path)
            left = [
                text
                for text in _texts(res.text)
                if text in english[path] and text not in names and re.search("[A-Za-z]{3}", text)
            ]
            assert left == [], (locale, path, left)
    assert edition.id


def test_config_texts_and_address_follow_the_page_language(all_locales: Web) -> None:
    web = all_locales
    publish_edition(web.settings, web.store, locales=("bg", "de"))
    form = web.client.get("/subscribe?lang=de").text
    assert "Neues aus dem Cluster" in form and "Cluster news" not in form
    assert "Beispielstraße 1, Varna" in form
    assert "ул. Примерна 1" in web.client.get("/subscribe?lang=bg").text
    # no address for this locale: the default one
    assert "1 Example Street" in web.client.get("/subscribe?lang=ka").text
    sub = web.add(lists=("members",))
    prefs = web.client.get(f"/preferences/{web.token('preferences', sub)}?lang=uk").text
    assert "Члени кластера" in prefs and "Новини кластера" in prefs
    assert "Членове на клъстера" in web.client.get("/archive?lang=bg").text
    listing = web.client.get("/archive/segments/members/de").text
    assert "<h2>Clustermitglieder</h2>" in listing
    feed = web.client.get("/archive/segments/members/de/feed.atom").text
    assert "Clustermitglieder" in feed


def test_confirmation_email_has_the_address_of_its_locale(all_locales: Web) -> None:
    web = all_locales
    page = web.client.get("/subscribe?lang=de")
    data = {
        "csrf_token": csrf_of(page.text, "/subscribe"),
        "page_locale": "de",
        "email": "lena@example.org",
        "locale": "de",
        "lists": ["news"],
        "consent": "yes",
    }
    assert web.client.post("/subscribe", data=data).status_code == 200
    [msg] = web.emails()
    for kind in ("plain", "html"):
        part = msg.get_body((kind,))
        assert part is not None and "Beispielstraße 1, Varna" in part.get_content()


def test_the_language_picked_on_a_page_survives_its_form(web: Web) -> None:
    """A Bulgarian subscriber's page viewed in German: the button's result is German too,
    and a result page of a POST offers no language links (they would GET a POST URL)."""
    sub = web.add()
    token = web.token("unsubscribe", sub)
    page = web.client.get(f"/unsubscribe/{token}?lang=de")
    assert f'action="/unsubscribe/{token}?lang=de"' in page.text
    assert "?lang=de&amp;lang=" not in page.text
    done = web.client.post(
        f"/unsubscribe/{token}?lang=de", data={"List-Unsubscribe": "One-Click", "via": "page"}
    )
    assert done.status_code == 200 and "Sie sind abgemeldet" in done.text
    assert 'hreflang="en"' not in done.text  # no language switcher after a POST
    assert "/preferences/" in done.text and "?lang=de" in done.text

    ptoken = web.token("preferences", sub)
    prefs = web.client.get(f"/preferences/{ptoken}?lang=en")
    for suffix in ("", "/export", "/erase"):
        assert f'action="/preferences/{ptoken}{suffix}?lang=en"' in prefs.text
    saved = web.client.post(
        f"/preferences/{ptoken}?lang=en",
        data={"csrf_token": csrf_of(prefs.text), "locale": "ru", "lists": ["news"]},
        follow_redirects=False,
    )
    assert saved.headers["location"] == f"/preferences/{ptoken}?saved=1&lang=en"
    erased = web.client.post(
        f"/preferences/{ptoken}/erase?lang=en",
        data={"csrf_token": csrf_of(prefs.text, "/erase?lang=en"), "confirm": "yes"},
    )
    assert erased.status_code == 200 and "Your data has been erased" in erased.text
    assert "/erase?lang=" not in erased.text
