"""Page source against a real HTTP server: listing, articles, languages, failures."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fixtures.sources.httpserver import FIXTURES, Route, Server, fixture_bytes, serve

from newsletter.config import Gather
from newsletter.errors import SourceError
from newsletter.gather.sources import PageSource, PageSourceConfig, SourceState, build_source


@pytest.fixture
def server() -> Iterator[Server]:
    cp1251 = (FIXTURES / "pages" / "open-days-cp1251.html").read_text(encoding="utf-8")
    routes = {
        "/listing.html": Route(fixture_bytes("pages/listing.html")),
        "/bg/articles/solar-roofs.html": Route(fixture_bytes("pages/solar-bg.html")),
        "/en/articles/solar-roofs.html": Route(fixture_bytes("pages/solar-en.html")),
        # no charset in the header: the page's own <meta> must be honoured
        "/articles/open-days.html": Route(cp1251.encode("cp1251"), content_type="text/html"),
        "/slow.html": Route(hang=True),
    }
    with serve(routes) as srv:
        yield srv


def _page(url: str, **extra: object) -> PageSource:
    raw = {"kind": "page", "name": "site", "url": url, "item_links": "ul.news a", **extra}
    # the test server is on 127.0.0.1: only reachable because it is allow-listed
    policy = Gather(allow_private=[url.split("/", 3)[0] + "//" + url.split("/", 3)[2]])
    source = build_source(PageSourceConfig.model_validate(raw), policy=policy)
    assert isinstance(source, PageSource)
    return source


def test_articles_with_language_and_translation_key(server: Server) -> None:
    with _page(server.url("/listing.html"), date="time", image='meta[property="og:image"]') as src:
        result = src.fetch(SourceState())
    by_url = {item.link: item for item in result.items}
    bg = by_url[server.url("/bg/articles/solar-roofs.html")]
    en = by_url[server.url("/en/articles/solar-roofs.html")]
    assert (bg.lang, en.lang) == ("bg", "en")
    assert bg.translation_key == en.translation_key is not None
    assert bg.guid == bg.link
    assert bg.title == "Соларни покриви за три училища"
    assert bg.published == datetime(2026, 11, 16, 8, 0, tzinfo=UTC)
    assert en.published is not None and en.published.astimezone(UTC).hour == 22  # Sofia 00:00
    assert bg.image == server.url("/img/solar.jpg")
    # title and date are shown by the digest, so they leave the body
    assert "<h1" not in bg.body_html and "<time" not in bg.body_html
    # relative links are absolute against the article's URL
    assert f'href="{server.url("/bg/projects/solar.html")}"' in bg.body_html


def test_failing_articles_are_warnings_not_errors(server: Server) -> None:
    with _page(server.url("/listing.html")) as src:
        result = src.fetch(SourceState())
    assert len(result.items) == 2
    assert any("gone.html" in w and "404" in w for w in result.warnings)
    # the open-days page has no <article>: skipped, named, with the selector
    assert any("open-days.html" in w and "'article'" in w for w in result.warnings)


def test_other_selectors_and_legacy_charset_and_date(server: Server) -> None:
    server.routes["/old.html"] = Route(
        b'<html><body><div class="list"><h3><a href="/articles/open-days.html">x</a></h3>'
        b"</div></body></html>"
    )
    with _page(
        server.url("/old.html"),
        item_links="div.list h3",
        title="h2.headline",
        body="div.post",
        date="p.date",
        lang="bg",
    ) as src:
        result = src.fetch(SourceState())
    (item,) = result.items
    assert item.title == "Клъстерът в Брюксел"
    assert "Над 80 експерти" in item.body_html
    assert item.lang == "bg"  # no <html lang>: the config's language
    assert item.translation_key is None
    assert item.published is not None
    assert item.published.astimezone(UTC) == datetime(2012, 10, 14, 21, 0, tzinfo=UTC)


def test_date_format_from_config(server: Server) -> None:
    server.routes["/list2.html"] = Route(b'<ul class="news"><a href="/a.html">a</a></ul>')
    server.routes["/a.html"] = Route(
        b'<html lang="en"><h1>A</h1><article><span class="d">16/11/2026</span><p>x</p></article>'
    )
    with _page(server.url("/list2.html"), date="span.d", date_format="%d/%m/%Y") as src:
        (item,) = src.fetch(SourceState()).items
    assert item.published is not None and item.published.date().isoformat() == "2026-11-16"


def test_selector_matching_nothing_is_an_error(server: Server) -> None:
    url = server.url("/listing.html")
    with _page(url, item_links="div.missing a") as src, pytest.raises(SourceError) as info:
        src.fetch(SourceState())
    assert str(info.value) == f"selector 'div.missing a' matched no links on {url}"


def test_listing_500_and_timeout(server: Server) -> None:
    server.routes["/boom.html"] = Route(b"err", status=500)
    with _page(server.url("/boom.html")) as src, pytest.raises(SourceError, match="HTTP 500"):
        src.fetch(SourceState())
    slow = _page(server.url("/slow.html"), timeout=0.05)
    with slow as src, pytest.raises(SourceError, match="timed out"):
        src.fetch(SourceState())


def test_all_articles_failing_fails_the_source(server: Server) -> None:
    server.routes["/dead.html"] = Route(b'<ul class="news"><a href="/nope.html">n</a></ul>')
    with _page(server.url("/dead.html")) as src, pytest.raises(SourceError, match="none of 1"):
        src.fetch(SourceState())


def test_max_items_limits_article_fetches(server: Server) -> None:
    with _page(server.url("/listing.html"), max_items=1) as src:
        result = src.fetch(SourceState())
    assert len(result.items) == 1
    assert server.hits("/en/articles/solar-roofs.html") == []


def test_bad_css_selector_is_a_source_error(server: Server) -> None:
    bad = _page(server.url("/listing.html"), item_links="a[")
    with bad as src, pytest.raises(SourceError, match="bad CSS selector"):
        src.fetch(SourceState())
