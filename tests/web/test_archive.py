"""Public archive: edition pages without subscriber data, indexes, Atom; health; bad input."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator

import lxml.html
import sqlalchemy as sa
from send.marker_attacks import LAST, entries

from newsletter.models import EditionStatus, RenderedVariant
from web.web_helpers import Web, publish_edition

ATOM = "{http://www.w3.org/2005/Atom}"


def test_edition_page_has_no_subscriber_data(web: Web) -> None:
    ana = web.add("ana.petrova@example.org", name="Ана Петрова", lists=("members",))
    edition = publish_edition(web.settings, web.store)
    web.store.deliveries.plan(edition.id, [(ana.id, "bg")], web.clock())
    res = web.client.get(f"/archive/{edition.id}/bg")
    assert res.status_code == 200 and res.headers["content-type"].startswith("text/html")
    page = res.text
    assert "Соларен парк" in page  # the edition's content
    assert "ana.petrova@example.org" not in page and "Ана Петрова" not in page
    assert "@@nl" not in page
    assert 'https://news.example.org/unsubscribe"' in page  # neutral, token-less links
    assert 'https://news.example.org/preferences"' in page
    assert "/unsubscribe/" not in page and "/preferences/" not in page
    assert "Здравейте," in page  # the greeting without a name
    assert web.client.get(f"/archive/{edition.id}/en").status_code == 200


def test_forged_markers_do_not_cut_the_archive_page(web: Web) -> None:
    """A story carrying marker-like text (a conditional, value markers, guesses) is shown
    as text: every story and the whole footer of the public copy are there."""
    edition = publish_edition(web.settings, web.store, locales=("bg",), stories=entries())
    page = web.client.get(f"/archive/{edition.id}/bg").text
    neutral = {
        "name": "",
        "email": "",
        "unsubscribe_url": "https://news.example.org/unsubscribe",
        "preferences_url": "https://news.example.org/preferences",
    }
    doc = lxml.html.document_fromstring(page)
    footer = doc.xpath("//td[contains(@class, 'footer')]")
    assert len(footer) == 1, "the footer is cut"
    assert set(footer[0].xpath(".//a/@href")) >= {
        neutral["unsubscribe_url"],
        neutral["preferences_url"],
    }
    assert LAST in page and "1 Example Street" in footer[0].text_content()
    assert "Здравейте," in page
    assert "@@nl:if:name@@" in page  # the story's text, shown as written
    assert page.count('href="https://news.example.org/unsubscribe"') == 1


def test_archived_variants_from_before_nonces_are_shown_as_stored(web: Web) -> None:
    """A variant stored without a nonce substitutes nothing: its markers are text."""
    edition = publish_edition(web.settings, web.store, locales=("bg",))
    html = (
        "<html><body><p>@@nl:if:name@@Здравейте, @@nl:name@@!@@nl:else@@Здравейте!@@nl:end@@"
        f"</p><p>{LAST}</p></body></html>"
    )
    old = RenderedVariant("bg", "Бюлетин", "", "Клъстер", html, "Здравейте!", 1)
    web.store.editions.save_variant(edition.id, old)
    assert web.store.editions.variants(edition.id)["bg"].nonce == ""
    res = web.client.get(f"/archive/{edition.id}/bg")
    assert res.status_code == 200 and res.text == html


def test_unpublished_or_unknown_editions_are_404(web: Web) -> None:
    planned = publish_edition(web.settings, web.store, status=EditionStatus.PLANNED)
    cancelled = publish_edition(
        web.settings, web.store, period="2026-W47", status=EditionStatus.CANCELLED
    )
    sent = publish_edition(web.settings, web.store, period="2026-W46")
    for path in (
        f"/archive/{planned.id}/bg",
        f"/archive/{cancelled.id}/bg",
        f"/archive/{sent.id}/de",  # no such variant
        "/archive/999/bg",
        "/archive/segments/members/de",
        "/archive/segments/nobody/bg/feed.atom",
    ):
        res = web.client.get(path, headers={"accept-language": "de"})
        assert res.status_code == 404, path
        assert "Seite nicht gefunden" in res.text


def test_index_list_and_atom_feed(web: Web) -> None:
    first = publish_edition(web.settings, web.store, period="2026-W47")
    second = publish_edition(web.settings, web.store, period="2026-W48", locales=("bg",))
    publish_edition(web.settings, web.store, period="2026-W49", status=EditionStatus.PLANNED)
    index = web.client.get("/archive", headers={"accept-language": "en"})
    assert index.status_code == 200 and "Newsletter archive" in index.text
    assert 'href="/archive/segments/members/bg"' in index.text
    assert 'href="/archive/segments/members/en"' in index.text

    listing = web.client.get("/archive/segments/members/bg")
    assert listing.status_code == 200 and 'lang="bg"' in listing.text
    links = [f'href="/archive/{second.id}/bg"', f'href="/archive/{first.id}/bg"']
    assert listing.text.index(links[0]) < listing.text.index(links[1])  # newest first
    assert 'type="application/atom+xml"' in listing.text

    feed = web.client.get("/archive/segments/members/bg/feed.atom")
    assert feed.status_code == 200
    assert feed.headers["content-type"].startswith("application/atom+xml")
    root = ET.fromstring(feed.content)
    assert root.tag == f"{ATOM}feed"
    for tag in ("id", "title", "updated", "author"):
        assert root.find(f"{ATOM}{tag}") is not None, tag
    entries = root.findall(f"{ATOM}entry")
    assert len(entries) == 2
    urls = [e.find(f"{ATOM}link").get("href") for e in entries]  # type: ignore[union-attr]
    assert urls == [
        f"https://news.example.org/archive/{second.id}/bg",
        f"https://news.example.org/archive/{first.id}/bg",
    ]
    for e in entries:
        assert e.findtext(f"{ATOM}title")
        assert e.findtext(f"{ATOM}id") and e.findtext(f"{ATOM}updated")
    en = ET.fromstring(web.client.get("/archive/segments/members/en/feed.atom").content)
    assert len(en.findall(f"{ATOM}entry")) == 1


def test_empty_archive(web: Web) -> None:
    res = web.client.get("/archive", headers={"accept-language": "en"})
    assert res.status_code == 200 and "No editions have been published yet." in res.text


def test_healthz_reports_the_database(web: Web) -> None:
    res = web.client.get("/healthz")
    assert res.status_code == 200 and res.json() == {"status": "ok"}
    good = web.store.engine
    web.store.engine = sa.create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    try:
        res = web.client.get("/healthz")
    finally:
        web.store.engine.dispose()
        web.store.engine = good
    assert res.status_code == 503 and res.json() == {"status": "unavailable"}


def test_oversized_body_is_413_and_changes_nothing(web: Web) -> None:
    sub = web.add()
    big = "x" * (web.settings.web.max_body_bytes + 10)
    res = web.client.post(
        f"/unsubscribe/{web.token('unsubscribe', sub)}",
        data={"List-Unsubscribe": "One-Click", "pad": big},
        headers={"accept-language": "en"},
    )
    assert res.status_code == 413 and "Request too large" in res.text
    assert web.store.subscribers.get(sub.id).status.value == "active"

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while it streams in
        yield b"List-Unsubscribe=One-Click&pad="
        for _ in range(web.settings.web.max_body_bytes // 1000 + 1):
            yield b"x" * 1000

    res = web.client.post(
        f"/unsubscribe/{web.token('unsubscribe', sub)}",
        content=chunks(),
        headers={"content-type": "application/x-www-form-urlencoded", "accept-language": "en"},
    )
    assert res.status_code == 413 and "Request too large" in res.text
    assert web.store.subscribers.get(sub.id).status.value == "active"


def test_unknown_route_and_method_are_localized_pages(web: Web) -> None:
    res = web.client.get("/nothing-here", headers={"accept-language": "ru"})
    assert res.status_code == 404 and "Страница не найдена" in res.text
    res = web.client.delete("/subscribe", headers={"accept-language": "en"})
    assert res.status_code == 405 and "Bad request" in res.text


def test_malformed_multipart_is_400(web: Web) -> None:
    sub = web.add()
    res = web.client.post(
        f"/unsubscribe/{web.token('unsubscribe', sub)}",
        content=b"--x\r\nbroken",
        headers={"content-type": "multipart/form-data; boundary=x"},
    )
    assert res.status_code == 400
    assert web.store.subscribers.get(sub.id).status.value == "active"


def test_provider_webhooks_are_mounted_and_answer_plain_text(web: Web) -> None:
    """The webhooks package's route lives under /webhooks/{provider}; its refusals are not
    turned into HTML pages, and the page body limit does not apply to it."""
    res = web.client.post("/webhooks/no-such-provider", content=b"{}")
    assert res.status_code == 404
    assert "<html" not in res.text and "unknown" in res.text
    assert web.client.get("/webhooks/no-such-provider").status_code == 405
