"""Story pages: every story of a sent edition can be read to the end, in the reader's language.

Real path: Markdown files in a folder source are gathered into the store, a real digest
is sent through the outbox provider, and the links in the written .eml files are followed
on the app.
"""

from __future__ import annotations

import asyncio
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest

from newsletter.config import Settings
from newsletter.digest.edition import Digest
from newsletter.gather.run import gather
from newsletter.models import EditionStatus, Item
from newsletter.send.providers.outbox import OutboxProvider
from newsletter.store.translations import CachedTranslation
from web.web_helpers import LOCALES, NOW, Web

ATOM = "{http://www.w3.org/2005/Atom}"
BASE = "https://news.example.org"
#: the end of the assembly story: far past summary_chars, so only its page shows it
LAST_SENTENCE = "Поканата е изпратена до всички членове по пощата."

ASSEMBLY_BG = f"""---
title: Общо събрание на членовете на клъстера
date: 2026-11-27
lang: bg
---
Общото събрание на клъстера ще се проведе на 12 декември в залата на община Варна.

В дневния ред са отчетът за годината, бюджетът за следващата година и приемането на
нови членове. Всеки член може да предложи точка до 5 декември.

След събранието ще има неформална среща с партньорите от Констанца и Бургас, на която
ще бъдат обсъдени общите проекти за водородна инфраструктура в пристанищата.

{LAST_SENTENCE}
"""

ASSEMBLY_EN = """---
title: General assembly of the cluster's members
date: 2026-11-27
lang: en
---
The cluster's general assembly takes place on 12 December in Varna's town hall.

The agenda covers the annual report, next year's budget and new members. The end of the
English version is this sentence about the invitation sent by post.
"""

TRAINING_BG = """---
title: Обучение за енергийни мениджъри
date: 2026-11-26
lang: bg
---
Обучението за енергийни мениджъри в общините започва през януари. Записването е отворено.
"""

VISIT_BG = """---
title: Посещение в Констанца
date: 2026-11-25
lang: bg
link: https://cluster.example.org/bg/news/constanta-visit
---
Делегация на клъстера посети водородната лаборатория в Констанца.
"""

HOSTILE_BG = """---
title: "Бележка @@nl:email@@ за @@nl:name@@"
date: 2026-11-24
lang: bg
---
Здравейте @@nl:email@@, отпишете се тук: @@nl:unsubscribe_url@@
@@nl:if:name@@скрито@@nl:else@@показано@@nl:end@@ <script>alert(1)</script>
"""

OLD_BG = """---
title: Стара новина, която никога не е изпратена
date: 2025-01-10
lang: bg
---
Тази новина е събрана, но не е излизала в нито един бюлетин.
"""

FILES = {
    "2026-11-27-assembly.bg.md": ASSEMBLY_BG,
    "2026-11-27-assembly.en.md": ASSEMBLY_EN,
    "2026-11-26-training.bg.md": TRAINING_BG,
    "2026-11-25-visit.bg.md": VISIT_BG,
    "2026-11-24-hostile.bg.md": HOSTILE_BG,
    "2025-01-10-old.bg.md": OLD_BG,
}


@pytest.fixture
def web_settings(make_config: Callable[..., Settings], tmp_path: Path) -> Settings:
    """The web tests' locales and lists, a folder source of Markdown news, short summaries."""
    news = tmp_path / "news"
    news.mkdir()
    for name, text in FILES.items():
        (news / name).write_text(text, encoding="utf-8")
    return make_config(
        locales={"default": "bg", "available": LOCALES},
        lists=[{"name": "members", "description": "Members only"}],
        sources=[{"name": "cluster-news", "kind": "folder", "path": str(news), "lang": "bg"}],
        render={
            "summary_chars": 120,
            "section_titles": {"cluster-news": {"bg": "Новини от клъстера", "de": "Clusternews"}},
        },
        provider={"name": "outbox", "path": str(tmp_path / "outbox")},
        web={"base_url": BASE},
    )


def send_edition(web: Web) -> int:
    """Gather the folder, subscribe a reader per locale, send the week's edition."""
    report = gather(web.settings, web.store, now=NOW)
    assert not report.failed, report.failed
    for n, locale in enumerate(("bg", "de", "en", "ru")):
        web.add(f"reader{n}@example.org", name=f"Читател {n}", locale=locale, lists=("members",))
    digest = Digest(
        web.settings,
        web.store,
        provider=OutboxProvider(web.outbox),
        signer=web.signer,
        clock=web.clock,
    )
    (res,) = asyncio.run(digest.run(["members"]))
    asyncio.run(digest.aclose())
    assert res.sent is not None and res.sent.finished, res
    assert res.edition_id is not None
    return res.edition_id


def by_title(web: Web, title: str) -> Item:
    return next(i for i in web.store.items.list() if i.title == title)


def mail_to(web: Web, address: str) -> EmailMessage:
    return next(m for m in web.emails() if m["To"].addresses[0].addr_spec == address)


def parts(msg: EmailMessage) -> tuple[str, str]:
    html = msg.get_body(preferencelist=("html",))
    text = msg.get_body(preferencelist=("plain",))
    assert html is not None and text is not None
    return str(html.get_content()), str(text.get_content())  # type: ignore[attr-defined]


def test_item_without_link_reads_more_on_its_story_page(web: Web) -> None:
    send_edition(web)
    assembly = by_title(web, "Общо събрание на членовете на клъстера")
    visit = by_title(web, "Посещение в Констанца")
    html, text = parts(mail_to(web, "reader0@example.org"))
    url = f"{BASE}/story/{assembly.id}/bg"
    # the email cuts the story at summary_chars, and its "read more" leads to the rest
    assert LAST_SENTENCE not in html and LAST_SENTENCE not in text
    assert re.search(
        rf'<a class="button-link" href="{re.escape(url)}"[^>]*>Прочетете още</a>', html
    )
    assert f"Прочетете още: {url}" in text
    # an item with a link of its own keeps it
    assert 'href="https://cluster.example.org/bg/news/constanta-visit"' in html
    assert f"/story/{visit.id}/" not in html

    res = web.client.get(url.removeprefix(BASE))
    assert res.status_code == 200, res.text
    assert res.headers["content-type"].startswith("text/html")
    page = res.text
    assert LAST_SENTENCE in page  # the whole body
    assert "Общо събрание на членовете на клъстера</h1>" in page
    assert "Публикувано на 27 ноември 2026\xa0г." in page
    assert '<time datetime="2026-11-27' in page
    assert "Източник: Новини от клъстера" in page
    assert "Оригинал на" not in page
    # language versions: alternates in the head and visible links, both ways
    alternates = set(re.findall(r'<link rel="alternate" hreflang="([^"]+)" href="([^"]+)">', page))
    assert alternates == {("bg", url), ("en", f"{BASE}/story/{assembly.id}/en")}
    assert f'<a href="/story/{assembly.id}/en" lang="en" hreflang="en">English</a>' in page
    english = web.client.get(f"/story/{assembly.id}/en").text
    assert "General assembly of the cluster&#39;s members</h1>" in english
    assert "invitation sent by post" in english and LAST_SENTENCE not in english
    assert f'<a href="/story/{assembly.id}/bg" lang="bg" hreflang="bg">български</a>' in english
    # the item with a link: its page exists too, and links on to the original
    own = web.client.get(f"/story/{visit.id}/bg").text
    assert 'href="https://cluster.example.org/bg/news/constanta-visit"' in own
    assert "Прочетете я на оригиналния сайт" in own


def test_reader_without_a_version_gets_the_fallback_with_its_label(web: Web) -> None:
    send_edition(web)
    assembly = by_title(web, "Общо събрание на членовете на клъстера")
    training = by_title(web, "Обучение за енергийни мениджъри")
    html, text = parts(mail_to(web, "reader1@example.org"))  # German reader
    for item in (assembly, training):
        url = f"{BASE}/story/{item.id}/de"
        assert f'href="{url}"' in html and url in text
    # no German version: the English one (the de chain is de -> en), labelled as the email
    page = web.client.get(f"/story/{assembly.id}/de").text
    assert '<html lang="de"' in page
    assert "Original auf Englisch" in page
    assert '<h1 lang="en" dir="ltr">General assembly' in page
    # only the Bulgarian original exists: shown with its label, marked as Bulgarian
    page = web.client.get(f"/story/{training.id}/de").text
    assert "Original auf Bulgarisch" in page
    assert '<div class="story-body" lang="bg" dir="ltr">' in page
    assert "Записването е отворено." in page
    assert "Veröffentlicht am 26. November 2026" in page and "Quelle: Clusternews" in page
    # a reader with her own chain (ru -> en) gets the English version, as in her email
    assert "Язык оригинала: английский" in web.client.get(f"/story/{assembly.id}/ru").text


def test_machine_translation_shown_with_its_label(web: Web) -> None:
    """A cached machine translation is a version too, labelled as the email labels it."""
    send_edition(web)
    training = by_title(web, "Обучение за енергийни мениджъри")
    web.store.translations.put(
        training.id,
        "de",
        training.content_hash,
        CachedTranslation(
            title="Schulung für Energiemanager",
            body_html="<p>Die Schulung beginnt im Januar.</p>",
            summary_html="<p>Die Schulung beginnt im Januar.</p>",
            provider="deepl",
        ),
        NOW,
    )
    page = web.client.get(f"/story/{training.id}/de").text
    assert "Schulung für Energiemanager</h1>" in page
    assert "Maschinelle Übersetzung (Original: Bulgarisch)" in page
    assert f'<link rel="alternate" hreflang="de" href="{BASE}/story/{training.id}/de">' in page
    # the Bulgarian page lists the German machine version among the languages
    bg = web.client.get(f"/story/{training.id}/bg").text
    assert f'<a href="/story/{training.id}/de" lang="de" hreflang="de">Deutsch</a>' in bg


def test_only_stories_that_went_out_are_published(web: Web) -> None:
    edition_id = send_edition(web)
    old = by_title(web, "Стара новина, която никога не е изпратена")
    training = by_title(web, "Обучение за енергийни мениджъри")
    res = web.client.get(f"/story/{old.id}/bg", headers={"accept-language": "de"})
    assert res.status_code == 404 and "Seite nicht gefunden" in res.text
    # a story only in an edition that never went out (planned, then cancelled) is not public
    web.store.editions.set_status(edition_id, EditionStatus.CANCELLED, NOW)
    assert web.client.get(f"/story/{training.id}/bg").status_code == 404
    planned = web.store.editions.create("members", "2020-W01", [(old.id, old.group_key)], NOW)
    assert planned.status is EditionStatus.PLANNED
    assert web.client.get(f"/story/{old.id}/bg").status_code == 404
    web.store.editions.set_status(edition_id, EditionStatus.FINISHED, NOW)
    assert web.client.get(f"/story/{training.id}/bg").status_code == 200


HOSTILE_PATHS = [
    "/story/abc/bg",
    "/story/-1/bg",
    "/story/0/bg",
    "/story/1e3/bg",
    "/story/%D9%A3/bg",  # an Arabic-Indic digit: str.isdigit() says yes
    "/story/" + "9" * 25 + "/bg",
    "/story/2147483648/bg",  # one past PostgreSQL's INTEGER
    "/story/999999/bg",
    "/story/{id}/xx",  # a language the story is not in and nobody reads
    "/story/{id}/..%2F..%2Fetc",
    "/story/{id}/%3Cscript%3E",
    "/story/{id}/" + "b" * 300,
    "/archive/" + "9" * 25 + "/bg",
    "/archive/abc/bg",
]


def test_hostile_ids_and_locales_are_404(web: Web) -> None:
    send_edition(web)
    training = by_title(web, "Обучение за енергийни мениджъри")
    for path in HOSTILE_PATHS:
        url = path.replace("{id}", str(training.id))
        res = web.client.get(url, headers={"accept-language": "en"})
        assert res.status_code == 404, (path, res.status_code)
        assert "Page not found" in res.text, path


def test_story_page_has_no_subscriber_data(web: Web) -> None:
    send_edition(web)
    hostile = next(i for i in web.store.items.list() if i.title.startswith("Бележка"))
    readers = list(web.store.subscribers.iter())
    for locale in LOCALES:
        res = web.client.get(f"/story/{hostile.id}/{locale}")
        assert res.status_code == 200
        assert "set-cookie" not in res.headers
        assert res.headers["cache-control"].startswith("public")
        page = res.text
        assert "@@nl:" not in page and "<script>alert" not in page
        for sub in readers:
            assert sub.email not in page and sub.name not in page
        assert "/unsubscribe/" not in page and "/preferences/" not in page
        assert "Бележка" in page and "отпишете се тук" in page


def test_archive_and_atom_link_to_story_pages(web: Web) -> None:
    send_edition(web)
    assembly = by_title(web, "Общо събрание на членовете на клъстера")
    visit = by_title(web, "Посещение в Констанца")
    listing = web.client.get("/archive/segments/members/de").text
    # the German readers' versions, each linking to its page in German
    assert f'<a href="/story/{assembly.id}/de">General assembly of' in listing
    assert f'<a href="/story/{visit.id}/de">Посещение в Констанца</a>' in listing
    root = ET.fromstring(web.client.get("/archive/segments/members/de/feed.atom").content)
    (entry,) = root.findall(f"{ATOM}entry")
    related = {
        link.get("href") for link in entry.findall(f"{ATOM}link") if link.get("rel") == "related"
    }
    assert {f"{BASE}/story/{assembly.id}/de", f"{BASE}/story/{visit.id}/de"} <= related
    content = entry.find(f"{ATOM}content")
    assert content is not None and content.get("type") == "html"
    assert f'<a href="{BASE}/story/{assembly.id}/de">' in (content.text or "")
    # every related link opens
    for url in related:
        assert url is not None
        assert web.client.get(url.removeprefix(BASE)).status_code == 200


def test_story_dates_do_not_depend_on_the_wall_clock(web: Web) -> None:
    """The page shows the stored date; the injected clock decides what was sent."""
    send_edition(web)
    web.clock.now = datetime(2031, 1, 1, tzinfo=UTC)
    training = by_title(web, "Обучение за енергийни мениджъри")
    assert "Публикувано на 26 ноември 2026" in web.client.get(f"/story/{training.id}/bg").text
